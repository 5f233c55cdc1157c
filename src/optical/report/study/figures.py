"""The study report's figures, drawn from the analysis results in the package's style (:mod:`optical.report.style`),
and :class:`Figures`, which saves them and adds them to the report.

Each ``*_figure`` function builds one matplotlib figure from typed results and saves nothing. Per arm: a headline
that fits one screen (the OT method against the comparisons that matter, one panel per task, languages as rows) and
the full forest of every OT method against every baseline, one task and at most :data:`~style.ROWS_PER_PAGE` rows
to a page. Importing this module imports matplotlib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from optical.report import style  # chooses the backend before pyplot is imported

# isort: split
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from optical.eval.metrics import aggregate_name
from optical.eval.results import ZERO_SHOT
from optical.eval.tasks import main_measure
from optical.report.document import Document, Image, Links
from optical.report.plots import ForestRow, forest_figure, save_figure
from optical.report.study.analysis import (
    AcrossLanguagesRow,
    ArmAnswer,
    AxisCurves,
    DifferenceCurves,
    Headline,
    QuestionRow,
    TaskCurves,
)
from optical.report.study.grid import AXES, Arm, Condition
from optical.report.study.text import condition_label

#: Inches of a headline figure that are not rows: the title and legend above, the x label and tallies below.
HEADLINE_MARGIN = 1.9
TALLY_LINE = 0.22


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class Figures:
    """Saves the figures of one report under ``report_dir`` and remembers their paths (relative to it)."""

    report_dir: Path
    images: list[Path] = field(default_factory=list)

    def save(self, fig, name: str) -> Path:
        save_figure(fig, self.report_dir / name)
        self.images.append(Path(name))
        return Path(name)

    def arm(self, doc: Document, answer: ArmAnswer, langs: tuple[str, ...], tasks: tuple[str, ...]) -> None:
        """The arm's headline (embedded) and the pages of its full forest (linked)."""
        arm = answer.arm
        if answer.headline is not None:
            name = self.save(headline_figure(answer.headline, arm, langs, tasks), f"plots/headline.{slug(arm.name)}.png")
            method = answer.headline.method
            doc.add(
                Image(
                    name,
                    f"Arm {arm.name}: where {method} is ahead of, level with or behind "
                    f"{', '.join(answer.headline.baselines)}; {method} minus each, per language, with 95% CIs "
                    "(filled: Holm-significant)",
                )
            )
        pages = [
            (f"{task} p{page}" if count > 1 else task, self.save(figure, f"plots/forest.{slug(arm.name)}.{task}.{page}.png"))
            for task, page, count, figure in forest_pages(answer.forest, arm, tasks)
        ]
        if pages:
            doc.add(Links(f"Every OT method against every baseline in arm {arm.name}, per task (forest plots)", pages))

    def curves(self, curves: AxisCurves, task: TaskCurves, langs: tuple[str, ...], methods: tuple[str, ...]) -> Path:
        return self.save(curves_figure(curves, task, langs, methods), f"plots/{curves.axis}.{task.task}.png")

    def differences(self, axis: str, values: tuple, difference: DifferenceCurves) -> Path:
        return self.save(differences_figure(axis, values, difference), f"plots/{axis}.difference.png")


def _headline_layout(headline: Headline, arm: Arm, langs: tuple[str, ...]) -> list[tuple[str, Condition]]:
    """The headline's rows, top to bottom: each language, and within it each condition of the arm it has."""
    present = {(r.lang, r.condition) for r in headline.rows}
    return [(lang, condition) for lang in langs for condition in arm.conditions if (lang, condition) in present]


def headline_figure(headline: Headline, arm: Arm, langs: tuple[str, ...], tasks: tuple[str, ...]):
    """One panel per task, one row per language (and condition): the OT method minus each baseline (a colour and
    an offset each), with its 95% CI; filled markers are Holm-significant. Sized to fit :data:`style.SCREEN`."""
    keys = _headline_layout(headline, arm, langs)
    tasks = tuple(t for t in tasks if any(r.task == t for r in headline.rows))
    margin = HEADLINE_MARGIN + TALLY_LINE * len(headline.baselines)
    row_height = max(0.18, min(0.36, (style.SCREEN[1] - 0.3 - margin) / len(keys)))
    label_width = 0.6 + (1.4 if len(arm.conditions) > 1 else 0.0)
    panel_width = min(3.5, (style.SCREEN[0] - label_width - 0.2) / len(tasks))
    fig, axes = plt.subplots(
        1,
        len(tasks),
        sharey=True,
        squeeze=False,
        figsize=(label_width + panel_width * len(tasks), margin + row_height * len(keys)),
        layout="constrained",
    )
    ys = {key: len(keys) - 1 - i for i, key in enumerate(keys)}
    spacing = 0.6 / max(1, len(headline.baselines))
    offsets = {b: ((len(headline.baselines) - 1) / 2 - k) * spacing for k, b in enumerate(headline.baselines)}
    for ax, task in zip(axes[0], tasks):
        for r in headline.rows:
            if r.task == task:
                _difference_point(ax, r, ys[(r.lang, r.condition)] + offsets[r.baseline], style.method_colour(r.baseline))
        ax.axvline(0.0, **style.ZERO_LINE)
        for y in range(len(keys) - 1):
            ax.axhline(y + 0.5, color="grey", linewidth=0.4, alpha=0.4)
        ax.set_title(f"{task} {aggregate_name(main_measure(task))}")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # tick labels that do not run into each other
        ax.set_xlabel(_tally_label(headline, task))
        ax.grid(axis="x", alpha=0.3)
    several = len(arm.conditions) > 1
    labels = [f"{lang}, {condition_label(c, arm.axes)}" if several else lang for lang, c in keys]
    axes[0, 0].set_yticks(list(ys.values()), labels)
    axes[0, 0].set_ylim(-0.6, len(keys) - 0.4)
    axes[0, 0].set_ylabel(f"language, {arm.name}" if several else "language")
    _headline_legend(fig, headline)
    # An arm of one condition names it here; the rows of an arm of several name theirs.
    levels = f" ({condition_label(arm.conditions[0], arm.axes)})" if arm.axes and not several else ""
    fig.suptitle(f"Arm {arm.name}{levels}: {headline.method} minus each baseline (right of 0: {headline.method} ahead)")
    return fig


def _difference_point(ax, r: QuestionRow, y: float, colour) -> None:
    c = r.comparison
    ax.plot([c.ci_low, c.ci_high], [y, y], color=colour, linewidth=1.4)
    ax.plot([c.diff], [y], marker="o", markersize=5, color=colour, markerfacecolor=colour if c.significant else "white")


def _tally_label(headline: Headline, task: str) -> str:
    """The x label: the difference, then per baseline how many rows the method is ahead / level / behind."""
    lines = [f"{headline.method} − baseline, 95% CI", "rows ahead / level / behind:"]
    for baseline in headline.baselines:
        cell = headline.tally(baseline, task)
        if cell is not None:
            lines.append(f"vs {baseline}: {cell.better} / {cell.n - cell.better - cell.worse} / {cell.worse}")
    return "\n".join(lines)


def _headline_legend(fig, headline: Headline) -> None:
    handles = [
        Line2D([0], [0], color=style.method_colour(b), marker="o", label=f"{headline.method} − {b}") for b in headline.baselines
    ]
    handles += [
        Line2D([0], [0], color="grey", marker="o", linestyle="", label="Holm-significant"),
        Line2D([0], [0], color="grey", marker="o", markerfacecolor="white", linestyle="", label="not significant"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))


def forest_pages(rows: tuple[QuestionRow, ...], arm: Arm, tasks: tuple[str, ...]):
    """``(task, page, pages, figure)`` for every page of the arm's full forest: one task per page, at most
    :data:`style.ROWS_PER_PAGE` rows each (figures are built as the pages are taken)."""
    several_levels = len(arm.conditions) > 1
    for task in tasks:
        forest = [
            ForestRow(
                f"{r.method} − {r.baseline}, {r.lang}"
                + (f" ({condition_label(r.condition, arm.axes)})" if several_levels else ""),
                r.comparison.diff,
                r.comparison.ci_low,
                r.comparison.ci_high,
                r.comparison.significant,
            )
            for r in rows
            if r.task == task
        ]
        count = -(-len(forest) // style.ROWS_PER_PAGE)
        for page in range(1, count + 1):
            chunk = forest[(page - 1) * style.ROWS_PER_PAGE : page * style.ROWS_PER_PAGE]
            title = f"Arm {arm.name}: {task} {aggregate_name(main_measure(task))}" + (
                f", page {page} of {count}" if count > 1 else ""
            )
            xlabel = "difference (method − baseline), 95% CI; filled: Holm-significant"
            yield task, page, count, forest_figure({title: chunk}, xlabel, ylabel="pair, language")


def late_interaction_figure(rows: tuple[QuestionRow, ...], across: tuple[AcrossLanguagesRow, ...] = ()):
    """One panel per OT method and baseline: per language, the OT method's gain from MaxSim minus the baseline's,
    with its 95% CI (filled: Holm-significant), and last the same over all the languages at once (``across``)."""
    panels: dict[str, list[ForestRow]] = {}
    for r in rows:
        panels.setdefault(f"{r.method} vs {r.baseline}: {r.task}", []).append(
            ForestRow(r.lang, r.comparison.diff, r.comparison.ci_low, r.comparison.ci_high, r.comparison.significant)
        )
    for r in (r for r in across if r.gain):
        if (key := f"{r.method} vs {r.baseline}: {r.task}") in panels:
            c = r.comparison
            panels[key].append(ForestRow(f"all {len(r.langs)}", c.diff, c.ci_low, c.ci_high, c.significant))
    xlabel = "OT's gain from MaxSim minus the baseline's, 95% CI; filled: Holm-significant"
    return forest_figure(panels, xlabel, ylabel="language")


def curves_figure(curves: AxisCurves, task: TaskCurves, langs: tuple[str, ...], methods: tuple[str, ...]):
    """Each language's panel: every method's mean along the axis with 95% CIs (zero-shot off the typo axis as a
    dashed level: it has no bitext)."""
    axis, values = curves.axis, curves.values
    drawn = [m for m in methods if m != ZERO_SHOT or axis == "query_noise"]
    shift = 0.2 / max(1, len(drawn))
    n_cols = min(4, len(langs))
    n_rows = -(-len(langs) // n_cols)
    height = min(style.PANEL_HEIGHT, (style.SCREEN[1] - 0.6) / n_rows)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(style.PANEL_WIDTH * n_cols + 1.6, height * n_rows + 0.4), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[len(langs) :]:
        ax.set_visible(False)
    panels = dict(zip(langs, axes.flat))
    for line in task.lines:
        ax, colour = panels[line.lang], style.method_colour(line.method)
        if line.level is not None:
            ax.axhline(line.level.mean, linestyle="--", color=colour, linewidth=1)
            continue
        offset = (drawn.index(line.method) - (len(drawn) - 1) / 2) * shift
        means = [p.stats.mean for p in line.points]
        errors = error_bars(means, [(p.stats.ci_low, p.stats.ci_high) for p in line.points])
        xs = [p.position + offset for p in line.points]
        ax.errorbar(xs, means, yerr=errors, marker="o", markersize=4, capsize=2, color=colour)
    for lang, ax in panels.items():
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_title(f"{task.task}.{lang}")
        ax.set_xlabel(axis.replace("_", " "))
        ax.set_ylabel(aggregate_name(task.measure))
    handles = [Line2D([0], [0], color=style.method_colour(m), marker="o", label=m) for m in drawn]
    if axis != "query_noise" and ZERO_SHOT in methods:
        handles.append(Line2D([0], [0], color=style.ZERO_SHOT_COLOUR, linestyle="--", label=f"{ZERO_SHOT} (no bitext)"))
    fig.legend(handles=handles, title="method", loc="outside right upper")
    return fig


def differences_figure(axis: str, values: tuple, difference: DifferenceCurves):
    """One panel per pair and task: the method minus the baseline along the axis, one colour per language."""
    position = AXES.index(axis)
    langs, tasks, pairs = difference.langs, difference.tasks, difference.pairs
    colours = style.series_colours(langs)
    shift = 0.3 / max(1, len(langs))
    width = min(style.PANEL_WIDTH, (style.SCREEN[0] - 1.4) / len(tasks))
    height = min(style.PANEL_HEIGHT, (style.SCREEN[1] - 0.4) / len(pairs))
    fig, axes = plt.subplots(
        len(pairs), len(tasks), figsize=(width * len(tasks) + 1.2, height * len(pairs) + 0.4), squeeze=False, layout="constrained"
    )
    for row_axes, (method, baseline) in zip(axes, pairs):
        for ax, task in zip(row_axes, tasks):
            for i, lang in enumerate(langs):
                cell = (method, baseline, task, lang)
                rows = [r for r in difference.rows if (r.method, r.baseline, r.task, r.lang) == cell]
                if not rows:
                    continue
                xs = [values.index(r.condition[position]) + (i - (len(langs) - 1) / 2) * shift for r in rows]
                diffs = [r.comparison.diff for r in rows]
                errors = error_bars(diffs, [(r.comparison.ci_low, r.comparison.ci_high) for r in rows])
                ax.errorbar(xs, diffs, yerr=errors, marker="o", markersize=4, capsize=2, color=colours[lang])
            ax.axhline(0.0, **style.ZERO_LINE)
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_title(f"{method} − {baseline}: {task} {aggregate_name(main_measure(task))}")
            ax.set_xlabel(axis.replace("_", " "))
            ax.set_ylabel("difference, 95% CI")
    handles = [Line2D([0], [0], color=colours[lang], marker="o", label=lang) for lang in langs]
    fig.legend(handles=handles, title="language", loc="outside right upper")
    return fig


def error_bars(centres: list[float], intervals: list[tuple[float, float]]) -> list[list[float]]:
    """matplotlib's ``yerr`` from CIs, never negative: a constant cell's mean can sit a rounding error outside its CI."""
    return [
        [max(0.0, c - low) for c, (low, _) in zip(centres, intervals)],
        [max(0.0, high - c) for c, (_, high) in zip(centres, intervals)],
    ]
