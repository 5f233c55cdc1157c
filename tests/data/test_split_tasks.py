import pytest

from optical.data.languages import XQUADR_LANGS
from optical.data.split import get_split
from optical.data.tasks import paragraph_task, sentence_task
from optical.data.xquad import read_xquadr
from optical.errors import OpticalError


def test_split_is_deterministic_and_partitions_articles():
    split = get_split()
    assert split == get_split()
    assert len(split.dev) == 8 and len(split.test) == 40
    assert set(split.dev) | set(split.test) == set(range(48)) and not set(split.dev) & set(split.test)
    assert split.articles("all") == tuple(range(48))
    assert get_split(seed=14).dev != split.dev and get_split(seed=14).fingerprint != split.fingerprint
    with pytest.raises(OpticalError, match="unknown split 'train'"):
        split.articles("train")


@pytest.fixture(scope="module")
def pool_tasks(mirror_dir):
    langs = list(XQUADR_LANGS)
    return {name: sentence_task(mirror_dir, "en", langs, name) for name in ("dev", "test")}


def test_no_question_or_paragraph_crosses_the_split(pool_tasks, readme_candidates):
    dev, test = pool_tasks["dev"], pool_tasks["test"]
    assert not set(dev.queries) & set(test.queries)
    assert len(dev.queries) + len(test.queries) == 1190
    paragraphs = lambda task: {doc_id.split(":")[1] for doc_id in task.candidates}  # noqa: E731
    assert not paragraphs(dev) & paragraphs(test)
    assert len(paragraphs(dev)) + len(paragraphs(test)) == 240
    sizes = {"dev": 0, "test": 0}
    for name, task in pool_tasks.items():
        sizes[name] = len(task.candidates)
        for relevant in task.qrels.values():
            assert set(relevant) <= set(task.candidates)
    assert sizes["dev"] + sizes["test"] == sum(readme_candidates.values())
    assert dev.fingerprint != test.fingerprint


def test_lareqa_pool_has_eleven_relevant_per_question(pool_tasks, mirror_dir):
    task = pool_tasks["test"]
    assert set(task.candidate_langs.values()) == set(XQUADR_LANGS)
    for qid, relevant in task.qrels.items():
        assert sorted(doc_id.split(":")[0] for doc_id in relevant) == sorted(XQUADR_LANGS), qid
        assert len({doc_id.split(":")[1] for doc_id in relevant}) == 1  # the same paragraph in every language

    # independent of the reader's offsets: each gold sentence holds the answer's beginning
    # (for answers crossing a sentence boundary, the sentence ends with a prefix of the answer)
    for lang in XQUADR_LANGS:
        for question in read_xquadr(mirror_dir, lang).questions:
            relevant = task.qrels.get(f"q:{question.id}")
            if relevant is None:
                continue
            gold = task.candidates[next(d for d in relevant if d.startswith(f"{lang}:"))]
            answer = question.answer_text
            assert answer[:4].strip() in gold or any(gold.endswith(answer[:k].rstrip()) for k in range(1, len(answer))), (
                lang,
                question.id,
            )


def test_sentence_task_is_reproducible_and_ids_are_cross_language(mirror_dir):
    first = sentence_task(mirror_dir, "el", ["en"], "dev")
    again = sentence_task(mirror_dir, "el", ["en"], "dev")
    assert first.fingerprint == again.fingerprint and first.qrels == again.qrels
    english_queries = sentence_task(mirror_dir, "en", ["en"], "dev")
    assert set(first.queries) == set(english_queries.queries)
    assert first.qrels == english_queries.qrels  # gold depends on the candidate language only
    assert all(doc_id.startswith("en:p") and ":s" in doc_id for doc_id in first.candidates)
    assert first.fingerprint != english_queries.fingerprint  # different query text


def test_paragraph_task_supports_romanian(mirror_dir):
    task = paragraph_task(mirror_dir, "ro", "en", "dev")
    assert len(task.candidates) == 40  # 8 articles x 5 paragraphs
    assert all(len(relevant) == 1 for relevant in task.qrels.values())
    assert set(task.queries) == set(sentence_task(mirror_dir, "en", ["en"], "dev").queries)
    with pytest.raises(OpticalError, match="'ro' .* is not in XQuAD-R"):
        sentence_task(mirror_dir, "ro", ["en"], "dev")
    with pytest.raises(OpticalError, match="candidate languages repeat"):
        sentence_task(mirror_dir, "en", ["en", "en"], "dev")
