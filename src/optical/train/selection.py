"""Model selection on held-out data that is never used for reporting.

Two dev metrics, both computed with the student as the query encoder and the
frozen teacher as the document encoder, exactly as at search time:

* ``xquad_dev``: MRR@10 of X->en sentence retrieval on the XQuAD *dev* split
  (articles disjoint from the test split used in reports).
* ``flores_dev``: x->en top-1 accuracy of translation retrieval on the
  FLORES-200 dev sentences (``flores200_sib_dev_extra``), which must then not
  be a training source.

The teacher side is encoded once when the selector is built.

Each dev evaluation also measures the *spread* of the student's pooled query
embeddings: one minus their mean pairwise cosine. A student whose embeddings of
different sentences have become nearly identical (the representation collapse
reported for MSE distillation at high learning rates, sentence-transformers
issue #1164) scores near zero on dev, but so does one that merely learned
little; the spread tells the two apart
(:attr:`optical.train.record.RunResult.collapsed_at` compares it with the
initial student's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import torch

from optical.data import BitextConfig, build_bitext, sentence_task
from optical.errors import OpticalError

if TYPE_CHECKING:
    from optical.models.encoder import Encoder

#: Token limit of the teacher's dev documents, as in evaluation.
EVAL_MAX_LENGTH = 128

#: What ``--select-on`` takes: a dev metric, or ``none`` (keep the last step).
SelectOn = Literal["xquad_dev", "flores_dev", "none"]
SELECTION_METRICS: tuple[str, ...] = get_args(SelectOn)


@dataclass(frozen=True)
class DevScore:
    """One dev evaluation: the selection metric (higher is better) and the query-embedding spread."""

    value: float
    spread: float


def embedding_spread(embeddings: torch.Tensor) -> float:
    """``1 - mean cosine`` over every pair of distinct rows of L2-normalised ``embeddings``.

    The mean over pairs is ``(|sum of rows|^2 - n) / (n (n - 1))``, so no ``n x n`` matrix is built.

    >>> round(embedding_spread(torch.eye(3)), 6), round(embedding_spread(torch.ones(4, 2) / 2**0.5), 6)
    (1.0, 0.0)
    """
    n = embeddings.shape[0]
    if n < 2:
        return 0.0
    total = embeddings.double().sum(dim=0)
    mean_cosine = (float(total @ total) - n) / (n * (n - 1))
    return 1.0 - mean_cosine


@dataclass
class DevSelector:
    """Callable ``selector(student) -> DevScore``."""

    metric: str
    queries: list[str]
    query_kind: str
    doc_embeddings: torch.Tensor  # [D, H] teacher, L2-normalised
    gold: list[set[int]]  # relevant document rows of each query
    cutoff: int  # MRR@cutoff (xquad_dev) or accuracy@1 (cutoff 1, flores_dev)

    @torch.inference_mode()
    def __call__(self, student: Encoder) -> DevScore:
        queries = torch.from_numpy(student.encode(self.queries, kind=self.query_kind))
        scores = queries @ self.doc_embeddings.T
        top = scores.topk(min(self.cutoff, scores.shape[1]), dim=1).indices.tolist()
        total = 0.0
        for ranked, relevant in zip(top, self.gold):
            for rank, doc in enumerate(ranked, start=1):
                if doc in relevant:
                    total += 1.0 / rank
                    break
        return DevScore(total / len(self.queries), embedding_spread(queries))


def build_selector(kind: SelectOn, lang: str, data_dir: Path, teacher: Encoder) -> DevSelector | None:
    """The dev selector named by ``kind`` (``none`` gives None: keep the last step).

    The teacher encodes the dev documents truncated to :data:`EVAL_MAX_LENGTH` tokens (its own
    ``max_length`` is left as it is)."""
    if kind == "none":
        return None
    if kind == "xquad_dev":
        task = sentence_task(data_dir, lang, ["en"], "dev")
        doc_ids = list(task.candidates)
        row = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        query_ids = list(task.queries)
        docs = torch.from_numpy(teacher.encode([task.candidates[d] for d in doc_ids], kind="passage", max_length=EVAL_MAX_LENGTH))
        gold = [{row[d] for d, rel in task.qrels[q].items() if rel > 0 and d in row} for q in query_ids]
        return DevSelector("xquad_dev_mrr@10", [task.queries[q] for q in query_ids], "query", docs, gold, 10)
    if kind == "flores_dev":
        pairs = build_bitext(data_dir, BitextConfig(lang=lang, sources=["flores200_sib_dev_extra"], budget=None, seed=0)).pairs
        docs = torch.from_numpy(teacher.encode([p.en for p in pairs], kind="query", max_length=EVAL_MAX_LENGTH))
        return DevSelector("flores_dev_acc@1", [p.foreign for p in pairs], "query", docs, [{i} for i in range(len(pairs))], 1)
    raise OpticalError(f"unknown selection metric {kind!r}")
