import torch

from optical.models.encoder import Encoder
from optical.train.teacher_cache import load_or_build_teacher_cache


def test_cache_is_reused_and_invalidated_by_data_or_teacher(tiny_teacher, tmp_path):
    from optical.models.tiny import make_tiny_model

    teacher = Encoder.load(tiny_teacher)
    texts = ["the cat sat on the mat", "a short sentence", "another one here"]
    first = load_or_build_teacher_cache(teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert first.built and len(first) == 3
    again = load_or_build_teacher_cache(teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert not again.built and torch.equal(first.tokens, again.tokens)
    other_data = load_or_build_teacher_cache(teacher, texts[:2], 32, cache_dir=tmp_path, progress=False)
    assert other_data.built and other_data.path != first.path
    other_teacher = Encoder.load(make_tiny_model(tmp_path / "t2", seed=5))
    changed = load_or_build_teacher_cache(other_teacher, texts, 32, cache_dir=tmp_path, progress=False)
    assert changed.built and changed.path != first.path


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
