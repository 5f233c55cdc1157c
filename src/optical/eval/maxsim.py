"""Late-interaction retrieval: ColBERT's MaxSim, exact and fast, with a dense candidate stage for big pools.

One vector per token; ``score(q, d) = sum_i max_j cos(q_i, d_j)`` (Khattab & Zaharia, SIGIR 2020, eq. 3).

* :func:`maxsim_scores` is exact for every query/document pair. Documents are grouped by token count (rounded
  up to a multiple of 8, padded with copies of their own last token, which cannot change a maximum), so a block
  of documents is one ``[L*n, h]`` matrix; the queries are blocks of whole queries, each block's tokens one
  ``[t, h]`` matrix. Each pair of blocks is one matrix product ``[t, h] x [h, L*n]``, a max over each
  document's ``L`` columns (a reshape, since the block's documents share ``L``) and a sum of each query's rows
  (a product with the block's 0/1 token-to-query matrix). Nothing is padded to the longest query or document,
  nothing is masked, and no 4-D tensor is built. The products run in ``dtype``: bf16 where the evaluation's precision is bf16 (the
  device computes it natively: AMX/AVX512-BF16 CPUs, CUDA), fp32 otherwise; the max is taken on the
  products as computed and the sum in fp32.
* :func:`maxsim_reference` is the plain definition (a padded 4-D einsum with masks, as PyLate's
  ``colbert_scores`` computes it): the test oracle, nothing else uses it.
* :func:`maxsim_rerank` scores each query only against its own candidates (e.g. its dense top-k).
* :func:`tune_candidate_depth` is the candidate stage of a pool too big for exact MaxSim over every document
  (:data:`MAXSIM_EXACT_BELOW`): the dense (pooled-vector, FAISS) ranking proposes each query's first ``depth``
  documents and exact MaxSim reranks them. On a seeded sample of queries, exact MaxSim over every document
  gives the true top 10; the depth is doubled until the recall@10 of the reranked candidates against it
  reaches the target with 95% confidence, as the IVF breadth of a collection is (:mod:`optical.eval.recall`).

A token-level index (PLAID, Santhanam et al., CIKM 2022; PyLate's PLAID and Voyager indexes; fast-plaid) was
considered for the candidate stage and not used: PyLate 1.6 and fast-plaid pin torch 2.11, which this package
cannot take (it runs on torch 2.13), and for the pools here (about 10k sentences) the dense FAISS ranking that
the evaluation computes anyway proposes candidates at no extra cost, its recall against exact MaxSim measured
rather than assumed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from optical.errors import OpticalError
from optical.eval.metrics import Run
from optical.eval.recall import RECALL_K, query_recalls, recall_lower_bound
from optical.eval.scoring import check_ids, dense_search

#: Query tokens per block (whole queries; a longer query is a block of its own) and document tokens per block: one
#: similarity block ``[query tokens, document tokens]`` of 512 x 4096 is 4 MiB in bf16, near a core's L2 cache, and
#: a product big enough for AMX/BLAS to run near full speed. On the el CLIR inputs of benchmarks/bench_maxsim.py,
#: blocks from 256 x 4096 to 2048 x 2048 all ran within 20% of one another (one thread, bf16).
MAXSIM_QUERY_BLOCK_TOKENS = 512
MAXSIM_BLOCK_COLUMNS = 4096
#: Document lengths are rounded up to a multiple of this (at most 7 copied tokens per document), so that the
#: documents of a block are many, not the few that have one exact length.
MAXSIM_LENGTH_STEP = 8
#: Pools with at least this many documents get the candidate stage. Exact MaxSim costs ``query tokens x document
#: tokens`` products: the 978 Greek test questions against the 964 English sentences take 1.9 CPU seconds (one
#: thread, bf16), the 10,627 sentences of their LAReQA pool 25 s, and the candidate stage over that pool 11 s at a
#: recall@10 of 0.989 against exact MaxSim (benchmarks/bench_maxsim.py, BENCHMARKS.md).
MAXSIM_EXACT_BELOW = 5000
#: Dense candidates per query tried first by the candidate stage, doubled until the recall target is met.
CANDIDATE_DEPTH_START = 100
#: Queries on which the candidate stage's recall@10 against exact MaxSim is measured.
CANDIDATE_RECALL_SAMPLE = 200
CANDIDATE_RECALL_TARGET = 0.95


def check_tokens(tokens: Sequence[torch.Tensor], what: str) -> int:
    """The shared width of ``tokens`` (``[n_tokens >= 1, dim]`` each), or one clear error."""
    if not tokens:
        raise OpticalError(f"no {what} token matrices given")
    widths = {t.shape[-1] for t in tokens}
    for i, t in enumerate(tokens):
        if t.ndim != 2 or t.shape[0] == 0:
            raise OpticalError(f"{what} {i} has token matrix of shape {tuple(t.shape)}: need [tokens >= 1, dim]")
    if len(widths) != 1:
        raise OpticalError(f"{what} token widths differ ({sorted(widths)}): all must share one dimension")
    return widths.pop()


def _check_pair(query_tokens: Sequence[torch.Tensor], doc_tokens: Sequence[torch.Tensor]) -> None:
    if check_tokens(query_tokens, "query") != check_tokens(doc_tokens, "document"):
        raise OpticalError("query and document token vectors have different dimensions")


def _device(device: str | torch.device | None, tokens: Sequence[torch.Tensor]) -> torch.device:
    return torch.device(device) if device is not None else tokens[0].device


def _normalised(tokens: Sequence[torch.Tensor], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """All token vectors one after the other, ``[sum of lengths, h]``, L2-normalised in fp32, then cast to ``dtype``."""
    flat = torch.cat([t.to(device=device, dtype=torch.float32) for t in tokens])
    return F.normalize(flat, dim=-1).to(dtype)


@dataclass(frozen=True)
class QueryBlock:
    """Whole queries ``first .. first + count - 1`` whose tokens are ``tokens [t, h]``; ``owner [count, t]`` is 1
    where a token belongs to a query, so ``owner @ x`` sums the rows of ``x [t, n]`` per query."""

    first: int
    tokens: torch.Tensor
    owner: torch.Tensor


@dataclass(frozen=True)
class PackedQueries:
    """Queries in blocks of about :data:`MAXSIM_QUERY_BLOCK_TOKENS` tokens, each query whole in one block."""

    blocks: tuple[QueryBlock, ...]
    count: int

    @classmethod
    def pack(cls, tokens: Sequence[torch.Tensor], device: torch.device, dtype: torch.dtype) -> PackedQueries:
        blocks, start = [], 0
        while start < len(tokens):
            stop, size = start, 0
            while stop < len(tokens) and (stop == start or size + tokens[stop].shape[0] <= MAXSIM_QUERY_BLOCK_TOKENS):
                size += tokens[stop].shape[0]
                stop += 1
            lengths = torch.tensor([t.shape[0] for t in tokens[start:stop]], device=device)
            member = torch.arange(stop - start, device=device).repeat_interleave(lengths)
            owner = (member[None, :] == torch.arange(stop - start, device=device)[:, None]).float()
            blocks.append(QueryBlock(start, _normalised(tokens[start:stop], device, dtype), owner))
            start = stop
        return cls(tuple(blocks), len(tokens))


@dataclass(frozen=True)
class DocBlock:
    """Documents of one padded length ``L``: their positions ``[n]`` and their tokens token-major, ``[L * n, h]``
    (row ``j * n + i`` is token ``j`` of document ``i``), each document padded to ``L`` with copies of its last token,
    which leave its maxima unchanged."""

    positions: torch.Tensor
    length: int
    tokens: torch.Tensor


@dataclass(frozen=True)
class PackedDocs:
    """Documents sorted by length, in blocks of about :data:`MAXSIM_BLOCK_COLUMNS` tokens, lengths rounded up to a
    multiple of :data:`MAXSIM_LENGTH_STEP` (so a block is a real matrix product, not a handful of documents)."""

    blocks: tuple[DocBlock, ...]
    count: int

    @classmethod
    def pack(cls, tokens: Sequence[torch.Tensor], device: torch.device, dtype: torch.dtype) -> PackedDocs:
        by_length: dict[int, list[int]] = {}
        for position, t in enumerate(tokens):
            by_length.setdefault(-(-t.shape[0] // MAXSIM_LENGTH_STEP) * MAXSIM_LENGTH_STEP, []).append(position)
        blocks = []
        for length, positions in sorted(by_length.items()):
            per_block = max(1, MAXSIM_BLOCK_COLUMNS // length)
            for start in range(0, len(positions), per_block):
                chosen = positions[start : start + per_block]
                padded = [torch.cat([t, t[-1:].expand(length - t.shape[0], -1)]) for t in (tokens[p] for p in chosen)]
                stacked = _normalised(padded, device, dtype).view(len(chosen), length, -1)
                token_major = stacked.transpose(0, 1).reshape(length * len(chosen), -1)
                blocks.append(DocBlock(torch.tensor(chosen, device=device), length, token_major))
        return cls(tuple(blocks), len(tokens))


def _block_scores(queries: PackedQueries, docs: DocBlock) -> torch.Tensor:
    """MaxSim of every packed query with the documents of one block -> ``[queries, n]`` fp32."""
    n = len(docs.positions)
    out = torch.empty(queries.count, n, device=docs.tokens.device)
    for block in queries.blocks:
        sim = F.linear(block.tokens, docs.tokens)  # [t, L * n]
        best = sim.view(sim.shape[0], docs.length, n).amax(dim=1)  # best document token per query token
        out[block.first : block.first + block.owner.shape[0]] = block.owner @ best.float()
    return out


@torch.no_grad()
def maxsim_scores(
    query_tokens: Sequence[torch.Tensor],
    doc_tokens: Sequence[torch.Tensor],
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Exact ColBERT MaxSim for all pairs: ``[n_queries, n_docs]`` float32 on the CPU.

    Token vectors are L2-normalised here, so the dot product is the cosine; pass only the tokens that
    should interact (e.g. content tokens, without padding). Example: a one-token query equal to one
    token of a document scores 1.0 on it. ``dtype`` is the precision of the products (fp32, or bf16 /
    fp16 where the device computes them natively); in fp32 the scores equal :func:`maxsim_reference`
    up to float rounding.
    """
    _check_pair(query_tokens, doc_tokens)
    device = _device(device, query_tokens)
    queries = PackedQueries.pack(query_tokens, device, dtype)
    docs = PackedDocs.pack(doc_tokens, device, dtype)
    scores = torch.empty(queries.count, docs.count, device=device)
    for block in docs.blocks:
        scores[:, block.positions] = _block_scores(queries, block)
    return scores.cpu()


def _pad(tokens: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[L_i, d]`` tensors into ``[n, L_max, d]`` (normalised) plus a ``[n, L_max]`` real-token mask."""
    padded = torch.nn.utils.rnn.pad_sequence([F.normalize(t.float(), dim=-1) for t in tokens], batch_first=True)
    lengths = torch.tensor([t.shape[0] for t in tokens])
    return padded, torch.arange(padded.shape[1])[None, :] < lengths[:, None]


@torch.no_grad()
def maxsim_reference(query_tokens: Sequence[torch.Tensor], doc_tokens: Sequence[torch.Tensor]) -> torch.Tensor:
    """MaxSim by its definition, the test oracle of :func:`maxsim_scores`: every query and document padded to the
    longest, one ``[queries, docs, Lq, Ld]`` similarity tensor, padded document tokens masked out of the max and
    padded query tokens out of the sum. Memory grows with that tensor: for small inputs only."""
    _check_pair(query_tokens, doc_tokens)
    q, q_mask = _pad([t.cpu() for t in query_tokens])
    d, d_mask = _pad([t.cpu() for t in doc_tokens])
    sim = torch.einsum("qih,djh->qdij", q, d).masked_fill(~d_mask[None, :, None, :], float("-inf"))
    return sim.amax(dim=-1).masked_fill(~q_mask[:, None, :], 0.0).sum(dim=-1)


def top_k_run(
    scores: torch.Tensor | np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str], k: int = 100
) -> dict[str, dict[str, float]]:
    """The top-``k`` documents of each row of a ``[n_queries, n_docs]`` score matrix as a run."""
    scores = torch.as_tensor(scores)
    qids = check_ids(query_ids, scores.shape[0], "query")
    dids = check_ids(doc_ids, scores.shape[1], "document")
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
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float]]:
    """Exact late-interaction retrieval: MaxSim against every document, top-``k`` per query."""
    return top_k_run(maxsim_scores(query_tokens, doc_tokens, device, dtype), query_ids, doc_ids, k)


@dataclass(frozen=True)
class _FlatDocs:
    """Every document's normalised tokens one after the other, with each document's first token and length."""

    tokens: torch.Tensor  # [sum of lengths, h]
    starts: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def pack(cls, tokens: Sequence[torch.Tensor], device: torch.device, dtype: torch.dtype) -> _FlatDocs:
        lengths = torch.tensor([t.shape[0] for t in tokens], device=device)
        return cls(_normalised(tokens, device, dtype), torch.cumsum(lengths, 0) - lengths, lengths)

    def scores(self, query: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """MaxSim of one query ``[Lq, h]`` (normalised) with the documents at ``positions`` -> ``[len(positions)]`` fp32."""
        lengths = self.lengths[positions]
        owner = torch.arange(len(positions), device=query.device).repeat_interleave(lengths)
        first = torch.cumsum(lengths, 0) - lengths
        rows = self.starts[positions][owner] + torch.arange(len(owner), device=query.device) - first[owner]
        sim = query @ self.tokens[rows].T  # [Lq, candidate tokens]
        best = torch.full((query.shape[0], len(positions)), float("-inf"), dtype=sim.dtype, device=query.device)
        best.scatter_reduce_(1, owner.expand(query.shape[0], -1), sim, reduce="amax")
        return best.float().sum(dim=0)


@torch.no_grad()
def maxsim_rerank(
    query_tokens: Sequence[torch.Tensor],
    doc_tokens: Sequence[torch.Tensor],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    candidates: Run,
    k: int = 100,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float]]:
    """Rescore each query's candidate documents (e.g. the dense top-100) with MaxSim.

    Only the candidates are scored, so the cost grows with the candidate depth rather than the collection;
    on the candidate set the scores equal :func:`maxsim_scores`. Documents outside a query's candidates are
    never retrieved for it. Queries absent from ``candidates`` get an empty ranking.
    """
    _check_pair(query_tokens, doc_tokens)
    qids = check_ids(query_ids, len(query_tokens), "query")
    position = {doc: i for i, doc in enumerate(check_ids(doc_ids, len(doc_tokens), "document"))}
    device = _device(device, query_tokens)
    docs = _FlatDocs.pack(doc_tokens, device, dtype)
    run: dict[str, dict[str, float]] = {}
    for qid, q_tok in zip(qids, query_tokens):
        pool = list(candidates.get(qid, {}))
        unknown = [doc for doc in pool if doc not in position]
        if unknown:
            raise OpticalError(f"candidate {unknown[0]!r} of query {qid!r} is not among the documents given")
        if not pool:
            run[qid] = {}
            continue
        query = _normalised([q_tok], device, dtype)
        scores = docs.scores(query, torch.tensor([position[doc] for doc in pool], device=device)).cpu()
        run[qid] = top_k_run(scores[None, :], [qid], pool, k)[qid]
    return run


@dataclass(frozen=True)
class CandidateCheck:
    """How close dense candidates reranked by exact MaxSim came to exact MaxSim over every document."""

    documents: int
    sample: int  # queries the recall was measured (and the depth tuned) on
    depth: int  # dense candidates reranked per query
    recall_at_10: float  # mean over the sampled queries
    recall_at_10_low: float  # its one-sided 95% lower confidence bound, which the target is held against
    recall_target: float
    tried: list[tuple[int, float, float]]  # (depth, recall@10, lower bound), shallowest first
    tuned: bool = True  # the depth was widened for the target (False: a depth the user chose, only measured)

    @property
    def met(self) -> bool:
        return self.recall_at_10_low >= self.recall_target

    def describe(self) -> str:
        if self.tuned:
            verdict = "" if self.met else f", below the target {self.recall_target} even at depth {self.depth}"
            how = f"depth doubled until the bound reached {self.recall_target}{verdict}"
        else:
            how = f"target {self.recall_target}" + ("" if self.met else ", not reached: raise --depth")
        return (
            f"MaxSim candidate stage: exact MaxSim reranks the dense top {self.depth} of {self.documents} documents; "
            f"recall@10 against exact MaxSim over every document {self.recall_at_10:.4f} on {self.sample} sampled "
            f"queries (95% lower bound {self.recall_at_10_low:.4f}; {how})"
        )


def candidate_depths(documents: int, start: int = CANDIDATE_DEPTH_START) -> list[int]:
    """The depths tried, shallowest first: ``start`` doubled up to every document (where reranking is exact).

    >>> candidate_depths(1000), candidate_depths(50)
    ([100, 200, 400, 800, 1000], [50])
    """
    depths = []
    depth = min(start, documents)
    while depth < documents:
        depths.append(depth)
        depth *= 2
    return [*depths, documents]


def sample_rows(count: int, sample: int, seed: int = 0) -> list[int]:
    """The seeded sample of query rows (sorted) the candidate stage is checked on."""
    return sorted(random.Random(seed).sample(range(count), min(sample, count)))


def tune_candidate_depth(
    exact: torch.Tensor, dense_order: np.ndarray, target: float = CANDIDATE_RECALL_TARGET, start: int = CANDIDATE_DEPTH_START
) -> CandidateCheck:
    """The shallowest dense depth whose MaxSim rerank keeps the exact MaxSim top 10 with 95% confidence.

    ``exact`` holds the exact MaxSim scores ``[sampled queries, documents]`` of the sampled queries against
    every document; ``dense_order`` their documents by dense score, best first (``[sampled queries, >= depth]``
    positions). The rerank of the top ``depth`` needs no more MaxSim: its top 10 are the 10 best exact scores
    among those candidates.
    """
    documents = exact.shape[1]
    truth = exact.topk(min(RECALL_K, documents), dim=1).indices.numpy()
    tried: list[tuple[int, float, float]] = []
    for depth in candidate_depths(documents, start):
        pool = torch.from_numpy(np.ascontiguousarray(dense_order[:, :depth]))
        best = exact.gather(1, pool).topk(min(RECALL_K, depth), dim=1).indices
        recalls = query_recalls(truth, pool.gather(1, best).numpy())
        tried.append((depth, float(recalls.mean()), recall_lower_bound(recalls)))
        if tried[-1][2] >= target:
            break
    depth, recall, low = tried[-1]
    return CandidateCheck(documents, exact.shape[0], depth, recall, low, target, tried)


@torch.no_grad()
def late_interaction_search(
    query_tokens: Sequence[torch.Tensor],
    doc_tokens: Sequence[torch.Tensor],
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    exact_below: int | None = None,
) -> tuple[dict[str, dict[str, float]], CandidateCheck | None]:
    """MaxSim top-``k`` of every query: exact over every document below ``exact_below`` documents (default
    :data:`MAXSIM_EXACT_BELOW`; no check);
    from there on, exact MaxSim over each query's dense candidates (``query_emb``/``doc_emb``, the pooled
    vectors), at the depth :func:`tune_candidate_depth` finds on :data:`CANDIDATE_RECALL_SAMPLE` seeded queries,
    and that check."""
    _check_pair(query_tokens, doc_tokens)
    if len(doc_tokens) < (MAXSIM_EXACT_BELOW if exact_below is None else exact_below):
        return maxsim_search(query_tokens, doc_tokens, query_ids, doc_ids, k, device, dtype), None
    rows = sample_rows(len(query_tokens), CANDIDATE_RECALL_SAMPLE)
    exact = maxsim_scores([query_tokens[r] for r in rows], doc_tokens, device, dtype)
    dense = torch.from_numpy(np.asarray(query_emb, dtype=np.float32)[rows] @ np.asarray(doc_emb, dtype=np.float32).T)
    check = tune_candidate_depth(exact, dense.argsort(dim=1, descending=True, stable=True).numpy())
    candidates = dense_search(query_emb, doc_emb, query_ids, doc_ids, k=max(check.depth, k))
    return maxsim_rerank(query_tokens, doc_tokens, query_ids, doc_ids, candidates, k, device, dtype), check


@torch.no_grad()
def exact_top_k_streamed(
    query_tokens: Sequence[torch.Tensor],
    doc_blocks: Iterable[Sequence[torch.Tensor]],
    k: int = RECALL_K,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """Positions of each query's exact MaxSim top ``k`` over documents that arrive a block at a time
    (``[queries, min(k, documents)]``, best first): memory holds one block's tokens, whatever the collection."""
    best_scores = torch.empty(len(query_tokens), 0)
    best_positions = torch.empty(len(query_tokens), 0, dtype=torch.long)
    seen = 0
    for block in doc_blocks:
        scores = torch.cat([best_scores, maxsim_scores(query_tokens, block, device, dtype)], dim=1)
        positions = torch.cat([best_positions, torch.arange(seen, seen + len(block)).expand(len(query_tokens), -1)], dim=1)
        best_scores, chosen = scores.topk(min(k, scores.shape[1]), dim=1)
        best_positions = positions.gather(1, chosen)
        seen += len(block)
    return best_positions.numpy()
