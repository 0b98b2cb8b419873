"""Issue 11 §5 in the demo, end to end: after our own resync, a speaker that really plays is
heard by the next probe and shown streaming, and a probe miss that HCI contradicts (media
flowing after the probe) is neither `stalled` nor a dropout.

Real components: the demo's fake BlueZ on a private dbus-daemon, its simulated HCI capture
followed through the real decoder, the real Monitor and Controller, the simulated room
rendered through the real probe analysis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.bluez.control import Controller
from core.fleet.model import Verdict
from core.hci.live import HciLive
from core.monitor import Monitor
from core.sim.demo import DemoFleet
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM
from tests.conftest import require_binary, wait_for

BAR = "F4:4E:FD:10:22:04"  # ghost-connected in the demo: transport idle until a resync
SPEED = 5.0


@pytest.fixture
async def demo_monitor(request: pytest.FixtureRequest) -> AsyncIterator[Monitor]:
    """The demo fleet and a Monitor following its HCI capture (marker `no_hci`: without)."""
    require_binary("dbus-daemon", "dbus")
    fleet = DemoFleet(speed=SPEED)
    bus = await asyncio.to_thread(fleet.start)
    assert fleet.hci_file is not None
    with_hci = request.node.get_closest_marker("no_hci") is None
    monitor = Monitor(bus, hci=HciLive.follow(Path(fleet.hci_file)) if with_hci else None)
    task = asyncio.create_task(monitor.run())
    try:
        assert await monitor.wait_ready(10.0)
        yield monitor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await asyncio.to_thread(fleet.stop)


def _verdict(monitor: Monitor, address: str) -> Verdict | None:
    speaker = next((s for s in monitor.snapshot().speakers if s.address == address), None)
    return None if speaker is None else speaker.verdict


def _room(monitor: Monitor, truth: dict) -> RoomBackend:  # type: ignore[type-arg]
    hci = monitor.hci
    assert hci is not None

    def silent() -> frozenset[str]:
        rates = hci.rates(monitor.clock())
        return frozenset(a for a, rate in rates.items() if rate.pps == 0)

    return RoomBackend(truth, monitor.clock, silent=silent)


async def _resync_bar(monitor: Monitor) -> None:
    controller = Controller(monitor)
    task = controller.start("resync", BAR)
    assert task is not None
    event = await asyncio.wait_for(task, 60)
    assert event.result == "ok", event.detail
    await wait_for(lambda: _verdict(monitor, BAR) == Verdict.STREAMING, timeout=10)


async def test_a_resynced_speaker_is_heard_and_stays_streaming(demo_monitor: Monitor) -> None:
    monitor = demo_monitor
    await _resync_bar(monitor)
    event = await monitor.probe(_room(monitor, dict(ROOM)), recheck=False)
    heard = {r.address: r.detected for r in event.results}
    assert heard.get(BAR) is True, heard
    await asyncio.sleep(1.5)
    assert _verdict(monitor, BAR) == Verdict.STREAMING
    assert monitor.detector.dropouts(BAR) == []


async def test_a_probe_miss_that_hci_contradicts_is_no_stall_and_no_dropout(
    demo_monitor: Monitor,
) -> None:
    """The old demo room did not know Bar: every probe after its resync missed it while
    65 packets/s flowed. The verdict must follow the fresher, stronger source."""
    monitor = demo_monitor
    await _resync_bar(monitor)
    deaf_to_bar = {a: s for a, s in ROOM.items() if a != BAR}
    event = await monitor.probe(_room(monitor, deaf_to_bar), recheck=False)
    assert {r.address: r.detected for r in event.results}[BAR] is False
    # Within a tick HCI has shown media after the probe: the miss does not hold.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        assert _verdict(monitor, BAR) in (Verdict.STREAMING, Verdict.STALLED)
    assert _verdict(monitor, BAR) == Verdict.STREAMING
    assert monitor.detector.dropouts(BAR) == []
    assert any("probe did not hear Bar" in w for w in monitor.warnings)


class _CoughOnce:
    """The demo room, except that the first probe does not hear `deaf` (a door slammed)."""

    def __init__(self, room: RoomBackend, deaf: str) -> None:
        self.room, self.deaf, self.calls = room, deaf, 0
        self.source = room.source

    def capture(self, targets, signals, rate):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 1:
            keep = [i for i, t in enumerate(targets) if t.address != self.deaf]
            recording = self.room.capture([targets[i] for i in keep], signals[keep], rate)
            return recording
        return self.room.capture(targets, signals, rate)


@pytest.mark.no_hci  # judged by the probe alone: no HCI media to contradict the miss
async def test_a_probe_miss_is_rechecked_within_seconds(
    demo_monitor: Monitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss without HCI to contradict it stalls the speaker; the re-check probe of that
    speaker alone, seconds later, hears it and ends the stall and its one dropout."""
    import core.monitor

    monkeypatch.setattr(core.monitor, "PROBE_RECHECK_S", 0.5)
    monitor = demo_monitor
    stage_left = "00:1A:7D:DA:71:01"
    await wait_for(lambda: _verdict(monitor, stage_left) == Verdict.STREAMING, timeout=10)
    backend = _CoughOnce(RoomBackend(ROOM, monitor.clock), stage_left)
    event = await monitor.probe(backend)  # type: ignore[arg-type]
    assert {r.address: r.detected for r in event.results}[stage_left] is False
    assert _verdict(monitor, stage_left) == Verdict.STALLED
    await wait_for(lambda: backend.calls == 2, timeout=10, message="the re-check probe")
    await wait_for(lambda: _verdict(monitor, stage_left) == Verdict.STREAMING, timeout=5)
    (dropout,) = monitor.detector.dropouts(stage_left)
    assert dropout.end is not None


async def test_a_probe_line_is_stamped_when_its_result_was_known(demo_monitor: Monitor) -> None:
    """Issue 11 §2's rule for every line: `t` is when the fact was known, so a `watch`
    stream stays in time order; `played_t` says when the probe sounded."""
    monitor = demo_monitor
    published: list = []  # type: ignore[type-arg]
    monitor.listeners.append(published.extend)
    before = time.time()
    event = await monitor.probe(_room(monitor, dict(ROOM)), recheck=False)
    assert event.played_t is not None and before <= event.played_t <= event.t
    times = [e.t for e in published]
    assert times == sorted(times), times
    line = event.to_json()
    assert line["t"] == event.t and line["played_t"] == event.played_t
