"""Compare evaluation runs: every system against a baseline, per task, measure and language.

Runs that share a ``system`` name are the seeds of one system: their
per-query values are averaged over seeds before any test (see
:func:`optical.eval.stats.average_over_seeds`). For each task, measure and
system-vs-baseline pair:

* per language, a :class:`~optical.eval.stats.PairedComparison` (paired
  randomisation test, paired bootstrap CI, d_z), Holm-corrected across the
  languages of the task;
* per resource group (default low: el hi th tr, high: de es ru zh), the same
  on the per-query values pooled over the group's languages, Holm-corrected
  across the groups.

Every system also gets its mean with a query-bootstrap CI per language and
group, and for the main measure of each task its low/high resource gap
(``high - low``). :func:`compare_runs` writes ``report.md``,
``comparison.json`` and PNG plots; every number in them comes from here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optical.errors import OpticalError
from optical.eval.metrics import DEFAULT_MEASURES, LANGUAGE_BIAS_MEASURES
from optical.eval.results import EvalRun, task_of
from optical.eval.stats import (
    ALPHA,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PairedComparison,
    apply_holm,
    average_over_seeds,
    bootstrap_ci,
    bootstrap_difference_ci,
    paired_comparison,
)
from optical.storage import atomic_write_json, atomic_write_text

DEFAULT_RESOURCE_GROUPS: dict[str, list[str]] = {"low": ["el", "hi", "th", "tr"], "high": ["de", "es", "ru", "zh"]}
#: The headline measure of a task (plots, resource gap); a task not listed uses its first measure.
MAIN_MEASURES: dict[str, str] = {
    "clir_sentence": "RR@10",
    "clir_paragraph": "RR@10",
    "pool": "AP",
    "retention": "RR@10",
    "align_x2en": "R@1",
    "align_en2x": "R@1",
}
_MEASURE_ORDER = (*DEFAULT_MEASURES, *LANGUAGE_BIAS_MEASURES)


@dataclass(frozen=True)
class SystemInfo:
    """One compared system: its name, where it came from and how many seeds (run dirs) it has."""

    name: str
    students: tuple[str, ...]  # one per seed, in run-dir order
    teacher: str
    run_dirs: tuple[str, ...]

    @property
    def n_seeds(self) -> int:
        return len(self.run_dirs)


@dataclass(frozen=True)
class CellSummary:
    """One system's mean on (task, scope, measure), with a query-bootstrap 95% CI.

    ``scope`` is a language code or a resource group name (``scope_kind``
    "lang" or "group").
    """

    system: str
    task: str
    scope: str
    scope_kind: str
    measure: str
    n_queries: int
    n_seeds: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ScopedComparison:
    """A paired comparison (system vs baseline) of one task, scope and measure."""

    task: str
    scope: str
    scope_kind: str
    comparison: PairedComparison


@dataclass(frozen=True)
class ResourceGap:
    """``high - low``: a system's mean on the high-resource group minus the low-resource one."""

    system: str
    task: str
    measure: str
    low_mean: float
    high_mean: float
    gap: float
    ci_low: float
    ci_high: float


@dataclass
class ComparisonReport:
    """Everything :func:`compare_runs` computed, and the files it wrote."""

    systems: list[SystemInfo]
    baseline: str
    split_name: str
    split_fingerprint: str
    resource_groups: dict[str, list[str]]
    tasks: dict[str, list[str]]  # task -> languages
    measures: dict[str, list[str]]  # task -> measures compared
    main_measures: dict[str, str]
    summaries: list[CellSummary]
    comparisons: list[ScopedComparison]
    gaps: list[ResourceGap]
    n_resamples: int
    seed: int
    alpha: float = ALPHA
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def summary(self, system: str, task: str, scope: str, measure: str) -> CellSummary | None:
        for cell in self.summaries:
            if (cell.system, cell.task, cell.scope, cell.measure) == (system, task, scope, measure):
                return cell
        return None

    def comparison(self, system: str, task: str, scope: str, measure: str) -> PairedComparison | None:
        for row in self.comparisons:
            c = row.comparison
            if (c.system_a, row.task, row.scope, c.measure) == (system, task, scope, measure):
                return c
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "split": {"name": self.split_name, "fingerprint": self.split_fingerprint},
            "alpha": self.alpha,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "resource_groups": self.resource_groups,
            "systems": [{**dataclasses.asdict(s), "n_seeds": s.n_seeds} for s in self.systems],
            "tasks": self.tasks,
            "measures": self.measures,
            "main_measures": self.main_measures,
            "summaries": [dataclasses.asdict(c) for c in self.summaries],
            "comparisons": [
                {"task": r.task, "scope": r.scope, "scope_kind": r.scope_kind, **dataclasses.asdict(r.comparison)}
                for r in self.comparisons
            ],
            "resource_gaps": [dataclasses.asdict(g) for g in self.gaps],
            "notes": self.notes,
            "files": self.files,
        }


def _load_runs(run_dirs: Sequence[Path]) -> list[tuple[Path, EvalRun]]:
    if not run_dirs:
        raise OpticalError("no run dirs given: pass at least one evaluation run dir")
    runs = [(Path(d), EvalRun.load(d, with_trec=False)) for d in run_dirs]
    first_dir, first = runs[0]
    task_fingerprints: dict[str, tuple[Path, str, str]] = {}
    for run_dir, run in runs:
        if run.split_fingerprint != first.split_fingerprint:
            raise OpticalError(
                f"{first_dir} ({first.system}) and {run_dir} ({run.system}) were evaluated on different splits "
                f"(fingerprints {first.split_fingerprint} vs {run.split_fingerprint}): compare runs of one split"
            )
        for key, task in run.tasks.items():
            seen = task_fingerprints.setdefault(key, (run_dir, run.system, task.task_fingerprint))
            if seen[2] != task.task_fingerprint:
                raise OpticalError(
                    f"{seen[0]} ({seen[1]}) and {run_dir} ({run.system}) have different data for task {key} "
                    f"(fingerprints {seen[2]} vs {task.task_fingerprint}): re-evaluate on the same task data"
                )
    return runs


def _ordered_measures(available: set[str], wanted: Sequence[str] | None) -> list[str]:
    if wanted is not None:
        return [m for m in wanted if m in available]
    known = [m for m in _MEASURE_ORDER if m in available]
    return known + sorted(available - set(known))


def compare_runs(
    run_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    baseline: str | None = None,
    resource_groups: Mapping[str, Sequence[str]] | None = None,
    measures: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ComparisonReport:
    """Compare evaluation runs and write ``report.md``, ``comparison.json`` and plots to ``out_dir``.

    ``baseline`` is a system name; by default the zero-shot system (student
    ``"zero-shot"``) if there is one, else the first run's system.
    ``measures`` restricts (and orders) the measures; by default every measure
    the runs hold. Refuses runs whose split or task fingerprints differ.
    """
    groups = {name: list(langs) for name, langs in (resource_groups or DEFAULT_RESOURCE_GROUPS).items()}
    runs = _load_runs([Path(d) for d in run_dirs])

    seeds_of: dict[str, list[tuple[Path, EvalRun]]] = {}
    for run_dir, run in runs:
        seeds_of.setdefault(run.system, []).append((run_dir, run))
    for name, seeds in seeds_of.items():
        teachers = {r.teacher for _, r in seeds}
        if len(teachers) > 1:
            raise OpticalError(
                f"runs named {name!r} ({', '.join(str(d) for d, _ in seeds)}) have different teachers "
                f"({', '.join(sorted(teachers))}): seeds of one system share a teacher; rename the system"
            )
    systems = [
        SystemInfo(name, tuple(r.student for _, r in seeds), seeds[0][1].teacher, tuple(str(d) for d, _ in seeds))
        for name, seeds in seeds_of.items()
    ]
    if baseline is None:
        zero_shot = [s.name for s in systems if all(r.is_zero_shot for _, r in seeds_of[s.name])]
        baseline = zero_shot[0] if zero_shot else systems[0].name
    elif baseline not in seeds_of:
        raise OpticalError(f"baseline {baseline!r} is not among the systems compared ({', '.join(seeds_of)})")

    notes: list[str] = []
    # (system, task_key) -> {measure: seed-averaged per-query values}
    values: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for name, seeds in seeds_of.items():
        keys = set.intersection(*(set(r.tasks) for _, r in seeds))
        for key in sorted(set.union(*(set(r.tasks) for _, r in seeds)) - keys):
            notes.append(f"{name}: task {key} is missing from some of its seeds and is left out")
        for key in keys:
            task_measures = set.intersection(*(set(r.tasks[key].per_query) for _, r in seeds))
            values[(name, key)] = {
                m: average_over_seeds([r.tasks[key].per_query[m] for _, r in seeds], f"{name} ({key}, {m})")
                for m in task_measures
            }

    baseline_keys = sorted(key for (name, key) in values if name == baseline)
    tasks: dict[str, list[str]] = {}
    for key in baseline_keys:
        tasks.setdefault(task_of(key), []).append(key.split(".", 1)[1])
    for (name, key) in sorted(values):
        if name != baseline and key not in baseline_keys:
            notes.append(f"{name}: task {key} has no baseline counterpart and is left out")

    task_measures: dict[str, list[str]] = {}
    main_measures: dict[str, str] = {}
    summaries: list[CellSummary] = []
    comparisons: list[ScopedComparison] = []
    gaps: list[ResourceGap] = []
    n_seeds = {s.name: s.n_seeds for s in systems}
    for task, langs in tasks.items():
        available = set.intersection(*(set(values[(baseline, f"{task}.{lang}")]) for lang in langs))
        task_measures[task] = _ordered_measures(available, measures)
        if not task_measures[task]:
            notes.append(f"task {task}: none of the requested measures is available; left out")
            continue
        preferred = MAIN_MEASURES.get(task)
        main_measures[task] = preferred if preferred in task_measures[task] else task_measures[task][0]
        group_langs = {g: [lang for lang in members if lang in langs] for g, members in groups.items()}
        group_langs = {g: members for g, members in group_langs.items() if members}
        for g, members in group_langs.items():
            if len(members) < len(groups[g]):
                missing = sorted(set(groups[g]) - set(members))
                notes.append(f"task {task}: group {g} pools {', '.join(members)} (no data for {', '.join(missing)})")
        for measure in task_measures[task]:

            def scope_values(system: str, scope: str, kind: str) -> dict[str, float] | None:
                members = [scope] if kind == "lang" else group_langs[scope]
                pooled: dict[str, float] = {}
                for lang in members:
                    per_measure = values.get((system, f"{task}.{lang}"))
                    if per_measure is None or measure not in per_measure:
                        return None
                    pooled.update({f"{lang}/{qid}": v for qid, v in per_measure[measure].items()})
                return pooled

            scopes = [(lang, "lang") for lang in langs] + [(g, "group") for g in group_langs]
            for system in seeds_of:
                for scope, kind in scopes:
                    pooled = scope_values(system, scope, kind)
                    if pooled is None:
                        continue
                    array = np.fromiter(pooled.values(), dtype=np.float64)
                    ci = bootstrap_ci(array, n_resamples, seed)
                    summaries.append(
                        CellSummary(system, task, scope, kind, measure, array.size, n_seeds[system], float(array.mean()), ci.low, ci.high)
                    )
                if measure == main_measures[task] and {"low", "high"} <= set(group_langs):
                    low, high = scope_values(system, "low", "group"), scope_values(system, "high", "group")
                    if low is not None and high is not None:
                        gaps.append(_gap(system, task, measure, low, high, n_resamples, seed))
                if system == baseline:
                    continue
                for kind in ("lang", "group"):
                    family: list[tuple[str, PairedComparison]] = []
                    for scope, scope_kind in scopes:
                        if scope_kind != kind:
                            continue
                        mine, theirs = scope_values(system, scope, kind), scope_values(baseline, scope, kind)
                        if mine is None or theirs is None:
                            continue
                        family.append(
                            (scope, paired_comparison(mine, theirs, system, baseline, measure, n_resamples, seed))
                        )
                    corrected = apply_holm([c for _, c in family])
                    comparisons.extend(ScopedComparison(task, scope, kind, c) for (scope, _), c in zip(family, corrected))

    report = ComparisonReport(
        systems=systems,
        baseline=baseline,
        split_name=runs[0][1].split_name,
        split_fingerprint=runs[0][1].split_fingerprint,
        resource_groups=groups,
        tasks=tasks,
        measures=task_measures,
        main_measures=main_measures,
        summaries=summaries,
        comparisons=comparisons,
        gaps=gaps,
        n_resamples=n_resamples,
        seed=seed,
        notes=notes,
    )
    _write(report, Path(out_dir))
    return report


def _gap(system: str, task: str, measure: str, low: dict[str, float], high: dict[str, float], n_resamples: int, seed: int) -> ResourceGap:
    low_values = np.fromiter(low.values(), dtype=np.float64)
    high_values = np.fromiter(high.values(), dtype=np.float64)
    ci = bootstrap_difference_ci(high_values, low_values, n_resamples, seed)
    return ResourceGap(
        system, task, measure, float(low_values.mean()), float(high_values.mean()),
        float(high_values.mean() - low_values.mean()), ci.low, ci.high,
    )


def _write(report: ComparisonReport, out_dir: Path) -> None:
    # Imported here: plotting pulls in matplotlib, which the numbers do not need.
    from optical.report.markdown import render_markdown
    from optical.report.plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    plot_files = write_plots(report, out_dir)
    report.files = ["report.md", "comparison.json", *(str(p.relative_to(out_dir)) for p in plot_files)]
    atomic_write_text(out_dir / "report.md", render_markdown(report, plot_files=[p.relative_to(out_dir) for p in plot_files]))
    atomic_write_json(out_dir / "comparison.json", report.to_json())
