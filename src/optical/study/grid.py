"""Expand a study config into runs: one :class:`StudyRun` per distillation (with its evaluations).

A run's id is a hash of everything that determines its results: the
distillation (:meth:`DistillConfig.training_fingerprint`, with model specs in
place of their on-disk paths) and the evaluation settings. Query noise is not
part of the id: the evaluations at each typo rate are variants inside the run
(``eval-<rate>``), so a study that adds a typo rate reuses the student.
The zero-shot system (the teacher as query encoder) does not depend on a
student backbone, so one zero-shot run per language serves every backbone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optical.data.sources import get_source
from optical.errors import OpticalError
from optical.eval.evaluate import LEGACY_EVAL_VALUES, EvalConfig
from optical.eval.tasks import TASKS, supported_tasks
from optical.losses.combined import MethodSpec
from optical.study.config import ZERO_SHOT, StudyConfig, run_distill_values
from optical.study.layout import DISTILL_DIR, eval_dir_name
from optical.train.config import DistillConfig
from optical.train.precision import resolve_precision


@dataclass(frozen=True)
class StudyRun:
    """One distillation run (or the zero-shot system) with its evaluations at each query-noise rate.

    ``distill`` holds model labels (see :attr:`ModelSpec.label`) for teacher
    and student and an empty ``out_dir``; :meth:`distill_config` fills in the
    real paths. ``budget`` None means every usable pair; the bitext fields are
    None for zero-shot.
    """

    run_id: str
    lang: str
    method: str
    backbone: str
    query_noises: tuple[float, ...]
    eval_base: dict[str, Any]
    seed: int | None = None
    budget: int | None = None
    noise: float | None = None
    domain: str | None = None
    distill: DistillConfig | None = None
    #: The tuning trial (a cell's ``trial``) whose DistillConfig values the run takes; None outside tuning.
    trial: str | None = None

    @property
    def is_zero_shot(self) -> bool:
        return self.method == ZERO_SHOT

    @property
    def method_spec(self) -> MethodSpec | None:
        """The parsed loss method (its terms and weights; a variant's own method); None for zero-shot."""
        return None if self.distill is None else self.distill.method_spec

    def distill_config(self, run_dir: Path, models: dict[str, str], data_dir: str | None) -> DistillConfig:
        assert self.distill is not None
        return dataclasses.replace(
            self.distill,
            out_dir=str(run_dir / DISTILL_DIR),
            teacher=models[self.distill.teacher],
            student=models[self.distill.student] if self.distill.student else None,
            data_dir=data_dir,
        )

    def eval_config(self, run_dir: Path, query_noise: float, models: dict[str, str], data_dir: str | None) -> EvalConfig:
        values = {**LEGACY_EVAL_VALUES, **self.eval_base}
        values["teacher"] = models[values["teacher"]]
        return EvalConfig(
            student=ZERO_SHOT if self.is_zero_shot else str(run_dir / DISTILL_DIR),
            out_dir=str(run_dir / eval_dir_name(query_noise)),
            query_noise=query_noise,
            system=self.method if self.trial is None else f"{self.method} [{self.trial}]",
            data_dir=data_dir,
            **values,
        )

    def describe(self) -> dict[str, Any]:
        """The run's grid coordinates, as stored in ``study.json``."""
        return {
            "id": self.run_id,
            "lang": self.lang,
            "method": self.method,
            "seed": self.seed,
            "budget": "all" if self.budget is None and not self.is_zero_shot else self.budget,
            "noise": self.noise,
            "backbone": self.backbone,
            "domain": self.domain,
            "query_noises": list(self.query_noises),
        } | ({"trial": self.trial} if self.trial is not None else {})  # absent outside tuning: older manifests stay as they were


@dataclass(frozen=True)
class SkippedCell:
    """A grid point that cannot run (e.g. a domain with no bitext for the language)."""

    lang: str
    backbone: str
    domain: str
    reason: str


@dataclass
class StudyPlan:
    runs: list[StudyRun]
    skipped: list[SkippedCell]

    def by_id(self) -> dict[str, StudyRun]:
        return {run.run_id: run for run in self.runs}


def _eval_identity(eval_values: dict[str, Any]) -> dict[str, Any]:
    """The evaluation settings as a run id hashes them: ``mixed_precision`` made concrete for this machine (an
    ``auto`` study and one naming the same precision share runs) and left out at fp32, the precision of every
    evaluation recorded before it was a setting, so those runs keep their ids."""
    values = dict(eval_values)
    precision = resolve_precision(values.get("device", "auto"), values.pop("mixed_precision", "auto"))
    return values if precision == LEGACY_EVAL_VALUES["mixed_precision"] else {**values, "mixed_precision": precision}


def _language_eval(eval_base: dict[str, Any], lang: str) -> dict[str, Any]:
    """The evaluation settings of one language's runs: the study's tasks that the language has data for (a study
    over the resource spectrum asks for CLIR and pool, which only the XQuAD-R languages have, and the alignment,
    which every mirror language has). ``tasks`` changes only where a task is dropped, so other runs keep their ids."""
    values = {**eval_base, "langs": [lang]}
    asked = list(values.get("tasks") or [str(task) for task in TASKS])
    kept = supported_tasks(asked, lang)
    if not kept:
        raise OpticalError(f"language {lang} has data for none of the study's evaluation tasks ({', '.join(asked)}); add align")
    if kept != asked:
        values["tasks"] = kept
    return values


def _hash(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def expand(config: StudyConfig) -> StudyPlan:
    """Every run of the study, in a stable order, without duplicates.

    Zero-shot runs come first, then the runs of the first cell, then those the second cell adds, and so on;
    within a cell, the order the axes list their values in. A study's cells are its slices (the reference
    cross, then each arm), so an interrupted study has finished whole slices first.
    """
    teacher_label = config.teacher.label
    runs: dict[str, StudyRun] = {}
    query_noises: dict[str, list[float]] = {}
    skipped: dict[tuple[str, str, str], SkippedCell] = {}
    first_cell: dict[str, int] = {}
    for cell, grid in enumerate(config.grids):
        eval_base = _eval_identity({**config.base_eval, "langs": None, "teacher": teacher_label})
        for lang, backbone in itertools.product(grid.languages, grid.backbones):
            for method in grid.methods:
                if method != ZERO_SHOT:
                    continue
                eval_values = _language_eval(eval_base, lang)
                run_id = _hash({"zero-shot": teacher_label, "eval": eval_values})
                zero_shot = StudyRun(run_id, lang, ZERO_SHOT, backbone, query_noises=(), eval_base=eval_values)
                _add(runs, query_noises, grid.query_noises, zero_shot)
                first_cell.setdefault(run_id, cell)
            for domain in grid.domains:
                sources = [s for s in config.domains[domain] if lang in get_source(s).languages]
                if not sources:
                    skipped[(lang, backbone, domain)] = SkippedCell(
                        lang,
                        backbone,
                        domain,
                        f"no source of domain {domain} ({', '.join(config.domains[domain])}) has en-{lang} pairs",
                    )
                    continue
                student = config.backbones[backbone]
                for method, seed, budget, noise in itertools.product(grid.methods, grid.seeds, grid.budgets, grid.noises):
                    if method == ZERO_SHOT:
                        continue
                    distill = DistillConfig(
                        lang=lang,
                        method=config.loss_method(method),
                        out_dir="",
                        sources=sources,
                        budget=budget,
                        noise=noise,
                        seed=seed,
                        teacher=teacher_label,
                        student=student.label,
                        projection=student.projection,
                        **run_distill_values(config.loss_method(method), config.method_distill(method), grid.distill),
                    )
                    eval_values = _language_eval(eval_base, lang)
                    run_id = _hash({"distill": distill.training_fingerprint(), "eval": eval_values})
                    run = StudyRun(
                        run_id,
                        lang,
                        method,
                        backbone,
                        query_noises=(),
                        eval_base=eval_values,
                        seed=seed,
                        budget=budget,
                        noise=noise,
                        domain=domain,
                        distill=distill,
                        trial=grid.trial,
                    )
                    _add(runs, query_noises, grid.query_noises, run)
                    first_cell.setdefault(run_id, cell)
    ordered = sorted(runs.values(), key=lambda r: (not r.is_zero_shot, first_cell[r.run_id], _position(config, r)))
    finished = [dataclasses.replace(r, query_noises=tuple(sorted(query_noises[r.run_id]))) for r in ordered]
    return StudyPlan(finished, list(skipped.values()))


def _add(runs: dict, query_noises: dict, noises: list[float], run: StudyRun) -> None:
    """Add ``run`` (or, when the same run is already there, only its typo rates)."""
    if run.run_id not in runs:
        runs[run.run_id] = run
        query_noises[run.run_id] = []
    elif runs[run.run_id].method != run.method:
        raise OpticalError(
            f"methods {runs[run.run_id].method!r} and {run.method!r} train the same runs (same settings): a variant must "
            "change something its method does not already have"
        )
    for noise in noises:
        if noise not in query_noises[run.run_id]:
            query_noises[run.run_id].append(noise)


def _position(config: StudyConfig, run: StudyRun) -> tuple:
    """Sort key following the order the axes list their values in."""
    axes = config.axes

    def index(values: list, value: Any) -> int:
        return values.index(value) if value in values else len(values)

    return (
        index(axes.languages, run.lang),
        index(axes.backbones, run.backbone),
        index(axes.domains, run.domain),
        index(axes.budgets, run.budget),
        index(axes.noises, run.noise),
        index(axes.methods, run.method),
        run.seed if run.seed is not None else -1,
    )
