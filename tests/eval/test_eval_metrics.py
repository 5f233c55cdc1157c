"""Measures against hand computation on a toy qrels/run, and the language-bias measures."""

from __future__ import annotations

import math

import ir_measures
import pytest

from optical.errors import OpticalError
from optical.eval.metrics import (
    DEFAULT_MEASURES,
    GOLD_RANK_EN,
    GOLD_RANK_GAP,
    GOLD_RANK_SAME,
    LANG_SHARE,
    MEASURES,
    aggregate_name,
    ranked_doc_ids,
    score_language_bias,
    score_run,
)

QRELS = {
    "q1": {"d1": 1, "d3": 1, "d9": 0},  # two relevant documents
    "q2": {"d2": 1},
    "q3": {"d5": 1},  # the run retrieves nothing for q3
    "q4": {"d1": 2, "d2": 1},  # graded relevance
}
RUN = {
    "q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7, "d4": 0.6},  # relevant at ranks 1 and 3
    "q2": {"d1": 0.9, "d3": 0.8, "d2": 0.5},  # relevant at rank 3
    "q4": {"d2": 0.9, "d1": 0.1},  # the grade-1 doc above the grade-2 doc
    "q_not_judged": {"d1": 1.0},
}


def _log2(x: float) -> float:
    return math.log(x, 2)


# Hand computation, query by query.
EXPECTED = {
    "RR@10": {"q1": 1.0, "q2": 1 / 3, "q3": 0.0, "q4": 1.0},
    "AP": {"q1": (1 / 1 + 2 / 3) / 2, "q2": 1 / 3, "q3": 0.0, "q4": 1.0},
    "nDCG@10": {
        "q1": (1 + 1 / _log2(4)) / (1 + 1 / _log2(3)),
        "q2": (1 / _log2(4)) / 1.0,
        "q3": 0.0,
        "q4": (1 + 2 / _log2(3)) / (2 + 1 / _log2(3)),
    },
    "R@1": {"q1": 0.5, "q2": 0.0, "q3": 0.0, "q4": 0.5},
    "R@5": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0},
    "R@10": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0},
    "R@100": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0},
}


def test_registry_names_are_ir_measures_names():
    assert set(DEFAULT_MEASURES) == {"RR@10", "nDCG@10", "R@1", "R@5", "R@10", "R@100", "AP"}
    for name, measure in MEASURES.items():
        assert str(measure) == name
    assert aggregate_name("AP") == "mAP" and aggregate_name("RR@10") == "MRR@10"


@pytest.mark.parametrize("measure", sorted(EXPECTED))
def test_per_query_values_match_hand_computation(measure):
    result = score_run(QRELS, RUN, [measure])
    assert set(result.per_query[measure]) == set(QRELS)
    for qid, expected in EXPECTED[measure].items():
        assert result.per_query[measure][qid] == pytest.approx(expected, abs=1e-9), qid
    assert result.aggregates[measure] == pytest.approx(sum(EXPECTED[measure].values()) / 4, abs=1e-9)


def test_unretrieved_queries_count_as_zero_and_agree_with_ir_measures():
    result = score_run(QRELS, RUN)
    for measure in DEFAULT_MEASURES:
        assert result.per_query[measure]["q3"] == 0.0
    direct = ir_measures.calc_aggregate(list(MEASURES.values()), QRELS, RUN)
    for name, measure in MEASURES.items():
        assert result.aggregates[name] == pytest.approx(direct[measure], abs=1e-12)


def test_empty_run_scores_every_query_zero():
    result = score_run(QRELS, {})
    assert result.aggregates == {name: 0.0 for name in DEFAULT_MEASURES}
    assert set(result.per_query["AP"]) == set(QRELS)


def test_unknown_measure_and_empty_qrels_are_user_errors():
    with pytest.raises(OpticalError, match="unknown measure 'P@3'"):
        score_run(QRELS, RUN, ["P@3"])
    with pytest.raises(OpticalError, match="qrels are empty"):
        score_run({}, RUN)


def test_ties_are_broken_like_trec_eval():
    # Equal scores: trec_eval ranks the larger document id first.
    assert ranked_doc_ids({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]
    tied = {"q": {"a": 1.0, "c": 1.0}}
    result = score_run({"q": {"a": 1}}, tied, ["RR@10", "AP", "R@1"])
    # Every measure sees the same order (c, a), whichever ir_measures provider computes it.
    assert result.aggregates == {"RR@10": 0.5, "AP": 0.5, "R@1": 0.0}
    assert ir_measures.calc_aggregate([MEASURES["AP"]], {"q": {"a": 1}}, tied)[MEASURES["AP"]] == 0.5


DOC_LANG = {"el1": "el", "el2": "el", "el3": "el", "en1": "en", "en2": "en", "en3": "en", "de1": "de", "x": "de"}
POOL_QRELS = {
    "q1": {"el1": 1, "en1": 1, "de1": 1},
    "q2": {"el3": 1, "en3": 1},
    "q3": {"en2": 1, "el2": 1},  # an English query
}
POOL_RUN = {
    "q1": {"el2": 0.9, "el1": 0.8, "de1": 0.7, "en1": 0.6, "en2": 0.5},
    "q2": {"en3": 0.9, "x": 0.8},  # the Greek gold is not retrieved
    "q3": {"en2": 0.9, "el2": 0.8, "en1": 0.7},
}
QUERY_LANG = {"q1": "el", "q2": "el", "q3": "en"}


def test_language_bias_on_toy_pool():
    result = score_language_bias(POOL_QRELS, POOL_RUN, DOC_LANG, QUERY_LANG)
    assert result.per_query[LANG_SHARE] == {"q1": 2 / 5, "q2": 0.0, "q3": 2 / 3}
    # English queries have no "other" gold to compare: left out of the gold ranks.
    assert result.per_query[GOLD_RANK_EN] == {"q1": 4.0, "q2": 1.0}
    # q2's Greek gold is unretrieved: censored at depth + 1 = 3.
    assert result.per_query[GOLD_RANK_SAME] == {"q1": 2.0, "q2": 3.0}
    assert result.per_query[GOLD_RANK_GAP] == {"q1": 2.0, "q2": -2.0}
    assert result.aggregates[GOLD_RANK_GAP] == 0.0
    assert result.aggregates[LANG_SHARE] == pytest.approx((0.4 + 0 + 2 / 3) / 3)


def test_language_share_respects_k_and_a_single_query_language():
    result = score_language_bias({"q1": POOL_QRELS["q1"]}, POOL_RUN, DOC_LANG, "el", k=2)
    assert result.per_query[LANG_SHARE] == {"q1": 1.0}


def test_language_bias_needs_every_language():
    with pytest.raises(OpticalError, match="document 'el2' has no language"):
        score_language_bias(POOL_QRELS, POOL_RUN, {"el1": "el"}, QUERY_LANG)
    with pytest.raises(OpticalError, match="query 'q3' has no language"):
        score_language_bias(POOL_QRELS, POOL_RUN, DOC_LANG, {"q1": "el", "q2": "el"})


def test_standard_and_language_bias_results_merge():
    merged = score_run(POOL_QRELS, POOL_RUN, ["RR@10"]).merged(score_language_bias(POOL_QRELS, POOL_RUN, DOC_LANG, QUERY_LANG))
    assert set(merged.per_query) == {"RR@10", LANG_SHARE, GOLD_RANK_EN, GOLD_RANK_SAME, GOLD_RANK_GAP}
    assert merged.aggregates["RR@10"] == pytest.approx((1 / 2 + 1 + 1) / 3)
