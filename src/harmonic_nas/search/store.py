"""The run store: one SQLite file (WAL) per search run, so a killed run resumes without losing a finished
evaluation and the report, export and `status` read one source of truth.

Tables:

* ``meta``: key -> JSON (config, variant, seed, format).
* ``evaluations``: every finished evaluation, keyed by ``key`` ("<modality>:<arch hash>" for a backbone,
  the candidate hash for a multimodal candidate); objectives, genotype, the whole result JSON, timings.
* ``generations``: per generation its state (populations, what went to stage 2, elites) and, once done,
  its summary (front size, hypervolume, best metric).
* ``pareto_front``: the front after each generation (candidate keys and objectives).
* ``events``: a log of what happened, read by ``harmonic-nas status``.

Every write is one short transaction; readers (status, report) never block the writer (WAL). A store
that cannot be read or written (damaged, not a store, a full or read-only disk, a row that is not JSON)
is one UserError naming the file and what to do, whatever the method.
"""

from __future__ import annotations

import functools
from functools import cached_property
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harmonic_nas.errors import UserError
from harmonic_nas.files import make_dir
from harmonic_nas.layout import RunLayout, StoreLayout
from harmonic_nas.search.variants import FULL_METHOD, Variant
from harmonic_nas.space.candidate import Candidate, CandidateSpace
from harmonic_nas.space.encoding import InvalidArchError
from harmonic_nas.space.genotype import Genotype
from harmonic_nas.space.values import BackboneArch

FORMAT = "harmonic-nas-run/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY,  -- arch keeps its modality order: the fusion's taps follow it
    kind TEXT NOT NULL CHECK (kind IN ('backbone', 'candidate')),
    modality TEXT,
    generation INTEGER NOT NULL,
    arch TEXT NOT NULL,
    val_metric REAL NOT NULL,
    latency_ms REAL NOT NULL,
    energy_mj REAL NOT NULL,
    genotype TEXT,
    test_metric REAL,
    result TEXT NOT NULL,
    seconds REAL NOT NULL,
    worker TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_kind ON evaluations (kind, modality);
CREATE TABLE IF NOT EXISTS generations (
    generation INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    summary TEXT,
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS pareto_front (
    generation INTEGER NOT NULL,
    key TEXT NOT NULL REFERENCES evaluations (key),
    val_metric REAL NOT NULL,
    latency_ms REAL NOT NULL,
    energy_mj REAL NOT NULL,
    PRIMARY KEY (generation, key)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    generation INTEGER,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Evaluation:
    """One stored evaluation (a backbone of stage 1 or a multimodal candidate of stage 2), its arch and
    genotype parsed against the run's config."""

    key: str
    kind: str
    modality: str | None
    generation: int
    arch: Any  # a Candidate (kind "candidate") or the BackboneArch of ``modality`` (kind "backbone")
    val_metric: float
    latency_ms: float
    energy_mj: float
    genotype: Genotype | None
    test_metric: float | None
    result: dict[str, Any]
    seconds: float

    @property
    def candidate(self) -> Candidate:
        """The multimodal candidate (a UserError for a backbone evaluation)."""
        if not isinstance(self.arch, Candidate):
            raise UserError(f"model {self.key}: not a multimodal candidate (a {self.modality} backbone)")
        return self.arch

    @property
    def modalities_used(self) -> list[str]:
        """The modalities this model reads: a backbone's own; a candidate's, those its fusion reads."""
        if self.kind == "backbone":
            return [self.modality] if self.modality else []
        return self.genotype.modalities if self.genotype else []

    @property
    def test_shuffled(self) -> dict[str, float]:
        """A multimodal model's test metric with each modality's features shuffled across samples (what it
        keeps without that modality's information); empty until the test metrics are computed."""
        return dict(self.result.get("test_shuffled", {}))

    @property
    def objectives(self) -> tuple[float, float, float]:
        """(error, latency, energy): all minimised."""
        return (1.0 - self.val_metric, self.latency_ms, self.energy_mj)


_START_OVER = ("restore the run from a copy, or start its search over: "
               "harmonic-nas search --config CONFIG --out {run_dir} --force")
# sqlite's message -> what it means for the user and what to do
_PROBLEMS = (
    ("readonly", "cannot write: the file or its folder is read-only; copy the run to a writable folder"),
    ("disk is full", "cannot write: no space left on the device; free some space, then run the same command again"),
    ("disk I/O error", "cannot read or write it (disk I/O error: a full disk, a file size limit?); free some space, "
                       "then run the same command again"),
    ("locked", "locked by another process for more than 30 s; wait until it finishes, then run the command again"),
    ("unable to open", "cannot open the file: check that its folder exists and that you may write to it"),
)


def _problem(path: Path, exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        found = f"a stored row is not JSON ({exc.msg})"
    else:
        message = str(exc)
        for marker, meaning in _PROBLEMS:
            if marker in message:
                return f"{path}: {meaning} (sqlite: {message})"
        found = f"damaged or not a harmonic-nas run store (sqlite: {message})"
    return f"{path}: {found}; {_START_OVER.format(run_dir=path.parent)}"


@contextmanager
def _named(path: Path) -> Iterator[None]:
    """sqlite and stored-JSON failures as one UserError line naming the store."""
    try:
        yield
    except (sqlite3.DatabaseError, json.JSONDecodeError) as exc:
        raise UserError(_problem(path, exc)) from None


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _checked(method: _Method) -> _Method:
    @functools.wraps(method)
    def wrapper(self: RunStore, *args: Any, **kwargs: Any) -> Any:
        with _named(self.path):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class RunStore:
    """The SQLite store of one run directory. Open with :meth:`create` (new run) or :meth:`open`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def _connect(cls, path: Path) -> RunStore:
        with _named(path):
            db = sqlite3.connect(path, timeout=30.0, isolation_level=None)  # autocommit; explicit transactions
            try:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed row survives a killed process
                db.execute("PRAGMA foreign_keys=ON")
            except BaseException:
                db.close()
                raise
        return cls(path, db)

    @classmethod
    def create(cls, run_dir: Path, meta: dict[str, Any]) -> RunStore:
        """A new store in ``run_dir``; fails if one exists (resume it instead)."""
        path = StoreLayout(Path(run_dir)).store
        if path.exists():
            variant = Variant.named(meta.get("variant", FULL_METHOD.name))
            run = RunLayout.of_store(run_dir, variant.name if variant.baseline else None).root
            raise UserError(f"{path}: a search store exists already; continue it with "
                            f"{variant.resume_command(run)} or start over with --force")
        make_dir(path.parent)
        store = cls._connect(path)
        try:
            with _named(path):
                store._db.executescript(_SCHEMA)  # its own transaction (executescript commits first)
                with store._transaction() as db:
                    for key, value in {"format": FORMAT, **meta}.items():
                        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        """The existing store of ``run_dir``, or one clear error."""
        path = StoreLayout(Path(run_dir)).store
        if not path.is_file():
            raise UserError(f"{path}: no search store here (start a search with harmonic-nas search --config C)")
        store = cls._connect(path)
        try:
            fmt = store.meta().get("format")
            if fmt != FORMAT:
                raise UserError(f"{path}: store format {fmt!r}, expected {FORMAT!r}")
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._db.close()

    @cached_property
    def space(self) -> CandidateSpace:
        """The candidate space of the run's config: what every stored arch is parsed against."""
        from harmonic_nas.config.io import validate_config

        return CandidateSpace.from_config(validate_config(self.raw_config(), str(self.path)))

    def _evaluation(self, row: sqlite3.Row) -> Evaluation:
        """A stored row as an Evaluation (JSON parsed, arch and genotype checked against the run's space)."""
        raw_arch, raw_genotype = json.loads(row["arch"]), json.loads(row["genotype"]) if row["genotype"] else None
        try:
            arch = (self.space.backbones[row["modality"]].parse(raw_arch) if row["kind"] == "backbone"
                    else self.space.parse(raw_arch))
            genotype = Genotype.parse(raw_genotype) if raw_genotype is not None else None
        except (InvalidArchError, KeyError) as exc:
            raise UserError(f"{self.path}: evaluation {row['key']} is not of the run's search space ({exc}); "
                            f"{_START_OVER.format(run_dir=self.path.parent)}") from None
        return Evaluation(
            key=row["key"], kind=row["kind"], modality=row["modality"], generation=row["generation"],
            arch=arch, val_metric=row["val_metric"], latency_ms=row["latency_ms"], energy_mj=row["energy_mj"],
            genotype=genotype, test_metric=row["test_metric"], result=json.loads(row["result"]),
            seconds=row["seconds"],
        )

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # meta -------------------------------------------------------------------------------------------
    @_checked
    def meta(self) -> dict[str, Any]:
        return {row["key"]: json.loads(row["value"]) for row in self._db.execute("SELECT key, value FROM meta")}

    def raw_config(self) -> dict[str, Any]:
        """The experiment config the run was made with, as stored (validate it with config.validate_config)."""
        config = self.meta().get("config")
        if not isinstance(config, dict):
            raise UserError(f"{self.path}: the store holds no experiment config (damaged?); "
                            f"{_START_OVER.format(run_dir=self.path.parent)}")
        return config

    @_checked
    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # evaluations ------------------------------------------------------------------------------------
    @_checked
    def add_evaluation(
        self, key: str, kind: str, modality: str | None, generation: int, arch: Candidate | BackboneArch,
        result: dict[str, Any], *, worker: str | None = None,
    ) -> None:
        """Store one finished evaluation (idempotent: a key stored already is kept as it is)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO evaluations (key, kind, modality, generation, arch, val_metric, latency_ms,"
                " energy_mj, genotype, result, seconds, worker, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, kind, modality, generation, json.dumps(arch.to_json()), float(result["val_metric"]),
                 float(result["latency_ms"]), float(result["energy_mj"]),
                 json.dumps(result["genotype"]) if result.get("genotype") else None, json.dumps(result),
                 float(result.get("seconds", 0.0)), worker, time.time()),
            )

    @_checked
    def evaluation(self, key: str) -> Evaluation | None:
        row = self._db.execute("SELECT * FROM evaluations WHERE key = ?", (key,)).fetchone()
        return self._evaluation(row) if row else None

    @_checked
    def evaluations(self, kind: str | None = None, modality: str | None = None) -> list[Evaluation]:
        query, args = "SELECT * FROM evaluations WHERE 1=1", []
        if kind is not None:
            query, args = query + " AND kind = ?", [*args, kind]
        if modality is not None:
            query, args = query + " AND modality = ?", [*args, modality]
        return [self._evaluation(r) for r in self._db.execute(query + " ORDER BY created, key", args)]

    @_checked
    def known_keys(self, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found |= {r[0] for r in self._db.execute(f"SELECT key FROM evaluations WHERE key IN ({marks})", chunk)}
        return found

    @_checked
    def set_test_metric(self, key: str, value: float, shuffled: dict[str, float] | None = None) -> None:
        """The test metric of ``key`` and, for a multimodal model, its test metric with each modality shuffled
        (kept in the result as ``test_shuffled``)."""
        with self._transaction() as db:
            db.execute("UPDATE evaluations SET test_metric = ? WHERE key = ?", (float(value), key))
            if shuffled is not None:
                (text,) = db.execute("SELECT result FROM evaluations WHERE key = ?", (key,)).fetchone()
                result = {**json.loads(text), "test_shuffled": {m: float(v) for m, v in shuffled.items()}}
                db.execute("UPDATE evaluations SET result = ? WHERE key = ?", (json.dumps(result), key))

    # generations ------------------------------------------------------------------------------------
    @_checked
    def start_generation(self, generation: int, state: dict[str, Any]) -> None:
        """Record the state a generation starts from (kept if it was recorded before: resume)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO generations (generation, state, started) VALUES (?, ?, ?)",
                       (generation, json.dumps(state), time.time()))

    @_checked
    def generation_state(self, generation: int) -> dict[str, Any] | None:
        row = self._db.execute("SELECT state FROM generations WHERE generation = ?", (generation,)).fetchone()
        return json.loads(row["state"]) if row else None

    @_checked
    def finish_generation(self, generation: int, summary: dict[str, Any], front: list[Evaluation]) -> None:
        """The generation's summary and Pareto front, in one transaction."""
        with self._transaction() as db:
            db.execute("UPDATE generations SET summary = ?, finished = ? WHERE generation = ?",
                       (json.dumps(summary), time.time(), generation))
            db.execute("DELETE FROM pareto_front WHERE generation = ?", (generation,))
            db.executemany(
                "INSERT INTO pareto_front (generation, key, val_metric, latency_ms, energy_mj) VALUES (?,?,?,?,?)",
                [(generation, e.key, e.val_metric, e.latency_ms, e.energy_mj) for e in front],
            )

    @_checked
    def generations(self) -> list[dict[str, Any]]:
        """Every generation started: number, state, summary (None while running), start and end times."""
        rows = self._db.execute("SELECT * FROM generations ORDER BY generation")
        return [
            {"generation": r["generation"], "state": json.loads(r["state"]),
             "summary": json.loads(r["summary"]) if r["summary"] else None,
             "started": r["started"], "finished": r["finished"]}
            for r in rows
        ]

    @_checked
    def pareto_front(self, generation: int | None = None) -> list[Evaluation]:
        """The front after ``generation`` (default: the last finished one), best metric first."""
        if generation is None:
            row = self._db.execute("SELECT MAX(generation) FROM pareto_front").fetchone()
            if row[0] is None:
                return []
            generation = int(row[0])
        rows = self._db.execute(
            "SELECT e.* FROM pareto_front p JOIN evaluations e ON e.key = p.key WHERE p.generation = ?"
            " ORDER BY e.val_metric DESC, e.latency_ms, e.key", (generation,))
        return [self._evaluation(r) for r in rows]

    # events -----------------------------------------------------------------------------------------
    @_checked
    def log(self, kind: str, message: str, generation: int | None = None) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO events (time, generation, kind, message) VALUES (?, ?, ?, ?)",
                       (time.time(), generation, kind, message))

    @_checked
    def events(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in reversed(rows)]
