"""Where evaluations run: in this process, in a local process pool, or on a Dask cluster.

Every executor takes a batch of :class:`EvalTask` and yields :class:`EvalResult` as they finish, in any
order (the caller stores each one at once). The :class:`EvaluatorSpec` (config, supernets, LUT) reaches
each worker once, when the worker starts, not with every task. A worker that dies mid-evaluation has its
task run again (up to ``retries`` times) instead of losing it.

A Ctrl-C is the parent's alone: local workers ignore SIGINT (a traceback from each of them would bury
the one ``interrupted:`` line), and :meth:`abort` stops them at once instead of waiting for their
evaluations.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from harmonic_nas.errors import UserError
from harmonic_nas.search.evaluator import EvalResult, EvalTask, Evaluator, EvaluatorSpec, init_worker, run_in_worker


class Executor(Protocol):
    name: str

    def run(self, tasks: Sequence[EvalTask]) -> Iterator[EvalResult]: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class InlineExecutor:
    """Evaluations one after another in this process (workers = 1, debugging, tests)."""

    name = "inline"

    def __init__(self, evaluate: Callable[[EvalTask], EvalResult]) -> None:
        self.evaluate = evaluate

    @classmethod
    def from_spec(cls, spec: EvaluatorSpec) -> InlineExecutor:
        return cls(Evaluator(spec))

    def run(self, tasks: Sequence[EvalTask]) -> Iterator[EvalResult]:
        for task in tasks:
            yield self.evaluate(task)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _init_local_worker(spec: EvaluatorSpec) -> None:
    """A pool worker dies with the process that owns the pool (a kill -9 of the search leaves no orphans)
    and leaves a Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    init_worker(spec)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Start workers with SIGINT blocked: the mask survives fork and exec, so a Ctrl-C while a new worker
    imports torch (before its initializer ignores SIGINT) reaches the parent only."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class LocalPoolExecutor:
    """``workers`` spawned processes with ``spec.threads`` threads each; a pool broken by a dead worker is
    rebuilt and the unfinished tasks resubmitted."""

    name = "local"

    def __init__(self, spec: EvaluatorSpec, workers: int, retries: int = 2) -> None:
        self.spec = spec
        self.workers = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        # spawn: forking a process whose OpenMP threads already ran can deadlock the child.
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_local_worker, initargs=(self.spec,))
        return self._pool

    def run(self, tasks: Sequence[EvalTask]) -> Iterator[EvalResult]:
        pool = self._pool or self._fresh_pool()
        attempts = {task.key: 0 for task in tasks}
        pending = self._submit(pool, tasks)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken: list[EvalTask] = []
            for future in done:
                task = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken.append(task)
                    continue
                yield result
            if broken:  # a worker died: every task still in the pool is lost with it
                lost = broken + list(pending.values())
                for task in lost:
                    attempts[task.key] += 1
                    if attempts[task.key] > self.retries:
                        raise UserError(f"evaluation {task.kind} {task.key} killed its worker {attempts[task.key]} "
                                        f"times; giving up (finished evaluations are stored: run the same command again to continue)")
                pool = self._fresh_pool()
                pending = self._submit(pool, lost)

    @staticmethod
    def _submit(pool: ProcessPoolExecutor, tasks: Sequence[EvalTask]) -> dict[Future[EvalResult], EvalTask]:
        with _sigint_blocked():  # a submit may start a worker
            return {pool.submit(run_in_worker, t): t for t in tasks}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        """Kill the workers (their running evaluations are lost; every finished one is stored)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
        if kill is not None:
            kill()
        else:
            for process in list((pool._processes or {}).values()):
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


_worker_lock = threading.Lock()


def _run_locked(task: EvalTask) -> EvalResult:
    """One evaluation at a time per worker: its feature cache and torch threads are per process."""
    with _worker_lock:
        return run_in_worker(task)


class _EvaluatorPlugin:
    """Dask worker plugin: builds the worker's evaluator once, when the worker (re)starts. A worker
    announcing a GPU resource evaluates on its GPU."""

    name = "harmonic-nas-evaluator"

    def __init__(self, spec: EvaluatorSpec) -> None:
        self.spec = spec

    def setup(self, worker: Any) -> None:
        import dataclasses

        import torch

        spec = self.spec
        if worker.state.total_resources.get("GPU") and torch.cuda.is_available():
            spec = dataclasses.replace(spec, device="cuda")
        init_worker(spec)

    def teardown(self, worker: Any) -> None:
        pass


class DaskExecutor:
    """Evaluations on a Dask cluster (``address`` of its scheduler, or a Client/LocalCluster given).

    Tasks need a ``GPU`` resource when any worker announces one, so each GPU runs one evaluation at a
    time; the scheduler reruns the task of a dead worker elsewhere (``retries`` more times on errors).
    """

    name = "dask"

    def __init__(self, spec: EvaluatorSpec, address: Any, retries: int = 2) -> None:
        try:
            from distributed import Client, WorkerPlugin
        except ImportError:
            raise UserError("the Dask executor needs dask.distributed: pip install 'dask[distributed]'") from None
        try:
            self.client = address if isinstance(address, Client) else Client(address, timeout="20s")
        except OSError as exc:
            raise UserError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._owns_client = not isinstance(address, Client)
        self.retries = retries
        plugin = type("EvaluatorPlugin", (_EvaluatorPlugin, WorkerPlugin), {})(spec)
        self.client.register_plugin(plugin, name=_EvaluatorPlugin.name)

    def _resources(self) -> dict[str, int] | None:
        workers = self.client.scheduler_info()["workers"].values()
        return {"GPU": 1} if any(w.get("resources", {}).get("GPU") for w in workers) else None

    def run(self, tasks: Sequence[EvalTask]) -> Iterator[EvalResult]:
        from distributed import as_completed

        resources = self._resources()
        futures = [
            self.client.submit(_run_locked, task, key=f"{task.kind}-{task.key}", pure=False,
                               retries=self.retries, resources=resources)
            for task in tasks
        ]
        for future in as_completed(futures):
            yield future.result()
            future.release()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def abort(self) -> None:
        """Closing the client cancels its tasks; the cluster's workers are not ours to stop."""
        self.close()
