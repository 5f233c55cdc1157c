"""The curve sections: each task's main measure along one axis (budget, bitext noise, typo rate), and OT minus each
KD baseline along it, rendered from :class:`~.analysis.AxisCurves`."""

from __future__ import annotations

from optical.eval.metrics import aggregate_name
from optical.report.document import Document, Heading, Image, Paragraph, Table
from optical.report.study.analysis import AxisCurves, StudyAnalysis, TaskCurves
from optical.report.study.figures import Figures
from optical.report.study.grid import AXIS_NAMES
from optical.report.study.text import stats_text

TITLES = {
    "budget": "Learning curves: main measures vs bitext budget",
    "noise": "Degradation vs bitext noise",
    "query_noise": "Degradation vs query typo rate",
}


def render_curves(doc: Document, curves: AxisCurves, analysis: StudyAnalysis, figures: Figures) -> None:
    axis = curves.axis
    doc.add(Heading(2, TITLES[axis]))
    if not curves.measured:
        if curves.pending:
            doc.add(
                Paragraph(
                    f"Pending: the study plans {AXIS_NAMES[axis]} {', '.join(map(str, curves.pending))} beside "
                    f"{', '.join(map(str, curves.values)) or 'none'}, and none of those evaluations has finished yet."
                )
            )
        else:
            only = ", ".join(map(str, curves.values)) or "none"
            doc.add(Paragraph(f"Not measured: the study has one value of {AXIS_NAMES[axis]} ({only})."))
        return
    for task in curves.tasks:
        name = figures.curves(curves, task, analysis.langs, analysis.methods)
        measure = aggregate_name(task.measure)
        doc.add(Heading(3, f"{task.task}: {measure} vs {axis.replace('_', ' ')} (other axes at reference)"))
        doc.add(Image(name, f"{task.task} {measure} vs {axis}, mean over seeds with 95% CI"))
        doc.add(Table(["lang", "method", axis, f"{measure} [95% CI] (seeds)"], _curve_rows(task)))
    if curves.difference is not None:
        name = figures.differences(axis, curves.values, curves.difference)
        doc.add(Heading(3, f"OT minus each KD baseline vs {axis.replace('_', ' ')}"))
        doc.add(
            Image(
                name,
                f"OT minus each KD baseline along {axis.replace('_', ' ')} (other axes at reference), seed-averaged, "
                "95% CI over queries and seeds (the comparisons of the first section)",
            )
        )


def _curve_rows(task: TaskCurves) -> list[list[str]]:
    rows = []
    for line in task.lines:
        if line.level is not None:
            rows.append([line.lang, line.method, "(any)", stats_text(line.level)])
        rows += [[line.lang, line.method, str(p.value), stats_text(p.stats)] for p in line.points]
    return rows
