"""Evaluation on XQuAD / XQuAD-R / FLORES: tasks, scoring, metrics, run dirs and paired statistics.

Entry point: :func:`optical.eval.evaluate.evaluate` with an
:class:`~optical.eval.evaluate.EvalConfig`; it writes an :class:`~optical.eval.results.EvalRun`
dir (aggregates, per-query values, TREC run and qrels files) that
:mod:`optical.report` and :mod:`optical.study` compare with :mod:`optical.eval.stats`.
The names below are imported from their modules on first use (:mod:`optical._lazy`);
``optical.eval.evaluate`` is the function, as ``from optical.eval import evaluate`` gives it.
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.eval.evaluate": ("EvalConfig", "evaluate"),
        "optical.eval.results": ("EvalRun", "TaskResult"),
    },
)
