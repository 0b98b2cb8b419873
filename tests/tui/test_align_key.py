"""`A` in the demo (issue 14 §2, §4): the demo's room honours the delays its fleet output
applies, so the alignment takes the early sub from an echo to tight through the real probe
analysis; each round is a probe in the drift panel; a stalled speaker is left out and said
so; a host without the demo's room is told to use `btmon-tui align`."""

from __future__ import annotations

import pytest

from core.fleet.events import AlignEvent
from core.probe.backends import MicBackend
from core.sim.fake_bluez import FakeBluez
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM, STALLED
from tests.conftest import FakeService
from tests.tui.helpers import FIXED_CLOCK, events_of, fleet_loaded, until
from tests.tui.test_probe_panel import PROBE_TIMEOUT_S, probe_events, room_app
from tui.app import make_app

pytestmark = pytest.mark.dbus

#: Rounds of probes: a few, each well under a second of analysis.
ALIGN_TIMEOUT_S = 4 * PROBE_TIMEOUT_S


def align_events(messages: list[object]) -> list[AlignEvent]:
    return events_of(messages, AlignEvent)


def true_spread(room: RoomBackend, addresses: list[str]) -> float:
    """The room's own truth after the delays: latest minus earliest latency (ms)."""
    now = FIXED_CLOCK()
    latencies = [room.latency_ms(a, now) for a in addresses]
    heard = [v for v in latencies if v is not None]
    return max(heard) - min(heard)


async def test_a_aligns_the_demo_room_from_an_echo_to_tight(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app, room = room_app(bluez_service.address)
    messages: list[object] = []
    async with app.run_test(size=(160, 50), message_hook=messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.press("A")
        await until(pilot, lambda: bool(align_events(messages)), ALIGN_TIMEOUT_S, "the align")
        (event,) = align_events(messages)
        aligned = [r.address for r in event.results]
        assert STALLED not in aligned  # not heard: it cannot be aligned
        assert len(aligned) >= 2
        before = true_spread(RoomBackend(ROOM, FIXED_CLOCK), aligned)
        assert before > 100.0  # the demo's aptX LL sub plays ~140 ms early: an echo
        assert event.result == "aligned", event.detail
        assert event.spread_before_ms is not None and event.spread_before_ms > 100.0
        assert event.spread_after_ms is not None and event.spread_after_ms <= 5.0
        # the truth, not only what the analysis said: the room's own latencies now
        assert true_spread(room, aligned) <= 5.0
        delays = {r.address: r.delay_ms for r in event.results}
        assert min(delays.values()) == 0 and all(d >= 0 for d in delays.values())
        assert room.delays() == {a: d for a, d in delays.items()}
        # every round was a probe the drift panel showed: the first an echo (it found Foyer
        # silent), the last one tight
        probes = probe_events(messages)
        assert len(probes) >= 2
        assert probes[0].spread_ms is not None and probes[0].spread_ms > 100.0
        assert probes[-1].spread_ms is not None and probes[-1].spread_ms <= 5.0
        assert {r.address for r in probes[-1].results} == set(aligned)


async def test_a_where_there_is_no_demo_room_points_to_the_command(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = make_app(bluez_service.address, clock=FIXED_CLOCK, probe_backend=MicBackend())
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.press("A")
        await until(
            pilot,
            lambda: any("btmon-tui align" in str(n.message) for n in app._notifications),
            what="the pointer to btmon-tui align",
        )
