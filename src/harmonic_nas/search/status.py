"""Where a search stands, read from its store without a lock (also while it runs): what ``harmonic-nas
status`` shows, watches and prints as JSON. Torch-free, so the command answers at once."""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonic_nas.config.io import validate_config
from harmonic_nas.errors import UserError
from harmonic_nas.layout import RunLayout
from harmonic_nas.runlock import holder_record
from harmonic_nas.search.store import Evaluation, RunStore
from harmonic_nas.search.variants import FULL_METHOD, VARIANTS, Variant

RECENT_EVENTS = 8


def owner_state(owner: dict[str, Any] | None) -> tuple[str, str | None]:
    """(state, host) of the process that owns the search: ('running', None) if it is alive here,
    ('interrupted', None) if it is gone, ('running', HOST) when it runs on another machine, whose processes
    this one cannot see."""
    if not owner:
        return "interrupted", None
    if owner["host"] != socket.gethostname():
        return "running", owner["host"]
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return "interrupted", None
    except PermissionError:  # alive, owned by another user
        pass
    return "running", None


def run_holder(run_dir: Path) -> str | None:
    """The command holding ``run_dir`` (its lock), if it is alive on this machine: a ``run`` training
    before its search, or a search setting up before it records itself as the store's owner."""
    holder = holder_record(run_dir)
    if holder is None or not isinstance(holder.get("pid"), int) or owner_state(holder) != ("running", None):
        return None
    return f"{holder.get('command')} (pid {holder.get('pid')})"


def store_coming(run_dir: Path, variant: str = FULL_METHOD.name) -> str | None:
    """The live command that will create ``variant``'s store of ``run_dir``, while it does not exist yet."""
    if Variant.named(variant).store(RunLayout(run_dir)).store.is_file():
        return None
    return run_holder(run_dir)


@dataclass(frozen=True)
class SearchStatus:
    """One reading of a search store."""

    run_dir: Path
    name: str
    variant: str
    state: str  # running, finished or interrupted
    host: str | None  # the other machine it runs on
    generations_done: int
    generations_total: int
    last_summary: dict[str, Any] | None  # of the last finished generation
    running_generation: int | None  # the generation started and not finished
    running_since: float | None
    running_evaluations: int  # multimodal evaluations stored in the running generation
    backbone_evaluations: int
    candidate_evaluations: int
    front: list[Evaluation]
    events: list[dict[str, Any]]

    @property
    def resume_command(self) -> str:
        """The command that continues this search (a baseline's needs its --variant)."""
        return Variant.named(self.variant).resume_command(self.run_dir)

    def to_json(self) -> dict[str, Any]:
        """The plain JSON of ``status --json`` (times as local ISO 8601)."""
        summary = self.last_summary or {}
        return {
            "run_dir": str(self.run_dir), "name": self.name, "variant": self.variant, "state": self.state,
            "host": self.host,
            "generations": {"done": self.generations_done, "total": self.generations_total,
                            "running": self.running_generation, "running_since": _iso(self.running_since)},
            "evaluations": {"backbone": self.backbone_evaluations, "multimodal": self.candidate_evaluations,
                            "multimodal_in_running_generation": self.running_evaluations},
            "last_generation": {key: summary.get(key) for key in ("front_size", "best_val_metric", "hypervolume")}
            if self.last_summary else None,
            "front": [{"id": e.key, "val": e.val_metric, "test": e.test_metric, "test_shuffled": e.test_shuffled,
                       "latency_ms": e.latency_ms, "energy_mj": e.energy_mj, "modalities": e.modalities_used}
                      for e in self.front],
            "events": [{"time": _iso(ev["time"]), "generation": ev["generation"], "kind": ev["kind"],
                        "message": ev["message"]} for ev in self.events],
            "resume": self.resume_command if self.state == "interrupted" else None,
        }


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def read_status(run_dir: Path, variant: str = FULL_METHOD.name) -> SearchStatus:
    """The status of ``variant``'s search in ``run_dir`` (UserError if it has no store)."""
    with RunStore.open(Variant.named(variant).store(RunLayout(run_dir)).folder) as store:
        meta = store.meta()
        cfg = validate_config(store.raw_config(), str(store.path))
        generations = store.generations()
        candidates = store.evaluations("candidate")
        backbones = store.evaluations("backbone")
        front = store.pareto_front()
        events = store.events(RECENT_EVENTS)
    stored_variant = meta.get("variant")
    if stored_variant not in VARIANTS:
        raise UserError(f"{store.path}: stored variant {stored_variant!r}, expected one of {', '.join(VARIANTS)}")
    total = Variant.named(stored_variant).generations(cfg.search.generations)
    finished = [g for g in generations if g["summary"] is not None]
    running = [g for g in generations if g["summary"] is None]
    state, host = owner_state(meta.get("owner"))
    if state == "interrupted":  # no live owner: the search has not started, has stopped, or has finished
        holder = run_holder(run_dir)  # a live command holding the run sets it up, or measures test metrics
        if len(finished) >= total and (holder is None or all(e.test_metric is not None for e in front)):
            state = "finished"
        elif holder is not None:
            state = "running"
    current = running[-1] if running else None
    return SearchStatus(
        run_dir=Path(run_dir), name=cfg.name, variant=stored_variant, state=state, host=host,
        generations_done=len(finished), generations_total=total,
        last_summary=finished[-1]["summary"] if finished else None,
        running_generation=current["generation"] if current else None,
        running_since=current["started"] if current else None,
        running_evaluations=sum(1 for e in candidates if current and e.generation == current["generation"]),
        backbone_evaluations=len(backbones), candidate_evaluations=len(candidates), front=front, events=events,
    )
