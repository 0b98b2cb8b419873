"""btmon_speaker_delay_seconds (issue 14 §3): a real /metrics endpoint over a Monitor on the
demo's fake BlueZ, scraped over HTTP before and after the Monitor aligns the demo's room
(through the real probe analysis), and after a reset."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.fleet.events import AlignEvent
from core.fleet.model import Alignment, FleetSnapshot, SourceState, SourceStatus
from core.metrics import METRICS, FleetCollector, FleetView, MetricsServer, on_loop
from core.monitor import Monitor
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM, STALLED
from tests.fleet.builders import plain_speaker
from tests.metrics.promtool import promtool_path
from tests.metrics.scrape import Samples, by_address, samples, scrape

DELAY = "btmon_speaker_delay_seconds"
SUB = "00:1A:7D:DA:71:03"
T0 = 1_795_800_000.0


async def scraped(url: str) -> tuple[Samples, str]:
    """One scrape, off the loop (the collector takes its snapshot on the Monitor's loop)."""
    _, text = await asyncio.to_thread(scrape, url)
    return samples(text), text


@pytest.mark.dbus
async def test_the_delays_an_alignment_applied_are_scraped(demo_bus: str) -> None:
    assert DELAY in METRICS
    monitor = Monitor(demo_bus)
    room = RoomBackend(ROOM, monitor.clock)
    server = MetricsServer("127.0.0.1:0")
    running = asyncio.create_task(monitor.run())
    try:
        assert await monitor.wait_ready(10.0)
        server.serve(on_loop(monitor, asyncio.get_running_loop()))
        found, _ = await scraped(server.url)
        assert "btmon_fleet_connected" in found and DELAY not in found  # nothing aligned yet
        event, _ = await monitor.align(room, room)
        assert event.result == "aligned", event.detail
        found, text = await scraped(server.url)
        delays = by_address(found, DELAY)
        # In seconds, one series per aligned speaker: what the room holds now.
        assert delays == {a: d / 1000.0 for a, d in room.delays().items()}
        assert len(delays) >= 2 and min(delays.values()) == 0.0
        assert max(delays.values()) > 0.1  # the demo's early sub waits > 100 ms
        assert STALLED not in delays  # not heard, left out: no series (never NaN)
        assert "# TYPE btmon_speaker_delay_seconds gauge" in text
        # `btmon-tui align --reset` removed every stage: no delay series at all.
        monitor.aligned(
            AlignEvent(monitor.clock(), "btmon_fleet", (), None, None, 0, None, "reset")
        )
        found, _ = await scraped(server.url)
        assert DELAY not in found
    finally:
        server.close()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


def test_promtool_finds_no_naming_problem_in_the_delays() -> None:
    """Prometheus' own linter (base unit seconds, a gauge) on a scrape with delays."""
    speaker = plain_speaker(SUB, "Sub Bass", T0)
    snapshot = FleetSnapshot(
        T0,
        (speaker,),
        (),
        SourceStatus(SourceState.CONNECTED, ""),
        alignment=Alignment(T0, "aligned", {SUB: 142}, 144.4, 0.4),
    )
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: FleetView(snapshot, {})))
    text = generate_latest(registry).decode()
    assert by_address(samples(text), DELAY) == {SUB: 0.142}
    checked = subprocess.run(
        [promtool_path(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0 and not checked.stdout + checked.stderr, checked
