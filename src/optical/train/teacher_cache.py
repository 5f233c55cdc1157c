"""A disk cache of the frozen teacher's view of English sentences, shared per sentence.

The teacher never changes during distillation, so its token embeddings of
every English sentence are computed once, stored in float16 (half the disk,
ample precision for a cosine cost) and reused by every method, seed, budget
and noise level that trains on the same sentences. The cache is keyed per
sentence: a namespace directory per teacher identity (its config and weight
files' sizes and modification times, and its name), maximum length and prefix
kind holds shards, each a safetensors file of some sentences with the
content hash of each text. A run encodes only the sentences no shard holds
yet and writes them as one new shard (:attr:`TeacherCache.encoded` counts them).

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
    """A string that changes whenever the teacher's weights or config change.

    A local directory is named by its real path (symlinks resolved), so the same files reached through
    two links (two cache roots that link one models dir) share their caches."""
    model_dir = Path(str(teacher.name))
    if not model_dir.is_dir():
        return str(teacher.name)  # a hub name
    parts = [str(model_dir.resolve())]
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def cache_namespace(teacher: Encoder, max_length: int, kind: str) -> str:
    """The directory name of every shard that one teacher, maximum length and prefix kind produce."""
    digest = hashlib.sha256()
    digest.update(teacher_identity(teacher).encode())
    digest.update(json.dumps([max_length, kind]).encode())
    return digest.hexdigest()[:24]


def text_key(text: str) -> bytes:
    """The 16-byte content hash of one text (its key inside a namespace)."""
    return hashlib.sha256(text.encode()).digest()[:16]


@dataclass
class TeacherCache:
    """Content-token and pooled teacher embeddings of N texts, float16 in memory."""

    tokens: torch.Tensor  # [T, H] content tokens of all texts, concatenated
    offsets: torch.Tensor  # [N + 1] text i owns tokens[offsets[i]:offsets[i+1]]
    token_ids: torch.Tensor  # [T] input ids of those tokens (for IDF marginals)
    pooled: torch.Tensor  # [N, H] L2-normalised sentence embeddings
    path: Path | None = None
    built: bool = False  # True when this call encoded sentences (False: every one read from disk)
    encoded: int = 0  # how many distinct sentences this call encoded with the teacher

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    def on_device(self, device: torch.device | str) -> DeviceTeacherCache:
        """The cache on the training device, for batches that only index tensors."""
        return DeviceTeacherCache.build(self, device)

    def batch(self, indices: list[int], device: torch.device | str = "cpu") -> tuple[TokenEmbeddings, torch.Tensor]:
        """Padded float32 teacher outputs for ``indices``, and their token ids."""
        held = self.on_device(device)
        return held.batch(torch.tensor(indices, dtype=torch.long, device=device), held.width(indices))

    def mean_token(self) -> torch.Tensor:
        """The mean content-token vector over the whole bitext (a centre for the OT cost)."""
        return self.tokens.float().mean(0)

    @classmethod
    def load(cls, path: Path) -> tuple[TeacherCache, torch.Tensor]:
        """One shard and the content hashes of its texts (``[N, 16]`` uint8)."""
        try:
            tensors = load_file(str(path))
            cache = cls(tensors["tokens"], tensors["offsets"], tensors["token_ids"], tensors["pooled"], path=path)
            keys = tensors["keys"]
        except (SafetensorError, KeyError, OSError) as exc:
            raise OpticalError(f"teacher cache {path} is corrupt ({exc}); delete it and rerun to rebuild it") from None
        consistent = cache.offsets.numel() == cache.pooled.shape[0] + 1 == keys.shape[0] + 1
        if not consistent or int(cache.offsets[-1]) != cache.tokens.shape[0]:
            raise OpticalError(f"teacher cache {path} is inconsistent; delete it and rerun to rebuild it")
        return cache, keys

    def save(self, path: Path, keys: torch.Tensor) -> None:
        tensors = {"tokens": self.tokens, "offsets": self.offsets, "token_ids": self.token_ids, "pooled": self.pooled}
        with atomic_path(path) as tmp:
            save_file({**tensors, "keys": keys}, str(tmp))

    def rows(self, rows: list[int]) -> TeacherCache:
        """A cache of the texts ``rows`` of this one, in that order."""
        starts, ends = self.offsets[:-1].tolist(), self.offsets[1:].tolist()
        lengths = torch.tensor([ends[i] - starts[i] for i in rows], dtype=torch.long)
        positions = torch.cat([torch.arange(starts[i], ends[i]) for i in rows]) if rows else torch.zeros(0, dtype=torch.long)
        offsets = torch.zeros(len(rows) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        return TeacherCache(self.tokens[positions], offsets, self.token_ids[positions], self.pooled[rows])

    @classmethod
    def concat(cls, parts: list[TeacherCache]) -> TeacherCache:
        lengths = torch.cat([p.offsets[1:] - p.offsets[:-1] for p in parts])
        offsets = torch.zeros(lengths.numel() + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        return cls(
            torch.cat([p.tokens for p in parts]),
            offsets,
            torch.cat([p.token_ids for p in parts]),
            torch.cat([p.pooled for p in parts]),
        )


@dataclass
class DeviceTeacherCache:
    """A :class:`TeacherCache` on the training device: a batch is a gather, with no copy from the host.

    A zero row after the last token stands for every padded position.
    """

    tokens: torch.Tensor  # [T + 1, H] float16
    starts: torch.Tensor  # [N]
    lengths_t: torch.Tensor  # [N]
    token_ids: torch.Tensor  # [T + 1]
    pooled: torch.Tensor  # [N, H]
    lengths: list[int]  # on the host, for batch widths

    @classmethod
    def build(cls, cache: TeacherCache, device: torch.device | str) -> DeviceTeacherCache:
        hidden = cache.tokens.shape[1]
        lengths = cache.offsets[1:] - cache.offsets[:-1]
        return cls(
            tokens=torch.cat([cache.tokens, torch.zeros(1, hidden, dtype=cache.tokens.dtype)]).to(device),
            starts=cache.offsets[:-1].to(device),
            lengths_t=lengths.to(device),
            token_ids=torch.cat([cache.token_ids, torch.zeros(1, dtype=cache.token_ids.dtype)]).to(device),
            pooled=cache.pooled.to(device),
            lengths=lengths.tolist(),
        )

    def width(self, rows: list[int]) -> int:
        return max(max(self.lengths[i] for i in rows), 1)

    def batch(self, index: torch.Tensor, width: int) -> tuple[TokenEmbeddings, torch.Tensor]:
        """Padded float32 teacher outputs of rows ``index`` (a tensor on the device), ``width`` wide, and their ids."""
        columns = torch.arange(width, device=index.device)
        mask = columns[None, :] < self.lengths_t[index][:, None]
        pad = self.tokens.shape[0] - 1
        positions = torch.where(mask, self.starts[index][:, None] + columns[None, :], pad)
        out = TokenEmbeddings(
            embeddings=self.tokens[positions].float(),
            attention_mask=mask,
            content_mask=mask,
            pooled=self.pooled[index].float(),
        )
        return out, self.token_ids[positions]


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
    """The teacher embeddings of ``texts`` in their order: every sentence a shard of the namespace holds
    is read from disk, the others are encoded and stored as one new shard."""
    if not texts:
        raise OpticalError("no English texts to encode with the teacher: the bitext is empty")
    folder = (cache_dir or cache_root() / "teacher_cache") / cache_namespace(teacher, max_length, kind)
    keys = [text_key(text) for text in texts]
    where: dict[bytes, tuple[int, int]] = {}
    shards: list[TeacherCache] = []
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        shard, shard_keys = TeacherCache.load(path)
        shards.append(shard)
        for row, key in enumerate(shard_keys.numpy().tobytes()[i : i + 16] for i in range(0, shard_keys.numel(), 16)):
            where.setdefault(key, (len(shards) - 1, row))
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in where))
    if missing:
        new = compute_teacher_cache(teacher, missing, max_length, kind, progress=progress)
        new_keys = [text_key(t) for t in missing]
        name = hashlib.sha256(b"".join(new_keys)).hexdigest()[:24]
        new.save(folder / f"{name}.safetensors", torch.frombuffer(bytearray(b"".join(new_keys)), dtype=torch.uint8).view(-1, 16))
        shards.append(new)
        for row, key in enumerate(new_keys):
            where.setdefault(key, (len(shards) - 1, row))
    cache = _assemble(shards, [where[k] for k in keys])
    cache.path, cache.built, cache.encoded = folder, bool(missing), len(missing)
    return cache


def _assemble(shards: list[TeacherCache], located: list[tuple[int, int]]) -> TeacherCache:
    """The rows ``located`` ((shard, row) each) as one cache, in that order."""
    parts, run_shard, run_rows = [], None, []
    for shard, row in located:  # consecutive rows of one shard are taken together
        if shard != run_shard and run_rows:
            parts.append(shards[run_shard].rows(run_rows))
            run_rows = []
        run_shard = shard
        run_rows.append(row)
    parts.append(shards[run_shard].rows(run_rows))
    return TeacherCache.concat(parts)
