"""EventStore in one process, on real SQLite files: round trip, queries, batching, the commit
timer, retention, and the files it must refuse (DESIGN §6)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import core.fleet.events
from core.eventlog.store import (
    COMMIT_BATCH,
    COMMIT_INTERVAL_S,
    RETENTION_INTERVAL_S,
    SCHEMA_VERSION,
    EventStore,
    StoreError,
    default_db_path,
)
from core.fleet.events import (
    ActionEvent,
    AlignEvent,
    AlignResult,
    DeviceEvent,
    DropoutEvent,
    Event,
    ProbeEvent,
    RawEvent,
    SnapshotEvent,
    SourceEvent,
    SpeakerEvent,
    TransportEvent,
)
from core.fleet.model import FleetCounts, SpeakerProbe
from tests.fleet.builders import sample_speaker

T = 1_700_000_000.0
ADDR = "AA:BB:CC:DD:EE:01"
DAY = 86_400.0

SPEAKER = sample_speaker(T, ADDR)


def every_event() -> list[Event]:
    """One event of each type in core.fleet.events, plus the §4.2 types still kept as RawEvent."""
    return [
        SnapshotEvent(T, FleetCounts(5, 4, 3), (SPEAKER,)),
        SpeakerEvent(T + 1, SPEAKER),
        DeviceEvent(T + 2, ADDR, False, "timeout"),
        TransportEvent(T + 3, ADDR, "idle", "SBC"),
        SourceEvent(T + 4, "waiting", "BlueZ left the bus"),
        DropoutEvent(T + 5, ADDR, "link", 3.5, "end", T + 8.5, ("AA:BB:CC:DD:EE:02",)),
        ProbeEvent(T + 6, (
            SpeakerProbe(ADDR, "Bar", True, 201.2, 151.2, 3.4, 21.0, -30.5),
            SpeakerProbe("AA:BB:CC:DD:EE:02", "Foyer", False),
        ), None, "microphone", ("the recording clips (1.0% of samples at full scale)",)),
        RawEvent(T + 6.5, {"type": "future-thing", "t": T + 6.5, "address": ADDR}),
        ActionEvent(T + 7, ADDR, "resync", "error", "br-connection-page-timeout",
                    "the speaker did not answer: is it on and in range?", 5.2),
        AlignEvent(T + 8, "btmon_fleet", (
            AlignResult(ADDR, 12, -6.5, 0.4, "Bar", 212.5),
            AlignResult("AA:BB:CC:DD:EE:02", 0, None, None, "Foyer"),
        ), 140.2, 3.1, 3, 5.0, "not-aligned", "Foyer was not heard"),
    ]  # fmt: skip


def transport(i: int, address: str = ADDR, t: float | None = None) -> dict[str, Any]:
    return {
        "type": "transport",
        "t": T + i if t is None else t,
        "address": address,
        "state": "active",
        "codec": "SBC",
        "seq": i,
    }


def raw_rows(path: Path) -> list[tuple[float, str, str | None, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT t, type, address, payload FROM events ORDER BY id").fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "btmon-tui" / "events.sqlite3"


def test_round_trip_of_every_event_type(db: Path) -> None:
    """Each event comes back as its §4.2 JSON; the payload column is exactly its JSON line."""
    events = every_event()
    classes = [c for c in vars(core.fleet.events).values() if isinstance(c, type)]
    modelled = {c for c in classes if issubclass(c, Event) and c is not Event}
    assert modelled <= {type(e) for e in events}, "add a sample of the new event type here"
    with EventStore(db) as store:
        store.append(events)
        store.append([transport(8)])  # a plain dict is an event too
        assert store.flush()
        back = list(store.read())
    assert back == [json.loads(e.to_line()) for e in events] + [transport(8)]
    rows = raw_rows(db)
    assert [r[3] for r in rows[:-1]] == [e.to_line() for e in events]
    assert [(r[0], r[1], r[2]) for r in rows[:4]] == [
        (T, "snapshot", None),
        (T + 1, "speaker", ADDR),
        (T + 2, "device", ADDR),
        (T + 3, "transport", ADDR),
    ]
    assert {r[1] for r in rows} == {
        "snapshot", "speaker", "device", "transport", "source", "dropout", "probe",
        "future-thing", "action", "align",
    }  # fmt: skip


def test_file_layout_matches_design(db: Path) -> None:
    """WAL journal, schema_version (SCHEMA_VERSION) in meta, indexes on t, type and address."""
    with EventStore(db) as store:
        store.append([transport(0)])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        indexed = {row[0] for row in conn.execute(
            "SELECT ii.name FROM sqlite_master m, pragma_index_info(m.name) ii "
            "WHERE m.type='index' AND m.tbl_name='events' AND ii.seqno=0")}  # fmt: skip
    assert indexed == {"t", "type", "address"}


def test_read_filters_and_orders_by_time(db: Path) -> None:
    other = "AA:BB:CC:DD:EE:02"
    events = [transport(i, ADDR if i % 2 else other) for i in range(10)]
    events += [{"type": "device", "t": T + 4.5, "address": ADDR, "connected": False}]
    with EventStore(db) as store:
        store.append(reversed(events))  # appended out of order: read() sorts by t
        assert store.flush()
        assert [e["t"] for e in store.read()] == sorted(e["t"] for e in events)
        assert [e["seq"] for e in store.read(since=T + 3, until=T + 6, types={"transport"})] == [
            3,
            4,
            5,
        ]
        assert [e["t"] for e in store.read(types=["device"])] == [T + 4.5]
        assert len(list(store.read(address=ADDR))) == 6
        assert list(store.read(types=())) == []
        assert store.count() == 11
        assert store.time_range() == (T, T + 9)
    with EventStore(db.with_name("empty.sqlite3")) as empty:
        assert empty.time_range() is None


def test_many_appends_one_flush_few_transactions(db: Path) -> None:
    """5,000 single-event appends are committed in a handful of transactions, not 5,000 (how
    fast an append is: `python -m bench store-ingest`, not a timed test)."""
    total = 5 * COMMIT_BATCH
    with EventStore(db) as store:
        for i in range(total):
            store.append([transport(i)])
        assert store.flush()
        assert store.count() == total
        assert store.transactions <= 2 * total // COMMIT_BATCH, store.transactions
    assert [e["seq"] for e in EventStore(db).read()] == list(range(total))


def test_commit_timer_without_flush(db: Path) -> None:
    """One lone event reaches the file within the commit interval, nobody calling flush()."""
    with EventStore(db) as store:
        store.append([transport(0)])
        deadline = time.monotonic() + 4 * COMMIT_INTERVAL_S
        while store.count() == 0:
            assert time.monotonic() < deadline, "the event was not committed by the timer"
            time.sleep(0.02)


def test_append_never_waits_for_the_disk(db: Path) -> None:
    """While another program holds the write lock, append() still returns at once."""
    with EventStore(db) as store:
        store.append([transport(0)])
        assert store.flush()
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            slowest = 0.0
            for i in range(1, 2 * COMMIT_BATCH + 1):
                started = time.perf_counter()
                store.append([transport(i)])
                slowest = max(slowest, time.perf_counter() - started)
            time.sleep(COMMIT_INTERVAL_S * 2)  # the writer is now stuck in the busy wait
            assert not store.flush(timeout=0.1)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert slowest < 0.05, f"an append took {slowest * 1000:.1f} ms"
        assert store.flush()
        assert store.count() == 2 * COMMIT_BATCH + 1


def test_append_is_usable_from_threads(db: Path) -> None:
    with EventStore(db) as store:

        def produce(base: int) -> None:
            for i in range(500):
                store.append([transport(base + i)])

        threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.flush()
        assert store.count() == 2000


def test_bad_events_are_refused_at_append(db: Path) -> None:
    with EventStore(db) as store:
        for bad in ({"t": T}, {"type": "x"}, {"type": "x", "t": True}, {"type": 1, "t": T}):
            with pytest.raises(ValueError):
                store.append([transport(0), bad])  # type: ignore[list-item]
        assert store.flush()
        assert store.status.pending == 0
    assert EventStore(db).count() == 0  # nothing from a refused call was queued


def test_close_is_idempotent_and_append_after_close_fails(db: Path) -> None:
    store = EventStore(db)
    store.open()
    store.append([transport(0)])
    assert store.close()
    assert store.close()
    with pytest.raises(StoreError, match="close"):
        store.append([transport(1)])
    assert store.count() == 1


def test_events_appended_before_open_are_written(db: Path) -> None:
    store = EventStore(db)
    store.append([transport(0)])
    assert not store.flush(timeout=0.1)
    with store:
        assert store.flush()
    assert store.count() == 1


def test_retention_at_open_and_then_hourly(db: Path) -> None:
    now = [T + 100 * DAY]
    ages_days = [40, 31, 29.99, 1, 0]
    with EventStore(db, retention_days=None) as store:
        store.append([transport(i, t=now[0] - age * DAY) for i, age in enumerate(ages_days)])
    assert EventStore(db).count() == 5

    with EventStore(db, retention_days=30, clock=lambda: now[0]) as store:
        assert [e["seq"] for e in store.read()] == [2, 3, 4]  # deleted at open
        now[0] += RETENTION_INTERVAL_S / 2  # event 2 is now older than 30 days...
        store.append([transport(5, t=now[0])])
        assert store.flush()
        assert [e["seq"] for e in store.read()] == [2, 3, 4, 5]  # ...but an hour has not passed
        now[0] += RETENTION_INTERVAL_S / 2 + 1
        store.append([transport(6, t=now[0])])
        assert store.flush()
        assert [e["seq"] for e in store.read()] == [3, 4, 5, 6]


def test_default_db_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "btmon-tui" / "events.sqlite3"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/is/ignored")  # XDG: must be absolute
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local/state/btmon-tui/events.sqlite3"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_db_path() == tmp_path / "home" / ".local/state/btmon-tui/events.sqlite3"


# -- files the store must refuse ------------------------------------------------------------
def assert_refused(path: Path, *words: str) -> None:
    before = path.read_bytes()
    store = EventStore(path)
    with pytest.raises(StoreError) as caught:
        store.open()
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    assert path.read_bytes() == before, "a refused file must not be modified"
    assert store.status.ok  # nothing was appended: nothing is at risk


def test_random_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    path.write_bytes(os.urandom(64 * 1024))
    assert_refused(path, "not an SQLite database", "move it aside")
    # Only reading it (report, replay): the file may be anything, so no advice to move it.
    with pytest.raises(StoreError, match="not a btmon-tui event log") as refused:
        EventStore(path).count()
    assert "mv " not in str(refused.value)


def test_moving_a_refused_file_aside_starts_a_new_log(tmp_path: Path) -> None:
    """The advice in the message works: after `mv FILE FILE.bad` the same store opens."""
    path = tmp_path / "events.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    store = EventStore(path)
    with pytest.raises(StoreError):
        store.open()
    path.rename(path.with_suffix(".bad"))
    with store:
        store.append([transport(0)])
    assert store.count() == 1


def test_truncated_database_is_refused(db: Path, tmp_path: Path) -> None:
    with EventStore(db) as store:
        store.append([transport(i) for i in range(5000)])
    data = db.read_bytes()
    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    assert_refused(truncated, "damaged", "move it aside")


def test_newer_schema_is_refused(db: Path) -> None:
    with EventStore(db) as store:
        store.append([transport(0)])
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,)
        )
    conn.close()
    assert_refused(db, "newer btmon-tui", f"schema version {SCHEMA_VERSION + 1}")


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts(name TEXT)")
    conn.close()
    assert_refused(path, "not a btmon-tui event log")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        EventStore(tmp_path).open()


def test_reading_a_missing_log_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no event log at .*missing\.sqlite3"):
        EventStore(tmp_path / "missing.sqlite3").count()
