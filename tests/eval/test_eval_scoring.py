"""Dense search vs brute force, MaxSim vs a naive loop, reranking, and TREC files."""

from __future__ import annotations

import ir_measures
import numpy as np
import pytest
import torch

from optical.errors import OpticalError
from optical.eval import scoring
from optical.eval.metrics import MEASURES, score_run
from optical.eval.scoring import (
    dense_search,
    maxsim_rerank,
    maxsim_scores,
    maxsim_search,
    read_trec_qrels,
    read_trec_run,
    write_trec_qrels,
    write_trec_run,
)


def _normalised(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_dense_search_equals_brute_force_numpy():
    rng = np.random.default_rng(0)
    queries, docs = _normalised(rng, 7, 16), _normalised(rng, 40, 16)
    qids, dids = [f"q{i}" for i in range(7)], [f"d{i}" for i in range(40)]
    run = dense_search(queries, docs, qids, dids, k=5)
    scores = queries @ docs.T
    for i, qid in enumerate(qids):
        expected = [dids[j] for j in np.argsort(-scores[i])[:5]]
        ranked = sorted(run[qid], key=run[qid].get, reverse=True)
        assert ranked == expected
        for doc in expected:
            assert run[qid][doc] == pytest.approx(float(scores[i, dids.index(doc)]), abs=1e-5)


def test_dense_search_caps_k_and_checks_inputs():
    rng = np.random.default_rng(1)
    run = dense_search(_normalised(rng, 2, 4), _normalised(rng, 3, 4), ["a", "b"], ["x", "y", "z"], k=100)
    assert all(len(docs) == 3 for docs in run.values())
    with pytest.raises(OpticalError, match="same width"):
        dense_search(_normalised(rng, 2, 4), _normalised(rng, 3, 5), ["a", "b"], ["x", "y", "z"])
    with pytest.raises(OpticalError, match="2 query ids for 3"):
        dense_search(_normalised(rng, 3, 4), _normalised(rng, 3, 4), ["a", "b"], ["x", "y", "z"])
    with pytest.raises(OpticalError, match="not unique"):
        dense_search(_normalised(rng, 2, 4), _normalised(rng, 3, 4), ["a", "b"], ["x", "x", "z"])


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


@pytest.mark.parametrize("block_elements", [scoring.MAXSIM_BLOCK_ELEMENTS, 60, 1])
def test_maxsim_equals_naive_loop(monkeypatch, block_elements):
    # A small block budget forces several query and document chunks with different padding.
    monkeypatch.setattr(scoring, "MAXSIM_BLOCK_ELEMENTS", block_elements)
    generator = torch.Generator().manual_seed(0)
    queries = _token_sets(generator, [3, 1, 5, 2], 8)
    docs = _token_sets(generator, [4, 7, 1, 3, 6], 8)
    scores = maxsim_scores(queries, docs)
    assert scores.shape == (4, 5)
    for i, q in enumerate(queries):
        for j, d in enumerate(docs):
            assert float(scores[i, j]) == pytest.approx(_naive_maxsim(q, d), abs=1e-5)


def test_maxsim_identical_token_scores_one():
    token = torch.tensor([[3.0, 4.0]])
    scores = maxsim_scores([token], [torch.tensor([[0.0, 1.0], [6.0, 8.0]])])
    assert float(scores[0, 0]) == pytest.approx(1.0)


def test_maxsim_rejects_empty_token_matrices():
    with pytest.raises(OpticalError, match="document 1 has token matrix of shape"):
        maxsim_scores([torch.ones(2, 3)], [torch.ones(1, 3), torch.ones(0, 3)])


def test_rerank_equals_exact_maxsim_on_the_candidate_set():
    generator = torch.Generator().manual_seed(3)
    queries = _token_sets(generator, [3, 4, 2], 6)
    docs = _token_sets(generator, [5, 2, 4, 3, 6, 2, 3, 5], 6)
    qids, dids = ["qa", "qb", "qc"], [f"d{i}" for i in range(8)]

    def pooled(tokens):
        return torch.nn.functional.normalize(torch.stack([t.mean(0) for t in tokens]), dim=-1).numpy()

    candidates = dense_search(pooled(queries), pooled(docs), qids, dids, k=5)
    reranked = maxsim_rerank(queries, docs, qids, dids, candidates, k=3)
    exact = maxsim_scores(queries, docs)
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


def test_trec_files_round_trip_and_rescore_identically(tmp_path):
    rng = np.random.default_rng(5)
    qids, dids = [f"q{i}" for i in range(6)], [f"doc{i}" for i in range(30)]
    run = dense_search(_normalised(rng, 6, 8), _normalised(rng, 30, 8), qids, dids, k=10)
    qrels = {qid: {dids[int(j)]: 1 for j in rng.choice(30, size=2, replace=False)} for qid in qids}
    qrels["q_unanswered"] = {"doc0": 1}
    write_trec_run(tmp_path / "r.trec", run, tag="dense")
    write_trec_qrels(tmp_path / "r.qrels", qrels)
    first = (tmp_path / "r.trec").read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1" and first[5] == "dense"
    assert (tmp_path / "r.qrels").read_text().splitlines()[0].split()[1] == "0"
    assert read_trec_run(tmp_path / "r.trec") == run
    assert read_trec_qrels(tmp_path / "r.qrels") == qrels
    ours = score_run(qrels, run).aggregates
    theirs = ir_measures.calc_aggregate(
        list(MEASURES.values()),
        ir_measures.read_trec_qrels(str(tmp_path / "r.qrels")),
        ir_measures.read_trec_run(str(tmp_path / "r.trec")),
    )
    for name, measure in MEASURES.items():
        assert ours[name] == pytest.approx(theirs[measure], abs=1e-12)


def test_trec_errors_name_file_and_line(tmp_path):
    with pytest.raises(OpticalError, match="whitespace"):
        write_trec_run(tmp_path / "bad.trec", {"q 1": {"d": 1.0}}, tag="t")
    bad = tmp_path / "bad.qrels"
    bad.write_text("q1 0 d1 1\nq2 0 d2\n")
    with pytest.raises(OpticalError, match=r"bad.qrels:2: expected 4"):
        read_trec_qrels(bad)
    with pytest.raises(OpticalError, match="does not exist"):
        read_trec_run(tmp_path / "missing.trec")
