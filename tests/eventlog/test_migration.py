"""Event logs written by schema version 1 (before issue 11): read as they are, and upgraded to
the current version when opened for writing, with nothing lost (DESIGN §4.2, §6)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from core.dropouts.report import report_from_db
from core.eventlog.store import SCHEMA_VERSION, EventStore
from tests.dropouts.records import A, B, device, old_dropout_record, speaker

T = 1_700_000_000.0

#: The tables exactly as version 1 created them.
V1_SCHEMA = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE events(id INTEGER PRIMARY KEY, t REAL NOT NULL,"
    " type TEXT NOT NULL, address TEXT, payload TEXT NOT NULL)",
    "CREATE INDEX events_t ON events(t)",
    "CREATE INDEX events_type ON events(type, t)",
    "CREATE INDEX events_address ON events(address, t)",
)


def v1_records() -> list[dict[str, Any]]:
    """A session as version 1 logged it: dropout lines with `t` = start in both phases, and
    what its detector got wrong: a music stop counted as a `transport` dropout of the first
    speaker to go idle, a probe miss and the stall it caused counted twice."""
    records: list[dict[str, Any]] = [
        old_dropout_record(T - 5000, B, "link"),  # history from before the raw lines
        speaker(T, A, "streaming"),
        speaker(T, B, "streaming"),
    ]
    for k in range(6):
        start = T + 100 + 282.0 * k
        records += [
            speaker(start, A, "no-a2dp"),
            device(start + 0.0004, A, False, "timeout"),
            old_dropout_record(start, A, "link", together_with=(B,) if k == 2 else ()),
            speaker(start + 7, A, "streaming"),
            old_dropout_record(start, A, "link", end_t=start + 7),
        ]
    probe = {"type": "probe", "t": T + 700, "results": [{"address": B, "detected": False}]}
    records += [
        probe,
        old_dropout_record(T + 700, B, "probe"),
        speaker(T + 700.4, B, "stalled"),
        old_dropout_record(T + 700.4, B, "stall"),
        speaker(T + 720, B, "streaming"),
        old_dropout_record(T + 700.4, B, "stall", end_t=T + 720),
        {"type": "future-thing", "t": T + 800, "address": B, "payload": [1, 2]},
        speaker(T + 1900, A, "connected-idle"),
        old_dropout_record(T + 1900, A, "transport"),  # confirmed 2 s later, "others play"
        speaker(T + 1903, B, "connected-idle"),
    ]
    return sorted(records, key=lambda r: r["t"])


def write_v1(path: Path, records: list[dict[str, Any]]) -> None:
    with sqlite3.connect(path) as conn:
        for statement in V1_SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.executemany(
            "INSERT INTO events(t, type, address, payload) VALUES (?, ?, ?, ?)",
            [
                (r["t"], r["type"], r.get("address"), json.dumps(r, separators=(",", ":")))
                for r in records
            ],
        )
    conn.close()


def rows(path: Path) -> list[tuple[int, float, str, str | None, dict[str, Any]]]:
    with sqlite3.connect(path) as conn:
        out = [
            (i, t, kind, address, json.loads(payload))
            for i, t, kind, address, payload in conn.execute(
                "SELECT id, t, type, address, payload FROM events ORDER BY id"
            )
        ]
    conn.close()
    return out


def version(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    return str(value)


def test_v1_log_is_read_as_it_is_and_upgraded_when_written(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    write_v1(path, v1_records())
    before = rows(path)
    # Reading (report) does not write: the file stays version 1, and reads right.
    report = report_from_db(path, now=T + 3000)
    assert version(path) == "1"
    counts = {r["address"]: (r["dropouts"], r["kinds"]) for r in report["speakers"]}
    # Judged again from the raw lines: the music stop is no dropout, B's probe miss and the
    # stall it caused are one; B's link from before the raw lines stands as recorded.
    assert counts == {A: (6, {"link": 6}), B: (2, {"link": 1, "probe": 1})}

    with EventStore(path, retention_days=None) as store:
        store.append([speaker(T + 3000, A, "streaming")])
    assert version(path) == str(SCHEMA_VERSION) == "2"
    after = rows(path)
    assert len(after) == len(before) + 1
    for (i, t, kind, address, old), (j, new_t, new_kind, new_address, new) in zip(
        before, after, strict=False
    ):
        assert (i, kind, address) == (j, new_kind, new_address)
        if kind != "dropout":
            assert (new_t, new) == (t, old)  # untouched
            continue
        # Nothing lost: every old field is there, the old `t` is the start; the record says
        # which detector judged it.
        assert new["start_t"] == old["t"] == t
        assert new["migrated_from"] == 1
        assert {k: v for k, v in new.items() if k not in ("t", "start_t", "migrated_from")} == {
            k: v for k, v in old.items() if k != "t"
        }
        expected_t = old["end_t"] if old["phase"] == "end" else old["t"]
        assert new["t"] == new_t == expected_t
    # The report says the same after the upgrade, and opening again changes nothing.
    assert report_from_db(path, now=T + 3000)["speakers"] == report["speakers"]
    with EventStore(path, retention_days=None):
        pass
    assert rows(path) == after


def test_new_log_starts_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    with EventStore(path, retention_days=None) as store:
        store.append([old_dropout_record(T, A, "link")])
    assert version(path) == str(SCHEMA_VERSION)
    # A record appended as it is (a history import) is not rewritten by a later open.
    with EventStore(path, retention_days=None):
        pass
    ((_, _, _, _, payload),) = rows(path)
    assert "start_t" not in payload
