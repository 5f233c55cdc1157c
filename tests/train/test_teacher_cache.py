import pytest
import torch

from optical.errors import OpticalError
from optical.models.encoder import Encoder
from optical.train.teacher_cache import load_or_build_teacher_cache


def test_cache_is_shared_per_sentence_and_invalidated_by_the_teacher(tiny_teacher, tmp_path):
    from optical.models.tiny import make_tiny_model

    teacher = Encoder.load(tiny_teacher)
    texts = ["the cat sat on the mat", "a short sentence", "another one here"]
    first = load_or_build_teacher_cache(teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert first.built and first.encoded == 3 and len(first) == 3
    again = load_or_build_teacher_cache(teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert not again.built and again.encoded == 0 and torch.equal(first.tokens, again.tokens)
    # Another subset, order or seed of the same sentences: nothing new to encode, the same rows.
    subset = load_or_build_teacher_cache(teacher, [texts[2], texts[0]], 32, cache_dir=tmp_path, progress=False)
    assert subset.encoded == 0 and torch.equal(subset.pooled, first.pooled[[2, 0]])
    assert torch.equal(subset.batch([0])[0].embeddings, first.batch([2])[0].embeddings)
    # One new sentence: only it is encoded.
    more = load_or_build_teacher_cache(teacher, [*texts, "a fourth one", texts[0]], 32, cache_dir=tmp_path, progress=False)
    assert more.encoded == 1 and len(more) == 5 and torch.equal(more.pooled[4], first.pooled[0])
    other_length = load_or_build_teacher_cache(teacher, texts, 16, cache_dir=tmp_path, progress=False)
    assert other_length.encoded == 3 and other_length.path != first.path
    other_teacher = Encoder.load(make_tiny_model(tmp_path / "t2", seed=5))
    changed = load_or_build_teacher_cache(other_teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert changed.encoded == 3 and changed.path != first.path


def test_a_teacher_reached_through_a_link_shares_its_cache(tiny_teacher, tmp_path):
    """Two cache roots that link one models dir (as benchmarks and workers set them up) reuse one cache."""
    texts = ["the cat sat on the mat", "a short sentence"]
    direct = load_or_build_teacher_cache(Encoder.load(tiny_teacher), texts, 32, cache_dir=tmp_path, progress=False)
    link = tmp_path / "elsewhere" / "teacher"
    link.parent.mkdir()
    link.symlink_to(tiny_teacher, target_is_directory=True)
    linked = load_or_build_teacher_cache(Encoder.load(link), texts, 32, cache_dir=tmp_path, progress=False)
    assert direct.built and not linked.built and linked.path == direct.path


def test_a_damaged_shard_is_a_one_line_error(tiny_teacher, tmp_path):
    teacher = Encoder.load(tiny_teacher)
    cache = load_or_build_teacher_cache(teacher, ["one text", "two"], 32, cache_dir=tmp_path, progress=False)
    shard = next(cache.path.glob("*.safetensors"))
    shard.write_bytes(b"garbage")
    with pytest.raises(OpticalError, match="corrupt") as info:
        load_or_build_teacher_cache(teacher, ["one text"], 32, cache_dir=tmp_path, progress=False)
    assert "\n" not in str(info.value)


def test_cache_holds_content_tokens_in_fp16_matching_a_fresh_forward(tiny_teacher, tmp_path):
    teacher = Encoder.load(tiny_teacher, max_length=32)
    texts = ["the cat sat on the mat", "hello"]
    cache = load_or_build_teacher_cache(teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert cache.tokens.dtype == torch.float16
    out, ids = cache.batch([1, 0])
    with torch.inference_mode():
        fresh = teacher(teacher.tokenize([texts[1], texts[0]], kind="query"))
    for row in range(2):
        expected = fresh.embeddings[row][fresh.content_mask[row]]
        got = out.embeddings[row][out.content_mask[row]]
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=2e-3, rtol=1e-2)
