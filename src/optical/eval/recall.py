"""Recall of an approximate search against exact search, shared by the dense index of a collection
(:mod:`optical.eval.collection`) and the MaxSim candidate stage (:mod:`optical.eval.maxsim`).

Recall@k of one query is the share of its exact top-k that the approximate search also returns; an
approximate stage is widened until the one-sided 95% lower confidence bound of the mean recall over a
seeded sample of queries reaches its target, not the mean itself: tuned on the mean of 200 queries,
1000 held-out ones reached 0.947 for a 0.95 target (benchmarks/bench_ann.py, 1M vectors), since the
narrowest setting whose sample mean clears the target is as likely as not to fall short on other queries.
"""

from __future__ import annotations

import math

import numpy as np

RECALL_K = 10
#: One-sided 95% normal quantile of the lower confidence bound.
RECALL_CONFIDENCE_Z = 1.645


def query_recalls(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per query, the share of its row of ``truth`` (exact top-k row numbers) that its row of ``found`` also holds."""
    k = truth.shape[1]
    return np.array([len(set(t.tolist()) & set(f.tolist())) / k for t, f in zip(truth, found)])


def recall_at_k(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean of :func:`query_recalls`: recall@k of ``found`` against exact search."""
    return float(query_recalls(truth, found).mean())


def recall_lower_bound(recalls: np.ndarray) -> float:
    """One-sided 95% lower confidence bound of the mean recall (normal approximation over the queries)."""
    if len(recalls) < 2:
        return float(recalls.mean())
    return float(recalls.mean() - RECALL_CONFIDENCE_Z * recalls.std(ddof=1) / math.sqrt(len(recalls)))
