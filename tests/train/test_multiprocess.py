"""Two training processes on the CPU (gloo), launched for real by torchrun and by ``accelerate launch``.

* Two processes end with the weights of one process at the same global batch and batch order: each
  process takes every second batch of ``epoch_batches`` and DDP averages the two gradients, which is
  what one process with ``--grad-accum 2`` does with the same two batches (accelerate divides each
  micro-batch's loss by the accumulation count). The learning rates of every step match too.
* SIGKILL one rank after a checkpoint exists, rerun the command: it resumes and ends with the weights
  of the uninterrupted two-process run; one process may not resume that checkpoint.
* Only rank 0 writes the run. Every rank records its file writes with a Python audit hook (``open``
  with a write mode, renames, mkdir, removals; :func:`sys.addaudithook`), installed by a
  ``sitecustomize`` first on ``PYTHONPATH``. ``torch.save`` and safetensors' ``save_file`` write
  through native code that raises no audit event, so the same ``sitecustomize`` wraps them to log
  their target and call them unchanged. What rank 1 writes in the output dir is exactly what
  accelerate's ``save_state`` does on every process (accelerate 1.x ``Accelerator.save_state`` and
  ``checkpointing.save_accelerator_state``): ``os.makedirs`` of the checkpoint being built
  (``checkpoint.tmp``; twice per checkpoint) and its own RNG state file ``random_states_1.pkl`` in it.
  Rank 1 writes nothing in the optical cache either (the teacher cache is rank 0's); outside both it
  only makes torch's own temporary files. The checkpoints hold both ranks' RNG states.
* Launches that would not train together are caught: torchrun with ``--device auto`` and no CUDA device
  is refused (accelerate would set up two single-process runs on one output dir), and ``accelerate
  launch --cpu --num_processes 2`` (which starts one process) trains alone with a warning.

The teacher (which is also the student's initialisation) has dropout 0: each process draws dropout
masks from its own RNG stream, so with dropout two processes and one would train on different masks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed
from safetensors.torch import load_file

from optical.models.tiny import make_tiny_model
from optical.storage import PROBE_PREFIX

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed gloo is unavailable",
)

BUDGET, BATCH, CHECKPOINT_EVERY = 1024, 8, 4
STEPS = BUDGET // BATCH // 2  # two batches per optimizer step: two processes, or one with --grad-accum 2
OPTIONS = ["--lang", "el", "--method", "ot", "--budget", str(BUDGET), "--batch-size", str(BATCH), "--max-length", "32"]
OPTIONS += ["--select-on", "none", "--checkpoint-every", str(CHECKPOINT_EVERY), "--device", "cpu", "--quiet"]
OPTIONS += ["--mixed-precision", "no"]  # the weights of 2 processes and of 1 are compared in fp32

# Logs every file write of a launched rank (RANK is set by torchrun) to AUDIT_DIR/rank<RANK>.jsonl.
SITECUSTOMIZE = textwrap.dedent(
    """
    import json, os, sys

    if os.environ.get("RANK") is not None and os.environ.get("AUDIT_DIR"):
        _log = open(os.path.join(os.environ["AUDIT_DIR"], f"rank{os.environ['RANK']}.jsonl"), "a", buffering=1)
        _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def _record(event, *paths):
            if all(isinstance(p, (str, bytes, os.PathLike)) for p in paths):
                _log.write(json.dumps([event, *(os.path.abspath(os.fsdecode(p)) for p in paths)]) + "\\n")

        def _hook(event, args):
            # A dir_fd other than -1 (or None): a name relative to a dir that shutil.rmtree opened, whose own
            # event names the tree. os.replace raises os.rename, os.unlink os.remove.
            if event == "open":
                path, mode, flags = args
                if (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS):
                    _record(event, path)
            elif event in ("os.mkdir", "os.rmdir", "os.remove") and args[-1] in (None, -1):
                _record(event, args[0])
            elif event in ("os.rename", "os.link") and args[2] in (None, -1) and args[3] in (None, -1):
                _record(event, args[0], args[1])
            elif event in ("shutil.rmtree", "os.truncate", "os.symlink", "shutil.copyfile"):
                _record(event, *[a for a in args if isinstance(a, (str, bytes, os.PathLike))])

        sys.addaudithook(_hook)

        import safetensors.torch
        import torch

        def _logged(name, save):
            def wrapper(obj, target, *args, **kwargs):
                _record(name, target)
                return save(obj, target, *args, **kwargs)
            return wrapper

        # Native writers, wrapped before accelerate and transformers import them by name.
        torch.save = _logged("torch.save", torch.save)
        safetensors.torch.save_file = _logged("safetensors.save_file", safetensors.torch.save_file)
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, mirror_dir):
    """The dropout-free tiny teacher, and the environment of the launched commands (a cache shared by
    this module's runs, the data mirror, the audit ``sitecustomize`` first on PYTHONPATH)."""
    root = tmp_path_factory.mktemp("multiprocess")
    teacher = make_tiny_model(root / "teacher", seed=0)
    config = json.loads((teacher / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (teacher / "config.json").write_text(json.dumps(config))
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, OPTICAL_DATA_DIR=str(mirror_dir), OPTICAL_CACHE_DIR=str(root / "cache"), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(root / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return root, teacher, env


def torchrun(*args: str) -> list[str]:
    # --standalone: a local rendezvous on a free port.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


# The flags accelerate would otherwise fill in with a warning each.
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no"]
ACCELERATE += ["--dynamo_backend", "no"]


def accelerate_launch(*args: str) -> list[str]:
    # --multi_gpu starts the processes with torch's elastic launcher; the command's --device cpu makes them
    # gloo CPU processes (accelerate's --cpu would start one process). Port 0: a free one.
    return [*ACCELERATE, "--multi_gpu", "--num_processes", "2", "--main_process_port", "0", *args]


def distill(launcher, setup, out: Path, *extra: str) -> list[str]:
    """The ``optical distill`` command line of this module's runs, under ``launcher`` (None: one plain process)."""
    command = ["-m", "optical.cli", "distill", *OPTIONS, "--teacher", str(setup[1]), "--out", str(out), *extra]
    return launcher(*command) if launcher else [sys.executable, *command]


def launch(command: list[str], setup, audit: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(setup[2])
    if audit is not None:
        audit.mkdir()
        env["AUDIT_DIR"] = str(audit)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "student" / "model.safetensors"))


def lrs(out: Path) -> list[float]:
    return [json.loads(line)["lr"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def writes(audit: Path, rank: int, out: Path) -> list[tuple[str, str]]:
    """The writes of ``rank`` inside ``out``: (event, path relative to ``out``), one per path an event names."""
    log = audit / f"rank{rank}.jsonl"
    found = []
    for line in log.read_text().splitlines() if log.exists() else []:
        event, *paths = json.loads(line)
        found += [(event, str(Path(p).relative_to(out))) for p in paths if Path(p).is_relative_to(out)]
    # check_output_dir's writability probe: a uniquely named empty dir, removed at once, on every rank alike.
    return [(event, path) for event, path in found if not Path(path).name.startswith(PROBE_PREFIX)]


def rank1_writes_only_its_rng_state(audit: Path, out: Path) -> None:
    allowed = {("os.mkdir", "checkpoint.tmp"), ("torch.save", "checkpoint.tmp/random_states_1.pkl")}
    found = set(writes(audit, 1, out))
    assert found <= allowed, sorted(found - allowed)
    assert ("torch.save", "checkpoint.tmp/random_states_1.pkl") in found  # the audit saw rank 1 at all


@pytest.fixture(scope="module")
def two_processes(setup):
    """The uninterrupted two-process run (torchrun), audited; it keeps its last checkpoint."""
    root = setup[0]
    out, audit = root / "two", root / "audit-two"
    done = launch(distill(torchrun, setup, out, "--keep-checkpoint"), setup, audit)
    return out, audit, done


def test_two_processes_end_with_the_weights_of_one_with_accumulation(setup, two_processes):
    out_two, _, done = two_processes
    out_one = setup[0] / "one"
    launch(distill(None, setup, out_one, "--grad-accum", "2"), setup)

    a, b = weights(out_two), weights(out_one)
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff <= 1e-5, f"max abs weight difference {diff}"
    initial = load_file(str(setup[1] / "model.safetensors"))
    assert not torch.equal(
        a["encoder.layer.0.attention.self.query.weight"], initial["encoder.layer.0.attention.self.query.weight"]
    )
    # The schedule's horizon counts optimizer steps in both: the same rate at every step, down to 0.
    assert lrs(out_two) == pytest.approx(lrs(out_one), rel=1e-9, abs=1e-15)
    assert lrs(out_two)[-1] == 0.0 and len(lrs(out_two)) == STEPS

    two, one = (json.loads((o / "run.json").read_text()) for o in (out_two, out_one))
    assert (two["num_processes"], one["num_processes"]) == (2, 1)
    for info, processes, accum in ((two, 2, 1), (one, 1, 2)):
        result = info["result"]
        assert result["steps"] == STEPS
        # Every process's pairs: steps x per-process batch x processes x accumulation, over the training time.
        pairs = result["pairs_per_second"] * info["timings"]["train_seconds"]
        assert pairs == pytest.approx(STEPS * BATCH * processes * accum, rel=1e-6)
    assert done.stdout.count("student saved") == 1, done.stdout


def test_only_rank_0_writes_the_run(setup, two_processes):
    out, audit, _ = two_processes
    rank0 = set(writes(audit, 0, out))
    # The audit sees rank 0's writes of every kind: marker, log, checkpoints (swapped in by renames), student, run.json.
    expected = {
        ("os.rename", "config.json"),
        ("open", "metrics.jsonl"),
        ("torch.save", "checkpoint.tmp/random_states_0.pkl"),
        ("torch.save", "checkpoint.tmp/optimizer.bin"),
        ("safetensors.save_file", "checkpoint.tmp/model.safetensors"),
        ("os.rename", "checkpoint"),
        ("shutil.rmtree", "checkpoint.old"),
        ("os.rename", "student"),
        ("os.rename", "run.json"),
    }
    assert expected <= rank0, sorted(expected - rank0)
    assert any(event == "safetensors.save_file" and path.startswith(".student.tmp.") for event, path in rank0)
    rank1_writes_only_its_rng_state(audit, out)
    # Rank 0 builds the teacher cache first (main_process_first), rank 1 then only reads it.
    assert writes(audit, 1, setup[0] / "cache") == []
    assert_complete_checkpoint(out)


def assert_complete_checkpoint(out: Path) -> None:
    """Both ranks' RNG states are in the checkpoint (accelerate's load_state would skip a missing one)."""
    held = {path.name for path in (out / "checkpoint").iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl", "model.safetensors", "trainer_state.json"} <= held, held
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["num_processes"] == 2


def test_kill_one_rank_then_rerun_resumes(setup, two_processes):
    """SIGKILL rank 1 once a checkpoint exists; the same command (launched by accelerate) resumes."""
    root, _, env = setup
    out, audit = root / "killed", root / "audit-killed"
    command = distill(accelerate_launch, setup, out)
    audit.mkdir()
    launcher = subprocess.Popen(
        command, env={**env, "AUDIT_DIR": str(audit)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.time() + 240
        while checkpoint_step(out) < CHECKPOINT_EVERY and launcher.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        rank_process(launcher.pid, 1).send_signal(signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:  # a failed assertion above: leave no launcher behind
            launcher.kill()
            launcher.wait()
    assert launcher.returncode != 0, stderr[-3000:]
    killed_at = checkpoint_step(out)
    assert 0 < killed_at < STEPS, f"not killed mid-run (checkpoint at step {killed_at})"
    assert not (out / "run.json").exists()
    rank1_writes_only_its_rng_state(audit, out)
    assert_complete_checkpoint(out)

    # Its steps hold two processes' batches: one process may not resume it.
    alone = subprocess.run(distill(None, setup, out), env=env, capture_output=True, text=True, timeout=300)
    assert alone.returncode == 2
    assert "was written by 2 process(es), this run has 1: resume it with 2" in alone.stderr
    assert checkpoint_step(out) == killed_at

    resumed_audit = root / "audit-resumed"
    done = launch(command, setup, resumed_audit)
    info = json.loads((out / "run.json").read_text())
    assert info["result"]["resumed_from_step"] >= killed_at
    assert (info["result"]["steps"], info["num_processes"]) == (STEPS, 2)
    assert done.stdout.count("student saved") == 1, done.stdout
    a, b = weights(out), weights(two_processes[0])
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    rank1_writes_only_its_rng_state(resumed_audit, out)


def test_processes_that_would_train_alone_are_refused(setup):
    """torchrun with --device auto and no CUDA device: accelerate would set up two separate runs on one dir."""
    out = setup[0] / "auto"
    command = distill(torchrun, setup, out, "--device", "auto")  # the last flag wins
    done = subprocess.run(command, env={**setup[2], "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "optical: error: the launcher started 2 processes but accelerate runs each alone" in done.stderr
    assert not out.exists()


def test_accelerate_cpu_launch_of_two_processes_warns(setup):
    """`accelerate launch --cpu --num_processes 2` starts one process (accelerate's simple launcher): it trains
    alone, correctly, and says so."""
    out = setup[0] / "accelerate-cpu"
    command = [*ACCELERATE, "--cpu", "--num_processes", "2", *distill(None, setup, out, "--budget", "32")[1:]]
    done = launch(command, setup)
    assert "optical: warning: `accelerate launch --cpu --num_processes N` runs one process" in done.stderr
    assert json.loads((out / "run.json").read_text())["num_processes"] == 1


def rank_process(launcher_pid: int, rank: int) -> psutil.Process:
    """The worker of ``rank`` among the launcher's descendants (its RANK variable, set by torch's launcher)."""
    for child in psutil.Process(launcher_pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank):
                return child
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no rank {rank} process (did the run end before a checkpoint was seen?)")


def checkpoint_step(out: Path) -> int:
    try:
        return json.loads((out / "checkpoint" / "trainer_state.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0
