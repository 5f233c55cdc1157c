"""The first section, "Answer to the research question", rendered from :class:`~.analysis.QuestionAnswer`: the
at-a-glance table, one subsection per arm with generated sentences and its figure, then every comparison.

The sentences say where OT wins, where it loses and where nothing is
significant, whichever way the numbers fall.
"""

from __future__ import annotations

from collections import defaultdict

from optical.eval.metrics import aggregate_name
from optical.eval.stats import ALPHA
from optical.eval.tasks import main_measure, task_spec
from optical.formatting import interval, number
from optical.report.compare import difference_text, p_holm_text
from optical.report.document import Bullets, Document, Heading, Paragraph, Table
from optical.report.study.analysis import (
    ArmAnswer,
    CollapseCaveat,
    GlanceCell,
    GlanceRow,
    InitialCaveat,
    QuestionRow,
    ResourceContrast,
    StudyAnalysis,
    Verdict,
)
from optical.report.study.figures import Figures
from optical.report.study.grid import TRAINED, Arm
from optical.report.study.text import COLLAPSED_STUDENT_MARK, INITIAL_STUDENT_MARK, condition_label, marks

#: How many of a verdict's significant cells its sentence names (the largest differences); the rest are in the table.
NAMED_IN_VERDICT = 6

INTRODUCTION = (
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
)
MARKS_LEGEND = (
    f"{INITIAL_STUDENT_MARK} after a system: it kept its initial student in every seed of that training condition "
    "(dev selection chose step 0; for a change, at the reference condition too), so there it is the zero-shot "
    f"model and the comparison says nothing about what it learned. {COLLAPSED_STUDENT_MARK} after a system: in at "
    "least one seed the student it kept had collapsed (pooled embeddings of different dev questions nearly "
    "identical), so its scores there are a collapsed encoder's."
)


def render_question(doc: Document, analysis: StudyAnalysis, figures: Figures) -> None:
    doc.add(Heading(2, "Answer to the research question"))
    question = analysis.question
    if not question.answerable:
        doc.add(
            Paragraph(
                "This study cannot answer it: it needs an OT method and a KD baseline (a method of sentence-level KD losses "
                f"only, such as mse or contrastive); it has {', '.join(question.trained) or 'no trained method'}."
            )
        )
        return
    doc.add(Paragraph(INTRODUCTION), Paragraph("Tasks: " + "; ".join(_task_legend(analysis.question_tasks)) + "."))
    if question.glance:
        doc.add(_glance_table(question.glance, analysis.question_tasks))
    for answer in question.arms:
        _render_arm(doc, answer, analysis, figures)
    doc.add(
        Heading(3, "Every comparison of the arms above"),
        Paragraph(MARKS_LEGEND),
        _comparison_table(question.levels, analysis, ["method", "baseline", "condition", "method score", "baseline score"]),
    )
    if question.changes:
        doc.add(
            _comparison_table(question.changes, analysis, ["OT", "baseline", "changed condition", "OT change", "baseline change"])
        )


def _render_arm(doc: Document, answer: ArmAnswer, analysis: StudyAnalysis, figures: Figures) -> None:
    arm = answer.arm
    training_axes = [axis for axis in arm.axes if axis != "query_noise"]
    sentences = [_collapse_text(c, training_axes) for c in answer.collapse_caveats]
    sentences += [_initial_text(c, training_axes) for c in answer.initial_caveats]
    sentences += [_verdict_text(v, arm, analysis.groups) for v in answer.verdicts]
    sentences += [_contrast_text(c) for c in answer.contrasts]
    levels = "; ".join(condition_label(c, arm.axes) for c in arm.conditions) if arm.axes else ""
    doc.add(Heading(3, f"Arm: {arm.name}" + (f" ({levels})" if levels else "")))
    doc.add(Bullets(sentences))
    figures.arm(doc, answer, analysis.langs, analysis.question_tasks)
    for warning in answer.warnings:
        doc.add(
            Paragraph(
                f'Warning: the family "{warning.family}" has {warning.size} comparisons and the tests drew '
                f"{analysis.settings.n_resamples} resamples, so no p-value can pass Holm at {ALPHA}: its 'not significant' "
                f"verdicts say nothing. Rerun `optical study report --resamples {warning.needed}` or more."
            )
        )


def _task_legend(tasks: tuple[str, ...]) -> list[str]:
    """Each compared task in one phrase, from the task registry: its queries and candidates, and its main measure."""
    names: dict[str, list[str]] = defaultdict(list)  # one task can write several results (alignment: both directions)
    for task in tasks:
        spec = task_spec(task)
        if spec is not None:
            names[spec.help].append(task)
    return [f"{' / '.join(tasks)}: {help_text}, {aggregate_name(main_measure(tasks[0]))}" for help_text, tasks in names.items()]


def _where(condition: tuple, training_axes: list[str]) -> str:
    return f" at {condition_label((*condition, None), training_axes)}" if training_axes else ""


def _collapse_text(caveat: CollapseCaveat, training_axes: list[str]) -> str:
    return (
        f"{caveat.system}'s kept student had collapsed (pooled dev-question embeddings nearly identical) in "
        + ", ".join(f"{k} of {n} seeds for {lang}" for lang, k, n in caveat.seeds)
        + _where(caveat.condition[:TRAINED], training_axes)
        + f": its scores there (marked {COLLAPSED_STUDENT_MARK}) are a collapsed encoder's."
    )


def _initial_text(caveat: InitialCaveat, training_axes: list[str]) -> str:
    return (
        f"{caveat.system} kept its initial student in every seed for {', '.join(caveat.langs)}"
        + _where(caveat.condition[:TRAINED], training_axes)
        + f" (dev selection chose step 0): there, comparisons involving it (marked {INITIAL_STUDENT_MARK}) measure the "
        "zero-shot model, not what it learned."
    )


def _row_text(r: QuestionRow, arm: Arm) -> str:
    """One comparison in a sentence: only the axes its arm varies name its condition; a change row also gives
    both systems' changes."""
    c = r.comparison
    where = f" ({condition_label(r.condition, arm.axes)})" if arm.axes else ""
    changes = f" ({r.method} {number(c.mean_a, True)}, {r.baseline} {number(c.mean_b, True)})" if r.change else ""
    return (
        f"{r.lang} {r.task} {aggregate_name(c.measure)}{where}{changes} "
        f"{number(c.diff, True)} {interval(c.ci_low, c.ci_high, True)}, p_holm {p_holm_text(c)}" + marks(r)
    )


def _verdict_text(v: Verdict, arm: Arm, groups: dict[str, list[str]]) -> str:
    """One sentence: how often ``method`` is significantly better / worse than ``baseline``, and where.

    For a change, ``method``'s change minus ``baseline``'s, positive when ``method`` gains more or loses less.
    """
    method, baseline = v.method, v.baseline
    family = f"Holm family: {v.family}, {v.family_size} comparisons"
    if v.change:
        text = (
            f"Change from the reference, {method} vs {baseline}: {method}'s change minus {baseline}'s is significantly "
            f"positive ({method} gains more or loses less) in {len(v.better)}, significantly negative in {len(v.worse)}, "
            f"and not significantly different in {v.ties} of {v.n} comparisons ({family})."
        )
        labels = (f"{method} gains more or loses less", f"{method} gains less or loses more")
    else:
        text = (
            f"{method} vs {baseline}: of {v.n} comparisons (language x condition x task, main measure), "
            f"{method} is significantly better in {len(v.better)}, significantly worse in {len(v.worse)}, and not "
            f"significantly different in {v.ties} ({family})."
        )
        labels = ("Better", "Worse")
    for label, chosen in zip(labels, (v.better, v.worse)):
        if chosen:
            shown = chosen[:NAMED_IN_VERDICT]
            rest = len(chosen) - len(shown)
            text += (
                f" {label}: "
                + "; ".join(_row_text(r, arm) for r in shown)
                + (f"; and {rest} more (table below)" if rest else "")
                + "."
            )
    for g in v.groups:
        text += (
            f" On {g.group}-resource languages ({', '.join(g.langs)}) the mean "
            f"difference is {number(g.mean, True)} over {g.n} comparisons, {g.n_significant} of them significant."
        )
    return text


def _contrast_text(c: ResourceContrast) -> str:
    parts = [
        f"{g.task} {aggregate_name(g.measure)}: low {number(g.gap.low_mean, True)}, high {number(g.gap.high_mean, True)}, "
        f"low − high {number(-g.gap.gap, True)} {interval(-g.gap.ci.high, -g.gap.ci.low, True)}"
        for g in c.gaps
    ]
    return (
        f"Low- vs high-resource, {c.method} − {c.baseline} at the reference (low: {', '.join(c.low)}; "
        f"high: {', '.join(c.high)}; "
        "95% CI of the contrast, each group resampled on its own over queries and seeds): " + "; ".join(parts) + "."
    )


def _glance_table(rows: tuple[GlanceRow, ...], tasks: tuple[str, ...]) -> Table:
    """One row per arm and comparison, one column per task: how many cells (language x condition) went each way
    after Holm, and the mean difference; the subsections below name the cells."""
    body = [
        [
            row.arm,
            f"{row.method} vs {row.baseline}" + (", change from the reference" if row.change else ""),
            *(_glance_text(cell) for cell in row.cells),
        ]
        for row in rows
    ]
    return Table(["arm", "comparison", *(f"{t} {aggregate_name(main_measure(t))}" for t in tasks)], body)


def _glance_text(cell: GlanceCell | None) -> str:
    if cell is None:
        return "-"
    flagged = [(cell.n_initial, INITIAL_STUDENT_MARK), (cell.n_collapsed, COLLAPSED_STUDENT_MARK)]
    return f"{cell.better} / {cell.worse} / {cell.n - cell.better - cell.worse} ({number(cell.mean, True)})" + "".join(
        f", {n} {mark}" for n, mark in flagged if n
    )


def _comparison_table(rows: list[QuestionRow], analysis: StudyAnalysis, names: list[str]) -> Table:
    """One row per comparison; ``names`` label the two systems, the condition and the two means (changes are signed)."""
    signed = "change" in names[3]
    return Table(
        [names[0], names[1], "lang", "task", names[2], "n", names[3], names[4], "Δ [95% CI]", "p_holm"],
        [
            [
                r.method + marks(r, r.method),
                r.baseline + marks(r, r.baseline),
                r.lang,
                f"{r.task} {aggregate_name(r.comparison.measure)}",
                condition_label(r.condition, analysis.varying),
                str(r.comparison.n),
                number(r.comparison.mean_a, signed),
                number(r.comparison.mean_b, signed),
                difference_text(r.comparison),
                p_holm_text(r.comparison),
            ]
            for r in rows
        ],
    )
