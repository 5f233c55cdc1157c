"""PNG plots of a :class:`ComparisonReport` (matplotlib, Agg backend: no display needed).

* ``plots/<task>.<measure>.png``: per-language (then per-group) bars of each
  system's mean with its 95% bootstrap CI as error bars, for the main measure
  of each task;
* ``plots/resource_gap.png``: each system's high − low resource gap with its
  CI, one bar group per task.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from optical.eval.metrics import aggregate_name  # noqa: E402
from optical.storage import atomic_path  # noqa: E402

if TYPE_CHECKING:
    from optical.report.compare import ComparisonReport

_BAR_GROUP_WIDTH = 0.8


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("@", "_at_"))


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _grouped_bars(ax, labels: list[str], series: dict[str, list[tuple[float, float, float] | None]]) -> None:
    """Bars per label, one per series; each value ``(mean, ci_low, ci_high)`` or None (no bar)."""
    positions = np.arange(len(labels))
    width = _BAR_GROUP_WIDTH / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        offset = positions - _BAR_GROUP_WIDTH / 2 + (i + 0.5) * width
        present = [(x, v) for x, v in zip(offset, values) if v is not None]
        if not present:
            continue
        xs = [x for x, _ in present]
        means = np.array([v[0] for _, v in present])
        errors = np.array([[v[0] - v[1] for _, v in present], [v[2] - v[0] for _, v in present]])
        ax.bar(xs, means, width, yerr=np.clip(errors, 0, None), capsize=3, label=name)
    ax.set_xticks(positions, labels)
    ax.legend(fontsize="small")


def write_plots(report: ComparisonReport, out_dir: Path) -> list[Path]:
    """Write the plots under ``out_dir/plots`` and return their paths."""
    written = []
    systems = [s.name for s in report.systems]
    for task, measure in report.main_measures.items():
        scopes = list(report.tasks[task]) + [
            g for g in report.resource_groups if report.summary(report.baseline, task, g, measure)
        ]
        series = {}
        for system in systems:
            cells = [report.summary(system, task, scope, measure) for scope in scopes]
            series[system] = [(c.mean, c.ci_low, c.ci_high) if c else None for c in cells]
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(scopes) * max(1, len(systems)) / 2 + 2), 3.6))
        _grouped_bars(ax, scopes, series)
        ax.set_ylabel(aggregate_name(measure))
        ax.set_title(f"{task}: {aggregate_name(measure)} per language (95% CI)")
        written.append(_save(fig, out_dir / "plots" / f"{_safe(task)}.{_safe(measure)}.png"))
    if report.gaps:
        tasks = list(dict.fromkeys(g.task for g in report.gaps))
        series = {
            system: [
                next(((g.gap, g.ci_low, g.ci_high) for g in report.gaps if g.task == task and g.system == system), None)
                for task in tasks
            ]
            for system in systems
        }
        fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(tasks) * max(1, len(systems)) / 2 + 2), 3.6))
        _grouped_bars(ax, [f"{t}\n({aggregate_name(report.main_measures[t])})" for t in tasks], series)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel("high − low resource")
        ax.set_title("Resource gap per system (95% CI)")
        written.append(_save(fig, out_dir / "plots" / "resource_gap.png"))
    return written
