"""Evaluation on XQuAD / XQuAD-R / FLORES: tasks, scoring, metrics, run dirs and paired statistics.

Entry point: :func:`optical.eval.evaluate.evaluate` with an
:class:`~optical.eval.evaluate.EvalConfig`; it writes an :class:`~optical.eval.results.EvalRun`
dir (aggregates, per-query values, TREC run and qrels files) that
:mod:`optical.report` and :mod:`optical.study` compare with :mod:`optical.eval.stats`.
"""

from optical.eval.evaluate import EvalConfig, evaluate
from optical.eval.results import EvalRun, TaskResult

__all__ = ["EvalConfig", "EvalRun", "TaskResult", "evaluate"]
