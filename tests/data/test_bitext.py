import shutil
from collections import Counter
from dataclasses import replace

import pytest

from optical.data.bitext import (
    BitextConfig,
    LengthFilter,
    build_bitext,
    load_flores_devtest,
    normalize_text,
    read_bitext_file,
    read_source,
)
from optical.errors import OpticalError

GOOD = "Good morning, world.\tΚαλημέρα, κόσμε.\n"


def write(tmp_path, content: bytes, name="en-el.tsv"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


BAD_LINES = {
    "not_one_tab": ["Two\ttabs\tΔύο\n", "No tab at all Καμία\n"],
    "empty_side": ["\tΚαλημέρα\n", "Hello\t   \n"],
    "invalid_utf8": [b"Hello\t\xff\xfe\n"],
    "too_long_line": ["Long " * 500 + "\tΜακρύ\n"],
    "swapped_columns": ["Καλημέρα κόσμε\tGood morning world\n"],
    "wrong_script": ["Good morning\tGood morning in English\n"],
}


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_each_bad_line_is_skipped_and_counted(tmp_path, reason):
    lines = [line if isinstance(line, bytes) else line.encode() for line in BAD_LINES[reason]]
    path = write(tmp_path, GOOD.encode() + b"".join(lines) + "Thank you.\tΕυχαριστώ.\n".encode())
    loaded = read_bitext_file(path, "el")
    assert loaded.report.skipped == Counter({reason: len(lines)})
    assert loaded.report.lines == len(lines) + 2 and len(loaded.pairs) == 2
    with pytest.raises(OpticalError, match=rf"en-el.tsv:2: {reason} "):
        read_bitext_file(path, "el", strict=True)


def test_bom_crlf_duplicates_and_normalisation(tmp_path):
    decomposed = "Cafe\u0301  au\u00a0lait\tΚαφές   με γάλα"
    content = "\ufeff".encode() + GOOD.replace("\n", "\r\n").encode() + (decomposed + "\n").encode() + GOOD.encode()
    loaded = read_bitext_file(write(tmp_path, content), "el", strict=True)  # none of these is malformed
    report = loaded.report
    assert report.bom_stripped and report.crlf_lines == 1
    assert report.skipped == Counter({"duplicate": 1})
    assert [p.en for p in loaded.pairs] == ["Good morning, world.", "Caf\u00e9 au lait"]
    assert loaded.pairs[1].foreign == "Καφές με γάλα"
    rendered = report.render()
    assert "skipped duplicate: 1" in rendered and "BOM" in rendered and "1 CRLF" in rendered


def test_length_filter_and_latin_languages(tmp_path):
    path = write(
        tmp_path, b"One\tEins\nThis has four words\tDas hat vier W\xc3\xb6rter\nHi\t\xd0\x9f\xd1\x80\xd0\xb8\n", "en-de.tsv"
    )
    loaded = read_bitext_file(path, "de", length=LengthFilter(min_length=2, max_length=3))
    assert loaded.report.skipped == Counter({"too_short": 1, "wrong_script": 1, "too_long": 1})
    chars = read_bitext_file(path, "de", length=LengthFilter(min_length=4, unit="chars"))
    assert [p.en for p in chars.pairs] == ["This has four words"]
    with pytest.raises(OpticalError, match="length unit"):
        LengthFilter(unit="bytes")


def test_real_source_validation_counts(mirror_dir):
    hindi = read_source(mirror_dir, "xnli_devtest", "hi")
    assert hindi.report.lines == 10000 and hindi.report.skipped == Counter({"wrong_script": 315})  # romanised Hindi
    ntrex = read_source(mirror_dir, "ntrex128", "el", strict=True)
    assert len(ntrex.pairs) == 1997 and ntrex.pairs[0].source == "ntrex128"
    with pytest.raises(OpticalError, match="wmt_newstest has no en-el pairs"):
        read_source(mirror_dir, "wmt_newstest", "el")


def test_flores_devtest_loader(mirror_dir):
    pairs = load_flores_devtest(mirror_dir, "th")
    assert len(pairs) == 1012 and pairs[0].source == "flores200_devtest"
    assert [p.en for p in pairs] == [p.en for p in load_flores_devtest(mirror_dir, "el")]  # multi-way parallel


def test_flores_devtest_is_refused_as_training_source(mirror_dir):
    with pytest.raises(OpticalError, match="flores200_devtest is the reserved alignment evaluation set"):
        build_bitext(mirror_dir, BitextConfig("el", sources=("ntrex128", "flores200_devtest")))
    default = build_bitext(mirror_dir, BitextConfig("el"))
    assert "flores200_devtest" not in default.stats.per_source


def test_devtest_overlap_is_dropped(mirror_dir, tmp_path):
    devtest = load_flores_devtest(mirror_dir, "el")
    (tmp_path / "bitext/flores200_devtest").mkdir(parents=True)
    shutil.copy(mirror_dir / "bitext/flores200_devtest/en-el.tsv", tmp_path / "bitext/flores200_devtest/en-el.tsv")
    lines = [
        f"\u201c{devtest[0].en.upper()}!\u201d\tΕντελώς άλλη πρόταση.",  # English side, other case and quotes
        f"A fresh English sentence.\t{devtest[1].foreign.rstrip('.')}",  # foreign side, punctuation dropped
        "An unrelated pair.\tΜια άσχετη πρόταση.",
    ]
    (tmp_path / "bitext/ntrex128").mkdir()
    (tmp_path / "bitext/ntrex128/en-el.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mixture = build_bitext(tmp_path, BitextConfig("el", sources=("ntrex128",)))
    assert [p.en for p in mixture.pairs] == ["An unrelated pair."]
    assert mixture.stats.per_source["ntrex128"].devtest_overlap == 2


def test_mixing_caps_and_license_filter(mirror_dir):
    config = BitextConfig("el", caps={"xnli_devtest": 300}, seed=5)
    mixture = build_bitext(mirror_dir, config)
    stats = mixture.stats.per_source
    assert list(stats) == ["flores200_sib_dev_extra", "ntrex128", "xnli_devtest"]
    assert stats["xnli_devtest"].after_cap == 300 and stats["xnli_devtest"].malformed == 2
    assert Counter(p.source for p in mixture.pairs) == {"flores200_sib_dev_extra": 510, "ntrex128": 1997, "xnli_devtest": 300}
    assert len({(p.en, p.foreign) for p in mixture.pairs}) == len(mixture.pairs)
    open_only = build_bitext(mirror_dir, BitextConfig("de", license_classes=("open",)))
    assert set(open_only.stats.per_source) == {"flores200_sib_dev_extra", "ntrex128", "mintaka_dev_questions"}
    with pytest.raises(OpticalError, match="xnli_devtest is non-commercial"):
        build_bitext(mirror_dir, BitextConfig("el", sources=("xnli_devtest",), license_classes=("open",)))
    with pytest.raises(OpticalError, match="cap given for tico19_test"):
        build_bitext(mirror_dir, BitextConfig("el", sources=("ntrex128",), caps={"tico19_test": 5}))


def test_budget(mirror_dir):
    config = BitextConfig("th", sources=("flores200_sib_dev_extra", "ntrex128"), budget=1000)
    mixture = build_bitext(mirror_dir, config)
    assert len(mixture.pairs) == 1000 and mixture.stats.available == 510 + 1996  # one untranslated (French) NTREX line
    with pytest.raises(OpticalError, match="budget 5000 is not available: 2506 usable en-th pairs"):
        build_bitext(mirror_dir, replace(config, budget=5000))
    with pytest.raises(OpticalError, match="no usable en-th pairs .*; relax the length filter"):
        build_bitext(mirror_dir, replace(config, budget=None, min_length=10_000))


def test_no_usable_pairs_says_what_took_the_lines(mirror_dir, tmp_path):
    greek = tmp_path / "greek.tsv"
    greek.write_text("".join(f"Sentence number {i} is here.\tΗ πρόταση αριθμός {i} είναι εδώ.\n" for i in range(20)))
    with pytest.raises(OpticalError, match="20 lines read, skipped: wrong_script 20; the foreign side is not in th's script"):
        build_bitext(mirror_dir, BitextConfig("th", sources=(str(greek),)))
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(OpticalError, match="the files are empty"):
        build_bitext(mirror_dir, BitextConfig("el", sources=(str(empty),)))


def test_seeded_determinism(mirror_dir):
    config = BitextConfig("el", sources=("ntrex128", "flores200_sib_dev_extra"), budget=500, seed=3)
    first, second = build_bitext(mirror_dir, config), build_bitext(mirror_dir, config)
    assert first.pairs == second.pairs and first.fingerprint == second.fingerprint
    other = build_bitext(mirror_dir, replace(config, seed=4))
    assert other.pairs != first.pairs and other.fingerprint != first.fingerprint


def test_noise_is_exact_and_misaligned(mirror_dir):
    clean_config = BitextConfig("el", sources=("ntrex128",), budget=1000, seed=7)
    clean = build_bitext(mirror_dir, clean_config)
    noisy = build_bitext(mirror_dir, replace(clean_config, noise_fraction=0.25))
    assert len(noisy.noised_indices) == 250 == noisy.stats.noised
    assert sum(p.noised for p in noisy.pairs) == 250
    true_pairs = {(p.en, p.foreign) for p in clean.pairs}
    for index, (before, after) in enumerate(zip(clean.pairs, noisy.pairs)):
        assert before.en == after.en
        if index in noisy.noised_indices:
            assert after.foreign != before.foreign and (after.en, after.foreign) not in true_pairs
        else:
            assert after == before
    assert Counter(p.foreign for p in clean.pairs) == Counter(p.foreign for p in noisy.pairs)
    assert noisy.fingerprint != clean.fingerprint
    assert build_bitext(mirror_dir, replace(clean_config, noise_fraction=0.25)).noised_indices == noisy.noised_indices
    with pytest.raises(OpticalError, match="cannot be misaligned with itself"):
        build_bitext(mirror_dir, replace(clean_config, noise_fraction=0.001))


def test_normalize_text():
    assert normalize_text("  a\u0301\t b\u2003c ") == "\u00e1 b c"
