"""Kill -9 in the middle of a run, rerun the same command: it resumes and ends with the same weights."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file


def command(tiny_teacher, out):
    return [
        sys.executable,
        "-m",
        "optical.cli",
        "distill",
        "--lang",
        "el",
        "--method",
        "ot+mse:0.5",
        "--teacher",
        str(tiny_teacher),
        "--budget",
        "1536",
        "--batch-size",
        "16",
        "--max-length",
        "32",
        "--checkpoint-every",
        "3",
        "--select-on",
        "none",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]


def checkpoint_step(out):
    state = out / "checkpoint" / "trainer_state.json"
    try:
        return json.loads(state.read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def test_kill_and_resume_gives_the_same_weights(tiny_teacher, tmp_path):
    env = dict(os.environ)
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"

    process = subprocess.Popen(command(tiny_teacher, killed_dir), env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while checkpoint_step(killed_dir) < 9 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = checkpoint_step(killed_dir)
    assert 0 < killed_at < 96, f"the run was not killed mid-way (checkpoint at step {killed_at})"
    assert not (killed_dir / "run.json").exists()
    at_kill = json.loads((killed_dir / "checkpoint" / "trainer_state.json").read_text())

    resumed = subprocess.run(command(tiny_teacher, killed_dir), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((killed_dir / "run.json").read_text())
    assert info["result"]["resumed_from_step"] >= killed_at
    assert info["result"]["steps"] == 96
    # The total counts the killed session up to its checkpoint, not only the resumed one.
    timings = info["timings"]
    resumed_training = timings["train_seconds"] - at_kill["train_seconds"]
    assert at_kill["wall_seconds"] > at_kill["train_seconds"] > 0
    assert timings["total_seconds"] >= at_kill["wall_seconds"] + resumed_training

    clean = subprocess.run(command(tiny_teacher, clean_dir), env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    a = load_file(str(killed_dir / "student" / "model.safetensors"))
    b = load_file(str(clean_dir / "student" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The log holds each step exactly once, also across the kill.
    steps = [json.loads(line)["step"] for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 97))
