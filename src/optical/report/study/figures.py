"""The study report's figures, drawn from the analysis results, and the list of the files they were saved to.

Importing this module imports matplotlib (its backend chosen by :mod:`optical.report.plots`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from optical.eval.metrics import aggregate_name
from optical.eval.results import ZERO_SHOT
from optical.eval.tasks import main_measure
from optical.report.document import Document, Image
from optical.report.plots import ForestRow, forest_figure, save_figure
from optical.report.study.analysis import AxisCurves, DifferenceCurves, QuestionRow, TaskCurves
from optical.report.study.grid import AXES, Arm
from optical.report.study.text import condition_label


@dataclass
class Figures:
    """Saves the figures of one report under ``report_dir`` and remembers their paths (relative to it)."""

    report_dir: Path
    #: Every trained method the study plans, in its config's order: colours follow it.
    method_order: tuple[str, ...]
    images: list[Path] = field(default_factory=list)

    def save(self, fig, name: str) -> Path:
        save_figure(fig, self.report_dir / name)
        self.images.append(Path(name))
        return Path(name)

    def arm_forest(self, doc: Document, arm: Arm, rows: tuple[QuestionRow, ...], tasks: tuple[str, ...]) -> None:
        """The arm's headline figure: OT minus each KD baseline and minus zero-shot, per language (and level of the
        arm's axes), with 95% CIs. One figure per arm keeps the labels short and the figure readable."""
        several_levels = len(arm.conditions) > 1
        panels = {
            f"{task} {aggregate_name(main_measure(task))}": [
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
            for task in tasks
        }
        if not any(panels.values()):
            return
        slug = re.sub(r"[^a-z0-9]+", "_", arm.name.lower()).strip("_")
        figure = forest_figure(panels, "difference (method − baseline), 95% CI; filled: Holm-significant")
        name = self.save(figure, f"plots/forest.{slug}.png")
        doc.add(Image(name, f"Arm {arm.name}: OT minus each KD baseline and minus zero-shot, per language, with 95% CIs"))

    def curves(self, curves: AxisCurves, task: TaskCurves, langs: tuple[str, ...], methods: tuple[str, ...]) -> Path:
        """Each language's panel: every method's mean along the axis with 95% CIs (zero-shot as a dashed level)."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        axis, values = curves.axis, curves.values
        # One colour per method in every panel (zero-shot black), methods side by side at each x, four panels to a row.
        drawn = [m for m in methods if m != ZERO_SHOT or axis == "query_noise"]
        colours = {m: c for m, c in zip(self.method_order, palette(len(self.method_order))) if m in drawn}
        if ZERO_SHOT in drawn:
            colours[ZERO_SHOT] = "black"
        shift = 0.2 / max(1, len(colours))
        n_cols = min(4, len(langs))
        n_rows = -(-len(langs) // n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.8 * n_cols + 1.4, 2.9 * n_rows), squeeze=False, layout="constrained")
        for ax in axes.flat[len(langs) :]:
            ax.set_visible(False)
        panels = dict(zip(langs, axes.flat))
        for line in task.lines:
            ax = panels[line.lang]
            if line.level is not None:
                ax.axhline(line.level.mean, linestyle="--", color="black", linewidth=1)
                continue
            offset = (list(colours).index(line.method) - (len(colours) - 1) / 2) * shift
            means = [p.stats.mean for p in line.points]
            errors = error_bars(means, [(p.stats.ci_low, p.stats.ci_high) for p in line.points])
            xs = [p.position + offset for p in line.points]
            ax.errorbar(xs, means, yerr=errors, marker="o", markersize=4, capsize=2, color=colours[line.method])
        for lang, ax in panels.items():
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_title(f"{task.task}.{lang}", fontsize="medium")
            ax.set_xlabel(axis.replace("_", " "))
            ax.set_ylabel(aggregate_name(task.measure))
        handles = [Line2D([0], [0], color=c, marker="o", label=m) for m, c in colours.items()]
        if axis != "query_noise" and ZERO_SHOT in methods:
            handles.append(Line2D([0], [0], color="black", linestyle="--", label=f"{ZERO_SHOT} (no bitext)"))
        fig.legend(handles=handles, title="method", loc="outside right upper")
        return self.save(fig, f"plots/{axis}.{task.task}.png")

    def differences(self, axis: str, values: tuple, difference: DifferenceCurves) -> Path:
        """One panel per pair and task: OT minus the baseline along the axis, one colour per language."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        position = AXES.index(axis)
        langs, tasks, pairs = difference.langs, difference.tasks, difference.pairs
        # One colour per language in every panel, one panel per pair and task, and languages side by side at each x.
        colours = dict(zip(langs, palette(len(langs))))
        shift = 0.3 / max(1, len(langs))
        fig, axes = plt.subplots(
            len(pairs), len(tasks), figsize=(3.8 * len(tasks) + 1.2, 2.8 * len(pairs)), squeeze=False, layout="constrained"
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
                ax.axhline(0.0, color="grey", linewidth=1)
                ax.set_xticks(range(len(values)), [str(v) for v in values])
                ax.set_title(f"{method} − {baseline}: {task} {aggregate_name(main_measure(task))}", fontsize="medium")
                ax.set_xlabel(axis.replace("_", " "))
                ax.set_ylabel("difference, 95% CI")
        handles = [Line2D([0], [0], color=colours[lang], marker="o", label=lang) for lang in langs]
        fig.legend(handles=handles, title="language", loc="outside right upper")
        return self.save(fig, f"plots/{axis}.difference.png")


def palette(n: int) -> list:
    """``n`` distinct colours: tab10 without its grey (black marks zero-shot, grey the zero line), then tab20's."""
    import matplotlib.pyplot as plt

    tab10 = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]
    pale = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i % 2 and i != 15]
    colours = tab10 + pale
    return [colours[i % len(colours)] for i in range(n)]


def error_bars(centres: list[float], intervals: list[tuple[float, float]]) -> list[list[float]]:
    """matplotlib's ``yerr`` from CIs, never negative: a constant cell's mean can sit a rounding error outside its CI."""
    return [
        [max(0.0, c - low) for c, (low, _) in zip(centres, intervals)],
        [max(0.0, high - c) for c, (_, high) in zip(centres, intervals)],
    ]
