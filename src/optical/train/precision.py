"""Which mixed precision the training device can run.

bf16 on a CPU is only worth it (and only fast) where the CPU computes in bf16 natively: AVX512-BF16 or
AMX-BF16. :func:`cpu_bf16_support` reads the CPU flags (``/proc/cpuinfo`` on Linux) and torch's CPU
capability; :func:`resolve_precision` turns ``auto`` (the default) into bf16 where the device has native
bf16 and into fp32 elsewhere; :func:`check_precision` refuses, in one line, what the device cannot run.

``auto`` is bf16 because the quality guard (``benchmarks/quality_guard.py``, ``results/quality-guard``)
found bf16 training within the seed-to-seed spread of fp32 on the Greek dev split, for ``mse`` and ``ot``; and,
for evaluation (which uses the same resolution), because bf16 forward passes scored within ±0.005 of fp32 on
every demo figure (``benchmarks/eval_precision_guard.py``, ``results/eval-precision-guard``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from optical.errors import OpticalError

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no ``/proc/cpuinfo``)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_bf16_support(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The native bf16 instruction set of this CPU (``amx_bf16`` or ``avx512_bf16``), or None.

    >>> cpu_bf16_support("/nonexistent") is None or torch.backends.cpu.get_cpu_capability() == "AMX"
    True
    """
    flags = cpu_flags(cpuinfo)
    for flag in reversed(BF16_FLAGS):  # AMX first: the faster one
        if flag in flags:
            return flag
    if torch.backends.cpu.get_cpu_capability() == "AMX":  # where /proc/cpuinfo is missing
        return "amx_bf16"
    return None


def check_device(device: str) -> None:
    """Refuse a device other than auto, cpu, cuda and cuda:N, and a CUDA one where torch sees none, with one line."""
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise OpticalError(f"--device {device!r} is not one of auto, cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OpticalError(f"--device {device} was asked for but torch sees no CUDA device; use --device cpu or auto")


def training_device(device: str) -> str:
    """``cpu`` or ``cuda``: what ``auto`` resolves to here."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_precision(device: str, mixed_precision: str, cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """``mixed_precision`` with ``auto`` made concrete for ``device``: ``bf16`` on a CPU with AVX512-BF16 or
    AMX and on a CUDA device that supports bf16, ``no`` (fp32) elsewhere; any other value as it is.

    >>> resolve_precision("cpu", "auto", cpuinfo="/nonexistent") in ("no", "bf16")
    True
    >>> resolve_precision("cpu", "no")
    'no'
    """
    if mixed_precision != "auto":
        return mixed_precision
    if training_device(device) == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_bf16_support(cpuinfo) is not None else "no"


def autocast_dtype(mixed_precision: str) -> torch.dtype | None:
    """The autocast dtype of a concrete ``mixed_precision`` (None for ``no``, fp32).

    >>> autocast_dtype("bf16"), autocast_dtype("no")
    (torch.bfloat16, None)
    """
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)


def check_precision(device: str, mixed_precision: str, cpuinfo: str | Path = "/proc/cpuinfo") -> None:
    """Refuse a mixed precision the device cannot run natively, with one line."""
    if mixed_precision == "no" or training_device(device) != "cpu":
        return
    if mixed_precision == "fp16":
        raise OpticalError("--mixed-precision fp16 needs a CUDA device; on a CPU use bf16 (AVX512-BF16 or AMX) or no")
    if cpu_bf16_support(cpuinfo) is None:
        raise OpticalError(
            "--mixed-precision bf16 on the CPU needs AVX512-BF16 or AMX, which this CPU lacks "
            "(no avx512_bf16/amx_bf16 in /proc/cpuinfo); use --mixed-precision no"
        )
