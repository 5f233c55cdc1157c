"""``optical demo``: the README's main job (zero-shot vs mse vs ot on one language)."""

from __future__ import annotations

import argparse

HELP = "end to end: distil mse and ot students, evaluate them and zero-shot, write the report"
DESCRIPTION = (
    "Distil with mse and ot on one language, evaluate against zero-shot, print the table with CIs. "
    "Rerunning continues a killed demo and reuses finished steps."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help=HELP, description=DESCRIPTION)
    p.add_argument("--lang", help="language (default el)")
    p.add_argument("--budget", type=int, help="training pairs per method (default 2000)")
    p.add_argument("--seed", type=int, help="seed (default 0)")
    p.add_argument("--out", dest="out_dir", help="output dir (default runs/demo)")
    p.add_argument("--device", help="auto (default) | cpu | cuda")
    p.add_argument("--data-dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optical.demo import DemoConfig, run_demo

    given = {k: getattr(args, k) for k in ("lang", "budget", "seed", "out_dir", "device", "data_dir")}
    config = DemoConfig(**{k: v for k, v in given.items() if v is not None})
    check_demo_config(config)
    result = run_demo(config, progress=not args.quiet)
    print()
    print(result.table)
    print()
    print(f"report: {result.report_dir / 'report.md'}  ({result.seconds / 60:.1f} min)")
    return 0


#: What a demo dir holds; an --out with anything else in it is refused.
DEMO_ENTRIES = {"eval", "distill", "report"}


def check_demo_config(config) -> None:
    """Every value of the demo and its --out, checked before the first (minutes-long) step."""
    from optical.data import resolve_data_dir
    from optical.data.bitext import build_bitext
    from optical.errors import OpticalError
    from optical.eval.evaluate import EvalConfig
    from optical.storage import check_output_dir

    out = check_output_dir(config.out_dir)
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_ENTRIES)
        if foreign:
            raise OpticalError(f"--out {out} holds other files ({', '.join(foreign[:3])}), not a demo; pick another --out")
    EvalConfig(student="zero-shot", out_dir=str(out), langs=[config.lang], device=config.device).validate()
    distills = list(config.distill_configs().values())
    for distill_config in distills:
        distill_config.validate()
    # The bitext (a fraction of a second to read) settles the budget before the zero-shot evaluation's minutes.
    build_bitext(resolve_data_dir(config.data_dir), distills[0].bitext_config())
