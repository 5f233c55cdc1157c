"""Search a collection with a student: foreign-language queries in, English documents out.

The student (a ``optical distill`` output dir, or ``zero-shot``) encodes the queries and
the frozen teacher encodes the documents, as in every evaluation (OPTICAL, Huang, Yu &
Allan, WSDM 2023, arXiv:2301.12566). The collection is a BEIR or TREC dir as
``optical evaluate --collection`` reads it; only its corpus is needed.

The corpus encoding is the very cache file of ``evaluate --collection``
(:func:`optical.eval.collection.corpus_vectors_path`: keyed by the teacher, the document
length, the precision and the texts), so a collection evaluated or searched before is not
encoded again. The index is built from that file as the evaluation builds it
(:class:`~optical.eval.collection.IndexPlan`: exact below ``exact_below`` documents). An
approximate index is also kept on disk beside the vectors, with the search breadth tuned
once on a seeded sample of the documents' own vectors (their exact top 10 as the truth),
since a handful of typed queries is too few to tune on.

``scoring=maxsim`` reranks the dense top ``depth`` with ColBERT's MaxSim (Khattab &
Zaharia, SIGIR 2020) over content tokens; each hit carries both scores.

Example (with a finished run in ``runs/el-ot``)::

    from optical.search import Searcher, SearchConfig
    searcher = Searcher(SearchConfig(collection="my-beir", student="runs/el-ot"))
    for hit in searcher.search(["Πού βρίσκεται ο Παρθενώνας;"])[0].hits:
        print(hit.rank, hit.doc_id, hit.score, hit.title or hit.snippet)
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import faiss
import numpy as np
import torch

from optical.data.beir import Corpus, read_corpus
from optical.errors import OpticalError
from optical.eval.collection import (
    EXACT_BELOW,
    DiskVectors,
    IndexKind,
    IndexPlan,
    build_index,
    corpus_vectors_path,
    encode_to_disk,
    tune_breadth,
)
from optical.eval.evaluate import _checked_teacher, _Clock, _load_encoders, _student_path
from optical.eval.maxsim import maxsim_rerank
from optical.eval.results import ZERO_SHOT
from optical.storage import atomic_path, atomic_write_json
from optical.train.config import MixedPrecision
from optical.train.precision import check_device, check_precision, resolve_precision

DEFAULT_TEACHER = "multilingual-e5-small"
#: Characters of a document's text shown when it has no title.
SNIPPET_CHARS = 160
#: Documents whose vectors tune an approximate index's search breadth (as queries; their exact top 10 is the truth).
TUNE_SAMPLE = 200


class Scoring(StrEnum):
    """How hits are ranked: pooled cosine, or MaxSim over the dense candidates."""

    DENSE = "dense"
    MAXSIM = "maxsim"


@dataclass
class SearchConfig:
    """What to search with and where."""

    collection: str
    student: str = ZERO_SHOT  # a `optical distill` output dir, or "zero-shot"
    teacher: str | None = None  # None: the run's teacher (zero-shot: multilingual-e5-small)
    top_k: int = 10
    scoring: Scoring = Scoring.DENSE
    depth: int = 100  # dense candidates MaxSim reranks
    index: IndexKind = IndexKind.AUTO
    exact_below: int = EXACT_BELOW
    recall_target: float = 0.95
    batch_size: int = 64
    query_max_length: int = 128
    passage_max_length: int = 512
    device: str = "auto"
    mixed_precision: MixedPrecision = "auto"

    def validate(self) -> None:
        """Everything that can be checked before a model loads; resolves ``teacher`` and ``mixed_precision``."""
        try:
            self.scoring = Scoring(self.scoring)
        except ValueError:
            raise OpticalError(f"unknown scoring {self.scoring!r}; choose from {', '.join(Scoring)}") from None
        try:
            self.index = IndexKind(self.index)
        except ValueError:
            raise OpticalError(f"unknown index {self.index!r}; choose from {', '.join(IndexKind)}") from None
        for name in ("top_k", "depth", "exact_below", "batch_size", "query_max_length", "passage_max_length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise OpticalError(f"--{name.replace('_', '-')} must be a whole number >= 1, got {getattr(self, name)!r}")
        if not 0.0 < self.recall_target <= 1.0:
            raise OpticalError(f"recall target must be in (0, 1], got {self.recall_target}")
        check_device(self.device)
        check_precision(self.device, self.mixed_precision)
        self.mixed_precision = resolve_precision(self.device, self.mixed_precision)
        if self.teacher is None:
            self.teacher = _run_teacher(self.student)


def _run_teacher(student: str) -> str:
    """The teacher a run was distilled from (the default for zero-shot or a dir that is no run: checked later)."""
    if student == ZERO_SHOT:
        return DEFAULT_TEACHER
    from optical.train.record import RunRecord

    record = RunRecord.find(student)
    return record.teacher if record is not None else DEFAULT_TEACHER


@dataclass(frozen=True)
class Hit:
    """One retrieved document."""

    rank: int  # 1-based
    doc_id: str
    score: float  # the ranking score: ``dense`` or ``maxsim``
    dense: float  # cosine of the pooled query and document vectors
    maxsim: float | None  # MaxSim over content tokens (None unless scoring is maxsim)
    title: str
    snippet: str  # the start of the document's text


@dataclass(frozen=True)
class QueryResult:
    """The top hits of one query."""

    query_id: str
    query: str
    hits: list[Hit]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SearchStats:
    """What a searcher had to compute: ``documents_encoded`` is 0 when the corpus came from the cache."""

    documents_encoded: int = 0
    index_built: bool = False
    vectors_path: Path | None = None
    index: str = ""
    load_seconds: float = 0.0
    recall_at_10: float | None = None  # an approximate index's, on the tuning sample


class Searcher:
    """A student, a teacher and one collection's index, loaded once and searched many times (the web page
    keeps one per student and collection)."""

    def __init__(self, config: SearchConfig, progress: bool = False) -> None:
        config.validate()
        started = time.perf_counter()
        self.config = config
        self.corpus: Corpus = read_corpus(config.collection)  # a bad collection fails before a model loads
        student_path, _ = _student_path(config)
        self.teacher, self.student = _load_encoders(config, _checked_teacher(config), student_path)
        self.doc_ids = list(self.corpus.texts)
        self.stats = SearchStats()
        self.vectors = self._corpus_vectors(progress)
        self.index = self._index()
        self.stats.load_seconds = time.perf_counter() - started
        self._doc_tokens: dict[str, torch.Tensor] = {}

    def _corpus_vectors(self, progress: bool) -> DiskVectors:
        config, texts = self.config, list(self.corpus.texts.values())
        path = corpus_vectors_path(self.teacher, texts, config.passage_max_length, config.mixed_precision)

        def encode(block: Sequence[str]) -> np.ndarray:
            self.stats.documents_encoded += len(block)
            return self.teacher.encode(block, kind="passage", batch_size=config.batch_size, max_length=config.passage_max_length)

        self.stats.vectors_path = path
        return encode_to_disk(encode, texts, self.teacher.hidden_size, path, progress=progress)

    def _index(self) -> faiss.Index:
        """The exact index built from the vectors; an approximate one read from (or built and tuned into) its file."""
        config = self.config
        plan = IndexPlan.choose(len(self.doc_ids), config.index, config.exact_below)
        if not plan.approximate:
            self.stats.index = plan.describe()
            return build_index(plan, self.vectors)
        path = self.vectors.path.with_name(f"{self.vectors.path.stem}.{plan.factory.replace(',', '-')}.faiss")
        tuning = path.with_suffix(".json")
        if path.is_file() and tuning.is_file():
            index, held = faiss.read_index(str(path)), json.loads(tuning.read_text(encoding="utf-8"))
            faiss.ParameterSpace().set_index_parameter(index, plan.breadth_name, held["breadth"])
        else:
            index = build_index(plan, self.vectors)
            probes = self.vectors.sample(TUNE_SAMPLE, seed=1)
            check = tune_breadth(index, plan, probes, self.vectors, config.recall_target, config.depth, TUNE_SAMPLE)
            held = {"breadth": check.breadth, "recall_at_10": check.recall_at_10}
            with atomic_path(path) as tmp:
                faiss.write_index(index, str(tmp))
            atomic_write_json(tuning, held)
            self.stats.index_built = True
        self.stats.index = plan.describe(held["breadth"])
        self.stats.recall_at_10 = held["recall_at_10"]
        return index

    def search(self, queries: Sequence[str], query_ids: Sequence[str] | None = None) -> list[QueryResult]:
        """The top ``top_k`` documents of each query (ids default to q1, q2, ...)."""
        queries = list(queries)
        query_ids = [f"q{i}" for i in range(1, len(queries) + 1)] if query_ids is None else list(query_ids)
        check_queries(queries, query_ids)
        config = self.config
        clock = _Clock()
        emb = clock.encode(self.student, queries, "query", config.query_max_length, config.batch_size)
        depth = max(config.top_k, config.depth) if config.scoring is Scoring.MAXSIM else config.top_k
        scores, rows = self.index.search(np.ascontiguousarray(emb, dtype=np.float32), min(depth, len(self.doc_ids)))
        dense = {
            qid: {self.doc_ids[j]: float(s) for s, j in zip(row_scores, row_ids) if j >= 0}
            for qid, row_scores, row_ids in zip(query_ids, scores, rows)
        }
        late = self._maxsim(queries, query_ids, dense, clock) if config.scoring is Scoring.MAXSIM else None
        return [self._result(qid, text, dense[qid], late[qid] if late else None) for qid, text in zip(query_ids, queries)]

    def _maxsim(self, queries: list[str], query_ids: list[str], dense: dict, clock: _Clock) -> dict[str, dict[str, float]]:
        config = self.config
        q_tokens = clock.encode(self.student, queries, "query", config.query_max_length, config.batch_size, tokens=True)
        pool = list(dict.fromkeys(doc for docs in dense.values() for doc in docs))
        return maxsim_rerank(q_tokens, self.doc_tokens(pool), query_ids, pool, candidates=dense, k=config.top_k)

    def doc_tokens(self, doc_ids: Sequence[str]) -> list[torch.Tensor]:
        """The teacher's content-token vectors of these documents (memoised: a page shows the same ones again)."""
        config = self.config
        new = [doc for doc in dict.fromkeys(doc_ids) if doc not in self._doc_tokens]
        if new:
            texts = [self.corpus.texts[doc] for doc in new]
            arrays = self.teacher.encode_tokens(
                texts, kind="passage", batch_size=config.batch_size, max_length=config.passage_max_length
            )
            self._doc_tokens.update((doc, torch.from_numpy(array)) for doc, array in zip(new, arrays))
        return [self._doc_tokens[doc] for doc in doc_ids]

    def _result(self, qid: str, text: str, dense: dict[str, float], late: dict[str, float] | None) -> QueryResult:
        ranked = list(late.items()) if late is not None else list(dense.items())[: self.config.top_k]
        hits = []
        for rank, (doc, score) in enumerate(ranked, start=1):
            body = self.corpus.texts[doc]
            title = self.corpus.titles[doc]
            start = body[len(title) :].strip() if title else body
            snippet = start if len(start) <= SNIPPET_CHARS else start[: SNIPPET_CHARS - 1].rstrip() + "…"
            hits.append(Hit(rank, doc, score, dense[doc], late[doc] if late is not None else None, title, snippet))
        return QueryResult(qid, text, hits)


def check_queries(queries: Sequence[str], query_ids: Sequence[str]) -> None:
    """One line for no query, an empty one, or ids that do not pair one to one with the queries."""
    if not queries:
        raise OpticalError("no query given: pass queries as arguments, with --queries FILE, or on stdin")
    if len(query_ids) != len(queries) or len(set(query_ids)) != len(query_ids):
        raise OpticalError(f"{len(query_ids)} query ids for {len(queries)} queries: give each query its own id")
    for qid, text in zip(query_ids, queries):
        if not text.strip():
            raise OpticalError(f"query {qid} is empty; type the words to search for")
        if any(ch.isspace() for ch in qid) or not qid:
            raise OpticalError(f"query id {qid!r} is empty or holds whitespace; ids must be single tokens (TREC runs)")


def search(
    queries: Sequence[str], collection: str, student: str = ZERO_SHOT, query_ids: Sequence[str] | None = None, **options
) -> list[QueryResult]:
    """Search ``collection`` with ``student`` once: ``options`` are :class:`SearchConfig` fields."""
    check_queries(list(queries), [f"q{i}" for i in range(1, len(queries) + 1)] if query_ids is None else list(query_ids))
    return Searcher(SearchConfig(collection=collection, student=student, **options)).search(queries, query_ids)


def check_run_tag(tag: str) -> None:
    if not tag or any(ch.isspace() for ch in tag):
        raise OpticalError(f"--tag {tag!r} is empty or holds whitespace; a TREC run tag is a single token")


def trec_lines(results: Sequence[QueryResult], tag: str) -> list[str]:
    """The results as TREC run lines (``qid Q0 docid rank score tag``), the format trec_eval reads."""
    check_run_tag(tag)
    return [f"{r.query_id} Q0 {hit.doc_id} {hit.rank} {hit.score:.6f} {tag}" for r in results for hit in r.hits]
