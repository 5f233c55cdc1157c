"""Compare evaluation runs: each system against the zero-shot model and each KD baseline, per task, measure and language.

:func:`compare_runs` computes and returns a :class:`ComparisonReport`; it writes
nothing. The report renders itself (``to_markdown()``, ``to_json()``,
``to_document()``) and ``save(out_dir)`` writes ``report.md``,
``comparison.json`` and the plots (the shape of ranx's ``compare()`` ->
``Report``). Every number comes from the statistics policy of
:mod:`optical.eval.stats`, the same one the study report uses, so a pair of
systems gets the same mean, CI and p-value in both.

Runs that share a ``system`` name are the seeds of one system. For each task,
measure and compared pair:

* per language, a :class:`~optical.eval.stats.PairedComparison`, Holm-corrected
  over the languages of the task (the family is named in the output);
* per resource group with at least two of its languages present (default
  low: el hi th tr, high: de es ru zh), the same on the per-query values pooled
  over the group's languages, Holm-corrected over the groups.

Which pairs: by default every system against the zero-shot model, and every
system that is not itself a KD baseline against each KD baseline present
(:attr:`~optical.losses.combined.MethodSpec.is_kd_baseline`): the research question needs both
"does distillation help at all?" and "does OT beat KD?". Every system also gets
its mean with a CI per language and group, and for the main measure of each
task its low/high resource gap (``high - low``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optical.errors import OpticalError
from optical.eval.metrics import DEFAULT_MEASURES, LANGUAGE_BIAS_MEASURES, aggregate_name, per_query_name
from optical.eval.results import EvalRun, task_of
from optical.eval.stats import (
    ALPHA,
    PairedComparison,
    Sample,
    StatsSettings,
    compare,
    holm_family,
    resource_gap,
    summarize,
)
from optical.eval.tasks import RESOURCE_GROUPS, main_measure
from optical.formatting import interval, number, p_value, safe_filename
from optical.losses.combined import MethodSpec
from optical.report.document import Bullets, Document, Heading, Image, Paragraph, Table
from optical.storage import atomic_write_json, atomic_write_text

_MEASURE_ORDER = (*DEFAULT_MEASURES, *LANGUAGE_BIAS_MEASURES)
SIGNIFICANT_MARK = "†"


@dataclass(frozen=True)
class SystemInfo:
    """One compared system: its name, where it came from and how many seeds (run dirs) it has."""

    name: str
    students: tuple[str, ...]  # one per seed, in run-dir order
    teacher: str
    run_dirs: tuple[str, ...]
    zero_shot: bool  # the teacher itself as query encoder
    method: str | None  # the distillation method from the runs' distill config, where recorded

    @property
    def n_seeds(self) -> int:
        return len(self.run_dirs)


@dataclass(frozen=True)
class CellSummary:
    """One system's mean on (task, scope, measure) with its 95% CI (see :func:`optical.eval.stats.summarize`).

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


def policy_text(settings: StatsSettings) -> str:
    """The statistics policy in one paragraph, as both reports print it."""
    return (
        f"A system's cell is its mean over queries of the per-query values averaged over its training seeds, with a 95% "
        f"percentile bootstrap CI ({settings.n_resamples} resamples, seed {settings.seed}) over queries, and over queries "
        "and seeds (two-level) when it has several seeds. A difference Δ = A − B has the same kind of CI (paired: one "
        "query draw for both systems). Its two-sided p-value comes from a paired randomisation (sign-flip) test over "
        "queries when both systems have one seed (Smucker, Allan & Carterette, CIKM 2007), and from the same two-level "
        "bootstrap as its CI when either has several (the p-value that inverts the percentile interval, so seed spread "
        f"counts, and before correction p < {ALPHA} agrees with a CI that leaves out 0). p-values are Holm-corrected "
        f"(Holm 1979) within the family named beside it; {SIGNIFICANT_MARK} marks p_holm < {ALPHA}. The CIs are not "
        f"corrected for multiplicity: a CI clear of 0 without {SIGNIFICANT_MARK} did not survive Holm. A p printed as "
        "'≤ x' sits at its test's resampling floor (2/(R+1) for the bootstrap, 1/(R+1) for the sign-flip test, before "
        "correction): the true p may be smaller, and so may that of a later p_holm of its family that Holm raised to "
        "the same value."
    )


@dataclass
class ComparisonReport:
    """Everything :func:`compare_runs` computed. It renders itself; nothing is written until :meth:`save`."""

    systems: list[SystemInfo]
    pairs: list[tuple[str, str]]  # (system, baseline), in display order
    split_name: str
    split_fingerprint: str
    resource_groups: dict[str, list[str]]
    tasks: dict[str, list[str]]  # task -> languages
    measures: dict[str, list[str]]  # task -> measures compared
    main_measures: dict[str, str]
    summaries: list[CellSummary]
    comparisons: list[ScopedComparison]
    gaps: list[ResourceGap]
    settings: StatsSettings
    notes: list[str] = field(default_factory=list)

    @property
    def baselines(self) -> list[str]:
        return list(dict.fromkeys(baseline for _, baseline in self.pairs))

    def summary(self, system: str, task: str, scope: str, measure: str) -> CellSummary | None:
        for cell in self.summaries:
            if (cell.system, cell.task, cell.scope, cell.measure) == (system, task, scope, measure):
                return cell
        return None

    def comparison(self, system: str, baseline: str, task: str, scope: str, measure: str) -> PairedComparison | None:
        for row in self.comparisons:
            c = row.comparison
            if (c.system_a, c.system_b, row.task, row.scope, c.measure) == (system, baseline, task, scope, measure):
                return c
        return None

    def scopes(self, task: str, measure: str) -> list[tuple[str, str]]:
        """(scope, kind) rows of a task's table: its languages, then the groups that have a summary."""
        groups = [
            g
            for g in self.resource_groups
            if any(c.task == task and c.scope == g and c.scope_kind == "group" and c.measure == measure for c in self.summaries)
        ]
        return [(lang, "lang") for lang in self.tasks[task]] + [(g, "group") for g in groups]

    def group_members(self, task: str, group: str) -> list[str]:
        return [lang for lang in self.resource_groups[group] if lang in self.tasks[task]]

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": [list(pair) for pair in self.pairs],
            "split": {"name": self.split_name, "fingerprint": self.split_fingerprint},
            "alpha": ALPHA,
            "n_resamples": self.settings.n_resamples,
            "seed": self.settings.seed,
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
        }

    def to_document(self, plot_files: Sequence[Path] = ()) -> Document:
        doc = Document("Comparison of evaluation runs")
        doc.add(
            Paragraph(
                f"Split `{self.split_name}` (fingerprint `{self.split_fingerprint}`). Compared pairs: "
                + ", ".join(f"**{a}** vs {b}" for a, b in self.pairs)
                + "."
            ),
            Table(
                ["system", "method", "student", "teacher", "seeds", "run dirs"],
                [
                    [
                        s.name,
                        s.method or "-",
                        ", ".join(f"`{_shown(x)}`" for x in s.students),
                        s.teacher,
                        str(s.n_seeds),
                        ", ".join(f"`{_shown(d)}`" for d in s.run_dirs),
                    ]
                    for s in self.systems
                ],
            ),
            Heading(2, "How to read the tables"),
            Bullets(
                [
                    policy_text(self.settings),
                    "Holm families: per task, measure and pair, the languages of the table form one family and the "
                    "resource groups another; each Δ column names its pair.",
                    "Group rows pool the per-query values of the group's languages (shown only when two or more of them "
                    "are present): " + "; ".join(f"{g} = {', '.join(m)}" for g, m in self.resource_groups.items()) + ".",
                ]
            ),
        )
        if plot_files:
            forest = [p for p in plot_files if p.name == "forest.png"]
            for path in forest:
                doc.add(Image(path, "Paired differences (system minus baseline) on each task's main measure, 95% CI"))
        if self.notes:
            doc.add(Paragraph("Notes:"), Bullets(self.notes))
        for task, measures in self.measures.items():
            if not measures:
                continue
            doc.add(Heading(2, task))
            main = self.main_measures.get(task)
            for measure in sorted(measures, key=lambda m: m != main):  # the main measure first
                doc.add(Heading(3, f"{task}: {aggregate_name(measure)}" + (" (main measure)" if measure == main else "")))
                doc.add(self._measure_table(task, measure))
            doc.add(*self._gap_blocks(task))
        others = [p for p in plot_files if p.name != "forest.png"]
        if others:
            doc.add(Heading(2, "Plots"), *(Image(p, p.stem) for p in others))
        return doc

    def _gap_blocks(self, task: str) -> list:
        gaps = [g for g in self.gaps if g.task == task]
        if not gaps:
            return []
        rows = [
            [g.system, number(g.low_mean), number(g.high_mean), f"{number(g.gap, True)} {interval(g.ci_low, g.ci_high, True)}"]
            for g in gaps
        ]
        return [
            Heading(3, f"{task}: resource gap ({aggregate_name(gaps[0].measure)}, high − low)"),
            Paragraph("95% CI: each group resampled on its own (unpaired bootstrap). No test is made on the gap."),
            Table(["system", "low", "high", "gap [95% CI]"], rows),
        ]

    def _measure_table(self, task: str, measure: str) -> Table:
        header = ["scope", "n", *(s.name for s in self.systems)]
        for system, baseline in self.pairs:
            header += [f"Δ {system} − {baseline}", "p_holm"]
        rows = []
        for scope, kind in self.scopes(task, measure):
            cells = [self.summary(s.name, task, scope, measure) for s in self.systems]
            present = [c for c in cells if c is not None]
            if not present:
                continue
            label = f"**{scope}** ({', '.join(self.group_members(task, scope))})" if kind == "group" else scope
            row = [label, str(present[0].n_queries)]
            row += [f"{number(c.mean)} {interval(c.ci_low, c.ci_high)}" if c else "–" for c in cells]
            for system, baseline in self.pairs:
                c = self.comparison(system, baseline, task, scope, measure)
                row += ["–", "–"] if c is None else [difference_text(c), p_holm_text(c)]
            rows.append(row)
        return Table(header, rows)

    def to_markdown(self, plot_files: Sequence[Path] = ()) -> str:
        return self.to_document(plot_files).markdown()

    def save(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write ``report.md``, ``comparison.json`` and ``plots/*.png`` into ``out_dir``; return the paths written."""
        out_dir = Path(out_dir)
        plots = [p.relative_to(out_dir) for p in self._write_plots(out_dir)]
        atomic_write_text(out_dir / "report.md", self.to_markdown(plots))
        atomic_write_json(out_dir / "comparison.json", self.to_json())
        return [out_dir / "report.md", out_dir / "comparison.json", *(out_dir / p for p in plots)]

    def _write_plots(self, out_dir: Path) -> list[Path]:
        """The forest plot (``plots/forest.png``), each task's per-scope means with CIs
        (``plots/<task>.<measure>.png``) and the resource gaps (``plots/resource_gap.png``)."""
        from optical.report.plots import ForestRow, forest_figure, save_figure  # matplotlib: only when plots are written

        written = []
        panels = {}
        for task, measure in self.main_measures.items():
            rows = []
            for system, baseline in self.pairs:
                for scope, _ in self.scopes(task, measure):
                    c = self.comparison(system, baseline, task, scope, measure)
                    if c is not None:
                        rows.append(ForestRow(f"{system} − {baseline}, {scope}", c.diff, c.ci_low, c.ci_high, c.significant))
            panels[f"{task} {aggregate_name(measure)}"] = rows
        if any(panels.values()):
            fig = forest_figure(panels, "difference (system − baseline), 95% CI; filled: Holm-significant")
            written.append(save_figure(fig, out_dir / "plots" / "forest.png"))
        for task, measure in self.main_measures.items():
            path = out_dir / "plots" / f"{safe_filename(task)}.{safe_filename(measure)}.png"
            written.append(save_figure(self._means_figure(task, measure), path))
        if self.gaps:
            gap_rows = [ForestRow(f"{g.system}, {g.task}", g.gap, g.ci_low, g.ci_high, False) for g in self.gaps]
            fig = forest_figure({"resource gap per system (high − low), 95% CI": gap_rows}, "high − low resource")
            written.append(save_figure(fig, out_dir / "plots" / "resource_gap.png"))
        return written

    def _means_figure(self, task: str, measure: str):
        from optical.report.plots import MeanPoint, means_figure

        scopes = [scope for scope, _ in self.scopes(task, measure)]
        points = {}
        for system in self.systems:
            cells = [(x, self.summary(system.name, task, scope, measure)) for x, scope in enumerate(scopes)]
            points[system.name] = [MeanPoint(x, c.mean, c.ci_low, c.ci_high) for x, c in cells if c is not None]
        title = f"{task}: {aggregate_name(measure)} per language (95% CI)"
        return means_figure(title, aggregate_name(measure), scopes, points)


def p_holm_text(c: PairedComparison) -> str:
    """``0.015``, or ``≤ 0.016`` when the uncorrected p sits at its test's resampling floor (the true p may be
    smaller: more resamples would show how much); a bound is rounded up, so that it stays a bound."""
    if not c.p_at_floor:
        return p_value(c.p_holm)
    digits = 3 if c.p_holm >= 0.001 else 1 - math.floor(math.log10(c.p_holm))  # as p_value prints it
    return "≤ " + p_value(math.ceil(c.p_holm * 10**digits - 1e-9) / 10**digits)


def difference_text(c: PairedComparison) -> str:
    """``+0.024 [+0.013, +0.035] †``: a difference, its CI, and the significance mark."""
    mark = f" {SIGNIFICANT_MARK}" if c.significant else ""
    return f"{number(c.diff, True)} {interval(c.ci_low, c.ci_high, True)}{mark}"


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it: a committed report must not name the
    machine it was written on (eval.json records absolute student paths).

    >>> import os; _shown(os.path.join(os.getcwd(), "runs", "x")), _shown("zero-shot"), _shown("/elsewhere/x")
    ('runs/x', 'zero-shot', '/elsewhere/x')
    """
    candidate = Path(path)
    if not candidate.is_absolute():
        return path
    try:
        return str(candidate.relative_to(Path.cwd()))
    except ValueError:
        return path


def _load_runs(run_dirs: Sequence[Path]) -> list[tuple[Path, EvalRun]]:
    if not run_dirs:
        raise OpticalError("no run dirs given: pass at least two evaluation run dirs")
    seen: dict[Path, Path] = {}
    for d in run_dirs:
        if not Path(d).is_dir():
            raise OpticalError(f"run dir {d} does not exist or is not a directory")
        key = Path(d).resolve()
        if key in seen:
            raise OpticalError(f"run dir {d} is given twice (also as {seen[key]}): each evaluation counts once")
        seen[key] = Path(d)
    runs = [(Path(d), EvalRun.load(d, with_trec=False)) for d in run_dirs]
    first_dir, first = runs[0]
    task_fingerprints: dict[str, tuple[Path, str, str]] = {}
    for run_dir, run in runs:
        if run.split_fingerprint != first.split_fingerprint:
            raise OpticalError(
                f"{first_dir} ({first.system}) and {run_dir} ({run.system}) were evaluated on different splits or "
                f"collections (fingerprints {first.split_fingerprint} vs {run.split_fingerprint}): compare runs of one "
                "split of one collection"
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


def _systems(runs: list[tuple[Path, EvalRun]]) -> tuple[list[SystemInfo], dict[str, list[EvalRun]]]:
    seeds_of: dict[str, list[tuple[Path, EvalRun]]] = {}
    for run_dir, run in runs:
        seeds_of.setdefault(run.system, []).append((run_dir, run))
    systems = []
    for name, seeds in seeds_of.items():
        teachers = {r.teacher for _, r in seeds}
        if len(teachers) > 1:
            raise OpticalError(
                f"runs named {name!r} ({', '.join(str(d) for d, _ in seeds)}) have different teachers "
                f"({', '.join(sorted(teachers))}): seeds of one system share a teacher; rename the system"
            )
        methods = {r.config.get("distill", {}).get("method") for _, r in seeds}
        kinds = {r.is_zero_shot for _, r in seeds}
        if len(methods) > 1 or len(kinds) > 1:
            raise OpticalError(
                f"runs named {name!r} ({', '.join(str(d) for d, _ in seeds)}) are different systems "
                f"(methods {', '.join(map(str, methods))}; zero-shot {', '.join(map(str, kinds))}): rename one"
            )
        trained_with: dict[int, Path] = {}
        for run_dir, run in seeds:
            seed = run.config.get("distill", {}).get("seed")
            if run.is_zero_shot or seed is None:  # zero-shot trains nothing; no seed recorded: unchecked
                continue
            if seed in trained_with:
                raise OpticalError(
                    f"{trained_with[seed]} and {run_dir} are both system {name!r} trained with seed {seed}: the runs of "
                    "one system are its seeds and must differ in seed; name one otherwise (optical evaluate --system)"
                )
            trained_with[seed] = run_dir
        systems.append(
            SystemInfo(
                name,
                tuple(r.student for _, r in seeds),
                seeds[0][1].teacher,
                tuple(str(d) for d, _ in seeds),
                kinds.pop(),
                methods.pop(),
            )
        )
    return systems, {name: [r for _, r in seeds] for name, seeds in seeds_of.items()}


def default_pairs(systems: Sequence[SystemInfo]) -> list[tuple[str, str]]:
    """Every system against the zero-shot model, and every non-KD system against each KD baseline present."""
    zero_shot = [s.name for s in systems if s.zero_shot]
    kd = [s.name for s in systems if s.method and MethodSpec.parse(s.method).is_kd_baseline]
    pairs = [(s.name, z) for z in zero_shot for s in systems if s.name != z]
    pairs += [(s.name, b) for b in kd for s in systems if s.name not in kd and s.name not in zero_shot]
    if not pairs and len(systems) > 1:  # neither a zero-shot run nor a KD baseline: the first system is the baseline
        pairs = [(s.name, systems[0].name) for s in systems[1:]]
    return pairs


def _pairs(systems: list[SystemInfo], baselines: Sequence[str] | None) -> list[tuple[str, str]]:
    if not baselines:
        return default_pairs(systems)
    names = [s.name for s in systems]
    for baseline in baselines:
        if baseline not in names:
            raise OpticalError(f"baseline {baseline!r} is not among the systems compared ({', '.join(names)})")
    return [(s.name, b) for b in baselines for s in systems if s.name not in baselines]


def compare_runs(
    run_dirs: Sequence[str | os.PathLike],
    baselines: Sequence[str] | None = None,
    resource_groups: Mapping[str, Sequence[str]] | None = None,
    measures: Sequence[str] | None = None,
    settings: StatsSettings = StatsSettings(),
) -> ComparisonReport:
    """Compare evaluation runs; return the report (write it with ``report.save(out_dir)``).

    ``baselines`` are system names, each compared with every other system that
    is not itself one of them; by default :func:`default_pairs`. ``measures``
    restricts (and orders) the measures; by default every measure the runs
    hold. Refuses runs whose split or task fingerprints differ.
    """
    groups = {name: list(langs) for name, langs in (resource_groups or RESOURCE_GROUPS).items()}
    runs = _load_runs([Path(d) for d in run_dirs])
    systems, seeds_of = _systems(runs)
    if len(systems) < 2:
        raise OpticalError(
            f"the runs hold one system ({systems[0].name}): a comparison needs at least two distinct systems "
            "(runs sharing a system name are its seeds)"
        )
    if measures is not None:
        measures = _checked_measures(runs, measures)
    pairs = _pairs(systems, baselines)
    notes: list[str] = []
    samples = _samples(seeds_of, notes)
    reference = pairs[0][1] if pairs else systems[0].name
    tasks = _shared_tasks(samples, reference, notes)

    report = ComparisonReport(
        systems=systems,
        pairs=pairs,
        split_name=runs[0][1].split_name,
        split_fingerprint=runs[0][1].split_fingerprint,
        resource_groups=groups,
        tasks=tasks,
        measures={},
        main_measures={},
        summaries=[],
        comparisons=[],
        gaps=[],
        settings=settings,
        notes=notes,
    )
    for task, langs in tasks.items():
        available = set.intersection(*(set(samples[(reference, f"{task}.{lang}")]) for lang in langs))
        report.measures[task] = _ordered_measures(available, measures)
        if not report.measures[task]:
            notes.append(f"task {task}: none of the requested measures is available; left out")
            continue
        preferred = main_measure(task)
        report.main_measures[task] = preferred if preferred in report.measures[task] else report.measures[task][0]
        group_langs = {g: [lang for lang in members if lang in langs] for g, members in groups.items()}
        group_langs = {g: members for g, members in group_langs.items() if len(members) >= 2}
        for measure in report.measures[task]:
            _compare_task(report, samples, task, measure, langs, group_langs)
    _check_compared(report, samples, measures, list(seeds_of))
    return report


def _checked_measures(runs: list[tuple[Path, EvalRun]], measures: Sequence[str]) -> list[str]:
    """``measures`` by their per-query names; one-line error naming those no run holds."""
    measures = [per_query_name(m) for m in measures]
    available = {m for run in runs for task in run[1].tasks.values() for m in task.per_query}
    unknown = [m for m in measures if m not in available]
    if unknown:
        raise OpticalError(f"unknown measure(s) {', '.join(unknown)}; the runs hold {', '.join(sorted(available))}")
    return measures


def _shared_tasks(samples: dict[tuple[str, str], dict[str, Sample]], reference: str, notes: list[str]) -> dict[str, list[str]]:
    """task -> the languages the reference system holds it for; a note for each task key only another system holds."""
    tasks: dict[str, list[str]] = {}
    for name, key in sorted(samples):
        if name == reference:
            tasks.setdefault(task_of(key), []).append(key.split(".", 1)[1])
    for name, key in sorted(samples):
        if name != reference and key.split(".", 1)[1] not in tasks.get(task_of(key), []):
            notes.append(f"{name}: task {key} has no counterpart in {reference} and is left out")
    return tasks


def _check_compared(
    report: ComparisonReport,
    samples: dict[tuple[str, str], dict[str, Sample]],
    measures: Sequence[str] | None,
    names: list[str],
) -> None:
    """One-line errors for a comparison that compares nothing, saying why."""
    if not report.pairs:
        raise OpticalError(
            f"every system is a --baseline ({', '.join(s.name for s in report.systems)}), so nothing is compared with "
            "them; name fewer baselines"
        )
    if not report.comparisons and report.tasks and not any(report.measures.values()):
        raise OpticalError(f"none of --measures {', '.join(measures or [])} is held by the tasks the runs share; pick others")
    if not report.comparisons:
        held = "; ".join(f"{name}: {', '.join(sorted(key for n, key in samples if n == name))}" for name in names)
        raise OpticalError(f"the runs share no task and language, so nothing can be compared ({held}); evaluate them alike")


def _samples(seeds_of: dict[str, list[EvalRun]], notes: list[str]) -> dict[tuple[str, str], dict[str, Sample]]:
    """(system, task key) -> {measure: Sample over the system's seeds}."""
    samples: dict[tuple[str, str], dict[str, Sample]] = {}
    for name, seeds in seeds_of.items():
        keys = set.intersection(*(set(r.tasks) for r in seeds))
        for key in sorted(set.union(*(set(r.tasks) for r in seeds)) - keys):
            notes.append(f"{name}: task {key} is missing from some of its seeds and is left out")
        for key in keys:
            task_measures = set.intersection(*(set(r.tasks[key].per_query) for r in seeds))
            samples[(name, key)] = {m: Sample(name, tuple(r.tasks[key].per_query[m] for r in seeds)) for m in task_measures}
    return samples


def _compare_task(
    report: ComparisonReport, samples: dict, task: str, measure: str, langs: list[str], group_langs: dict[str, list[str]]
) -> None:
    """Summaries, comparisons and the resource gap of one task and measure, added to ``report``."""

    def sample(system: str, scope: str, kind: str) -> Sample | None:
        members = [scope] if kind == "lang" else group_langs[scope]
        parts = {lang: samples.get((system, f"{task}.{lang}"), {}).get(measure) for lang in members}
        if any(part is None for part in parts.values()):
            return None
        return parts[scope] if kind == "lang" else Sample.pooled(system, parts)

    scopes = [(lang, "lang") for lang in langs] + [(g, "group") for g in group_langs]
    for system in report.systems:
        for scope, kind in scopes:
            mine = sample(system.name, scope, kind)
            if mine is not None:
                stats = summarize(mine, report.settings)
                report.summaries.append(
                    CellSummary(
                        system.name,
                        task,
                        scope,
                        kind,
                        measure,
                        stats.n_queries,
                        stats.n_seeds,
                        stats.mean,
                        stats.ci_low,
                        stats.ci_high,
                    )
                )
        if measure == report.main_measures[task] and {"low", "high"} <= set(group_langs):
            low, high = sample(system.name, "low", "group"), sample(system.name, "high", "group")
            if low is not None and high is not None:
                gap = resource_gap(low, high, report.settings)
                report.gaps.append(
                    ResourceGap(system.name, task, measure, gap.low_mean, gap.high_mean, gap.gap, gap.ci.low, gap.ci.high)
                )
    for system, baseline in report.pairs:
        for kind, noun in (("lang", "languages"), ("group", "resource groups")):
            family = []
            for scope in (scope for scope, scope_kind in scopes if scope_kind == kind):
                mine, theirs = sample(system, scope, kind), sample(baseline, scope, kind)
                if mine is not None and theirs is not None:
                    family.append((scope, compare(mine, theirs, measure, report.settings)))
            name = f"{task} {aggregate_name(measure)}, {system} vs {baseline}: the {len(family)} {noun} of the table"
            corrected = holm_family([c for _, c in family], name)
            report.comparisons.extend(ScopedComparison(task, scope, kind, c) for (scope, _), c in zip(family, corrected))
