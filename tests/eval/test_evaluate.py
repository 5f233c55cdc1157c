"""End-to-end evaluation: tiny students for the mechanics, the real default model for the sanity floor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optical.cli import main
from optical.errors import OpticalError
from optical.eval import maxsim
from optical.eval.evaluate import EvalConfig, evaluate
from optical.eval.results import EvalRun
from optical.models.encoder import Encoder
from optical.models.tiny import make_tiny_model
from optical.train import DistillConfig, distill
from optical.train.precision import resolve_precision


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mirror_dir):
    """A tiny teacher and a student distilled from it (shared by the tests of this module)."""
    root = tmp_path_factory.mktemp("evaluate")
    teacher = make_tiny_model(root / "teacher", seed=0)
    config = DistillConfig(
        lang="el",
        method="ot",
        out_dir=str(root / "run"),
        teacher=str(teacher),
        budget=64,
        batch_size=16,
        max_length=32,
        select_on="none",
        device="cpu",
        data_dir=str(mirror_dir),
    )
    distill(config, progress=False)
    return teacher, root / "run"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch, mirror_dir):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))


def test_every_task_writes_rescorable_results(tiny_run, tmp_path, monkeypatch, capsys):
    teacher, run_dir = tiny_run
    out = tmp_path / "eval"
    # The dev split (8 articles) keeps exact MaxSim over paragraphs small; the mechanics are the same. The LAReQA pool
    # (11 languages) is made big enough for the MaxSim candidate stage; the sentences of one language are not.
    monkeypatch.setattr(maxsim, "MAXSIM_EXACT_BELOW", 1000)
    result = evaluate(
        EvalConfig(
            student=str(run_dir),
            out_dir=str(out),
            langs=["el"],
            teacher=str(teacher),
            scoring=["dense", "maxsim"],
            split="dev",
            device="cpu",
        ),
        progress=False,
    )
    assert set(result.tasks) == {
        "clir_sentence.el",
        "clir_sentence_maxsim.el",
        "clir_paragraph.el",
        "clir_paragraph_maxsim.el",
        "pool.el",
        "pool_maxsim.el",
        "align_x2en.el",
        "align_en2x.el",
        "retention.en",
        "retention_maxsim.en",
    }
    loaded = EvalRun.load(out)
    assert loaded.tasks["clir_sentence.el"].aggregates == result.tasks["clir_sentence.el"].aggregates
    assert result.tasks["align_x2en.el"].n_queries == 1012
    assert "LangShare@10" in result.tasks["pool.el"].aggregates and "LangShare@10" in result.tasks["pool_maxsim.el"].aggregates
    # The pool's MaxSim reranks dense candidates: its recall@10 against exact MaxSim is printed and stored.
    (check,) = loaded.config["maxsim_candidates"].values()
    assert list(loaded.config["maxsim_candidates"]) == ["pool_maxsim.el"]
    assert check["documents"] > 1000 and check["sample"] == 200 and check["recall_target"] == 0.95
    assert check["depth"] == check["tried"][-1][0] and (check["recall_at_10_low"] >= 0.95 or check["depth"] == check["documents"])
    assert "pool_maxsim.el: MaxSim candidate stage: exact MaxSim reranks the dense top" in capsys.readouterr().out
    assert 0 < result.timings["forward_fraction"] <= 1
    import ir_measures

    qrels = list(ir_measures.read_trec_qrels(str(out / "qrels" / "clir_sentence.el.qrels")))
    run = list(ir_measures.read_trec_run(str(out / "runs" / "clir_sentence.el.trec")))
    rescored = ir_measures.calc_aggregate([ir_measures.R @ 10], qrels, run)
    assert rescored[ir_measures.R @ 10] == pytest.approx(result.tasks["clir_sentence.el"].aggregates["R@10"], abs=1e-9)


def test_query_noise_changes_queries_deterministically(tiny_run, tmp_path):
    teacher, run_dir = tiny_run
    results = [
        evaluate(
            EvalConfig(
                student=str(run_dir),
                out_dir=str(tmp_path / name),
                langs=["el"],
                teacher=str(teacher),
                tasks=["clir_sentence"],
                query_noise=noise,
                device="cpu",
            ),
            progress=False,
        )
        for name, noise in (("clean", 0.0), ("noisy-a", 0.3), ("noisy-b", 0.3))
    ]
    clean, noisy_a, noisy_b = (r.tasks["clir_sentence.el"].per_query["RR@10"] for r in results)
    assert noisy_a == noisy_b
    assert noisy_a != clean


def test_distilled_student_loads_in_sentence_transformers(tiny_run):
    from sentence_transformers import SentenceTransformer

    _, run_dir = tiny_run
    texts = ["Πού βρίσκεται η Αθήνα;", "Ποιος έγραψε την Οδύσσεια;"]
    ours = Encoder.load(run_dir / "student").encode(texts, kind="query")
    theirs = SentenceTransformer(str(run_dir / "student"), device="cpu").encode(
        texts, prompt=Encoder.load(run_dir / "student").prefix("query"), normalize_embeddings=True
    )
    assert np.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--langs", "xx"], "xx"),
        (["--langs", "ro"], "XQuAD-R"),
        (["--tasks", "clir_sentence,bogus"], "bogus"),
    ],
)
def test_bad_input_is_one_line(tiny_run, tmp_path, capsys, argv, fragment):
    teacher, run_dir = tiny_run
    code = main(["evaluate", "--student", str(run_dir), "--out", str(tmp_path / "e"), "--teacher", str(teacher), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and len(err.splitlines()) == 1


def test_student_without_run_json_or_with_another_teacher_is_refused(tiny_run, tmp_path):
    teacher, run_dir = tiny_run
    with pytest.raises(OpticalError, match="run.json"):
        evaluate(EvalConfig(student=str(tmp_path), out_dir=str(tmp_path / "e"), teacher=str(teacher)), progress=False)
    with pytest.raises(OpticalError, match="teacher"):
        evaluate(EvalConfig(student=str(run_dir), out_dir=str(tmp_path / "e"), teacher="multilingual-e5-small"), progress=False)


def test_out_holding_another_evaluation_is_refused_and_overwrite_replaces_it_whole(tiny_run, tmp_path):
    teacher, run_dir = tiny_run
    out = tmp_path / "e"

    def config(student: str, tasks: list[str]) -> EvalConfig:
        return EvalConfig(student=student, out_dir=str(out), teacher=str(teacher), tasks=tasks, split="dev", device="cpu")

    evaluate(config(str(run_dir), ["clir_sentence", "align"]), progress=False)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(OpticalError, match="holds another evaluation") as err:
        evaluate(config("zero-shot", ["align"]), progress=False)
    assert "--overwrite" in str(err.value) and sorted(p.relative_to(out) for p in out.rglob("*")) == before
    evaluate(config("zero-shot", ["align"]), progress=False, overwrite=True)
    loaded = EvalRun.load(out)
    assert loaded.is_zero_shot and set(loaded.tasks) == {"align_x2en.el", "align_en2x.el"}
    assert not list(out.rglob("*clir_sentence*"))  # nothing of the replaced run is left beside it
    with pytest.raises(OpticalError, match="holds a distillation run"):
        evaluate(EvalConfig(student="zero-shot", out_dir=str(run_dir), teacher=str(teacher), device="cpu"), progress=False)


def test_a_truncated_student_is_refused_before_loading(tiny_run, tmp_path):
    teacher, run_dir = tiny_run
    copy = tmp_path / "run"
    import shutil

    shutil.copytree(run_dir, copy)
    weights = copy / "student" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(OpticalError, match="model.safetensors changed since the run finished"):
        evaluate(EvalConfig(student=str(copy), out_dir=str(tmp_path / "e"), teacher=str(teacher), device="cpu"), progress=False)
    assert not (tmp_path / "e").exists()


def test_zero_shot_default_model_is_far_above_chance_and_best_in_english(tmp_path):
    """Sanity floor on the XQuAD dev split (fast enough for CI): R@10 > 0.5 for every language, en->en on top."""
    langs = ["ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    result = evaluate(
        EvalConfig(
            student="zero-shot",
            out_dir=str(tmp_path / "zs"),
            langs=langs,
            split="dev",
            tasks=["clir_sentence", "retention"],
            device="cpu",
        ),
        progress=False,
    )
    english = result.tasks["retention.en"].aggregates["RR@10"]
    for lang in langs:
        aggregates = result.tasks[f"clir_sentence.{lang}"].aggregates
        assert aggregates["R@10"] > 0.5, lang
        assert english > aggregates["RR@10"], lang


def test_each_distinct_query_is_encoded_once_per_student_across_tasks(tiny_run, tmp_path, monkeypatch):
    """CLIR and the pool share their queries: the student encodes each distinct text once per evaluation."""
    teacher, run_dir = tiny_run
    calls: list[tuple[int, str, str]] = []
    original = Encoder.encode

    def counting(self, texts, kind="plain", **kwargs):
        calls.extend((id(self), kind, text) for text in texts)
        return original(self, texts, kind=kind, **kwargs)

    monkeypatch.setattr(Encoder, "encode", counting)
    config = EvalConfig(
        student=str(run_dir),
        out_dir=str(tmp_path / "eval"),
        langs=["el"],
        teacher=str(teacher),
        tasks=["clir_sentence", "pool"],
        split="dev",
        device="cpu",
    )
    result = evaluate(config, progress=False)
    assert {"clir_sentence.el", "pool.el"} <= set(result.tasks)
    queries = [call for call in calls if call[1] == "query"]
    assert queries and len(queries) == len(set(queries))  # no text twice through the same encoder
    asked = result.tasks["clir_sentence.el"].n_queries + result.tasks["pool.el"].n_queries
    assert len(queries) < asked  # the pool's queries came from the memo


def test_evaluation_precision_is_recorded_cached_apart_and_legacy_runs_read_as_fp32(tiny_run, tmp_path):
    teacher, run_dir = tiny_run

    def config(precision: str, out: str) -> EvalConfig:
        return EvalConfig(
            student=str(run_dir),
            out_dir=str(tmp_path / out),
            teacher=str(teacher),
            tasks=["align"],
            device="cpu",
            mixed_precision=precision,
        )

    cache = tmp_path / "cache" / "doc_cache"
    fp32 = evaluate(config("no", "fp32"), progress=False)
    fp32_entries = set(cache.iterdir())
    bf16 = evaluate(config("bf16", "bf16"), progress=False)
    assert (fp32.config["eval"]["mixed_precision"], bf16.config["eval"]["mixed_precision"]) == ("no", "bf16")
    assert len(set(cache.iterdir()) - fp32_entries) == len(fp32_entries)  # the teacher's bf16 embeddings: new entries
    # auto is recorded as what it became here, and is the same evaluation as the precision it names
    resolved = resolve_precision("cpu", "auto")
    assert (
        evaluate(config("auto", {"no": "fp32", "bf16": "bf16"}[resolved]), progress=False).config["eval"]["mixed_precision"]
        == resolved
    )
    # An eval.json written before evaluation had a precision ran in fp32: it is this fp32 evaluation, reused.
    eval_json = tmp_path / "fp32" / "eval.json"
    held = json.loads(eval_json.read_text())
    del held["config"]["eval"]["mixed_precision"]
    eval_json.write_text(json.dumps(held))
    before = eval_json.stat().st_mtime_ns
    evaluate(config("no", "fp32"), progress=False)
    assert eval_json.stat().st_mtime_ns == before
    with pytest.raises(OpticalError, match="differs in mixed_precision"):
        evaluate(config("bf16", "fp32"), progress=False)


def test_maxsim_tasks_must_have_maxsim_scoring(tmp_path):
    config = EvalConfig(student="zero-shot", out_dir=str(tmp_path / "out"), scoring=["dense", "maxsim"], maxsim_tasks=["align"])
    with pytest.raises(OpticalError, match="task align has no MaxSim scoring; MaxSim tasks: clir_sentence, clir_paragraph, pool"):
        config.validate()
    with pytest.raises(OpticalError, match="unknown task 'clir'"):
        EvalConfig(student="zero-shot", out_dir=str(tmp_path / "out"), scoring=["maxsim"], maxsim_tasks=["clir"]).validate()
    with pytest.raises(OpticalError, match="--maxsim-tasks goes with --scoring dense,maxsim"):
        EvalConfig(student="zero-shot", out_dir=str(tmp_path / "out"), maxsim_tasks=["clir_sentence"]).validate()


def test_maxsim_only_on_the_tasks_named_and_teacher_tokens_cached(tiny_run, tmp_path):
    teacher, run_dir = tiny_run
    settings = dict(student=str(run_dir), langs=["el"], teacher=str(teacher), split="dev", device="cpu")
    settings |= dict(tasks=["clir_sentence", "retention"], scoring=["dense", "maxsim"], maxsim_tasks=["clir_sentence"])
    first = evaluate(EvalConfig(out_dir=str(tmp_path / "a"), **settings), progress=False)
    assert set(first.tasks) == {"clir_sentence.el", "clir_sentence_maxsim.el", "retention.en"}
    cached = sorted((tmp_path / "cache" / "doc_cache").glob("*.npz"))
    assert len(cached) == 1  # the English sentences' tokens
    late = "clir_sentence_maxsim.el"
    again = evaluate(EvalConfig(out_dir=str(tmp_path / "b"), **settings), progress=False)
    assert again.tasks[late].per_query == first.tasks[late].per_query
    # The next evaluation reads the teacher's tokens from the cache: negated there, they change its MaxSim.
    with np.load(cached[0]) as held:
        tokens, counts = held["tokens"], held["counts"]
    with open(cached[0], "wb") as handle:
        np.savez(handle, tokens=-tokens, counts=counts)
    flipped = evaluate(EvalConfig(out_dir=str(tmp_path / "c"), **settings), progress=False)
    assert flipped.tasks[late].per_query != first.tasks[late].per_query
    assert flipped.tasks["clir_sentence.el"].per_query == first.tasks["clir_sentence.el"].per_query
