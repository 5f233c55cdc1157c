"""Executors: a run claimed twice is computed once; the smoke study on a local 2-worker Ray cluster gives the
sequential run's manifest and report, and a killed worker's run is redone."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from optical.errors import OpticalError
from optical.report import write_study_report
from optical.study import expand, load_study_config, run_study
from optical.study.executor import CLAIM_FILE, ExecutorKind, RayExecutor, RayResources, RunTask, execute_run, make_executor
from optical.study.runner import prepare_models

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "study-smoke.yaml"


def test_a_run_claimed_twice_is_computed_once(study_env, tmp_path):
    config = load_study_config(SMOKE_CONFIG)
    store = tmp_path / "store"
    models = prepare_models(config, store, build=True)
    run = next(r for r in expand(config).runs if r.method == "mse")
    task = RunTask(run, store / run.run_id, models, config.data_dir, keep_weights=True)
    outcomes = []
    workers = [threading.Thread(target=lambda: outcomes.append(execute_run(task))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(o.computed for o in outcomes) == [False, True]
    assert all(o.error is None for o in outcomes)
    record = json.loads((store / run.run_id / "distill" / "run.json").read_text())
    assert record["completed"] and record["result"]["resumed_from_step"] is None
    assert (store / run.run_id / CLAIM_FILE).read_text() == ""  # released: no holder named


def test_executor_options_are_checked_in_one_line():
    with pytest.raises(OpticalError, match="--cpus-per-run 0: expected a number > 0"):
        RayResources(cpus=0)
    with pytest.raises(OpticalError, match="--address is for --executor ray"):
        make_executor(ExecutorKind.LOCAL, address="auto")


def _manifest_runs(study_dir: Path) -> list[dict]:
    return json.loads((study_dir / "study.json").read_text())["runs"]


class _WorkerKiller(threading.Thread):
    """Kills (SIGKILL) the first worker process seen holding the claim of a run that has started training."""

    def __init__(self, store: Path) -> None:
        super().__init__(daemon=True)
        self.store, self.killed_run, self.stop = store, None, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.killed_run is None:
            for claim in self.store.glob(f"*/{CLAIM_FILE}"):
                holder = claim.read_text().split()
                if len(holder) == 2 and (claim.parent / "distill" / "metrics.jsonl").is_file():
                    pid = int(holder[1])
                    if pid != os.getpid():
                        os.kill(pid, signal.SIGKILL)
                        self.killed_run = claim.parent.name
                        break
            time.sleep(0.01)


def test_ray_study_matches_the_sequential_one_and_redoes_a_killed_workers_run(smoke_study, tmp_path):
    pytest.importorskip("ray")
    store = tmp_path / "store"
    killer = _WorkerKiller(store)
    killer.start()
    executor = RayExecutor(resources=RayResources(cpus=1, gpus=0), num_cpus=2)
    try:
        result = run_study(load_study_config(SMOKE_CONFIG), tmp_path / "study", store=store, progress=False, executor=executor)
    finally:
        killer.stop.set()
        killer.join()
    assert not result.failures
    assert killer.killed_run is not None, "no worker was caught training: the kill was not exercised"
    killed = json.loads((store / killer.killed_run / "distill" / "run.json").read_text())
    assert killed["completed"]
    # Ray gave each run's process one intra-op thread per CPU it asked for, as the dry run's estimate assumes.
    assert {json.loads(path.read_text())["throughput"]["torch_threads"] for path in store.glob("*/distill/run.json")} == {1}
    assert {json.loads(path.read_text())["timings"]["torch_threads"] for path in store.glob("*/eval-*/eval.json")} == {1}

    def comparable(runs: list[dict]) -> list[dict]:
        return [{k: v for k, v in run.items() if k != "path"} for run in runs]

    assert comparable(_manifest_runs(result.study_dir)) == comparable(_manifest_runs(smoke_study.study_dir))
    write_study_report(result.study_dir)
    ours = (result.study_dir / "report" / "report.md").read_text()
    sequential = (smoke_study.study_dir / "report" / "report.md").read_text()
    assert _without_costs(ours) == _without_costs(sequential)


#: Timing columns of the training section's tables (wall clock, threads per run: not results), dropped before comparing.
TIMING_COLUMNS = {"train min", "pairs/s", "threads", "median min", "min", "max"}


def _without_costs(report: str) -> str:
    """The report less the training section's timing cells (per-run minutes and pairs/s, the cost table)."""
    lines, in_training, keep = [], False, None
    for line in report.splitlines():
        if line.startswith("## "):
            in_training = line == "## Training runs"
        if not (in_training and line.startswith("|")):
            keep = None
            lines.append(line)
            continue
        cells = line.split("|")[1:-1]
        if keep is None:  # a table's header row
            keep = [i for i, cell in enumerate(cells) if cell.strip() not in TIMING_COLUMNS]
        lines.append("|".join(cells[i] for i in keep if i < len(cells)))
    return "\n".join(lines)


class _FakeRay:
    """The part of Ray's API the executor uses: tasks finish in submission order; the cluster's CPUs can grow."""

    class exceptions:  # noqa: N801 (Ray's name)
        class RayError(Exception):
            pass

    def __init__(self, cpus: int) -> None:
        self.cpus, self.in_flight, self.most_in_flight, self.submitted = cpus, [], 0, []

    def cluster_resources(self) -> dict:
        return {"CPU": self.cpus}

    def remote(self, **_options):
        def wrap(function):
            fake = self

            class Remote:
                @staticmethod
                def remote(task):
                    fake.submitted.append(task.run.run_id)
                    fake.in_flight.append(task.run.run_id)
                    fake.most_in_flight = max(fake.most_in_flight, len(fake.in_flight))
                    return task.run.run_id  # the object ref

            return Remote

        return wrap

    def wait(self, refs, num_returns=1):
        return [refs[0]], refs[1:]

    def get(self, ref):
        from optical.study.executor import RunOutcome

        self.in_flight.remove(ref)
        return RunOutcome(ref)


def test_ray_runs_are_submitted_as_slots_free_up_in_order_and_never_after_the_caller_stops():
    from types import SimpleNamespace

    tasks = [SimpleNamespace(run=SimpleNamespace(run_id=f"r{i}")) for i in range(7)]
    fake = _FakeRay(cpus=2)
    executor = RayExecutor(resources=RayResources(cpus=1, gpus=0))
    executor._connect = lambda: (fake, False)
    drawn = []

    def handed_out():
        for task in tasks:
            if len(drawn) == 5:  # the caller's deadline: no sixth run starts
                return
            drawn.append(task.run.run_id)
            yield task

    outcomes = []
    for outcome in executor.run(handed_out()):
        outcomes.append(outcome.run_id)
        if outcome.run_id == "r1":
            fake.cpus = 3  # the cluster grew: the window follows
    assert fake.submitted == outcomes == ["r0", "r1", "r2", "r3", "r4"]
    assert fake.most_in_flight == 3 and drawn == fake.submitted
