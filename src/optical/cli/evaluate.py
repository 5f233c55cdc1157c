"""``optical evaluate``: score one student (or zero-shot) on the XQuAD test split, or on your own collection."""

from __future__ import annotations

import argparse

from optical.cli._types import comma_list
from optical.errors import OpticalError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a distilled student (or zero-shot) on XQuAD / XQuAD-R / FLORES",
        description="Evaluate a student on CLIR X->en, the LAReQA pool, English retention and FLORES alignment; "
        "or, with --collection DIR --query-lang XX, on your own BEIR or TREC collection. A distilled student's model card "
        "(RUN/student/README.md) gets the scores, with 95% CIs.",
    )
    p.add_argument(
        "--student",
        required=True,
        help="output dir of `optical distill`, zero-shot, or translate-test (queries machine-translated, then the teacher)",
    )
    p.add_argument(
        "--mt-model",
        help="with --student translate-test: the seq2seq MT model into English (a Marian, M2M-100 or NLLB name or dir)",
    )
    p.add_argument("--out", required=True, help="run dir to write (eval.json, per_query/, runs/, qrels/)")
    p.add_argument(
        "--langs",
        type=comma_list,
        help="comma-separated XQuAD-R languages, or FLORES ones with --tasks align (default el)",
    )
    p.add_argument("--teacher", default="multilingual-e5-small")
    p.add_argument(
        "--tasks",
        type=comma_list,
        help="comma-separated subset of clir_sentence,clir_paragraph,pool,retention,align (default all)",
    )
    p.add_argument("--scoring", type=comma_list, default="dense", help="dense (default) and/or maxsim (late interaction)")
    p.add_argument(
        "--maxsim-tasks",
        type=comma_list,
        default=None,
        help="with --scoring maxsim: only these tasks scored by MaxSim too (e.g. clir_sentence; default: every task "
        "that has MaxSim, the pool's 10,627 candidates included)",
    )
    p.add_argument(
        "--split", default="test", help="test (default) or dev; with --collection, the qrels split (qrels/<split>.tsv)"
    )
    p.add_argument("--collection", help="your own collection: a BEIR dir (corpus.jsonl, queries.jsonl, qrels/) or a TREC dir")
    p.add_argument(
        "--query-lang", help="language of the collection's queries (any ISO 639 / BCP-47 code; needed with --collection)"
    )
    p.add_argument(
        "--strict", action="store_true", help="with --collection: refuse qrels naming unknown ids (default: drop them)"
    )
    p.add_argument("--task-name", help="with --collection: the task part of the result key (default collection)")
    p.add_argument("--passage-max-length", type=int, help="with --collection: document max tokens (default 512)")
    p.add_argument(
        "--index", help="with --collection: auto (default: exact below --exact-below documents, IVF above), exact, ivf or hnsw"
    )
    p.add_argument(
        "--exact-below", type=int, help="with --collection: exact search below this many documents, IVF above (default 100000)"
    )
    p.add_argument(
        "--maxsim-exact-below",
        type=int,
        help="with --collection and --scoring maxsim: exact MaxSim over every document below this many documents, "
        "a rerank of the dense candidates above, its recall against exact MaxSim measured (default 5000)",
    )
    p.add_argument(
        "--recall-target",
        type=float,
        help="with --collection: recall@10 against exact search an approximate index is tuned to reach (default 0.95)",
    )
    p.add_argument("--query-noise", type=float, help="character typo rate applied to the XQuAD queries (default 0)")
    p.add_argument("--noise-seed", type=int, help="seed of the typos (default 0)")
    p.add_argument("--system", help="display name in reports")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--mixed-precision",
        default="auto",
        help="autocast of the forward passes: auto (default: bf16 on a CPU with AVX512-BF16/AMX or a bf16 CUDA device, "
        "else no) | no (fp32) | bf16 | fp16 (CUDA)",
    )
    p.add_argument("--data-dir", help="the XQuAD / XQuAD-R / FLORES data (default: $OPTICAL_DATA_DIR, else the cache)")
    p.add_argument("--overwrite", action="store_true", help="replace whatever --out holds")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _shared_settings(args: argparse.Namespace) -> dict:
    """The options the XQuAD evaluation and a collection's evaluation take alike."""
    if args.system is not None and not args.system.strip():
        raise OpticalError("--system is empty; give the system a name, or leave --system out for the default")
    return dict(
        student=args.student,
        out_dir=args.out,
        teacher=args.teacher,
        split=args.split,
        scoring=args.scoring,
        system=args.system,
        batch_size=args.batch_size,
        device=args.device,
        mixed_precision=args.mixed_precision,
    )


def run_collection(args: argparse.Namespace) -> int:
    from optical.eval.collection import CollectionConfig, evaluate_collection

    if not args.query_lang:
        raise OpticalError("--collection needs --query-lang XX, the language of its queries (e.g. el, sw, zh-Hant)")
    xquad_only = [flag for flag, value in _xquad_flags(args) if value is not None]
    if xquad_only:
        verb = "sets" if len(xquad_only) == 1 else "set"
        raise OpticalError(
            f"{', '.join(xquad_only)} {verb} the XQuAD evaluation; with --collection the queries' language is --query-lang, "
            "the task --task-name, and the data the collection dir"
        )
    optional = {
        "index": args.index,
        "exact_below": args.exact_below,
        "maxsim_exact_below": args.maxsim_exact_below,
        "recall_target": args.recall_target,
        "task_name": args.task_name,
        "passage_max_length": args.passage_max_length,
    }
    config = CollectionConfig(
        collection=args.collection,
        query_lang=args.query_lang,
        strict=args.strict,
        **{name: value for name, value in optional.items() if value is not None},  # unset: the config's defaults
        **_shared_settings(args),
    )
    return _print_results(evaluate_collection(config, progress=not args.quiet, overwrite=args.overwrite), args.out)


def _xquad_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    """The flags of the XQuAD evaluation that a collection's evaluation has no use for, with their values."""
    return [
        ("--langs", args.langs),
        ("--tasks", args.tasks),
        ("--query-noise", args.query_noise),
        ("--noise-seed", args.noise_seed),
        ("--data-dir", args.data_dir),
        ("--mt-model", args.mt_model),
        ("--maxsim-tasks", args.maxsim_tasks),
    ]


def _collection_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    """The flags that only a collection's evaluation reads, with their values (None or False: not given)."""
    return [
        ("--query-lang", args.query_lang),
        ("--strict", args.strict or None),
        ("--task-name", args.task_name),
        ("--passage-max-length", args.passage_max_length),
        ("--index", args.index),
        ("--exact-below", args.exact_below),
        ("--maxsim-exact-below", args.maxsim_exact_below),
        ("--recall-target", args.recall_target),
    ]


def run(args: argparse.Namespace) -> int:
    if args.collection:
        return run_collection(args)
    collection_only = [flag for flag, value in _collection_flags(args) if value is not None]
    if collection_only:
        verb = "goes" if len(collection_only) == 1 else "go"
        raise OpticalError(f"{', '.join(collection_only)} {verb} with --collection DIR (your own collection)")
    from optical.eval.evaluate import EvalConfig, evaluate
    from optical.eval.tasks import TASKS

    config = EvalConfig(
        langs=args.langs or ["el"],
        tasks=args.tasks or [str(task) for task in TASKS],
        query_noise=0.0 if args.query_noise is None else args.query_noise,
        noise_seed=0 if args.noise_seed is None else args.noise_seed,
        data_dir=args.data_dir,
        mt_model=args.mt_model,
        maxsim_tasks=args.maxsim_tasks,
        **_shared_settings(args),
    )
    return _print_results(evaluate(config, progress=not args.quiet, overwrite=args.overwrite), args.out)


def _print_results(result, out: str) -> int:
    """One line per task result: its main measure (from the task registry) and the number of queries."""
    from optical.eval.metrics import aggregate_name
    from optical.eval.results import task_of
    from optical.eval.tasks import main_measure

    print(f"{result.system}: {len(result.tasks)} task results in {out}")
    for key, task in result.tasks.items():
        main = main_measure(task_of(key)) or "RR@10"
        print(f"  {key:28s} {aggregate_name(main):8s} {task.aggregates[main]:.4f}  (n={task.n_queries})")
    return 0
