"""``optical compare RUN_DIR... --out REPORT_DIR``: compare evaluation runs against zero-shot and each KD baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from optical.cli._types import comma_list
from optical.errors import OpticalError
from optical.eval.tasks import RESOURCE_GROUPS
from optical.storage import atomic_directory, output_lock

# Mirrors optical.eval.stats' defaults without importing numpy at start-up; a test checks they agree.
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0


#: What a report dir of `optical compare` holds; anything else in --out is refused.
REPORT_FILES = {"report.md", "comparison.json", "plots"}


def _check_out(out: Path, run_dirs: list[Path]) -> None:
    """Refuse a --out that is not a writable dir, is (or holds, or lies in) an input run, or holds other files."""
    from optical.storage import check_output_dir

    check_output_dir(out)
    resolved = out.resolve()
    for run_dir in run_dirs:
        inside = run_dir.resolve()
        if resolved == inside or inside in resolved.parents or resolved in inside.parents:
            raise OpticalError(f"--out {out} overlaps the run dir {run_dir}; write the report elsewhere")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        if names and not (names <= REPORT_FILES and "comparison.json" in names):
            raise OpticalError(f"--out {out} is not empty and holds no comparison report; pick another --out")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare evaluation runs: paired tests, CIs, report.md, comparison.json, plots",
        description="Compare evaluation run dirs (runs sharing a system name are its seeds): by default every system "
        "against the zero-shot run and every non-KD system against each KD baseline (mse, contrastive).",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="evaluation run dirs (with eval.json)")
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT_DIR", help="where to write the report")
    parser.add_argument(
        "--baseline",
        type=comma_list,
        help="comma-separated system names to compare every other system with (default: the zero-shot run and each KD baseline)",
    )
    parser.add_argument(
        "--low", type=comma_list, default=list(RESOURCE_GROUPS["low"]), help="low-resource languages (default: %(default)s)"
    )
    parser.add_argument(
        "--high", type=comma_list, default=list(RESOURCE_GROUPS["high"]), help="high-resource languages (default: %(default)s)"
    )
    parser.add_argument("--measures", type=comma_list, help="comma-separated measures to compare (default: all in the runs)")
    parser.add_argument(
        "--n-resamples", type=int, default=DEFAULT_RESAMPLES, help="randomisation/bootstrap resamples (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the resampling (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optical.data.languages import get_language
    from optical.eval.stats import StatsSettings
    from optical.report.compare import compare_runs

    for flag in ("low", "high"):  # canonical codes (swh_Latn -> sw), as the runs' task keys use them
        try:
            setattr(args, flag, [get_language(lang).code for lang in getattr(args, flag)])
        except OpticalError as exc:
            raise OpticalError(f"--{flag}: {exc}") from None
    overlap = set(args.low) & set(args.high)
    if overlap:
        raise OpticalError(f"--low and --high share {', '.join(sorted(overlap))}: a language belongs to one group")
    if args.n_resamples < 1:
        raise OpticalError(f"--n-resamples must be >= 1, got {args.n_resamples}")
    if not 0 <= args.seed < 2**32:
        raise OpticalError(f"--seed must be in [0, 2**32), got {args.seed}")
    _check_out(args.out, args.run_dirs)
    with output_lock(args.out):  # a second compare into the same --out is refused, not interleaved
        report = compare_runs(
            args.run_dirs,
            baselines=args.baseline,
            resource_groups={"low": args.low, "high": args.high},
            measures=args.measures,
            settings=StatsSettings(n_resamples=args.n_resamples, seed=args.seed),
        )
        with atomic_directory(args.out) as building:  # the previous report stays whole until the new one is complete
            report.save(building)
    n_significant = sum(row.comparison.significant for row in report.comparisons)
    print(
        f"compared {len(report.systems)} systems ({', '.join(f'{a} vs {b}' for a, b in report.pairs)}): "
        f"{n_significant} of {len(report.comparisons)} differences significant after Holm; "
        f"report in {args.out / 'report.md'}"
    )
    return 0
