"""The article-level dev/test split of XQuAD's 48 articles.

Rule: rank article indices 0..47 by ``sha256(f"optical-split:{seed}:{index}")``
(hex digest, ascending); the first ``dev_size`` (8) are dev, the other 40 test.
Splitting whole articles means no paragraph or question crosses the split, and
the rule depends on nothing but the seed (13), so it is the same on every
machine and Python version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from optical.errors import OpticalError

NUM_ARTICLES = 48
SPLIT_SEED = 13
DEV_ARTICLES = 8
SPLIT_NAMES: tuple[str, ...] = ("dev", "test", "all")


@dataclass(frozen=True)
class ArticleSplit:
    dev: tuple[int, ...]
    test: tuple[int, ...]
    fingerprint: str

    def articles(self, split_name: str) -> tuple[int, ...]:
        """Article indices of ``dev``, ``test`` or ``all`` (the full LAReQA pool)."""
        if split_name == "dev":
            return self.dev
        if split_name == "test":
            return self.test
        if split_name == "all":
            return tuple(sorted(self.dev + self.test))
        raise OpticalError(f"unknown split {split_name!r}; valid splits: {' '.join(SPLIT_NAMES)}")


def _rank_key(seed: int, index: int) -> str:
    return hashlib.sha256(f"optical-split:{seed}:{index}".encode()).hexdigest()


def get_split(seed: int = SPLIT_SEED, dev_size: int = DEV_ARTICLES, num_articles: int = NUM_ARTICLES) -> ArticleSplit:
    ranked = sorted(range(num_articles), key=lambda index: _rank_key(seed, index))
    dev = tuple(sorted(ranked[:dev_size]))
    test = tuple(sorted(ranked[dev_size:]))
    fingerprint = hashlib.sha256(f"seed={seed};dev={dev};test={test}".encode()).hexdigest()[:16]
    return ArticleSplit(dev, test, fingerprint)
