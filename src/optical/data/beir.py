"""The user's own retrieval collection: reading the BEIR and TREC layouts, writing BEIR.

BEIR layout (Thakur et al., NeurIPS 2021 Datasets and Benchmarks)::

    DIR/corpus.jsonl         {"_id": "d1", "title": "...", "text": "..."} per line (title optional)
    DIR/queries.jsonl        {"_id": "q1", "text": "..."} per line
    DIR/qrels/<split>.tsv    query-id<TAB>corpus-id<TAB>score, with or without that header line

TREC layout::

    DIR/topics.tsv           qid<TAB>query text per line
    DIR/qrels.txt            qid 0 docid relevance (TREC qrels, whitespace-separated)
    DIR/corpus.jsonl or DIR/corpus.tsv (docid<TAB>text)

A document's text is its title and text joined by a space (BEIR's convention; the
title is left out when empty). Queries are evaluated when the qrels give them at
least one relevant document; qrels lines naming a query or document the collection
does not have are dropped and counted (``strict=True`` refuses them instead).

Every problem is one :class:`OpticalError` line naming the file (and line) and what
to do. :func:`export_beir` writes the built-in XQuAD-R X->en sentence task in the
BEIR layout, atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from optical.data.languages import count_letters, get_language, in_language_script, warn_unchecked_script
from optical.data.tasks import sentence_task
from optical.errors import OpticalError
from optical.storage import atomic_directory, check_output_dir

BEIR, TREC = "beir", "trec"
_LOG = logging.getLogger(__name__)
_LAYOUTS = (
    "a BEIR dir holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv; "
    "a TREC dir holds topics.tsv, qrels.txt and corpus.jsonl or corpus.tsv"
)


@dataclass(frozen=True)
class Collection:
    """A retrieval collection: queries, documents and graded relevance."""

    name: str
    layout: str
    """``beir`` or ``trec``."""
    path: Path
    split: str
    queries: dict[str, str]
    """The evaluated queries (those with a relevant document), in file order."""
    corpus: dict[str, str]
    """Document id -> text (title and text joined), in file order."""
    qrels: dict[str, dict[str, int]]
    queries_file: Path
    qrels_file: Path
    unknown_qrels: int = 0
    """qrels lines naming a query or document not in the collection (dropped)."""
    unjudged_queries: int = 0
    """Queries with no relevant document in the qrels (not evaluated)."""
    fingerprint: str = ""
    """sha256 (16 hex) over queries, corpus and qrels: two runs are comparable when it agrees."""


def _fail(path: Path, line: int | None, message: str) -> OpticalError:
    where = f"{path}:{line}" if line is not None else str(path)
    return OpticalError(f"{where}: {message}")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(path, None, f"not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise _fail(path, None, f"cannot be read ({exc.strerror})") from None
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _check_id(value: object, path: Path, line: int, what: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, line, f"{what} is missing or empty; every line needs one")
    if any(ch.isspace() for ch in value):
        raise _fail(path, line, f"{what} {value!r} contains whitespace; ids must be single tokens (TREC files)")
    return value


def _read_jsonl(path: Path, text_of) -> dict[str, str]:
    """``{_id: text}`` of a JSON-lines file; ``text_of(obj)`` builds the text."""
    items: dict[str, str] = {}
    for number, line in _read_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, number, f"not JSON ({exc.msg} at column {exc.colno}); fix or remove the line") from None
        if not isinstance(obj, dict):
            raise _fail(path, number, 'not a JSON object; each line must be {"_id": ..., "text": ...}')
        key = _check_id(obj.get("_id"), path, number, '"_id"')
        text = text_of(obj)
        if not isinstance(text, str):
            raise _fail(path, number, f'"text" of {key!r} is not a string')
        if key in items:
            raise _fail(path, number, f"id {key!r} appears twice; ids must be unique")
        items[key] = text
    return items


def _doc_text(obj: dict) -> str | None:
    title, text = obj.get("title") or "", obj.get("text")
    if not isinstance(text, str) or not isinstance(title, str):
        return None
    return f"{title} {text}".strip() if title.strip() else text


def _query_text(obj: dict) -> str | None:
    text = obj.get("text")
    return text if isinstance(text, str) else None


def _read_tsv(path: Path, what: str) -> dict[str, str]:
    items: dict[str, str] = {}
    for number, line in _read_lines(path):
        fields = line.split("\t")
        if len(fields) != 2:
            raise _fail(path, number, f"expected id<TAB>{what} text, found {len(fields)} tab-separated fields")
        key = _check_id(fields[0].strip(), path, number, f"{what} id")
        if key in items:
            raise _fail(path, number, f"id {key!r} appears twice; ids must be unique")
        items[key] = fields[1].strip()
    return items


def _read_qrels(path: Path, layout: str) -> list[tuple[int, str, str, int]]:
    rows = []
    for index, (number, line) in enumerate(_read_lines(path)):
        fields = line.split("\t") if layout == BEIR else line.split()
        if layout == BEIR and len(fields) != 3:
            fields = line.split()  # tolerate spaces for tabs
        expected = 3 if layout == BEIR else 4
        if len(fields) != expected:
            form = "query-id<TAB>corpus-id<TAB>score" if layout == BEIR else "qid 0 docid relevance"
            raise _fail(path, number, f"expected {form}, found {len(fields)} fields")
        qid, doc, score = (fields[0], fields[1], fields[2]) if layout == BEIR else (fields[0], fields[2], fields[3])
        try:
            grade = float(score)
        except ValueError:
            if layout == BEIR and index == 0:  # the header line
                continue
            raise _fail(path, number, f"relevance {score!r} is not a number") from None
        if not grade.is_integer():  # truncating 1.7 to 1 (or 0.5 to 0) would change which documents are relevant
            raise _fail(path, number, f"relevance {score!r} is not a whole number; grades are integers (0: not relevant)")
        relevance = int(grade)
        rows.append((number, qid.strip(), doc.strip(), relevance))
    return rows


def _layout(path: Path, split: str) -> tuple[str, Path, Path, Path]:
    """(layout, corpus file, queries file, qrels file), or one line saying what is missing."""
    if not path.is_dir():
        raise OpticalError(f"collection {path} is not a directory; {_LAYOUTS}")
    if (path / "topics.tsv").is_file() and not (path / "queries.jsonl").is_file():
        if (path / "corpus.jsonl").is_file() and (path / "corpus.tsv").is_file():
            raise OpticalError(f"TREC collection {path} holds both corpus.jsonl and corpus.tsv; keep the one to evaluate")
        corpus = path / "corpus.jsonl" if (path / "corpus.jsonl").is_file() else path / "corpus.tsv"
        for needed in (corpus, path / "qrels.txt"):
            if not needed.is_file():
                name = "corpus.jsonl or corpus.tsv" if needed == corpus else needed.name
                raise OpticalError(f"TREC collection {path} is missing {name}; {_LAYOUTS}")
        return TREC, corpus, path / "topics.tsv", path / "qrels.txt"
    qrels = path / "qrels" / f"{split}.tsv"
    for needed in (path / "corpus.jsonl", path / "queries.jsonl", qrels):
        if needed.exists() and not needed.is_file():
            raise OpticalError(f"BEIR collection {path}: {needed.relative_to(path)} is not a regular file; {_LAYOUTS}")
        if not needed.is_file():
            hint = ""
            if needed == qrels and (path / "qrels").is_dir():
                splits = sorted(p.stem for p in (path / "qrels").glob("*.tsv"))
                if splits:
                    hint = f" (qrels/ has {', '.join(splits)}: pass --split {splits[0]})"
            relative = needed.relative_to(path)
            raise OpticalError(f"BEIR collection {path} is missing {relative}{hint}; {_LAYOUTS}")
    return BEIR, path / "corpus.jsonl", path / "queries.jsonl", qrels


@dataclass(frozen=True)
class Corpus:
    """The documents of a collection alone: what searching it needs (its queries and qrels are optional)."""

    path: Path
    texts: dict[str, str]
    """Document id -> title and text joined (the text :func:`read_collection` gives and the teacher encodes)."""
    titles: dict[str, str]
    """Document id -> title (empty when the document has none)."""


def read_corpus(path: str | Path) -> Corpus:
    """The documents of a BEIR or TREC collection dir (``corpus.jsonl`` or ``corpus.tsv``), in file order."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise OpticalError(f"collection {path} is not a directory; {_LAYOUTS}")
    found = [path / name for name in ("corpus.jsonl", "corpus.tsv") if (path / name).is_file()]
    if not found:
        raise OpticalError(f"collection {path} has no corpus.jsonl or corpus.tsv; {_LAYOUTS}")
    if len(found) == 2:
        raise OpticalError(f"collection {path} holds both corpus.jsonl and corpus.tsv; keep the one to search")
    corpus_file = found[0]
    if corpus_file.suffix == ".jsonl":
        texts = _read_jsonl(corpus_file, _doc_text)
        titles = _read_jsonl(corpus_file, lambda obj: obj.get("title") or "")
    else:
        texts = _read_tsv(corpus_file, "document")
        titles = dict.fromkeys(texts, "")
    if not texts:
        raise OpticalError(f"collection {path} is empty: {corpus_file.name} has no documents; add documents to search")
    return Corpus(path, texts, titles)


def collection_fingerprint(queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, dict[str, int]]) -> str:
    digest = hashlib.sha256()
    for part in (queries, corpus, qrels):
        digest.update(json.dumps(part, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def check_query_language(queries: dict[str, str], lang: str, path: Path) -> None:
    """Refuse queries that are mostly not in ``lang``'s script (one line); say once when it cannot be checked."""
    language = get_language(lang)
    if not language.script_known:
        warn_unchecked_script(language, "the query script check is")
        return
    with_letters = [text for text in queries.values() if count_letters(text)]
    if not with_letters:
        return
    matching = sum(bool(in_language_script(text, language)) for text in with_letters)
    if 2 * matching < len(with_letters):
        script = language.script if language.script_code != "Latn" else "mostly Latin"
        example = next(text for text in with_letters if not in_language_script(text, language))
        raise OpticalError(
            f"{path}: only {matching} of {len(with_letters)} queries are written in {script} script, as {language.code} "
            f"({language.name}) is (e.g. {example[:60]!r}); pass the queries' language with --query-lang"
        )


#: A split names a qrels file of the collection (``qrels/<split>.tsv``): a name, not a path.
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_split_name(split: str) -> str:
    """``split`` when it is a plain name; one line otherwise (``../other/qrels/test`` would read another
    collection's qrels as this one's)."""
    if not isinstance(split, str) or not _SPLIT_NAME.fullmatch(split) or ".." in split:
        raise OpticalError(
            f"--split {split!r} is not a split name: give the name of a qrels/<split>.tsv of the collection "
            "(letters, digits, '_', '-', '.'), not a path"
        )
    return split


def read_collection(path: str | Path, split: str = "test", strict: bool = False, query_lang: str | None = None) -> Collection:
    """Read and check a BEIR or TREC collection directory (see the module doc)."""
    check_split_name(split)
    path = Path(path).expanduser()
    layout, corpus_file, queries_file, qrels_file = _layout(path, split)
    if corpus_file.suffix == ".jsonl":
        corpus = _read_jsonl(corpus_file, _doc_text)
    else:
        corpus = _read_tsv(corpus_file, "document")
    all_queries = _read_jsonl(queries_file, _query_text) if layout == BEIR else _read_tsv(queries_file, "query")
    if not corpus:
        raise OpticalError(f"collection {path} is empty: {corpus_file.name} has no documents; add documents to search")
    if not all_queries:
        raise OpticalError(f"collection {path} is empty: {queries_file.name} has no queries; add queries")
    blank = [qid for qid, text in all_queries.items() if not text.strip()]
    if blank:
        # An empty query embeds to the same vector as every other empty text; its score would mean nothing.
        raise OpticalError(
            f"{queries_file}: {len(blank)} queries have no text (first: {blank[0]!r}); fill them in or remove them"
        )
    rows = _read_qrels(qrels_file, layout)
    unknown = [(number, qid, doc) for number, qid, doc, _ in rows if qid not in all_queries or doc not in corpus]
    if unknown and strict:
        number, qid, doc = unknown[0]
        which = f"query {qid!r}" if qid not in all_queries else f"document {doc!r}"
        raise _fail(
            qrels_file,
            number,
            f"{len(unknown)} qrels line(s) name unknown query or document ids (first: {which}); fix the qrels or drop --strict",
        )
    if unknown:
        _LOG.warning(
            "optical: warning: %s: %d qrels line(s) name unknown query or document ids and were dropped (--strict refuses them)",
            qrels_file,
            len(unknown),
        )
    qrels: dict[str, dict[str, int]] = {}
    for _, qid, doc, relevance in rows:
        if qid in all_queries and doc in corpus:
            qrels.setdefault(qid, {})[doc] = relevance
    judged = {qid for qid, docs in qrels.items() if any(rel > 0 for rel in docs.values())}
    queries = {qid: text for qid, text in all_queries.items() if qid in judged}
    qrels = {qid: qrels[qid] for qid in queries}
    if not queries:
        raise OpticalError(
            f"collection {path} is empty: no query of {queries_file.name} has a relevant document in {qrels_file.name}; "
            "check that the qrels use the same ids"
        )
    if query_lang is not None:
        check_query_language(queries, query_lang, queries_file)
    return Collection(
        path.name,
        layout,
        path,
        split,
        queries,
        corpus,
        qrels,
        queries_file,
        qrels_file,
        unknown_qrels=len(unknown),
        unjudged_queries=len(all_queries) - len(queries),
        fingerprint=collection_fingerprint(queries, corpus, qrels),
    )


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def write_beir(
    out: str | Path, queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, dict[str, int]], split: str = "test"
) -> Path:
    """Write a collection in the BEIR layout, atomically (a killed write leaves no half directory).

    An existing ``out`` is replaced only when it is itself a BEIR directory (an earlier export).
    """
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "corpus.jsonl").is_file())):
        raise OpticalError(f"{out} exists and is not a BEIR directory; choose a new --out")
    with atomic_directory(out) as tmp:
        (tmp / "corpus.jsonl").write_text(
            _jsonl([{"_id": doc, "title": "", "text": text} for doc, text in corpus.items()]), encoding="utf-8"
        )
        (tmp / "queries.jsonl").write_text(
            _jsonl([{"_id": qid, "text": text} for qid, text in queries.items()]), encoding="utf-8"
        )
        (tmp / "qrels").mkdir()
        lines = ["query-id\tcorpus-id\tscore\n"]
        lines += [f"{qid}\t{doc}\t{rel}\n" for qid, docs in qrels.items() for doc, rel in docs.items()]
        (tmp / "qrels" / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
    return out


def export_beir(data_dir: str | Path, lang: str, split: str, out: str | Path, overwrite: bool = False) -> Collection:
    """Write the XQuAD-R X->en sentence task (``clir_sentence.<lang>``) of ``split`` in the BEIR layout.

    ``out`` is written whole (built aside, then swapped in), so a non-empty ``out`` (another collection, or an
    export of the other split) is refused unless ``overwrite``."""
    if split not in ("dev", "test"):
        raise OpticalError(f"--split must be dev or test, got {split!r}")
    out = check_output_dir(out)  # expanded (~), as write_beir writes it
    if out.is_dir() and any(out.iterdir()):
        if not (out / "corpus.jsonl").is_file():
            raise OpticalError(f"--out {out} is not empty and holds no BEIR collection; pick another --out")
        if not overwrite:
            raise OpticalError(f"--out {out} holds a collection; pick another --out, or pass --overwrite to replace it whole")
    task = sentence_task(data_dir, lang, ["en"], split)
    write_beir(out, task.queries, task.candidates, task.qrels, split)
    return read_collection(out, split, strict=True)
