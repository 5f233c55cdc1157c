"""``optical evaluate``: score one student (or zero-shot) on the XQuAD test split."""

from __future__ import annotations

import argparse



def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a distilled student (or zero-shot) on XQuAD / XQuAD-R / FLORES",
        description="Evaluate a student on CLIR X->en, the LAReQA pool, English retention and FLORES alignment.",
    )
    p.add_argument("--student", required=True, help="output dir of `optical distill`, or zero-shot")
    p.add_argument("--out", required=True, help="run dir to write (eval.json, per_query/, runs/, qrels/)")
    p.add_argument("--langs", default="el", help="comma-separated XQuAD-R languages (default el)")
    p.add_argument("--teacher", default="multilingual-e5-small")
    p.add_argument("--tasks", help="comma-separated subset of clir_sentence,clir_paragraph,pool,retention,align (default all)")
    p.add_argument("--scoring", default="dense", help="dense (default) and/or maxsim (late interaction)")
    p.add_argument("--split", default="test", help="test (default) or dev")
    p.add_argument("--query-noise", type=float, default=0.0, help="character typo rate applied to queries")
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--system", help="display name in reports")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optical.eval.evaluate import EvalConfig, evaluate
    from optical.eval.tasks import TASKS
    from optical.eval.metrics import aggregate_name

    config = EvalConfig(
        student=args.student,
        out_dir=args.out,
        langs=_csv(args.langs),
        teacher=args.teacher,
        tasks=_csv(args.tasks) or [str(task) for task in TASKS],
        scoring=_csv(args.scoring),
        split=args.split,
        query_noise=args.query_noise,
        noise_seed=args.noise_seed,
        system=args.system,
        batch_size=args.batch_size,
        device=args.device,
        data_dir=args.data_dir,
    )
    result = evaluate(config, progress=not args.quiet)
    print(f"{result.system}: {len(result.tasks)} task results in {args.out}")
    for key, task in result.tasks.items():
        main = "AP" if key.startswith("pool") else ("R@1" if key.startswith("align") else "RR@10")
        print(f"  {key:28s} {aggregate_name(main):8s} {task.aggregates[main]:.4f}  (n={task.n_queries})")
    return 0
