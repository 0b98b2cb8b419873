"""`--replay`: a recorded session played through the same UI, from a real SQLite log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.eventlog.replay import ReplayMonitor
from core.eventlog.store import EventStore
from core.fleet.events import DropoutEvent
from tests.tui.helpers import screen_lines, screen_text, until, verdicts
from tui.app import make_app
from tui.widgets.drift import DriftPanel

T0 = 1_795_800_000.0
DROPPER = "00:1A:7D:DA:71:03"


def speaker(address: str, name: str, verdict: str, connected: bool = True) -> dict[str, object]:
    transport = {"state": "active", "codec": "SBC", "delay_ms": 150.0, "volume": 100}
    return {
        "address": address,
        "name": name,
        "adapter": "hci0",
        "paired": True,
        "connected": connected,
        "verdict": verdict,
        "transport": transport if verdict == "streaming" else None,
        "battery": None,
        "media_pps": None,
        "last_dropout": None,
        "period_s": None,
    }


def record_session(path: Path) -> None:
    """A fleet of two; Sub Bass drops every 100 s five times, then is disconnected at the end."""
    left = speaker("00:1A:7D:DA:71:01", "Stage Left", "streaming")
    sub = speaker(DROPPER, "Sub Bass", "streaming")
    with EventStore(path, retention_days=None) as store:
        store.append(
            [
                {
                    "type": "snapshot",
                    "t": T0,
                    "fleet": {"speakers": 2, "connected": 2, "streaming": 2},
                    "speakers": [left, sub],
                }
            ]
        )
        for k in range(5):
            t = T0 + 100 * (k + 1)
            store.append([DropoutEvent(t, DROPPER, "link")])
            store.append([DropoutEvent(t, DROPPER, "link", 4.0, "end", t + 4)])
        store.append(
            [
                {
                    "type": "speaker",
                    "t": T0 + 560,
                    **speaker(DROPPER, "Sub Bass", "disconnected", False),
                }
            ]
        )


async def test_replay_shows_the_recorded_fleet_and_its_dropouts(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    record_session(db)
    monitor = ReplayMonitor(EventStore(db, retention_days=None).read(), label=str(db), speed=10_000)
    app = make_app("replay", monitor=monitor, include_all=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: monitor.finished.is_set(), what="the end of the replay")
        await until(
            pilot, lambda: verdicts(app).get("Sub Bass") == "disconnected", what="final state"
        )
        assert verdicts(app)["Stage Left"] == "streaming"
        summary = app.snapshot.dropouts[DROPPER] if app.snapshot else None
        assert summary is not None and summary.count == 5
        assert summary.period_s is not None and abs(summary.period_s - 100) < 1
        # The clock is the recording's: the last recorded event, not the wall clock.
        assert app.clock() == T0 + 560


def test_replay_of_a_missing_or_empty_log_is_a_clear_error(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--replay", str(tmp_path / "nope.sqlite3")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty.sqlite3"
    with EventStore(empty, retention_days=None):
        pass
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--replay", str(empty)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "no events" in result.stderr


def probe_record(t: float) -> dict[str, object]:
    """A recorded probe: Stage Left heard, Sub Bass not."""
    return {
        "type": "probe",
        "t": t,
        "results": [
            {"address": "00:1A:7D:DA:71:01", "name": "Stage Left", "detected": True,
             "latency_ms": 180.0, "offset_ms": 0.0, "snr_db": 30.0, "level_dbfs": -20.0},
            {"address": DROPPER, "name": "Sub Bass", "detected": False, "latency_ms": None,
             "offset_ms": None, "snr_db": None, "level_dbfs": None},
        ],
        "spread_ms": 0.0,
        "source": "microphone",
        "warnings": [],
    }  # fmt: skip


async def test_a_replay_says_so_offers_its_own_keys_and_names_its_speakers(
    tmp_path: Path,
) -> None:
    """REPLAY at the top, no r/c/d/p in the footer, the drift panel from the logged probes,
    names for dropouts recorded before the first snapshot, and pause, seek and speed keys."""
    db = tmp_path / "events.sqlite3"
    record_session(db)
    with EventStore(db, retention_days=None) as store:
        # Seeded before the session's first snapshot: no speaker row names it yet.
        store.append([DropoutEvent(T0 - 3000, DROPPER, "link")])
        store.append([probe_record(T0 + 50)])
    monitor = ReplayMonitor(EventStore(db, retention_days=None).read(), label=str(db), speed=1)
    app = make_app("replay", monitor=monitor, include_all=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: "Stage Left" in screen_text(app), what="the fleet")
        await pilot.press("right")  # a minute on: past the logged probe
        await until(pilot, lambda: app.query_one(DriftPanel).display, what="the drift panel")
        text = screen_text(app)
        assert screen_lines(app)[0].startswith("  REPLAY ")
        assert "Sub Bass: DROPOUT" in text and DROPPER not in text
        assert "NOT HEARD" in text
        footer = screen_lines(app)[-1]
        for hidden in ("Resync", "Connect", "Disconnect", "Probe"):
            assert hidden not in footer, footer
        for shown in ("Pause", "Faster", "Slower", "-1 min", "+1 min"):
            assert shown in footer, footer
        await pilot.press("space")
        assert monitor.paused
        await until(pilot, lambda: "PAUSED" in screen_lines(app)[0], what="the banner")
        at = monitor.now
        await pilot.pause(0.3)
        assert monitor.now == at  # the recording's clock stands still
        await pilot.press("plus")
        assert monitor.speed == 2
        await pilot.press("left")
        assert monitor.now == max(monitor.start_t, at - 60)
        await pilot.press("r")  # no action on the past; a toast says why
        await until(pilot, lambda: "This is a replay" in screen_text(app), what="the toast")
