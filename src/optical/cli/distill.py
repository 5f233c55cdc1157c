"""``optical distill``: train one student (thin layer over optical.train.distill)."""

from __future__ import annotations

import argparse
import json

from optical.cli._types import comma_list
from optical.errors import OpticalError


def _loss_options(pairs: list[str]) -> dict[str, dict]:
    """``--loss-opt ot.eps=0.05`` -> ``{"ot": {"eps": 0.05}}`` (values parsed as JSON when they can be)."""

    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        loss, dot, name = key.partition(".")
        if not sep or not dot or not loss or not name:
            raise OpticalError(f"--loss-opt {pair!r} must look like LOSS.NAME=VALUE, e.g. ot.eps=0.05")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(loss, {})[name] = value
    return options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
        help="distil a student query encoder from a frozen English teacher on bitext",
        description="Distil a student query encoder for one language. Rerunning the same command resumes a killed run.",
    )
    p.add_argument(
        "--config",
        help="YAML file with DistillConfig keys, or a finished run's run.json to rebuild it (with --out); flags override it",
    )
    p.add_argument("--lang", help="foreign language code, e.g. el")
    p.add_argument("--method", help="ot | mse | contrastive | hard_align, or a weighted sum like ot+mse:0.5")
    p.add_argument("--bitext", type=comma_list, help="comma-separated bitext sources (see `optical data summary`)")
    p.add_argument(
        "--licenses",
        type=comma_list,
        help="comma-separated license classes to train on: open, non-commercial, research-only (default all)",
    )
    p.add_argument("--budget", type=int, help="number of training pairs (default 4000)")
    p.add_argument("--noise", type=float, help="fraction of pairs with a shuffled foreign side (default 0)")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output directory of the run")
    p.add_argument("--teacher", help="teacher model: default name, local HF dir or hub name")
    p.add_argument("--student", help="student initialisation (default: a copy of the teacher)")
    p.add_argument("--projection", action="store_true", default=None, help="learn a linear map to the teacher's hidden size")
    p.add_argument(
        "--no-freeze-embeddings",
        dest="freeze_embeddings",
        action="store_false",
        default=None,
        help="also train the word-embedding matrix (slow on CPU)",
    )
    p.add_argument(
        "--center-costs",
        action="store_true",
        default=None,
        help="OT cost on vectors centred by the teacher's mean token embedding",
    )
    p.add_argument(
        "--loss-opt",
        action="append",
        default=[],
        metavar="LOSS.NAME=VALUE",
        help="loss option, e.g. ot.eps=0.05, ot.tau=1.0, ot.marginals=idf, contrastive.directions=both",
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument(
        "--select-on",
        help="xquad_dev (default) | flores_dev | heldout_align (alignment, 200 held-out FLORES dev pairs) | none",
    )
    p.add_argument("--eval-every", type=int, help="steps between dev evaluations (default: each epoch end)")
    p.add_argument(
        "--evals-per-epoch", type=int, help="dev evaluations spread over each epoch (default 1: at its end; 4: every quarter)"
    )
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--device", help="auto (default) | cpu | cuda")
    p.add_argument(
        "--mixed-precision",
        help="auto (default: bf16 on a CPU with AVX512-BF16/AMX or a bf16 CUDA device, else no) | no (fp32) | bf16 | fp16 (CUDA)",
    )
    p.add_argument(
        "--no-length-grouping",
        dest="length_grouping",
        action="store_false",
        default=None,
        help="batches in plain random order instead of grouped by length (more padding; for comparison)",
    )
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        default=None,
        help="keep checkpoint/ in the finished run (by default it is dropped: it only serves a resume)",
    )
    p.add_argument("--tensorboard", action="store_true", default=None)
    p.add_argument("--data-dir")
    p.add_argument("--overwrite", action="store_true", help="replace whatever --out holds")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The DistillConfig of the command line (``--config`` file first, flags override it)."""
    from optical.train import DistillConfig

    overrides = {
        "lang": args.lang,
        "method": args.method,
        "out_dir": args.out,
        "sources": args.bitext,
        "license_classes": args.licenses,
        "budget": args.budget,
        "noise": args.noise,
        "seed": args.seed,
        "teacher": args.teacher,
        "student": args.student,
        "projection": args.projection,
        "freeze_embeddings": args.freeze_embeddings,
        "center_costs": args.center_costs,
        "loss_options": _loss_options(args.loss_opt) or None,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "lr": args.lr,
        "epochs": args.epochs,
        "max_length": args.max_length,
        "select_on": args.select_on,
        "eval_every": args.eval_every,
        "evals_per_epoch": args.evals_per_epoch,
        "checkpoint_every": args.checkpoint_every,
        "device": args.device,
        "mixed_precision": args.mixed_precision,
        "length_grouping": args.length_grouping,
        "keep_checkpoint": args.keep_checkpoint,
        "tensorboard": args.tensorboard,
        "data_dir": args.data_dir,
    }
    if args.config:
        return DistillConfig.from_yaml(args.config, **overrides)
    values = {k: v for k, v in overrides.items() if v is not None}
    missing = [flag for flag, key in (("--lang", "lang"), ("--method", "method"), ("--out", "out_dir")) if key not in values]
    if missing:
        raise OpticalError(f"missing {', '.join(missing)} (or give --config FILE)")
    return DistillConfig.from_dict(values, origin="command line")


def run(args: argparse.Namespace) -> int:
    from optical.train import distill

    result = distill(config_from_args(args), overwrite=args.overwrite, progress=not args.quiet)
    if not result.main_process:  # a multi-process run (torchrun, accelerate launch): the main process reports it
        return 0
    best = (
        f", best {result.selection_metric} {result.best_metric:.4f} at step {result.best_step}"
        if result.best_metric is not None
        else ""
    )
    print(f"student saved to {result.student_dir} ({result.steps} steps, {result.pairs_per_second:.1f} pairs/s{best})")
    return 0
