"""Typed outputs of an encoder forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenEmbeddings:
    """One encoder forward over a padded batch.

    Attributes:
        embeddings: ``[B, L, H]`` last hidden states (after the optional
            projection on a student).
        attention_mask: ``[B, L]`` bool, True for real (non-padding) tokens.
        content_mask: ``[B, L]`` bool, True for content tokens only: special
            tokens (CLS/SEP/<s>/</s>) and the model's prefix tokens
            ("query: ", "passage: ") are False.
        pooled: ``[B, H]`` L2-normalised sentence embedding (mean over the
            attention mask, or CLS, as the encoder is configured).
    """

    embeddings: torch.Tensor
    attention_mask: torch.Tensor
    content_mask: torch.Tensor
    pooled: torch.Tensor
