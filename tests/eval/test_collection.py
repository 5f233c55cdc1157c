"""Your own collection: BEIR / TREC layouts through ``optical evaluate --collection``, on tiny real models."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from optical.cli import main
from optical.data.beir import read_collection
from optical.errors import OpticalError
from optical.eval.collection import CollectionConfig, ann_recall, evaluate_collection, hnsw_search
from optical.eval.results import EvalRun
from optical.eval.scoring import dense_search
from optical.models.tiny import make_tiny_model


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("collection") / "teacher", seed=0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch, mirror_dir):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optical: error: "), err
    return err


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def small_beir(out, mirror, n_docs=60, n_queries=12):
    """A Greek-query / English-document BEIR collection from the first NTREX pairs (not FLORES devtest)."""
    with open(mirror / "bitext/ntrex128/en-el.tsv", encoding="utf-8") as handle:
        pairs = [line.rstrip("\n").split("\t") for line, _ in zip(handle, range(n_docs))]
    (out / "qrels").mkdir(parents=True)
    _write_jsonl(out / "corpus.jsonl", [{"_id": f"d{i}", "title": "", "text": en} for i, (en, _) in enumerate(pairs)])
    _write_jsonl(out / "queries.jsonl", [{"_id": f"q{i}", "text": el} for i, (_, el) in enumerate(pairs[:n_queries])])
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(n_queries)]
    (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out, pairs


def test_export_round_trip_equals_the_builtin_task(teacher, tmp_path, capsys):
    """The XQuAD-R el->en sentence task exported to BEIR scores exactly as clir_sentence.el."""
    beir = tmp_path / "beir-el"
    assert main(["data", "export-beir", "--lang", "el", "--split", "test", "--out", str(beir)]) == 0
    assert "978 queries, 964 documents" in capsys.readouterr().out
    assert sorted(p.name for p in beir.iterdir()) == ["corpus.jsonl", "qrels", "queries.jsonl"]
    common = ["--student", "zero-shot", "--teacher", str(teacher), "--device", "cpu", "--quiet"]
    assert main(["evaluate", "--langs", "el", "--tasks", "clir_sentence", "--out", str(tmp_path / "builtin"), *common]) == 0
    argv = ["--collection", str(beir), "--query-lang", "el", "--passage-max-length", "128", "--strict"]
    assert main(["evaluate", *argv, "--task-name", "clir_sentence", "--out", str(tmp_path / "mine"), *common]) == 0
    builtin = EvalRun.load(tmp_path / "builtin").tasks["clir_sentence.el"]
    mine = EvalRun.load(tmp_path / "mine").tasks["clir_sentence.el"]
    assert mine.n_queries == builtin.n_queries == 978
    assert mine.per_query == builtin.per_query and mine.aggregates == builtin.aggregates
    assert mine.run == builtin.run and mine.qrels == builtin.qrels
    assert (tmp_path / "mine" / "runs" / "clir_sentence.el.trec").read_text() == (
        tmp_path / "builtin" / "runs" / "clir_sentence.el.trec"
    ).read_text()


def test_beir_and_trec_layouts_agree_and_compare_works(teacher, tmp_path, mirror_dir, capsys):
    beir, pairs = small_beir(tmp_path / "beir", mirror_dir)
    trec = tmp_path / "trec"
    trec.mkdir()
    (trec / "topics.tsv").write_text("".join(f"q{i}\t{el}\n" for i, (_, el) in enumerate(pairs[:12])), encoding="utf-8")
    (trec / "corpus.tsv").write_text("".join(f"d{i}\t{en}\n" for i, (en, _) in enumerate(pairs)), encoding="utf-8")
    (trec / "qrels.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in range(12)), encoding="utf-8")
    runs = {}
    for name, path in (("beir", beir), ("trec", trec)):
        out = str(tmp_path / f"out-{name}")
        config = CollectionConfig(str(path), "el", "zero-shot", out, teacher=str(teacher), device="cpu", system=f"zs-{name}")
        runs[name] = evaluate_collection(config, progress=False, log=lambda line: None)
    assert runs["beir"].tasks["collection.el"].per_query == runs["trec"].tasks["collection.el"].per_query
    assert runs["beir"].split_fingerprint == runs["trec"].split_fingerprint
    assert runs["beir"].config["collection"]["layout"] == "beir" and runs["trec"].config["collection"]["layout"] == "trec"
    # The run dir is the usual format: `optical compare` reads two of them unchanged.
    assert main(["compare", str(tmp_path / "out-beir"), str(tmp_path / "out-trec"), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "comparison.json").is_file()


def test_approximate_index_recall_is_measured_and_maxsim_reranks(teacher, tmp_path, mirror_dir, capsys):
    beir, _ = small_beir(tmp_path / "beir", mirror_dir, n_docs=400, n_queries=40)
    out = tmp_path / "out"
    argv = ["evaluate", "--collection", str(beir), "--query-lang", "el", "--student", "zero-shot", "--teacher", str(teacher)]
    argv += ["--out", str(out), "--exact-below", "100", "--scoring", "dense,maxsim", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "approximate search: HNSW" in printed and "recall@10 against exact search" in printed
    run = EvalRun.load(out)
    ann = run.config["collection"]["ann"]
    assert ann["documents"] == 400 and ann["sample"] == 40 and 0.5 <= ann["recall_at_10"] <= 1.0
    print(f"HNSW recall@10 on the 400-document test collection: {ann['recall_at_10']:.4f}")
    assert set(run.tasks) == {"collection.el", "collection_maxsim.el"}
    dense, late = run.tasks["collection.el"].run, run.tasks["collection_maxsim.el"].run
    assert all(set(late[q]) <= set(dense[q]) for q in dense)  # a rerank of the dense candidates only


def test_bad_collections_are_one_line_each(teacher, tmp_path, mirror_dir, capsys):
    beir, pairs = small_beir(tmp_path / "beir", mirror_dir)
    base = ["evaluate", "--query-lang", "el", "--student", "zero-shot", "--teacher", str(teacher), "--device", "cpu"]

    def fails(path, *extra) -> str:
        assert main([*base, "--collection", str(path), "--out", str(tmp_path / "never"), *extra]) == 2
        assert not (tmp_path / "never").exists()  # nothing half-written
        return one_error_line(capsys)

    (beir / "qrels" / "test.tsv").rename(beir / "qrels" / "dev.tsv")
    assert "missing qrels/test.tsv (qrels/ has dev: pass --split dev)" in fails(beir)
    (beir / "qrels" / "dev.tsv").rename(beir / "qrels" / "test.tsv")
    corpus = (beir / "corpus.jsonl").read_text(encoding="utf-8")
    (beir / "corpus.jsonl").write_text(corpus + "{not json\n", encoding="utf-8")
    assert f"{beir / 'corpus.jsonl'}:61: not JSON" in fails(beir)
    (beir / "corpus.jsonl").unlink()
    assert "BEIR collection" in fails(beir) and "missing corpus.jsonl" in fails(beir)
    (beir / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    with open(beir / "qrels" / "test.tsv", "a", encoding="utf-8") as qrels:
        qrels.write("q0\tnot-a-doc\t1\nq99\td1\t1\n")
    assert "2 qrels line(s) name unknown query or document ids" in fails(beir, "--strict")
    queries = (beir / "queries.jsonl").read_text(encoding="utf-8")
    (beir / "queries.jsonl").write_text("\n", encoding="utf-8")
    assert "is empty: queries.jsonl has no queries" in fails(beir)
    (beir / "queries.jsonl").write_text(queries, encoding="utf-8")
    lenient = read_collection(beir, query_lang="el")  # without --strict: dropped and counted
    assert lenient.unknown_qrels == 2 and len(lenient.queries) == 12
    with pytest.raises(OpticalError, match="no query of queries.jsonl has a relevant document"):
        (beir / "qrels" / "test.tsv").write_text("q0\td0\t0\n", encoding="utf-8")
        read_collection(beir)
    (beir / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(12)), encoding="utf-8")
    assert "only 0 of 12 queries are written in Thai script" in fails(beir, "--query-lang", "th")
    assert "'xx' is not a valid language code" in fails(beir, "--query-lang", "xx")
    empty = tmp_path / "empty"
    (empty / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (empty / name).write_text("", encoding="utf-8")
    assert "is empty: corpus.jsonl has no documents" in fails(empty)
    assert "is not a directory" in fails(tmp_path / "nowhere")
    assert "--collection needs --query-lang" in (
        main(["evaluate", "--collection", str(beir), "--student", "zero-shot", "--out", str(tmp_path / "x")]) == 2
        and one_error_line(capsys)
    )


def test_ann_recall_is_the_overlap_with_exact_search():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((4000, 16)).astype("float32")
    queries = rng.standard_normal((300, 16)).astype("float32")
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    qids, dids = [f"q{i}" for i in range(300)], [f"d{i}" for i in range(4000)]
    approximate, index = hnsw_search(queries, docs, qids, dids, k=10, ef_search=10)
    recall, sample = ann_recall(index, queries, docs, 100)
    exact = dense_search(queries, docs, qids, dids, k=10)
    rows = random.Random(0).sample(range(300), 100)
    expected = np.mean([len(set(exact[qids[r]]) & set(approximate[qids[r]])) / 10 for r in rows])
    assert sample == 100 and recall == pytest.approx(expected) and 0.5 < recall <= 1.0
