"""Evaluate a student on the user's own collection (BEIR or TREC layout, :mod:`optical.data.beir`).

As in the built-in tasks, the student encodes the queries (in ``query_lang``) and
the frozen teacher encodes the English documents; teacher document embeddings are
cached on disk keyed by the teacher's identity and the corpus content (the cache
of :mod:`optical.eval.evaluate`, shared with it).

Dense search is exact (FAISS ``IndexFlatIP``, the same code as the built-in tasks)
up to ``exact_below`` documents. Above that an approximate HNSW index
(Malkov & Yashunin, TPAMI 2020; FAISS ``IndexHNSWFlat``, inner product) is used,
and its recall@10 against exact search is measured on a seeded sample of queries
and recorded in the run (``config.collection.ann``). ``scoring=["dense", "maxsim"]``
adds a MaxSim (ColBERT) rerank of each query's dense candidates.

The run dir is the same format as :func:`optical.eval.evaluate.evaluate` writes
(per-query values, TREC run, qrels), with task keys ``<task_name>.<query_lang>``
(``collection.el``; ``collection_maxsim.el``), so ``optical compare`` reads it
unchanged. The split fingerprint is the collection's, so runs are only compared
on the same collection.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

import faiss
import numpy as np

from optical.data.beir import Collection, read_collection
from optical.data.languages import canonical_lang
from optical.errors import OpticalError
from optical.eval.evaluate import (
    _checked_teacher,
    _Clock,
    _DocCache,
    _finished_evaluation,
    _load_encoders,
    _save_run,
    _student_path,
)
from optical.eval.metrics import DEFAULT_MEASURES, score_run
from optical.eval.results import EvalRun, TaskResult, check_task_key
from optical.eval.scoring import dense_search, maxsim_rerank

SCORINGS = ("dense", "maxsim")
#: Collections with at least this many documents are searched with an approximate (HNSW) index.
EXACT_BELOW = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
RECALL_K = 10


@dataclass
class CollectionConfig:
    """What to evaluate on which collection."""

    collection: str  # a BEIR or TREC directory
    query_lang: str
    student: str  # a `optical distill` output dir, or "zero-shot"
    out_dir: str
    teacher: str = "multilingual-e5-small"
    split: str = "test"  # BEIR: qrels/<split>.tsv
    scoring: list[str] = field(default_factory=lambda: ["dense"])
    strict: bool = False  # refuse qrels naming unknown ids (default: drop and count them)
    task_name: str = "collection"
    system: str | None = None
    depth: int = 100  # documents retrieved per query (and MaxSim candidates)
    exact_below: int = EXACT_BELOW
    recall_sample: int = 200  # queries on which the approximate index's recall@10 is measured
    hnsw_ef_search: int = 256
    batch_size: int = 64
    query_max_length: int = 128
    passage_max_length: int = 512
    device: str = "auto"

    def validate(self) -> None:
        self.query_lang = canonical_lang(self.query_lang)
        check_task_key(f"{self.task_name}.{self.query_lang}")
        for scoring in self.scoring:
            if scoring not in SCORINGS:
                raise OpticalError(f"unknown scoring {scoring!r}; choose from {', '.join(SCORINGS)}")
        if "dense" not in self.scoring:
            raise OpticalError("collection scoring needs dense (MaxSim reranks the dense candidates): use dense or dense,maxsim")
        for name in ("depth", "exact_below", "recall_sample", "hnsw_ef_search", "batch_size"):
            if getattr(self, name) < 1:
                raise OpticalError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class AnnCheck:
    """How close the approximate index came to exact search."""

    index: str
    documents: int
    sample: int
    recall_at_10: float


def hnsw_search(
    query_emb: np.ndarray, doc_emb: np.ndarray, query_ids: list[str], doc_ids: list[str], k: int, ef_search: int, seed: int = 0
) -> tuple[dict[str, dict[str, float]], faiss.Index]:
    """Approximate inner-product top-``k`` with an HNSW graph; returns the run and the index."""
    query_emb = np.ascontiguousarray(query_emb, dtype=np.float32)
    doc_emb = np.ascontiguousarray(doc_emb, dtype=np.float32)
    index = faiss.IndexHNSWFlat(doc_emb.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = max(ef_search, k)
    index.add(doc_emb)
    scores, indices = index.search(query_emb, min(k, len(doc_ids)))
    run = {
        qid: {doc_ids[j]: float(s) for s, j in zip(row_scores, row_indices) if j >= 0}
        for qid, row_scores, row_indices in zip(query_ids, scores, indices)
    }
    return run, index


def ann_recall(
    index: faiss.Index, query_emb: np.ndarray, doc_emb: np.ndarray, sample: int, seed: int = 0, k: int = RECALL_K
) -> tuple[float, int]:
    """Mean overlap of the index's top-``k`` with exact search's, on ``sample`` seeded queries."""
    rows = sorted(random.Random(seed).sample(range(len(query_emb)), min(sample, len(query_emb))))
    queries = np.ascontiguousarray(query_emb[rows], dtype=np.float32)
    exact = faiss.IndexFlatIP(doc_emb.shape[1])
    exact.add(np.ascontiguousarray(doc_emb, dtype=np.float32))
    k = min(k, len(doc_emb))
    _, truth = exact.search(queries, k)
    _, found = index.search(queries, k)
    overlap = [len(set(t.tolist()) & set(f.tolist())) / k for t, f in zip(truth, found)]
    return float(np.mean(overlap)), len(rows)


def evaluate_collection(config: CollectionConfig, progress: bool = True, log=print, overwrite: bool = False) -> EvalRun:
    """Evaluate ``config.student`` on a collection and write the run dir ``config.out_dir``.

    As :func:`optical.eval.evaluate.evaluate`: the collection, the output dir, the student and
    the teacher are all checked before a model loads; a finished run of the same config on the
    same collection content is reused; the run dir is built aside and swapped in whole.
    ``log`` receives the lines a user should see (the collection read, the ANN recall).
    """
    config.validate()
    collection = read_collection(config.collection, config.split, strict=config.strict, query_lang=config.query_lang)
    finished = _finished_evaluation(config, overwrite)
    if finished is not None and finished.split_fingerprint == collection.fingerprint:
        return finished  # (a finished run on other collection content is redone)
    log(_describe(collection))
    started = time.perf_counter()
    student_path, info = _student_path(config)
    teacher, student = _load_encoders(config, _checked_teacher(config), student_path)
    clock = _Clock()
    docs = _DocCache(teacher, clock, config)

    qids, dids = list(collection.queries), list(collection.corpus)
    query_texts = [collection.queries[q] for q in qids]
    query_emb = clock.encode(student, query_texts, "query", config.query_max_length, config.batch_size)
    doc_emb = docs.dense([collection.corpus[d] for d in dids], "passage", config.passage_max_length)
    ann: AnnCheck | None = None
    if len(dids) < config.exact_below:
        run = dense_search(query_emb, doc_emb, qids, dids, k=config.depth)
    else:
        run, index = hnsw_search(query_emb, doc_emb, qids, dids, config.depth, config.hnsw_ef_search)
        recall, sample = ann_recall(index, query_emb, doc_emb, config.recall_sample)
        ann = AnnCheck(f"HNSW (M={HNSW_M}, efSearch={max(config.hnsw_ef_search, config.depth)})", len(dids), sample, recall)
        log(
            f"approximate search: {ann.index} over {ann.documents} documents (exact below {config.exact_below}); "
            f"recall@10 against exact search {recall:.4f} on {sample} sampled queries"
        )
    lang, fingerprint = config.query_lang, collection.fingerprint
    results = {}
    key = f"{config.task_name}.{lang}"
    results[key] = TaskResult.from_metrics(
        key, lang, fingerprint, score_run(collection.qrels, run, DEFAULT_MEASURES), run=run, qrels=collection.qrels
    )
    if "maxsim" in config.scoring:
        position = {doc: i for i, doc in enumerate(dids)}
        pool = sorted({doc for docs_of in run.values() for doc in docs_of}, key=position.__getitem__)  # only the candidates
        q_tokens = clock.encode(student, query_texts, "query", config.query_max_length, config.batch_size, tokens=True)
        d_tokens = clock.encode(
            teacher, [collection.corpus[d] for d in pool], "passage", config.passage_max_length, config.batch_size, tokens=True
        )
        late = maxsim_rerank(q_tokens, d_tokens, qids, pool, candidates=run, k=config.depth)
        late_key = f"{config.task_name}_maxsim.{lang}"
        results[late_key] = TaskResult.from_metrics(
            late_key, lang, fingerprint, score_run(collection.qrels, late, DEFAULT_MEASURES), run=late, qrels=collection.qrels
        )
    described = {
        "path": str(collection.path.resolve()),
        "layout": collection.layout,
        "fingerprint": collection.fingerprint,
        "queries": len(collection.queries),
        "documents": len(collection.corpus),
        "unknown_qrels": collection.unknown_qrels,
        "unjudged_queries": collection.unjudged_queries,
        "search": "exact" if ann is None else "approximate",
        "ann": asdict(ann) if ann is not None else None,
    }
    split = (f"{collection.name}/{collection.split}", collection.fingerprint)
    return _save_run(config, info, clock, started, results, split, collection=described)


def _describe(collection: Collection) -> str:
    notes = []
    if collection.unknown_qrels:
        notes.append(f"{collection.unknown_qrels} qrels lines with unknown ids dropped")
    if collection.unjudged_queries:
        notes.append(f"{collection.unjudged_queries} queries without a relevant document not evaluated")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return (
        f"{collection.path} ({collection.layout.upper()}, split {collection.split}): {len(collection.queries)} queries, "
        f"{len(collection.corpus)} documents{extra}"
    )
