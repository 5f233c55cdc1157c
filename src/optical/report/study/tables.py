"""The sections after the curves, rendered from the analysis: the low- vs high-resource gap, language bias, English
retention, the training runs and their cost, and the coverage of an unfinished study."""

from __future__ import annotations

import numpy as np

from optical.data.languages import XQUADR_LANGS
from optical.eval.metrics import aggregate_name
from optical.eval.results import ZERO_SHOT
from optical.eval.stats import ALPHA
from optical.formatting import cell_text, interval, number, p_value
from optical.report.document import Document, Heading, Image, Paragraph, Table
from optical.report.study.analysis import BIAS_MEASURES, LATE_INTERACTION_TASKS, StudyAnalysis, Training
from optical.report.study.figures import Figures, late_interaction_figure
from optical.report.study.grid import Condition
from optical.report.study.text import condition_label, stats_text
from optical.train.record import COLLAPSE_SPREAD_RATIO


def render_gaps(doc: Document, analysis: StudyAnalysis) -> None:
    doc.add(Heading(2, "Low- vs high-resource gap"))
    gaps, groups = analysis.gaps, analysis.groups
    if gaps is None:
        doc.add(
            Paragraph(
                f"Not measured: it needs languages of both groups (low: {', '.join(groups.get('low', []))}; "
                f"high: {', '.join(groups.get('high', []))}); the study has {', '.join(analysis.langs)}."
            )
        )
        return
    doc.add(
        Paragraph(
            f"Gap = mean over high-resource ({', '.join(gaps.high)}) minus low-resource ({', '.join(gaps.low)}) queries at "
            "the reference condition; 95% CI: each group resampled on its own (unpaired; over queries and seeds with "
            "several seeds)."
        )
    )
    rows = [
        [
            f"{g.task} {aggregate_name(g.measure)}",
            g.system,
            number(g.gap.low_mean),
            number(g.gap.high_mean),
            f"{number(g.gap.gap, True)} {interval(g.gap.ci.low, g.gap.ci.high, True)}",
        ]
        for g in gaps.rows
    ]
    doc.add(Table(["task", "method", "low", "high", "gap [95% CI]"], rows))


def render_bias_and_retention(doc: Document, analysis: StudyAnalysis) -> None:
    doc.add(Heading(2, "Language bias (LAReQA pool)"))
    if analysis.bias is None:
        doc.add(Paragraph("Not measured: the study's evaluations do not include the pool task."))
    else:
        doc.add(
            Paragraph(
                "LangShare@10: share of the top 10 in the query's language (the pool holds the same sentences in "
                f"{len(XQUADR_LANGS)} languages, so a ranker blind to language puts about 1/{len(XQUADR_LANGS)} = "
                f"{1 / len(XQUADR_LANGS):.2f} of its top 10 there); GoldRankGap: rank of the English gold minus rank of "
                "the same-language gold (positive: the same-language answer ranks higher). Reference condition."
            ),
            Table(
                ["lang", "method", "mAP", *BIAS_MEASURES],
                [[row.lang, row.method, *map(stats_text, row.cells)] for row in analysis.bias],
            ),
        )
    doc.add(Heading(2, "English retention"))
    if analysis.retention is None:
        doc.add(Paragraph("Not measured: the study's evaluations do not include the retention task."))
        return
    doc.add(
        Paragraph(
            "English questions against English sentences with each student (trained on the row's language), "
            "MRR@10 at the reference condition: does distillation damage English?"
        ),
        Table(["trained on", *analysis.methods], [[row.lang, *map(stats_text, row.cells)] for row in analysis.retention]),
    )


TRAINING_INTRODUCTION = (
    "Per distillation run: steps, the step model selection kept (0 = the initial student, i.e. training did "
    "not help on the dev split), the dev metric before training and at the kept step, and the training cost "
    "(wall minutes, pairs per second; a run paused or sharing the machine shows a lower rate)."
)
TRAINING_HEADER = [
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
]


def render_training(doc: Document, training: Training) -> None:
    """One row per distillation run, from its ``run.json``: what model selection kept and what training cost."""
    if training.runs:
        rows = [
            [
                run.lang,
                run.method,
                str(run.seed),
                str(run.budget),
                cell_text(run.noise),
                str(run.steps),
                cell_text(run.best_step),
                "-" if run.dev_before is None else number(run.dev_before),
                "-" if run.best_metric is None else number(run.best_metric),
                f"{run.train_minutes:.1f}",
                f"{run.pairs_per_second:.1f}",
            ]
            for run in training.runs
        ]
        doc.add(Heading(2, "Training runs"), Paragraph(TRAINING_INTRODUCTION), Table(TRAINING_HEADER, rows))
    if training.costs:
        _render_cost(doc, training)
    if training.selection:
        _render_selection(doc, training)


def _render_cost(doc: Document, training: Training) -> None:
    by_threads = training.by_threads
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
                [
                    g.method,
                    g.budget,
                    *([g.threads or "-"] if by_threads else []),
                    str(len(g.minutes)),
                    f"{np.median(g.minutes):.1f}",
                    f"{min(g.minutes):.1f}",
                    f"{max(g.minutes):.1f}",
                ]
                for g in training.costs
            ],
        ),
    )


def _render_selection(doc: Document, training: Training) -> None:
    shares = sorted(
        (
            (share.method, ", ".join(f"{axis} {cell_text(value)}" for axis, value in share.condition), share)
            for share in training.selection
        ),
        key=lambda item: item[:2],
    )
    doc.add(
        Paragraph(
            "Runs whose model selection kept step 0 (the initial student scored best on the dev split: the run learned "
            "nothing that selection could see), per method and condition:"
        ),
        Table(
            ["method", "condition", "kept step 0", "collapsed"],
            [[method, where, _share(share.kept_initial), _share(share.collapsed)] for method, where, share in shares],
        ),
        Paragraph(
            "collapsed: runs whose pooled dev-query embeddings became nearly identical at some dev evaluation (spread, "
            f"1 − mean pairwise cosine, below {COLLAPSE_SPREAD_RATIO:g} x the initial student's): a collapse, not just "
            "a run that learned little; n/a where the runs did not record the spread."
        ),
    )


def _share(flags: tuple[bool, ...]) -> str:
    """``k of n`` flags set, or ``n/a`` when nothing was measured."""
    return "n/a" if not flags else f"{sum(flags)} of {len(flags)}"


def render_coverage(doc: Document, analysis: StudyAnalysis) -> None:
    """Per method and training condition: how many of its planned runs are done, and which languages still wait."""
    if analysis.coverage is None:
        return
    training_axes = [axis for axis in analysis.varying if axis != "query_noise"]
    rows = [
        [
            row.method,
            _coverage_condition(row.method, row.condition, training_axes, analysis.varying),
            f"{row.done} / {row.planned}",
            ", ".join(row.waiting) or "-",
        ]
        for row in analysis.coverage
    ]
    doc.add(
        Heading(2, "Coverage"),
        Paragraph("Runs done of those planned, per method and training condition, and the languages still waiting."),
        Table(["method", "condition", "runs done", "languages waiting"], rows),
    )


def _coverage_condition(method: str, condition: Condition, training_axes: list[str], varying: tuple[str, ...]) -> str:
    if method == ZERO_SHOT:  # no training condition; one model per backbone
        return condition_label((*condition, None), ["backbone"]) if "backbone" in varying else "-"
    return condition_label((*condition, None), training_axes) if training_axes else "reference"


def render_late_interaction(doc: Document, analysis: StudyAnalysis, figures: Figures) -> None:
    """Does OT gain more from late interaction (MaxSim) than each baseline? Per language: OT's gain minus the
    baseline's, paired per query, with its 95% CI and Holm-corrected p."""
    rows = analysis.late_interaction
    if not rows:
        return
    doc.add(Heading(2, "Late interaction: does OT gain more from MaxSim than each baseline?"))
    reference = [a for a in analysis.question.arms if not a.comparisons.arm.axes]
    dense_of = {late: dense for dense, late in LATE_INTERACTION_TASKS if any(r.task == f"{late} gain" for r in rows)}
    ot_methods = {r.method for r in rows}
    levels = _grouped(r for a in reference for r in (*a.comparisons.kd, *a.comparisons.zero) if r.method in ot_methods)
    under_maxsim = []
    for (method, baseline, task), found in levels.items():
        if task not in dense_of:
            continue
        dense = levels.get((method, baseline, dense_of[task]))
        beside = f" (dense {dense_of[task]}: {_counts_text(dense)})" if dense else ""
        under_maxsim.append(f"{method} vs {baseline} on {task}: {_counts_text(found)}{beside}")
    if under_maxsim:
        doc.add(
            Paragraph(
                "Under MaxSim, at the reference condition (the research question's rows and Holm families): "
                + "; ".join(under_maxsim)
                + "."
            )
        )
    _render_late_interaction_across(doc, analysis)
    doc.add(
        Image(
            figures.save(late_interaction_figure(rows, analysis.late_interaction_across), "plots/late-interaction.png"),
            "per language and over all of them: OT's gain from MaxSim minus each baseline's, with 95% CIs",
        )
    )
    doc.add(
        Paragraph(
            "Each row below: the OT method's gain from scoring by MaxSim instead of the pooled vector (per query, MaxSim "
            "minus dense, seed by seed) minus the baseline's gain, at the reference condition; 95% CI over queries (and "
            f"seeds), p Holm-corrected over the {len(rows)} rows. Does OT gain more? "
            + "; ".join(
                f"{method} vs {baseline}: {_counts_text(found, ahead='more', behind='less')}"
                for (method, baseline, _), found in _grouped(rows).items()
            )
            + "."
        ),
        Table(
            ["lang", "task", "OT", "baseline", "OT gain", "baseline gain", "difference [95% CI]", "p (Holm)"],
            [
                [
                    r.lang,
                    r.task,
                    r.method,
                    r.baseline,
                    number(r.comparison.mean_a, signed=True),
                    number(r.comparison.mean_b, signed=True),
                    f"{number(r.comparison.diff, signed=True)} {interval(r.comparison.ci_low, r.comparison.ci_high, signed=True)}"
                    + (" †" if r.comparison.significant else ""),
                    p_value(r.comparison.p_holm),
                ]
                for r in rows
            ],
        ),
    )


def _grouped(rows) -> dict[tuple[str, str, str], list]:
    """Rows by (method, baseline, task), in their order."""
    groups: dict[tuple[str, str, str], list] = {}
    for row in rows:
        groups.setdefault((row.method, row.baseline, row.task), []).append(row)
    return groups


def _counts_text(rows, ahead: str = "ahead", behind: str = "behind") -> str:
    """E.g. ``ahead in 2 of 8 languages (el, th), behind in 0``: significant differences after Holm."""
    up = [r.lang for r in rows if r.comparison.significant and r.comparison.diff > 0]
    down = [r.lang for r in rows if r.comparison.significant and r.comparison.diff < 0]
    named = lambda langs: f" ({', '.join(langs)})" if langs else ""  # noqa: E731
    languages = "language" if len(rows) == 1 else "languages"
    return f"{ahead} in {len(up)} of {len(rows)} {languages}{named(up)}, {behind} in {len(down)}{named(down)}"


def _render_late_interaction_across(doc: Document, analysis: StudyAnalysis) -> None:
    """The section's answer in one place: each OT method against each baseline over all the languages at once, dense,
    under MaxSim and on the gain from MaxSim."""
    across = analysis.late_interaction_across
    if not across:
        return
    sentences = []
    for i in range(0, len(across), 3):  # dense, MaxSim, gain: one pair on one task over one set of languages
        parts = []
        for r in across[i : i + 3]:
            c = r.comparison
            verdict = ("more" if c.diff > 0 else "less") if r.gain else ("ahead" if c.diff > 0 else "behind")
            parts.append(
                f"{r.task} {number(c.diff, signed=True)} {interval(c.ci_low, c.ci_high, signed=True)} "
                f"(p Holm {p_value(c.p_holm)}: {verdict if c.significant else 'level'})"
            )
        first = across[i]
        sentences.append(f"{first.method} vs {first.baseline} over {', '.join(first.langs)}: " + "; ".join(parts))
    doc.add(
        Paragraph(
            "Over all the languages at once (each question's value averaged over the languages first: they ask the same "
            "questions, so a question is resampled once; 95% CI over questions and seeds, for these languages; a verdict "
            f"needs p < {ALPHA} after Holm over the {len(across)} rows): " + ". ".join(sentences) + "."
        )
    )
