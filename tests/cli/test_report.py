"""`btmon-tui report` end to end, as a subprocess (DESIGN §4.1, §4.3, §6).

Inputs are seeded recordings with known truth (tests/dropouts/records.py) written as `watch
--json` writes them, with and without `dropout` lines, the same records in an EventStore, bad
files, and the output of a real `watch --json --demo` run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from core.eventlog.store import EventStore
from core.fleet.describe import age, stamp
from core.sim.scenario import DROP_PERIOD_S, DROPPER, STALLED
from tests.cli.conftest import Result, run_cli
from tests.conftest import require_binary
from tests.dropouts.records import (
    PERIOD_S,
    PERIODIC,
    RANDOM,
    STEADY,
    Recording,
    make_recording,
)

SPEAKER_KEYS = {"address", "dropouts", "period_s", "period_confidence", "next_expected", "last"}


@pytest.fixture(scope="module")
def recording() -> Recording:
    return make_recording(seed=1)


def report(*args: str) -> Result:
    return run_cli("report", *args, timeout=30)


def report_json(*args: str) -> dict[str, Any]:
    result = report(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    out: dict[str, Any] = json.loads(lines[0])
    return out


def by_address(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["address"]: row for row in result["speakers"]}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def check_against_truth(result: dict[str, Any], rec: Recording, now: float) -> None:
    """The §4.3 report of a recording, against what the generator knows."""
    truth = rec.truth
    assert set(result) >= {"speakers", "window"}
    assert result["window"] == {"start": truth.t0, "end": truth.end}
    rows = by_address(result)
    # Only speakers that dropped are listed; the steady one was resynced (local) and went
    # idle with the fleet (music stopped): neither is a dropout.
    assert list(rows) == sorted([PERIODIC, RANDOM])
    assert STEADY not in rows
    for row in rows.values():
        assert set(row) >= SPEAKER_KEYS

    periodic = rows[PERIODIC]
    assert periodic["dropouts"] == truth.count(PERIODIC) == 28
    assert periodic["kinds"] == {"link": 28}
    assert periodic["name"] == "Sub Bass"
    assert periodic["last"] == truth.last(PERIODIC)
    assert periodic["period_s"] == pytest.approx(PERIOD_S, rel=0.01)
    assert 0.5 <= periodic["period_confidence"] <= 1.0
    # The next drop: one period after the last on-period drop, within the jitter of the truth.
    expected = max(truth.periodic) + periodic["period_s"]
    assert now < periodic["next_expected"]
    assert periodic["next_expected"] == pytest.approx(expected, abs=0.2)
    assert abs(periodic["next_expected"] - truth.next_slot(now)) < 0.03 * PERIOD_S

    rand = rows[RANDOM]
    assert rand["dropouts"] == truth.count(RANDOM) == 10
    assert rand["kinds"] == truth.kinds(RANDOM) == {"link": 7, "transport": 3}
    assert rand["last"] == truth.last(RANDOM)
    assert rand["period_s"] is None
    assert rand["next_expected"] is None
    assert rand["period_confidence"] == 0.0

    # One drop of the random dropper came 2 s after one of the periodic dropper: together.
    assert periodic["together"] == rand["together"] == 1
    assert result["fleet"] == {"dropouts": 38, "together": 2, "alone": 36}


# -- JSON Lines ----------------------------------------------------------------------------------


def test_report_json_from_watch_lines(recording: Recording, tmp_path: Path) -> None:
    path = write(tmp_path / "rec.jsonl", recording.text())
    now = recording.truth.end + 50.0
    result = report_json("--events", str(path), "--now", str(now))
    check_against_truth(result, recording, now)
    assert result["warnings"] == []


def test_report_derives_dropouts_from_raw_lines(recording: Recording, tmp_path: Path) -> None:
    """No `dropout` lines: the report runs the detector over speaker/device lines itself and
    finds the same dropouts (link and transport), not the fleet-wide stop nor the resync."""
    text = recording.text(dropouts=False)
    assert '"type":"dropout"' not in text
    path = write(tmp_path / "raw.jsonl", text)
    now = recording.truth.end + 50.0
    raw = report_json("--events", str(path), "--now", str(now))
    check_against_truth(raw, recording, now)
    full = report_json("--events", str(write(tmp_path / "rec.jsonl", recording.text())))
    assert raw["speakers"] != [] and by_address(raw).keys() == by_address(full).keys()
    for address, row in by_address(full).items():
        derived = by_address(raw)[address]
        for key in ("dropouts", "kinds", "last", "period_s", "together"):
            assert derived[key] == row[key], key


def test_report_next_expected_moves_with_now(recording: Recording, tmp_path: Path) -> None:
    path = write(tmp_path / "rec.jsonl", recording.text())
    last = max(recording.truth.periodic)
    default = by_address(report_json("--events", str(path)))[PERIODIC]
    # Without --now: predicted from the end of the recording (the next drop after it).
    assert recording.truth.end < default["next_expected"] < recording.truth.end + PERIOD_S
    later = last + 10.5 * PERIOD_S
    row = by_address(report_json("--events", str(path), "--now", str(later)))[PERIODIC]
    assert later < row["next_expected"] < later + row["period_s"]
    periods = (row["next_expected"] - last) / row["period_s"]
    assert periods == pytest.approx(11, abs=0.01)


def test_report_human_table(recording: Recording, tmp_path: Path) -> None:
    path = write(tmp_path / "rec.jsonl", recording.text())
    now = recording.truth.end + 50.0
    data = by_address(report_json("--events", str(path), "--now", str(now)))
    result = report("--events", str(path), "--now", str(now))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    truth = recording.truth
    today = time.time()  # a recording from another day: its times carry their dates
    assert lines[0] == (
        f"window {stamp(truth.t0, today)} – {stamp(truth.end, today)} ({age(truth.end - truth.t0)})"
    )
    assert lines[1].split() == ["speaker", "address", "drops", "period", "conf", "next"]
    assert len(lines) == 5, result.stdout
    periodic = next(line for line in lines[2:4] if PERIODIC in line)
    p = data[PERIODIC]
    assert periodic.split() == [
        "Sub",
        "Bass",
        PERIODIC,
        "28",
        age(p["period_s"]),
        f"{p['period_confidence'] * 100:.0f}%",
        *stamp(p["next_expected"], today).split(),
    ]
    assert age(p["period_s"]) in ("4m41s", "4m42s")
    rand = next(line for line in lines[2:4] if RANDOM in line)
    assert rand.split() == ["Stage", "Right", RANDOM, "10", "-", "-", "-"]
    assert lines[4] == (
        "38 dropouts: 36 alone (speaker firmware?), "
        "2 together with other speakers (host or interference?)"
    )


def test_report_of_a_recording_without_dropouts(tmp_path: Path) -> None:
    rec = make_recording(seed=1)
    # Only the snapshot and the steady speaker's resync (local): nothing to report.
    keep = [line for line in rec.raw_lines() if PERIODIC not in line and RANDOM not in line]
    keep = [line for line in keep if '"type":"snapshot"' in line or STEADY in line]
    path = write(tmp_path / "quiet.jsonl", "".join(line + "\n" for line in keep))
    result = report_json("--events", str(path))
    assert result["speakers"] == []
    assert result["fleet"] == {"dropouts": 0, "together": 0, "alone": 0}
    human = report("--events", str(path))
    assert human.returncode == 0
    assert human.stdout.splitlines()[-1] == "no dropouts"


# -- the SQLite event log ------------------------------------------------------------------------


def make_db(path: Path, records: list[dict[str, Any]]) -> Path:
    store = EventStore(path, retention_days=None)
    store.open()
    store.append(records)
    assert store.close()
    return path


@pytest.mark.parametrize("dropouts", [True, False], ids=["with-dropout-lines", "raw"])
def test_report_db_equals_jsonl(recording: Recording, tmp_path: Path, dropouts: bool) -> None:
    db = make_db(tmp_path / "events.sqlite3", recording.records(dropouts=dropouts))
    jsonl = write(tmp_path / "rec.jsonl", recording.text(dropouts=dropouts))
    now = str(recording.truth.end + 50.0)
    from_db = report_json("--db", str(db), "--now", now)
    from_file = report_json("--events", str(jsonl), "--now", now)
    from_file.pop("warnings")
    assert from_db == from_file
    check_against_truth(from_db, recording, float(now))


# -- bad input -----------------------------------------------------------------------------------


def assert_bad_input(result: Result, *words: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr naming the problem."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("btmon-tui: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_missing_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert_bad_input(report("--events", str(missing), "--json"), str(missing))
    missing_db = tmp_path / "nope.sqlite3"
    assert_bad_input(report("--db", str(missing_db), "--json"), str(missing_db))
    assert not missing_db.exists()  # reading must not create a log


@pytest.mark.parametrize(
    "content",
    [
        b"hello world\nthis is not json\n",
        b"",
        b'[{"type": "speaker", "t": 1}]\n',
        b'{"type": "speaker"}\n{"t": 5}\n',
        bytes(range(256)) * 8,
        b"SQLite format 3\x00" + b"\x00" * 200,
    ],
    ids=["text", "empty", "json-array", "no-t-or-type", "binary", "sqlite-as-events"],
)
def test_events_file_that_is_not_json_lines(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    assert_bad_input(report("--events", str(path), "--json"), str(path))


def test_directory_as_events_file(tmp_path: Path) -> None:
    assert_bad_input(report("--events", str(tmp_path), "--json"), str(tmp_path))


def test_corrupt_sqlite(recording: Recording, tmp_path: Path) -> None:
    # Random bytes where a log should be.
    noise = tmp_path / "noise.sqlite3"
    noise.write_bytes(os.urandom(8192))
    assert_bad_input(report("--db", str(noise), "--json"), str(noise), "damaged")
    # A real log with its pages overwritten after the header.
    db = make_db(tmp_path / "events.sqlite3", recording.records())
    size = db.stat().st_size
    assert size > 4 * 4096
    with db.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xa5" * (size - 100))
    assert_bad_input(report("--db", str(db), "--json"), str(db), "damaged")
    # An SQLite database that is not a btmon-tui log.
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE songs(title TEXT)")
    assert_bad_input(report("--db", str(other), "--json"), str(other), "not a btmon-tui")
    # A JSON Lines file given as --db.
    jsonl = write(tmp_path / "rec.jsonl", recording.text())
    assert_bad_input(report("--db", str(jsonl), "--json"), str(jsonl))


def test_truncated_jsonl_still_reports_with_a_warning(recording: Recording, tmp_path: Path) -> None:
    """A recording cut mid-line (watch killed, disk full): the report works and says which
    line it skipped; the cut line was the last dropout's end, its start is still counted."""
    text = recording.text()
    cut = text[: len(text) - len(recording.lines[-1]) // 2 - 1]
    assert not cut.endswith("\n")
    path = write(tmp_path / "cut.jsonl", cut)
    result = report("--events", str(path), "--json")
    assert result.returncode == 0, result.stderr
    warnings = result.stderr_lines()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"btmon-tui: warning: cut.jsonl line {len(recording.lines)}: ")
    assert warnings[0].endswith("; skipped")
    data = json.loads(result.stdout)
    assert len(data["warnings"]) == 1
    rows = by_address(data)
    assert rows[PERIODIC]["dropouts"] == 28
    assert rows[PERIODIC]["last"] == recording.truth.last(PERIODIC)
    assert rows[RANDOM]["dropouts"] == 10
    # The window ends with the last complete line (the speaker streaming again).
    assert data["window"]["end"] == recording.truth.end


# -- real `watch --json` output ------------------------------------------------------------------


def test_watch_json_output_is_report_input(tmp_path: Path) -> None:
    """`watch --json --demo --speed 40` for 25 s: the demo's dropper drops every 282 s of demo
    time (7.05 s here), its first drop 45 s (1.1 s) in; the report counts each once, as
    `link`, from the recorded dropout lines and, with them removed, from the raw lines."""
    require_binary("dbus-daemon", "dbus-daemon")
    speed = 40.0
    watch = run_cli(
        "watch", "--json", "--demo", "--speed", str(speed), "--duration", "25", timeout=45
    )
    assert watch.returncode == 0, watch.stderr
    path = write(tmp_path / "watch.jsonl", watch.stdout)
    lines = [json.loads(line) for line in watch.stdout.splitlines()]
    starts = sorted(
        {
            e["start_t"]
            for e in lines
            if e["type"] == "dropout" and e["address"] == DROPPER and e["phase"] == "start"
        }
    )
    # 25 s hold drops at 1.1, 8.2, 15.2, 22.3 s after the demo started.
    assert 3 <= len(starts) <= 4, starts
    for a, b in pairwise(starts):
        assert b - a == pytest.approx(DROP_PERIOD_S / speed, rel=0.02)

    result = report_json("--events", str(path))
    # The dropper only: Foyer (the demo's stalled speaker) is stalled in the first snapshot
    # already (watch waits for HCI before it), a stall that began before the recording.
    snapshot = {s["address"]: s["verdict"] for s in lines[0]["speakers"]}
    assert snapshot[STALLED] == "stalled"
    assert [row["address"] for row in result["speakers"]] == [DROPPER]
    row = result["speakers"][0]
    assert row["name"] == "Sub Bass"
    assert row["dropouts"] == len(starts)
    assert row["kinds"] == {"link": len(starts)}
    assert row["last"] == starts[-1]
    assert result["window"]["start"] == lines[0]["t"]
    assert result["window"]["end"] == max(e["t"] for e in lines)

    raw = [line for line in watch.stdout.splitlines() if '"type":"dropout"' not in line]
    derived = report_json("--events", str(write(tmp_path / "raw.jsonl", "\n".join(raw) + "\n")))
    assert [(r["address"], r["dropouts"], r["kinds"]) for r in derived["speakers"]] == [
        (DROPPER, len(starts), {"link": len(starts)}),
    ]
    assert derived["speakers"][0]["last"] == starts[-1]
