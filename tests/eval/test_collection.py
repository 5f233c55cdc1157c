"""Your own collection: BEIR / TREC layouts through ``optical evaluate --collection``, on tiny real models."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import signal

import numpy as np
import pytest

from optical.cli import main
from optical.data.beir import read_collection
from optical.errors import OpticalError
from optical.eval.collection import (
    EXACT_BELOW,
    CollectionConfig,
    DiskVectors,
    IndexKind,
    IndexPlan,
    build_index,
    encode_to_disk,
    evaluate_collection,
    exact_top_k,
    search,
    tune_breadth,
)
from optical.eval.results import EvalRun
from optical.eval.scoring import dense_search
from optical.models.encoder import Encoder
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
    # Written whole: another split into the same dir would drop qrels/test.tsv, so it needs --overwrite.
    assert main(["data", "export-beir", "--lang", "el", "--split", "dev", "--out", str(beir)]) == 2
    assert (beir / "qrels" / "test.tsv").is_file()
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
    base = ["evaluate", "--collection", str(beir), "--query-lang", "el", "--student", "zero-shot", "--teacher", str(teacher)]
    base += ["--device", "cpu", "--quiet"]
    # 400 documents >= --exact-below 100: the size-based choice takes IVF, 400 // 40 = 10 lists.
    late_interaction = ["--scoring", "dense,maxsim", "--maxsim-exact-below", "100"]
    assert main([*base, "--out", str(tmp_path / "ivf"), "--exact-below", "100", *late_interaction]) == 0
    printed = capsys.readouterr().out
    assert "approximate search: IVF (nlist=10, nprobe=" in printed and "recall@10 against exact search" in printed
    run = EvalRun.load(tmp_path / "ivf")
    described = run.config["collection"]
    assert described["search"] == "approximate" and described["index"]["kind"] == "ivf" and described["index"]["lists"] == 10
    ann = described["ann"]
    assert ann["documents"] == 400 and ann["sample"] == 40 and ann["breadth_name"] == "nprobe"
    # The target is held against the recall's 95% lower bound over the sampled queries (an exhaustive IVF search: 1.0).
    assert ann["recall_at_10"] >= ann["recall_at_10_low"] >= ann["recall_target"] == 0.95 or ann["breadth"] == 10
    assert ann["tried"][-1] == [ann["breadth"], ann["recall_at_10"], ann["recall_at_10_low"]]
    assert all(low < 0.95 for _, _, low in ann["tried"][:-1])  # the narrowest breadth reaching the target
    print(f"IVF recall@10 on the 400-document test collection: {ann['recall_at_10']:.4f} at nprobe {ann['breadth']}")
    assert set(run.tasks) == {"collection.el", "collection_maxsim.el"}
    dense, late = run.tasks["collection.el"].run, run.tasks["collection_maxsim.el"].run
    assert all(set(late[q]) <= set(dense[q]) for q in dense)  # a rerank of the dense candidates only
    # 400 documents >= --maxsim-exact-below 100: the rerank's recall against exact MaxSim is printed and stored.
    assert "MaxSim candidate stage: exact MaxSim reranks the dense top 100 of 400 documents" in printed
    checked = described["maxsim"]
    assert checked["documents"] == 400 and checked["sample"] == 40 and checked["depth"] == 100 and not checked["tuned"]
    assert 0.0 <= checked["recall_at_10_low"] <= checked["recall_at_10"] <= 1.0
    assert checked["tried"] == [[100, checked["recall_at_10"], checked["recall_at_10_low"]]]
    print(f"MaxSim rerank recall@10 on the 400-document test collection: {checked['recall_at_10']:.4f}")
    # A forced kind overrides the size; the corpus vectors come from the cache the first run wrote.
    assert main([*base, "--out", str(tmp_path / "hnsw"), "--index", "hnsw", "--recall-target", "0.9"]) == 0
    assert "approximate search: HNSW (M=32, efSearch=" in capsys.readouterr().out
    hnsw = EvalRun.load(tmp_path / "hnsw").config["collection"]["ann"]
    assert hnsw["breadth_name"] == "efSearch" and hnsw["recall_target"] == 0.9 and 0.9 <= hnsw["recall_at_10_low"] <= 1.0
    assert (
        main([*base, "--out", str(tmp_path / "exact"), "--index", "exact", "--exact-below", "100", "--scoring", "dense,maxsim"])
        == 0
    )
    exact = EvalRun.load(tmp_path / "exact")
    assert exact.config["collection"]["search"] == "exact" and exact.config["collection"]["ann"] is None
    # Below the default --maxsim-exact-below, MaxSim is exact over every document: no candidate stage to check.
    assert exact.config["collection"]["maxsim"] is None
    assert all(len(ranking) == 100 for ranking in exact.tasks["collection_maxsim.el"].run.values())  # all 400 scored
    printed = capsys.readouterr().out
    assert "approximate search" not in printed and "MaxSim candidate stage" not in printed


def test_index_is_chosen_by_collection_size():
    assert IndexPlan.choose(EXACT_BELOW - 1).kind is IndexKind.EXACT
    for documents in (EXACT_BELOW, 1_000_000, 30_000_000):
        plan = IndexPlan.choose(documents)
        assert plan.kind is IndexKind.IVF and plan.approximate
        assert 4 * math.sqrt(documents) <= plan.lists + 0.5 <= 16 * math.sqrt(documents)
        assert plan.train_size == 40 * plan.lists < documents
        assert plan.breadths(100)[0] == 1 and plan.breadths(100)[-1] == plan.lists  # up to exhaustive
    assert IndexPlan.choose(2_000_000, IndexKind.EXACT).kind is IndexKind.EXACT  # forced
    assert IndexPlan.choose(50, IndexKind.HNSW).kind is IndexKind.HNSW
    assert IndexPlan.choose(500, exact_below=100).kind is IndexKind.IVF
    small = IndexPlan.choose(1000, IndexKind.IVF)  # 4 * sqrt(1000) = 126 lists would get 8 training points each
    assert small.lists == 25 and small.train_size == 1000
    assert IndexPlan.choose(10, IndexKind.IVF).lists == 1
    assert IndexPlan.choose(10**6, IndexKind.HNSW).breadths(100) == [100, 200, 400, 800, 1600, 3200, 4096]
    assert IndexPlan.choose(10**6).factory == "IVF4000,Flat" and IndexPlan.choose(9).factory == "Flat"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--index", "annoy"], "unknown index 'annoy'; choose from auto, exact, ivf, hnsw"),
        (["--recall-target", "1.5"], "recall target must be in (0, 1], got 1.5"),
        (["--exact-below", "0"], "exact_below must be >= 1, got 0"),
    ],
)
def test_bad_index_options_are_one_line(teacher, tmp_path, mirror_dir, capsys, flags, message):
    beir, _ = small_beir(tmp_path / "beir", mirror_dir)
    argv = ["evaluate", "--collection", str(beir), "--query-lang", "el", "--student", "zero-shot", "--teacher", str(teacher)]
    assert main([*argv, "--out", str(tmp_path / "never"), *flags]) == 2
    assert message in one_error_line(capsys) and not (tmp_path / "never").exists()
    assert main(["evaluate", "--student", "zero-shot", "--out", str(tmp_path / "x"), *flags]) == 2
    assert "with --collection DIR" in one_error_line(capsys)


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
    (beir / "queries.jsonl").write_text(queries + '{"_id": "q-blank", "text": " "}\n', encoding="utf-8")
    assert "1 queries have no text (first: 'q-blank')" in fails(beir)
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
    trec = tmp_path / "trec-both"
    trec.mkdir()
    for name in ("topics.tsv", "corpus.tsv", "corpus.jsonl", "qrels.txt"):
        (trec / name).write_text("", encoding="utf-8")
    assert "holds both corpus.jsonl and corpus.tsv" in fails(trec)
    assert "--collection needs --query-lang" in (
        main(["evaluate", "--collection", str(beir), "--student", "zero-shot", "--out", str(tmp_path / "x")]) == 2
        and one_error_line(capsys)
    )


def unit_vectors(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype("float32")
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def hashed_encode(texts) -> np.ndarray:
    """A deterministic stand-in encoder: each text's vector depends on the text alone."""
    return np.stack([unit_vectors(1, 8, int.from_bytes(text.encode()[-4:], "little"))[0] for text in texts])


def test_ann_recall_is_the_overlap_with_exact_search(tmp_path):
    docs, queries = unit_vectors(4000, 16, 0), unit_vectors(300, 16, 1)
    np.save(tmp_path / "docs.npy", docs)
    vectors = DiskVectors.open(tmp_path / "docs.npy", block_rows=700)  # several blocks, the last one short
    qids, dids = [f"q{i}" for i in range(300)], [f"d{i}" for i in range(4000)]
    exact = dense_search(queries, docs, qids, dids, k=10)
    # The exact top 10 computed block by block from the file is the in-memory exact search's.
    assert [[dids[j] for j in row] for row in exact_top_k(queries, vectors, 10)] == [list(exact[q]) for q in qids]
    plan = IndexPlan.choose(4000, IndexKind.IVF)
    index = build_index(plan, vectors)
    check = tune_breadth(index, plan, queries, vectors, target=0.9, k=10, sample=100)
    approximate = search(index, queries, qids, dids, k=10)  # searched at the tuned nprobe
    rows = sorted(random.Random(0).sample(range(300), 100))
    expected = np.mean([len(set(exact[qids[r]]) & set(approximate[qids[r]])) / 10 for r in rows])
    assert check.sample == 100 and check.recall_at_10 == pytest.approx(expected) and check.met
    per_query = [len(set(exact[qids[r]]) & set(approximate[qids[r]])) / 10 for r in rows]
    assert check.recall_at_10_low == pytest.approx(expected - 1.645 * np.std(per_query, ddof=1) / 10)
    assert check.recall_at_10_low >= 0.9
    assert [breadth for breadth, _, _ in check.tried] == plan.breadths(10)[: len(check.tried)] and check.breadth < plan.lists
    assert all(low < 0.9 for _, _, low in check.tried[:-1])
    assert index.nprobe == check.breadth and check.index == f"IVF (nlist={plan.lists}, nprobe={check.breadth})"


def test_streamed_encoding_equals_in_memory_encoding(teacher, tmp_path):
    encoder = Encoder.load(teacher)
    texts = [f"document {i} about " + "words " * (i % 23) for i in range(300)]
    streamed = encode_to_disk(
        lambda block: encoder.encode(block, kind="passage"), texts, encoder.hidden_size, tmp_path / "v.npy", block_rows=64
    )
    on_disk = np.load(tmp_path / "v.npy")
    assert (streamed.rows, streamed.dim) == on_disk.shape == (300, encoder.hidden_size)
    # Equal up to float rounding: blocks pad their batches to other lengths than one pass over everything.
    np.testing.assert_allclose(on_disk, encoder.encode(texts, kind="passage"), rtol=0, atol=1e-6)
    assert np.array_equal(np.concatenate(list(streamed.blocks())), on_disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy", "v.npy.lock"]  # no partial file or ledger left


def _encode_then_die(texts, path, dies_at: int) -> None:
    """Encode block by block and SIGKILL this process while encoding block ``dies_at`` (no cleanup runs)."""
    blocks = iter(range(10**6))

    def encode(block):
        if next(blocks) == dies_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return hashed_encode(block)

    encode_to_disk(encode, texts, 8, path, block_rows=50)


def test_killed_encoding_resumes_without_encoding_done_blocks_again(tmp_path):
    texts = [f"text {i}" for i in range(230)]
    path = tmp_path / "v.npy"
    child = multiprocessing.get_context("fork").Process(target=_encode_then_die, args=(texts, path, 3))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert not path.exists() and json.loads((tmp_path / "v.npy.progress").read_text())["rows"] == 150
    encoded = []

    def counting_encode(block):
        encoded.extend(block)
        return hashed_encode(block)

    vectors = encode_to_disk(counting_encode, texts, 8, path, block_rows=50)
    assert encoded == texts[150:]  # the three blocks on disk were not encoded again
    assert np.array_equal(np.load(path), hashed_encode(texts)) and vectors.rows == 230
    assert not (tmp_path / "v.npy.partial").exists() and not (tmp_path / "v.npy.progress").exists()
    assert encode_to_disk(counting_encode, texts, 8, path, block_rows=50) == vectors and len(encoded) == 80  # taken as it is
    # A partial file of another shape (e.g. the corpus changed between runs) is not resumed.
    other = tmp_path / "w.npy"
    child = multiprocessing.get_context("fork").Process(target=_encode_then_die, args=(texts, other, 1))
    child.start()
    child.join(30)
    encoded.clear()
    shorter = encode_to_disk(counting_encode, texts[:120], 8, other, block_rows=50)
    assert np.array_equal(np.load(shorter.path), hashed_encode(texts[:120]))
    assert encoded == texts[:120]
