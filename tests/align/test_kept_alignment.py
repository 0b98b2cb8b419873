"""The Monitor keeps the last alignment (issue 14 §3): the delays an `align` applied and the
spread before and after, from the align it runs itself (the demo's room, through the real
probe analysis), from the event log's history at start, and from a replayed recording; a
reset removes every delay, a dry run changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from core.eventlog.replay import ReplayMonitor
from core.eventlog.store import EventStore
from core.fleet.events import AlignEvent, AlignResult
from core.monitor import Monitor
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM, STALLED
from tui.cli.source import HISTORY_TYPES

SUB = "00:1A:7D:DA:71:03"
LEFT = "00:1A:7D:DA:71:01"
T0 = 1_795_800_000.0


def align_record(t: float, result: str = "aligned", **delays: int) -> dict[str, Any]:
    """An `align` line as `btmon-tui align --json` writes it (delays by address)."""
    results = tuple(
        AlignResult(a, d, 10.0 * d, 0.1, name=f"Speaker {a[-2:]}") for a, d in delays.items()
    )
    return AlignEvent(t, "btmon_fleet", results, 144.4, 0.4, 2, 5.0, result).to_json()


async def test_the_monitor_keeps_what_its_align_applied(demo_bus: str, tmp_path: Path) -> None:
    with EventStore(tmp_path / "log.db", retention_days=None) as store:
        monitor = Monitor(demo_bus, log=store)
        room = RoomBackend(ROOM, monitor.clock)
        running = asyncio.create_task(monitor.run())
        try:
            assert await monitor.wait_ready(10.0)
            assert monitor.snapshot().alignment is None  # nothing aligned yet
            event, left_out = await monitor.align(room, room)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        store.flush()
        history = store.read(types=HISTORY_TYPES)
    assert event.result == "aligned", event.detail
    kept = monitor.snapshot().alignment
    assert kept is not None and kept.result == "aligned" and kept.t == event.t
    # The delays the room holds now, by address: the sub waits > 100 ms, one waits none.
    assert dict(kept.delays_ms) == room.delays() == {r.address: r.delay_ms for r in event.results}
    assert kept.delays_ms[SUB] > 100 and min(kept.delays_ms.values()) == 0
    assert STALLED not in kept.delays_ms and "Foyer" in left_out  # not heard, not aligned
    assert kept.spread_before_ms == pytest.approx(event.spread_before_ms, abs=1e-3)
    assert kept.spread_before_ms > 100
    assert kept.spread_after_ms is not None and kept.spread_after_ms <= 5.0
    assert kept.names[SUB] == "Sub Bass"
    # A restart: the history read from the log (the types `btmon-tui` reads) brings it back.
    again = Monitor()
    again.load_history(history)
    assert again.snapshot().alignment == kept


def test_a_reset_removes_every_delay_and_a_dry_run_changes_nothing() -> None:
    monitor = Monitor()
    monitor.load_history([align_record(T0, **{SUB: 142, LEFT: 0})])
    kept = monitor.snapshot().alignment
    assert kept is not None and dict(kept.delays_ms) == {SUB: 142, LEFT: 0}
    version = monitor.snapshot().version
    monitor.aligned(AlignEvent.from_json(align_record(T0 + 10, "dry-run", **{SUB: 90})))
    assert monitor.snapshot().alignment == kept  # measured, applied nothing
    monitor.aligned(AlignEvent(T0 + 20, "btmon_fleet", (), None, None, 0, None, "reset"))
    reset = monitor.snapshot().alignment
    assert reset is not None and reset.result == "reset" and not reset.delays_ms
    assert monitor.snapshot().version > version  # shown again
    # An older alignment (a remote host's late line) does not undo the newer reset.
    monitor.aligned(AlignEvent.from_json(align_record(T0 + 5, **{SUB: 142})))
    assert monitor.snapshot().alignment == reset


def test_a_not_aligned_run_that_applied_nothing_keeps_the_delays_in_place() -> None:
    monitor = Monitor()
    monitor.load_history([align_record(T0, **{SUB: 142, LEFT: 0})])
    kept = monitor.snapshot().alignment
    nothing = AlignEvent(T0 + 30, "btmon_fleet", (), None, None, 0, 5.0, "not-aligned", "why")
    monitor.aligned(nothing)
    assert monitor.snapshot().alignment == kept
    applied = AlignEvent.from_json(align_record(T0 + 60, "not-aligned", **{SUB: 150, LEFT: 0}))
    monitor.aligned(applied)
    after = monitor.snapshot().alignment
    assert after is not None and after.result == "not-aligned" and after.delays_ms[SUB] == 150


async def test_a_replayed_align_record_is_kept_and_a_rewind_forgets_it() -> None:
    records = [
        {"type": "snapshot", "t": T0, "fleet": {}, "speakers": []},
        align_record(T0 + 1, **{SUB: 142, LEFT: 0}),
        {"type": "source", "t": T0 + 2, "state": "connected", "detail": ""},
    ]
    monitor = ReplayMonitor(records, label="test", speed=1000.0)
    running = asyncio.create_task(monitor.run())
    try:
        await asyncio.wait_for(monitor.recording.finished.wait(), 10.0)
        kept = monitor.snapshot().alignment
        assert kept is not None and dict(kept.delays_ms) == {SUB: 142, LEFT: 0}
        assert kept.t == T0 + 1 and kept.spread_after_ms == 0.4
        monitor.recording.seek(-2.0)  # back to the recording's start: before the align
        assert monitor.snapshot().alignment is None
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
