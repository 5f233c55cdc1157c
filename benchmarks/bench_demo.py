"""Wall time of ``optical demo`` with cold caches (the README's "how long").

Figure: ``demo_minutes`` (goal < 5): the demo's default job (el, 2000 pairs, mse and ot, seed 0, every
evaluation) run as a user runs it, in a fresh interpreter, from an empty teacher cache, document cache
and run directory. Data and the built models are inputs, not caches, and are linked from the user
cache (``make demo``'s set-up puts them there). Also ``demo_peak_rss_gib``: the peak resident memory
of the demo process.

Usage (next to nothing else running)::

    .venv/bin/python benchmarks/bench_demo.py
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PROJECT_ROOT, cold_cache, publish  # noqa: E402
from optical.train.precision import cpu_bf16_support  # noqa: E402

SCRIPT = "benchmarks/bench_demo.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the figures, record nothing")
    args = parser.parse_args(argv)
    optical = Path(sys.executable).with_name("optical")
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, OPTICAL_CACHE_DIR=str(cold_cache(work / "cache")))
        tick = time.perf_counter()
        subprocess.run([str(optical), "demo", "--out", str(work / "demo"), "--quiet"], env=env, check=True, cwd=PROJECT_ROOT)
        minutes = (time.perf_counter() - tick) / 60
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results: dict[str, float | str] = {
        "demo_minutes": round(minutes, 2),
        "demo_peak_rss_gib": round(peak_kib / 2**20, 2),
        "demo_setup": (
            "`optical demo --quiet` (el, 2000 pairs, mse and ot, seed 0, default evaluations), wall minutes of the "
            "command in a fresh interpreter; empty teacher cache, document cache and run directory; data and built "
            "models linked from the user cache; default torch threads; training and evaluation precision auto "
            f"({'bf16: this CPU has ' + bf16 if (bf16 := cpu_bf16_support()) else 'fp32: this CPU has no AVX512-BF16/AMX'})"
        ),
    }
    publish(results, SCRIPT, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
