"""Reports over evaluation runs: paired comparisons, Markdown tables, JSON and plots."""

from optical.report.compare import (
    DEFAULT_RESOURCE_GROUPS,
    CellSummary,
    ComparisonReport,
    ResourceGap,
    ScopedComparison,
    SystemInfo,
    compare_runs,
)

__all__ = [
    "DEFAULT_RESOURCE_GROUPS",
    "CellSummary",
    "ComparisonReport",
    "ResourceGap",
    "ScopedComparison",
    "SystemInfo",
    "compare_runs",
]
