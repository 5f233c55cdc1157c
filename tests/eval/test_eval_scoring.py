"""Dense search vs brute force, and TREC files."""

from __future__ import annotations

import ir_measures
import numpy as np
import pytest

from optical.errors import OpticalError
from optical.eval.metrics import MEASURES, score_run
from optical.eval.scoring import (
    dense_search,
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
