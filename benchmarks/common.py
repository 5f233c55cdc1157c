"""Shared helpers for benchmark scripts: timing and the results file.

Every script records its numbers with :func:`record`, which merges them into
``benchmarks/results.json`` (one flat JSON object shared by all scripts) and
regenerates ``BENCHMARKS.md`` at the project root from it. Both files are written
atomically through :mod:`optical.storage`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from optical.storage import atomic_write_json, atomic_write_text

BENCHMARKS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCHMARKS_DIR.parent
RESULTS_PATH = BENCHMARKS_DIR / "results.json"
REPORT_PATH = PROJECT_ROOT / "BENCHMARKS.md"
# Provenance for key K is stored beside it as "K@meta" so results.json stays flat.
_META_SUFFIX = "@meta"


def time_it(fn: Callable[[], object], repeat: int = 20, warmup: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs.

    ``clock`` defaults to wall time; ``time.thread_time`` (CPU time of this
    thread) is steadier on a shared machine when torch runs single-threaded.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: str = "cpu") -> str:
    accelerator = f" {torch.cuda.get_device_name()}" if device == "cuda" and torch.cuda.is_available() else ""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}{accelerator}"
    )


#: Cache sub-directories that hold inputs (data, built models, wheels), shared by a cold cache; everything
#: else under the cache (teacher cache, document cache, run store, logs) is what a cold run recomputes.
_CACHE_INPUTS = ("data", "models", "wheels")


def cold_cache(target: Path, shared: dict[str, Path] | None = None) -> Path:
    """A cache directory for ``$OPTICAL_CACHE_DIR`` whose inputs link to the user cache's and whose
    computed caches start empty, except the sub-directories named in ``shared`` (name -> directory to
    link, e.g. one document cache used by several runs)."""
    from optical.storage import cache_root

    source = cache_root()
    target.mkdir(parents=True, exist_ok=True)
    links = {name: source / name for name in _CACHE_INPUTS if (source / name).exists()} | dict(shared or {})
    for name, where in links.items():
        Path(where).mkdir(parents=True, exist_ok=True)
        link = target / name
        if not link.exists():
            link.symlink_to(Path(where).resolve(), target_is_directory=True)
    return target


def record(results: dict[str, float | int | str], source: str, device: str = "cpu") -> None:
    """Merge ``results`` into results.json (other keys are kept) and rewrite BENCHMARKS.md."""
    existing: dict[str, object] = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    meta = json.dumps({"source": source, "machine": machine_description(device), "date": _dt.date.today().isoformat()})
    for key, value in results.items():
        existing[key] = value
        existing[key + _META_SUFFIX] = meta
    atomic_write_json(RESULTS_PATH, existing)
    atomic_write_text(REPORT_PATH, render_report(existing))


def publish(results: dict[str, float | int | str], source: str, dry_run: bool, device: str = "cpu") -> None:
    """Print the figures, one per line, then :func:`record` them unless this is a dry run."""
    print("\n".join(f"{key}: {value}" for key, value in results.items()), flush=True)
    if not dry_run:
        record(results, source, device=device)


#: The goals of the figures (issue 9 and earlier), as (comparison, value); BENCHMARKS.md shows each
#: figure against its goal, and a goal not measured yet as a row without a figure.
GOALS: dict[str, tuple[str, float]] = {
    "distill_mse_over_sentence_transformers": (">=", 2.0),
    "distill_fast_over_plain": (">=", 2.5),
    "ot_step_over_bare_step": ("<=", 1.10),
    "host_pairs_per_second": (">=", 20_000),
    "host_pairs_per_second_gpu_box": (">=", 20_000),
    "host_pairs_per_second_cuda": (">=", 20_000),
    "distill_ot_pairs_per_second_cuda": (">=", 10_000),
    "distill_ot_step_over_mse_step_cuda": ("<=", 1.10),
    "demo_minutes": ("<", 5.0),
    "ann_recall_at_10_vs_exact": (">=", 0.95),
    "ann_over_exact_query_speed": (">=", 10.0),
    "maxsim_exact_speedup": (">=", 20.0),
    "maxsim_over_pylate": (">=", 1.0),
    "maxsim_pool_recall_at_10": (">=", 0.95),
}
_COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}


def goal_text(key: str, value: object) -> str:
    """``>= 2 (met)``, ``>= 2 (not met)``, or empty for a figure without a goal.

    >>> goal_text("distill_fast_over_plain", 3.1), goal_text("distill_fast_over_plain", 1.2), goal_text("x", 1.0)
    ('>= 2.5 (met)', '>= 2.5 (not met)', '')
    """
    if key not in GOALS:
        return ""
    op, target = GOALS[key]
    if not isinstance(value, (int, float)):
        return f"{op} {target:g}"
    return f"{op} {target:g} ({'met' if _COMPARE[op](value, target) else 'not met'})"


def _short_machine(machine: str) -> str:
    """``AMD EPYC, 2 cores, torch 2.13.0+cpu (1 threads), device cpu`` -> ``AMD EPYC, 2 cores, 1 thr, cpu``."""
    parts = [p.strip() for p in machine.split(",")]
    if len(parts) < 3:
        return machine
    threads = parts[2].split("(")[-1].split(" ")[0] if "(" in parts[2] else "?"
    device = parts[-1].removeprefix("device ").strip()
    return f"{parts[0]}, {parts[1]}, {threads} thr, {device}"


def render_report(results: dict[str, object]) -> str:
    """BENCHMARKS.md: one table of figure | measured | goal | machine | date, the setup strings under it."""
    figures = sorted(k for k in results if not k.endswith(_META_SUFFIX) and not isinstance(results[k], str))
    setups = sorted(k for k in results if not k.endswith(_META_SUFFIX) and isinstance(results[k], str))
    lines = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/common.py` from `benchmarks/results.json`; do not edit by hand.",
        "Rerun a script (e.g. `.venv/bin/python benchmarks/bench_sinkhorn.py`) to refresh its rows; the goals are",
        "`GOALS` in `benchmarks/common.py`. How each figure was measured is under the table.",
        "",
        "| figure | measured | goal | machine | date |",
        "|---|---|---|---|---|",
    ]
    for key in sorted({*figures, *GOALS}):
        if key not in results:
            op, target = GOALS[key]
            lines.append(f"| `{key}` | not measured yet | {op} {target:g} | | |")
            continue
        value = results[key]
        meta = json.loads(str(results.get(key + _META_SUFFIX, "{}")))
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        machine = _short_machine(str(meta.get("machine", "?")))
        lines.append(f"| `{key}` | {shown} | {goal_text(key, value)} | {machine} | {meta.get('date', '?')} |")
    lines += ["", "## Setups", ""]
    for key in setups:
        meta = json.loads(str(results.get(key + _META_SUFFIX, "{}")))
        lines.append(
            f"- `{key}` ({meta.get('source', '?')}, {meta.get('date', '?')}; {meta.get('machine', '?')}): {results[key]}"
        )
    lines += ["", "## Scripts", ""]
    sources: dict[str, list[str]] = {}
    for key in figures:
        meta = json.loads(str(results.get(key + _META_SUFFIX, "{}")))
        sources.setdefault(str(meta.get("source", "?")), []).append(key)
    for source, keys in sorted(sources.items()):
        lines.append(f"- {source}: {', '.join(f'`{k}`' for k in keys)}")
    return "\n".join(lines) + "\n"


def refresh_report() -> None:
    """Rewrite BENCHMARKS.md from results.json (no new measurement)."""
    results = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    atomic_write_text(REPORT_PATH, render_report(results))


if __name__ == "__main__":
    refresh_report()
