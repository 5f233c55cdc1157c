"""The model card of a distilled student: written by distill, scored by evaluate, rebuilt for old runs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from optical.cli import main
from optical.eval.evaluate import EvalConfig, evaluate
from optical.models.encoder import Encoder
from optical.models.tiny import make_tiny_model
from optical.train import DistillConfig, distill
from optical.train.card import CARD, read_card
from optical.train.record import RunRecord


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror_dir):
    """A tiny finished OT run (centred costs, eps 0.1) and its teacher, with a private cache."""
    root = tmp_path_factory.mktemp("card")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTICAL_CACHE_DIR", str(root / "cache"))
        teacher = make_tiny_model(root / "teacher", seed=0)
        config = DistillConfig(
            lang="el", method="ot", out_dir=str(root / "run"), teacher=str(teacher), budget=32, batch_size=16,
            max_length=32, select_on="none", device="cpu", data_dir=str(mirror_dir), seed=3,
            center_costs=True, loss_options={"ot": {"eps": 0.1}},
        )  # fmt: skip
        distill(config, progress=False)
    return {"root": root, "teacher": teacher, "run": root / "run", "config": config}


@pytest.fixture(autouse=True)
def cache_env(run, monkeypatch, mirror_dir):
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(run["root"] / "cache"))
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))


def test_distill_writes_a_card_that_sentence_transformers_loads_beside(run):
    student = run["run"] / "student"
    card = read_card(student / CARD)
    record = RunRecord.load(run["run"])
    assert card["library_name"] == "sentence-transformers" and card["language"] == ["el", "en"]
    assert card["base_model"] == str(run["teacher"])  # a tiny dir, not a registry model: its path
    optical = card["optical"]
    assert (optical["method"], optical["seed"], optical["pairs"]) == ("ot", 3, record.bitext.pairs) and record.bitext.pairs == 32
    assert optical["options"]["center_costs"] is True and optical["options"]["loss_options"] == {"ot": {"eps": 0.1}}
    assert optical["selection"]["criterion"] == "none (the last step)" and optical["scores"] == []
    sources = {entry["source"]: entry for entry in optical["bitext"]}
    assert set(sources) == set(card["datasets"]) and sum(entry["pairs"] for entry in sources.values()) == 32
    assert sources["ntrex128"]["license"] == "CC BY-SA 4.0" and sources["xnli_devtest"]["license_class"] == "non-commercial"
    text = (student / CARD).read_text(encoding="utf-8")
    assert "SentenceTransformer(" in text and "AutoModel.from_pretrained" in text and "Not evaluated yet" in text
    record.verify_student()  # the card is not among the recorded student files
    # sentence-transformers loads the directory (the card beside the weights) and encodes as the package does.
    model = SentenceTransformer(str(student), device="cpu")
    ours = Encoder.load(student).encode(["Καλημέρα κόσμε"], kind="plain")
    assert np.allclose(model.encode(["Καλημέρα κόσμε"], normalize_embeddings=True), ours, atol=1e-5)


def test_evaluate_adds_scores_with_confidence_intervals_and_keeps_the_student_valid(run, tmp_path):
    out = tmp_path / "eval"
    config = EvalConfig(student=str(run["run"]), out_dir=str(out), teacher=str(run["teacher"]), tasks=["align"], device="cpu")
    result = evaluate(config, progress=False)
    scores = {s["task"]: s for s in read_card(run["run"] / "student" / CARD)["optical"]["scores"]}
    assert set(scores) == set(result.tasks) == {"align_x2en.el", "align_en2x.el"}
    for key, score in scores.items():
        assert score["measure"] == "R@1" and score["value"] == pytest.approx(result.tasks[key].aggregates["R@1"])
        assert score["ci_low"] <= score["value"] <= score["ci_high"] and score["n_queries"] == 1012
        assert score["system"] == result.system and score["split"] == result.split_name
    RunRecord.load(run["run"]).verify_student()
    evaluate(config, progress=False)  # the finished evaluation, reused: same scores, no duplicate entries
    assert len(read_card(run["run"] / "student" / CARD)["optical"]["scores"]) == 2
    assert "| align_x2en.el | R@1 |" in (run["run"] / "student" / CARD).read_text(encoding="utf-8")


def test_model_card_command_rebuilds_the_card_of_an_old_run(run, tmp_path, capsys):
    out = tmp_path / "eval"
    config = EvalConfig(student=str(run["run"]), out_dir=str(out), teacher=str(run["teacher"]), tasks=["align"], device="cpu")
    evaluate(config, progress=False)
    old = tmp_path / "old-run"
    shutil.copytree(run["run"], old)
    (old / "student" / CARD).unlink()  # a run made before cards existed
    assert main(["model", "card", str(old)]) == 0
    assert read_card(old / "student" / CARD)["optical"]["scores"] == []
    assert main(["model", "card", str(old), "--eval", str(out)]) == 2  # that evaluation was of the other dir
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give evaluations of this run" in err
    (old / "student" / CARD).unlink()
    distill(DistillConfig.from_dict({**run["config"].to_dict(), "out_dir": str(old)}), progress=False)  # reuse: card back
    assert read_card(old / "student" / CARD)["optical"]["method"] == "ot"
    assert main(["model", "card", str(run["run"]), "--eval", str(out)]) == 0
    assert "2 scores added" in capsys.readouterr().out
    assert main(["model", "card", str(tmp_path / "nothing")]) == 2
    assert "has no run.json" in capsys.readouterr().err


def test_an_unwritable_card_warns_and_the_evaluation_still_succeeds(run, tmp_path, caplog):
    blocked = tmp_path / "blocked-run"
    shutil.copytree(run["run"], blocked)
    (blocked / "student" / CARD).unlink()
    (blocked / "student" / CARD).mkdir()  # the card's path cannot take a file (root ignores a read-only chmod)
    config = EvalConfig(
        student=str(blocked), out_dir=str(tmp_path / "e"), teacher=str(run["teacher"]), tasks=["align"], device="cpu"
    )
    result = evaluate(config, progress=False)
    assert set(result.tasks) == {"align_x2en.el", "align_en2x.el"} and (tmp_path / "e" / "eval.json").is_file()
    warning = next(r.getMessage() for r in caplog.records if "model card" in r.getMessage())
    assert f"optical model card {blocked} --eval {tmp_path / 'e'}" in warning
