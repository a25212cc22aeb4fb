"""A persistent answer cache: one SQLite file shared by every kernel on the machine.

Every paid answer is stored as soon as it arrives, so a re-run (or a `rejudge` after the judge
failed, or a cell re-run after an interrupt) costs nothing. The file lives at
``$FUSION_CACHE_DIR/cache.sqlite3`` (default: the user cache dir). A cache problem never stops a
deliberation: it warns once and carries on without (or with a fresh) cache.

    cache = Cache()
    key = cache_key(endpoint.base_url, "openai/gpt-4o", messages, {"temperature": 0.2})
    if (hit := cache.get(key)) is None:
        cache.put(key, {"content": "...", "cost_usd": 0.0012, ...})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# `scrub` and `canonical_base_url` are re-exported for `fusion_magic._engine.pricing`, which caches the price list.
from .._base.scrub import SECRET_NAME, canonical_base_url, scrub

__all__ = ["Cache", "CacheWarning", "cache_dir", "cache_key", "canonical_base_url", "scrub"]

KEY_VERSION = 1  # bump when the key recipe changes, so old entries stop matching
DB_NAME = "cache.sqlite3"

# Request fields that do not change the answer, or carry credentials: never part of a key.
_IGNORED_PARAMS = frozenset(
    {
        "stream",
        "stream_options",
        "timeout",
        "on_delta",
        "api_key",
        "headers",
        "extra_headers",
        "authorization",
        "user",
        "session_id",
        "metadata",
        "trace",
        "debug",
        "usage",
        "prompt_cache_key",
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key        TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    cost_usd   REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    hits       INTEGER NOT NULL DEFAULT 0,
    last_hit   REAL
)
"""


class CacheWarning(UserWarning):
    "The answer cache could not be used as expected; the deliberation went on regardless."


def cache_dir() -> Path:
    "Where fusion_magic keeps its files: ``$FUSION_CACHE_DIR``, else the user cache dir."
    env = os.environ.get("FUSION_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only needed when no dir is configured

    return Path(platformdirs.user_cache_dir("fusion_magic"))


def _jsonable(value: Any) -> Any:
    # Response formats may be pydantic models or classes; turn them into their stable JSON form.
    if isinstance(value, type) and hasattr(value, "model_json_schema"):
        return value.model_json_schema()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def cache_key(base_url: str, model: str, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> str:
    """The sha256 hex key of one chat request: endpoint, model, messages and answer-changing params.

    Params that are None are dropped (None means "server default", like omitting them). Streaming,
    timeouts, headers and anything named like a credential are never part of the key.
    """
    kept = {k: v for k, v in params.items() if v is not None and k not in _IGNORED_PARAMS and not SECRET_NAME.search(k)}
    payload = {
        "v": KEY_VERSION,
        "endpoint": canonical_base_url(base_url),
        "model": model,
        "messages": messages,
        "params": kept,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Cache:
    """Answers keyed by `cache_key`, in SQLite (WAL mode: several kernels can share it).

    One connection per object, guarded by a lock, so a background event-loop thread and the
    notebook thread can both use it. The file is created on the first `put`. A deliberation
    closes its cache when it ends; a file removed or replaced meanwhile is noticed and reopened.
    A busy database (another kernel writing) is waited for, never skipped silently.
    """

    BUSY_TIMEOUT_S = 10.0  # SQLite's own wait for a lock, per statement
    BUSY_RETRY_S = 10.0  # then retry a locked statement this long before giving up (with a warning)

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / DB_NAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._file: tuple[int, int] | None = None  # (device, inode) of the file the connection opened
        self._orphans: list[sqlite3.Connection] = []  # inherited over fork: never closed here
        self._warned = False

    # -- public API -------------------------------------------------------------------------------
    def get(self, key: str, *, hit: bool = True) -> dict[str, Any] | None:
        """The stored record for ``key``, or None. Counts a cache hit unless ``hit=False``."""
        with self._lock:
            row = self._run(self._get, key, hit, create=False)
        return row

    def put(self, key: str, record: Mapping[str, Any], *, secrets: Iterable[str] = ()) -> None:
        """Store ``record`` (a JSON-ready answer with ``cost_usd``) under ``key``, committed at once.

        Key-like strings are scrubbed first. Re-putting a key replaces the record, keeps its hit count.
        """
        clean = scrub(dict(record), secrets)
        text = json.dumps(clean, ensure_ascii=False, default=_jsonable)
        cost = _as_float(clean.get("cost_usd"))
        created = _as_float(clean.get("created_at")) or time.time()
        with self._lock:
            self._run(self._put, key, text, cost, created, create=True, losing="an answer was not cached")

    def record_hit(self, key: str) -> None:
        """Count a hit for ``key`` after a ``get(key, hit=False)`` whose record was then served."""
        with self._lock:
            self._run(self._count_hit, key, create=False)

    def info(self) -> dict[str, Any]:
        """Path, entries, size_bytes, hits and saved_usd (the cost of every answer served from cache)."""
        with self._lock:
            stats = self._run(self._stats, create=False) or (0, 0, 0.0)
        size = sum(p.stat().st_size for p in self._files() if p.exists())
        return {
            "path": str(self.path),
            "entries": stats[0],
            "size_bytes": size,
            "hits": stats[1],
            "saved_usd": stats[2],
        }

    def clear(self) -> int:
        """Delete every entry (and the hit counts); return how many entries were removed."""
        with self._lock:
            return self._run(self._clear, create=False) or 0

    def close(self) -> None:
        """Close the connection; the next use reopens it."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"

    # -- statements (called with the lock held and a live connection) -------------------------------
    def _get(self, conn: sqlite3.Connection, key: str, hit: bool) -> dict[str, Any] | None:
        row = conn.execute("SELECT record FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        record = json.loads(row[0])
        if hit:
            self._count_hit(conn, key)
        return record

    @staticmethod
    def _count_hit(conn: sqlite3.Connection, key: str) -> None:
        try:  # best effort: a read-only or busy file must not cost the answer itself
            conn.execute("UPDATE answers SET hits = hits + 1, last_hit = ? WHERE key = ?", (time.time(), key))
        except sqlite3.OperationalError:
            pass

    def _put(self, conn: sqlite3.Connection, key: str, text: str, cost: float | None, created: float) -> None:
        conn.execute(
            "INSERT INTO answers (key, record, cost_usd, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET record = excluded.record, cost_usd = excluded.cost_usd, "
            "created_at = excluded.created_at",
            (key, text, cost or 0.0, created),
        )

    def _stats(self, conn: sqlite3.Connection) -> tuple[int, int, float]:
        n, hits, saved = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(hits), 0), COALESCE(SUM(hits * cost_usd), 0.0) FROM answers"
        ).fetchone()
        return int(n), int(hits), float(saved)

    def _clear(self, conn: sqlite3.Connection) -> int:
        n = conn.execute("DELETE FROM answers").rowcount
        try:  # give the space back; another kernel holding a read lock just means "later"
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
        except sqlite3.OperationalError:
            pass
        return n

    # -- connection handling ---------------------------------------------------------------------
    def _run(self, fn: Any, *args: Any, create: bool, losing: str = "") -> Any:
        """Run one statement helper; wait out a busy file, recover from a corrupt one once, degrade on
        other errors. ``losing`` says what a failure loses: such a failure is reported every time."""
        attempt, waited, pause = 0, 0.0, 0.05
        while attempt < 2:
            try:
                conn = self._connection(create)
                return None if conn is None else fn(conn, *args)
            except sqlite3.OperationalError as exc:  # locked, read-only disk...
                if _busy(exc) and waited < self.BUSY_RETRY_S:
                    # SQLite answers "locked" without waiting in some WAL cases (and after its busy
                    # timeout): another kernel is writing, so wait and try again rather than skip.
                    time.sleep(pause)
                    waited, pause = waited + pause, min(1.0, pause * 2)
                    continue
                # A file that stays busy loses this write: say so every time (a broken path, once).
                lost = bool(losing) and _busy(exc)
                what = f" ({losing})" if lost else ""
                self._warn(
                    f"answer cache unavailable ({exc}){what}; going on without it. Check {self.path}", always=lost
                )
                return None
            except sqlite3.DatabaseError as exc:  # not a database / malformed: set it aside once
                if attempt:
                    self._warn(f"answer cache unusable ({exc}); going on without it. Check {self.path}")
                    return None
                self._set_aside(exc)
                attempt += 1
            except (ValueError, OSError) as exc:  # a damaged record, or the directory is not writable
                self._warn(f"answer cache unavailable ({exc}); going on without it. Check {self.path}")
                return None
        return None

    def _connection(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None and self._pid != os.getpid():
            # A forked child must not use (or close) its parent's SQLite connection.
            self._orphans.append(self._conn)
            self._conn = None
        if self._conn is not None and self._file != _identity(self.path):
            # The file was removed or replaced (`rm`, `%fusion cache clear` elsewhere, a restore):
            # the old connection would write into a ghost, or wait on its stale locks.
            self._conn.close()
            self._conn = None
        if self._conn is not None:
            return self._conn
        if not create and not self.path.exists():
            return None  # lazy: reading an absent cache creates nothing
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every statement is its own short transaction, durable once it returns.
        conn = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            self._set_up(conn, self.BUSY_TIMEOUT_S)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid, self._file = conn, os.getpid(), _identity(self.path)
        return conn

    @staticmethod
    def _set_up(conn: sqlite3.Connection, busy_timeout: float) -> None:
        # Two kernels opening a new cache at once race for the switch to WAL, and SQLite's busy
        # handler does not cover that switch: retry it briefly instead of giving up the cache.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL mode: a commit survives a killed kernel; only an OS crash loses the last ones.
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _files(self) -> list[Path]:
        return [self.path, *(self.path.with_name(self.path.name + suffix) for suffix in ("-wal", "-shm"))]

    def _set_aside(self, exc: Exception) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for f in self._files():
            try:
                f.rename(aside.with_name(aside.name + f.name[len(self.path.name) :]))
            except FileNotFoundError:
                pass
        self._warn(f"answer cache was unreadable ({exc}); moved it to {aside.name} and started a fresh one")

    def _warn(self, message: str, *, always: bool = False) -> None:
        if always or not self._warned:
            self._warned = True
            warnings.warn(message, CacheWarning, stacklevel=4)


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _as_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
