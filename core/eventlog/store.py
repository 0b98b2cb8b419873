"""The event log of DESIGN §6: every event in SQLite, written by one background thread so the
caller never waits on the disk, and nothing acknowledged is lost (a full or read-only disk keeps
events in memory, reported in `status`, until they can be written)."""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from core.fleet.events import Event

log = logging.getLogger(__name__)

#: Version of the tables below, kept in `meta`; a file with a higher one is refused, one with
#: a lower one is migrated when opened for writing (`_MIGRATIONS`). 2 (issue 11): a `dropout`
#: payload carries `start_t`, and an end line's `t` is its `end_t`.
SCHEMA_VERSION: Final = 2
#: Longest time an appended event waits before its commit. DESIGN §6 allows 1 s lost after
#: `kill -9`; half of it leaves the other half for the write itself.
COMMIT_INTERVAL_S: Final = 0.5
#: Queued events that trigger a commit before the interval ends (the issue: 1000).
COMMIT_BATCH: Final = 1000
#: Rows per transaction when catching up on a backlog (after a full disk clears): keeps each
#: transaction, and the WAL growth it causes, bounded.
MAX_TRANSACTION_ROWS: Final = 10_000
#: Pause between write attempts after a failure (the issue: retry every 2 s).
RETRY_INTERVAL_S: Final = 2.0
#: Retention runs at `open()` and then at most this often (the issue: hourly).
RETENTION_INTERVAL_S: Final = 3600.0
#: SQLite busy timeout: how long another program's write lock may delay one of our writes.
BUSY_TIMEOUT_S: Final = 5.0
SECONDS_PER_DAY: Final = 86_400.0

#: (t, type, address, payload): one row of `events`, built on the caller's thread.
Row = tuple[float, str, str | None, str]

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, t REAL NOT NULL,"
    " type TEXT NOT NULL, address TEXT, payload TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_t ON events(t)",
    "CREATE INDEX IF NOT EXISTS events_type ON events(type, t)",
    "CREATE INDEX IF NOT EXISTS events_address ON events(address, t)",
)
_INSERT: Final = "INSERT INTO events(t, type, address, payload) VALUES (?, ?, ?, ?)"
_DAMAGED: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class StoreError(Exception):
    """The event log cannot be used as it is; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """The writer's health for the status bar; `detail` says what is wrong and what to do."""

    ok: bool
    detail: str
    #: Events appended but not yet committed (held in memory).
    pending: int


def default_db_path() -> Path:
    """`$XDG_STATE_HOME/btmon-tui/events.sqlite3` (XDG default state home: ~/.local/state)."""
    state_home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state_home) if os.path.isabs(state_home) else Path.home() / ".local" / "state"
    return base / "btmon-tui" / "events.sqlite3"


class EventStore:
    """Append-only SQLite log of events (DESIGN §6).

    `append()` only queues; one writer thread commits at least every `COMMIT_INTERVAL_S` or
    every `COMMIT_BATCH` events. On a write failure the events stay queued (memory is the only
    limit: ~300 bytes an event), `status` says why, and the writer retries every
    `RETRY_INTERVAL_S` until it can write again. `on_status` is called from the writer thread
    (or from `open()`) when the status turns bad, when a retry finds a different number of
    events waiting, and when it turns good again. Use as a context manager, or call `open()`
    and `close()`; `core.eventlog.signals.install_signal_flush` covers SIGTERM and SIGHUP.
    """

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float | None = 30,
        clock: Callable[[], float] = time.time,
        on_status: Callable[[StoreStatus], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.on_status = on_status
        #: Committed write transactions so far (for tests and benchmarks).
        self.transactions = 0
        self._clock = clock
        # Re-entrant so a signal handler that interrupted append() on this thread can flush.
        self._cond = threading.Condition(threading.RLock())
        self._queue: list[Row] = []
        self._first_queued = 0.0  # monotonic time the oldest queued row arrived
        self._appended = 0
        self._committed = 0
        self._flush_waiters = 0
        self._problem: tuple[str, str] | None = None  # (what is wrong, what to do)
        self._published: StoreStatus | None = None
        self._state = "new"  # new -> opening -> open -> closed
        self._stop = False
        self._thread: threading.Thread | None = None
        self._next_retention = 0.0
        self._atexit_hook: Callable[[], None] | None = None

    # -- life cycle ------------------------------------------------------------------------
    def open(self) -> None:
        """Open or create the log and start the writer; StoreError if the file is unusable.

        A file that cannot be written now (read-only or full disk) is not an error: the store
        opens with `status.ok` false and starts writing when it can.
        """
        with self._cond:
            if self._state in ("opening", "open"):
                return
            if self._state == "closed":
                raise StoreError(f"{self.path}: this store was closed; open a new EventStore")
            self._state = "opening"
        conn: sqlite3.Connection | None = None
        try:
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a directory: give the path of a file for the log")
            conn = self._connect()
            self._apply_retention(conn)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            conn = None
            self._problem = _diagnose(exc, self.path)
        except BaseException:
            with self._cond:
                self._state = "new"  # the caller may fix the file and open() again
            raise
        with self._cond:
            self._state = "open"
        self._thread = threading.Thread(
            target=self._writer, args=(conn,), name="btmon-store-writer", daemon=True
        )
        self._thread.start()
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            store = ref()
            if store is not None:
                store.close()

        self._atexit_hook = close_at_exit
        atexit.register(close_at_exit)
        if self._problem is not None:
            self._publish()

    def close(self, timeout: float = 5.0) -> bool:
        """Flush, stop the writer and close the file; True if every appended event was written.

        Idempotent. Events that could not be written within `timeout` are logged and lost.
        """
        with self._cond:
            if self._state == "closed":
                return self._appended == self._committed
            was_open = self._state == "open"
        written = self.flush(timeout) if was_open else self._appended == self._committed
        with self._cond:
            self._state = "closed"
            self._stop = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(BUSY_TIMEOUT_S + 1.0)
        if self._atexit_hook is not None:
            atexit.unregister(self._atexit_hook)
            self._atexit_hook = None
        if not written:
            lost = self._appended - self._committed
            log.error("%s: %d events could not be written and are lost", self.path, lost)
        return written

    def __enter__(self) -> EventStore:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def append(self, events: Iterable[Event | dict[str, Any]]) -> None:
        """Queue events for writing; returns at once (no disk I/O on the caller's thread).

        Dicts must carry a string `type` and a numeric `t` (DESIGN §4.2); ValueError otherwise.
        Events appended before `open()` are written once it runs.
        """
        rows = [_row(event) for event in events]
        if not rows:
            return
        with self._cond:
            if self._state == "closed":
                raise StoreError(f"{self.path}: append after close(); the events were not kept")
            was_empty = not self._queue
            if was_empty:
                self._first_queued = time.monotonic()
            self._queue.extend(rows)
            # Counted after queueing: a flush that interrupts this call never waits for rows
            # that are not in the queue yet.
            self._appended += len(rows)
            queued = len(self._queue)
            if was_empty or queued - len(rows) < COMMIT_BATCH <= queued:
                self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until every event appended so far is committed; False if `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._appended
            if self._committed >= target:
                return True
            if self._thread is None or not self._thread.is_alive():
                return False
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._committed < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flush_waiters -= 1

    @property
    def status(self) -> StoreStatus:
        """Health of the writer right now."""
        with self._cond:
            pending = self._appended - self._committed
            problem = self._problem
        if problem is None:
            return StoreStatus(True, f"writing to {self.path}", pending)
        reason, advice = problem
        plural = "" if pending == 1 else "s"
        waiting = f"{pending:,} event{plural} kept in memory" if pending else "nothing waiting yet"
        return StoreStatus(
            False, f"cannot write {self.path}: {reason} — {waiting}; {advice}", pending
        )

    # -- reading ---------------------------------------------------------------------------
    def read(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        types: Collection[str] | None = None,
        address: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Committed events with since <= t < until, in t order (flush() first for the latest).

        Uses its own connection, so it works while the writer writes.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("t >= ?")
            params.append(since)
        if until is not None:
            clauses.append("t < ?")
            params.append(until)
        if types is not None:
            names = list(types)
            if not names:
                return iter(())
            clauses.append(f"type IN ({','.join('?' * len(names))})")
            params.extend(names)
        if address is not None:
            clauses.append("address = ?")
            params.append(address)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        conn = self._reader()
        try:
            cursor = conn.execute(f"SELECT payload FROM events{where} ORDER BY t, id", params)
        except sqlite3.Error as exc:
            conn.close()
            raise self._read_error(exc) from exc
        return self._iterate(conn, cursor)

    def count(self) -> int:
        """Number of committed events in the file."""
        (total,) = self._query_one("SELECT count(*) FROM events")
        return int(total)

    def time_range(self) -> tuple[float, float] | None:
        """`t` of the oldest and newest committed events; None for an empty log."""
        first, last = self._query_one("SELECT min(t), max(t) FROM events")
        return None if first is None else (float(first), float(last))

    def _query_one(self, sql: str) -> tuple[Any, ...]:
        conn = self._reader()
        try:
            row: tuple[Any, ...] = conn.execute(sql).fetchone()
            return row
        except sqlite3.Error as exc:
            raise self._read_error(exc) from exc
        finally:
            conn.close()

    def _reader(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no event log at {self.path}: check the path (--db)")
        uri = self.path.resolve().as_uri() + "?mode=ro"
        if _read_only_fs(self.path) and not Path(f"{self.path}-wal").exists():
            # A WAL database cannot be opened on a read-only file system (no -shm file can be
            # made); without a -wal file the main file is complete, so read it as immutable.
            uri += "&immutable=1"
        try:
            return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._read_error(exc) from exc

    def _iterate(
        self, conn: sqlite3.Connection, cursor: sqlite3.Cursor
    ) -> Iterator[dict[str, Any]]:
        try:
            while rows := cursor.fetchmany(512):
                for (payload,) in rows:
                    yield json.loads(payload)
        except sqlite3.Error as exc:
            raise self._read_error(exc) from exc
        finally:
            conn.close()

    def _read_error(self, exc: sqlite3.Error) -> StoreError:
        if _code(exc) in _DAMAGED:
            # Only reading (report, replay): the file may be anything the user pointed at,
            # so no advice to move it.
            return StoreError(
                f"{self.path} is not a btmon-tui event log (not an SQLite database, or a "
                "damaged one): check the path"
            )
        if "no such table" in str(exc):
            return StoreError(f"{self.path} is not a btmon-tui event log: check the path (--db)")
        return StoreError(f"cannot read {self.path}: {exc}")

    # -- the writer thread -----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """Open the file for writing, check it is ours, create the tables if missing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            self._check(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            _migrate(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _check(self, conn: sqlite3.Connection) -> None:
        """StoreError unless the file is empty or a readable log of a schema we know."""
        try:
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                return
            if "meta" not in tables:
                raise StoreError(
                    f"{self.path} is an SQLite database but not a btmon-tui event log: "
                    "give another path (--db)"
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None:
                try:
                    version = int(row[0])
                except (TypeError, ValueError):
                    raise _damaged(self.path) from None
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} was written by a newer btmon-tui (schema version {version};"
                        f" this one knows {SCHEMA_VERSION}): upgrade btmon-tui or give another"
                        " path (--db)"
                    )
            if "events" in tables:
                # Touch the newest pages: a truncated file fails here, not at the first write.
                conn.execute("SELECT max(id), max(t) FROM events").fetchone()
                conn.execute("SELECT payload FROM events ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            if _code(exc) in _DAMAGED:
                raise _damaged(self.path) from exc
            raise

    def _apply_retention(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        self._next_retention = now + RETENTION_INTERVAL_S
        if self.retention_days is not None:
            cutoff = now - self.retention_days * SECONDS_PER_DAY
            conn.execute("DELETE FROM events WHERE t < ?", (cutoff,))

    def _wait_s(self, have_batch: bool, retry_at: float | None) -> float | None:
        """Seconds until the next write (0: now; None: until an append). Lock held."""
        now = time.monotonic()
        if retry_at is not None:
            return max(0.0, retry_at - now)
        if have_batch or len(self._queue) >= COMMIT_BATCH or (self._flush_waiters and self._queue):
            return 0.0
        if not self._queue:
            return None
        return max(0.0, self._first_queued + COMMIT_INTERVAL_S - now)

    def _writer(self, conn: sqlite3.Connection | None) -> None:
        batch: list[Row] = []  # taken from the queue, not yet committed
        # Monotonic time of the next attempt after a failure (open() may have failed already).
        retry_at = None if conn is not None else time.monotonic() + RETRY_INTERVAL_S
        while True:
            with self._cond:
                while not self._stop:
                    wait_s = self._wait_s(bool(batch), retry_at)
                    if wait_s == 0.0:
                        break
                    self._cond.wait(wait_s)
                if self._stop:
                    break
                if batch:
                    batch.extend(self._queue)
                    self._queue = []
                else:
                    batch, self._queue = self._queue, []
            conn, failed = self._write(conn, batch)
            retry_at = time.monotonic() + RETRY_INTERVAL_S if failed else None
        if conn is not None:
            conn.close()

    def _write(
        self, conn: sqlite3.Connection | None, batch: list[Row]
    ) -> tuple[sqlite3.Connection | None, bool]:
        """Commit `batch` (emptying it); on failure keep what is left and record why."""
        try:
            if conn is None:
                conn = self._connect()
                # After a full disk the WAL may still hold the space; hand it back first.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if self._clock() >= self._next_retention:
                try:
                    self._apply_retention(conn)
                except sqlite3.Error as exc:
                    log.info("%s: retention skipped for an hour: %s", self.path, exc)
            while batch:
                chunk = batch[:MAX_TRANSACTION_ROWS]
                conn.execute("BEGIN")
                try:
                    conn.executemany(_INSERT, chunk)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                del batch[: len(chunk)]
                with self._cond:
                    self._committed += len(chunk)
                    self.transactions += 1
                    self._cond.notify_all()
        except Exception as exc:  # any failure: keep the events, say why, retry later
            problem = _diagnose(exc, self.path)
            if conn is not None:
                # A truncating checkpoint gives back the WAL's space on a full disk; the next
                # attempt reconnects, which also picks up a file system remounted read-write.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            with self._cond:
                self._problem = problem
            self._publish()
            return None, True
        if self._problem is not None:
            with self._cond:
                self._problem = None
            self._publish()
        return conn, False

    def _publish(self) -> None:
        """Call `on_status` if the status differs from the last one it was given."""
        status = self.status
        if status == self._published:
            return
        if self._published is None and status.ok:
            self._published = status
            return
        self._published = status
        # Info, not warning: the UI shows the status; logging must not draw over the screen.
        log.info("%s", status.detail)
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:
                log.exception("on_status callback failed")


def _dropouts_with_start_t(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: every `dropout` payload gets `start_t` (its old `t`, the start) and
    `migrated_from` (1), and an end line moves to its `end_t`, so that `t` is when each line's
    fact happened. Nothing is dropped: the old `t` is kept as `start_t`."""
    rows = conn.execute("SELECT id, t, payload FROM events WHERE type = 'dropout'").fetchall()
    updates = []
    for row_id, t, payload in rows:
        try:
            record = json.loads(payload)
        except ValueError:
            continue  # a payload we cannot read stays as it is (readers skip it)
        if not isinstance(record, dict) or "start_t" in record:
            continue
        record["start_t"] = record.get("t", t)
        # Judged by a detector that took music stops for dropouts: `report` judges it again.
        record["migrated_from"] = 1
        end_t = record.get("end_t")
        if record.get("phase") == "end" and isinstance(end_t, int | float):
            record["t"] = end_t
        new_t = record.get("t", t)
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        updates.append((float(new_t) if isinstance(new_t, int | float) else t, text, row_id))
    conn.executemany("UPDATE events SET t = ?, payload = ? WHERE id = ?", updates)


#: version -> the step that brings a file of that version to the next one.
_MIGRATIONS: Final[dict[int, Callable[[sqlite3.Connection], None]]] = {
    1: _dropouts_with_start_t,
}


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older file to SCHEMA_VERSION, inside the caller's transaction."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row is not None else SCHEMA_VERSION
    if version >= SCHEMA_VERSION:
        return
    while version < SCHEMA_VERSION:
        _MIGRATIONS[version](conn)
        version += 1
    log.info("event log migrated to schema version %d", SCHEMA_VERSION)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _row(event: Event | dict[str, Any]) -> Row:
    """The `events` row of one event; ValueError if a dict is not a §4.2 event."""
    obj = event.to_json() if isinstance(event, Event) else event
    if not isinstance(obj, dict):
        raise ValueError(f"not an event: {event!r}")
    kind = obj.get("type")
    t = obj.get("t")
    if not isinstance(kind, str):
        raise ValueError(f"event without a string 'type': {obj!r}")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise ValueError(f"event without a numeric 't': {obj!r}")
    address = obj.get("address")
    payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return float(t), kind, address if isinstance(address, str) else None, payload


def _code(exc: BaseException) -> int | None:
    """SQLite's primary result code of an sqlite3 exception (None for other errors)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _damaged(path: Path) -> StoreError:
    return StoreError(
        f"{path} is damaged or not an SQLite database: move it aside (e.g. mv {path} "
        f"{path}.bad) and btmon-tui starts a new log"
    )


def _diagnose(exc: BaseException, path: Path) -> tuple[str, str]:
    """(what is wrong, what to do) for a failed write, in words for the status bar."""
    retrying = f"retrying every {RETRY_INTERVAL_S:g} s"
    code = _code(exc)
    os_errno = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, StoreError):  # the file changed under us (replaced by a newer version)
        return str(exc), retrying
    if code in _DAMAGED:
        return "the file is damaged", f"move it aside (mv {path} {path}.bad) to start a new log"
    if os_errno == errno.EROFS or _read_only_fs(path):
        return "read-only file system", "remount it read-write and they will be written"
    if code == sqlite3.SQLITE_FULL or os_errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full", "free space and they will be written"
    if code == sqlite3.SQLITE_READONLY:
        return "the file is read-only", "make it writable and they will be written"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "another program holds the write lock", retrying
    if code == sqlite3.SQLITE_PERM or os_errno in (errno.EACCES, errno.EPERM):
        return "permission denied", "fix the permissions and they will be written"
    if code == sqlite3.SQLITE_IOERR or os_errno == errno.EIO:
        return "I/O error", f"check the disk; {retrying}"
    return str(exc) or type(exc).__name__, retrying
