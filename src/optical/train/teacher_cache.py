"""A disk cache of the frozen teacher's view of the bitext's English side.

The teacher never changes during distillation, so its token embeddings of
every English sentence are computed once, stored in float16 (half the disk,
ample precision for a cosine cost) and reused by every method and seed that
trains on the same sentences. The cache key hashes the teacher's identity
(its config and weight files' sizes and modification times, and its name),
the exact English texts, the maximum length and the prefix kind, so a change
in either the teacher or the data gives a new key and a fresh cache.

Only content tokens are stored (special and prefix tokens dropped), since the
OT and alignment losses use only those; the pooled sentence embedding is
stored beside them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from optical.errors import OpticalError
from optical.models.encoder import Encoder
from optical.models.outputs import TokenEmbeddings
from optical.storage import atomic_path, cache_root


def teacher_identity(teacher: Encoder) -> str:
    """A string that changes whenever the teacher's weights or config change."""
    parts = [str(teacher.name)]
    model_dir = Path(str(teacher.name))
    if model_dir.is_dir():
        for path in sorted(model_dir.iterdir()):
            if path.is_file():
                stat = path.stat()
                parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def cache_key(teacher: Encoder, texts: list[str], max_length: int, kind: str) -> str:
    digest = hashlib.sha256()
    digest.update(teacher_identity(teacher).encode())
    digest.update(json.dumps([max_length, kind]).encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


@dataclass
class TeacherCache:
    """Content-token and pooled teacher embeddings of N texts, float16 in memory."""

    tokens: torch.Tensor  # [T, H] content tokens of all texts, concatenated
    offsets: torch.Tensor  # [N + 1] text i owns tokens[offsets[i]:offsets[i+1]]
    token_ids: torch.Tensor  # [T] input ids of those tokens (for IDF marginals)
    pooled: torch.Tensor  # [N, H] L2-normalised sentence embeddings
    path: Path | None = None
    built: bool = False  # True when this call computed it (False: read from disk)

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    def batch(self, indices: list[int], device: torch.device | str = "cpu") -> tuple[TokenEmbeddings, torch.Tensor]:
        """Padded float32 teacher outputs for ``indices``, and their token ids."""
        lengths = [int(self.offsets[i + 1] - self.offsets[i]) for i in indices]
        width = max(max(lengths), 1)
        hidden = self.tokens.shape[1]
        embeddings = torch.zeros(len(indices), width, hidden)
        ids = torch.zeros(len(indices), width, dtype=torch.long)
        mask = torch.zeros(len(indices), width, dtype=torch.bool)
        for row, (i, length) in enumerate(zip(indices, lengths)):
            start = int(self.offsets[i])
            embeddings[row, :length] = self.tokens[start : start + length].float()
            ids[row, :length] = self.token_ids[start : start + length]
            mask[row, :length] = True
        out = TokenEmbeddings(
            embeddings=embeddings.to(device),
            attention_mask=mask.to(device),
            content_mask=mask.to(device),
            pooled=self.pooled[indices].float().to(device),
        )
        return out, ids.to(device)

    def mean_token(self) -> torch.Tensor:
        """The mean content-token vector over the whole bitext (a centre for the OT cost)."""
        return self.tokens.float().mean(0)

    @classmethod
    def load(cls, path: Path) -> TeacherCache:
        try:
            tensors = load_file(str(path))
            cache = cls(tensors["tokens"], tensors["offsets"], tensors["token_ids"], tensors["pooled"], path=path)
        except (SafetensorError, KeyError, OSError) as exc:
            raise OpticalError(f"teacher cache {path} is corrupt ({exc}); delete it and rerun to rebuild it") from None
        if cache.offsets.numel() != cache.pooled.shape[0] + 1 or int(cache.offsets[-1]) != cache.tokens.shape[0]:
            raise OpticalError(f"teacher cache {path} is inconsistent; delete it and rerun to rebuild it")
        return cache

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            save_file(
                {"tokens": self.tokens, "offsets": self.offsets, "token_ids": self.token_ids, "pooled": self.pooled},
                str(tmp),
            )
        self.path = path


@torch.inference_mode()
def compute_teacher_cache(
    teacher: Encoder, texts: list[str], max_length: int, kind: str = "query", batch_size: int = 64, progress: bool = True
) -> TeacherCache:
    """Encode ``texts`` with the teacher (truncated to ``max_length`` tokens), keeping only content tokens, in float16."""
    token_chunks, id_chunks, pooled_chunks, lengths = [], [], [], []
    for start in tqdm(range(0, len(texts), batch_size), desc="teacher cache", unit="batch", disable=not progress):
        batch = teacher.tokenize(texts[start : start + batch_size], kind=kind, max_length=max_length)
        out = teacher.forward(batch)
        mask = out.content_mask.cpu()
        embeddings = out.embeddings.float().cpu()
        input_ids = batch["input_ids"].cpu()
        for row in range(mask.shape[0]):
            token_chunks.append(embeddings[row][mask[row]].half())
            id_chunks.append(input_ids[row][mask[row]])
            lengths.append(int(mask[row].sum()))
        pooled_chunks.append(out.pooled.float().cpu().half())
    offsets = torch.zeros(len(texts) + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.long), 0)
    hidden = pooled_chunks[0].shape[1]
    return TeacherCache(
        tokens=torch.cat(token_chunks) if token_chunks else torch.zeros(0, hidden, dtype=torch.float16),
        offsets=offsets,
        token_ids=torch.cat(id_chunks) if id_chunks else torch.zeros(0, dtype=torch.long),
        pooled=torch.cat(pooled_chunks),
        built=True,
    )


def load_or_build_teacher_cache(
    teacher: Encoder,
    texts: list[str],
    max_length: int,
    kind: str = "query",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> TeacherCache:
    """The cached teacher embeddings of ``texts``, computing and storing them on a miss."""
    if not texts:
        raise OpticalError("no English texts to encode with the teacher: the bitext is empty")
    cache_dir = cache_dir or cache_root() / "teacher_cache"
    path = cache_dir / f"{cache_key(teacher, texts, max_length, kind)}.safetensors"
    if path.exists():
        cache = TeacherCache.load(path)
        if len(cache) == len(texts):
            return cache
    cache = compute_teacher_cache(teacher, texts, max_length, kind, progress=progress)
    cache.save(path)
    return cache
