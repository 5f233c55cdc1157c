"""Quality guard of issue 9: the fast path must learn what the plain path learns, within noise.

The demo configuration (el, 2000 pairs, batch 32, max length 64, centred OT costs, dev selection on
XQuAD-R dev), ``mse`` and ``ot``, seeds 0, 1 and 2, trained twice:

* ``plain``: fp32, ``--no-length-grouping``;
* ``grouped``: length grouping, fp32;
* ``fast``: length grouping and ``--mixed-precision bf16`` (where the CPU has AVX512-BF16/AMX; otherwise
  fp32, and the table says so).

``fast`` against ``plain`` is the whole speed-up; ``fast`` against ``grouped`` is bf16 alone, the evidence
for bf16's default (:data:`optical.train.config.DEFAULT_PRECISION`).

Each run is evaluated on the demo tasks (test split); the project's own paired statistics
(:func:`optical.report.compare.compare_runs`, seeds of a system pooled) compare ``<method>-fast`` with
``<method>-plain`` and with ``<method>-grouped`` on CLIR X->en (RR@10) and pool (AP). The dev metric of
each run (its selected step) gives the seed-to-seed spread that bf16 must stay within.

Writes ``results/quality-guard/`` (the comparison report and ``table.md``); the runs themselves go to
``--work`` (default ``runs/quality-guard``), and a finished run is reused when the script is rerun.

Usage (about 18 distillations and 18 evaluations of e5-small: hours on a 2-core CPU)::

    .venv/bin/python benchmarks/quality_guard.py
    .venv/bin/python benchmarks/quality_guard.py --model /tmp/tiny --budget 64 --seeds 0 1 --out /tmp/qg   # a check
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from optical.eval.evaluate import EvalConfig, evaluate
from optical.eval.stats import StatsSettings
from optical.report.compare import compare_runs, difference_text
from optical.storage import atomic_write_text
from optical.train import DistillConfig, distill
from optical.train.precision import cpu_bf16_support
from optical.train.record import RunRecord

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TASKS = ["clir_sentence", "pool"]
COLUMNS = (("clir_sentence", "RR@10"), ("pool", "AP"))
PATHS = ("plain", "grouped", "fast")
#: (system, baseline) path pairs in the table: the whole fast path, then bf16 alone.
CONTRASTS = (("fast", "plain"), ("fast", "grouped"))


def run_one(args, path: str, method: str, seed: int) -> tuple[Path, float | None]:
    """Distil and evaluate one run of ``path`` (one of :data:`PATHS`); its eval dir and dev metric."""
    work = Path(args.work) / f"{method}-{path}-s{seed}"
    fast = path == "fast"
    config = DistillConfig(
        lang=args.lang,
        method=method,
        out_dir=str(work / "distill"),
        teacher=args.model,
        budget=args.budget,
        seed=seed,
        batch_size=32,
        max_length=64,
        center_costs=True,
        select_on=args.select_on,
        device="cpu",
        length_grouping=path != "plain",
        mixed_precision="bf16" if fast and cpu_bf16_support() is not None else "no",
    )
    distill(config, progress=False)
    evaluate(
        EvalConfig(
            student=str(work / "distill"),
            out_dir=str(work / "eval"),
            langs=[args.lang],
            teacher=args.model,
            tasks=TASKS,
            system=f"{method}-{path}",
            device="cpu",
            mixed_precision="no",  # fp32 for every path: this guard isolates what training precision changes
        ),
        progress=False,
    )
    return work / "eval", RunRecord.load(work / "distill").result.best_metric


def spread(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "n/a"
    sd = statistics.stdev(known) if len(known) > 1 else 0.0
    return f"{statistics.mean(known):.4f} ± {sd:.4f} ({', '.join(f'{v:.4f}' for v in known)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--lang", default="el")
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["mse", "ot"])
    parser.add_argument("--select-on", default="xquad_dev")
    parser.add_argument("--n-resamples", type=int, default=5000)
    parser.add_argument("--work", default=str(PROJECT_ROOT / "runs" / "quality-guard"))
    parser.add_argument("--out", default=str(PROJECT_ROOT / "results" / "quality-guard"))
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report and table from the runs already in --work (e.g. after a change of the statistics policy)",
    )
    args = parser.parse_args(argv)

    eval_dirs, dev = [], {}
    for method in args.methods:
        for path in PATHS:
            for seed in args.seeds:
                if args.report_only:
                    work = Path(args.work) / f"{method}-{path}-s{seed}"
                    eval_dir, metric = work / "eval", RunRecord.load(work / "distill").result.best_metric
                else:
                    eval_dir, metric = run_one(args, path, method, seed)
                eval_dirs.append(eval_dir)
                dev.setdefault((method, path), []).append(metric)
    baselines = sorted({f"{m}-{baseline}" for m in args.methods for _, baseline in CONTRASTS})
    report = compare_runs(eval_dirs, baselines=baselines, settings=StatsSettings(n_resamples=args.n_resamples))
    out = Path(args.out)
    report.save(out / "report")
    precision = "bf16" if cpu_bf16_support() is not None else "fp32 (this CPU has no AVX512-BF16/AMX)"
    lines = [
        "# Quality guard: fast path vs plain path, and bf16 alone",
        "",
        f"{args.model}, {args.lang}, {args.budget} pairs, seeds {', '.join(map(str, args.seeds))}; plain = fp32, no length "
        f"grouping; grouped = fp32, length grouping; fast = length grouping, {precision}. Test split; differences paired "
        "over queries with seeds pooled (optical compare's policy: CI and p-value from one two-level bootstrap over "
        "queries and seeds; † = significant after Holm). Dev metric: the selected step's, mean ± sd over seeds (values).",
        "",
        "| method | contrast | "
        + " | ".join(f"{task}.{args.lang} {measure}" for task, measure in COLUMNS)
        + " | dev metric, system | dev metric, baseline |",
        "|---|---|" + "---|" * (len(COLUMNS) + 2),
    ]
    for method in args.methods:
        for system, baseline in CONTRASTS:
            cells = []
            for task, measure in COLUMNS:
                c = report.comparison(f"{method}-{system}", f"{method}-{baseline}", task, args.lang, measure)
                cells.append("n/a" if c is None else difference_text(c))
            cells += [spread(dev[(method, system)]), spread(dev[(method, baseline)])]
            lines.append(f"| {method} | {system} − {baseline} | " + " | ".join(cells) + " |")
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
