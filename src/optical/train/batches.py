"""The data path of a run: the bitext tokenized once, batches as index slices, length grouping, phase clocks.

A run tokenizes its student sides once (:class:`TokenizedSide`); a training step only indexes those
tensors (already on the training device) and cuts them to the batch's widest row, which equals what
per-step tokenization with ``padding=True`` gave. The batch order of an epoch depends only on the seed,
the epoch and the lengths (:func:`epoch_batches`), so a resumed run skips exactly the batches it has seen.

>>> epoch_batches([3, 9, 4, 8, 2, 7], 2, seed=0, epoch=0, grouping=False)
[[2, 5], [3, 0], [1, 4]]
>>> epoch_batches([3, 9, 4, 8, 2, 7], 2, seed=0, epoch=0, grouping=True)  # lengths (2, 3), (8, 9), (4, 7)
[[4, 0], [3, 1], [2, 5]]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

#: Length grouping sorts windows of this many batches by length, then shuffles the batches.
GROUP_WINDOW = 64
PHASES = ("data", "forward", "loss", "backward", "optimizer")


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, grouping: bool) -> list[list[int]]:
    """The batches of one epoch (lists of row indices). Without grouping: a seeded permutation cut into
    full batches (the tail that fills no batch is dropped). With grouping: the same rows, windows of
    :data:`GROUP_WINDOW` batches sorted by length and cut into batches, the batches then in a seeded order."""
    n = len(lengths)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)] or [order]
    if not grouping or len(batches) < 2:
        return batches
    rows = [i for batch in batches for i in batch]
    window = GROUP_WINDOW * batch_size
    grouped = []
    for start in range(0, len(rows), window):
        chunk = sorted(rows[start : start + window], key=lambda i: lengths[i])
        grouped += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffle = torch.randperm(len(grouped), generator=generator).tolist()
    return [grouped[i] for i in shuffle]


@dataclass
class TokenizedSide:
    """One side of the bitext tokenized once: ``[N, L]`` tensors on the training device, lengths on the host."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    content_mask: torch.Tensor
    lengths: list[int]

    @classmethod
    def build(cls, encoder, texts: list[str], kind: str, max_length: int, device: torch.device | str) -> TokenizedSide:
        tokens = encoder.tokenize_all(texts, kind=kind, max_length=max_length)
        return cls(
            input_ids=tokens["input_ids"].to(device),
            attention_mask=tokens["attention_mask"].to(device),
            content_mask=tokens["content_mask"].to(device),
            lengths=tokens["lengths"].tolist(),
        )

    def width(self, rows: list[int]) -> int:
        return max(max(self.lengths[i] for i in rows), 1)

    def batch(self, index: torch.Tensor, width: int) -> dict[str, torch.Tensor]:
        """Rows ``index`` (a tensor on the device) cut to ``width`` columns: only indexing, no copy from the host."""
        return {
            "input_ids": self.input_ids[index, :width],
            "attention_mask": self.attention_mask[index, :width],
            "content_mask": self.content_mask[index, :width],
        }


@dataclass
class DataCounters:
    """Pairs, real and padded token positions of the student sides, summed over the run (host numbers)."""

    pairs: int = 0
    tokens: int = 0
    positions: int = 0

    def add(self, side: TokenizedSide, rows: list[int], width: int) -> None:
        self.tokens += sum(side.lengths[i] for i in rows)
        self.positions += width * len(rows)

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.tokens / self.positions if self.positions else 0.0


@dataclass
class PhaseClock:
    """Seconds spent in each phase of the training steps (:data:`PHASES`).

    On the CPU it reads the host clock. On CUDA it records events in the stream and reads them only in
    :meth:`flush` (called at the log interval), so timing never synchronises a step.
    """

    cuda: bool = False
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    _last: float = 0.0
    _events: list[tuple[str, object, object]] = field(default_factory=list)
    _mark: object = None

    def start(self) -> None:
        if self.cuda:
            self._mark = torch.cuda.Event(enable_timing=True)
            self._mark.record()
        else:
            self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """The time since the previous lap (or :meth:`start`) goes to ``phase``."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._events.append((phase, self._mark, event))
            self._mark = event
        else:
            now = time.perf_counter()
            self.seconds[phase] += now - self._last
            self._last = now

    def flush(self) -> None:
        """Read the recorded CUDA events (this waits for them)."""
        for phase, begin, end in self._events:
            end.synchronize()
            self.seconds[phase] += begin.elapsed_time(end) / 1000.0
        self._events.clear()
