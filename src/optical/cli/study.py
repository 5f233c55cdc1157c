"""``optical study [run|report|export]``: a grid of distillation runs, its report and a compact export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_run_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options of a study run, on ``optical study`` and on ``optical study run``; returns them."""
    first = len(parser._actions)
    parser.add_argument("--config", help="study YAML file (see configs/study-*.yaml)")
    parser.add_argument("--out", help="study dir (default: runs/study-<config name>)")
    parser.add_argument("--store", help="shared run store (default: the config's 'store', else <cache>/study_runs)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs, their status and the estimated time (with --stop-after: how many would start); run nothing",
    )
    parser.add_argument(
        "--from-export",
        help="a committed `optical study export` of this study: the runs it holds count as done (default: the config's 'export')",
    )
    parser.add_argument(
        "--stop-after",
        metavar="DURATION",
        help="start no run after this long (e.g. 2h30m, 45m); the runs started finish, and the same command later "
        "goes on with the rest (on a joined Ray cluster, runs it had already queued may still start)",
    )
    parser.add_argument("--no-report", action="store_true", help="skip the report at the end")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: one run after another here (default); ray: each pending run a Ray task (pip install 'optical[ray]')",
    )
    parser.add_argument(
        "--address", help="with --executor ray: the cluster to join (e.g. auto, or HOST:6379); default a local one"
    )
    parser.add_argument("--cpus-per-run", type=float, default=1.0, help="with --executor ray: CPUs each run asks for (default 1)")
    parser.add_argument(
        "--gpus-per-run",
        type=float,
        help="with --executor ray: GPUs each run asks for (default 1 where the cluster has GPUs, else 0)",
    )
    parser.set_defaults(func=run_command)
    return parser._actions[first:]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "study",
        help="run a grid of distillation runs from a YAML config and report on it",
        description="Run a study (languages x methods x seeds x budgets x noise x backbones x domains, "
        "evaluated at several query typo rates) and write its report. "
        "`optical study --config FILE` is short for `optical study run --config FILE`.",
    )
    p.set_defaults(run_options=_add_run_arguments(p))
    commands = p.add_subparsers(dest="study_command", metavar="SUBCOMMAND")
    run = commands.add_parser("run", help="run every unfinished run of a study, then write the report")
    for action in _add_run_arguments(run):
        # Unset here, an option keeps what `optical study --option run` gave it (argparse would reset it to the default).
        action.default = argparse.SUPPRESS
    report = commands.add_parser("report", help="(re)write report.md, report.html and plots of a study dir")
    report.add_argument("study_dir")
    report.add_argument("--resamples", type=int, help="bootstrap/randomisation resamples (default: the config's n_resamples)")
    report.set_defaults(func=report_command)
    export = commands.add_parser(
        "export",
        help="compact copy (manifest, run summaries, per-query values, report) to commit or share",
        description="Copy what the report needs (no weights, no checkpoints, no TREC run files) into OUT, "
        "then write the report there from the copy.",
    )
    export.add_argument("study_dir")
    export.add_argument("--out", required=True, help="export dir (empty, missing, or an earlier export: replaced)")
    export.add_argument("--resamples", type=int, help="bootstrap/randomisation resamples (default: the config's n_resamples)")
    export.set_defaults(func=export_command)
    agreement = commands.add_parser(
        "agreement",
        help="how often held-out alignment and XQuAD dev selection pick the same step (runs that recorded both)",
        description="Read every finished run of a study that selected on heldout_align and recorded XQuAD dev beside "
        "it; print the step each criterion keeps and what the alignment's choice costs on XQuAD dev; write "
        "agreement.md and agreement.json into OUT (default: STUDY_DIR/report).",
    )
    agreement.add_argument("study_dir")
    agreement.add_argument("--out", help="where to write agreement.md and agreement.json (default: STUDY_DIR/report)")
    agreement.set_defaults(func=agreement_command)
    levels = commands.add_parser(
        "levels",
        help="how well the zero-shot model knows each language of a study (held-out alignment, no FLORES devtest)",
        description="Measure the zero-shot backbone's held-out alignment (mean of x->en and en->x MRR@10 on the 200 "
        "FLORES dev pairs training keeps out) for every language of a study config, before any distillation; write "
        "one row per language to OUT as it goes (a killed measurement resumes). With --spread N, print N languages "
        "evenly spaced in log distance from the ceiling, log10(1 - MRR) (e.g. the study's three-seed languages).",
    )
    levels.add_argument("--config", required=True, help="study YAML file: its languages, backbone and training precision")
    levels.add_argument("--out", required=True, help="TSV to write (an earlier one of the same model is resumed)")
    levels.add_argument("--backbone", help="which of the config's backbones (default: its only one)")
    levels.add_argument("--spread", type=int, help="print this many languages evenly spaced in log distance from the ceiling")
    levels.add_argument(
        "--order",
        action="store_true",
        help="print every language farthest-first in level (a languages: list whose every prefix spans the spectrum)",
    )
    levels.add_argument("--quiet", action="store_true", help="no progress bar")
    levels.set_defaults(func=levels_command)


def run_command(args: argparse.Namespace) -> int:
    from optical.errors import OpticalError
    from optical.study import dry_run, load_study_config, run_study
    from optical.study.executor import ExecutorKind, RayResources, make_executor
    from optical.study.runner import parse_duration

    if not args.config:
        if args.study_command == "run":
            raise OpticalError("optical study run needs --config FILE (a study YAML file, e.g. configs/study-v2.yaml)")
        raise OpticalError("optical study needs --config FILE (to run a study) or a subcommand: run, report, export")
    # Imported now, not after hours of runs: a checkout updated meanwhile would mix old and new modules.
    from optical.report import write_study_report

    stop_after = None if args.stop_after is None else parse_duration(args.stop_after)
    config = load_study_config(args.config)
    study_dir = Path(args.out or f"runs/study-{Path(args.config).stem}")
    # Built first: a dry run checks the options a real run would refuse, and lists what it would do.
    executor = make_executor(
        ExecutorKind(args.executor),
        progress=not args.quiet,
        address=args.address,
        resources=RayResources(cpus=args.cpus_per_run, gpus=args.gpus_per_run),
    )
    if args.dry_run:
        plan = dry_run(
            config, study_dir, store=args.store, from_export=args.from_export, executor=executor, stop_after=stop_after
        )
        print(plan.render())
        return 0
    result = run_study(
        config,
        study_dir,
        store=args.store,
        progress=not args.quiet,
        from_export=args.from_export,
        executor=executor,
        stop_after=stop_after,
    )
    done = sum(s.done for s in result.statuses)
    print(
        f"study {config.name}: {done}/{len(result.statuses)} runs complete in {result.seconds / 60:.1f} min; "
        f"runs stored in {result.store}"
    )
    if result.not_started:
        print(
            f"stopped: --stop-after {args.stop_after} passed with {result.not_started} run(s) not started; "
            "the same command goes on with them"
        )
    for run_id, error in result.failures.items():
        print(f"failed: {run_id}: {error}")
    if not args.no_report:
        report = write_study_report(study_dir)
        print(f"report: {report.files[0]} and {report.files[1]}")
        _warn_lost(report.lost)
    return 1 if result.failures else 0


def _check_study_dir(args: argparse.Namespace, own: tuple[str, ...] = ()) -> None:
    """No run option given to ``optical study`` before this subcommand (but those it has itself: ``own``), a study dir
    to read (with its manifest) and a positive --resamples, checked before any work."""
    from optical.errors import OpticalError
    from optical.study.layout import MANIFEST

    given = [
        action.option_strings[0]
        for action in args.run_options
        if action.dest not in own and getattr(args, action.dest) != action.default
    ]
    if given:
        verb = "belongs" if len(given) == 1 else "belong"
        raise OpticalError(
            f"{', '.join(given)} {verb} to `optical study run`; `optical study {args.study_command}` takes a study dir"
        )

    path, resamples = Path(args.study_dir), getattr(args, "resamples", None)
    if not path.is_dir():
        raise OpticalError(f"study dir {path} does not exist or is not a directory")
    if not (path / MANIFEST).is_file():
        raise OpticalError(f"{path / MANIFEST} is missing: {path} is not a study dir (run `optical study run` first)")
    if resamples is not None and resamples < 1:
        raise OpticalError(f"--resamples must be >= 1, got {resamples}")


def report_command(args: argparse.Namespace) -> int:
    from optical.report import write_study_report
    from optical.storage import check_output_dir

    _check_study_dir(args)
    check_output_dir(Path(args.study_dir) / "report", "report dir")
    report = write_study_report(args.study_dir, n_resamples=args.resamples)
    extra = report.files[2:]
    plots = sum(1 for f in extra if f.suffix == ".png")
    others = [f.name for f in extra if f.suffix != ".png"]
    print(f"report: {report.files[0]} and {report.files[1]} ({plots} plots{''.join(', ' + name for name in others)})")
    _warn_lost(report.lost)
    return 0


def _warn_lost(lost: list[str]) -> None:
    """Say on stderr that the report left out finished runs whose evaluations are gone, rather than only in the report."""
    if lost:
        print(
            f"optical: warning: evaluations of finished runs missing: {len(lost)} (first: {lost[0]}); the report "
            "leaves them out and lists them at its end. Restore them (git checkout, or the run store) and rerun the report",
            file=sys.stderr,
        )


def export_command(args: argparse.Namespace) -> int:
    from optical.report import write_study_report
    from optical.study.export import export_study

    _check_study_dir(args, own=("out",))
    export = export_study(
        args.study_dir, args.out, write_report=lambda copy: write_study_report(copy, n_resamples=args.resamples).files
    )
    print(
        f"exported {export.evaluations} evaluations and {export.distill_runs} distillation runs to {export.out_dir}; "
        f"report: {export.report_files[0]}"
    )
    return 0


def agreement_command(args: argparse.Namespace) -> int:
    from optical.study.agreement import selection_agreement
    from optical.study.layout import REPORT_DIR

    _check_study_dir(args, own=("out",))
    report = selection_agreement(Path(args.study_dir))
    print(report.to_markdown(), end="")
    report.save(args.out or Path(args.study_dir) / REPORT_DIR)
    return 0


def levels_command(args: argparse.Namespace) -> int:
    from optical.data import resolve_data_dir
    from optical.errors import OpticalError
    from optical.storage import check_output_dir, output_lock
    from optical.study import load_study_config
    from optical.study.levels import measure_levels
    from optical.study.runner import default_store, prepare_models
    from optical.train.precision import resolve_precision

    config = load_study_config(args.config)
    label = args.backbone or (next(iter(config.backbones)) if len(config.backbones) == 1 else None)
    if label not in config.backbones:
        names = ", ".join(config.backbones)
        raise OpticalError(f"--backbone must name one of {config.source}'s backbones ({names}), got {label}")
    if args.spread is not None and args.spread < 1:
        raise OpticalError(f"--spread must be >= 1, got {args.spread}")
    out = Path(args.out).expanduser()
    if out.is_dir():
        raise OpticalError(f"--out {out} is a directory; give the TSV file to write")
    check_output_dir(out.parent)
    languages = sorted({lang for grid in config.grids for lang in grid.languages}, key=config.axes.languages.index)
    data_dir = resolve_data_dir(config.data_dir)
    precision = resolve_precision("cpu", str(config.base_distill.get("mixed_precision", "no")))
    model = prepare_models(config, default_store(), build=True)[config.backbones[label].label]
    with output_lock(out):
        table = measure_levels(model, languages, data_dir, out, precision=precision, progress=not args.quiet)
    print(f"{len(table.levels)} languages measured in {out} ({model}, {precision})")
    if args.spread:
        chosen = ", ".join(f"{level.lang} {level.mrr:.3f}" for level in table.spread(args.spread))
        print(f"{args.spread} languages spread over the levels: {chosen}")
    if args.order:
        print(f"farthest-first order: [{', '.join(level.lang for level in table.farthest_first())}]")
    return 0
