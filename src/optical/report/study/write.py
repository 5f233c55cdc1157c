"""``write_study_report``: load the study, analyse it, render the analysis, save the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from optical.eval.stats import StatsSettings
from optical.report.compare import policy_text
from optical.report.document import Bullets, Document, Heading, Paragraph
from optical.report.study.analysis import QuestionRow, StudyAnalysis, analyse_study
from optical.report.study.grid import AXES
from optical.report.study.load import load_study, read_study_manifest
from optical.report.study.text import condition_label
from optical.report.tuning import is_tuning, tuning_report
from optical.storage import atomic_write_json, atomic_write_text
from optical.study.layout import REPORT_DIR

#: Every comparison of the first section, machine-readable, beside report.md (for other tools and the READMEs).
COMPARISONS_JSON = "comparisons.json"

if TYPE_CHECKING:
    from optical.report.study.figures import Figures


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
    #: What the report says, as data (None for a tuning study's report).
    analysis: StudyAnalysis | None = None


def write_study_report(study_dir: str | Path, n_resamples: int | None = None) -> StudyReport:
    """Write ``report/report.md``, ``report/report.html``, ``report/comparisons.json`` and ``report/plots/*.png``
    for a study dir (a tuning study gets its tuning report instead)."""
    study_dir = Path(study_dir)
    manifest = read_study_manifest(study_dir)
    report_dir = study_dir / REPORT_DIR
    if is_tuning(manifest):  # dev-split scores of trials only: no test-split comparison to draw
        return StudyReport(study_dir, report_dir, tuning_report(study_dir, manifest).save(study_dir))
    if not any(entry["query_noises"] for entry in manifest["runs"]):  # evaluates nothing by design: selection only
        return StudyReport(study_dir, report_dir, _selection_report(study_dir, manifest))
    settings = StatsSettings(n_resamples=n_resamples or int((manifest.get("config") or {}).get("n_resamples", 10_000)))
    analysis = analyse_study(load_study(study_dir, manifest), settings)
    from optical.report.study.figures import Figures  # matplotlib: only once there is something to draw

    figures = Figures(report_dir)
    doc = render_study(analysis, figures)
    atomic_write_text(report_dir / "report.md", doc.markdown())
    atomic_write_text(report_dir / "report.html", doc.html(report_dir))
    atomic_write_json(report_dir / COMPARISONS_JSON, analysis.comparisons_json())
    for stale in sorted(set((report_dir / "plots").glob("*.png")) - {report_dir / p for p in figures.images}):
        stale.unlink()  # a plot of an earlier report that this one no longer draws (or names differently)
    files = [report_dir / "report.md", report_dir / "report.html", report_dir / COMPARISONS_JSON]
    return StudyReport(
        study_dir,
        report_dir,
        files + [report_dir / p for p in figures.images],
        question=analysis.question.levels,
        changes=analysis.question.changes,
        lost=list(analysis.lost),
        analysis=analysis,
    )


def _selection_report(study_dir: Path, manifest: dict) -> list[Path]:
    """The report of a study that evaluates nothing on a test split (``query_noises: []``, no trials): what model
    selection saw, i.e. how often held-out alignment and XQuAD dev keep the same step (:mod:`optical.study.agreement`)."""
    from optical.study.agreement import AGREEMENT_JSON, AGREEMENT_MD, selection_agreement

    report_dir = study_dir / REPORT_DIR
    agreement = selection_agreement(study_dir)
    done = sum(1 for entry in manifest["runs"] if entry["status"] == "done")
    atomic_write_text(
        report_dir / "report.md",
        f"# Study {manifest.get('study', study_dir.name)}: model selection only\n\n"
        f"{done} of {len(manifest['runs'])} runs complete. The study evaluates nothing on a test split "
        "(`query_noises: []`); what it measures is model selection.\n\n"
        "## Held-out alignment against XQuAD dev\n\n" + agreement.to_markdown(),
    )
    agreement.save(report_dir)
    return [report_dir / "report.md", report_dir / AGREEMENT_JSON, report_dir / AGREEMENT_MD]


def render_study(analysis: StudyAnalysis, figures: Figures) -> Document:
    """The report's document: the answer to the research question first, then curves and tables."""
    from optical.report.study.curves import render_curves
    from optical.report.study.question import render_question
    from optical.report.study.tables import (
        render_bias_and_retention,
        render_coverage,
        render_gaps,
        render_late_interaction,
        render_training,
    )

    doc = Document(f"Study {analysis.name}: does OT distillation make cross-lingual alignment more robust than KD?")
    doc.add(Paragraph(_status_text(analysis)))
    if analysis.spectrum_levels:  # a study over the resource spectrum opens with it
        from optical.report.spectrum import render_spectrum

        render_spectrum(doc, analysis.spectrum, analysis.spectrum_levels, figures)
    render_question(doc, analysis, figures)
    render_late_interaction(doc, analysis, figures)
    for curves in analysis.curves:
        render_curves(doc, curves, analysis, figures)
    render_gaps(doc, analysis)
    render_bias_and_retention(doc, analysis)
    render_training(doc, analysis.training)
    render_coverage(doc, analysis)
    if analysis.lost:  # a finished run whose evaluation is gone: the export or the store lost it
        doc.add(Heading(2, "Missing evaluations of finished runs"), Bullets([f"`{m}`" for m in analysis.lost]))
    return doc


def _status_text(analysis: StudyAnalysis) -> str:
    unfinished = analysis.runs_done < analysis.runs_planned
    return (
        f"{analysis.runs_done} of {analysis.runs_planned} runs complete ({analysis.n_records} evaluation run dirs read"
        + (f"; {analysis.n_missing} evaluations not there yet" if analysis.n_missing else "")
        + ("; what each cell holds so far: Coverage, at the end" if unfinished else "")
        + "). "
        f"Reference condition: {condition_label(analysis.reference, AXES)}. {policy_text(analysis.settings)}"
    )
