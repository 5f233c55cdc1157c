"""Reports over evaluation runs and studies: paired comparisons, Markdown/HTML documents, JSON and plots.

:func:`compare_runs` returns a :class:`~optical.report.compare.ComparisonReport`
(write it with ``report.save(out_dir)``); :func:`write_study_report` writes a
study's report. Every number in them comes from the statistics policy of
:mod:`optical.eval.stats`. The names below are imported on first use
(:mod:`optical._lazy`): the plots pull in matplotlib.
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.report.compare": (
            "CellSummary",
            "ComparisonReport",
            "ResourceGap",
            "ScopedComparison",
            "SystemInfo",
            "compare_runs",
        ),
        "optical.report.study": ("StudyReport", "write_study_report"),
        "optical.report.tuning": ("TuningReport", "tuning_report"),
    },
)
