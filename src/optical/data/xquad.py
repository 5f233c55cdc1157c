"""Readers for XQuAD and XQuAD-R (SQuAD v1.1 JSON) into typed dataclasses.

XQuAD: Artetxe, Ruder & Yogatama, "On the Cross-lingual Transferability of
Monolingual Representations", ACL 2020. XQuAD-R: Roy et al., "LAReQA:
Language-agnostic answer retrieval from a multilingual pool", EMNLP 2020, which
adds per paragraph the ``sentences`` (retrieval candidates) and
``sentence_breaks`` (character offsets into ``context``).

Ids are language-independent: the nesting and question order are identical in
every language, so paragraph ``p017`` is the 18th paragraph (0-based index 17)
of every language and question ids are the upstream SQuAD ids.

Gold sentence: the sentence that contains the answer *start*. Sentence starts
are located by searching each ``sentences`` string in ``context`` in order;
where that fails (tr.json: a mojibake character makes a sentence string differ
from its context span and shifts 2 ``sentence_breaks`` by 1-3 characters) the
``sentence_breaks`` start is used instead.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

from optical.data.languages import XQUAD_LANGS, XQUADR_LANGS, validate_lang
from optical.data.registry import xquad_relpath, xquadr_relpath
from optical.errors import OpticalError

_BOM = "\ufeff"


@dataclass(frozen=True)
class Paragraph:
    id: str
    """Language-independent id, ``p000`` .. ``p239``."""
    article: int
    context: str
    sentences: tuple[str, ...] = ()
    """XQuAD-R retrieval candidates (BOM and surrounding whitespace removed); empty for XQuAD."""
    sentence_starts: tuple[int, ...] = ()
    """Character offset in ``context`` where each sentence starts (located robustly, see module doc)."""

    def sentence_of(self, offset: int) -> int:
        """Index of the sentence containing character ``offset`` of the context."""
        if not self.sentence_starts:
            raise ValueError(f"paragraph {self.id} has no sentences (XQuAD, not XQuAD-R)")
        return max(bisect.bisect_right(self.sentence_starts, offset) - 1, 0)


@dataclass(frozen=True)
class Article:
    index: int
    title: str
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True)
class Question:
    id: str
    """Upstream SQuAD question id, identical across languages."""
    text: str
    answer_start: int
    answer_text: str
    paragraph_id: str


@dataclass(frozen=True)
class QADataset:
    """One language of XQuAD or XQuAD-R."""

    name: str
    """``"XQuAD"`` or ``"XQuAD-R"``."""
    lang: str
    path: Path
    articles: tuple[Article, ...]
    questions: tuple[Question, ...]

    @property
    def paragraphs(self) -> tuple[Paragraph, ...]:
        return tuple(paragraph for article in self.articles for paragraph in article.paragraphs)

    def paragraph_map(self) -> dict[str, Paragraph]:
        return {paragraph.id: paragraph for paragraph in self.paragraphs}

    def num_candidates(self) -> int:
        return sum(len(paragraph.sentences) for paragraph in self.paragraphs)


def paragraph_id(index: int) -> str:
    return f"p{index:03d}"


def locate_sentences(context: str, sentences: list[str], breaks: list[list[int]] | None) -> tuple[int, ...]:
    """Start offset of each sentence in ``context``: string search in order, else the break offset."""
    starts: list[int] = []
    cursor = 0
    for position, sentence in enumerate(sentences):
        found = context.find(sentence, cursor)
        if found >= 0:
            start, cursor = found, found + len(sentence)
        elif breaks is not None and position < len(breaks):
            start = max(breaks[position][0], cursor)
            cursor = start + 1
        else:
            raise ValueError(f"sentence {position} is not in the context and has no break offset")
        starts.append(start)
    return tuple(starts)


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise OpticalError(f"{path} is missing; run `optical data fetch` (or `--mirror ../shared/data`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpticalError(f"{path} is not valid UTF-8 JSON ({exc}); re-fetch it with `optical data fetch`") from exc


def load_qa_file(path: str | Path, lang: str, name: str) -> QADataset:
    """Parse one SQuAD-format file; ``name`` is "XQuAD-R" when sentences must be present."""
    path = Path(path)
    raw = _load_json(path)
    with_sentences = name == "XQuAD-R"
    articles: list[Article] = []
    questions: list[Question] = []
    next_paragraph = 0
    try:
        for article_index, raw_article in enumerate(raw["data"]):
            paragraphs: list[Paragraph] = []
            for raw_paragraph in raw_article["paragraphs"]:
                pid = paragraph_id(next_paragraph)
                next_paragraph += 1
                context = raw_paragraph["context"]
                sentences: tuple[str, ...] = ()
                starts: tuple[int, ...] = ()
                if with_sentences:
                    raw_sentences = raw_paragraph["sentences"]
                    starts = locate_sentences(context, raw_sentences, raw_paragraph.get("sentence_breaks"))
                    sentences = tuple(sentence.replace(_BOM, "").strip() for sentence in raw_sentences)
                paragraphs.append(Paragraph(pid, article_index, context, sentences, starts))
                for qa in raw_paragraph["qas"]:
                    answer = qa["answers"][0]
                    start, text = int(answer["answer_start"]), answer["text"]
                    if context[start : start + len(text)] != text:
                        raise OpticalError(
                            f"{path}: answer of question {qa['id']} is not at its answer_start; "
                            "the file is corrupt, re-fetch it with `optical data fetch`"
                        )
                    questions.append(Question(qa["id"], qa["question"].strip(), start, text, pid))
            articles.append(Article(article_index, raw_article["title"], tuple(paragraphs)))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise OpticalError(
            f"{path} is not in {name} format ({type(exc).__name__}: {exc}); re-fetch it with `optical data fetch`"
        ) from exc
    return QADataset(name, lang, path, tuple(articles), tuple(questions))


def read_xquad(data_dir: str | Path, lang: str) -> QADataset:
    """XQuAD in ``lang`` (12 languages incl. ro): 48 articles, 240 paragraphs, 1190 questions."""
    lang = validate_lang(lang, XQUAD_LANGS, "XQuAD")
    return load_qa_file(Path(data_dir) / xquad_relpath(lang), lang, "XQuAD")


def read_xquadr(data_dir: str | Path, lang: str) -> QADataset:
    """XQuAD-R in ``lang`` (11 languages, no ro), with sentence candidates."""
    lang = validate_lang(lang, XQUADR_LANGS, "XQuAD-R")
    return load_qa_file(Path(data_dir) / xquadr_relpath(lang), lang, "XQuAD-R")
