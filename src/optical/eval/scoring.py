"""Retrieval from embeddings, and TREC run/qrels files.

Two scorers:

* **Dense** (bi-encoder): one L2-normalised vector per text; the score is the
  inner product, which equals the cosine. :func:`dense_search` is exact
  (FAISS ``IndexFlatIP``, brute force) — XQuAD pools are small enough that an
  approximate index would only add error.
* **Late interaction** (ColBERT, Khattab & Zaharia, SIGIR 2020): one vector per
  token; ``score(q, d) = sum_i max_j cos(q_i, d_j)`` (MaxSim).
  :func:`maxsim_scores` computes it exactly for every query/document pair,
  vectorised over padded chunks with masks; :func:`maxsim_rerank` rescores
  only a candidate set (e.g. the dense top-100), the path for collections too
  large for the exact all-pairs product.

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
import torch
import torch.nn.functional as F

from optical.errors import OpticalError
from optical.eval.metrics import Qrels, Run, ranked_doc_ids
from optical.storage import atomic_write_text

#: Upper bound on the elements of one similarity block ``[queries, docs, Lq, Ld]``
#: (2**25 float32 = 128 MiB), which sets the chunk sizes of the exact MaxSim.
MAXSIM_BLOCK_ELEMENTS = 1 << 25


def _check_ids(ids: Sequence[str], count: int, what: str) -> list[str]:
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
    qids = _check_ids(query_ids, query_emb.shape[0], "query")
    dids = _check_ids(doc_ids, doc_emb.shape[0], "document")
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


def _pad(tokens: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[L_i, d]`` tensors into ``[n, L_max, d]`` (normalised) plus a ``[n, L_max]`` real-token mask."""
    longest = max(t.shape[0] for t in tokens)
    width = tokens[0].shape[1]
    padded = torch.zeros(len(tokens), longest, width, device=device)
    mask = torch.zeros(len(tokens), longest, dtype=torch.bool, device=device)
    for i, t in enumerate(tokens):
        padded[i, : t.shape[0]] = F.normalize(t.to(device=device, dtype=torch.float32), dim=-1)
        mask[i, : t.shape[0]] = True
    return padded, mask


def _check_tokens(tokens: Sequence[torch.Tensor], what: str) -> int:
    if not tokens:
        raise OpticalError(f"no {what} token matrices given")
    widths = {t.shape[-1] for t in tokens}
    for i, t in enumerate(tokens):
        if t.ndim != 2 or t.shape[0] == 0:
            raise OpticalError(f"{what} {i} has token matrix of shape {tuple(t.shape)}: need [tokens >= 1, dim]")
    if len(widths) != 1:
        raise OpticalError(f"{what} token widths differ ({sorted(widths)}): all must share one dimension")
    return widths.pop()


def _maxsim_block(q: torch.Tensor, q_mask: torch.Tensor, d: torch.Tensor, d_mask: torch.Tensor) -> torch.Tensor:
    """MaxSim of every query in ``q [nq, Lq, h]`` with every doc in ``d [nd, Ld, h]`` -> ``[nq, nd]``."""
    sim = torch.einsum("qih,djh->qdij", q, d)
    sim = sim.masked_fill(~d_mask[None, :, None, :], float("-inf"))
    best = sim.max(dim=-1).values  # [nq, nd, Lq]: best doc token for each query token
    best = best.masked_fill(~q_mask[:, None, :], 0.0)  # padded query tokens add nothing
    return best.sum(dim=-1)


@torch.no_grad()
def maxsim_scores(
    query_tokens: Sequence[torch.Tensor],
    doc_tokens: Sequence[torch.Tensor],
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Exact ColBERT MaxSim for all pairs: ``[n_queries, n_docs]`` float32 on the CPU.

    ``score(q, d) = sum_{i in q} max_{j in d} cos(q_i, d_j)`` (Khattab &
    Zaharia, SIGIR 2020, eq. 3). Token vectors are L2-normalised here, so the
    dot product is the cosine; pass only the tokens that should interact
    (e.g. content tokens, without padding). Example: a one-token query equal
    to one token of a document scores 1.0 on it.

    Queries and documents are processed in chunks sized so that one
    similarity block stays under :data:`MAXSIM_BLOCK_ELEMENTS`.
    """
    width = _check_tokens(query_tokens, "query")
    if _check_tokens(doc_tokens, "document") != width:
        raise OpticalError("query and document token vectors have different dimensions")
    device = torch.device(device) if device is not None else query_tokens[0].device
    q_len = max(t.shape[0] for t in query_tokens)
    d_len = max(t.shape[0] for t in doc_tokens)
    pairs_per_block = max(1, MAXSIM_BLOCK_ELEMENTS // (q_len * d_len))
    doc_chunk = min(len(doc_tokens), max(1, pairs_per_block // min(len(query_tokens), 64)))
    query_chunk = max(1, min(len(query_tokens), pairs_per_block // doc_chunk))
    query_starts = range(0, len(query_tokens), query_chunk)
    padded_queries = [_pad(query_tokens[start : start + query_chunk], device) for start in query_starts]
    scores = torch.empty(len(query_tokens), len(doc_tokens))
    for d_start in range(0, len(doc_tokens), doc_chunk):
        d, d_mask = _pad(doc_tokens[d_start : d_start + doc_chunk], device)
        for q_start, (q, q_mask) in zip(query_starts, padded_queries):
            block = _maxsim_block(q, q_mask, d, d_mask)
            scores[q_start : q_start + query_chunk, d_start : d_start + doc_chunk] = block.cpu()
    return scores


def top_k_run(
    scores: torch.Tensor | np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str], k: int = 100
) -> dict[str, dict[str, float]]:
    """The top-``k`` documents of each row of a ``[n_queries, n_docs]`` score matrix as a run."""
    scores = torch.as_tensor(scores)
    qids = _check_ids(query_ids, scores.shape[0], "query")
    dids = _check_ids(doc_ids, scores.shape[1], "document")
    if k < 1:
        raise OpticalError(f"k must be at least 1, got {k}")
    values, indices = scores.topk(min(k, len(dids)), dim=1)
    return {
        qid: {dids[j]: float(s) for s, j in zip(row_values.tolist(), row_indices.tolist())}
        for qid, row_values, row_indices in zip(qids, values, indices)
    }


def maxsim_search(
    query_tokens: Sequence[torch.Tensor],
    doc_tokens: Sequence[torch.Tensor],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    device: str | torch.device | None = None,
) -> dict[str, dict[str, float]]:
    """Exact late-interaction retrieval: MaxSim against every document, top-``k`` per query."""
    return top_k_run(maxsim_scores(query_tokens, doc_tokens, device), query_ids, doc_ids, k)


@torch.no_grad()
def maxsim_rerank(
    query_tokens: Sequence[torch.Tensor],
    doc_tokens: Sequence[torch.Tensor],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    candidates: Run,
    k: int = 100,
    device: str | torch.device | None = None,
) -> dict[str, dict[str, float]]:
    """Rescore each query's candidate documents (e.g. the dense top-100) with MaxSim.

    Only the candidates are scored, so the cost grows with the candidate depth
    rather than the collection; on the candidate set the scores equal
    :func:`maxsim_scores`. Documents outside a query's candidates are never
    retrieved for it. Queries absent from ``candidates`` get an empty ranking.
    """
    width = _check_tokens(query_tokens, "query")
    if _check_tokens(doc_tokens, "document") != width:
        raise OpticalError("query and document token vectors have different dimensions")
    qids = _check_ids(query_ids, len(query_tokens), "query")
    position = {doc: i for i, doc in enumerate(_check_ids(doc_ids, len(doc_tokens), "document"))}
    device = torch.device(device) if device is not None else query_tokens[0].device
    run: dict[str, dict[str, float]] = {}
    for qid, q_tok in zip(qids, query_tokens):
        pool = list(candidates.get(qid, {}))
        if not pool:
            run[qid] = {}
            continue
        unknown = [doc for doc in pool if doc not in position]
        if unknown:
            raise OpticalError(f"candidate {unknown[0]!r} of query {qid!r} is not among the documents given")
        q, q_mask = _pad([q_tok], device)
        d, d_mask = _pad([doc_tokens[position[doc]] for doc in pool], device)
        scores = _maxsim_block(q, q_mask, d, d_mask)[0].cpu()
        run[qid] = top_k_run(scores[None, :], [qid], pool, k)[qid]
    return run


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
