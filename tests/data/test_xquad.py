import json

import pytest

from optical.data.languages import XQUAD_LANGS, XQUADR_LANGS
from optical.data.xquad import load_qa_file, locate_sentences, read_xquad, read_xquadr
from optical.errors import OpticalError


@pytest.fixture(scope="module")
def xquadr(mirror_dir):
    return {lang: read_xquadr(mirror_dir, lang) for lang in XQUADR_LANGS}


def test_xquad_counts_and_language_independent_ids(mirror_dir):
    english = read_xquad(mirror_dir, "en")
    for lang in XQUAD_LANGS:
        data = read_xquad(mirror_dir, lang)
        assert (len(data.articles), len(data.paragraphs), len(data.questions)) == (48, 240, 1190)
        assert [q.id for q in data.questions] == [q.id for q in english.questions]
        assert [q.paragraph_id for q in data.questions] == [q.paragraph_id for q in english.questions]
        assert [p.article for p in data.paragraphs] == [p.article for p in english.paragraphs]
    assert english.paragraphs[17].id == "p017" and english.paragraphs[-1].id == "p239"


def test_xquadr_candidate_counts(xquadr, readme_candidates):
    assert {lang: data.num_candidates() for lang, data in xquadr.items()} == readme_candidates
    assert all(len(data.questions) == 1190 for data in xquadr.values())


def test_gold_sentence_holds_answer_start_in_every_language(xquadr):
    for lang, data in xquadr.items():
        paragraphs = data.paragraph_map()
        for question in data.questions:
            paragraph = paragraphs[question.paragraph_id]
            gold = paragraph.sentence_of(question.answer_start)
            start = paragraph.sentence_starts[gold]
            offset = question.answer_start - start
            sentence_in_context = paragraph.context[start:]
            # the answer start lies inside the gold sentence's span and the answer text starts there
            assert 0 <= offset < len(paragraph.sentences[gold]) + 3, (lang, question.id)
            assert sentence_in_context[offset:].startswith(question.answer_text)


def test_turkish_quirk_uses_string_search_with_break_fallback(mirror_dir, xquadr):
    raw = json.loads((mirror_dir / "xquad-r/tr.json").read_text(encoding="utf-8"))
    raw_paragraph = [p for a in raw["data"] for p in a["paragraphs"]][48]
    breaks = [start for start, _ in raw_paragraph["sentence_breaks"]]
    paragraph = xquadr["tr"].paragraphs[48]
    assert breaks[3] != paragraph.sentence_starts[3]  # the upstream offset is off
    assert paragraph.context[paragraph.sentence_starts[3] :].startswith(paragraph.sentences[3])
    assert paragraph.sentences[2] not in paragraph.context  # mojibake: break fallback was needed
    assert paragraph.sentence_starts[2] == breaks[2]


def test_locate_sentences_keeps_repeated_sentences_apart():
    context = "Yes. No. Yes. End."
    assert locate_sentences(context, ["Yes.", "No.", "Yes.", "End."], None) == (0, 5, 9, 14)
    assert locate_sentences("Ab Xc", ["Ab", "Yc"], [[0, 2], [3, 5]]) == (0, 3)


def test_duplicate_candidate_strings_are_kept(xquadr, readme_candidates):
    for lang, expected_repeats in {"ar": 2, "zh": 4, "en": 0}.items():
        sentences = [s for p in xquadr[lang].paragraphs for s in p.sentences]
        assert len(sentences) == readme_candidates[lang]
        assert len(sentences) - len(set(sentences)) >= expected_repeats


def test_reader_errors(mirror_dir, tmp_path):
    with pytest.raises(OpticalError, match="'ro' .* is not in XQuAD-R"):
        read_xquadr(mirror_dir, "ro")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(OpticalError, match="bad.json is not valid UTF-8 JSON"):
        load_qa_file(bad, "en", "XQuAD")
    bad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": []}]}]}))
    with pytest.raises(OpticalError, match="bad.json is not in XQuAD-R format"):
        load_qa_file(bad, "en", "XQuAD-R")
    bad.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {
                                "context": "abc",
                                "qas": [{"id": "q1", "question": "?", "answers": [{"answer_start": 1, "text": "zz"}]}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    with pytest.raises(OpticalError, match="question q1 is not at its answer_start"):
        load_qa_file(bad, "en", "XQuAD")
