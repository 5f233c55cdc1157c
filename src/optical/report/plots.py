"""PNG plots of the reports in the package's one style (:mod:`optical.report.style`), and the function that saves them.

* :func:`forest_figure`: paired differences (system minus baseline) with
  their 95% CIs, one row per language (or group, or condition), one panel per
  task; a dashed line marks 0 and filled markers the Holm-significant
  differences. The axis is centred on the differences, not on 0-to-1 scores,
  so a 0.02 difference is visible.
* :func:`means_figure`: each system's per-scope means with CIs on an axis
  fitted to them.

The plots know nothing of the reports: each report hands them plain rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from optical.report import style  # chooses the backend before pyplot is imported

# isort: split
import matplotlib.pyplot as plt
import numpy as np

from optical.storage import atomic_path

#: Positive differences blue, negative red (a forest of one kind of difference).
AHEAD, BEHIND = "tab:blue", "tab:red"


@dataclass(frozen=True)
class ForestRow:
    """One difference of a forest plot: its label, value, 95% CI and whether it is significant."""

    label: str
    diff: float
    ci_low: float
    ci_high: float
    significant: bool


@dataclass(frozen=True)
class MeanPoint:
    """One system's mean on one scope with its 95% CI (a point of :func:`means_figure`)."""

    scope_index: int
    mean: float
    ci_low: float
    ci_high: float


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (at the style's DPI) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=style.DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def forest_figure(panels: dict[str, Sequence[ForestRow]], xlabel: str, ylabel: str = "comparison"):
    """A forest plot, one panel per key of ``panels`` (top to bottom in row order)."""
    panels = {title: rows for title, rows in panels.items() if rows}
    heights = [max(1.2, style.ROW_HEIGHT * len(rows) + 0.6) for rows in panels.values()]
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
            colour = AHEAD if row.diff >= 0 else BEHIND
            ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, linewidth=1.5)
            ax.plot([row.diff], [y], marker="o", color=colour, markerfacecolor=colour if row.significant else "white")
        ax.axvline(0.0, **style.ZERO_LINE)
        ax.set_yticks(ys, [row.label for row in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    return fig


def means_figure(title: str, ylabel: str, scopes: Sequence[str], points: dict[str, Sequence[MeanPoint]]):
    """Each system's mean with its 95% CI per scope (``points``: system -> its points), on an axis fitted to them."""
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(scopes) + 2.5), 3.4), layout="constrained")
    width = 0.6 / max(1, len(points))
    for i, (system, mine) in enumerate(points.items()):
        if mine:
            xs = [p.scope_index + (i - (len(points) - 1) / 2) * width for p in mine]
            means = np.array([p.mean for p in mine])
            errors = np.clip([[p.mean - p.ci_low for p in mine], [p.ci_high - p.mean for p in mine]], 0, None)
            ax.errorbar(xs, means, yerr=errors, fmt="o", capsize=3, label=system, color=style.method_colour(system))
    ax.set_xticks(range(len(scopes)), scopes)
    ax.set_xlabel("language or group")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return fig
