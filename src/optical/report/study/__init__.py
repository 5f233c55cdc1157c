"""The study report: the answer to the research question first, then curves and tables.

It is written in four steps, one module each: :mod:`~.load` reads the study
dir, :mod:`~.analysis` turns its records into typed results (no I/O, no
formatting), the section modules (:mod:`~.question`, :mod:`~.curves`,
:mod:`~.tables`, with :mod:`~.figures`) render those results into a
:class:`~optical.report.document.Document`, and :mod:`~.write` saves it
(``report.md``, ``report.html``, ``comparisons.json``: the analysis's
comparisons as data, and ``plots/``). The names below are imported on first
use: the analysis needs no matplotlib.
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.report.study.analysis": ("StudyAnalysis", "analyse_study"),
        "optical.report.study.load": ("load_study",),
        "optical.report.study.write": ("StudyReport", "write_study_report"),
    },
)
