"""PNG plots of the reports (matplotlib, Agg backend: no display needed), and the one function that saves them.

* :func:`forest_figure`: the headline of both reports, the paired differences
  (system minus baseline) with their 95% CIs, one row per language (or group,
  or condition), one panel per task; a dashed line marks 0 and filled markers
  the Holm-significant differences. The axis is centred on the differences,
  not on 0-to-1 scores, so a 0.02 difference is visible.
* :func:`write_comparison_plots`: for a :class:`ComparisonReport`, the forest
  plot (``plots/forest.png``), each task's per-language means with CIs on an
  axis fitted to them (``plots/<task>.<measure>.png``) and the resource gaps
  (``plots/resource_gap.png``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from optical.eval.metrics import aggregate_name  # noqa: E402
from optical.formatting import safe_filename  # noqa: E402
from optical.storage import atomic_path  # noqa: E402

if TYPE_CHECKING:
    from optical.report.compare import ComparisonReport

DPI = 110


@dataclass(frozen=True)
class ForestRow:
    """One difference of a forest plot: its label, value, 95% CI and whether it is significant."""

    label: str
    diff: float
    ci_low: float
    ci_high: float
    significant: bool


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def forest_figure(panels: dict[str, Sequence[ForestRow]], xlabel: str):
    """A forest plot, one panel per key of ``panels`` (top to bottom in row order)."""
    panels = {title: rows for title, rows in panels.items() if rows}
    heights = [max(1.2, 0.28 * len(rows) + 0.6) for rows in panels.values()]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(7.5, sum(heights) + 0.4),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
        layout="constrained",
    )
    for ax, (title, rows) in zip(axes[:, 0], panels.items()):
        ys = np.arange(len(rows))[::-1]
        for y, row in zip(ys, rows):
            colour = "tab:blue" if row.diff >= 0 else "tab:red"
            ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, linewidth=1.5)
            ax.plot([row.diff], [y], marker="o", color=colour, markerfacecolor=colour if row.significant else "white")
        ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_yticks(ys, [row.label for row in rows], fontsize="small")
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(title, fontsize="medium", loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(xlabel)
    return fig


def _means_figure(report: ComparisonReport, task: str, measure: str):
    """Each system's mean with its 95% CI per scope, as points on an axis fitted to them."""
    scopes = [scope for scope, _ in report.scopes(task, measure)]
    systems = [s.name for s in report.systems]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(scopes) + 2.5), 3.4), layout="constrained")
    width = 0.6 / max(1, len(systems))
    for i, system in enumerate(systems):
        points = [(x, report.summary(system, task, scope, measure)) for x, scope in enumerate(scopes)]
        points = [(x + (i - (len(systems) - 1) / 2) * width, c) for x, c in points if c is not None]
        if points:
            means = np.array([c.mean for _, c in points])
            errors = np.clip([[c.mean - c.ci_low for _, c in points], [c.ci_high - c.mean for _, c in points]], 0, None)
            ax.errorbar([x for x, _ in points], means, yerr=errors, fmt="o", capsize=3, label=system)
    ax.set_xticks(range(len(scopes)), scopes)
    ax.set_ylabel(aggregate_name(measure))
    ax.set_title(f"{task}: {aggregate_name(measure)} per language (95% CI)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def write_comparison_plots(report: ComparisonReport, out_dir: Path) -> list[Path]:
    """Write the plots of ``report`` under ``out_dir/plots`` and return their paths (forest plot first)."""
    written = []
    panels = {}
    for task, measure in report.main_measures.items():
        rows = []
        for system, baseline in report.pairs:
            for scope, _ in report.scopes(task, measure):
                c = report.comparison(system, baseline, task, scope, measure)
                if c is not None:
                    rows.append(ForestRow(f"{system} − {baseline}, {scope}", c.diff, c.ci_low, c.ci_high, c.significant))
        panels[f"{task} {aggregate_name(measure)}"] = rows
    if any(panels.values()):
        fig = forest_figure(panels, "difference (system − baseline), 95% CI; filled: Holm-significant")
        written.append(save_figure(fig, out_dir / "plots" / "forest.png"))
    for task, measure in report.main_measures.items():
        path = out_dir / "plots" / f"{safe_filename(task)}.{safe_filename(measure)}.png"
        written.append(save_figure(_means_figure(report, task, measure), path))
    if report.gaps:
        gap_rows = [ForestRow(f"{g.system}, {g.task}", g.gap, g.ci_low, g.ci_high, False) for g in report.gaps]
        fig = forest_figure({"resource gap per system (high − low), 95% CI": gap_rows}, "high − low resource")
        written.append(save_figure(fig, out_dir / "plots" / "resource_gap.png"))
    return written
