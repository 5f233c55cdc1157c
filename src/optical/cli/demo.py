"""``optical demo``: the README's main job (zero-shot vs mse vs ot on one language)."""

from __future__ import annotations

import argparse

from optical.demo import DemoConfig, run_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = DemoConfig()
    p = subparsers.add_parser(
        "demo",
        help="end to end: distil mse and ot students, evaluate them and zero-shot, write the report",
        description="Distil with mse and ot on one language, evaluate against zero-shot, print the table with CIs.",
    )
    p.add_argument("--lang", default=defaults.lang)
    p.add_argument("--budget", type=int, default=defaults.budget, help="training pairs per method")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", default=defaults.out_dir)
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--data-dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_demo(
        DemoConfig(lang=args.lang, budget=args.budget, seed=args.seed, out_dir=args.out, device=args.device,
                   data_dir=args.data_dir),
        progress=not args.quiet,
    )
    print()
    print(result.table)
    print()
    print(f"report: {result.report_dir / 'report.md'}  ({result.seconds / 60:.1f} min)")
    return 0
