"""Executors against the in-process evaluator: a real spawned process pool and a real Dask cluster give
the same results, survive a worker killed mid-evaluation, and Dask places evaluations on GPU workers."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from helpers import evaluator_spec, search_config

from harmonic_nas.search.evaluator import EvalResult, EvalTask, Evaluator
from harmonic_nas.search.executors import DaskExecutor, LocalPoolExecutor
from harmonic_nas.space import CandidateSpace

distributed = pytest.importorskip("distributed")

SPACE = CandidateSpace.from_config(search_config(Path("unused")))
IMAGE, THUMB = SPACE.backbones["image"], SPACE.backbones["thumb"]
TASKS = [
    EvalTask("image:a", "backbone", IMAGE.parse({"ks": [3, 5, 5, 3], "e": [3, 4, 4, 3], "d": [2, 1]}), modality="image"),
    EvalTask("image:b", "backbone", IMAGE.parse({"ks": [5, 5, 3, 3], "e": [4, 4, 3, 3], "d": [1, 2]}), modality="image"),
    EvalTask("image:c", "backbone", IMAGE.parse({"ks": [3, 3, 3, 3], "e": [3, 3, 3, 3], "d": [1, 1]}), modality="image"),
    EvalTask("thumb:a", "backbone", THUMB.parse({"hidden": 32, "blocks": 2, "pieces": 2, "width_mult": 1.0}), modality="thumb"),
    EvalTask("thumb:b", "backbone", THUMB.parse({"hidden": 16, "blocks": 1, "pieces": 2, "width_mult": 1.0}), modality="thumb"),
    EvalTask("cand", "candidate", SPACE.parse({"backbones": {"image": {"ks": [3, 5, 5, 3], "e": [3, 4, 4, 3], "d": [2, 1]},
                                                             "thumb": {"hidden": 32, "blocks": 2, "pieces": 2, "width_mult": 1.0}},
                                               "macro": {"cells": 1, "nodes": 1}})),
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, lut: Any, mnist_pair: Any) -> Any:
    return evaluator_spec(search_config(tmp_path_factory.mktemp("ex")), lut, mnist_pair)


@pytest.fixture(scope="module")
def expected(spec: Any) -> dict[str, float]:
    evaluator = Evaluator(spec)
    return {t.key: evaluator(t).record["val_metric"] for t in TASKS}


def collect(results: Any, on_first: Any = None) -> dict[str, EvalResult]:
    out: dict[str, EvalResult] = {}
    for result in results:
        assert result.task.key not in out, "a task was delivered twice"
        out[result.task.key] = result
        if on_first is not None and len(out) == 1:
            on_first()
    return out


@pytest.mark.slow  # worker processes or a local Dask cluster, each importing torch
def test_local_pool_matches_inline_and_survives_a_killed_worker(spec: Any, expected: dict[str, float]) -> None:
    pool = LocalPoolExecutor(spec, workers=2)
    try:
        first = collect(pool.run(TASKS))
        assert {k: r.record["val_metric"] for k, r in first.items()} == expected
        assert len({r.worker for r in first.values()}) == 2, "both workers should have taken tasks"

        def kill_a_worker() -> None:
            victim = next(iter(pool._pool._processes))  # type: ignore[union-attr]
            os.kill(victim, signal.SIGKILL)

        again = collect(pool.run(TASKS), on_first=kill_a_worker)
        assert {k: r.record["val_metric"] for k, r in again.items()} == expected
        assert "fusion_state" in dir(again["cand"]) and again["cand"].fusion_state is not None
    finally:
        pool.close()


@pytest.fixture(scope="module")
def cluster() -> Any:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.mark.slow  # worker processes or a local Dask cluster, each importing torch
def test_dask_matches_inline_and_reruns_the_task_of_a_dead_worker(spec: Any, expected: dict[str, float],
                                                                  cluster: Any) -> None:
    from distributed import Client

    with Client(cluster) as client:
        executor = DaskExecutor(spec, client)
        pids = client.run(os.getpid)
        first = collect(executor.run(TASKS))
        assert {k: r.record["val_metric"] for k, r in first.items()} == expected

        def kill_a_worker() -> None:  # its nanny starts a new worker; the scheduler reruns its task
            os.kill(next(iter(pids.values())), signal.SIGKILL)

        again = collect(executor.run([EvalTask(t.key + "-2", t.kind, t.arch, t.modality) for t in TASKS]),
                        on_first=kill_a_worker)
        assert {k[:-2]: r.record["val_metric"] for k, r in again.items()} == expected
        executor.close()


@pytest.mark.slow  # worker processes or a local Dask cluster, each importing torch
def test_dask_places_evaluations_on_gpu_workers(spec: Any, tmp_path: Path) -> None:
    from distributed import Client, Nanny, Scheduler, SpecCluster

    workers = {
        "cpu": {"cls": Nanny, "options": {"nthreads": 1}},
        "gpu": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as spec_cluster, Client(spec_cluster) as client:
        client.wait_for_workers(2)
        info = client.scheduler_info()["workers"]
        gpu = [a for a, w in info.items() if w.get("resources", {}).get("GPU")]
        gpu_pid = client.run(os.getpid, workers=gpu)[gpu[0]]
        executor = DaskExecutor(spec, client)
        results = collect(executor.run(TASKS[:4]))
        assert {int(r.worker.rsplit(":", 1)[1]) for r in results.values()} == {gpu_pid}
        executor.close()
