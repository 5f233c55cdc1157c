"""Quality guard of bf16 evaluation (issue 9): bf16 forward passes must score what fp32 ones score.

Evaluation precision decides how fast every evaluation runs (the demo's cold zero-shot pass over the 10,627
pool candidates is most of its wall time), so ``mixed_precision: auto`` of :class:`optical.eval.EvalConfig`
may be bf16 only if bf16 changes no figure beyond a margin fixed before the runs. Each system (zero-shot and the
students of the demo, ``runs/demo/distill/<method>``) is evaluated twice on the demo tasks, fp32 and bf16,
nothing else changed. The rule, for every system and figure of the demo table:

1. the paired bootstrap 95% CI over queries of bf16 − fp32 lies inside ``[-MARGIN, +MARGIN]``;
2. where two systems differ significantly in fp32 (Holm), they differ in the same direction in bf16.

Writes ``results/eval-precision-guard/table.md`` and the comparison reports between systems; the evaluations go to ``--work``
and a finished one is reused when the script is rerun.

Usage (six evaluations of e5-small; about 15 minutes on a 2-core CPU)::

    .venv/bin/python benchmarks/eval_precision_guard.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optical.demo import DEMO_COLUMNS, DEMO_TASKS
from optical.eval.evaluate import EvalConfig, evaluate
from optical.eval.results import ZERO_SHOT
from optical.eval.stats import StatsSettings
from optical.report.compare import ComparisonReport, compare_runs, difference_text
from optical.storage import atomic_write_text
from optical.train.precision import cpu_bf16_support

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Equivalence margin of rule 1: half a point of any figure; the smallest differences the studies report as
#: significant are about one point.
MARGIN = 0.005
PRECISIONS = ("no", "bf16")
#: The demo figures (task, measure) with the scope each is read at; align_x2en has its en->x twin.
FIGURES = (*DEMO_COLUMNS, ("align_en2x", "R@1"))


def scope(task: str, lang: str) -> str:
    return "en" if task == "retention" else lang


def evaluate_twice(args, system: str, student: str) -> dict[str, Path]:
    """The eval dirs of ``student`` at each precision (system names ``<system>-<precision>``)."""
    dirs = {}
    for precision in PRECISIONS:
        out = Path(args.work) / f"{system}-{precision}"
        evaluate(
            EvalConfig(
                student=student,
                out_dir=str(out),
                langs=[args.lang],
                teacher=args.model,
                tasks=DEMO_TASKS,
                system=f"{system}-{precision}",
                device="cpu",
                mixed_precision=precision,
            ),
            progress=True,
        )
        dirs[precision] = out
    return dirs


def equivalence_rows(args, reports: dict[str, ComparisonReport]) -> tuple[list[str], bool]:
    rows, holds = [], True
    for system, report in reports.items():
        for task, measure in FIGURES:
            c = report.comparison(f"{system}-bf16", f"{system}-no", task, scope(task, args.lang), measure)
            inside = c is not None and -MARGIN <= c.ci_low and c.ci_high <= MARGIN
            holds &= inside
            text = "n/a" if c is None else difference_text(c)
            rows.append(f"| {system} | {task} {measure} | {text} | {'yes' if inside else 'NO'} |")
    return rows, holds


def ordering_rows(args, fp32: ComparisonReport, bf16: ComparisonReport) -> tuple[list[str], bool]:
    rows, holds = [], True
    for system, baseline in fp32.pairs:
        for task, measure in FIGURES:
            where = (task, scope(task, args.lang), measure)
            before = fp32.comparison(system, baseline, *where)
            after = bf16.comparison(system.replace("-no", "-bf16"), baseline.replace("-no", "-bf16"), *where)
            if before is None or after is None:
                continue
            kept = not before.significant or (before.diff > 0) == (after.diff > 0)
            holds &= kept
            pair = f"{system.removesuffix('-no')} − {baseline.removesuffix('-no')}"
            rows.append(
                f"| {pair} | {task} {measure} | {difference_text(before)} | {difference_text(after)} | "
                f"{'yes' if kept else 'NO'} |"
            )
    return rows, holds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--lang", default="el")
    demo_students = [str(PROJECT_ROOT / "runs" / "demo" / "distill" / method) for method in ("mse", "ot")]
    parser.add_argument("--students", nargs="+", default=demo_students, help="distill run dirs (default: the demo's)")
    parser.add_argument("--n-resamples", type=int, default=5000)
    parser.add_argument("--work", default=str(PROJECT_ROOT / "runs" / "eval-precision-guard"))
    parser.add_argument("--out", default=str(PROJECT_ROOT / "results" / "eval-precision-guard"))
    args = parser.parse_args(argv)
    if cpu_bf16_support() is None:
        print("this CPU has no AVX512-BF16/AMX: bf16 evaluation is not the default here, nothing to guard")
        return 1

    systems = {ZERO_SHOT: ZERO_SHOT, **{Path(s).name: s for s in args.students}}
    dirs = {system: evaluate_twice(args, system, student) for system, student in systems.items()}
    settings = StatsSettings(n_resamples=args.n_resamples)
    per_system = {
        system: compare_runs([d["no"], d["bf16"]], baselines=[f"{system}-no"], settings=settings) for system, d in dirs.items()
    }
    # Every pair of systems once: each system but the last against those after it (one report per baseline, as
    # a baseline is never compared with another baseline).
    names = list(dirs)
    between: dict[str, list[ComparisonReport]] = {p: [] for p in PRECISIONS}
    for index, baseline in enumerate(names[:-1]):
        for precision in PRECISIONS:
            runs = [dirs[name][precision] for name in names[index:]]
            report = compare_runs(runs, baselines=[f"{baseline}-{precision}"], settings=settings)
            report.save(Path(args.out) / f"report-{baseline}-{precision}")
            between[precision].append(report)
    equivalent, rule1 = equivalence_rows(args, per_system)
    ordered, rule2 = [], True
    for fp32, bf16 in zip(between["no"], between["bf16"]):
        rows, kept = ordering_rows(args, fp32, bf16)
        ordered, rule2 = ordered + rows, rule2 and kept
    lines = [
        "# Quality guard of bf16 evaluation",
        "",
        f"{args.model} as teacher; systems {', '.join(systems)} ({args.lang}), each evaluated with fp32 and with bf16 "
        f"autocast forward passes, test split, {args.n_resamples} bootstrap resamples. Rule 1: the 95% CI of "
        f"bf16 − fp32 lies inside ±{MARGIN}. Rule 2: a difference between systems that is significant in fp32 keeps "
        "its sign in bf16.",
        "",
        f"**Rule 1 {'holds' if rule1 else 'fails'}; rule 2 {'holds' if rule2 else 'fails'}.**",
        "",
        "| system | figure | bf16 − fp32 [95% CI] | inside the margin |",
        "|---|---|---|---|",
        *equivalent,
        "",
        "| systems | figure | fp32 | bf16 | direction kept |",
        "|---|---|---|---|---|",
        *ordered,
    ]
    atomic_write_text(Path(args.out) / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if rule1 and rule2 else 2


if __name__ == "__main__":
    sys.exit(main())
