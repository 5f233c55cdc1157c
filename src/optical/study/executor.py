"""Where a study's runs are computed: one after another in this process, or as Ray tasks on a cluster.

The unit of work is :func:`execute_run`: it claims the run's directory in the store with an exclusive
``flock`` on ``<run>/.claim``, computes what is missing (distil, then each evaluation) and returns a
:class:`RunOutcome`. The claim makes a run claimed twice (two studies sharing a store, a task Ray
retried) computed once: the second claimant waits, then finds the run done. The kernel drops the lock of
a killed process, so a killed worker's run is picked up again by the next claimant, and resumes from its
checkpoint like any interrupted run. The claim file names its holder (host and pid) while it computes.

:class:`RayExecutor` submits each pending run as a Ray task (``ray.remote`` with ``num_cpus`` /
``num_gpus``) and yields outcomes as they finish; Ray retries a task whose worker died. Ray is the
ecosystem's engine for fanning out experiments and runs the same on a laptop, in a Slurm allocation
(``ray start`` in the job) or on Kubernetes, so nothing here schedules by hand. It is an optional extra
(``pip install 'optical[ray]'``), imported only when asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from optical.errors import OpticalError
from optical.study.grid import StudyRun

CLAIM_FILE = ".claim"
#: Environment variables a worker needs to see the driver's data and cache (a remote worker does not
#: inherit the driver's environment).
FORWARDED_ENV_PREFIX = "OPTICAL_"


class ExecutorKind(StrEnum):
    """``--executor``: ``local`` runs one run after another in this process; ``ray`` fans them out."""

    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to compute one run (picklable: it travels to Ray workers)."""

    run: StudyRun
    run_dir: Path
    models: dict[str, str]
    data_dir: str | None
    keep_weights: bool


@dataclass(frozen=True)
class RunOutcome:
    """What became of one run: ``error`` is the one-line reason it failed (None when it is done);
    ``computed`` is False when another claimant had finished it meanwhile."""

    run_id: str
    error: str | None = None
    computed: bool = True


@contextlib.contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive claim of ``run_dir`` (blocking until another holder releases it or dies)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / CLAIM_FILE, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{socket.gethostname()} {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def execute_run(task: RunTask, progress: bool = False) -> RunOutcome:
    """Compute what ``task``'s run is missing, under its claim; a user-level failure is returned, not raised."""
    from optical.eval.evaluate import evaluate  # heavy imports: only in the process that computes
    from optical.study.status import drop_student_weights, run_status
    from optical.train.trainer import distill

    run, run_dir = task.run, task.run_dir
    with claim(run_dir):
        status = run_status(run, run_dir)
        if status.done:
            return RunOutcome(run.run_id, computed=False)
        try:
            if not run.is_zero_shot and not status.distilled:
                distill(run.distill_config(run_dir, task.models, task.data_dir), progress=progress)
            for query_noise in run.query_noises:
                evaluate(run.eval_config(run_dir, query_noise, task.models, task.data_dir), progress=progress)
        except OpticalError as exc:
            return RunOutcome(run.run_id, error=str(exc))
        if run_status(run, run_dir).done and not run.is_zero_shot and not task.keep_weights:
            drop_student_weights(run_dir)
    return RunOutcome(run.run_id)


@dataclass(frozen=True)
class Concurrency:
    """How an executor will run a study's runs, as far as the dry run's estimate needs to know: how many at once
    (None: the cluster decides, which the driver cannot know before it connects), the torch intra-op threads each
    run gets, and the cores each has when every slot is busy (fewer than its threads when runs ask for a fraction of
    a CPU). A run that shares the machine trains at its own, slower, rate (measured on 2 cores: e5-small, bf16,
    1 thread each for 2 runs at once, 37 pairs/s per run against 61 for one run on 2 threads)."""

    runs_at_once: int | None
    threads_per_run: int
    cores_per_run: float


def available_cores() -> float:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a container's or a Slurm
    job's limit, which ``os.cpu_count()`` ignores; Ray sizes a local cluster by such a quota too)."""
    cores = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    return min(cores, int(quota) / int(period)) if quota != "max" and int(period) > 0 else cores


class LocalExecutor:
    """One run after another in this process (the default)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def describe(self) -> str:
        return "local (sequential)"

    def concurrency(self) -> Concurrency:
        import torch

        threads = torch.get_num_threads()
        return Concurrency(runs_at_once=1, threads_per_run=threads, cores_per_run=min(float(threads), available_cores()))

    def run(self, tasks: Iterable[RunTask]) -> Iterator[RunOutcome]:
        for task in tasks:
            yield execute_run(task, progress=self.progress)


@dataclass(frozen=True)
class RayResources:
    """What each run asks Ray for (``--cpus-per-run``, ``--gpus-per-run``; None: 1 where the cluster has GPUs)."""

    cpus: float = 1.0
    gpus: float | None = None

    def __post_init__(self) -> None:
        if not self.cpus > 0:
            raise OpticalError(f"--cpus-per-run {self.cpus:g}: expected a number > 0")
        if self.gpus is not None and self.gpus < 0:
            raise OpticalError(f"--gpus-per-run {self.gpus:g}: expected a number >= 0")


class RayExecutor:
    """Each run a Ray task, on the cluster at ``address`` (None: a local cluster of this machine's cores).

    The run store must be one path that every node sees (a shared file system), as must the data and
    model caches; the driver forwards its ``OPTICAL_*`` environment variables to the workers.
    """

    def __init__(
        self,
        address: str | None = None,
        resources: RayResources = RayResources(),
        max_retries: int = 3,
        num_cpus: int | None = None,
    ) -> None:
        self.address, self.resources, self.max_retries, self.num_cpus = address, resources, max_retries, num_cpus
        self.gpus_per_run = 0.0

    def describe(self) -> str:
        where = self.address or "a local cluster"
        gpus = "1 GPU where the cluster has GPUs" if self.resources.gpus is None else f"{self.resources.gpus:g} GPU"
        return f"ray ({where}; {self.resources.cpus:g} CPU and {gpus} per run)"

    def concurrency(self) -> Concurrency:
        """A local cluster holds this machine's cores (or ``num_cpus``) and runs as many runs at once as their
        ``--cpus-per-run`` fit. Ray sets each task's ``OMP_NUM_THREADS`` to its CPUs (rounded down, at least 1)
        unless the driver's environment already sets it, which the workers then inherit. Where runs get GPUs (asked
        for, or by default on a machine that has them) the GPUs, not the cores, bound how many run at once: the
        cluster decides, as it does for a cluster joined by address."""
        inherited = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(inherited) if inherited.isdigit() and int(inherited) > 0 else max(1, int(self.resources.cpus))
        if self.address is not None or self.resources.gpus or (self.resources.gpus is None and _local_gpus()):
            return Concurrency(runs_at_once=None, threads_per_run=threads, cores_per_run=float(threads))
        cores = float(self.num_cpus) if self.num_cpus else available_cores()
        at_once = max(1, int(cores // self.resources.cpus))
        return Concurrency(runs_at_once=at_once, threads_per_run=threads, cores_per_run=min(float(threads), cores / at_once))

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise OpticalError("--executor ray needs Ray: pip install 'optical[ray]'") from None
        started_here = not ray.is_initialized()
        if started_here and self.address is not None:
            check_reachable(self.address)
        if started_here:
            env_vars = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}
            try:
                ray.init(
                    address=self.address,
                    num_cpus=self.num_cpus if self.address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": env_vars} if env_vars else None,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise OpticalError(f"--address {self.address}: cannot connect to a Ray cluster ({first})") from None
        gpus = self.resources.gpus
        self.gpus_per_run = float(gpus) if gpus is not None else (1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0)
        return ray, started_here

    def _slots(self, ray) -> int:
        """How many runs to keep submitted: as many as the cluster holds at once now (its CPUs, and GPUs where runs
        ask for them, over what each run asks for; at least 1), asked again whenever a run ends. A joined cluster
        gets twice that, so that an autoscaling one sees runs waiting and grows (and the window with it); those
        queued runs may start after ``--stop-after``."""
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 0) // self.resources.cpus
        if self.gpus_per_run:
            slots = min(slots, resources.get("GPU", 0) // self.gpus_per_run)
        return max(1, int(slots)) * (1 if self.address is None else 2)

    def run(self, tasks: Iterable[RunTask]) -> Iterator[RunOutcome]:
        ray, started_here = self._connect()
        try:
            remote = ray.remote(num_cpus=self.resources.cpus, num_gpus=self.gpus_per_run, max_retries=self.max_retries)(
                execute_run
            )
            # Submitted as slots free up, not all at once: runs start in the study's order, and a caller that stops
            # handing out tasks (``--stop-after``) leaves none queued in the cluster.
            slots, queue, pending = self._slots(ray), iter(tasks), {}
            for task in itertools.islice(queue, slots):
                pending[remote.remote(task)] = task
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task died more often than it may be retried
                    lines = [line for line in str(exc).splitlines() if line.strip()]
                    yield RunOutcome(task.run.run_id, error=f"ray task failed: {lines[-1] if lines else type(exc).__name__}")
                for task in itertools.islice(queue, max(0, self._slots(ray) - len(pending))):
                    pending[remote.remote(task)] = task
        finally:
            if started_here:
                ray.shutdown()


#: Seconds a cluster address has to accept a connection: Ray itself retries an address where nothing listens
#: for minutes.
CONNECT_TIMEOUT_S = 3.0


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, in one line and within ``timeout`` seconds, a ``host:port`` address (``ray://`` too) where nothing
    accepts a connection; ``auto`` and addresses without a port are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError, OverflowError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else getattr(exc, "strerror", None) or str(exc)
        raise OpticalError(
            f"--address {address}: no Ray cluster answers there ({reason} within {timeout:g} s); "
            "start it (`ray start --head`) or fix the address"
        ) from None


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def make_executor(
    kind: ExecutorKind, progress: bool = True, address: str | None = None, resources: RayResources = RayResources()
) -> LocalExecutor | RayExecutor:
    """The executor ``optical study run --executor KIND`` asks for."""
    if kind is ExecutorKind.RAY:
        if address is not None:  # before the study dir is written: a dead address is refused in seconds
            check_reachable(address)
        return RayExecutor(address=address, resources=resources)
    if address is not None:
        raise OpticalError("--address is for --executor ray; drop it or add --executor ray")
    return LocalExecutor(progress=progress)
