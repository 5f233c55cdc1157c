"""Retrieval from embeddings, and TREC run/qrels files.

Two scorers:

* **Dense** (bi-encoder): one L2-normalised vector per text; the score is the
  inner product, which equals the cosine. :func:`dense_search` is exact
  (FAISS ``IndexFlatIP``, brute force) — XQuAD pools are small enough that an
  approximate index would only add error.
* **Late interaction** (ColBERT MaxSim, one vector per token): :mod:`optical.eval.maxsim`.

Runs are ``{qid: {docid: score}}`` holding the top-k documents of each query;
the TREC writers produce the standard formats that trec_eval and ir_measures
read (run: ``qid Q0 docid rank score tag``; qrels: ``qid 0 docid relevance``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from optical.errors import OpticalError
from optical.eval.metrics import Qrels, Run, ranked_doc_ids
from optical.storage import atomic_write_text


def check_ids(ids: Sequence[str], count: int, what: str) -> list[str]:
    """``ids`` as strings, or one clear error when they are not ``count`` unique ids."""
    ids = [str(i) for i in ids]
    if len(ids) != count:
        raise OpticalError(f"{len(ids)} {what} ids for {count} {what} embeddings: they must match one to one")
    if len(set(ids)) != len(ids):
        raise OpticalError(f"{what} ids are not unique: each {what} needs its own id")
    return ids


def dense_search(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
) -> dict[str, dict[str, float]]:
    """Exact inner-product top-``k`` search (``k`` is capped at the pool size).

    The embeddings are expected L2-normalised, so the inner product is the
    cosine; they are not renormalised here so that the scores are exactly the
    model's.
    """
    query_emb = np.ascontiguousarray(np.asarray(query_emb, dtype=np.float32))
    doc_emb = np.ascontiguousarray(np.asarray(doc_emb, dtype=np.float32))
    if query_emb.ndim != 2 or doc_emb.ndim != 2 or query_emb.shape[1] != doc_emb.shape[1]:
        raise OpticalError(
            f"query embeddings {query_emb.shape} and document embeddings {doc_emb.shape} must be 2-D with the same width"
        )
    qids = check_ids(query_ids, query_emb.shape[0], "query")
    dids = check_ids(doc_ids, doc_emb.shape[0], "document")
    if k < 1:
        raise OpticalError(f"k must be at least 1, got {k}")
    if not dids:
        raise OpticalError("the document pool is empty: nothing to search")
    index = faiss.IndexFlatIP(doc_emb.shape[1])
    index.add(doc_emb)
    scores, indices = index.search(query_emb, min(k, len(dids)))
    return {
        qid: {dids[j]: float(s) for s, j in zip(row_scores, row_indices) if j >= 0}
        for qid, row_scores, row_indices in zip(qids, scores, indices)
    }


def _check_trec_id(value: str, what: str) -> str:
    value = str(value)
    if not value or any(ch.isspace() for ch in value):
        raise OpticalError(f"{what} {value!r} is empty or contains whitespace: TREC files need single-token ids")
    return value


def write_trec_run(path: str | os.PathLike, run: Run, tag: str) -> None:
    """Write a run in TREC format, ``qid Q0 docid rank score tag``, best first per query.

    Scores are written at full float precision (``repr``) so that re-reading
    the file reproduces the ranking, ties included (trec_eval orders by score,
    then document id descending, which :func:`ranked_doc_ids` also does).
    """
    tag = _check_trec_id(tag, "run tag")
    lines = []
    for qid in sorted(run):
        _check_trec_id(qid, "query id")
        for rank, doc in enumerate(ranked_doc_ids(run[qid]), start=1):
            lines.append(f"{qid} Q0 {_check_trec_id(doc, 'document id')} {rank} {float(run[qid][doc])!r} {tag}\n")
    atomic_write_text(path, "".join(lines))


def write_trec_qrels(path: str | os.PathLike, qrels: Qrels) -> None:
    """Write qrels in TREC format, ``qid 0 docid relevance``."""
    lines = []
    for qid in sorted(qrels):
        _check_trec_id(qid, "query id")
        for doc in sorted(qrels[qid]):
            lines.append(f"{qid} 0 {_check_trec_id(doc, 'document id')} {int(qrels[qid][doc])}\n")
    atomic_write_text(path, "".join(lines))


def _read_columns(path: Path, columns: int):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OpticalError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OpticalError(f"{path} cannot be read ({exc}); rewrite it") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != columns:
            raise OpticalError(f"{path}:{number}: expected {columns} whitespace-separated columns, found {len(fields)}")
        yield number, fields


def read_trec_run(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a TREC run file (6 columns) into ``{qid: {docid: score}}``."""
    path = Path(path)
    run: dict[str, dict[str, float]] = {}
    for number, (qid, _, doc, _, score, _) in _read_columns(path, 6):
        try:
            run.setdefault(qid, {})[doc] = float(score)
        except ValueError:
            raise OpticalError(f"{path}:{number}: score {score!r} is not a number") from None
    return run


def read_trec_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Read a TREC qrels file (4 columns) into ``{qid: {docid: relevance}}``."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, (qid, _, doc, rel) in _read_columns(path, 4):
        try:
            qrels.setdefault(qid, {})[doc] = int(rel)
        except ValueError:
            raise OpticalError(f"{path}:{number}: relevance {rel!r} is not an integer") from None
    return qrels
