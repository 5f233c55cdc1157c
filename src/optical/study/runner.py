"""Run a study: every run of the grid, resumable, shared across studies through a run store.

Layout::

    STUDY_DIR/
      study.json                 manifest: config, runs with their status (written atomically)
      runs/<run_id> -> STORE/<run_id>   a link into the shared store
      report/                    report.md, report.html, plots/*.png
    STORE/<run_id>/
      distill/                   the `optical distill` output dir (run.json marks it complete)
      eval-<rate>/               one `optical evaluate` run dir per query-noise rate (eval.json)
    STORE/models/tiny-<hash>/    tiny models named by the config

A run is complete when ``distill/run.json`` says ``completed`` (zero-shot
runs have no distill dir) and every ``eval-<rate>/eval.json`` exists; a
complete run is never redone, in this study or any other that shares the
store. An interrupted run resumes: distill continues from its checkpoint and
evaluate reuses finished variants.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from optical.errors import OpticalError
from optical.eval.evaluate import LEGACY_EVAL_VALUES
from optical.eval.results import EVAL_JSON
from optical.formatting import cell_text
from optical.losses.combined import MethodSpec
from optical.storage import atomic_directory, atomic_write_bytes, atomic_write_json, cache_root, check_output_dir
from optical.study.config import ModelSpec, StudyConfig
from optical.study.executor import Concurrency, LocalExecutor, RayExecutor, RunTask
from optical.study.grid import StudyPlan, StudyRun, expand
from optical.study.layout import DISTILL_DIR, MANIFEST, RUN_JSON, RUNS_DIR, eval_dir_name
from optical.study.manifest import MANIFEST_FORMAT, StudyState
from optical.study.status import RunStatus, run_status
from optical.train.record import RunRecord

MODELS_DIR = "models"
#: Assumed training throughput when no finished run in the store says otherwise: a pilot on a
#: 2-core CPU took about 2 s per multilingual-e5-small OT step of batch 32 at max length 64
#: (frozen word embeddings), i.e. 16 pairs/s.
DEFAULT_PAIRS_PER_SECOND = 16.0
#: Assumed fixed cost of one distillation besides its steps (model loading, teacher cache, dev
#: selection) when no finished run says otherwise.
DEFAULT_DISTILL_OVERHEAD_S = 60.0
#: Assumed wall time of one evaluation when no finished eval.json of the same teacher says otherwise.
DEFAULT_EVAL_SECONDS = 90.0


def default_store() -> Path:
    return cache_root() / "study_runs"


@dataclass
class RunEstimate:
    seconds: float
    basis: str


@dataclass
class DryRun:
    """What ``--dry-run`` shows: every run, its status and an estimate of the remaining time."""

    plan: StudyPlan
    statuses: list[RunStatus]
    estimates: dict[str, RunEstimate]
    total_seconds: float
    concurrency: Concurrency
    rate_notes: list[str] = field(default_factory=list)
    #: ``--stop-after`` seconds, if given: the render says how many pending runs would start within it.
    stop_after: float | None = None

    def runs_started_within(self, seconds: float) -> int:
        """How many pending runs, in study order, would start within ``seconds`` by these estimates: each run takes
        the slot that frees first (as the executors hand runs out), one slot where the cluster decides."""
        slots = [0.0] * (self.concurrency.runs_at_once or 1)
        started = 0
        for status in self.statuses:
            estimate = self.estimates.get(status.run.run_id)
            if estimate is None:
                continue
            free = min(range(len(slots)), key=slots.__getitem__)
            if slots[free] >= seconds:
                break
            slots[free] += estimate.seconds
            started += 1
        return started

    def render(self) -> str:
        trials = any(s.run.trial is not None for s in self.statuses)
        header = ("id", "lang", "method", *(("trial",) if trials else ()), "seed", "budget", "noise", "backbone", "domain")
        header += ("query_noise", "status", "est")
        rows = [header]
        for status in self.statuses:
            run = status.run
            d = run.describe()
            estimate = self.estimates.get(run.run_id)
            rows.append(
                (
                    run.run_id,
                    run.lang,
                    run.method,
                    *((run.trial or "-",) if trials else ()),
                    cell_text(d["seed"]),
                    cell_text(d["budget"]),
                    cell_text(run.noise),
                    run.backbone,
                    cell_text(run.domain),
                    ",".join(f"{q:g}" for q in run.query_noises),
                    status.label,
                    _duration(estimate.seconds) if estimate and not status.done else "-",
                )
            )
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        pending = sum(1 for s in self.statuses if not s.done)
        lines.append("")
        at_once = self.concurrency.runs_at_once
        threads = f"{self.concurrency.threads_per_run} thread{'s' if self.concurrency.threads_per_run > 1 else ''}"
        how = {
            None: f"the runs' time one after another, {threads} each: the cluster decides how many run at once",
            1: f"one run at a time, {threads}",
        }.get(at_once, f"{at_once} runs at once, {threads} each")
        lines.append(
            f"{len(self.statuses)} runs: {len(self.statuses) - pending} done, {pending} to run; "
            f"estimated time to finish: {_duration(self.total_seconds)} ({how})"
        )
        if self.stop_after is not None and pending:
            lines.append(
                f"with --stop-after {_duration(self.stop_after)}: about {self.runs_started_within(self.stop_after)} of the "
                f"{pending} pending runs start"
            )
        for cell in self.plan.skipped:
            lines.append(f"skipped: {cell.lang} / {cell.backbone} / {cell.domain}: {cell.reason}")
        lines += [f"rates: {note}" for note in self.rate_notes]
        return "\n".join(lines)


@dataclass
class StudyResult:
    study_dir: Path
    store: Path
    statuses: list[RunStatus]
    failures: dict[str, str]
    seconds: float
    #: Pending runs that ``stop_after`` kept from starting (0: every pending run was started).
    not_started: int = 0

    @property
    def state(self) -> StudyState:
        if self.failures:
            return StudyState.FAILED
        return StudyState.STOPPED if self.not_started else StudyState.COMPLETE


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``2h30m``, ``45m``, ``1.5h`` or ``600s`` (``--stop-after``).

    >>> parse_duration("2h30m"), parse_duration("90s"), parse_duration("1.5h")
    (9000.0, 90.0, 5400.0)
    """
    match = _DURATION.fullmatch(text.strip())
    if not match or not any(match.groups()):
        raise OpticalError(f"--stop-after {text}: expected a duration such as 2h30m, 45m, 1.5h or 600s")
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def _until(
    tasks: list[RunTask], deadline: float | None, started: list[RunTask], clock: Callable[[], float] = time.perf_counter
) -> Iterator[RunTask]:
    """The tasks in order, none once ``deadline`` (on ``clock``) has passed; each one handed out is appended to
    ``started``. Executors draw tasks as slots free up, so a run starts only while there is time."""
    for task in tasks:
        if deadline is not None and clock() >= deadline:
            return
        started.append(task)
        yield task


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _export_dir(config: StudyConfig, from_export: str | Path | None) -> Path | None:
    if from_export is not None:
        path = Path(from_export)
        if not (path / MANIFEST).is_file():
            raise OpticalError(f"--from-export {path}: no {MANIFEST} there; pass the dir written by `optical study export`")
        return path
    if not config.export:
        return None
    path = Path(config.export)
    if path.exists() and not path.is_dir():
        raise OpticalError(f"{config.source}: export {path} is a file; name the dir that `optical study export` writes")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file():
        raise OpticalError(f"{config.source}: export {path} holds no {MANIFEST}: not a study export; name another dir")
    return path if (path / MANIFEST).is_file() else None  # an export not written yet: nothing to adopt


def _exported_status(run: StudyRun, export_dir: Path | None) -> RunStatus | None:
    """What an export holds of ``run`` (None: no export, or the run is not in it)."""
    source = export_dir / RUNS_DIR / run.run_id if export_dir is not None else None
    return run_status(run, source) if source is not None and source.is_dir() else None


def adopt_exported(run: StudyRun, run_dir: Path, export_dir: Path) -> bool:
    """Copy ``run``'s finished distillation record and evaluations from an export into its store entry.

    Only a run the export holds complete is adopted (its run.json says completed, every typo rate of the
    run is evaluated), and only into an entry that is not complete already. The weights are not in an
    export: evaluating a new typo rate of an adopted run is refused in one line (rerun it with the weights).
    """
    source = export_dir / RUNS_DIR / run.run_id
    exported = _exported_status(run, export_dir)
    if exported is None or not exported.done or run_status(run, run_dir).done:
        return False
    parts = ([] if run.is_zero_shot else [Path(DISTILL_DIR) / RUN_JSON]) + [Path(eval_dir_name(q)) for q in run.query_noises]
    for part in parts:
        target = run_dir / part
        if (source / part).is_dir():
            with atomic_directory(target) as building:
                shutil.copytree(source / part, building, dirs_exist_ok=True)
        else:
            atomic_write_bytes(target, (source / part).read_bytes())
    return True


def check_plan(config: StudyConfig, pending: list[StudyRun], require_data: bool = True) -> None:
    """Refuse, before the first run starts, what a pending run would refuse at its own start: its DistillConfig values
    (seed, learning rate, licence classes, ...), its device and precision, local model dirs, the data dir, and its
    budget against the bitext it would read (one read of each bitext, a fraction of a second). A study of hours should
    not stop at its fortieth run on a value that the first could have named.

    Runs already done (in the store or the export) are not checked, so a finished study reruns without its data.
    Without ``require_data`` (a dry run, which estimates on a machine that may not have the data yet), a missing data
    dir skips the data checks instead of refusing; a data dir that is there but lacks a language's bitext is refused
    in both cases."""
    from optical.data.bitext import build_bitext
    from optical.data.datadir import resolve_data_dir
    from optical.models.registry import check_model_available
    from optical.train.precision import check_device, check_precision

    distills = [run for run in pending if run.distill is not None]
    by_device: dict[tuple[str, str], StudyRun] = {}
    for run in distills:
        try:
            run.distill.validate()
        except OpticalError as exc:
            raise OpticalError(f"{config.source}: {_run_label(run)}: {exc}") from None
        by_device.setdefault((run.distill.device, run.distill.mixed_precision), run)
    for (device, precision), run in by_device.items():
        try:
            check_device(device)
            check_precision(device, precision)
        except OpticalError as exc:
            raise OpticalError(f"{config.source}: {_run_label(run)}: {exc}") from None
    backbones = {run.backbone for run in distills}  # only those a pending run trains: a finished study reruns as it is
    models = [("teacher", config.teacher)] if pending else []
    models += [(f"backbones.{name}", spec) for name, spec in config.backbones.items() if name in backbones]
    for where, spec in models:
        if spec.tiny is None:
            check_model_available(str(spec.name), role=f"{config.source}: {where}")
    if not pending:
        return
    try:
        data_dir = resolve_data_dir(config.data_dir)
    except OpticalError as exc:
        if not require_data:
            return
        raise OpticalError(f"{config.source}: data_dir {config.data_dir}: {exc}" if config.data_dir else str(exc)) from None
    # Per bitext (language, sources, licences), the run asking for the most pairs: a numeric budget over "all"
    # (None), which only needs the pool to be non-empty.
    largest: dict[tuple, StudyRun] = {}
    for run in distills:
        bitext = run.distill.bitext_config()
        key = (bitext.lang, tuple(bitext.sources or ()), tuple(bitext.license_classes))
        held = largest.get(key)
        if held is None or _pairs_asked(run) > _pairs_asked(held):
            largest[key] = run
    for run in largest.values():
        try:
            build_bitext(data_dir, run.distill.bitext_config())
        except OpticalError as exc:
            raise OpticalError(f"{config.source}: {_run_label(run)}: {exc}") from None


def _pairs_asked(run: StudyRun) -> tuple[bool, int]:
    """Orders runs by the pairs their budget asks for: a numeric budget above ``all`` (only a number can exceed the
    bitext), larger numbers higher."""
    return (run.budget is not None, run.budget or 0)


def _statuses_before_adoption(plan: StudyPlan, store: Path, export_dir: Path | None) -> list[RunStatus]:
    """Each planned run's status in the store, or in the export where the store lacks it finished; reads only."""
    statuses = []
    for run in plan.runs:
        status = run_status(run, store / run.run_id)
        exported = _exported_status(run, export_dir) if not status.done else None
        statuses.append(exported if exported is not None and exported.done else status)
    return statuses


def _run_label(run: StudyRun) -> str:
    return f"the run of {run.lang} {run.method} seed {run.seed} budget {run.budget or 'all'} domain {run.domain}"


def prepare_models(config: StudyConfig, store: Path, build: bool) -> dict[str, str]:
    """Model label -> what DistillConfig/EvalConfig take (a default name, a dir, a built tiny model)."""
    from optical.models.tiny import make_tiny_model  # torch-heavy; only when models are needed

    specs: list[ModelSpec] = [config.teacher, *config.backbones.values()]
    models: dict[str, str] = {}
    for spec in specs:
        if spec.tiny is None:
            models[spec.label] = str(spec.name)
            continue
        target = store / MODELS_DIR / spec.label
        if build and not (target / "config.json").is_file():
            make_tiny_model(target, **spec.tiny_options)
        models[spec.label] = str(target)
    return models


def _link(study_dir: Path, store: Path, run_id: str) -> Path:
    """``STUDY_DIR/runs/<id>``: a symlink to the store entry (which is where the run is computed)."""
    target = (store / run_id).resolve()
    target.mkdir(parents=True, exist_ok=True)
    link = study_dir / RUNS_DIR / run_id
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == target:
        return link
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        raise OpticalError(f"{link} is a directory, not a link into the run store; move it away and rerun")
    os.symlink(target, link, target_is_directory=True)
    return link


def _manifest(
    config: StudyConfig, plan: StudyPlan, statuses: list[RunStatus], store: Path, state: StudyState, failures: dict[str, str]
) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "study": config.name,
        "config_source": config.source,
        "config": config.raw,
        "reference": {**config.reference, "budget": "all" if config.reference["budget"] is None else config.reference["budget"]},
        "resource_groups": config.resource_groups,
        "store": str(store),
        "status": state.value,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "runs": [
            {
                **s.run.describe(),
                "status": "failed" if s.run.run_id in failures else s.label,
                "error": failures.get(s.run.run_id),
                "path": f"{RUNS_DIR}/{s.run.run_id}",
                "distill_dir": None if s.run.is_zero_shot else f"{RUNS_DIR}/{s.run.run_id}/{DISTILL_DIR}",
                "eval_dirs": {f"{q:g}": f"{RUNS_DIR}/{s.run.run_id}/{eval_dir_name(q)}" for q in s.run.query_noises},
            }
            for s in statuses
        ],
        "skipped": [cell.__dict__ for cell in plan.skipped],
    }


def _resolve_store(config: StudyConfig, store: str | Path | None) -> Path:
    return Path(store or config.store or default_store()).expanduser()


def dry_run(
    config: StudyConfig,
    study_dir: str | Path | None = None,
    store: str | Path | None = None,
    from_export: str | Path | None = None,
    executor: LocalExecutor | RayExecutor | None = None,
    stop_after: float | None = None,
) -> DryRun:
    """List the runs with their status and estimate the time the pending ones need (and with ``stop_after``, how many
    would start within it); writes nothing.

    It refuses what :func:`run_study` would refuse (the study dir, the store, the export), and a run counts as done
    when the store or the export holds it finished, as it would in a real run (:func:`adopt_exported`). Each run's
    time comes from finished runs that had the threads ``executor`` will give it (:class:`Concurrency`), and the
    total divides the runs' time by how many run at once."""
    store_path = _resolve_store(config, store)
    if study_dir is not None:
        check_study_dirs(config, Path(study_dir), store_path)
    export_dir = _export_dir(config, from_export)
    plan = expand(config)
    statuses = _statuses_before_adoption(plan, store_path, export_dir)
    check_plan(config, [status.run for status in statuses if not status.done], require_data=False)
    concurrency = (executor or LocalExecutor()).concurrency()
    rates = _MeasuredRates.from_runs(store_path, export_dir, concurrency)
    estimates = {}
    for status in statuses:
        if not status.done:
            estimates[status.run.run_id] = rates.estimate(status, config)
    seconds = [e.seconds for e in estimates.values()]
    # Several at once: the runs' time shared among the slots, but never less than the longest run takes alone.
    total = max(sum(seconds) / (concurrency.runs_at_once or 1), max(seconds, default=0.0))
    return DryRun(plan, statuses, estimates, total, concurrency, rates.notes(estimates), stop_after)


class _MeasuredRates:
    """Throughputs read from finished runs (run.json, eval.json) of the store and the export, at each tier of
    likeness preferring runs that had the planned torch threads. A record written before the thread count was stored
    counts as a run at this machine's default (``default_threads``): until then, studies ran one run at a time. A run
    with more threads than the planned ones have cores is slowed in proportion (on 2 cores, two 1-thread e5-small runs
    at once each trained at 0.61 of one 2-thread run's pairs/s, so proportion, 0.5, is the cautious guess); a run
    with fewer is not sped up (threads rarely scale that well)."""

    def __init__(self, distills: list[RunRecord], evals: list[dict], planned: Concurrency, default_threads: int) -> None:
        self.distills, self.evals = distills, evals
        self.planned, self.default_threads = planned, default_threads

    def _speed_ratio(self, recorded: int | None) -> float:
        """A planned run's speed over that of a finished run with ``recorded`` threads (at most 1)."""
        return min(1.0, self.planned.cores_per_run / (recorded or self.default_threads))

    def _same_threads(self, recorded: int | None) -> bool:
        return (recorded or self.default_threads) == self.planned.threads_per_run

    @classmethod
    def from_runs(cls, store: Path, export_dir: Path | None, planned: Concurrency) -> _MeasuredRates:
        """The finished runs of the store, and those of the study's export that the store lacks: on a new machine
        the store is empty, and the committed export is where the rates of the finished slices are."""
        import torch

        roots = [store] + ([export_dir / RUNS_DIR] if export_dir is not None else [])
        run_dirs: dict[str, Path] = {}  # a run in both: the store's copy
        for root in filter(Path.is_dir, roots):
            for run_dir in sorted(root.iterdir()):
                run_dirs.setdefault(run_dir.name, run_dir)
        distills, evals = [], []
        for run_dir in run_dirs.values():
            record = RunRecord.find(run_dir / DISTILL_DIR / RUN_JSON)
            if record and record.completed and record.result.pairs_per_second:
                distills.append(record)
            for eval_json in sorted(run_dir.glob(f"eval-*/{EVAL_JSON}")):
                info = _read_json(eval_json)
                if info and info.get("timings", {}).get("wall_seconds"):
                    evals.append(info)
        return cls(distills, evals, planned, torch.get_num_threads())

    def _distill_rate(self, config: dict) -> tuple[float, float, str]:
        """(pairs/s, overhead s, basis) from the closest finished runs. Precision comes first after the student
        and the method, before the teacher: bf16 runs train about twice as fast as fp32 ones on a CPU that has it,
        while the teacher's token embeddings come from its cache, so the teacher barely changes a step's cost."""
        keys = (
            ("student", "teacher", "method", "mixed_precision", "batch_size", "max_length"),
            ("student", "teacher", "method", "mixed_precision"),
            ("student", "method", "mixed_precision", "batch_size", "max_length"),
            ("student", "teacher", "method", "batch_size", "max_length"),
            ("student", "teacher", "method"),
            ("student", "teacher"),
        )

        for key in keys:
            matches = [d for d in self.distills if all(_same_value(k, getattr(d.config, k), config.get(k)) for k in key)]
            if not matches:
                continue
            alike = [d for d in matches if self._same_threads(d.torch_threads)]
            chosen = alike or matches
            # Medians: a run that shared the machine or sat paused (SIGSTOP counts as training time) is an outlier,
            # not a rate.
            pps = statistics.median(d.result.pairs_per_second * self._speed_ratio(d.torch_threads) for d in chosen)
            overhead = statistics.median(d.timings.overhead_seconds for d in chosen)
            at_threads = "" if alike else f", at other thread counts than {self.planned.threads_per_run}"
            return pps, overhead, f"measured ({len(chosen)} runs, same {'/'.join(key)}{at_threads})"
        return DEFAULT_PAIRS_PER_SECOND, DEFAULT_DISTILL_OVERHEAD_S, "default"

    def _eval_seconds(self, teacher: str, tasks: list[str], precision: str) -> tuple[float, str]:
        """Median wall seconds of the finished evaluations of the same tasks, of the same teacher and precision where
        there are some (bf16 encodes long passages about 2.7 times as fast as fp32 on a CPU that has it), then of
        another teacher at the same precision (the teacher's document embeddings come from its cache, so the
        student's forward passes dominate), then of the same teacher at any precision, then of any evaluation of
        those tasks."""
        same_tasks = [e for e in self.evals if sorted(e.get("config", {}).get("eval", {}).get("tasks", [])) == sorted(tasks)]
        same_teacher = [e for e in same_tasks if _same_model(e.get("teacher"), teacher)]

        def at_precision(evals: list[dict]) -> list[dict]:
            return [e for e in evals if {**LEGACY_EVAL_VALUES, **e["config"]["eval"]}["mixed_precision"] == precision]

        tiers = (
            (at_precision(same_teacher), "same teacher and precision"),
            (at_precision(same_tasks), "same precision, another teacher"),
            (same_teacher, "same teacher, any precision"),
            (same_tasks, "another teacher and precision"),
        )
        for chosen, basis in tiers:
            if chosen:
                alike = [e for e in chosen if self._same_threads(e["timings"].get("torch_threads"))]
                at_threads = "" if alike else f", at other thread counts than {self.planned.threads_per_run}"
                seconds = statistics.median(
                    e["timings"]["wall_seconds"] / self._speed_ratio(e["timings"].get("torch_threads")) for e in alike or chosen
                )
                return seconds, f"measured ({len(alike or chosen)} evals, {basis}{at_threads})"
        return DEFAULT_EVAL_SECONDS, "default"

    def estimate(self, status: RunStatus, config: StudyConfig) -> RunEstimate:
        run = status.run
        teacher = config.teacher.label
        tasks = run.eval_base.get("tasks") or ["clir_sentence", "clir_paragraph", "pool", "retention", "align"]
        precision = {**LEGACY_EVAL_VALUES, **run.eval_base}["mixed_precision"]
        eval_s, eval_basis = self._eval_seconds(teacher, tasks, precision)
        seconds = eval_s * (len(run.query_noises) - len(status.evaluated))
        basis = f"eval {eval_basis}"
        if not run.is_zero_shot and not status.distilled:
            assert run.distill is not None
            values = run.distill.resolved().to_dict()  # stored runs hold the precision that auto became
            pps, overhead, distill_basis = self._distill_rate(values)
            pairs = run.budget if run.budget is not None else _available_pairs(config, run)
            seconds += overhead + run.distill.epochs * pairs / pps
            basis = f"distill {distill_basis}; {basis}"
        return RunEstimate(seconds, basis)

    def notes(self, estimates: dict[str, RunEstimate]) -> list[str]:
        finished = f"{len(self.distills)} finished distill runs and {len(self.evals)} finished evaluations"
        notes = [f"{finished} in the store and the export"]
        if any("distill default" in e.basis for e in estimates.values()):
            notes.append(
                f"no matching finished distill run: assumed {DEFAULT_PAIRS_PER_SECOND:g} pairs/s "
                "(pilot: ~2 s per e5-small OT step, batch 32, max length 64, 2-core CPU) "
                f"and {DEFAULT_DISTILL_OVERHEAD_S:g} s per run for loading and the teacher cache"
            )
        if any("eval default" in e.basis for e in estimates.values()):
            notes.append(f"no matching finished evaluation: assumed {DEFAULT_EVAL_SECONDS:g} s per evaluation")
        return notes


def _same_value(key: str, stored: Any, wanted: Any) -> bool:
    """Whether a finished run's config value matches the planned one: methods by their parsed terms
    (``ot:1+mse:0.5`` is ``ot+mse:0.5``), models by :func:`_same_model`, the rest exactly."""
    if key == "method":
        return MethodSpec.parse(stored) == MethodSpec.parse(wanted)
    return _same_model(stored, wanted)


def _same_model(stored: Any, wanted: Any) -> bool:
    """A stored config holds a model path where the plan holds a label; tiny dirs end in their label."""
    if stored == wanted:
        return True
    return isinstance(stored, str) and isinstance(wanted, str) and Path(stored).name == wanted


def _available_pairs(config: StudyConfig, run: StudyRun) -> int:
    """An upper bound of the pairs a budget of 'all' takes: the lines of the domain's files."""
    from optical.data.datadir import data_dir_location
    from optical.data.sources import bitext_relpath

    assert run.distill is not None
    location = data_dir_location(config.data_dir)
    total = 0
    for source in run.distill.sources:
        path = location / bitext_relpath(source, run.lang)
        if path.is_file():
            with path.open("rb") as fh:
                total += sum(1 for _ in fh)
    return total or 10_000


def check_study_dirs(config: StudyConfig, study_dir: Path, store: Path) -> None:
    """Refuse a study dir or store that cannot be written, or a study dir holding something else
    (another study, or files that are not a study); creates nothing.

    A revised config of the same study (same ``study:`` name, e.g. a widened tuning grid or a pinned setting) is
    accepted: run ids name everything a run depends on, so the finished runs it still asks for are kept and the
    rest are unlinked from the study dir by :func:`_unlink_stale_runs` (they stay in the store)."""
    check_output_dir(study_dir, "--out")
    check_output_dir(store, "--store")
    if study_dir.is_dir() and any(study_dir.iterdir()):
        if not (study_dir / MANIFEST).is_file():
            raise OpticalError(f"--out {study_dir} is not empty and holds no study (no {MANIFEST}); pick another --out")
        held = _read_json(study_dir / MANIFEST)
        if not isinstance(held, dict):
            raise OpticalError(f"{study_dir / MANIFEST} is damaged; pick another --out or delete it")
        if held.get("study") not in (None, config.name):
            raise OpticalError(
                f"{study_dir} holds another study ({held['study']!r}, not {config.name!r}); pick another "
                f"--out, or delete {study_dir} (its finished runs stay in the store {store} and are adopted by any "
                "config that asks for them)"
            )


def _unlink_stale_runs(study_dir: Path, plan_ids: set[str]) -> list[str]:
    """Remove the links of ``study_dir/runs`` that the (revised) config no longer asks for; returns their ids.

    Only symlinks go: a run's files live in the store, where another config may adopt them again."""
    runs_dir = study_dir / RUNS_DIR
    if not runs_dir.is_dir():
        return []
    stale = sorted(link.name for link in runs_dir.iterdir() if link.is_symlink() and link.name not in plan_ids)
    for run_id in stale:
        (runs_dir / run_id).unlink()
    return stale


def run_study(
    config: StudyConfig,
    study_dir: str | Path,
    store: str | Path | None = None,
    progress: bool = True,
    from_export: str | Path | None = None,
    executor: LocalExecutor | RayExecutor | None = None,
    stop_after: float | None = None,
) -> StudyResult:
    """Run every unfinished run of the study and write ``study.json`` as it goes.

    ``stop_after`` (seconds): start no run once that long has passed since the call; the runs already started finish,
    the study is left :attr:`StudyState.STOPPED`, and the same call later goes on with the rest (a session-sized slice).

    Runs held by a committed export (``from_export``, else the config's ``export`` where that dir exists) count as
    done: their run.json and evaluations are copied into the store (:func:`adopt_exported`), so a slice finished in
    one session is never recomputed in the next, on a new machine too. ``executor`` computes the pending runs
    (default: :class:`LocalExecutor`, one after another here; :class:`RayExecutor` fans them out). The report is
    written by :func:`optical.report.write_study_report` (the CLI calls it after this).
    """
    started = time.perf_counter()
    study_dir = Path(study_dir)
    store_path = _resolve_store(config, store)
    check_study_dirs(config, study_dir, store_path)
    export_dir = _export_dir(config, from_export)
    plan = expand(config)
    check_plan(config, [status.run for status in _statuses_before_adoption(plan, store_path, export_dir) if not status.done])
    study_dir.mkdir(parents=True, exist_ok=True)
    models = prepare_models(config, store_path, build=True)
    # Unlinked only once nothing can refuse the run any more, right before the new manifest replaces the old one.
    stale = _unlink_stale_runs(study_dir, {run.run_id for run in plan.runs})
    if stale and progress:
        print(f"{study_dir}: the config no longer asks for {len(stale)} run(s); unlinked (kept in the store)", file=sys.stderr)
    links = [_link(study_dir, store_path, run.run_id) for run in plan.runs]
    if export_dir is not None:
        for run, link in zip(plan.runs, links):
            adopt_exported(run, link, export_dir)
    statuses = [run_status(run, link) for run, link in zip(plan.runs, links)]
    failures: dict[str, str] = {}
    atomic_write_json(study_dir / MANIFEST, _manifest(config, plan, statuses, store_path, StudyState.RUNNING, failures))

    executor = executor or LocalExecutor(progress=progress)
    tasks = [RunTask(s.run, s.path, models, config.data_dir, config.keeps_weights(s.run)) for s in statuses if not s.done]
    position = {s.run.run_id: index for index, s in enumerate(statuses)}
    bar = tqdm(
        total=len(statuses),
        initial=len(statuses) - len(tasks),
        desc=f"study {config.name} [{executor.describe()}]",
        unit="run",
        disable=not progress,
        position=0,
    )
    deadline = None if stop_after is None else started + stop_after
    handed_out: list[RunTask] = []
    for outcome in executor.run(_until(tasks, deadline, handed_out)):
        index = position[outcome.run_id]
        if outcome.error is not None:
            failures[outcome.run_id] = outcome.error
        statuses[index] = run_status(statuses[index].run, statuses[index].path)
        bar.set_postfix_str(f"{statuses[index].run.method} {statuses[index].run.lang} seed {statuses[index].run.seed}")
        bar.update(1)
        atomic_write_json(study_dir / MANIFEST, _manifest(config, plan, statuses, store_path, StudyState.RUNNING, failures))
    bar.close()
    result = StudyResult(study_dir, store_path, statuses, failures, time.perf_counter() - started, len(tasks) - len(handed_out))
    atomic_write_json(study_dir / MANIFEST, _manifest(config, plan, statuses, store_path, result.state, failures))
    return result
