"""Retrieval tasks built from XQuAD / XQuAD-R: queries, candidates and qrels.

Sentence retrieval follows LAReQA (Roy et al., EMNLP 2020): a question's
relevant candidates are the sentences holding its answer start, one per
candidate language; with all 11 XQuAD-R languages in the pool each question has
11 relevant sentences (scored with mAP). Paragraph retrieval uses XQuAD
paragraphs (so Romanian works too) with the question's paragraph as gold.

Ids: queries ``q:<SQuAD question id>``, sentence candidates ``<lang>:p017:s2``,
paragraph candidates ``<lang>:p017``. Only the split's articles are used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from optical.data.languages import XQUAD_LANGS, XQUADR_LANGS, validate_lang
from optical.data.split import get_split
from optical.data.xquad import read_xquad, read_xquadr
from optical.errors import OpticalError


@dataclass(frozen=True)
class RetrievalTask:
    name: str
    query_lang: str
    queries: dict[str, str]
    candidates: dict[str, str]
    candidate_langs: dict[str, str]
    """Candidate id -> language code."""
    qrels: dict[str, dict[str, int]]
    split_name: str
    fingerprint: str
    """sha256 (16 hex) over the task content: results with different fingerprints are not comparable."""


def task_fingerprint(
    name: str, split_name: str, queries: dict[str, str], candidates: dict[str, str], qrels: dict[str, dict[str, int]]
) -> str:
    payload = json.dumps([name, split_name, queries, candidates, qrels], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def query_id(question_id: str) -> str:
    return f"q:{question_id}"


def _checked_langs(candidate_langs: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    if not candidate_langs:
        raise OpticalError(f"no candidate languages given; choose from: {' '.join(allowed)}")
    candidate_langs = [validate_lang(lang, allowed, what) for lang in candidate_langs]
    if len(set(candidate_langs)) != len(candidate_langs):
        raise OpticalError(f"candidate languages repeat: {' '.join(candidate_langs)}")
    return list(candidate_langs)


def sentence_task(data_dir: str | Path, query_lang: str, candidate_langs: list[str], split: str) -> RetrievalTask:
    """XQuAD-R sentence retrieval; with all 11 candidate languages this is the LAReQA pool."""
    query_lang = validate_lang(query_lang, XQUADR_LANGS, "XQuAD-R")
    langs = _checked_langs(candidate_langs, XQUADR_LANGS, "XQuAD-R")
    articles = set(get_split().articles(split))
    query_data = read_xquadr(data_dir, query_lang)
    in_split = {p.id for p in query_data.paragraphs if p.article in articles}
    query_questions = [q for q in query_data.questions if q.paragraph_id in in_split]
    queries = {query_id(q.id): q.text for q in query_questions}
    qrels: dict[str, dict[str, int]] = {query_id(q.id): {} for q in query_questions}
    candidates: dict[str, str] = {}
    candidate_lang_of: dict[str, str] = {}
    for lang in langs:
        data = query_data if lang == query_lang else read_xquadr(data_dir, lang)
        paragraphs = data.paragraph_map()
        for paragraph in data.paragraphs:
            if paragraph.id not in in_split:
                continue
            for index, sentence in enumerate(paragraph.sentences):
                doc_id = f"{lang}:{paragraph.id}:s{index}"
                candidates[doc_id] = sentence
                candidate_lang_of[doc_id] = lang
        questions = {q.id: q for q in data.questions}
        for question in query_questions:
            parallel = questions.get(question.id)
            if parallel is None or parallel.paragraph_id != question.paragraph_id:
                raise OpticalError(
                    f"{data.path}: question {question.id} is missing or in another paragraph than "
                    f"in {query_data.path}; re-fetch the data with `optical data fetch`"
                )
            gold = paragraphs[parallel.paragraph_id].sentence_of(parallel.answer_start)
            qrels[query_id(question.id)][f"{lang}:{parallel.paragraph_id}:s{gold}"] = 1
    name = f"xquad-r-sentence:{query_lang}->{'+'.join(langs)}"
    fingerprint = task_fingerprint(name, split, queries, candidates, qrels)
    return RetrievalTask(name, query_lang, queries, candidates, candidate_lang_of, qrels, split, fingerprint)


def paragraph_task(data_dir: str | Path, query_lang: str, candidate_lang: str, split: str) -> RetrievalTask:
    """XQuAD paragraph retrieval: the gold candidate is the question's paragraph."""
    query_lang = validate_lang(query_lang, XQUAD_LANGS, "XQuAD")
    candidate_lang = validate_lang(candidate_lang, XQUAD_LANGS, "XQuAD")
    articles = set(get_split().articles(split))
    query_data = read_xquad(data_dir, query_lang)
    candidate_data = query_data if candidate_lang == query_lang else read_xquad(data_dir, candidate_lang)
    in_split = {p.id for p in query_data.paragraphs if p.article in articles}
    candidates = {f"{candidate_lang}:{p.id}": p.context for p in candidate_data.paragraphs if p.id in in_split}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for question in query_data.questions:
        if question.paragraph_id in in_split:
            queries[query_id(question.id)] = question.text
            qrels[query_id(question.id)] = {f"{candidate_lang}:{question.paragraph_id}": 1}
    name = f"xquad-paragraph:{query_lang}->{candidate_lang}"
    fingerprint = task_fingerprint(name, split, queries, candidates, qrels)
    candidate_lang_of = {doc_id: candidate_lang for doc_id in candidates}
    return RetrievalTask(name, query_lang, queries, candidates, candidate_lang_of, qrels, split, fingerprint)
