"""``optical compare RUN_DIR... --out REPORT_DIR``: compare evaluation runs against a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from optical.errors import OpticalError
from optical.eval.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from optical.report.compare import DEFAULT_RESOURCE_GROUPS


def _comma_list(value: str) -> list[str]:
    langs = [lang.strip() for lang in value.split(",") if lang.strip()]
    if not langs:
        raise argparse.ArgumentTypeError(f"{value!r} is empty: give a comma-separated list such as el,hi")
    return langs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare evaluation runs: paired tests, CIs, report.md, comparison.json, plots",
        description="Compare evaluation run dirs (runs sharing a system name are its seeds) against a baseline.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="evaluation run dirs (with eval.json)")
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT_DIR", help="where to write the report")
    parser.add_argument("--baseline", help="system name of the baseline (default: the zero-shot run, else the first)")
    parser.add_argument("--low", type=_comma_list, default=DEFAULT_RESOURCE_GROUPS["low"], help="low-resource languages (default: %(default)s)")
    parser.add_argument("--high", type=_comma_list, default=DEFAULT_RESOURCE_GROUPS["high"], help="high-resource languages (default: %(default)s)")
    parser.add_argument("--measures", type=_comma_list, help="comma-separated measures to compare (default: all in the runs)")
    parser.add_argument("--n-resamples", type=int, default=DEFAULT_RESAMPLES, help="randomisation/bootstrap resamples (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the resampling (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optical.report.compare import compare_runs

    overlap = set(args.low) & set(args.high)
    if overlap:
        raise OpticalError(f"--low and --high share {', '.join(sorted(overlap))}: a language belongs to one group")
    report = compare_runs(
        args.run_dirs,
        args.out,
        baseline=args.baseline,
        resource_groups={"low": args.low, "high": args.high},
        measures=args.measures,
        n_resamples=args.n_resamples,
        seed=args.seed,
    )
    n_significant = sum(row.comparison.significant for row in report.comparisons)
    print(
        f"compared {len(report.systems)} systems against {report.baseline}: "
        f"{n_significant} of {len(report.comparisons)} differences significant after Holm; "
        f"report in {args.out / 'report.md'}"
    )
    return 0
