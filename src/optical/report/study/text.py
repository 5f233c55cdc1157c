"""Words shared by the study report's sections: condition labels, cells, the marks of selection."""

from __future__ import annotations

from optical.eval.stats import CellStats
from optical.formatting import cell_text, interval, number
from optical.report.study.analysis import QuestionRow
from optical.report.study.grid import AXES, AXIS_NAMES, Condition

#: Marks a system that kept its initial student in every seed of a comparison's condition (dev selection chose
#: step 0): there it is the zero-shot model, and the comparison says nothing about what it learned.
INITIAL_STUDENT_MARK = "‡"
#: Marks a system whose kept student had collapsed in at least one seed (pooled embeddings of different sentences
#: nearly identical): its scores there are a collapsed encoder's, not a weak one's.
COLLAPSED_STUDENT_MARK = "§"


def condition_label(condition: Condition, shown: list[str] | tuple[str, ...]) -> str:
    """The values of the ``shown`` axes of ``condition``, named (``budget 2000, typo rate 0.1``)."""
    parts = [f"{AXIS_NAMES[axis]} {cell_text(value)}" for axis, value in zip(AXES, condition) if axis in shown]
    return ", ".join(parts) or "all runs"


def stats_text(cell: CellStats | None) -> str:
    """``mean [CI] (seeds)`` of a cell, or a dash where there is none."""
    if cell is None:
        return "–"
    return f"{number(cell.mean)} {interval(cell.ci_low, cell.ci_high)} ({cell.n_seeds})"


def marks(row: QuestionRow, system: str | None = None) -> str:
    """The marks of ``row`` (of one of its systems when named): kept its initial student, kept a collapsed one."""
    flagged = ((INITIAL_STUDENT_MARK, row.kept_initial), (COLLAPSED_STUDENT_MARK, row.kept_collapsed))
    chosen = [mark for mark, systems in flagged if (system in systems if system else systems)]
    return "".join(f" {mark}" for mark in chosen)
