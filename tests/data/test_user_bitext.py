"""Your own bitext: a TSV path where a source name goes, mixed by the same rules; end to end for Swahili."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from optical.cli import main
from optical.data.bitext import BitextConfig, build_bitext, load_flores_devtest
from optical.errors import OpticalError
from optical.storage import sha256_file


@pytest.fixture
def user_file(tmp_path, mirror_dir):
    """20 fresh Swahili pairs, 2 that are the reserved FLORES devtest (one only after normalisation), 2 bad lines."""
    devtest = load_flores_devtest(mirror_dir, "sw")
    lines = [f"My own English sentence number {i}.\tSentensi yangu ya Kiswahili nambari {i}." for i in range(20)]
    lines += [f"{devtest[5].en}\t{devtest[5].foreign}", f"\u201c{devtest[7].en.upper()}\u201d\tSentensi nyingine kabisa."]
    lines += ["no tab on this line", "Two\ttabs\there"]
    path = tmp_path / "my pairs" / "en-sw.tsv"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_user_file_is_mixed_with_registered_sources(mirror_dir, user_file):
    config = BitextConfig("sw", sources=("ntrex128", str(user_file)), budget=None, seed=1)
    mixture = build_bitext(mirror_dir, config)
    stats = mixture.stats.per_source
    mine = stats[str(user_file)]
    assert mine.license_class == "user" and stats["ntrex128"].license_class == "open"
    assert mine.path == str(user_file.resolve()) and mine.sha256 == sha256_file(user_file)
    assert stats["ntrex128"].path is None and stats["ntrex128"].sha256 is None
    assert (mine.read, mine.malformed, mine.devtest_overlap, mine.selected) == (24, 2, 2, 20)
    assert mine.skipped == {"not_one_tab": 2}
    assert sum(p.source == str(user_file) for p in mixture.pairs) == 20
    assert not any(p.en.startswith(("\u201c", load_flores_devtest(mirror_dir, "sw")[5].en)) for p in mixture.pairs)
    capped = build_bitext(mirror_dir, replace(config, caps={str(user_file): 5}, budget=100))
    assert capped.stats.per_source[str(user_file)].after_cap == 5 and len(capped.pairs) == 100
    assert (
        build_bitext(mirror_dir, replace(config, license_classes=("open", "user"))).stats.per_source[str(user_file)].selected
        == 20
    )
    with pytest.raises(OpticalError, match=r"is license class user; allowed license classes: open \(add user to --licenses"):
        build_bitext(mirror_dir, replace(config, license_classes=("open",)))
    with pytest.raises(OpticalError, match=r"en-sw.tsv:23: not_one_tab"):
        build_bitext(mirror_dir, replace(config, strict=True))


def test_bad_bitext_paths_and_codes_are_one_line(mirror_dir, tmp_path, user_file):
    for sources, expected in (
        ((str(tmp_path / "nope.tsv"),), "bitext file .*nope.tsv does not exist"),
        ((str(user_file.parent),), "bitext path .*my pairs is a directory"),
        (("ntrex",), r"unknown bitext source 'ntrex'; known sources: .* \(or give the path"),
        (("ntrex128", "ntrex128"), "bitext sources repeat"),
        (("xnli_devtest",), "bitext source xnli_devtest has no en-sw pairs"),
    ):
        with pytest.raises(OpticalError, match=expected) as caught:
            build_bitext(mirror_dir, BitextConfig("sw", sources=sources))
        assert "\n" not in str(caught.value)
    with pytest.raises(OpticalError, match="'xx' is not a valid language code"):
        build_bitext(mirror_dir, BitextConfig("xx", sources=(str(user_file),)))
    # A language with no registered data at all trains from the user's file alone.
    odia = tmp_path / "en-or.tsv"
    odia.write_text("Good morning.\tଶୁଭ ସକାଳ.\nThank you.\tଧନ୍ୟବାଦ.\n", encoding="utf-8")
    assert len(build_bitext(mirror_dir, BitextConfig("ori", sources=(str(odia),))).pairs) == 2
    with pytest.raises(OpticalError, match="no registered bitext source for or .* give your own"):
        build_bitext(mirror_dir, BitextConfig("or"))


def test_distill_swahili_from_ntrex_and_a_user_file_then_evaluate_alignment(mirror_dir, user_file, tmp_path, monkeypatch, capsys):
    """`optical distill --lang sw --bitext ntrex128,FILE` end to end on a tiny model, then FLORES alignment."""
    from optical.eval.results import EvalRun
    from optical.models.tiny import make_tiny_model

    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    teacher = make_tiny_model(tmp_path / "teacher", seed=0)
    out = tmp_path / "run"
    argv = ["distill", "--lang", "sw", "--method", "mse", "--bitext", f"ntrex128,{user_file}", "--budget", "48"]
    argv += ["--teacher", str(teacher), "--select-on", "none", "--batch-size", "16", "--max-length", "32"]
    argv += ["--device", "cpu", "--data-dir", str(mirror_dir), "--out", str(out), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    stats = json.loads((out / "run.json").read_text(encoding="utf-8"))["bitext"]["stats"]["per_source"]
    assert stats[str(user_file)]["sha256"] == sha256_file(user_file)
    assert stats[str(user_file)]["path"] == str(user_file.resolve()) and stats[str(user_file)]["devtest_overlap"] == 2
    argv = ["evaluate", "--student", str(out), "--teacher", str(teacher), "--langs", "sw", "--tasks", "align"]
    assert main([*argv, "--out", str(tmp_path / "eval"), "--device", "cpu", "--data-dir", str(mirror_dir), "--quiet"]) == 0
    tasks = EvalRun.load(tmp_path / "eval").tasks
    assert set(tasks) == {"align_x2en.sw", "align_en2x.sw"} and tasks["align_x2en.sw"].n_queries == 1012
    assert main([*argv[:-2], "--tasks", "clir_sentence,align", "--out", str(tmp_path / "never")]) == 2
    assert "has no XQuAD-R data" in capsys.readouterr().err and not (tmp_path / "never").exists()
