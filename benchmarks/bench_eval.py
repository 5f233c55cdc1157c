"""Wall time of a full zero-shot evaluation on all 11 XQuAD-R languages, on CPU.

Model: multilingual-e5-small as both student (zero-shot) and teacher. Tasks
``clir_sentence``, ``pool``, ``align`` for the 10 non-English languages and
``pool`` + ``retention`` for English, test split, dense scoring, batch 64,
queries and sentences truncated at 128 tokens (the EvalConfig defaults).

Two runs in one process, both against one fresh cache root (a temporary
``OPTICAL_CACHE_DIR`` that links in the prepared models, so nothing the user
already cached is read):

* cold: the teacher document-embedding cache (``cache_root()/doc_cache``) is
  empty, so every candidate pool and FLORES English side is encoded;
* warm: the same evaluation again (fresh output dir, so ``evaluate`` does not
  reuse the finished run), now reading the cached document embeddings.

A cold run happens once, so the two cannot be interleaved; they run back to
back. Wall seconds and the forward fraction (seconds inside model forward passes
/ wall, from the run's own ``timings``) are recorded for both; the unsuffixed
keys are the cold run (what a user's first evaluation costs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from optical.data import resolve_data_dir  # noqa: E402
from optical.data.languages import XQUADR_LANGS  # noqa: E402
from optical.eval.evaluate import EvalConfig, evaluate  # noqa: E402
from optical.models import resolve_model  # noqa: E402
from optical.storage import CACHE_ENV  # noqa: E402

MODEL = "multilingual-e5-small"
TASKS = ["clir_sentence", "pool", "align", "retention"]


def run_once(out_dir: Path, langs: list[str], data_dir: str, device: str) -> dict[str, float]:
    config = EvalConfig(
        student="zero-shot",
        out_dir=str(out_dir),
        langs=langs,
        teacher=MODEL,
        tasks=TASKS,
        split="test",
        device=device,
        data_dir=data_dir,
    )
    run = evaluate(config, progress=False)
    return {"wall": run.timings["wall_seconds"], "forward": run.timings["forward_seconds"], "tasks": len(run.tasks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default=",".join(XQUADR_LANGS), help="comma-separated XQuAD-R languages (default: all 11)")
    parser.add_argument("--data-dir", default=None, help="data dir (default: OPTICAL_DATA_DIR / the project default)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda; keys get a _cuda suffix on CUDA")
    parser.add_argument("--cold-only", action="store_true", help="skip the warm rerun (the headline keys are the cold run's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    langs = [lang for lang in args.langs.split(",") if lang]
    # Models and data are resolved before the cache root is switched to the empty one.
    models_dir = Path(resolve_model(MODEL)).parent
    data_dir = str(resolve_data_dir(args.data_dir))
    with tempfile.TemporaryDirectory(prefix="optical-bench-eval-") as tmp:
        root = Path(tmp)
        (root / "cache").mkdir()
        (root / "cache" / "models").symlink_to(models_dir, target_is_directory=True)
        os.environ[CACHE_ENV] = str(root / "cache")
        cold = run_once(root / "cold", langs, data_dir, args.device)
        # Recorded at once: the warm run may not get to finish on a loaded machine.
        report(cold_results(cold, langs, args.device), "cold", args.device)
        if not args.cold_only:
            warm = run_once(root / "warm", langs, data_dir, args.device)
            report(phase_results(warm, "warm", langs, args.device), "warm", args.device)


def _suffix(langs: list[str], device: str) -> str:
    lang_part = "" if len(langs) == len(XQUADR_LANGS) else "_" + "_".join(langs)
    return lang_part + ("" if device == "cpu" else f"_{device}")


def phase_results(phase: dict[str, float], label: str, langs: list[str], device: str) -> dict[str, float | int | str]:
    """Wall seconds, forward seconds and forward fraction of one run, keys tagged ``_cold`` / ``_warm``."""
    suffix = _suffix(langs, device)
    return {
        f"eval_all_langs_seconds_{label}{suffix}": round(phase["wall"], 2),
        f"eval_forward_fraction_{label}{suffix}": round(phase["forward"] / phase["wall"], 4),
        f"eval_forward_seconds_{label}{suffix}": round(phase["forward"], 2),
    }


def cold_results(cold: dict[str, float], langs: list[str], device: str) -> dict[str, float | int | str]:
    """The cold run's keys, plus the unsuffixed headline keys (what a user's first evaluation costs)."""
    suffix = _suffix(langs, device)
    return {
        f"eval_all_langs_seconds{suffix}": round(cold["wall"], 2),
        f"eval_forward_fraction{suffix}": round(cold["forward"] / cold["wall"], 4),
        **phase_results(cold, "cold", langs, device),
        f"eval_task_keys{suffix}": int(cold["tasks"]),
        f"eval_setup{suffix}": (
            f"zero-shot {MODEL}, tasks {'+'.join(TASKS)}, langs {','.join(langs)}, test split, dense, "
            f"batch 64, max_length 128, {device}, {torch.get_num_threads()} torch threads; cold = empty doc_cache"
        ),
    }


def report(results: dict[str, float | int | str], label: str, device: str) -> None:
    print(f"[{label}]", flush=True)
    for key, value in results.items():
        print(f"{key}: {value}", flush=True)
    record(results, source="benchmarks/bench_eval.py", device=device)


if __name__ == "__main__":
    main()
