"""Model selection on held-out data that is never used for reporting.

Two dev metrics, both computed with the student as the query encoder and the
frozen teacher as the document encoder, exactly as at search time:

* ``xquad_dev``: MRR@10 of X->en sentence retrieval on the XQuAD *dev* split
  (articles disjoint from the test split used in reports).
* ``flores_dev``: x->en top-1 accuracy of translation retrieval on the
  FLORES-200 dev sentences (``flores200_sib_dev_extra``), which must then not
  be a training source.
* ``heldout_align``: alignment on the selection slice, a fixed 200 pairs of the
  FLORES-200 dev sentences that training keeps out
  (:func:`optical.data.selection_slice`): the mean of x->en and en->x MRR@10 of
  translation retrieval among those 200. Every language of the data mirror has it,
  so languages without XQuAD select on held-out data too. For a language that has
  XQuAD, each dev evaluation also records ``xquad_dev`` (not used to select), so
  that how often the two criteria pick the same step can be measured.

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import torch

from optical.data import BitextConfig, build_bitext, selection_slice, sentence_task
from optical.data.languages import XQUADR_LANGS
from optical.errors import OpticalError

if TYPE_CHECKING:
    from optical.models.encoder import Encoder

#: Token limit of the teacher's dev documents, as in evaluation.
EVAL_MAX_LENGTH = 128

#: What ``--select-on`` takes: a dev metric, or ``none`` (keep the last step).
SelectOn = Literal["xquad_dev", "flores_dev", "heldout_align", "none"]
SELECTION_METRICS: tuple[str, ...] = get_args(SelectOn)


@dataclass(frozen=True)
class DevScore:
    """One dev evaluation: the selection metric (higher is better), the query-embedding spread, and metrics recorded
    beside the selection metric without selecting on them (name -> value)."""

    value: float
    spread: float
    recorded: dict[str, float] = field(default_factory=dict)


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


#: Weight of the margin in the held-out alignment score: small enough that the MRR decides whenever it differs
#: (the smallest MRR@10 change of one query among 2 x 200 is (1/9 - 1/10) / 400 > 2.7e-5, the margin term moves
#: by at most 4e-6), so the margin only breaks ties.
MARGIN_TIEBREAK = 1e-6


@dataclass
class AlignmentSelector:
    """Callable ``selector(student) -> DevScore`` on the held-out selection slice.

    The student encodes the foreign side and the teacher the English side, as in the FLORES alignment evaluation.
    The score is the mean of x->en and en->x MRR@10 among the slice's pairs, with ties broken by the mean
    hardest-negative margin (the translation's cosine minus the best other candidate's, both directions;
    :data:`MARGIN_TIEBREAK`): on 200 long sentences a language the encoder knows well sits at MRR 1.0 from the
    start (the saturation of FLORES alignment), and an MRR alone would then keep the initial student whatever
    training did. Both parts are recorded, and so is ``also`` (e.g. XQuAD dev), which is never selected on.
    """

    metric: str
    foreign: list[str]
    english_embeddings: torch.Tensor  # [N, H] teacher, L2-normalised
    also: DevSelector | None = None

    @torch.inference_mode()
    def __call__(self, student: Encoder) -> DevScore:
        foreign = torch.from_numpy(student.encode(self.foreign, kind="query", max_length=EVAL_MAX_LENGTH))
        cosine = foreign @ self.english_embeddings.T
        mrr = (translation_mrr(cosine) + translation_mrr(cosine.T)) / 2
        margin = (translation_margin(cosine) + translation_margin(cosine.T)) / 2
        recorded = {f"{self.metric}_mrr@10": mrr, f"{self.metric}_margin": margin}
        if self.also is not None:
            recorded[self.also.metric] = self.also(student).value
        return DevScore(mrr + MARGIN_TIEBREAK * margin, embedding_spread(foreign), recorded)


def translation_mrr(scores: torch.Tensor, cutoff: int = 10) -> float:
    """MRR@``cutoff`` of retrieving row i's translation, column i, from ``scores`` [N, N] (ties rank the translation last).

    >>> translation_mrr(torch.eye(3)), translation_mrr(torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    (1.0, 0.75)
    """
    gold = scores.diagonal().unsqueeze(1)
    rank = 1 + (scores > gold).sum(dim=1) + ((scores == gold).sum(dim=1) - 1)
    reciprocal = torch.where(rank <= cutoff, 1.0 / rank.double(), torch.zeros((), dtype=torch.float64))
    return float(reciprocal.mean())


def translation_margin(scores: torch.Tensor) -> float:
    """Mean over rows of the translation's score (the diagonal) minus the best other score of the row.

    >>> round(translation_margin(torch.tensor([[0.9, 0.2], [0.5, 0.4]])), 6)
    0.3
    """
    others = scores.double().clone()
    others.fill_diagonal_(float("-inf"))
    return float((scores.diagonal().double() - others.max(dim=1).values).mean())


def heldout_alignment_selector(lang: str, data_dir: Path, teacher: Encoder, with_xquad: bool) -> AlignmentSelector:
    """Held-out alignment on ``lang``'s selection slice, the teacher encoding its English side now; with
    ``with_xquad`` it also records XQuAD dev (never selected on)."""
    pairs = selection_slice(data_dir, lang)
    english = torch.from_numpy(teacher.encode([p.en for p in pairs], kind="query", max_length=EVAL_MAX_LENGTH))
    also = build_selector("xquad_dev", lang, data_dir, teacher) if with_xquad else None
    return AlignmentSelector("heldout_align", [p.foreign for p in pairs], english, also)


def build_selector(kind: SelectOn, lang: str, data_dir: Path, teacher: Encoder) -> DevSelector | AlignmentSelector | None:
    """The dev selector named by ``kind`` (``none`` gives None: keep the last step).

    The teacher encodes the dev documents truncated to :data:`EVAL_MAX_LENGTH` tokens (its own
    ``max_length`` is left as it is)."""
    if kind == "none":
        return None
    if kind == "heldout_align":
        return heldout_alignment_selector(lang, data_dir, teacher, with_xquad=lang in XQUADR_LANGS)
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
