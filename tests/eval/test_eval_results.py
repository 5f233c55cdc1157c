"""EvalRun save/load round trip and the errors on missing or corrupt files."""

from __future__ import annotations

import json

import ir_measures
import pytest

from optical.errors import OpticalError
from optical.eval.metrics import MEASURES, score_run
from optical.eval.results import EvalRun, TaskResult

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
RUN = {"q1": {"d1": 0.9, "d2": 0.1}, "q2": {"d1": 0.8, "d2": 0.7}}


def _eval_run() -> EvalRun:
    metrics = score_run(QRELS, RUN)
    tasks = {
        "clir_sentence.el": TaskResult.from_metrics("clir_sentence.el", "el", "fp-el", metrics, RUN, QRELS),
        "retention.en": TaskResult.from_metrics("retention.en", "en", "fp-en", score_run(QRELS, RUN, ["AP"])),
    }
    return EvalRun(
        system="optical",
        student="runs/student-0",
        teacher="teacher-x",
        split_name="test",
        split_fingerprint="split-fp",
        tasks=tasks,
        config={"k": 100},
        timings={"encode_s": 1.5},
        versions={"optical": "0.1.0"},
    )


def test_save_load_round_trip(tmp_path):
    original = _eval_run()
    original.save(tmp_path / "run")
    loaded = EvalRun.load(tmp_path / "run")
    assert loaded == original
    summary = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert summary["split"] == {"name": "test", "fingerprint": "split-fp"}
    assert summary["tasks"]["clir_sentence.el"]["n_queries"] == 3
    assert summary["tasks"]["retention.en"]["files"]["run"] is None
    assert not (tmp_path / "run" / "runs" / "retention.en.trec").exists()
    line = (tmp_path / "run" / "per_query" / "clir_sentence.el.tsv").read_text().splitlines()[0]
    assert len(line.split("\t")) == 3
    # The stored TREC files re-score to the stored aggregates.
    direct = ir_measures.calc_aggregate(
        list(MEASURES.values()),
        ir_measures.read_trec_qrels(str(tmp_path / "run" / "qrels" / "clir_sentence.el.qrels")),
        ir_measures.read_trec_run(str(tmp_path / "run" / "runs" / "clir_sentence.el.trec")),
    )
    for name, measure in MEASURES.items():
        assert loaded.tasks["clir_sentence.el"].aggregates[name] == pytest.approx(direct[measure])
    without = EvalRun.load(tmp_path / "run", with_trec=False)
    assert without.tasks["clir_sentence.el"].run is None and without.tasks["clir_sentence.el"].per_query


def test_compressed_copy_loads_the_same_per_query_values_and_is_reproducible(tmp_path):
    original = _eval_run()
    first = original.save(tmp_path / "a", compress=True)
    original.save(tmp_path / "b", compress=True)
    gz = first / "per_query" / "clir_sentence.el.tsv.gz"
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert gz.read_bytes() == (tmp_path / "b" / "per_query" / "clir_sentence.el.tsv.gz").read_bytes()
    loaded = EvalRun.load(first)
    assert {k: t.per_query for k, t in loaded.tasks.items()} == {k: t.per_query for k, t in original.tasks.items()}
    gz.write_bytes(gz.read_bytes()[:20])  # truncated
    with pytest.raises(OpticalError, match="clir_sentence.el.tsv.gz cannot be read"):
        EvalRun.load(first)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(OpticalError, match="eval.json is missing"):
        EvalRun.load(tmp_path)
    _eval_run().save(tmp_path)
    (tmp_path / "runs" / "clir_sentence.el.trec").unlink()
    with pytest.raises(OpticalError, match=r"clir_sentence\.el\.trec is missing"):
        EvalRun.load(tmp_path)
    _eval_run().save(tmp_path)
    (tmp_path / "per_query" / "retention.en.tsv").unlink()
    with pytest.raises(OpticalError, match=r"retention\.en\.tsv is missing"):
        EvalRun.load(tmp_path)


def test_corrupt_files_are_named(tmp_path):
    _eval_run().save(tmp_path)
    (tmp_path / "eval.json").write_text("{not json")
    with pytest.raises(OpticalError, match="eval.json is not valid JSON"):
        EvalRun.load(tmp_path)

    _eval_run().save(tmp_path)
    summary = json.loads((tmp_path / "eval.json").read_text())
    del summary["split"]["fingerprint"]
    (tmp_path / "eval.json").write_text(json.dumps(summary))
    with pytest.raises(OpticalError, match="split.fingerprint is missing"):
        EvalRun.load(tmp_path)

    _eval_run().save(tmp_path)
    per_query = tmp_path / "per_query" / "clir_sentence.el.tsv"
    per_query.write_text(per_query.read_text().replace("\t1.0\n", "\tone\n", 1))
    with pytest.raises(OpticalError, match=r"clir_sentence\.el\.tsv:\d+: value 'one'"):
        EvalRun.load(tmp_path)

    _eval_run().save(tmp_path)
    lines = per_query.read_text().splitlines(keepends=True)
    per_query.write_text("".join(line for line in lines if not line.startswith("q1\tRR@10")))
    with pytest.raises(OpticalError, match="mean RR@10"):
        EvalRun.load(tmp_path)

    _eval_run().save(tmp_path)
    run_file = tmp_path / "runs" / "clir_sentence.el.trec"
    run_file.write_text(run_file.read_text() + "q9 Q0 d1 1\n")
    with pytest.raises(OpticalError, match=r"clir_sentence\.el\.trec:\d+: expected 6"):
        EvalRun.load(tmp_path)


def test_task_keys_are_checked():
    with pytest.raises(OpticalError, match="task key 'pool'"):
        TaskResult("pool", "el", 0, "fp", {}, {})
