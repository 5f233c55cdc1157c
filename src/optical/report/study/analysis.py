"""A study's records turned into typed results: the arms and their comparisons, verdicts, curves, gaps, training
cost and coverage. No I/O and no formatting: :mod:`optical.report.study.sections` renders these results.

Every test follows the statistics policy of :mod:`optical.eval.stats` (the
same as ``optical compare``, so a pair of systems gets the same mean, CI and
p-value in both): a system's values on a cell are a
:class:`~optical.eval.stats.Sample` over its seeds,
:func:`~optical.eval.stats.summarize` gives its mean and CI,
:func:`~optical.eval.stats.compare` a paired difference, and
:func:`~optical.eval.stats.holm_family` corrects a named family. The families
follow the study's *arms*: the reference condition is one arm, and the
conditions that differ from it in one axis (bitext budget, bitext noise, typo
rate, domain, backbone) form one arm per axis. Within each arm there are up to
four families: OT against each KD baseline, every method against the
zero-shot model, each ablation against ot, and the change from the reference of
OT against that of each baseline (and of zero-shot along the typo rate, the one
axis that changes it). Families stay this small so that Holm can still pass a real
difference (see :func:`~optical.eval.stats.resamples_for_family`).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from optical.eval.results import ZERO_SHOT
from optical.eval.stats import (
    ALPHA,
    CellStats,
    GapStats,
    PairedComparison,
    Sample,
    StatsSettings,
    compare,
    holm_family,
    resamples_for_family,
    resource_gap,
    summarize,
)
from optical.eval.tasks import main_measure, task_spec
from optical.losses.combined import MethodSpec
from optical.report.spectrum import SpectrumComparison, analyse_spectrum, levels_json, spectrum_json
from optical.report.study.grid import AXES, TRAINED, Arm, Condition, GridIndex, axis_order
from optical.report.study.load import DistillRun, StudyInputs
from optical.train.record import RunResult

#: The tasks whose main measure the research-question section compares, in display order.
#: Late-interaction (MaxSim) scorings of a task are rows of their own, after their dense partner.
QUESTION_TASKS = (
    "clir_sentence",
    "clir_sentence_maxsim",
    "clir_paragraph",
    "clir_paragraph_maxsim",
    "pool",
    "pool_maxsim",
    "align_x2en",
    "align_en2x",
)
RETENTION = "retention.en"
BIAS_MEASURES = ("LangShare@10", "GoldRankGap")
KD_FAMILY = "OT vs each KD baseline"
ZERO_SHOT_FAMILY = "each method vs zero-shot"
CHANGE_FAMILY = "change from the reference, OT vs each baseline"
ABLATION_FAMILY = "each ablation vs ot"
#: The method an ablation (another OT method, a variant, or a non-KD method such as hard_align) is compared with.
ABLATION_REFERENCE = "ot"
#: The axes drawn as curves, in the report's order.
CURVE_AXES = ("budget", "noise", "query_noise")


# -- the results ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionRow:
    """One comparison of the research-question section: ``method`` against ``baseline`` on a cell."""

    method: str
    baseline: str
    lang: str
    task: str
    condition: Condition
    comparison: PairedComparison
    #: A comparison of changes from the reference condition to ``condition`` rather than of levels.
    change: bool = False
    #: The systems that kept their initial student in every seed there (for a change, at the reference condition
    #: too): there they are the zero-shot model.
    kept_initial: tuple[str, ...] = ()
    #: The systems whose kept student had collapsed in at least one seed there.
    kept_collapsed: tuple[str, ...] = ()


@dataclass(frozen=True)
class AcrossLanguagesRow:
    """``method`` against ``baseline`` on ``task`` over several languages at once: each question's value averaged over
    ``langs`` first (they ask the same questions), then compared by the policy."""

    method: str
    baseline: str
    task: str
    langs: tuple[str, ...]
    comparison: PairedComparison
    #: A comparison of each system's gain from MaxSim (``task`` is the MaxSim task's with " gain"), not of a level.
    gain: bool = False


@dataclass(frozen=True)
class ArmComparisons:
    """Every comparison of one arm, one Holm family per kind."""

    arm: Arm
    kd: tuple[QuestionRow, ...]
    zero: tuple[QuestionRow, ...]
    ablation: tuple[QuestionRow, ...]
    change: tuple[QuestionRow, ...]

    def families(self) -> tuple[tuple[str, tuple[QuestionRow, ...]], ...]:
        return (
            (KD_FAMILY, self.kd),
            (ZERO_SHOT_FAMILY, self.zero),
            (ABLATION_FAMILY, self.ablation),
            (CHANGE_FAMILY, self.change),
        )


@dataclass(frozen=True)
class GroupMean:
    """A verdict's mean difference over the languages of one resource group."""

    group: str
    langs: tuple[str, ...]
    mean: float
    n: int
    n_significant: int


@dataclass(frozen=True)
class Verdict:
    """How often ``method`` is significantly better / worse than ``baseline`` in one family of an arm, and where."""

    method: str
    baseline: str
    #: The rows compare changes from the reference (``method``'s change minus ``baseline``'s).
    change: bool
    family: str
    family_size: int
    n: int
    #: The significant differences in each direction, the largest first.
    better: tuple[QuestionRow, ...]
    worse: tuple[QuestionRow, ...]
    groups: tuple[GroupMean, ...]

    @property
    def ties(self) -> int:
        return self.n - len(self.better) - len(self.worse)


@dataclass(frozen=True)
class CollapseCaveat:
    """``system``'s kept student had collapsed in some seeds of a training condition: (lang, collapsed, seeds)."""

    system: str
    condition: Condition
    seeds: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class InitialCaveat:
    """``system`` kept its initial student in every seed for ``langs`` in a training condition."""

    system: str
    condition: Condition
    langs: tuple[str, ...]


@dataclass(frozen=True)
class TaskGap:
    """``high - low`` resource of one system (or of one difference) on one task's main measure."""

    task: str
    measure: str
    system: str
    gap: GapStats


@dataclass(frozen=True)
class ResourceContrast:
    """At the reference: ``method - baseline`` on the low- against the high-resource languages, per task."""

    method: str
    baseline: str
    low: tuple[str, ...]
    high: tuple[str, ...]
    gaps: tuple[TaskGap, ...]


@dataclass(frozen=True)
class FamilyWarning:
    """A Holm family too large for the resamples drawn: no p-value can pass it."""

    family: str
    size: int
    needed: int


@dataclass(frozen=True)
class HeadlineTally:
    """The headline method against one baseline on one task: cells ahead, behind, level (Holm, within the arm)."""

    baseline: str
    task: str
    cell: GlanceCell


@dataclass(frozen=True)
class Headline:
    """An arm at a glance: one OT method against the comparisons that matter (the sentence-level regression KD
    baseline, the strongest other KD baseline, and zero-shot), per task, language and condition."""

    method: str
    baselines: tuple[str, ...]
    rows: tuple[QuestionRow, ...]
    tallies: tuple[HeadlineTally, ...]

    def tally(self, baseline: str, task: str) -> GlanceCell | None:
        return next((t.cell for t in self.tallies if (t.baseline, t.task) == (baseline, task)), None)


@dataclass(frozen=True)
class ArmAnswer:
    comparisons: ArmComparisons
    collapse_caveats: tuple[CollapseCaveat, ...]
    initial_caveats: tuple[InitialCaveat, ...]
    verdicts: tuple[Verdict, ...]
    contrasts: tuple[ResourceContrast, ...]
    warnings: tuple[FamilyWarning, ...]
    #: Every OT method against each KD baseline and zero-shot: the arm's full forest.
    forest: tuple[QuestionRow, ...]
    #: None when the arm has no comparison of the headline method.
    headline: Headline | None

    @property
    def arm(self) -> Arm:
        return self.comparisons.arm


@dataclass(frozen=True)
class GlanceCell:
    """One pair on one task in one family: cells significantly better / worse, all cells, the mean difference."""

    better: int
    worse: int
    n: int
    mean: float
    n_initial: int
    n_collapsed: int


@dataclass(frozen=True)
class GlanceRow:
    arm: str
    method: str
    baseline: str
    change: bool
    #: One per question task; None where the pair has no comparison on it.
    cells: tuple[GlanceCell | None, ...]


@dataclass(frozen=True)
class QuestionAnswer:
    """The research question's comparisons; no arm when the study lacks an OT method or a KD baseline."""

    trained: tuple[str, ...]
    arms: tuple[ArmAnswer, ...]
    glance: tuple[GlanceRow, ...]
    #: The OT method of the headline figures and its KD baselines there (see :class:`Headline`).
    headline_method: str = ""
    headline_kd: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.arms)

    @property
    def levels(self) -> list[QuestionRow]:
        return [r for a in self.arms for r in (*a.comparisons.kd, *a.comparisons.zero, *a.comparisons.ablation)]

    @property
    def changes(self) -> list[QuestionRow]:
        return [r for a in self.arms for r in a.comparisons.change]


@dataclass(frozen=True)
class CurvePoint:
    position: int
    value: Any
    stats: CellStats


@dataclass(frozen=True)
class CurveLine:
    """One method on one language along an axis; zero-shot off the typo axis is one ``level`` (it has no bitext)."""

    lang: str
    method: str
    points: tuple[CurvePoint, ...] = ()
    level: CellStats | None = None


@dataclass(frozen=True)
class TaskCurves:
    task: str
    measure: str
    lines: tuple[CurveLine, ...]


@dataclass(frozen=True)
class DifferenceCurves:
    """OT minus each KD baseline along an axis: the arm's rows drawn at two values of the axis or more."""

    tasks: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    langs: tuple[str, ...]
    rows: tuple[QuestionRow, ...]


@dataclass(frozen=True)
class AxisCurves:
    """The main measures along one axis (other axes at the reference); ``tasks`` empty with fewer than two values."""

    axis: str
    values: tuple
    #: Values the study plans on this axis that no finished evaluation has yet.
    pending: tuple
    tasks: tuple[TaskCurves, ...]
    difference: DifferenceCurves | None

    @property
    def measured(self) -> bool:
        return len(self.values) >= 2


@dataclass(frozen=True)
class ResourceGaps:
    low: tuple[str, ...]
    high: tuple[str, ...]
    rows: tuple[TaskGap, ...]


@dataclass(frozen=True)
class CellRow:
    """One row of cells: ``lang`` (and ``method``) with one summary per column, None where there is none."""

    lang: str
    method: str
    cells: tuple[CellStats | None, ...]


@dataclass(frozen=True)
class TrainingRun:
    lang: str
    method: str
    seed: Any
    budget: Any
    noise: Any
    steps: int
    best_step: int | None
    dev_before: float | None
    best_metric: float | None
    train_minutes: float
    pairs_per_second: float


@dataclass(frozen=True)
class CostGroup:
    """Training minutes of the runs of one method and budget (and torch threads, where runs record them)."""

    method: str
    budget: str
    threads: str | None
    minutes: tuple[float, ...]


@dataclass(frozen=True)
class SelectionShare:
    """Per method and training condition ((axis, value) pairs): did selection keep step 0, had the student collapsed."""

    method: str
    condition: tuple[tuple[str, Any], ...]
    kept_initial: tuple[bool, ...]
    #: Empty where the runs did not record the spread.
    collapsed: tuple[bool, ...]


@dataclass(frozen=True)
class Training:
    runs: tuple[TrainingRun, ...]
    costs: tuple[CostGroup, ...]
    by_threads: bool
    selection: tuple[SelectionShare, ...]


@dataclass(frozen=True)
class CoverageRow:
    method: str
    condition: Condition
    done: int
    planned: int
    waiting: tuple[str, ...]


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything the study report says, computed; rendering adds only words, tables and figures."""

    name: str
    runs_done: int
    runs_planned: int
    n_records: int
    n_missing: int
    reference: Condition
    settings: StatsSettings
    #: Axes with more than one value among the study's runs: the ones a condition label must show.
    varying: tuple[str, ...]
    langs: tuple[str, ...]
    methods: tuple[str, ...]
    task_names: tuple[str, ...]
    question_tasks: tuple[str, ...]
    groups: dict[str, list[str]]
    question: QuestionAnswer
    curves: tuple[AxisCurves, ...]
    #: None when the study lacks languages of either resource group.
    gaps: ResourceGaps | None
    #: None when a task was not evaluated.
    bias: tuple[CellRow, ...] | None
    retention: tuple[CellRow, ...] | None
    training: Training
    #: None when every planned run is done.
    coverage: tuple[CoverageRow, ...] | None
    #: Evaluation dirs of runs the manifest calls finished that are not there (the store or the export lost them).
    lost: tuple[str, ...]
    #: The resource spectrum: empty unless zero-shot alignment was measured on :data:`SPECTRUM_MIN_LANGUAGES` or more.
    spectrum: tuple[SpectrumComparison, ...] = ()
    #: Its x-axis: each language's zero-shot alignment (empty below :data:`SPECTRUM_MIN_LANGUAGES` languages), shown
    #: on its own while no trained method has run on enough languages.
    spectrum_levels: dict[str, float] = field(default_factory=dict)
    #: Does OT gain more from late interaction than each baseline? Empty unless a task was scored both ways.
    late_interaction: tuple[QuestionRow, ...] = ()
    #: The same over all languages at once, dense and under MaxSim beside the gain. Empty as ``late_interaction`` is,
    #: or with fewer than two languages.
    late_interaction_across: tuple[AcrossLanguagesRow, ...] = ()

    def comparisons_json(self) -> dict[str, Any]:
        """The research question's comparisons as data: each with its condition, family, statistics and marks."""
        return {
            "alpha": ALPHA,
            "n_resamples": self.settings.n_resamples,
            "seed": self.settings.seed,
            "reference": dict(zip(AXES, self.reference)),
            "comparisons": [_row_json(r) for r in self.question.levels + self.question.changes],
            **({"spectrum_levels": levels_json(self.spectrum_levels)} if self.spectrum_levels else {}),
            **({"spectrum": spectrum_json(self.spectrum)} if self.spectrum else {}),
            **({"late_interaction": [_row_json(r) for r in self.late_interaction]} if self.late_interaction else {}),
            **(
                {"late_interaction_across_languages": [_across_json(r) for r in self.late_interaction_across]}
                if self.late_interaction_across
                else {}
            ),
        }


def _across_json(r: AcrossLanguagesRow) -> dict[str, Any]:
    return {
        "method": r.method,
        "baseline": r.baseline,
        "task": r.task,
        "langs": list(r.langs),
        **dataclasses.asdict(r.comparison),
    }


def _row_json(r: QuestionRow) -> dict[str, Any]:
    return {
        "kind": "change" if r.change else "level",
        "method": r.method,
        "baseline": r.baseline,
        "lang": r.lang,
        "task": r.task,
        "condition": dict(zip(AXES, r.condition)),
        "kept_initial_student": list(r.kept_initial),
        "kept_collapsed_student": list(r.kept_collapsed),
        **dataclasses.asdict(r.comparison),
    }


# -- the analysis ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Study:
    """What every step of the analysis reads: the index, languages, methods, tasks, settings, selection flags."""

    index: GridIndex
    langs: tuple[str, ...]
    methods: tuple[str, ...]
    question_tasks: tuple[str, ...]
    groups: dict[str, list[str]]
    settings: StatsSettings
    #: The study's variants: name -> the loss method it trains with (``ot-idf`` -> ``ot``).
    variants: dict[str, str]
    #: (lang, method, backbone, domain, budget, noise) -> per finished distillation run: did selection keep step 0?
    kept_initial: dict[tuple, list[bool]]
    #: The same key -> per finished distillation run: had the student selection kept collapsed?
    kept_collapsed: dict[tuple, list[bool]]

    def spec(self, method: str) -> MethodSpec:
        return MethodSpec.parse(self.variants.get(method, method))

    def uses_ot(self, method: str) -> bool:
        return method != ZERO_SHOT and self.spec(method).uses("ot")

    def is_kd(self, method: str) -> bool:
        return method != ZERO_SHOT and self.spec(method).is_kd_baseline

    @property
    def trained(self) -> list[str]:
        return [m for m in self.methods if m != ZERO_SHOT]

    def kept_initial_student(self, lang: str, method: str, condition: Condition) -> bool:
        """Whether every seed of ``method`` kept its initial student in ``condition``'s training condition."""
        flags = self.kept_initial.get((lang, method, *condition[:TRAINED]))
        return bool(flags) and all(flags)

    def collapsed_seeds(self, lang: str, method: str, condition: Condition) -> tuple[int, int]:
        """(seeds whose kept student had collapsed, seeds) of ``method`` in ``condition``'s training condition."""
        flags = self.kept_collapsed.get((lang, method, *condition[:TRAINED]), [])
        return sum(flags), len(flags)

    def row(self, method: str, baseline: str, lang: str, task: str, condition: Condition, comparison, change=False):
        """A :class:`QuestionRow` with the selection marks of its systems."""
        conditions = [condition, self.index.ref_condition()] if change else [condition]
        initial = tuple(s for s in (method, baseline) if all(self.kept_initial_student(lang, s, c) for c in conditions))
        collapsed = tuple(s for s in (method, baseline) if self.collapsed_seeds(lang, s, condition)[0])
        return QuestionRow(method, baseline, lang, task, condition, comparison, change, initial, collapsed)

    def axis_tasks(self, axes: tuple[str, ...]) -> list[str]:
        """The question tasks compared along ``axes``. Query typos leave the alignment task's FLORES sentences alone,
        so where the typo rate varies its alignment rows would repeat those of the same training condition without
        typos (and inflate the arm's Holm families)."""
        if "query_noise" not in axes:
            return list(self.question_tasks)
        return [t for t in self.question_tasks if (spec := task_spec(t)) is not None and spec.takes_query_typos]

    def stats(self, lang: str, method: str, condition: Condition, task_key: str, measure: str) -> CellStats | None:
        sample = self.index.sample(lang, method, condition, task_key, measure)
        return None if sample is None else summarize(sample, self.settings)


def analyse_study(inputs: StudyInputs, settings: StatsSettings) -> StudyAnalysis:
    """Every result of the study report, from the records of a study (see :func:`load_study`)."""
    manifest, records = inputs.manifest, inputs.records
    study = _Study(
        index=GridIndex(records, dict(manifest["reference"])),
        langs=tuple(dict.fromkeys(r.lang for r in records)),
        methods=tuple(dict.fromkeys(r.method for r in records)),
        question_tasks=(),
        groups=manifest.get("resource_groups") or {},
        settings=settings,
        variants={
            str(name): str(body["method"]) for name, body in ((manifest.get("config") or {}).get("variants") or {}).items()
        },
        kept_initial=_selection_flags(inputs.distills, lambda result: result.best_step == 0),
        kept_collapsed=_selection_flags(inputs.distills, lambda result: result.kept_collapsed),
    )
    task_names = tuple(sorted({key.split(".", 1)[0] for r in records for key in r.run.tasks}))
    study = dataclasses.replace(study, question_tasks=tuple(t for t in QUESTION_TASKS if t in task_names))
    question = _question(study)
    planned = _planned_values(manifest)
    done = sum(1 for e in manifest["runs"] if e["status"] == "done")
    finished = {e["path"] for e in manifest["runs"] if e["status"] == "done"}
    return StudyAnalysis(
        name=manifest.get("study", inputs.study_dir.name),
        runs_done=done,
        runs_planned=len(manifest["runs"]),
        n_records=len(records),
        n_missing=len(inputs.missing),
        reference=study.index.ref_condition(),
        settings=settings,
        varying=tuple(_varying_axes(manifest)),
        langs=study.langs,
        methods=study.methods,
        task_names=task_names,
        question_tasks=study.question_tasks,
        groups=study.groups,
        question=question,
        curves=tuple(_axis_curves(study, question, axis, planned.get(axis, set())) for axis in CURVE_AXES),
        gaps=_resource_gaps(study),
        bias=_bias(study) if "pool" in task_names else None,
        retention=_retention(study) if "retention" in task_names else None,
        training=_training(inputs.distills),
        coverage=_coverage(manifest) if done < len(manifest["runs"]) else None,
        lost=tuple(m for m in inputs.missing if str(PurePath(m).parent) in finished),
        **_spectrum(study),
        late_interaction=_late_interaction(study),
        late_interaction_across=_late_interaction_across(study),
    )


#: Fewest languages with zero-shot alignment for a spectrum section: a trend over fewer says little (the earlier
#: studies, with 4 and 8 such languages, have none).
SPECTRUM_MIN_LANGUAGES = 12
SPECTRUM_MEASURE = "alignment R@1, both directions"


def _alignment_both_ways(study: _Study, lang: str, method: str, condition: Condition) -> Sample | None:
    """Per FLORES pair, the mean of its x->en and en->x R@1, one mapping per seed that has both directions."""
    x2en = study.index.by_seed(lang, method, condition, f"align_x2en.{lang}", "R@1")
    en2x = study.index.by_seed(lang, method, condition, f"align_en2x.{lang}", "R@1")
    seeds = [seed for seed in x2en if seed in en2x]
    if not seeds:
        return None
    per_seed = []
    for seed in seeds:
        pairs = [qid.split(":", 1)[1] for qid in x2en[seed]]
        per_seed.append({f"pair:{i}": (x2en[seed][f"{lang}:{i}"] + en2x[seed][f"en:{i}"]) / 2 for i in pairs})
    return Sample(method, tuple(per_seed))


def _spectrum(study: _Study) -> dict[str, Any]:
    """``spectrum`` and ``spectrum_levels`` of :class:`StudyAnalysis`: each OT method against each KD baseline, and each
    trained method against zero-shot, over the languages the zero-shot model was aligned on, at the reference
    condition; the zero-shot level of a language is its alignment."""
    reference = study.index.ref_condition()
    samples = {
        lang: {m: s for m in study.methods if (s := _alignment_both_ways(study, lang, m, reference))} for lang in study.langs
    }
    levels = {
        lang: float(np.mean(list(found[ZERO_SHOT].averaged().values()))) for lang, found in samples.items() if ZERO_SHOT in found
    }
    if len(levels) < SPECTRUM_MIN_LANGUAGES:
        return {}
    ot = [m for m in study.trained if study.uses_ot(m)]
    pairs = [(m, b) for m in ot for b in study.trained if study.is_kd(b)] + [(m, ZERO_SHOT) for m in study.trained]
    return {
        "spectrum": tuple(analyse_spectrum(samples, levels, pairs, SPECTRUM_MEASURE, study.settings)),
        "spectrum_levels": levels,
    }


#: Tasks scored both dense and by late interaction: (dense task, MaxSim task).
LATE_INTERACTION_TASKS = (
    ("clir_sentence", "clir_sentence_maxsim"),
    ("clir_paragraph", "clir_paragraph_maxsim"),
    ("pool", "pool_maxsim"),
)
LATE_INTERACTION_FAMILY = "MaxSim gain: OT vs each baseline"


LATE_INTERACTION_ACROSS_FAMILY = "Across languages: OT vs each baseline, dense, MaxSim and MaxSim gain"


def _late_interaction_pairs(study: _Study) -> list[tuple[str, str]]:
    """(OT method, baseline) pairs of the late-interaction section: each OT method against each KD baseline and
    zero-shot."""
    baselines = [m for m in study.methods if m == ZERO_SHOT or study.is_kd(m)]
    return [(method, baseline) for method in study.trained if study.uses_ot(method) for baseline in baselines]


def _late_by_seed(study: _Study, lang: str, method: str, dense: str, late: str) -> dict[str, dict] | None:
    """A system's per-query values at the reference on ``dense``, on ``late`` and its gain from the one to the other
    (``late`` minus ``dense``), each keyed by training seed (the seeds scored both ways) and by the row's task name;
    None unless it was scored both ways."""
    reference, measure = study.index.ref_condition(), main_measure(dense)
    by_seed = {task: study.index.by_seed(lang, method, reference, f"{task}.{lang}", measure) for task in (dense, late)}
    seeds = [seed for seed in by_seed[dense] if seed in by_seed[late]]
    if not seeds:
        return None
    gain = {seed: {q: by_seed[late][seed][q] - value for q, value in by_seed[dense][seed].items()} for seed in seeds}
    return {
        dense: {seed: by_seed[dense][seed] for seed in seeds},
        late: {seed: by_seed[late][seed] for seed in seeds},
        f"{late} gain": gain,
    }


def _late_interaction(study: _Study) -> tuple[QuestionRow, ...]:
    """Per language and task scored both ways, at the reference: each OT method's per-query gain from MaxSim
    (MaxSim minus dense, seed by seed) against each baseline's, a difference of differences (one Holm family)."""
    reference, rows = study.index.ref_condition(), []
    for dense, late in LATE_INTERACTION_TASKS:
        measure, task = main_measure(dense), f"{late} gain"
        for lang in study.langs:
            found = {m: _late_by_seed(study, lang, m, dense, late) for m in study.methods}
            for method, baseline in _late_interaction_pairs(study):
                if found[method] is None or found[baseline] is None:
                    continue
                gains = [Sample(m, tuple(found[m][task].values())) for m in (method, baseline)]
                rows.append(study.row(method, baseline, lang, task, reference, compare(*gains, measure, study.settings)))
    corrected = holm_family([r.comparison for r in rows], LATE_INTERACTION_FAMILY)
    return tuple(dataclasses.replace(r, comparison=c) for r, c in zip(rows, corrected))


def _late_interaction_across(study: _Study) -> tuple[AcrossLanguagesRow, ...]:
    """Each OT method against each baseline over all the languages at once, dense, under MaxSim and on the gain from
    MaxSim: per question and seed, the mean over the languages where both systems have all their seeds scored both
    ways (:meth:`Sample.question_means`), so a question is resampled once, not once per language (one Holm family)."""
    rows = []
    for dense, late in LATE_INTERACTION_TASKS:
        measure = main_measure(dense)
        found = {m: {lang: f for lang in study.langs if (f := _late_by_seed(study, lang, m, dense, late))} for m in study.methods}
        complete = {
            m: {lang for lang, f in by_lang.items() if len(f[dense]) == max(len(g[dense]) for g in by_lang.values())}
            for m, by_lang in found.items()
        }
        for method, baseline in _late_interaction_pairs(study):
            langs = tuple(lang for lang in study.langs if lang in complete[method] and lang in complete[baseline])
            if len(langs) < 2:
                continue
            for task, gain in ((dense, False), (late, False), (f"{late} gain", True)):
                averaged = [Sample.question_means(m, {lang: found[m][lang][task] for lang in langs}) for m in (method, baseline)]
                comparison = compare(*averaged, measure, study.settings)
                rows.append(AcrossLanguagesRow(method, baseline, task, langs, comparison, gain))
    corrected = holm_family([r.comparison for r in rows], LATE_INTERACTION_ACROSS_FAMILY)
    return tuple(dataclasses.replace(r, comparison=c) for r, c in zip(rows, corrected))


def _selection_flags(distills: tuple[DistillRun, ...], flag: Callable[[RunResult], bool]) -> dict[tuple, list[bool]]:
    """(lang, method, training condition) -> ``flag`` of each finished run whose model selection kept a step."""
    flags: dict[tuple, list[bool]] = defaultdict(list)
    for run in distills:
        if run.record.result.best_step is not None:
            key = (run.entry["lang"], run.entry["method"], *(run.entry.get(axis) for axis in AXES[:TRAINED]))
            flags[key].append(bool(flag(run.record.result)))
    return dict(flags)


def _planned_values(manifest: dict) -> dict[str, set]:
    """Each axis's values over the planned runs whose other training axes are at the reference (a curve's x values)."""
    reference = manifest["reference"]
    training_axes = AXES[:TRAINED]
    planned: dict[str, set] = defaultdict(set)
    for entry in manifest["runs"]:
        for axis in AXES:
            trained = entry["method"] != ZERO_SHOT  # zero-shot has no training axes: only its typo rates count
            if trained and any(entry.get(other) != reference.get(other) for other in training_axes if other != axis):
                continue
            values = entry.get("query_noises", []) if axis == "query_noise" else [entry.get(axis)]
            planned[axis].update(v for v in values if v is not None)
    return dict(planned)


def _varying_axes(manifest: dict) -> list[str]:
    """Axes with more than one value among the study's runs: the ones a condition label must show."""
    values: dict[str, set] = defaultdict(set)
    for entry in manifest["runs"]:
        if entry["method"] == ZERO_SHOT:
            continue
        for axis in ("backbone", "domain", "budget", "noise"):
            values[axis].add(json.dumps(entry[axis]))
        for q in entry["query_noises"]:
            values["query_noise"].add(json.dumps(q))
    return [axis for axis in AXES if len(values[axis]) > 1]


# -- the research question ---------------------------------------------------------------------------------------


def _question(study: _Study) -> QuestionAnswer:
    ot_methods = [m for m in study.trained if study.uses_ot(m)]
    baselines = [m for m in study.trained if study.is_kd(m)]
    if not ot_methods or not baselines:
        return QuestionAnswer(tuple(study.trained), (), ())
    kd_pairs = [(ot, base) for ot in ot_methods for base in baselines]
    ablation_pairs = [
        (m, ABLATION_REFERENCE)
        for m in study.trained
        if ABLATION_REFERENCE in study.trained and m != ABLATION_REFERENCE and not study.is_kd(m)
    ]
    zero_pairs = [(m, ZERO_SHOT) for m in study.trained]
    # Zero-shot has no bitext: it changes only along the typo axis (elsewhere its "change" would be OT's own).
    zero_changes = [(ot, ZERO_SHOT) for ot in ot_methods]
    arms = []
    choice = None
    for arm in study.index.arms():
        change_pairs = kd_pairs + (zero_changes if set(arm.axes) == {"query_noise"} else [])
        comparisons = ArmComparisons(
            arm,
            kd=_comparisons(study, kd_pairs, arm, arm.family(KD_FAMILY)),
            zero=_comparisons(study, zero_pairs, arm, arm.family(ZERO_SHOT_FAMILY)),
            ablation=_comparisons(study, ablation_pairs, arm, arm.family(ABLATION_FAMILY)),
            change=_changes(study, change_pairs, arm) if arm.axes else (),
        )
        verdicts = [
            *(_verdict(comparisons.kd, study, ot, base) for ot, base in kd_pairs),
            *(_verdict(comparisons.zero, study, m, base) for m, base in zero_pairs),
            *(_verdict(comparisons.ablation, study, m, base) for m, base in ablation_pairs),
            *(_verdict(comparisons.change, study, ot, base, change=True) for ot, base in change_pairs),
        ]
        contrasts = [] if arm.axes else _resource_contrasts(study, kd_pairs + [(m, ZERO_SHOT) for m in ot_methods])
        choice = choice or _headline_choice(study, ot_methods, baselines, comparisons.kd)
        arms.append(
            ArmAnswer(
                comparisons,
                collapse_caveats=_collapse_caveats(study, comparisons),
                initial_caveats=_initial_caveats(study, comparisons),
                verdicts=tuple(v for v in verdicts if v is not None),
                contrasts=tuple(contrasts),
                warnings=_family_warnings(study, comparisons),
                forest=tuple(r for r in comparisons.kd + comparisons.zero if study.uses_ot(r.method)),
                headline=_headline(study, choice, comparisons),
            )
        )
    method, headline_baselines = choice or ("", ())
    headline_kd = tuple(b for b in headline_baselines if b != ZERO_SHOT)
    return QuestionAnswer(tuple(study.trained), tuple(arms), tuple(_glance(arms, study)), method, headline_kd)


def _headline_choice(
    study: _Study, ot_methods: list[str], baselines: list[str], kd_rows: tuple[QuestionRow, ...]
) -> tuple[str, tuple[str, ...]]:
    """The headline's OT method (``ot`` where the study has it) and its baselines: the regression KD baseline
    (``mse``), the strongest other KD baseline and zero-shot. The strongest scores highest on the cells (language x
    task x condition) that every candidate shares among ``kd_rows`` (the first arm: the reference)."""
    method = ABLATION_REFERENCE if ABLATION_REFERENCE in ot_methods else ot_methods[0]
    regression = [b for b in baselines if study.spec(b).names == ("mse",)][:1]
    others = [b for b in baselines if b not in regression]
    mine = [r for r in kd_rows if r.method == method]
    cells = {b: {(r.lang, r.task, r.condition): r.comparison.mean_b for r in mine if r.baseline == b} for b in others}
    cells = {b: scores for b, scores in cells.items() if scores}
    shared = set.intersection(*(set(scores) for scores in cells.values())) if cells else set()
    strongest = max(
        cells, key=lambda b: float(np.mean([v for key, v in cells[b].items() if key in shared or not shared])), default=None
    )
    zero = [ZERO_SHOT] if ZERO_SHOT in study.methods else []
    return method, tuple(regression + ([strongest] if strongest else []) + zero)


def _headline(study: _Study, choice: tuple[str, tuple[str, ...]], comparisons: ArmComparisons) -> Headline | None:
    method, baselines = choice
    rows = [
        r for baseline in baselines for r in comparisons.kd + comparisons.zero if (r.method, r.baseline) == (method, baseline)
    ]
    if not rows:
        return None
    tallies = [
        HeadlineTally(baseline, task, cell)
        for baseline in baselines
        for task in study.question_tasks
        if (cell := _glance_cell([r for r in rows if (r.baseline, r.task) == (baseline, task)])) is not None
    ]
    present = tuple(b for b in baselines if any(r.baseline == b for r in rows))
    return Headline(method, present, tuple(rows), tuple(tallies))


def _comparisons(study: _Study, pairs: list[tuple[str, str]], arm: Arm, family: str) -> tuple[QuestionRow, ...]:
    """``method`` vs ``baseline`` on the main measure of every question task, language and condition of an arm.

    One Holm family: ``family``.
    """
    rows = []
    for method, baseline in pairs:
        for lang in study.langs:
            for condition in arm.conditions:
                for task in study.axis_tasks(arm.axes):
                    key, measure = f"{task}.{lang}", main_measure(task)
                    a = study.index.sample(lang, method, condition, key, measure)
                    b = study.index.sample(lang, baseline, condition, key, measure)
                    if a is not None and b is not None:
                        comparison = compare(a, b, measure, study.settings)
                        rows.append(study.row(method, baseline, lang, task, condition, comparison))
    corrected = holm_family([r.comparison for r in rows], family)
    return tuple(dataclasses.replace(r, comparison=c) for r, c in zip(rows, corrected))


def _changes(study: _Study, pairs: list[tuple[str, str]], arm: Arm) -> tuple[QuestionRow, ...]:
    """Per-query change from the reference to each condition of ``arm``, OT against each baseline (one Holm family)."""
    rows = []
    reference = study.index.ref_condition()
    for ot, base in pairs:
        for lang in study.langs:
            for condition in arm.conditions:
                for task in study.axis_tasks(arm.axes):
                    key, measure = f"{task}.{lang}", main_measure(task)
                    changes = [study.index.change(lang, m, reference, condition, key, measure) for m in (ot, base)]
                    if None not in changes:
                        comparison = compare(*changes, measure, study.settings)
                        rows.append(study.row(ot, base, lang, task, condition, comparison, change=True))
    corrected = holm_family([r.comparison for r in rows], arm.family(CHANGE_FAMILY))
    return tuple(dataclasses.replace(r, comparison=c) for r, c in zip(rows, corrected))


def _verdict(rows: tuple[QuestionRow, ...], study: _Study, method: str, baseline: str, change: bool = False) -> Verdict | None:
    """How often ``method`` is significantly better / worse than ``baseline`` among ``rows`` (one family)."""
    mine = [r for r in rows if r.method == method and r.baseline == baseline]
    if not mine:
        return None
    wins = [r for r in mine if r.comparison.significant and r.comparison.diff > 0]
    losses = [r for r in mine if r.comparison.significant and r.comparison.diff < 0]
    lang_group = {lang: g for g, members in study.groups.items() for lang in members}
    groups = []
    for group in [] if change else study.groups:
        in_group = [r for r in mine if lang_group.get(r.lang) == group]
        if in_group:
            mean = float(np.mean([r.comparison.diff for r in in_group]))
            n_sig = sum(r.comparison.significant for r in in_group)
            groups.append(GroupMean(group, tuple(sorted({r.lang for r in in_group})), mean, len(in_group), n_sig))
    return Verdict(
        method,
        baseline,
        change,
        family=mine[0].comparison.family,
        family_size=len(rows),
        n=len(mine),
        better=tuple(sorted(wins, key=lambda r: -abs(r.comparison.diff))),
        worse=tuple(sorted(losses, key=lambda r: -abs(r.comparison.diff))),
        groups=tuple(groups),
    )


def _all_rows(comparisons: ArmComparisons):
    for _, rows in comparisons.families():
        yield from rows


def _collapse_caveats(study: _Study, comparisons: ArmComparisons) -> tuple[CollapseCaveat, ...]:
    """The systems whose kept student had collapsed somewhere in the arm: their scores there are a collapsed encoder's."""
    collapsed: dict[tuple[str, Condition], dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in _all_rows(comparisons):
        for system in row.kept_collapsed:
            collapsed[(system, row.condition[:TRAINED])][row.lang] = study.collapsed_seeds(row.lang, system, row.condition)
    return tuple(
        CollapseCaveat(system, condition, tuple((lang, *seeds[lang]) for lang in study.langs if lang in seeds))
        for (system, condition), seeds in collapsed.items()
    )


def _initial_caveats(study: _Study, comparisons: ArmComparisons) -> tuple[InitialCaveat, ...]:
    """The systems that kept their initial student somewhere in the arm: there they are the zero-shot model."""
    langs: dict[tuple[str, Condition], set[str]] = defaultdict(set)
    for row in _all_rows(comparisons):
        for system in row.kept_initial:
            langs[(system, row.condition[:TRAINED])].add(row.lang)
    return tuple(
        InitialCaveat(system, condition, tuple(lang for lang in study.langs if lang in chosen))
        for (system, condition), chosen in langs.items()
    )


def _family_warnings(study: _Study, comparisons: ArmComparisons) -> tuple[FamilyWarning, ...]:
    warnings = []
    for kind, rows in comparisons.families():
        needed = resamples_for_family(len(rows))
        if rows and study.settings.n_resamples < needed:
            warnings.append(FamilyWarning(comparisons.arm.family(kind), len(rows), needed))
    return tuple(warnings)


def _glance(arms: list[ArmAnswer], study: _Study) -> list[GlanceRow]:
    """One row per arm and compared pair: per task, how many cells (language x condition) went each way after Holm."""
    rows = []
    for answer in arms:
        for kind, family_rows in answer.comparisons.families():
            for method, baseline in dict.fromkeys((r.method, r.baseline) for r in family_rows):
                pair = [r for r in family_rows if r.method == method and r.baseline == baseline]
                cells = tuple(_glance_cell([r for r in pair if r.task == task]) for task in study.question_tasks)
                rows.append(GlanceRow(answer.arm.name, method, baseline, kind == CHANGE_FAMILY, cells))
    return rows


def _glance_cell(rows: list[QuestionRow]) -> GlanceCell | None:
    if not rows:
        return None
    return GlanceCell(
        better=sum(r.comparison.significant and r.comparison.diff > 0 for r in rows),
        worse=sum(r.comparison.significant and r.comparison.diff < 0 for r in rows),
        n=len(rows),
        mean=float(np.mean([r.comparison.diff for r in rows])),
        n_initial=sum(bool(r.kept_initial) for r in rows),
        n_collapsed=sum(bool(r.kept_collapsed) for r in rows),
    )


def _resource_langs(study: _Study) -> tuple[list[str], list[str]]:
    low = [lang for lang in study.groups.get("low", []) if lang in study.langs]
    high = [lang for lang in study.groups.get("high", []) if lang in study.langs]
    return low, high


def _resource_contrasts(study: _Study, pairs: list[tuple[str, str]]) -> list[ResourceContrast]:
    """At the reference: is ``method - baseline`` larger on the low-resource languages than on the high-resource ones?

    Each group's per-query differences (paired seed by seed) are pooled over its languages; the contrast
    (low minus high) gets the unpaired two-level bootstrap CI of :func:`~optical.eval.stats.resource_gap`.
    """
    low, high = _resource_langs(study)
    if not low or not high:
        return []
    contrasts = []
    for method, baseline in pairs:
        gaps, present = [], {"low": set(), "high": set()}
        for task in study.question_tasks:
            pooled = {
                group: _pooled_difference(study, method, baseline, task, members)
                for group, members in (("low", low), ("high", high))
            }
            if None not in pooled.values():
                for group, (_, pooled_langs) in pooled.items():
                    present[group] |= pooled_langs
                gap = resource_gap(pooled["low"][0], pooled["high"][0], study.settings)  # high - low
                gaps.append(TaskGap(task, main_measure(task), f"{method} − {baseline}", gap))
        if gaps:
            low_present = tuple(x for x in low if x in present["low"])
            high_present = tuple(x for x in high if x in present["high"])
            contrasts.append(ResourceContrast(method, baseline, low_present, high_present, tuple(gaps)))
    return contrasts


def _pooled_difference(study: _Study, method: str, baseline: str, task: str, langs: list[str]) -> tuple[Sample, set[str]] | None:
    """``method - baseline`` at the reference pooled over ``langs`` (those that have it), or None."""
    reference, measure = study.index.ref_condition(), main_measure(task)
    diffs = {lang: study.index.difference(lang, method, baseline, reference, f"{task}.{lang}", measure) for lang in langs}
    diffs = {lang: d for lang, d in diffs.items() if d is not None}
    if diffs and len({d.n_seeds for d in diffs.values()}) == 1:
        return Sample.pooled(f"{method} − {baseline}", diffs), set(diffs)
    return None


# -- curves along an axis ------------------------------------------------------------------------------------------


def _axis_curves(study: _Study, question: QuestionAnswer, axis: str, planned: set) -> AxisCurves:
    index = study.index
    values = index.axis_values(axis)
    if axis == "query_noise":
        values = sorted(set(values) | {q for (_, q) in index.zero_shot})
    if len(values) < 2:
        pending = tuple(sorted(planned - set(values), key=axis_order))
        return AxisCurves(axis, tuple(values), pending, (), None)
    tasks = tuple(_task_curves(study, axis, values, task) for task in study.axis_tasks((axis,)))
    return AxisCurves(axis, tuple(values), (), tasks, _difference_curves(study, question, axis, values))


def _task_curves(study: _Study, axis: str, values: list, task: str) -> TaskCurves:
    """Each language and method's mean along ``axis``; zero-shot off the typo axis as one level."""
    index, measure = study.index, main_measure(task)
    lines = []
    for lang in study.langs:
        for method in study.methods:
            key = f"{task}.{lang}"
            if method == ZERO_SHOT and axis != "query_noise":
                level = study.stats(lang, method, index.ref_condition(), key, measure)
                if level is not None:
                    lines.append(CurveLine(lang, method, level=level))
                continue
            points = []
            for position, value in enumerate(values):
                cell = study.stats(lang, method, index.ref_condition(**{axis: value}), key, measure)
                if cell is not None:
                    points.append(CurvePoint(position, value, cell))
            if points:
                lines.append(CurveLine(lang, method, points=tuple(points)))
    return TaskCurves(task, measure, tuple(lines))


def _difference_curves(study: _Study, question: QuestionAnswer, axis: str, values: list) -> DifferenceCurves | None:
    """The headline's OT method minus its KD baselines along one axis (others at reference): the arms' Holm-tested
    differences (every other pair is in the arms' full forests)."""
    position = AXES.index(axis)
    reference = study.index.ref_condition()
    along = [
        r
        for r in question.levels
        if r.method == question.headline_method
        and r.baseline in question.headline_kd
        and all(x == ref for i, (x, ref) in enumerate(zip(r.condition, reference)) if i != position)
    ]
    # A pair or task drawn at one value of the axis only (e.g. a baseline run at the reference alone) is no curve.
    spread: dict[tuple[str, str, str], set] = defaultdict(set)
    for r in along:
        spread[(r.method, r.baseline, r.task)].add(r.condition[position])
    along = [r for r in along if len(spread[(r.method, r.baseline, r.task)]) >= 2]
    if not along:
        return None
    return DifferenceCurves(
        tasks=tuple(t for t in study.axis_tasks((axis,)) if any(r.task == t for r in along)),
        pairs=tuple(dict.fromkeys((r.method, r.baseline) for r in along)),
        langs=tuple(lang for lang in study.langs if any(r.lang == lang for r in along)),
        rows=tuple(sorted(along, key=lambda r: values.index(r.condition[position]))),
    )


# -- gaps, bias, retention -----------------------------------------------------------------------------------------


def _resource_gaps(study: _Study) -> ResourceGaps | None:
    """High- minus low-resource mean of each method at the reference, per question task."""
    low, high = _resource_langs(study)
    if not low or not high:
        return None
    rows = []
    reference = study.index.ref_condition()
    for task in study.question_tasks:
        measure = main_measure(task)
        for method in study.methods:
            pooled = {}
            for group, members in (("low", low), ("high", high)):
                parts = {lang: study.index.sample(lang, method, reference, f"{task}.{lang}", measure) for lang in members}
                parts = {lang: s for lang, s in parts.items() if s is not None}
                if parts and len({s.n_seeds for s in parts.values()}) == 1:
                    pooled[group] = Sample.pooled(method, parts)
            if len(pooled) == 2:
                rows.append(TaskGap(task, measure, method, resource_gap(pooled["low"], pooled["high"], study.settings)))
    return ResourceGaps(tuple(low), tuple(high), tuple(rows))


def _bias(study: _Study) -> tuple[CellRow, ...]:
    """The pool's mAP and language-bias measures of each language and method at the reference."""
    reference = study.index.ref_condition()
    return tuple(
        CellRow(lang, method, tuple(study.stats(lang, method, reference, f"pool.{lang}", m) for m in ("AP", *BIAS_MEASURES)))
        for lang in study.langs
        for method in study.methods
    )


def _retention(study: _Study) -> tuple[CellRow, ...]:
    """English retention of each language's students (one cell per method) at the reference."""
    reference, measure = study.index.ref_condition(), main_measure(RETENTION.split(".")[0])
    return tuple(
        CellRow(lang, "", tuple(study.stats(lang, method, reference, RETENTION, measure) for method in study.methods))
        for lang in study.langs
    )


# -- training runs and coverage ------------------------------------------------------------------------------------

#: The training axes a selection share is keyed by, in its label's order.
SELECTION_AXES = ("budget", "noise", "backbone", "domain")


def _training(distills: tuple[DistillRun, ...]) -> Training:
    """One row per distillation run, its cost by method and budget, and what its model selection kept."""
    # Runs computed several at once on one machine (a local Ray cluster) each had fewer threads and took longer: the
    # cost table keeps them apart once runs record their threads (older records do not: no column then).
    by_threads = any(run.record.torch_threads for run in distills)
    kept_initial: dict[tuple, list[bool]] = defaultdict(list)
    collapsed: dict[tuple, list[bool]] = defaultdict(list)
    minutes: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for run in distills:
        entry, record = run.entry, run.record
        result = record.result
        if result.best_step is not None:
            key = (entry["method"], tuple((axis, entry.get(axis)) for axis in SELECTION_AXES))
            kept_initial[key].append(result.best_step == 0)
            if result.spread_measured:
                collapsed[key].append(result.collapsed_at is not None)
        threads = (str(record.torch_threads or "-"),) if by_threads else ()
        minutes[(entry["method"], str(entry["budget"]), *threads)].append(record.timings.train_seconds / 60)
    costs = tuple(
        CostGroup(key[0], key[1], key[2] if by_threads else None, tuple(v))
        for key, v in sorted(minutes.items(), key=lambda item: _cost_order(item[0]))
    )
    selection = tuple(
        SelectionShare(method, condition, tuple(flags), tuple(collapsed.get((method, condition), ())))
        for (method, condition), flags in kept_initial.items()
    )
    return Training(tuple(_training_run(run) for run in distills), costs, by_threads, selection)


def _training_run(run: DistillRun) -> TrainingRun:
    entry, record = run.entry, run.record
    result = record.result
    return TrainingRun(
        lang=entry["lang"],
        method=entry["method"],
        seed=entry["seed"],
        budget=entry["budget"],
        noise=entry["noise"],
        steps=result.steps,
        best_step=result.best_step,
        dev_before=result.dev_before,
        best_metric=result.best_metric,
        train_minutes=record.timings.train_seconds / 60,
        pairs_per_second=result.pairs_per_second,
    )


def _cost_order(key: tuple[str, ...]) -> tuple:
    """Cost rows by method, budget, then threads in numeric order ('-', not recorded, first)."""
    return (*key[:2], *(int(t) if t.isdigit() else 0 for t in key[2:]))


def _coverage(manifest: dict) -> tuple[CoverageRow, ...]:
    """Per method and training condition: how many of its planned runs are done, and which languages still wait."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for entry in manifest["runs"]:
        condition = tuple(entry.get(axis) for axis in AXES[:TRAINED])
        cells[(entry["method"], condition)].append(entry)
    rows = []
    for (method, condition), entries in cells.items():
        waiting = {e["lang"] for e in entries if e["status"] != "done"}
        langs = tuple(lang for lang in dict.fromkeys(e["lang"] for e in entries) if lang in waiting)
        rows.append(CoverageRow(method, condition, sum(e["status"] == "done" for e in entries), len(entries), langs))
    return tuple(rows)
