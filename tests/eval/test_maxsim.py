"""Fast exact MaxSim against its reference and a naive loop, reranking, and the dense candidate stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optical.errors import OpticalError
from optical.eval import maxsim
from optical.eval.maxsim import (
    candidate_depths,
    maxsim_reference,
    maxsim_rerank,
    maxsim_scores,
    maxsim_search,
    tune_candidate_depth,
)
from optical.eval.scoring import dense_search


def _token_sets(generator: torch.Generator, lengths: list[int], d: int) -> list[torch.Tensor]:
    return [torch.randn(n, d, generator=generator) for n in lengths]


def _naive_maxsim(query: torch.Tensor, doc: torch.Tensor) -> float:
    total = 0.0
    for q_vec in query:
        best = -float("inf")
        for d_vec in doc:
            cosine = float(q_vec @ d_vec / (q_vec.norm() * d_vec.norm()))
            best = max(best, cosine)
        total += best
    return total


def test_reference_equals_naive_loop():
    generator = torch.Generator().manual_seed(0)
    queries = _token_sets(generator, [3, 1, 5, 2], 8)
    docs = _token_sets(generator, [4, 7, 1, 3, 6], 8)
    scores = maxsim_reference(queries, docs)
    assert scores.shape == (4, 5)
    for i, q in enumerate(queries):
        for j, d in enumerate(docs):
            assert float(scores[i, j]) == pytest.approx(_naive_maxsim(q, d), abs=1e-5)


def _realistic(seed: int, queries: int, docs: int, width: int = 32) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Token sets of varied lengths whose vectors share a common direction, as a real encoder's do (cosines
    mostly positive, some near-ties)."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(width, generator=generator)
    lengths = torch.randint(1, 40, (queries + docs,), generator=generator).tolist()
    sets = [torch.randn(n, width, generator=generator) + common for n in lengths]
    return sets[:queries], sets[queries:]


@pytest.mark.parametrize(
    ("query_block_tokens", "block_columns"), [(maxsim.MAXSIM_QUERY_BLOCK_TOKENS, maxsim.MAXSIM_BLOCK_COLUMNS), (7, 5), (1, 1)]
)
def test_fast_maxsim_equals_the_reference(monkeypatch, query_block_tokens, block_columns):
    # Small blocks put each query in a block of its own (longer than the block) and split length groups.
    monkeypatch.setattr(maxsim, "MAXSIM_QUERY_BLOCK_TOKENS", query_block_tokens)
    monkeypatch.setattr(maxsim, "MAXSIM_BLOCK_COLUMNS", block_columns)
    queries, docs = _realistic(1, 23, 61)
    fast, reference = maxsim_scores(queries, docs), maxsim_reference(queries, docs)
    assert fast.dtype == torch.float32 and fast.shape == (23, 61)
    assert torch.allclose(fast, reference, atol=1e-4, rtol=0)
    _assert_same_rankings(fast, reference)


def _assert_same_rankings(scores: torch.Tensor, reference: torch.Tensor, tie: float = 1e-4) -> None:
    """Every row ranks the documents as the reference does, except where the reference scores tie."""
    for row, ref_row in zip(scores, reference):
        ranked = row.argsort(descending=True, stable=True)
        ref_sorted = ref_row[ranked]
        # Going down our ranking, the reference scores never rise by more than a tie.
        assert bool((ref_sorted[1:] <= ref_sorted[:-1] + tie).all())


def test_bf16_maxsim_is_close_to_the_reference():
    # bf16 products keep about 3 significant digits: each of a query's maxima is off by at most ~0.004.
    queries, docs = _realistic(2, 9, 30)
    reference = maxsim_reference(queries, docs)
    lengths = torch.tensor([float(q.shape[0]) for q in queries])[:, None]
    error = (maxsim_scores(queries, docs, dtype=torch.bfloat16) - reference).abs()
    assert bool((error <= 0.008 * lengths).all())
    assert float(error.max()) > 0  # it did compute in bf16


def test_maxsim_identical_token_scores_one():
    token = torch.tensor([[3.0, 4.0]])
    scores = maxsim_scores([token], [torch.tensor([[0.0, 1.0], [6.0, 8.0]])])
    assert float(scores[0, 0]) == pytest.approx(1.0)


def test_maxsim_rejects_empty_and_mismatched_token_matrices():
    with pytest.raises(OpticalError, match="document 1 has token matrix of shape"):
        maxsim_scores([torch.ones(2, 3)], [torch.ones(1, 3), torch.ones(0, 3)])
    with pytest.raises(OpticalError, match="different dimensions"):
        maxsim_scores([torch.ones(2, 3)], [torch.ones(1, 4)])
    with pytest.raises(OpticalError, match="no query token matrices"):
        maxsim_reference([], [torch.ones(1, 4)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_maxsim_equals_the_cpu_reference(dtype):
    queries, docs = _realistic(3, 40, 120)
    reference = maxsim_reference(queries, docs)
    scores = maxsim_scores(queries, docs, device="cuda", dtype=dtype)
    assert scores.device.type == "cpu"
    if dtype is torch.float32:
        assert torch.allclose(scores, reference, atol=1e-4, rtol=0)
    else:
        lengths = torch.tensor([float(q.shape[0]) for q in queries])[:, None]
        assert bool(((scores - reference).abs() <= 0.008 * lengths).all())


def _pooled(tokens: list[torch.Tensor]) -> np.ndarray:
    return torch.nn.functional.normalize(torch.stack([t.mean(0) for t in tokens]), dim=-1).numpy()


def test_rerank_equals_exact_maxsim_on_the_candidate_set():
    queries, docs = _realistic(4, 3, 8, width=6)
    qids, dids = ["qa", "qb", "qc"], [f"d{i}" for i in range(8)]
    candidates = dense_search(_pooled(queries), _pooled(docs), qids, dids, k=5)
    reranked = maxsim_rerank(queries, docs, qids, dids, candidates, k=3)
    exact = maxsim_reference(queries, docs)
    for i, qid in enumerate(qids):
        pool = {doc: float(exact[i, dids.index(doc)]) for doc in candidates[qid]}
        best = sorted(pool, key=pool.get, reverse=True)[:3]
        assert sorted(reranked[qid], key=reranked[qid].get, reverse=True) == best
        for doc in best:
            assert reranked[qid][doc] == pytest.approx(pool[doc], abs=1e-5)
    # With every document as a candidate, reranking is exact search.
    everything = {qid: dict.fromkeys(dids, 0.0) for qid in qids}
    full = maxsim_rerank(queries, docs, qids, dids, everything, k=8)
    searched = maxsim_search(queries, docs, qids, dids, k=8)
    for qid in qids:
        assert full[qid] == pytest.approx(searched[qid], abs=1e-5)


def test_rerank_refuses_unknown_candidates():
    tokens = [torch.ones(1, 2)]
    with pytest.raises(OpticalError, match="candidate 'nope' of query 'q'"):
        maxsim_rerank(tokens, tokens, ["q"], ["d"], {"q": {"nope": 1.0}})


def test_candidate_depths_double_up_to_every_document():
    assert candidate_depths(1000) == [100, 200, 400, 800, 1000]
    assert candidate_depths(100) == [100]
    assert candidate_depths(30, start=8) == [8, 16, 30]


def test_candidate_depth_is_widened_until_the_exact_top_10_is_kept():
    queries, docs = _realistic(5, 60, 400)
    exact = maxsim_reference(queries, docs)
    dense = torch.from_numpy(_pooled(queries) @ _pooled(docs).T)
    order = dense.argsort(dim=1, descending=True).numpy()
    check = tune_candidate_depth(exact, order, target=0.95, start=10)
    assert check.met and check.depth > 10  # the dense top 10 alone misses some of the MaxSim top 10
    assert [depth for depth, _, _ in check.tried] == candidate_depths(400, 10)[: len(check.tried)]
    assert check.recall_at_10_low <= check.recall_at_10 <= 1.0
    # The recall it reports is that of the rerank it describes.
    rerank = exact.gather(1, torch.from_numpy(order[:, : check.depth])).topk(10, dim=1).indices
    found = np.take_along_axis(order[:, : check.depth], rerank.numpy(), axis=1)
    truth = exact.topk(10, dim=1).indices.numpy()
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), found.tolist())])
    assert check.recall_at_10 == pytest.approx(recall)
    # Every document as a candidate is exact: recall 1.
    assert tune_candidate_depth(exact, order, target=1.0, start=400).recall_at_10 == 1.0
