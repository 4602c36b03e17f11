"""SQLite coordinator: the embedded default (one machine, several processes) and the test twin.

Each call opens its own short transaction; WAL mode lets the API read while workers write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from shared.coordination.base import Coordinator, LiveProgress
from shared.errors import Retryable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS status (job TEXT PRIMARY KEY, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan (job TEXT PRIMARY KEY, total INTEGER, shards INTEGER);
CREATE TABLE IF NOT EXISTS items (job TEXT, idx INTEGER, ok INTEGER, result TEXT, PRIMARY KEY (job, idx));
CREATE TABLE IF NOT EXISTS attempts (job TEXT, idx INTEGER, n INTEGER, PRIMARY KEY (job, idx));
CREATE TABLE IF NOT EXISTS work (job TEXT, task TEXT, entry TEXT, PRIMARY KEY (job, task));
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shard_counts (job TEXT, shard INTEGER, ok INTEGER, failed INTEGER, PRIMARY KEY (job, shard));
CREATE TABLE IF NOT EXISTS memo (name TEXT PRIMARY KEY, value TEXT, expires REAL);
"""


class SqliteCoordinator(Coordinator):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def _tx(self) -> _Transaction:
        return _Transaction(self._db())

    def ping(self) -> None:
        try:
            self._db().execute("SELECT 1")
        except sqlite3.Error as exc:
            raise Retryable(f"coordinator unavailable: {exc}") from exc

    def get_status(self, job: str) -> str | None:
        row = self._db().execute("SELECT status FROM status WHERE job=?", (job,)).fetchone()
        return row[0] if row else None

    def set_status(self, job: str, status: str, only_from: frozenset[str] | None = None) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT status FROM status WHERE job=?", (job,)).fetchone()
            if only_from is not None and row is not None and row[0] not in only_from:
                return False
            db.execute("INSERT OR REPLACE INTO status VALUES (?, ?)", (job, status))
            return True

    def set_plan(self, job: str, total: int, shards: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO plan VALUES (?, ?, ?)", (job, total, shards))

    def record_items(self, job: str, results: dict[int, dict[str, Any]]) -> list[int]:
        added: list[int] = []
        with self._tx() as db:
            for i, r in results.items():
                row = (job, i, int(r.get("status") == "ok"), json.dumps(r))
                if db.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?)", row).rowcount:
                    added.append(i)
        return added

    def item_results(self, job: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(indices), 500):
            chunk = indices[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT idx, result FROM items WHERE job=? AND idx IN ({marks})"
            for idx, result in self._db().execute(query, (job, *chunk)):
                out[idx] = json.loads(result)
        return out

    def forget_items(self, job: str, indices: list[int]) -> None:
        """Kept: the rows live on disk, not in memory, and the progress is their sum."""

    def begin_attempt(self, job: str, indices: list[int], ended: list[int] | None = None) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM attempts WHERE job=? AND idx=?", [(job, i) for i in ended or []])
            db.executemany(
                "INSERT INTO attempts VALUES (?, ?, 1) ON CONFLICT (job, idx) DO UPDATE SET n = n + 1",
                [(job, i) for i in indices],
            )

    def attempts(self, job: str, indices: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for start in range(0, len(indices), 500):
            chunk = indices[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT idx, n FROM attempts WHERE job=? AND idx IN ({marks})"
            out.update(dict(self._db().execute(query, (job, *chunk)).fetchall()))
        return out

    def mark_shard_done(self, job: str, shard: int, ok: int, failed: int) -> int:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO shard_counts VALUES (?, ?, ?, ?)", (job, shard, ok, failed))
            return int(db.execute("SELECT COUNT(*) FROM shard_counts WHERE job=?", (job,)).fetchone()[0])

    def shard_counts(self, job: str) -> dict[int, tuple[int, int]]:
        rows = self._db().execute("SELECT shard, ok, failed FROM shard_counts WHERE job=?", (job,))
        return {int(shard): (int(ok), int(failed)) for shard, ok, failed in rows}

    def progress(self, job: str) -> LiveProgress | None:
        db = self._db()
        plan = db.execute("SELECT total, shards FROM plan WHERE job=?", (job,)).fetchone()
        done, failed = db.execute(
            "SELECT COALESCE(SUM(ok), 0), COALESCE(SUM(1 - ok), 0) FROM items WHERE job=?", (job,)
        ).fetchone()
        if plan is None and done == 0 and failed == 0:
            return None
        shards_done = db.execute("SELECT COUNT(*) FROM shard_counts WHERE job=?", (job,)).fetchone()[0]
        return LiveProgress(
            total=plan[0] if plan else None,
            done=int(done),
            failed=int(failed),
            shards=plan[1] if plan else None,
            shards_done=int(shards_done),
        )

    def put_work(self, job: str, task_id: str, entry: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO work VALUES (?, ?, ?)", (job, task_id, json.dumps(entry)))

    def drop_work(self, job: str, task_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM work WHERE job=? AND task=?", (job, task_id))

    def work(self, job: str) -> dict[str, dict[str, Any]]:
        rows = self._db().execute("SELECT task, entry FROM work WHERE job=?", (job,)).fetchall()
        return {task: json.loads(entry) for task, entry in rows}

    def work_entry(self, job: str, task_id: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT entry FROM work WHERE job=? AND task=?", (job, task_id)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def jobs_with_work(self) -> list[str]:
        return [row[0] for row in self._db().execute("SELECT DISTINCT job FROM work ORDER BY job")]

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT owner, expires FROM leases WHERE name=?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, owner, now + ttl_s))
            return True

    def renew_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        with self._tx() as db:
            updated = db.execute(
                "UPDATE leases SET expires=? WHERE name=? AND owner=?", (time.time() + ttl_s, name, owner)
            ).rowcount
            return bool(updated)

    def release_lease(self, name: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner))

    def lease_holder(self, name: str) -> str | None:
        row = self._db().execute("SELECT owner, expires FROM leases WHERE name=?", (name,)).fetchone()
        return str(row[0]) if row is not None and row[1] > time.time() else None

    def epoch(self) -> str | None:
        row = self._db().execute("SELECT value FROM memo WHERE name='epoch'").fetchone()
        return str(row[0]) if row else None

    def set_epoch(self, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO memo VALUES ('epoch', ?, ?)", (value, float("inf")))

    def claim(self, name: str, ttl_s: int = 7 * 86400) -> bool:
        return self.remember(f"claim:{name}", "1", ttl_s) is None

    def remember(self, name: str, value: str, ttl_s: int = 86400) -> str | None:
        with self._tx() as db:
            row = db.execute("SELECT value, expires FROM memo WHERE name=?", (name,)).fetchone()
            if row is not None and row[1] > time.time():
                return str(row[0])
            db.execute("INSERT OR REPLACE INTO memo VALUES (?, ?, ?)", (name, value, time.time() + ttl_s))
            return None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: one writer at a time across processes, no lost updates."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise Retryable(f"coordinator unavailable: {exc}") from exc
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
