"""The study report: the answer to the research question first, then curves and tables.

Every number comes from the evaluation run dirs of the study and every test
from the statistics policy of :mod:`optical.eval.stats` (the same as
``optical compare``, so a pair of systems gets the same mean, CI and p-value in
both): a system's values on a cell are a :class:`~optical.eval.stats.Sample`
over its seeds, :func:`~optical.eval.stats.summarize` gives its mean and CI,
:func:`~optical.eval.stats.compare` a paired difference, and
:func:`~optical.eval.stats.holm_family` corrects a named family. The families
here follow the study's *arms*: the reference condition is one arm, and the
conditions that differ from it in one axis (bitext budget, bitext noise, typo
rate, domain, backbone) form one arm per axis. Within each arm there are up to
four families: OT against each KD baseline, every method against the
zero-shot model, each ablation against ot, and the change from the reference of
OT against that of each baseline (and of zero-shot along the typo rate, the one
axis that changes it). Families stay this small so that Holm can still pass a real
difference (see :func:`~optical.eval.stats.resamples_for_family`). The text of
the first section is generated from those results: it says where OT wins,
where it loses and where nothing is significant, whichever way the numbers
fall.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optical.data.languages import XQUADR_LANGS
from optical.errors import OpticalError
from optical.eval.metrics import aggregate_name
from optical.eval.results import EVAL_JSON, ZERO_SHOT, EvalRun
from optical.eval.stats import (
    ALPHA,
    PairedComparison,
    PerQuery,
    Sample,
    StatsSettings,
    average_over_seeds,
    compare,
    holm_family,
    resamples_for_family,
    resource_gap,
    summarize,
)
from optical.eval.tasks import main_measure, task_spec
from optical.formatting import cell_text, interval, number
from optical.losses.combined import MethodSpec
from optical.report.compare import difference_text, p_holm_text, policy_text
from optical.report.document import Bullets, Document, Heading, Image, Paragraph, Table
from optical.report.plots import ForestRow, forest_figure, save_figure
from optical.report.tuning import is_tuning, tuning_report
from optical.storage import atomic_write_json, atomic_write_text
from optical.study.layout import MANIFEST, REPORT_DIR
from optical.study.manifest import read_manifest
from optical.train.record import COLLAPSE_SPREAD_RATIO, RunRecord, RunResult

#: The tasks whose main measure the research-question section compares, in display order.
QUESTION_TASKS = ("clir_sentence", "clir_paragraph", "pool", "align_x2en", "align_en2x")
RETENTION = "retention.en"
BIAS_MEASURES = ("LangShare@10", "GoldRankGap")
#: Conditions (axis values) of a record: everything but language, method and seed.
AXES = ("backbone", "domain", "budget", "noise", "query_noise")
#: The axes that decide how a student was trained (all but the typo rate, applied at evaluation); a condition's
#: first TRAINED entries.
TRAINED = AXES.index("query_noise")
AXIS_NAMES = {"backbone": "backbone", "domain": "domain", "budget": "budget", "noise": "bitext noise", "query_noise": "typo rate"}
KD_FAMILY = "OT vs each KD baseline"
ZERO_SHOT_FAMILY = "each method vs zero-shot"
CHANGE_FAMILY = "change from the reference, OT vs each baseline"
ABLATION_FAMILY = "each ablation vs ot"
#: The method an ablation (another OT method, a variant, or a non-KD method such as hard_align) is compared with.
ABLATION_REFERENCE = "ot"
#: Every comparison of the first section, machine-readable, beside report.md (for other tools and the READMEs).
COMPARISONS_JSON = "comparisons.json"
#: Marks a system that kept its initial student in every seed of a comparison's condition (dev selection chose
#: step 0): there it is the zero-shot model, and the comparison says nothing about what it learned.
INITIAL_STUDENT_MARK = "‡"
#: Marks a system whose kept student had collapsed in at least one seed (pooled embeddings of different sentences
#: nearly identical): its scores there are a collapsed encoder's, not a weak one's.
COLLAPSED_STUDENT_MARK = "§"


@dataclass(frozen=True)
class Record:
    """One evaluation run dir of the study with its grid coordinates."""

    lang: str
    method: str
    seed: int | None
    backbone: str
    domain: str | None
    budget: Any
    noise: float | None
    query_noise: float
    run: EvalRun


@dataclass(frozen=True)
class QuestionRow:
    """One comparison of the research-question section: ``method`` against ``baseline`` on a cell."""

    method: str
    baseline: str
    lang: str
    task: str
    condition: tuple
    comparison: PairedComparison
    #: A comparison of changes from the reference condition to ``condition`` rather than of levels.
    change: bool = False


@dataclass(frozen=True)
class Arm:
    """Conditions of the study that differ from the reference in the same axes (none: the reference arm itself)."""

    axes: tuple[str, ...]
    conditions: tuple[tuple, ...]

    @property
    def name(self) -> str:
        return "reference" if not self.axes else " + ".join(AXIS_NAMES[axis] for axis in self.axes)

    def family(self, kind: str) -> str:
        return f"{kind}, arm {self.name}"


def _axis_tasks(ctx: _Context, axes: tuple[str, ...]) -> list[str]:
    """The question tasks compared along ``axes``. Query typos leave the alignment task's FLORES sentences alone, so
    where the typo rate varies its alignment rows would repeat those of the same training condition without typos
    (and inflate the arm's Holm families)."""
    if "query_noise" not in axes:
        return ctx.question_tasks
    return [t for t in ctx.question_tasks if (spec := task_spec(t)) is not None and spec.takes_query_typos]


def _arms(index: _Index) -> list[Arm]:
    """The reference arm, then one arm per axis that varies alone, then any arm of several axes varying together."""
    reference = index.ref_condition()
    by_axes: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for condition in index.conditions():
        by_axes[tuple(a for a, x, r in zip(AXES, condition, reference) if x != r)].append(condition)
    order = sorted(by_axes, key=lambda axes: (len(axes) > 1, [AXES.index(a) for a in axes]))
    return [Arm(axes, tuple(by_axes[axes])) for axes in order]


@dataclass
class StudyReport:
    study_dir: Path
    report_dir: Path
    files: list[Path]
    question: list[QuestionRow] = field(default_factory=list)
    #: The change comparisons (from the reference to each arm's conditions), kept apart from the level ones.
    changes: list[QuestionRow] = field(default_factory=list)
    #: Evaluation dirs of runs the manifest calls finished that are not there (the store or the export lost them).
    lost: list[str] = field(default_factory=list)


def _load_records(study_dir: Path, manifest: dict) -> tuple[list[Record], list[str]]:
    records, missing = [], []
    for entry in manifest["runs"]:
        for noise_text, rel in entry["eval_dirs"].items():
            path = study_dir / rel
            if not (path / EVAL_JSON).is_file():
                missing.append(rel)
                continue
            coordinates = {name: entry[name] for name in ("lang", "method", "seed", "backbone", "domain", "budget", "noise")}
            records.append(Record(**coordinates, query_noise=float(noise_text), run=EvalRun.load(path, with_trec=False)))
    return records, missing


class _Index:
    """Records grouped by (lang, method, condition) -> the per-seed runs."""

    def __init__(self, records: list[Record], reference: dict[str, Any]) -> None:
        self.reference = reference
        self.groups: dict[tuple, list[Record]] = defaultdict(list)
        self.zero_shot: dict[tuple[str, float], list[Record]] = defaultdict(list)
        for r in records:
            if r.method == ZERO_SHOT:
                self.zero_shot[(r.lang, r.query_noise)].append(r)
            else:
                self.groups[(r.lang, r.method, self.condition(r))].append(r)

    @staticmethod
    def condition(r: Record) -> tuple:
        return (r.backbone, r.domain, r.budget, r.noise, r.query_noise)

    def by_seed(self, lang: str, method: str, condition: tuple, task_key: str, measure: str) -> dict[int | None, PerQuery]:
        """The method's per-query values on the cell, keyed by training seed (None for the zero-shot model)."""
        runs = (
            self.zero_shot.get((lang, condition[4]), [])
            if method == ZERO_SHOT
            else self.groups.get((lang, method, condition), [])
        )
        found = {}
        for r in runs:
            task = r.run.tasks.get(task_key)
            if task is not None and measure in task.per_query:
                found[r.seed] = task.per_query[measure]
        return found

    def sample(self, lang: str, method: str, condition: tuple, task_key: str, measure: str) -> Sample | None:
        """The method's values on the cell over its seeds, or None when none has them."""
        found = self.by_seed(lang, method, condition, task_key, measure)
        return Sample(method, tuple(found.values())) if found else None

    def change(self, lang: str, method: str, before: tuple, after: tuple, task_key: str, measure: str) -> Sample | None:
        """Per-query change ``after - before`` of the method, one per seed that ran in both conditions.

        Pairing by seed keeps each seed's own change, so the spread between
        seeds reaches the two-level bootstrap of the comparison (a change of
        seed-averaged values would hide it). Without a common seed, the
        change of the seed averages stands as one sample. None when a
        condition has no values.
        """
        return _seed_paired_difference(
            self.by_seed(lang, method, before, task_key, measure), self.by_seed(lang, method, after, task_key, measure), method
        )

    def difference(self, lang: str, method: str, baseline: str, condition: tuple, task_key: str, measure: str) -> Sample | None:
        """Per-query ``method - baseline`` on one cell, one per seed both ran with (as :meth:`change` pairs seeds)."""
        return _seed_paired_difference(
            self.by_seed(lang, baseline, condition, task_key, measure),
            self.by_seed(lang, method, condition, task_key, measure),
            f"{method} − {baseline}",
        )

    def ref_condition(self, **changes: Any) -> tuple:
        values = {**self.reference, **changes}
        return tuple(values[axis] for axis in AXES)

    def conditions(self) -> list[tuple]:
        return sorted({c for (_, _, c) in self.groups}, key=lambda c: json.dumps(c, default=str))

    def axis_values(self, axis: str) -> list:
        """The values of ``axis`` among the conditions whose other axes are at the reference (a curve's x values)."""
        position, reference = AXES.index(axis), self.ref_condition()
        values = {
            c[position] for (_, _, c) in self.groups if all(x == r for i, (x, r) in enumerate(zip(c, reference)) if i != position)
        }
        return sorted(values, key=_axis_order)


def _axis_order(value: Any) -> tuple:
    """Numbers in order, then names (a budget is a count or ``all``)."""
    return (isinstance(value, str), value if not isinstance(value, str) else 0, str(value))


def _seed_paired_difference(first: dict[int | None, PerQuery], second: dict[int | None, PerQuery], label: str) -> Sample | None:
    """``second - first`` per query, one sample per seed both hold (else of the seed averages); None if one is empty."""
    if not first or not second:
        return None
    common = sorted(set(first) & set(second), key=lambda seed: -1 if seed is None else seed)
    if common:
        pairs = [(first[seed], second[seed]) for seed in common]
    else:
        pairs = [(average_over_seeds(list(first.values()), label), average_over_seeds(list(second.values()), label))]
    return Sample(label, tuple({q: b[q] - a[q] for q in b} for a, b in pairs))


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


def _condition_label(condition: tuple, varying: list[str]) -> str:
    parts = [f"{AXIS_NAMES[axis]} {cell_text(value)}" for axis, value in zip(AXES, condition) if axis in varying]
    return ", ".join(parts) or "all runs"


def _cell_text(sample: Sample | None, settings: StatsSettings) -> str:
    if sample is None:
        return "–"
    cell = summarize(sample, settings)
    return f"{number(cell.mean)} {interval(cell.ci_low, cell.ci_high)} ({cell.n_seeds})"


@dataclass
class _Context:
    """What every section reads: the index, the study's languages, methods and tasks, the settings."""

    index: _Index
    langs: list[str]
    methods: list[str]
    task_names: list[str]
    groups: dict[str, list[str]]
    varying: list[str]
    settings: StatsSettings
    report_dir: Path
    images: list[Path] = field(default_factory=list)
    #: The study's variants: name -> the loss method it trains with (``ot-idf`` -> ``ot``).
    variants: dict[str, str] = field(default_factory=dict)
    #: Every method the study plans, in its config's order (finished or not): plot colours follow it.
    method_order: list[str] = field(default_factory=list)
    #: Each axis's values over every run the manifest plans, finished or not.
    planned: dict[str, set] = field(default_factory=dict)
    #: (lang, method, backbone, domain, budget, noise) -> per finished distillation run: did selection keep step 0?
    kept_initial: dict[tuple, list[bool]] = field(default_factory=dict)
    #: The same key -> per finished distillation run: had the student selection kept collapsed?
    kept_collapsed: dict[tuple, list[bool]] = field(default_factory=dict)

    def kept_initial_student(self, lang: str, method: str, condition: tuple) -> bool:
        """Whether every seed of ``method`` kept its initial student in ``condition``'s training condition."""
        flags = self.kept_initial.get((lang, method, *condition[:TRAINED]))
        return bool(flags) and all(flags)

    def initial_systems(self, row: QuestionRow) -> list[str]:
        """The systems of ``row`` that are the zero-shot model there: for a change, at the reference condition too."""
        conditions = [row.condition, self.index.ref_condition()] if row.change else [row.condition]
        return [
            system
            for system in (row.method, row.baseline)
            if all(self.kept_initial_student(row.lang, system, condition) for condition in conditions)
        ]

    def collapsed_seeds(self, lang: str, method: str, condition: tuple) -> tuple[int, int]:
        """(seeds whose kept student had collapsed, seeds) of ``method`` in ``condition``'s training condition."""
        flags = self.kept_collapsed.get((lang, method, *condition[:TRAINED]), [])
        return sum(flags), len(flags)

    def collapsed_systems(self, row: QuestionRow) -> list[str]:
        return [system for system in (row.method, row.baseline) if self.collapsed_seeds(row.lang, system, row.condition)[0]]

    def marks(self, row: QuestionRow, system: str | None = None) -> str:
        """The marks of ``row`` (of one of its systems when named): kept its initial student, kept a collapsed one."""
        flagged = ((INITIAL_STUDENT_MARK, self.initial_systems(row)), (COLLAPSED_STUDENT_MARK, self.collapsed_systems(row)))
        marks = [mark for mark, systems in flagged if (system in systems if system else systems)]
        return "".join(f" {mark}" for mark in marks)

    def spec(self, method: str) -> MethodSpec:
        return MethodSpec.parse(self.variants.get(method, method))

    def uses_ot(self, method: str) -> bool:
        return method != ZERO_SHOT and self.spec(method).uses("ot")

    def is_kd(self, method: str) -> bool:
        return method != ZERO_SHOT and self.spec(method).is_kd_baseline

    @property
    def trained(self) -> list[str]:
        return [m for m in self.methods if m != ZERO_SHOT]

    @property
    def question_tasks(self) -> list[str]:
        return [t for t in QUESTION_TASKS if t in self.task_names]

    def save_plot(self, fig, name: str) -> Path:
        save_figure(fig, self.report_dir / name)
        self.images.append(Path(name))
        return Path(name)


def write_study_report(study_dir: str | Path, n_resamples: int | None = None) -> StudyReport:
    """Write ``report/report.md``, ``report/report.html`` and ``report/plots/*.png`` for a study dir."""
    study_dir = Path(study_dir)
    manifest_path = study_dir / MANIFEST
    if not manifest_path.is_file():
        raise OpticalError(f"{manifest_path} is missing: {study_dir} is not a study dir (run `optical study run` first)")
    manifest = read_manifest(manifest_path)
    if is_tuning(manifest):  # dev-split scores of trials only: no test-split comparison to draw
        return StudyReport(study_dir, study_dir / REPORT_DIR, tuning_report(study_dir, manifest).save(study_dir))
    settings = StatsSettings(n_resamples=n_resamples or int((manifest.get("config") or {}).get("n_resamples", 10_000)))
    records, missing = _load_records(study_dir, manifest)
    distills = _distill_records(study_dir, manifest)
    if not records:
        raise OpticalError(f"{study_dir} has no finished evaluation yet; run the study first")
    index = _Index(records, dict(manifest["reference"]))
    report_dir = study_dir / REPORT_DIR
    ctx = _Context(
        index=index,
        langs=list(dict.fromkeys(r.lang for r in records)),
        methods=list(dict.fromkeys(r.method for r in records)),
        task_names=sorted({key.split(".", 1)[0] for r in records for key in r.run.tasks}),
        groups=manifest.get("resource_groups") or {},
        varying=_varying_axes(manifest),
        settings=settings,
        report_dir=report_dir,
        variants={
            str(name): str(body["method"]) for name, body in ((manifest.get("config") or {}).get("variants") or {}).items()
        },
        planned=_planned_values(manifest),
        method_order=[m for m in dict.fromkeys(e["method"] for e in manifest["runs"]) if m != ZERO_SHOT],
        kept_initial=_selection_flags(distills, lambda result: result.best_step == 0),
        kept_collapsed=_selection_flags(distills, lambda result: result.kept_collapsed),
    )

    doc = Document(
        f"Study {manifest.get('study', study_dir.name)}: does OT distillation make cross-lingual alignment more robust than KD?"
    )
    done = sum(1 for e in manifest["runs"] if e["status"] == "done")
    doc.add(
        Paragraph(
            f"{done} of {len(manifest['runs'])} runs complete ({len(records)} evaluation run dirs read"
            + (f"; {len(missing)} evaluations not there yet" if missing else "")
            + ("; what each cell holds so far: Coverage, at the end" if done < len(manifest["runs"]) else "")
            + "). "
            f"Reference condition: {_condition_label(index.ref_condition(), list(AXES))}. {policy_text(settings)}"
        )
    )
    report = StudyReport(study_dir, report_dir, [])
    _question_section(doc, report, ctx)
    _curve_section(doc, ctx, report, "budget", "Learning curves: main measures vs bitext budget")
    _curve_section(doc, ctx, report, "noise", "Degradation vs bitext noise")
    _curve_section(doc, ctx, report, "query_noise", "Degradation vs query typo rate")
    _gap_section(doc, ctx)
    _bias_retention_section(doc, ctx)
    _training_section(doc, distills)
    if done < len(manifest["runs"]):
        _coverage_section(doc, manifest, ctx)
    finished = {e["path"] for e in manifest["runs"] if e["status"] == "done"}
    report.lost = [m for m in missing if str(Path(m).parent) in finished]
    if report.lost:  # a finished run whose evaluation is gone: the export or the store lost it
        doc.add(Heading(2, "Missing evaluations of finished runs"), Bullets([f"`{m}`" for m in report.lost]))

    atomic_write_text(report_dir / "report.md", doc.markdown())
    atomic_write_text(report_dir / "report.html", doc.html(report_dir))
    atomic_write_json(report_dir / COMPARISONS_JSON, _comparisons_json(report, ctx))
    for stale in sorted(set((report_dir / "plots").glob("*.png")) - {report_dir / p for p in ctx.images}):
        stale.unlink()  # a plot of an earlier report that this one no longer draws (or names differently)
    report.files = [
        report_dir / "report.md",
        report_dir / "report.html",
        report_dir / COMPARISONS_JSON,
        *(report_dir / p for p in ctx.images),
    ]
    return report


def _distill_records(study_dir: Path, manifest: dict) -> list[tuple[dict, RunRecord]]:
    """Each manifest entry with a finished distillation, with its ``run.json``."""
    pairs = []
    for entry in manifest["runs"]:
        record = RunRecord.find(study_dir / entry["distill_dir"]) if entry.get("distill_dir") else None
        if record is not None:
            pairs.append((entry, record))
    return pairs


def _selection_flags(distills: list[tuple[dict, RunRecord]], flag: Callable[[RunResult], bool]) -> dict[tuple, list[bool]]:
    """(lang, method, training condition) -> ``flag`` of each finished run whose model selection kept a step."""
    flags: dict[tuple, list[bool]] = defaultdict(list)
    for entry, record in distills:
        if record.result.best_step is not None:
            key = (entry["lang"], entry["method"], *(entry.get(axis) for axis in AXES[:TRAINED]))
            flags[key].append(bool(flag(record.result)))
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


def _comparisons(ctx: _Context, pairs: list[tuple[str, str]], arm: Arm, family: str) -> list[QuestionRow]:
    """``method`` vs ``baseline`` on the main measure of every question task, language and condition of an arm.

    One Holm family: ``family``.
    """
    rows = []
    for method, baseline in pairs:
        for lang in ctx.langs:
            for condition in arm.conditions:
                for task in _axis_tasks(ctx, arm.axes):
                    key, measure = f"{task}.{lang}", main_measure(task)
                    a = ctx.index.sample(lang, method, condition, key, measure)
                    b = ctx.index.sample(lang, baseline, condition, key, measure)
                    if a is not None and b is not None:
                        rows.append(QuestionRow(method, baseline, lang, task, condition, compare(a, b, measure, ctx.settings)))
    corrected = holm_family([r.comparison for r in rows], family)
    return [dataclasses.replace(r, comparison=c) for r, c in zip(rows, corrected)]


def _row_text(r: QuestionRow, ctx: _Context, arm: Arm, change: bool) -> str:
    """One comparison in a sentence: only the axes its arm varies name its condition; a change row also gives
    both systems' changes."""
    c = r.comparison
    where = f" ({_condition_label(r.condition, list(arm.axes))})" if arm.axes else ""
    changes = f" ({r.method} {number(c.mean_a, True)}, {r.baseline} {number(c.mean_b, True)})" if change else ""
    return (
        f"{r.lang} {r.task} {aggregate_name(c.measure)}{where}{changes} "
        f"{number(c.diff, True)} {interval(c.ci_low, c.ci_high, True)}, p_holm {p_holm_text(c)}" + ctx.marks(r)
    )


#: How many of a verdict's significant cells its sentence names (the largest differences); the rest are in the table.
NAMED_IN_VERDICT = 6


def _verdict(rows: list[QuestionRow], ctx: _Context, method: str, baseline: str, arm: Arm, change: bool = False) -> str | None:
    """One generated sentence: how often ``method`` is significantly better / worse than ``baseline``, and where.

    With ``change`` the rows compare changes from the reference condition to the arm's conditions: ``method``'s
    change minus ``baseline``'s, positive when ``method`` gains more or loses less.
    """
    mine = [r for r in rows if r.method == method and r.baseline == baseline]
    if not mine:
        return None
    wins = [r for r in mine if r.comparison.significant and r.comparison.diff > 0]
    losses = [r for r in mine if r.comparison.significant and r.comparison.diff < 0]
    ties = len(mine) - len(wins) - len(losses)
    family = f"Holm family: {mine[0].comparison.family}, {len(rows)} comparisons"
    if change:
        text = (
            f"Change from the reference, {method} vs {baseline}: {method}'s change minus {baseline}'s is significantly "
            f"positive ({method} gains more or loses less) in {len(wins)}, significantly negative in {len(losses)}, and "
            f"not significantly different in {ties} of {len(mine)} comparisons ({family})."
        )
        labels = (f"{method} gains more or loses less", f"{method} gains less or loses more")
    else:
        text = (
            f"{method} vs {baseline}: of {len(mine)} comparisons (language x condition x task, main measure), "
            f"{method} is significantly better in {len(wins)}, significantly worse in {len(losses)}, and not "
            f"significantly different in {ties} ({family})."
        )
        labels = ("Better", "Worse")
    for label, chosen in zip(labels, (wins, losses)):
        if chosen:
            shown = sorted(chosen, key=lambda r: -abs(r.comparison.diff))[:NAMED_IN_VERDICT]
            rest = len(chosen) - len(shown)
            text += (
                f" {label}: "
                + "; ".join(_row_text(r, ctx, arm, change) for r in shown)
                + (f"; and {rest} more (table below)" if rest else "")
                + "."
            )
    lang_group = {lang: g for g, members in ctx.groups.items() for lang in members}
    for group in [] if change else ctx.groups:
        in_group = [r for r in mine if lang_group.get(r.lang) == group]
        if in_group:
            mean = float(np.mean([r.comparison.diff for r in in_group]))
            n_sig = sum(r.comparison.significant for r in in_group)
            text += (
                f" On {group}-resource languages ({', '.join(sorted({r.lang for r in in_group}))}) the mean "
                f"difference is {number(mean, True)} over {len(in_group)} comparisons, {n_sig} of them significant."
            )
    return text


def _question_section(doc: Document, report: StudyReport, ctx: _Context) -> None:
    doc.add(Heading(2, "Answer to the research question"))
    ot_methods = [m for m in ctx.trained if ctx.uses_ot(m)]
    baselines = [m for m in ctx.trained if ctx.is_kd(m)]
    if not ot_methods or not baselines:
        doc.add(
            Paragraph(
                "This study cannot answer it: it needs an OT method and a KD baseline (a method of sentence-level KD losses "
                f"only, such as mse or contrastive); it has {', '.join(ctx.trained) or 'no trained method'}."
            )
        )
        return
    doc.add(
        Paragraph(
            "One subsection per arm: the reference condition, then each axis varied alone from it. Differences are "
            "method minus baseline on the main measure of each task, seed-averaged, with the 95% CI over queries and "
            "seeds; each arm's comparisons form their own Holm families (named in each sentence). Change rows compare "
            "the per-query change from the reference condition (seed by seed) of OT with that of the baseline: "
            "positive means OT gains more, or loses less. At a glance: each cell counts the languages and conditions "
            "where the first system is significantly better / significantly worse / not significantly different "
            "(Holm, within the arm), with the mean difference in brackets; 'n ‡': in n of those cells a system kept its "
            "initial student in every seed; 'n §': in n of them a system's kept student had collapsed in some seed. "
            "Where the typo rate varies, the alignment task is left out: typos touch only the retrieval queries, so its "
            "rows would repeat those of the same students without typos."
        ),
        Paragraph("Tasks: " + "; ".join(_task_legend(ctx)) + "."),
    )
    kd_pairs = [(ot, base) for ot in ot_methods for base in baselines]
    ablation_pairs = [
        (m, ABLATION_REFERENCE)
        for m in ctx.trained
        if ABLATION_REFERENCE in ctx.trained and m != ABLATION_REFERENCE and not ctx.is_kd(m)
    ]
    # Zero-shot has no bitext: it changes only along the typo axis (elsewhere its "change" would be OT's own).
    zero_changes = [(ot, ZERO_SHOT) for ot in ot_methods]
    results = [
        _ArmResult(
            arm,
            kd=_comparisons(ctx, kd_pairs, arm, arm.family(KD_FAMILY)),
            zero=_comparisons(ctx, [(m, ZERO_SHOT) for m in ctx.trained], arm, arm.family(ZERO_SHOT_FAMILY)),
            ablation=_comparisons(ctx, ablation_pairs, arm, arm.family(ABLATION_FAMILY)),
            change=_changes(ctx, _change_pairs(arm, kd_pairs, zero_changes), arm) if arm.axes else [],
        )
        for arm in _arms(ctx.index)
    ]
    glance = _glance_table(results, ctx)
    if glance.rows:
        doc.add(glance)
    for result in results:
        arm = result.arm
        report.question += result.kd + result.zero + result.ablation
        report.changes += result.change
        sentences = _selection_caveats(ctx, result)
        sentences += [_verdict(result.kd, ctx, ot, base, arm) for ot, base in kd_pairs]
        sentences += [_verdict(result.zero, ctx, m, ZERO_SHOT, arm) for m in ctx.trained]
        sentences += [_verdict(result.ablation, ctx, m, base, arm) for m, base in ablation_pairs]
        sentences += [
            _verdict(result.change, ctx, ot, base, arm, change=True) for ot, base in _change_pairs(arm, kd_pairs, zero_changes)
        ]
        if not arm.axes:
            sentences += _resource_contrasts(ctx, kd_pairs + [(m, ZERO_SHOT) for m in ot_methods])
        levels = "; ".join(_condition_label(c, list(arm.axes)) for c in arm.conditions) if arm.axes else ""
        doc.add(Heading(3, f"Arm: {arm.name}" + (f" ({levels})" if levels else "")))
        doc.add(Bullets([s for s in sentences if s]))
        _forest(doc, ctx, arm, [r for r in result.kd + result.zero if ctx.uses_ot(r.method)])
        for kind, rows in result.families():
            needed = resamples_for_family(len(rows))
            if rows and ctx.settings.n_resamples < needed:
                doc.add(
                    Paragraph(
                        f'Warning: the family "{arm.family(kind)}" has {len(rows)} comparisons and the tests drew '
                        f"{ctx.settings.n_resamples} resamples, so no p-value can pass Holm at {ALPHA}: its 'not significant' "
                        f"verdicts say nothing. Rerun `optical study report --resamples {needed}` or more."
                    )
                )
    doc.add(
        Heading(3, "Every comparison of the arms above"),
        Paragraph(
            f"{INITIAL_STUDENT_MARK} after a system: it kept its initial student in every seed of that training condition "
            "(dev selection chose step 0; for a change, at the reference condition too), so there it is the zero-shot "
            f"model and the comparison says nothing about what it learned. {COLLAPSED_STUDENT_MARK} after a system: in at "
            "least one seed the student it kept had collapsed (pooled embeddings of different dev questions nearly "
            "identical), so its scores there are a collapsed encoder's."
        ),
        _comparison_table(report.question, ctx, ["method", "baseline", "condition", "method score", "baseline score"]),
    )
    if report.changes:
        doc.add(_comparison_table(report.changes, ctx, ["OT", "baseline", "changed condition", "OT change", "baseline change"]))


@dataclass(frozen=True)
class _ArmResult:
    """Every comparison of one arm, computed before any of it is rendered."""

    arm: Arm
    kd: list[QuestionRow]
    zero: list[QuestionRow]
    ablation: list[QuestionRow]
    change: list[QuestionRow]

    def families(self) -> tuple[tuple[str, list[QuestionRow]], ...]:
        return (
            (KD_FAMILY, self.kd),
            (ZERO_SHOT_FAMILY, self.zero),
            (ABLATION_FAMILY, self.ablation),
            (CHANGE_FAMILY, self.change),
        )


def _change_pairs(arm: Arm, kd_pairs: list[tuple[str, str]], zero_pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return kd_pairs + (zero_pairs if set(arm.axes) == {"query_noise"} else [])


def _task_legend(ctx: _Context) -> list[str]:
    """Each compared task in one phrase, from the task registry: its queries and candidates, and its main measure."""
    names: dict[str, list[str]] = defaultdict(list)  # one task can write several results (alignment: both directions)
    for task in ctx.question_tasks:
        spec = task_spec(task)
        if spec is not None:
            names[spec.help].append(task)
    return [f"{' / '.join(tasks)}: {help_text}, {aggregate_name(main_measure(tasks[0]))}" for help_text, tasks in names.items()]


def _selection_caveats(ctx: _Context, result: _ArmResult) -> list[str]:
    """What model selection kept that changes what a comparison means, said before the verdicts that count them:
    a collapsed student (its scores are a collapsed encoder's), and an initial one (there it is the zero-shot model)."""
    langs: dict[tuple[str, tuple], set[str]] = defaultdict(set)
    for _, rows in result.families():
        for row in rows:
            for system in ctx.initial_systems(row):
                langs[(system, row.condition[:TRAINED])].add(row.lang)
    training_axes = [axis for axis in result.arm.axes if axis != "query_noise"]
    collapsed: dict[tuple[str, tuple], dict[str, tuple[int, int]]] = defaultdict(dict)
    for _, rows in result.families():
        for row in rows:
            for system in ctx.collapsed_systems(row):
                condition = row.condition[:TRAINED]
                collapsed[(system, condition)][row.lang] = ctx.collapsed_seeds(row.lang, system, row.condition)
    collapse_sentences = [
        f"{system}'s kept student had collapsed (pooled dev-question embeddings nearly identical) in "
        + ", ".join(f"{k} of {n} seeds for {lang}" for lang in ctx.langs if lang in seeds for k, n in [seeds[lang]])
        + (f" at {_condition_label((*condition, None), training_axes)}" if training_axes else "")
        + f": its scores there (marked {COLLAPSED_STUDENT_MARK}) are a collapsed encoder's."
        for (system, condition), seeds in collapsed.items()
    ]
    return collapse_sentences + [
        f"{system} kept its initial student in every seed for {', '.join(lang for lang in ctx.langs if lang in chosen)}"
        + (f" at {_condition_label((*condition, None), training_axes)}" if training_axes else "")
        + f" (dev selection chose step 0): there, comparisons involving it (marked {INITIAL_STUDENT_MARK}) measure the "
        "zero-shot model, not what it learned."
        for (system, condition), chosen in langs.items()
    ]


def _glance_table(results: list[_ArmResult], ctx: _Context) -> Table:
    """One row per arm and comparison, one column per task: how many cells (language x condition) went each way
    after Holm, and the mean difference; the subsections below name the cells."""
    tasks = ctx.question_tasks
    rows = []
    for result in results:
        for kind, family_rows in result.families():
            for method, baseline in dict.fromkeys((r.method, r.baseline) for r in family_rows):
                pair = [r for r in family_rows if r.method == method and r.baseline == baseline]
                cells = []
                for task in tasks:
                    mine = [r for r in pair if r.task == task]
                    if not mine:
                        cells.append("-")
                        continue
                    better = sum(r.comparison.significant and r.comparison.diff > 0 for r in mine)
                    worse = sum(r.comparison.significant and r.comparison.diff < 0 for r in mine)
                    mean = number(float(np.mean([r.comparison.diff for r in mine])), True)
                    flagged = [
                        (sum(bool(ctx.initial_systems(r)) for r in mine), INITIAL_STUDENT_MARK),
                        (sum(bool(ctx.collapsed_systems(r)) for r in mine), COLLAPSED_STUDENT_MARK),
                    ]
                    cells.append(
                        f"{better} / {worse} / {len(mine) - better - worse} ({mean})"
                        + "".join(f", {n} {mark}" for n, mark in flagged if n)
                    )
                label = f"{method} vs {baseline}" + (", change from the reference" if kind == CHANGE_FAMILY else "")
                rows.append([result.arm.name, label, *cells])
    return Table(["arm", "comparison", *(f"{t} {aggregate_name(main_measure(t))}" for t in tasks)], rows)


def _resource_contrasts(ctx: _Context, pairs: list[tuple[str, str]]) -> list[str]:
    """At the reference: is ``method - baseline`` larger on the low-resource languages than on the high-resource ones?

    Each group's per-query differences (paired seed by seed) are pooled over its languages; the contrast
    (low minus high) gets the unpaired two-level bootstrap CI of :func:`~optical.eval.stats.resource_gap`.
    """
    low = [lang for lang in ctx.groups.get("low", []) if lang in ctx.langs]
    high = [lang for lang in ctx.groups.get("high", []) if lang in ctx.langs]
    if not low or not high:
        return []
    reference = ctx.index.ref_condition()
    sentences = []
    for method, baseline in pairs:
        parts, present = [], {"low": set(), "high": set()}
        for task in ctx.question_tasks:
            measure = main_measure(task)
            pooled = {}
            for group, members in (("low", low), ("high", high)):
                diffs = {
                    lang: ctx.index.difference(lang, method, baseline, reference, f"{task}.{lang}", measure) for lang in members
                }
                diffs = {lang: d for lang, d in diffs.items() if d is not None}
                if diffs and len({d.n_seeds for d in diffs.values()}) == 1:
                    pooled[group] = (Sample.pooled(f"{method} − {baseline}", diffs), set(diffs))
            if len(pooled) == 2:
                for group, (_, pooled_langs) in pooled.items():
                    present[group] |= pooled_langs
                gap = resource_gap(pooled["low"][0], pooled["high"][0], ctx.settings)  # high - low
                parts.append(
                    f"{task} {aggregate_name(measure)}: low {number(gap.low_mean, True)}, high {number(gap.high_mean, True)}, "
                    f"low − high {number(-gap.gap, True)} {interval(-gap.ci.high, -gap.ci.low, True)}"
                )
        if parts:
            sentences.append(
                f"Low- vs high-resource, {method} − {baseline} at the reference (low: "
                f"{', '.join(x for x in low if x in present['low'])}; "
                f"high: {', '.join(x for x in high if x in present['high'])}; "
                "95% CI of the contrast, each group resampled on its own over queries and seeds): " + "; ".join(parts) + "."
            )
    return sentences


def _comparison_table(rows: list[QuestionRow], ctx: _Context, names: list[str]) -> Table:
    """One row per comparison; ``names`` label the two systems, the condition and the two means (changes are signed)."""
    signed = "change" in names[3]
    return Table(
        [names[0], names[1], "lang", "task", names[2], "n", names[3], names[4], "Δ [95% CI]", "p_holm"],
        [
            [
                r.method + ctx.marks(r, r.method),
                r.baseline + ctx.marks(r, r.baseline),
                r.lang,
                f"{r.task} {aggregate_name(r.comparison.measure)}",
                _condition_label(r.condition, ctx.varying),
                str(r.comparison.n),
                number(r.comparison.mean_a, signed),
                number(r.comparison.mean_b, signed),
                difference_text(r.comparison),
                p_holm_text(r.comparison),
            ]
            for r in rows
        ],
    )


def _forest(doc: Document, ctx: _Context, arm: Arm, rows: list[QuestionRow]) -> None:
    """The arm's headline figure: OT minus each KD baseline and minus zero-shot, per language (and level of the
    arm's axes), with 95% CIs. One figure per arm keeps the labels short and the figure readable."""
    several_levels = len(arm.conditions) > 1
    panels = {
        f"{task} {aggregate_name(main_measure(task))}": [
            ForestRow(
                f"{r.method} − {r.baseline}, {r.lang}"
                + (f" ({_condition_label(r.condition, list(arm.axes))})" if several_levels else ""),
                r.comparison.diff,
                r.comparison.ci_low,
                r.comparison.ci_high,
                r.comparison.significant,
            )
            for r in rows
            if r.task == task
        ]
        for task in ctx.question_tasks
    }
    if not any(panels.values()):
        return
    slug = re.sub(r"[^a-z0-9]+", "_", arm.name.lower()).strip("_")
    name = ctx.save_plot(
        forest_figure(panels, "difference (method − baseline), 95% CI; filled: Holm-significant"), f"plots/forest.{slug}.png"
    )
    doc.add(Image(name, f"Arm {arm.name}: OT minus each KD baseline and minus zero-shot, per language, with 95% CIs"))


def _changes(ctx: _Context, pairs: list[tuple[str, str]], arm: Arm) -> list[QuestionRow]:
    """Per-query change from the reference to each condition of ``arm``, OT against each baseline (one Holm family)."""
    rows = []
    reference = ctx.index.ref_condition()
    for ot, base in pairs:
        for lang in ctx.langs:
            for condition in arm.conditions:
                for task in _axis_tasks(ctx, arm.axes):
                    key, measure = f"{task}.{lang}", main_measure(task)
                    changes = [ctx.index.change(lang, m, reference, condition, key, measure) for m in (ot, base)]
                    if None not in changes:
                        comparison = compare(*changes, measure, ctx.settings)
                        rows.append(QuestionRow(ot, base, lang, task, condition, comparison, change=True))
    corrected = holm_family([r.comparison for r in rows], arm.family(CHANGE_FAMILY))
    return [dataclasses.replace(r, comparison=c) for r, c in zip(rows, corrected)]


def _curve_section(doc: Document, ctx: _Context, report: StudyReport, axis: str, title: str) -> None:
    doc.add(Heading(2, title))
    index = ctx.index
    values = index.axis_values(axis)
    if axis == "query_noise":
        values = sorted(set(values) | {q for (_, q) in index.zero_shot})
    if len(values) < 2:
        pending = sorted(ctx.planned.get(axis, set()) - set(values), key=_axis_order)
        if pending:
            doc.add(
                Paragraph(
                    f"Pending: the study plans {AXIS_NAMES[axis]} {', '.join(map(str, pending))} beside "
                    f"{', '.join(map(str, values)) or 'none'}, and none of those evaluations has finished yet."
                )
            )
        else:
            only = ", ".join(map(str, values)) or "none"
            doc.add(Paragraph(f"Not measured: the study has one value of {AXIS_NAMES[axis]} ({only})."))
        return
    import matplotlib.pyplot as plt  # the backend is chosen by optical.report.plots
    from matplotlib.lines import Line2D

    # One colour per method in every panel (zero-shot black), methods side by side at each x, four panels to a row.
    drawn = [m for m in ctx.methods if m != ZERO_SHOT or axis == "query_noise"]
    colours = {m: c for m, c in zip(ctx.method_order, _palette(len(ctx.method_order))) if m in drawn}
    if ZERO_SHOT in drawn:
        colours[ZERO_SHOT] = "black"
    shift = 0.2 / max(1, len(colours))
    n_cols = min(4, len(ctx.langs))
    n_rows = -(-len(ctx.langs) // n_cols)
    for task in _axis_tasks(ctx, (axis,)):
        measure = main_measure(task)
        rows = []
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.8 * n_cols + 1.4, 2.9 * n_rows), squeeze=False, layout="constrained")
        for ax in axes.flat[len(ctx.langs) :]:
            ax.set_visible(False)
        for ax, lang in zip(axes.flat, ctx.langs):
            for method in ctx.methods:
                if method == ZERO_SHOT and axis != "query_noise":
                    sample = index.sample(lang, method, index.ref_condition(), f"{task}.{lang}", measure)
                    if sample is not None:
                        ax.axhline(summarize(sample, ctx.settings).mean, linestyle="--", color="black", linewidth=1)
                        rows.append([lang, method, "(any)", _cell_text(sample, ctx.settings)])
                    continue
                points = []
                for position, value in enumerate(values):
                    sample = index.sample(lang, method, index.ref_condition(**{axis: value}), f"{task}.{lang}", measure)
                    if sample is not None:
                        points.append((position, summarize(sample, ctx.settings)))
                        rows.append([lang, method, str(value), _cell_text(sample, ctx.settings)])
                if points:
                    colour = colours[method]
                    offset = (list(colours).index(method) - (len(colours) - 1) / 2) * shift
                    xs = [x + offset for x, _ in points]
                    means = [c.mean for _, c in points]
                    errors = _error_bars(means, [(c.ci_low, c.ci_high) for _, c in points])
                    ax.errorbar(xs, means, yerr=errors, marker="o", markersize=4, capsize=2, color=colour)
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_title(f"{task}.{lang}", fontsize="medium")
            ax.set_xlabel(axis.replace("_", " "))
            ax.set_ylabel(aggregate_name(measure))
        handles = [Line2D([0], [0], color=c, marker="o", label=m) for m, c in colours.items()]
        if axis != "query_noise" and ZERO_SHOT in ctx.methods:
            handles.append(Line2D([0], [0], color="black", linestyle="--", label=f"{ZERO_SHOT} (no bitext)"))
        fig.legend(handles=handles, title="method", loc="outside right upper")
        name = ctx.save_plot(fig, f"plots/{axis}.{task}.png")
        doc.add(Heading(3, f"{task}: {aggregate_name(measure)} vs {axis.replace('_', ' ')} (other axes at reference)"))
        doc.add(Image(name, f"{task} {aggregate_name(measure)} vs {axis}, mean over seeds with 95% CI"))
        doc.add(Table(["lang", "method", axis, f"{aggregate_name(measure)} [95% CI] (seeds)"], rows))

    _difference_curves(doc, ctx, report, axis, values)


def _palette(n: int) -> list:
    """``n`` distinct colours: tab10 without its grey (black marks zero-shot, grey the zero line), then tab20's."""
    import matplotlib.pyplot as plt

    tab10 = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]
    pale = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i % 2 and i != 15]
    colours = tab10 + pale
    return [colours[i % len(colours)] for i in range(n)]


def _error_bars(centres: list[float], intervals: list[tuple[float, float]]) -> list[list[float]]:
    """matplotlib's ``yerr`` from CIs, never negative: a constant cell's mean can sit a rounding error outside its CI."""
    return [
        [max(0.0, c - low) for c, (low, _) in zip(centres, intervals)],
        [max(0.0, high - c) for c, (_, high) in zip(centres, intervals)],
    ]


def _difference_curves(doc: Document, ctx: _Context, report: StudyReport, axis: str, values: list) -> None:
    """OT minus each KD baseline along one axis (others at reference): the arm's Holm-tested differences with 95% CIs."""
    import matplotlib.pyplot as plt  # the backend is chosen by optical.report.plots

    position = AXES.index(axis)
    reference = ctx.index.ref_condition()
    along = [
        r
        for r in report.question
        if ctx.uses_ot(r.method)
        and ctx.is_kd(r.baseline)
        and all(x == ref for i, (x, ref) in enumerate(zip(r.condition, reference)) if i != position)
    ]
    # A pair or task drawn at one value of the axis only (e.g. a baseline run at the reference alone) is no curve.
    spread: dict[tuple[str, str, str], set] = defaultdict(set)
    for r in along:
        spread[(r.method, r.baseline, r.task)].add(r.condition[position])
    along = [r for r in along if len(spread[(r.method, r.baseline, r.task)]) >= 2]
    if not along:
        return
    from matplotlib.lines import Line2D

    tasks = [t for t in _axis_tasks(ctx, (axis,)) if any(r.task == t for r in along)]
    pairs = list(dict.fromkeys((r.method, r.baseline) for r in along))
    langs = [lang for lang in ctx.langs if any(r.lang == lang for r in along)]
    # One colour per language in every panel, one panel per pair and task, and languages side by side at each x.
    colours = dict(zip(langs, _palette(len(langs))))
    shift = 0.3 / max(1, len(langs))
    fig, axes = plt.subplots(
        len(pairs), len(tasks), figsize=(3.8 * len(tasks) + 1.2, 2.8 * len(pairs)), squeeze=False, layout="constrained"
    )
    for row_axes, (method, baseline) in zip(axes, pairs):
        for ax, task in zip(row_axes, tasks):
            for i, lang in enumerate(langs):
                rows = [r for r in along if (r.method, r.baseline, r.task, r.lang) == (method, baseline, task, lang)]
                if not rows:
                    continue
                rows.sort(key=lambda r: values.index(r.condition[position]))
                xs = [values.index(r.condition[position]) + (i - (len(langs) - 1) / 2) * shift for r in rows]
                diffs = [r.comparison.diff for r in rows]
                errors = _error_bars(diffs, [(r.comparison.ci_low, r.comparison.ci_high) for r in rows])
                ax.errorbar(xs, diffs, yerr=errors, marker="o", markersize=4, capsize=2, color=colours[lang])
            ax.axhline(0.0, color="grey", linewidth=1)
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_title(f"{method} − {baseline}: {task} {aggregate_name(main_measure(task))}", fontsize="medium")
            ax.set_xlabel(axis.replace("_", " "))
            ax.set_ylabel("difference, 95% CI")
    handles = [Line2D([0], [0], color=colours[lang], marker="o", label=lang) for lang in langs]
    fig.legend(handles=handles, title="language", loc="outside right upper")
    name = ctx.save_plot(fig, f"plots/{axis}.difference.png")
    doc.add(Heading(3, f"OT minus each KD baseline vs {axis.replace('_', ' ')}"))
    doc.add(
        Image(
            name,
            f"OT minus each KD baseline along {axis.replace('_', ' ')} (other axes at reference), seed-averaged, 95% CI over "
            "queries and seeds (the comparisons of the first section)",
        )
    )


def _gap_section(doc: Document, ctx: _Context) -> None:
    doc.add(Heading(2, "Low- vs high-resource gap"))
    groups = ctx.groups
    low = [lang for lang in groups.get("low", []) if lang in ctx.langs]
    high = [lang for lang in groups.get("high", []) if lang in ctx.langs]
    if not low or not high:
        doc.add(
            Paragraph(
                f"Not measured: it needs languages of both groups (low: {', '.join(groups.get('low', []))}; "
                f"high: {', '.join(groups.get('high', []))}); the study has {', '.join(ctx.langs)}."
            )
        )
        return
    doc.add(
        Paragraph(
            f"Gap = mean over high-resource ({', '.join(high)}) minus low-resource ({', '.join(low)}) queries at the reference "
            "condition; 95% CI: each group resampled on its own (unpaired; over queries and seeds with several seeds)."
        )
    )
    rows = []
    for task in ctx.question_tasks:
        measure = main_measure(task)
        for method in ctx.methods:
            pooled = {}
            for group, members in (("low", low), ("high", high)):
                parts = {
                    lang: ctx.index.sample(lang, method, ctx.index.ref_condition(), f"{task}.{lang}", measure) for lang in members
                }
                parts = {lang: s for lang, s in parts.items() if s is not None}
                if parts and len({s.n_seeds for s in parts.values()}) == 1:
                    pooled[group] = Sample.pooled(method, parts)
            if len(pooled) == 2:
                gap = resource_gap(pooled["low"], pooled["high"], ctx.settings)
                rows.append(
                    [
                        f"{task} {aggregate_name(measure)}",
                        method,
                        number(gap.low_mean),
                        number(gap.high_mean),
                        f"{number(gap.gap, True)} {interval(gap.ci.low, gap.ci.high, True)}",
                    ]
                )
    doc.add(Table(["task", "method", "low", "high", "gap [95% CI]"], rows))


def _bias_retention_section(doc: Document, ctx: _Context) -> None:
    index, reference = ctx.index, ctx.index.ref_condition()
    doc.add(Heading(2, "Language bias (LAReQA pool)"))
    if "pool" not in ctx.task_names:
        doc.add(Paragraph("Not measured: the study's evaluations do not include the pool task."))
    else:
        doc.add(
            Paragraph(
                "LangShare@10: share of the top 10 in the query's language (the pool holds the same sentences in "
                f"{len(XQUADR_LANGS)} languages, so a ranker blind to language puts about 1/{len(XQUADR_LANGS)} = "
                f"{1 / len(XQUADR_LANGS):.2f} of its top 10 there); GoldRankGap: rank of the English gold minus rank of "
                "the same-language gold (positive: the same-language answer ranks higher). Reference condition."
            )
        )
        rows = [
            [
                lang,
                method,
                *(
                    _cell_text(index.sample(lang, method, reference, f"pool.{lang}", m), ctx.settings)
                    for m in ("AP", *BIAS_MEASURES)
                ),
            ]
            for lang in ctx.langs
            for method in ctx.methods
        ]
        doc.add(Table(["lang", "method", "mAP", *BIAS_MEASURES], rows))
    doc.add(Heading(2, "English retention"))
    if "retention" not in ctx.task_names:
        doc.add(Paragraph("Not measured: the study's evaluations do not include the retention task."))
        return
    doc.add(
        Paragraph(
            "English questions against English sentences with each student (trained on the row's language), "
            "MRR@10 at the reference condition: does distillation damage English?"
        )
    )
    measure = main_measure(RETENTION.split(".")[0])
    rows = [
        [lang, *(_cell_text(index.sample(lang, method, reference, RETENTION, measure), ctx.settings) for method in ctx.methods)]
        for lang in ctx.langs
    ]
    doc.add(Table(["trained on", *ctx.methods], rows))


def _coverage_section(doc: Document, manifest: dict, ctx: _Context) -> None:
    """Per method and training condition: how many of its planned runs are done, and which languages still wait."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for entry in manifest["runs"]:
        condition = tuple(entry.get(axis) for axis in AXES[:TRAINED])
        cells[(entry["method"], condition)].append(entry)
    training_axes = [axis for axis in ctx.varying if axis != "query_noise"]
    rows = []
    for (method, condition), entries in cells.items():
        waiting = {e["lang"] for e in entries if e["status"] != "done"}
        rows.append(
            [
                method,
                _coverage_condition(method, condition, training_axes, ctx.varying),
                f"{sum(e['status'] == 'done' for e in entries)} / {len(entries)}",
                ", ".join(lang for lang in dict.fromkeys(e["lang"] for e in entries) if lang in waiting) or "-",
            ]
        )
    doc.add(
        Heading(2, "Coverage"),
        Paragraph("Runs done of those planned, per method and training condition, and the languages still waiting."),
        Table(["method", "condition", "runs done", "languages waiting"], rows),
    )


def _comparisons_json(report: StudyReport, ctx: _Context) -> dict[str, Any]:
    """The first section's comparisons as data: each with its condition, family, statistics and marks."""

    def row(r: QuestionRow) -> dict[str, Any]:
        return {
            "kind": "change" if r.change else "level",
            "method": r.method,
            "baseline": r.baseline,
            "lang": r.lang,
            "task": r.task,
            "condition": dict(zip(AXES, r.condition)),
            "kept_initial_student": ctx.initial_systems(r),
            "kept_collapsed_student": ctx.collapsed_systems(r),
            **dataclasses.asdict(r.comparison),
        }

    return {
        "alpha": ALPHA,
        "n_resamples": ctx.settings.n_resamples,
        "seed": ctx.settings.seed,
        "reference": dict(zip(AXES, ctx.index.ref_condition())),
        "comparisons": [row(r) for r in report.question + report.changes],
    }


def _coverage_condition(method: str, condition: tuple, training_axes: list[str], varying: list[str]) -> str:
    if method == ZERO_SHOT:  # no training condition; one model per backbone
        return _condition_label((*condition, None), ["backbone"]) if "backbone" in varying else "-"
    return _condition_label((*condition, None), training_axes) if training_axes else "reference"


def _training_section(doc: Document, distills: list[tuple[dict, RunRecord]]) -> None:
    """One row per distillation run, from its ``run.json``: what model selection kept and what training cost."""
    rows = []
    kept_initial: dict[tuple[str, str], list[bool]] = defaultdict(list)
    collapsed: dict[tuple[str, str], list[bool]] = defaultdict(list)
    minutes: dict[tuple[str, ...], list[float]] = defaultdict(list)
    # Runs computed several at once on one machine (a local Ray cluster) each had fewer threads and took longer: the
    # cost table keeps them apart once runs record their threads (older records do not: no column then).
    by_threads = any(record.torch_threads for _, record in distills)
    for entry, record in distills:
        result, start = record.result, record.result.dev_before
        if result.best_step is not None:
            condition = ", ".join(f"{axis} {cell_text(entry.get(axis))}" for axis in ("budget", "noise", "backbone", "domain"))
            kept_initial[(entry["method"], condition)].append(result.best_step == 0)
            if result.spread_measured:
                collapsed[(entry["method"], condition)].append(result.collapsed_at is not None)
        cost_key = (entry["method"], str(entry["budget"]), *((str(record.torch_threads or "-"),) if by_threads else ()))
        minutes[cost_key].append(record.timings.train_seconds / 60)
        rows.append(
            [
                entry["lang"],
                entry["method"],
                str(entry["seed"]),
                str(entry["budget"]),
                cell_text(entry["noise"]),
                str(result.steps),
                cell_text(result.best_step),
                "-" if start is None else number(start),
                "-" if result.best_metric is None else number(result.best_metric),
                f"{record.timings.train_seconds / 60:.1f}",
                f"{result.pairs_per_second:.1f}",
            ]
        )
    if rows:
        doc.add(
            Heading(2, "Training runs"),
            Paragraph(
                "Per distillation run: steps, the step model selection kept (0 = the initial student, i.e. training did "
                "not help on the dev split), the dev metric before training and at the kept step, and the training cost "
                "(wall minutes, pairs per second; a run paused or sharing the machine shows a lower rate)."
            ),
            Table(
                [
                    "lang",
                    "method",
                    "seed",
                    "budget",
                    "noise",
                    "steps",
                    "kept step",
                    "dev before",
                    "dev kept",
                    "train min",
                    "pairs/s",
                ],
                rows,
            ),
        )
    if minutes:
        doc.add(
            Paragraph(
                "Cost: training minutes per run (wall clock of the training loop) by method and bitext budget"
                + (
                    " and the torch threads each run had (runs computed several at once on one machine had fewer "
                    "threads each and took longer per run; '-': not recorded)"
                    if by_threads
                    else ""
                )
                + ". The median is the typical cost; the max shows runs that were paused or shared the machine."
            ),
            Table(
                ["method", "budget", *(["threads"] if by_threads else []), "runs", "median min", "min", "max"],
                [
                    [*key, str(len(v)), f"{np.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}"]
                    for key, v in sorted(minutes.items(), key=lambda item: _cost_order(item[0]))
                ],
            ),
        )
    if kept_initial:
        doc.add(
            Paragraph(
                "Runs whose model selection kept step 0 (the initial student scored best on the dev split: the run learned "
                "nothing that selection could see), per method and condition:"
            ),
            Table(
                ["method", "condition", "kept step 0", "collapsed"],
                [
                    [method, where, _share(flags), _share(collapsed.get((method, where)))]
                    for (method, where), flags in sorted(kept_initial.items())
                ],
            ),
            Paragraph(
                "collapsed: runs whose pooled dev-query embeddings became nearly identical at some dev evaluation (spread, "
                f"1 − mean pairwise cosine, below {COLLAPSE_SPREAD_RATIO:g} x the initial student's): a collapse, not just "
                "a run that learned little; n/a where the runs did not record the spread."
            ),
        )


def _cost_order(key: tuple[str, ...]) -> tuple:
    """Cost rows by method, budget, then threads in numeric order ('-', not recorded, first)."""
    return (*key[:2], *(int(t) if t.isdigit() else 0 for t in key[2:]))


def _share(flags: list[bool] | None) -> str:
    """``k of n`` flags set, or ``n/a`` when nothing was measured."""
    return "n/a" if not flags else f"{sum(flags)} of {len(flags)}"
