"""Retrieval measures: a registry of names and the functions that score a run.

The standard measures come from ``ir_measures`` (MacAvaney, Macdonald & Ounis,
ECIR 2022), which computes them with ``pytrec_eval``/trec_eval, so our numbers
are the numbers trec_eval would print for the same qrels and run:

* ``RR@10``   reciprocal rank of the first relevant document in the top 10
  (MRR@10 when averaged);
* ``nDCG@10`` normalised discounted cumulative gain, gain = relevance label,
  discount ``1/log2(rank + 1)`` (Järvelin & Kekäläinen, TOIS 2002);
* ``R@k``     recall: share of the relevant documents found in the top k;
* ``AP``      average precision over the whole ranking (mAP when averaged,
  the LAReQA measure for XQuAD-R, Roy et al. EMNLP 2020).

Every query of the qrels is scored: a query the run does not answer (no
retrieved documents) counts as 0, so that a system cannot raise its mean by
returning nothing for hard queries. Aggregates are the plain means of the
per-query values over the qrels queries.

The language-bias measures for the multilingual pool (every candidate of every
language, LAReQA's setting) are not in ir_measures and are written here:

* ``LangShare@10``: share of the top-10 results written in the query's language
  (a strongly "language-biased" model fills its top ranks with same-language
  candidates, Roy et al. 2020);
* ``GoldRank.en`` / ``GoldRank.same``: the rank of the English gold and of the
  same-language gold of a query, and ``GoldRankGap = GoldRank.en -
  GoldRank.same`` (positive: the model puts the same-language answer above the
  English one).

Ties in score are broken the way trec_eval breaks them (document id in
decreasing string order) for every measure, so scores computed here agree with
trec_eval on the same files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ir_measures
from ir_measures import AP, RR, R, nDCG

from optical.errors import OpticalError

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

#: Measure name -> ir_measures measure. The names are ir_measures' own
#: spelling (``str(measure)``), so TREC tools and this project agree.
MEASURES: dict[str, ir_measures.Measure] = {
    "RR@10": RR @ 10,
    "nDCG@10": nDCG @ 10,
    "R@1": R @ 1,
    "R@5": R @ 5,
    "R@10": R @ 10,
    "R@100": R @ 100,
    "AP": AP,
}

DEFAULT_MEASURES: tuple[str, ...] = tuple(MEASURES)

#: How a measure is called once averaged over queries (for tables).
AGGREGATE_NAMES: dict[str, str] = {"RR@10": "MRR@10", "AP": "mAP"}

LANG_SHARE = "LangShare@10"
GOLD_RANK_EN = "GoldRank.en"
GOLD_RANK_SAME = "GoldRank.same"
GOLD_RANK_GAP = "GoldRankGap"
LANGUAGE_BIAS_MEASURES: tuple[str, ...] = (LANG_SHARE, GOLD_RANK_EN, GOLD_RANK_SAME, GOLD_RANK_GAP)


def aggregate_name(measure: str) -> str:
    """The display name of a measure averaged over queries (``AP`` -> ``mAP``)."""
    return AGGREGATE_NAMES.get(measure, measure)


def per_query_name(name: str) -> str:
    """The per-query measure a display name stands for (``mAP`` -> ``AP``, ``MRR@10`` -> ``RR@10``), so that a
    user may name a measure as the tables print it; any other name is returned unchanged."""
    return {shown: measure for measure, shown in AGGREGATE_NAMES.items()}.get(name, name)


def get_measure(name: str) -> ir_measures.Measure:
    """The ir_measures measure registered under ``name``."""
    try:
        return MEASURES[name]
    except KeyError:
        raise OpticalError(f"unknown measure {name!r}: choose from {', '.join(MEASURES)}") from None


@dataclass
class MetricResult:
    """Per-query values and their means.

    Attributes:
        per_query: ``{measure: {qid: value}}``; every qrels query is present.
        aggregates: ``{measure: mean over per_query[measure]}``.
    """

    per_query: dict[str, dict[str, float]]
    aggregates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_per_query(cls, per_query: dict[str, dict[str, float]]) -> MetricResult:
        aggregates = {m: _mean(values.values()) for m, values in per_query.items()}
        return cls(per_query=per_query, aggregates=aggregates)

    def merged(self, other: MetricResult) -> MetricResult:
        """Both results' measures in one (a measure in both: ``other`` wins)."""
        return MetricResult(
            per_query={**self.per_query, **other.per_query},
            aggregates={**self.aggregates, **other.aggregates},
        )


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def _check_qrels(qrels: Qrels) -> None:
    if not qrels:
        raise OpticalError("qrels are empty: there is nothing to score (check the task's gold labels)")


def score_run(qrels: Qrels, run: Run, measures: Sequence[str] = DEFAULT_MEASURES) -> MetricResult:
    """Score ``run`` against ``qrels`` with the named measures.

    Queries of the run that are not in the qrels are ignored (trec_eval does
    the same); queries of the qrels missing from the run score 0.

    Example::

        >>> r = score_run({"q": {"d1": 1}}, {"q": {"d0": 2.0, "d1": 1.0}}, ["RR@10"])
        >>> r.aggregates["RR@10"]
        0.5
    """
    _check_qrels(qrels)
    by_name = {name: get_measure(name) for name in measures}
    name_of = {str(m): name for name, m in by_name.items()}
    per_query: dict[str, dict[str, float]] = {name: dict.fromkeys(qrels, 0.0) for name in by_name}
    # pytrec_eval wants plain dicts; queries absent from the qrels are dropped up front.
    plain_qrels = {str(q): {str(d): int(rel) for d, rel in docs.items()} for q, docs in qrels.items()}
    # ir_measures hands RR@10 to its msmarco provider and the rest to trec_eval, which break score
    # ties differently; replacing scores by their trec_eval rank order gives every measure one ranking.
    plain_run = {
        str(q): {str(d): float(len(docs) - i) for i, d in enumerate(ranked_doc_ids(docs))}
        for q, docs in run.items()
        if q in qrels and docs
    }
    if plain_run:
        for metric in ir_measures.iter_calc(list(by_name.values()), plain_qrels, plain_run):
            per_query[name_of[str(metric.measure)]][metric.query_id] = float(metric.value)
    return MetricResult.from_per_query(per_query)


def ranked_doc_ids(doc_scores: Mapping[str, float]) -> list[str]:
    """Document ids best first: score descending, ties by id descending (trec_eval's order)."""
    return [doc for doc, _ in sorted(doc_scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def _query_language(query_lang: str | Mapping[str, str], qid: str) -> str:
    if isinstance(query_lang, str):
        return query_lang
    try:
        return query_lang[qid]
    except KeyError:
        raise OpticalError(f"query {qid!r} has no language in the query-language map") from None


def _doc_language(doc_lang: Mapping[str, str], doc: str) -> str:
    try:
        return doc_lang[doc]
    except KeyError:
        raise OpticalError(f"document {doc!r} has no language in the document-language map") from None


def language_share_at_k(
    run: Run, doc_lang: Mapping[str, str], query_lang: str | Mapping[str, str], qids: Sequence[str], k: int = 10
) -> dict[str, float]:
    """Per query, the share of the top-``k`` results in the query's language.

    The share is over the results actually returned (at most ``k``); a query
    with no results gets 0.
    """
    shares: dict[str, float] = {}
    for qid in qids:
        top = ranked_doc_ids(run.get(qid, {}))[:k]
        lang = _query_language(query_lang, qid)
        same = sum(1 for doc in top if _doc_language(doc_lang, doc) == lang)
        shares[qid] = same / len(top) if top else 0.0
    return shares


def score_language_bias(
    qrels: Qrels,
    run: Run,
    doc_lang: Mapping[str, str],
    query_lang: str | Mapping[str, str],
    k: int = 10,
    pivot: str = "en",
) -> MetricResult:
    """Language-bias measures of a run over a multilingual pool.

    ``LangShare@10`` is computed for every qrels query. The gold ranks are
    computed for the queries whose language is not ``pivot`` and which have a
    relevant document in ``pivot`` and one in their own language (with several
    golds of a language, the best-ranked one counts). A gold the run did not
    retrieve gets rank ``depth + 1`` (``depth`` = number of documents retrieved
    for that query): a lower bound, the best the gold could have been, so
    censoring never exaggerates a gap.

    Example: a Greek query whose Greek gold is at rank 1 and English gold at
    rank 4 has ``GoldRankGap`` 3.
    """
    _check_qrels(qrels)
    if k < 1:
        raise OpticalError(f"k must be at least 1 for the language share, got {k}")
    per_query: dict[str, dict[str, float]] = {LANG_SHARE: language_share_at_k(run, doc_lang, query_lang, list(qrels), k)}
    rank_en: dict[str, float] = {}
    rank_same: dict[str, float] = {}
    for qid, judged in qrels.items():
        lang = _query_language(query_lang, qid)
        if lang == pivot:
            continue
        ranking = ranked_doc_ids(run.get(qid, {}))
        position = {doc: i + 1 for i, doc in enumerate(ranking)}
        censored = len(ranking) + 1
        best: dict[str, int] = {}
        for doc, rel in judged.items():
            if rel <= 0:
                continue
            doc_language = _doc_language(doc_lang, doc)
            if doc_language in (pivot, lang):
                best[doc_language] = min(best.get(doc_language, censored), position.get(doc, censored))
        if pivot in best and lang in best:
            rank_en[qid] = float(best[pivot])
            rank_same[qid] = float(best[lang])
    if rank_en:
        per_query[GOLD_RANK_EN] = rank_en
        per_query[GOLD_RANK_SAME] = rank_same
        per_query[GOLD_RANK_GAP] = {qid: rank_en[qid] - rank_same[qid] for qid in rank_en}
    return MetricResult.from_per_query(per_query)
