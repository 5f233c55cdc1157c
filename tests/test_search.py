"""``optical search``: a student's queries against a collection's documents, reusing the evaluation's corpus cache."""

from __future__ import annotations

import io
import json
import os

import pytest
import torch

from optical.cli import main
from optical.eval.collection import CollectionConfig, evaluate_collection
from optical.eval.maxsim import maxsim_scores
from optical.eval.results import EvalRun
from optical.models.tiny import make_tiny_model
from optical.search import Scoring, SearchConfig, Searcher, search

N_DOCS, N_QUERIES = 40, 6


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("search") / "teacher", seed=0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch, mirror_dir):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))


@pytest.fixture
def collection(tmp_path, mirror_dir):
    """Greek queries, English documents (the first NTREX pairs), with titles on every other document."""
    with open(mirror_dir / "bitext/ntrex128/en-el.tsv", encoding="utf-8") as handle:
        pairs = [line.rstrip("\n").split("\t") for line, _ in zip(handle, range(N_DOCS))]
    out = tmp_path / "beir"
    (out / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"Title {i}" if i % 2 else "", "text": en} for i, (en, _) in enumerate(pairs)]
    (out / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    queries = [{"_id": f"q{i}", "text": el} for i, (_, el) in enumerate(pairs[:N_QUERIES])]
    (out / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), encoding="utf-8")
    (out / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(N_QUERIES)), encoding="utf-8")
    return out, [el for _, el in pairs[:N_QUERIES]]


def test_search_after_evaluate_reuses_the_cached_encoding_and_ranks_as_it(teacher, tmp_path, collection):
    beir, queries = collection
    config = CollectionConfig(str(beir), "el", "zero-shot", str(tmp_path / "eval"), teacher=str(teacher), device="cpu")
    evaluate_collection(config, progress=False, log=lambda line: None)
    [vectors] = list((tmp_path / "cache" / "collection_vectors").glob("*.npy"))
    written = os.stat(vectors).st_mtime_ns
    searcher = Searcher(SearchConfig(str(beir), teacher=str(teacher), top_k=100, device="cpu"))
    assert searcher.stats.documents_encoded == 0 and searcher.stats.vectors_path == vectors
    assert os.stat(vectors).st_mtime_ns == written
    results = searcher.search(queries, [f"q{i}" for i in range(N_QUERIES)])
    evaluated = EvalRun.load(tmp_path / "eval").tasks["collection.el"].run
    for result in results:
        assert [hit.doc_id for hit in result.hits] == list(evaluated[result.query_id])
        assert [hit.score for hit in result.hits] == pytest.approx(list(evaluated[result.query_id].values()), abs=1e-6)


def test_a_second_search_does_not_encode_the_corpus_again(teacher, collection):
    beir, queries = collection
    first = Searcher(SearchConfig(str(beir), teacher=str(teacher), device="cpu"))
    assert first.stats.documents_encoded == N_DOCS
    written = os.stat(first.stats.vectors_path).st_mtime_ns
    second = Searcher(SearchConfig(str(beir), teacher=str(teacher), device="cpu"))
    assert second.stats.documents_encoded == 0
    assert os.stat(second.stats.vectors_path).st_mtime_ns == written
    assert first.search(queries[:2]) == second.search(queries[:2])


def test_hits_carry_titles_snippets_and_the_top_k(teacher, collection):
    beir, queries = collection
    [result] = search([queries[0]], str(beir), teacher=str(teacher), top_k=7, device="cpu")
    assert result.query_id == "q1" and len(result.hits) == 7
    assert [hit.rank for hit in result.hits] == list(range(1, 8))
    assert [hit.score for hit in result.hits] == sorted((hit.score for hit in result.hits), reverse=True)
    for hit in result.hits:
        number = int(hit.doc_id[1:])
        assert hit.title == (f"Title {number}" if number % 2 else "")
        assert hit.snippet and not hit.snippet.startswith("Title") and hit.maxsim is None and hit.score == hit.dense


def test_maxsim_scoring_reranks_by_the_exact_maxsim_of_the_candidates(teacher, collection):
    beir, queries = collection
    searcher = Searcher(SearchConfig(str(beir), teacher=str(teacher), top_k=5, scoring=Scoring.MAXSIM, device="cpu"))
    [result] = searcher.search([queries[1]])
    assert [hit.score for hit in result.hits] == sorted((hit.score for hit in result.hits), reverse=True)
    q_tokens = [torch.from_numpy(t) for t in searcher.student.encode_tokens([queries[1]], kind="query", max_length=128)]
    doc_ids = [hit.doc_id for hit in result.hits]
    expected = maxsim_scores(q_tokens, searcher.doc_tokens(doc_ids))[0]
    assert [hit.maxsim for hit in result.hits] == pytest.approx(expected.tolist(), abs=1e-4)  # fp32 sums of ~60 maxima
    assert all(hit.score == hit.maxsim and -1.0 <= hit.dense <= 1.0 for hit in result.hits)


def test_cli_prints_text_json_and_trec_and_reads_stdin_and_files(teacher, collection, tmp_path, capsys, monkeypatch):
    beir, queries = collection
    common = ["search", "--collection", str(beir), "--teacher", str(teacher), "--device", "cpu", "--top-k", "3"]
    assert main([*common, queries[0], queries[1]]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"q1  {queries[0]}" and len(text) == 2 * 4
    assert main([*common, "--json", queries[0]]) == 0
    [parsed] = json.loads(capsys.readouterr().out)
    assert parsed["query"] == queries[0] and len(parsed["hits"]) == 3 and set(parsed["hits"][0]) >= {"doc_id", "score"}
    monkeypatch.setattr("sys.stdin", io.StringIO(f"a\t{queries[2]}\n\nb\t{queries[3]}\n"))
    assert main([*common, "--trec", "--tag", "zs"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [(line[0], line[3], line[5]) for line in lines] == [(q, str(r), "zs") for q in "ab" for r in (1, 2, 3)]
    file = tmp_path / "queries.txt"
    file.write_text(f"{queries[4]}\n{queries[5]}\n", encoding="utf-8")
    assert main([*common, "--queries", str(file), "--json"]) == 0
    assert [r["query_id"] for r in json.loads(capsys.readouterr().out)] == ["q1", "q2"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--collection", "{tmp}/nowhere", "hello"], "is not a directory"),
        (["--collection", "{beir}", "   "], "query q1 is empty"),
        (["--collection", "{beir}", "--student", "{tmp}/no-run", "hello"], "no such directory"),
        (["--collection", "{beir}", "--top-k", "0", "hello"], "--top-k must be >= 1"),
        (["--collection", "{beir}", "--scoring", "bm25", "hello"], "unknown scoring 'bm25'"),
        (["--collection", "{beir}", "--queries", "{tmp}/none.txt"], "no such file"),
    ],
)
def test_bad_input_is_one_line(teacher, collection, tmp_path, capsys, argv, message):
    beir, _ = collection
    argv = [arg.format(tmp=tmp_path, beir=beir) for arg in argv]
    assert main(["search", *argv, "--teacher", str(teacher), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optical: error: ") and message in err, err


def test_a_distilled_student_searches_with_its_runs_teacher_and_the_shared_corpus_cache(
    teacher, collection, tmp_path, mirror_dir
):
    from optical.train import DistillConfig, distill

    beir, queries = collection
    run = tmp_path / "run"
    config = DistillConfig(
        lang="el", method="mse", out_dir=str(run), teacher=str(teacher), budget=32, batch_size=16, max_length=32,
        select_on="none", device="cpu", data_dir=str(mirror_dir),
    )  # fmt: skip
    distill(config, progress=False)
    zero_shot = Searcher(SearchConfig(str(beir), teacher=str(teacher), device="cpu"))
    student = Searcher(SearchConfig(str(beir), student=str(run), device="cpu"))  # no --teacher: the run's
    assert student.config.teacher == str(teacher)
    assert student.stats.documents_encoded == 0 and student.stats.vectors_path == zero_shot.stats.vectors_path
    [mine], [theirs] = student.search(queries[:1]), zero_shot.search(queries[:1])
    assert [hit.score for hit in mine.hits] != [hit.score for hit in theirs.hits]  # the student's own query vectors


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_an_approximate_index_is_built_once_and_read_back(teacher, collection, kind):
    beir, queries = collection
    first = Searcher(SearchConfig(str(beir), teacher=str(teacher), index=kind, device="cpu"))
    assert first.stats.index_built and first.stats.recall_at_10 is not None and kind.upper() in first.stats.index
    [saved] = list(first.stats.vectors_path.parent.glob("*.faiss"))
    written = os.stat(saved).st_mtime_ns
    second = Searcher(SearchConfig(str(beir), teacher=str(teacher), index=kind, device="cpu"))
    assert not second.stats.index_built and second.stats.documents_encoded == 0 and os.stat(saved).st_mtime_ns == written
    assert second.stats.index == first.stats.index and first.search(queries) == second.search(queries)
