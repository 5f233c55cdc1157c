from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from optical.losses import DistillBatch
from optical.models.outputs import TokenEmbeddings


def token_embeddings(embeddings: torch.Tensor, lengths: list[int]) -> TokenEmbeddings:
    """Embeddings with the first ``lengths[b]`` tokens of row b as content, the rest padding."""
    width = embeddings.shape[1]
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    pooled = F.normalize((embeddings * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1), dim=-1)
    return TokenEmbeddings(embeddings=embeddings, attention_mask=mask, content_mask=mask, pooled=pooled)


@pytest.fixture
def as_tokens():
    return token_embeddings


@pytest.fixture
def make_batch():
    def make(seed: int = 0, batch: int = 4, n: int = 6, m: int = 5, hidden: int = 8, requires_grad: bool = True):
        generator = torch.Generator().manual_seed(seed)
        student = torch.randn(batch, n, hidden, generator=generator, requires_grad=requires_grad)
        teacher = torch.randn(batch, m, hidden, generator=generator)
        student_en = torch.randn(batch, n, hidden, generator=generator, requires_grad=requires_grad)
        lengths_s = [n - (i % 3) for i in range(batch)]
        lengths_t = [m - (i % 2) for i in range(batch)]
        return DistillBatch(
            student_foreign=token_embeddings(student, lengths_s),
            teacher_english=token_embeddings(teacher, lengths_t),
            student_english=token_embeddings(student_en, lengths_s),
        )

    return make
