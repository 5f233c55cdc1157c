import pytest

import optical.cli
from optical.cli import main
from optical.data.languages import SPECTRUM_LANGS, XQUAD_LANGS
from optical.data.summary import summarize


@pytest.fixture(autouse=True)
def only_data_subcommand(monkeypatch):
    """Load only ``optical data``: these tests must not depend on sibling subcommands importing."""
    monkeypatch.setattr(optical.cli, "_SUBCOMMAND_MODULES", ("data",))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optical: error: "), err
    return err


@pytest.fixture(scope="module")
def summary(mirror_dir):
    """One summary of the mirror for the module (it reads every bitext file of 110 languages)."""
    return summarize(mirror_dir)


def test_summary_counts(summary):
    by_lang = {item.lang: item for item in summary.languages}
    xquad = [item for item in summary.languages if item.lang in XQUAD_LANGS]
    assert all((item.xquad_questions, item.xquad_paragraphs) == (1190, 240) for item in xquad)
    assert by_lang["ro"].xquadr_candidates is None and by_lang["th"].xquadr_candidates == 852
    hindi = {count.source: count for count in by_lang["hi"].bitext}
    assert hindi["xnli_devtest"].pairs == 9685 and hindi["xnli_devtest"].license_class == "non-commercial"
    assert hindi["flores200_devtest"].reserved and hindi["flores200_devtest"].pairs == 1012
    assert by_lang["en"].bitext == ()
    text = summary.render()
    assert "*flores200_devtest" in text and "ro     1190/240" in text


def test_summary_shows_the_low_resource_languages(summary):
    by_lang = {item.lang: item for item in summary.languages}
    assert len(summary.languages) == 111 and [item.lang for item in summary.languages][-95:] == list(SPECTRUM_LANGS)
    for lang in ("sw", "so", "am", "yo", *SPECTRUM_LANGS):
        item = by_lang[lang]
        assert item.xquad_questions is None and item.xquadr_candidates is None
        counts = {count.source: count for count in item.bitext}
        assert set(counts) == {"flores200_devtest", "flores200_sib_dev_extra", "ntrex128"}
        assert counts["flores200_devtest"].reserved
        assert counts["flores200_devtest"].pairs + counts["flores200_devtest"].skipped == 1012
        assert counts["flores200_sib_dev_extra"].pairs in (509, 510)
        assert counts["ntrex128"].pairs + counts["ntrex128"].skipped == 1997
    text = summary.render()
    assert "sw        -/-" in text and "(Amharic; no XQuAD" in text and "(Dzongkha; no XQuAD" in text


def test_cli_summary_and_missing_data_dir(mirror_dir, tmp_path, capsys):
    assert main(["data", "summary", "--data-dir", str(mirror_dir)]) == 0
    assert "ntrex128" in capsys.readouterr().out
    assert main(["data", "summary", "--data-dir", str(tmp_path / "none")]) == 2
    assert "run `optical data fetch" in one_error_line(capsys)


def test_cli_fetch_from_mirror_then_resolves(mirror_dir, tmp_path, capsys, monkeypatch):
    dest = tmp_path / "data"
    assert main(["data", "fetch", "--data-dir", str(dest), "--mirror", str(mirror_dir), "--only", "xquad,xquad-r"]) == 0
    assert "23 files installed" in capsys.readouterr().out
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(dest))
    assert main(["data", "summary"]) == 2  # bitext was not fetched
    assert "incomplete (bitext/" in one_error_line(capsys)
    assert main(["data", "fetch", "--only", "bitext"]) == 2  # no mirror or URL for bitext
    assert "has no public origin" in one_error_line(capsys)
    assert main(["data", "fetch", "--data-dir", str(dest), "--mirror", str(mirror_dir), "--only", "nope"]) == 2
    assert "unknown data group nope" in one_error_line(capsys)


def test_cli_check_bitext(tmp_path, capsys):
    path = tmp_path / "en-el.tsv"
    path.write_text("Hello.\tΓεια.\nno tab here\nΚαλημέρα\tGood morning\n", encoding="utf-8")
    assert main(["data", "check-bitext", str(path), "--lang", "el"]) == 0
    out = capsys.readouterr().out
    assert "3 lines, 1 pairs kept" in out and "not_one_tab: 1" in out and "swapped_columns: 1" in out
    assert main(["data", "check-bitext", str(path), "--lang", "el", "--strict"]) == 2
    assert f"{path}:2: not_one_tab" in one_error_line(capsys)
    assert main(["data", "check-bitext", str(path), "--lang", "en"]) == 2
    assert "'en' (English) is not in bitext" in one_error_line(capsys)
