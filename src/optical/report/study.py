"""The study report: the answer to the research question first, then curves and tables.

Every number comes from the evaluation run dirs of the study and every test
from :mod:`optical.eval.stats`: per-query values are averaged over seeds
(:func:`~optical.eval.stats.average_over_seeds`), systems are compared with a
paired randomisation test on those averages and a CI of the difference that
resamples queries and seeds (:func:`~optical.eval.stats.compare_seeded`; the
robustness rows, which compare changes, resample queries), and the
p-values of a section are Holm-corrected as one family
(:func:`~optical.eval.stats.apply_holm`). The text of the first section is
generated from those results: it says where OT wins, where it loses and where
nothing is significant, whichever way the numbers fall.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optical.errors import OpticalError
from optical.eval.metrics import aggregate_name
from optical.eval.results import EvalRun
from optical.eval.stats import (
    PairedComparison,
    apply_holm,
    average_over_seeds,
    bootstrap_difference_ci,
    compare_seeded,
    paired_comparison,
    seeded_cell,
)
from optical.losses.combined import parse_method
from optical.storage import atomic_path, atomic_write_text
from optical.study.config import ZERO_SHOT
from optical.study.document import Bullets, Document, Heading, Image, Paragraph, Table, cell_text
from optical.study.layout import MANIFEST, REPORT_DIR, RUN_JSON

#: The headline measure of each task compared in the research-question section.
MAIN_MEASURES: dict[str, str] = {
    "clir_sentence": "RR@10",
    "clir_paragraph": "RR@10",
    "pool": "AP",
    "align_x2en": "R@1",
    "align_en2x": "R@1",
}
RETENTION = ("retention", "RR@10")
BIAS_MEASURES = ("LangShare@10", "GoldRankGap")
KD_BASELINES = ("mse", "contrastive")
#: Conditions (axis values) of a record: everything but language, method and seed.
AXES = ("backbone", "domain", "budget", "noise", "query_noise")


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


@dataclass
class StudyReport:
    study_dir: Path
    report_dir: Path
    files: list[Path]
    question: list[PairedComparison] = field(default_factory=list)
    robustness: list[PairedComparison] = field(default_factory=list)


def _is_ot(method: str) -> bool:
    return method != ZERO_SHOT and any(term.name == "ot" for term in parse_method(method))


def _load_records(study_dir: Path, manifest: dict) -> tuple[list[Record], list[str]]:
    records, missing = [], []
    for entry in manifest["runs"]:
        for noise_text, rel in entry["eval_dirs"].items():
            path = study_dir / rel
            if not (path / "eval.json").is_file():
                missing.append(rel)
                continue
            records.append(Record(
                lang=entry["lang"], method=entry["method"], seed=entry["seed"], backbone=entry["backbone"],
                domain=entry["domain"], budget=entry["budget"], noise=entry["noise"], query_noise=float(noise_text),
                run=EvalRun.load(path, with_trec=False),
            ))
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

    def seeds(self, lang: str, method: str, condition: tuple) -> list[Record]:
        if method == ZERO_SHOT:
            return self.zero_shot.get((lang, condition[4]), [])
        return self.groups.get((lang, method, condition), [])

    def values(self, lang: str, method: str, condition: tuple, task_key: str, measure: str) -> list[dict[str, float]]:
        found = []
        for r in self.seeds(lang, method, condition):
            task = r.run.tasks.get(task_key)
            if task is not None and measure in task.per_query:
                found.append(task.per_query[measure])
        return found

    def ref_condition(self, **changes: Any) -> tuple:
        values = {**self.reference, **changes}
        return tuple(values[axis] for axis in AXES)


def _fmt(value: float, signed: bool = False) -> str:
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _diff_text(c: PairedComparison) -> str:
    return f"{_fmt(c.diff, True)} [{_fmt(c.ci_low, True)}, {_fmt(c.ci_high, True)}], p_holm {_p(c.p_holm)}"


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
    names = {"backbone": "backbone", "domain": "domain", "budget": "budget", "noise": "bitext noise", "query_noise": "typo rate"}
    parts = [f"{names[axis]} {value:g}" if isinstance(value, float) else f"{names[axis]} {value}"
             for axis, value in zip(AXES, condition) if axis in varying]
    return ", ".join(parts) or "all runs"


def write_study_report(study_dir: str | Path, n_resamples: int | None = None) -> StudyReport:
    """Write ``report/report.md``, ``report/report.html`` and ``report/plots/*.png`` for a study dir."""
    study_dir = Path(study_dir)
    manifest_path = study_dir / MANIFEST
    if not manifest_path.is_file():
        raise OpticalError(f"{manifest_path} is missing: {study_dir} is not a study dir (run `optical study run` first)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    n_resamples = n_resamples or int(manifest.get("config", {}).get("n_resamples", 10_000))
    records, missing = _load_records(study_dir, manifest)
    if not records:
        raise OpticalError(f"{study_dir} has no finished evaluation yet; run the study first")
    reference = dict(manifest["reference"])
    index = _Index(records, reference)
    groups: dict[str, list[str]] = manifest.get("resource_groups") or {}
    report_dir = study_dir / REPORT_DIR
    plots_dir = report_dir / "plots"
    varying = _varying_axes(manifest)

    langs = list(dict.fromkeys(r.lang for r in records))
    methods = list(dict.fromkeys(r.method for r in records))
    trained = [m for m in methods if m != ZERO_SHOT]
    task_names = sorted({key.split(".", 1)[0] for r in records for key in r.run.tasks})
    main_tasks = [t for t in MAIN_MEASURES if t in task_names]

    doc = Document(f"Study {manifest.get('study', study_dir.name)}: does OT distillation make cross-lingual alignment more robust than KD?")
    done = sum(1 for e in manifest["runs"] if e["status"] == "done")
    doc.add(Paragraph(
        f"{done} of {len(manifest['runs'])} runs complete ({len(records)} evaluation run dirs read"
        + (f"; {len(missing)} evaluations missing, left out" if missing else "") + "). "
        f"Reference condition: {_condition_label(index.ref_condition(), AXES)}. "
        f"Confidence intervals of one system: 95% bootstrap over queries ({n_resamples} resamples) of per-query values "
        "averaged over seeds; of an OT-vs-baseline difference: 95% two-level bootstrap over queries and seeds."
    ))

    report = StudyReport(study_dir, report_dir, [])
    _question_section(doc, report, index, langs, trained, main_tasks, groups, varying, n_resamples)
    images: list[Path] = []
    _curve_section(doc, images, index, langs, methods, main_tasks, plots_dir, report_dir, "budget", "Learning curves: main measures vs bitext budget", n_resamples)
    _curve_section(doc, images, index, langs, methods, main_tasks, plots_dir, report_dir, "noise", "Degradation vs bitext noise", n_resamples)
    _curve_section(doc, images, index, langs, methods, main_tasks, plots_dir, report_dir, "query_noise", "Degradation vs query typo rate", n_resamples)
    _gap_section(doc, index, langs, methods, main_tasks, groups, n_resamples)
    _bias_retention_section(doc, index, langs, methods, task_names, n_resamples)
    _training_section(doc, study_dir, manifest)
    if missing:
        doc.add(Heading(2, "Missing evaluations"), Bullets([f"`{m}`" for m in missing]))

    atomic_write_text(report_dir / "report.md", doc.markdown())
    atomic_write_text(report_dir / "report.html", doc.html(report_dir))
    report.files = [report_dir / "report.md", report_dir / "report.html", *(report_dir / p for p in images)]
    return report


def _question_section(doc: Document, report: StudyReport, index: _Index, langs: list[str], trained: list[str],
                      main_tasks: list[str], groups: dict[str, list[str]], varying: list[str], n_resamples: int) -> None:
    doc.add(Heading(2, "Answer to the research question"))
    ot_methods = [m for m in trained if _is_ot(m)]
    baselines = [m for m in KD_BASELINES if m in trained]
    if not ot_methods or not baselines:
        doc.add(Paragraph(
            f"This study cannot answer it: it needs an OT method and a KD baseline ({', '.join(KD_BASELINES)}); "
            f"it has {', '.join(trained) or 'no trained method'}."
        ))
        return
    rows: list[tuple[str, str, str, str, tuple, PairedComparison]] = []
    conditions = sorted({c for (_, _, c) in index.groups}, key=lambda c: json.dumps(c, default=str))
    for ot in ot_methods:
        for base in baselines:
            for lang in langs:
                for condition in conditions:
                    for task in main_tasks:
                        key = f"{task}.{lang}"
                        measure = MAIN_MEASURES[task]
                        a = index.values(lang, ot, condition, key, measure)
                        b = index.values(lang, base, condition, key, measure)
                        if a and b:
                            rows.append((ot, base, lang, task, condition, compare_seeded(a, b, ot, base, measure, n_resamples)))
    corrected = apply_holm([row[-1] for row in rows])
    rows = [(*row[:-1], c) for row, c in zip(rows, corrected)]
    report.question = corrected
    robustness = _robustness(index, langs, ot_methods, baselines, main_tasks, n_resamples)
    report.robustness = [r[-1] for r in robustness]

    lang_group = {lang: g for g, members in groups.items() for lang in members}
    sentences = []
    for ot in ot_methods:
        for base in baselines:
            mine = [r for r in rows if r[0] == ot and r[1] == base]
            if not mine:
                continue
            wins = [r for r in mine if r[-1].significant and r[-1].diff > 0]
            losses = [r for r in mine if r[-1].significant and r[-1].diff < 0]
            ties = len(mine) - len(wins) - len(losses)
            text = (f"{ot} vs {base}: of {len(mine)} comparisons (language x condition x task, main measure), "
                    f"{ot} is significantly better in {len(wins)}, significantly worse in {len(losses)}, "
                    f"and not significantly different in {ties} (Holm-corrected over all {len(rows)} comparisons of this section).")
            for label, chosen in (("Better", wins), ("Worse", losses)):
                if chosen:
                    shown = sorted(chosen, key=lambda r: -abs(r[-1].diff))[:6]
                    text += f" {label}: " + "; ".join(
                        f"{r[2]} {r[3]} {aggregate_name(r[-1].measure)} ({_condition_label(r[4], varying)}) {_diff_text(r[-1])}"
                        for r in shown) + ("; ..." if len(chosen) > len(shown) else "") + "."
            for group in groups:
                in_group = [r for r in mine if lang_group.get(r[2]) == group]
                if in_group:
                    mean = float(np.mean([r[-1].diff for r in in_group]))
                    n_sig = sum(r[-1].significant for r in in_group)
                    text += (f" On {group}-resource languages ({', '.join(sorted({r[2] for r in in_group}))}) the mean "
                             f"difference is {_fmt(mean, True)} over {len(in_group)} comparisons, {n_sig} of them significant.")
            sentences.append(text)
    for ot in ot_methods:
        for base in baselines:
            mine = [r for r in robustness if r[0] == ot and r[1] == base]
            if not mine:
                continue
            better = [r for r in mine if r[-1].significant and r[-1].diff > 0]
            worse = [r for r in mine if r[-1].significant and r[-1].diff < 0]
            text = (f"Robustness, {ot} vs {base}: the change from the reference condition to a noisier one "
                    f"({len(mine)} comparisons of bitext noise or query typo levels) is significantly smaller for {ot} "
                    f"in {len(better)}, significantly larger in {len(worse)}, and not significantly different in "
                    f"{len(mine) - len(better) - len(worse)}.")
            for label, chosen in ((f"{ot} degrades less", better), (f"{ot} degrades more", worse)):
                if chosen:
                    text += f" {label}: " + "; ".join(f"{r[2]} {r[3]} at {r[4]} {_diff_text(r[-1])}" for r in chosen[:6]) + "."
            sentences.append(text)
    doc.add(Bullets(sentences))
    doc.add(Paragraph(
        "Differences are OT minus baseline on the main measure of each task (mean over queries of the seed-averaged "
        "per-query values), with its 95% CI from a paired bootstrap that resamples queries and, within each system, "
        "training seeds (so seed-to-seed variance widens it), and the Holm-adjusted p-value of a paired randomisation "
        "test on the seed-averaged values; significant means p_holm < 0.05. Robustness rows compare the per-query "
        "change (noisy minus reference condition) of OT with that of the baseline (query bootstrap of the "
        "seed-averaged changes): a positive difference means OT loses less."
    ))
    doc.add(Table(
        ["OT", "baseline", "lang", "task", "condition", "n", "OT", "baseline", "Δ [95% CI]", "p_holm", "significant"],
        [[r[0], r[1], r[2], f"{r[3]} {aggregate_name(r[-1].measure)}", _condition_label(r[4], varying), str(r[-1].n),
          _fmt(r[-1].mean_a), _fmt(r[-1].mean_b), f"{_fmt(r[-1].diff, True)} [{_fmt(r[-1].ci_low, True)}, {_fmt(r[-1].ci_high, True)}]",
          _p(r[-1].p_holm), "yes" if r[-1].significant else "no"] for r in rows],
    ))
    if robustness:
        doc.add(Table(
            ["OT", "baseline", "lang", "task", "noisier condition", "n", "OT change", "baseline change", "Δ [95% CI]", "p_holm", "significant"],
            [[r[0], r[1], r[2], r[3], r[4], str(r[-1].n), _fmt(r[-1].mean_a, True), _fmt(r[-1].mean_b, True),
              f"{_fmt(r[-1].diff, True)} [{_fmt(r[-1].ci_low, True)}, {_fmt(r[-1].ci_high, True)}]", _p(r[-1].p_holm),
              "yes" if r[-1].significant else "no"] for r in robustness],
        ))


def _robustness(index: _Index, langs: list[str], ot_methods: list[str], baselines: list[str], main_tasks: list[str],
                n_resamples: int) -> list[tuple]:
    """Per-query change from the reference to each noisier level of one axis, OT against each baseline (one Holm family)."""
    rows = []
    reference = index.ref_condition()
    levels: dict[str, set] = {"noise": set(), "query_noise": set()}
    for (_, _, condition) in index.groups:
        for axis in levels:
            levels[axis].add(condition[AXES.index(axis)])
    for ot in ot_methods:
        for base in baselines:
            for lang in langs:
                for task in main_tasks:
                    key, measure = f"{task}.{lang}", MAIN_MEASURES[task]
                    for axis, values in levels.items():
                        for level in sorted(v for v in values if v is not None and v > index.reference[axis]):
                            noisy = index.ref_condition(**{axis: level})
                            changes = []
                            for method in (ot, base):
                                before = index.values(lang, method, reference, key, measure)
                                after = index.values(lang, method, noisy, key, measure)
                                if not before or not after:
                                    break
                                b, a = average_over_seeds(before, method), average_over_seeds(after, method)
                                changes.append({q: a[q] - b[q] for q in a})
                            if len(changes) == 2:
                                label = f"{'bitext noise' if axis == 'noise' else 'typo rate'} {level:g}"
                                rows.append((ot, base, lang, f"{task} {aggregate_name(measure)}", label,
                                             paired_comparison(changes[0], changes[1], ot, base, measure, n_resamples)))
    corrected = apply_holm([r[-1] for r in rows])
    return [(*r[:-1], c) for r, c in zip(rows, corrected)]


def _axis_values(index: _Index, axis: str) -> list:
    values = {c[AXES.index(axis)] for (_, _, c) in index.groups}
    return sorted(values, key=lambda v: (isinstance(v, str), v if not isinstance(v, str) else 0))


def _curve_section(doc: Document, images: list[Path], index: _Index, langs: list[str], methods: list[str],
                   main_tasks: list[str], plots_dir: Path, report_dir: Path, axis: str, title: str, n_resamples: int) -> None:
    doc.add(Heading(2, title))
    values = _axis_values(index, axis)
    if axis == "query_noise":
        values = sorted(set(values) | {q for (_, q) in index.zero_shot})
    if len(values) < 2:
        doc.add(Paragraph(f"Not measured: the study has one value of {axis} ({', '.join(map(str, values)) or 'none'})."))
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for task in main_tasks:
        measure = MAIN_MEASURES[task]
        rows = []
        fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.4), squeeze=False, layout="constrained")
        for ax, lang in zip(axes[0], langs):
            for method in methods:
                if method == ZERO_SHOT and axis != "query_noise":
                    cells = [_cell(index, lang, method, index.ref_condition(), task, measure, n_resamples)]
                    if cells[0] is not None:
                        ax.axhline(cells[0].mean, linestyle="--", color="grey", linewidth=1, label=ZERO_SHOT)
                        rows.append([lang, method, "(any)", _cell_text(cells[0])])
                    continue
                points = []
                for position, value in enumerate(values):
                    cell = _cell(index, lang, method, index.ref_condition(**{axis: value}), task, measure, n_resamples)
                    if cell is not None:
                        points.append((position, value, cell))
                        rows.append([lang, method, str(value), _cell_text(cell)])
                if points:
                    xs = [p[0] for p in points]
                    means = np.array([p[2].mean for p in points])
                    ax.plot(xs, means, marker="o", label=method)
                    ax.fill_between(xs, [p[2].ci_low for p in points], [p[2].ci_high for p in points], alpha=0.2)
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_title(f"{task}.{lang}")
            ax.set_xlabel(axis.replace("_", " "))
            ax.set_ylabel(aggregate_name(measure))
            ax.legend(fontsize="small")
        name = f"plots/{axis}.{_safe(task)}.png"
        _save(fig, report_dir / name)
        plt.close(fig)
        images.append(Path(name))
        doc.add(Heading(3, f"{task}: {aggregate_name(measure)} vs {axis.replace('_', ' ')} (other axes at reference)"))
        doc.add(Image(Path(name), f"{task} {aggregate_name(measure)} vs {axis}, mean over seeds with 95% CI"))
        doc.add(Table(["lang", "method", axis, f"{aggregate_name(measure)} [95% CI] (seeds)"], rows))


def _cell(index: _Index, lang: str, method: str, condition: tuple, task: str, measure: str, n_resamples: int):
    values = index.values(lang, method, condition, f"{task}.{lang}", measure)
    return seeded_cell(values, method, n_resamples) if values else None


def _cell_text(cell) -> str:
    return f"{_fmt(cell.mean)} [{_fmt(cell.ci_low)}, {_fmt(cell.ci_high)}] ({cell.n_seeds})"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def _gap_section(doc: Document, index: _Index, langs: list[str], methods: list[str], main_tasks: list[str],
                 groups: dict[str, list[str]], n_resamples: int) -> None:
    doc.add(Heading(2, "Low- vs high-resource gap"))
    low, high = [lang for lang in groups.get("low", []) if lang in langs], [lang for lang in groups.get("high", []) if lang in langs]
    if not low or not high:
        doc.add(Paragraph(f"Not measured: it needs languages of both groups (low: {', '.join(groups.get('low', []))}; "
                          f"high: {', '.join(groups.get('high', []))}); the study has {', '.join(langs)}."))
        return
    doc.add(Paragraph(
        f"Gap = mean over high-resource ({', '.join(high)}) minus low-resource ({', '.join(low)}) queries, seed-averaged "
        "per-query values at the reference condition; 95% CI: each group resampled on its own (unpaired bootstrap)."
    ))
    rows = []
    for task in main_tasks:
        measure = MAIN_MEASURES[task]
        for method in methods:
            pooled = {}
            for group, members in (("low", low), ("high", high)):
                values = []
                for lang in members:
                    seeds = index.values(lang, method, index.ref_condition(), f"{task}.{lang}", measure)
                    if seeds:
                        values += list(average_over_seeds(seeds, method).values())
                pooled[group] = values
            if pooled["low"] and pooled["high"]:
                ci = bootstrap_difference_ci(pooled["high"], pooled["low"], n_resamples)
                gap = float(np.mean(pooled["high"]) - np.mean(pooled["low"]))
                rows.append([f"{task} {aggregate_name(measure)}", method, _fmt(float(np.mean(pooled["low"]))),
                             _fmt(float(np.mean(pooled["high"]))), f"{_fmt(gap, True)} [{_fmt(ci.low, True)}, {_fmt(ci.high, True)}]"])
    doc.add(Table(["task", "method", "low", "high", "gap [95% CI]"], rows))


def _bias_retention_section(doc: Document, index: _Index, langs: list[str], methods: list[str], task_names: list[str],
                            n_resamples: int) -> None:
    doc.add(Heading(2, "Language bias (LAReQA pool)"))
    if "pool" not in task_names:
        doc.add(Paragraph("Not measured: the study's evaluations do not include the pool task."))
    else:
        doc.add(Paragraph("LangShare@10: share of the top 10 in the query's language; GoldRankGap: rank of the English gold "
                          "minus rank of the same-language gold (positive: the same-language answer ranks higher). Reference condition."))
        rows = []
        for lang in langs:
            for method in methods:
                row = [lang, method]
                for measure in ("AP", *BIAS_MEASURES):
                    cell = _cell(index, lang, method, index.ref_condition(), "pool", measure, n_resamples)
                    row.append(_cell_text(cell) if cell else "–")
                rows.append(row)
        doc.add(Table(["lang", "method", "mAP", *BIAS_MEASURES], rows))
    doc.add(Heading(2, "English retention"))
    if "retention" not in task_names:
        doc.add(Paragraph("Not measured: the study's evaluations do not include the retention task."))
        return
    doc.add(Paragraph("English questions against English sentences with each student (trained on the row's language), "
                      "MRR@10 at the reference condition: does distillation damage English?"))
    rows = []
    for lang in langs:
        row = [lang]
        for method in methods:
            seeds = index.values(lang, method, index.ref_condition(), "retention.en", RETENTION[1])
            row.append(_cell_text(seeded_cell(seeds, method, n_resamples)) if seeds else "–")
        rows.append(row)
    doc.add(Table(["trained on", *methods], rows))


def _training_section(doc: Document, study_dir: Path, manifest: dict) -> None:
    """One row per distillation run, from its ``run.json``: what model selection kept and what training cost."""
    rows = []
    for entry in manifest["runs"]:
        run_json = study_dir / entry["distill_dir"] / RUN_JSON if entry.get("distill_dir") else None
        if run_json is None or not run_json.is_file():
            continue
        info = json.loads(run_json.read_text(encoding="utf-8"))
        result = info["result"]
        history = [h for h in result.get("history", []) if result.get("selection_metric") in h]
        start = history[0][result["selection_metric"]] if history else None
        rows.append([
            entry["lang"], entry["method"], str(entry["seed"]), str(entry["budget"]), cell_text(entry["noise"]),
            str(result["steps"]), cell_text(result.get("best_step")),
            "-" if start is None else _fmt(start), "-" if result.get("best_metric") is None else _fmt(result["best_metric"]),
            f"{info['timings']['train_seconds'] / 60:.1f}", f"{result['pairs_per_second']:.1f}",
        ])
    if rows:
        doc.add(Heading(2, "Training runs"), Paragraph(
            "Per distillation run: steps, the step model selection kept (0 = the initial student, i.e. training did "
            "not help on the dev split), the dev metric before training and at the kept step, and the training cost "
            "(wall minutes, pairs per second; a run paused or sharing the machine shows a lower rate)."
        ), Table(["lang", "method", "seed", "budget", "noise", "steps", "kept step", "dev before", "dev kept",
                  "train min", "pairs/s"], rows))