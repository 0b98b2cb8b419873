"""`A` in the demo (issue 14 §2, §4): the demo's room honours the delays its fleet output
applies, so the alignment takes the early sub from an echo to tight through the real probe
analysis; each round is a probe in the drift panel; a stalled speaker is left out and said
so; the drift panel keeps the alignment (when, the spread before and after, each speaker's
delay), also under NO_COLOR at 80 columns; a host without the demo's room is told to use
`btmon-tui align`."""

from __future__ import annotations

import pytest

from core.fleet.describe import stamp
from core.fleet.events import AlignEvent
from core.probe.backends import MicBackend
from core.sim.fake_bluez import FakeBluez
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM, STALLED
from tests.conftest import FakeService
from tests.tui.helpers import FIXED_CLOCK, FIXED_NOW, events_of, fleet_loaded, screen_lines, until
from tests.tui.test_probe_panel import PROBE_TIMEOUT_S, probe_events, room_app
from tui.app import BtmonApp, make_app
from tui.widgets.drift import DriftPanel

pytestmark = pytest.mark.dbus

#: Rounds of probes: a few, each well under a second of analysis.
ALIGN_TIMEOUT_S = 4 * PROBE_TIMEOUT_S


def align_events(messages: list[object]) -> list[AlignEvent]:
    return events_of(messages, AlignEvent)


def panel_lines(app: BtmonApp) -> list[str]:
    """The drift panel's rows as the screen shows them (toasts cleared: they sit on top)."""
    app.clear_notifications()
    region = app.query_one(DriftPanel).region
    rows = screen_lines(app)[region.y : region.y + region.height]
    return [row[region.x : region.x + region.width].rstrip() for row in rows]


def alignment_shown(app: BtmonApp, event: AlignEvent) -> bool:
    """The panel's alignment line: 'aligned 20:00:00: spread 144.6 → 0.4 ms', the spreads
    as the event's line (and the log) has them."""
    line = event.to_json()
    line = (
        f"aligned {stamp(event.t, FIXED_NOW)}: spread {line['spread_before_ms']:.1f} → "
        f"{line['spread_after_ms']:.1f} ms"
    )
    return app.query_one(DriftPanel).display and any(line in row for row in panel_lines(app))


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
        # The drift panel keeps it: when, the spread before and after, every delay.
        await until(pilot, lambda: alignment_shown(app, event), what="the alignment line")
        shown = "\n".join(panel_lines(app))
        for result in event.results:
            assert f"{result.name} +{result.delay_ms} ms" in shown, shown
        assert "Foyer +" not in shown  # left out: no delay


async def test_the_drift_panel_shows_the_delays_at_80_columns_without_colour(
    fake: FakeBluez, bluez_service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = room_app(bluez_service.address)
    messages: list[object] = []
    async with app.run_test(size=(80, 40), message_hook=messages.append) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        assert app.no_color
        await pilot.press("A")
        await until(pilot, lambda: bool(align_events(messages)), ALIGN_TIMEOUT_S, "the align")
        (event,) = align_events(messages)
        await until(pilot, lambda: alignment_shown(app, event), what="the alignment line")
        lines = panel_lines(app)
        delays = next(i for i, row in enumerate(lines) if "added delay:" in row)
        # Whole, within the panel's 80 columns (wrapped, never cut off with an ellipsis).
        words = " ".join(row.strip() for row in lines[delays : delays + 3])
        for result in sorted(event.results, key=lambda r: -r.delay_ms):
            assert f"{result.name} +{result.delay_ms} ms" in words, lines
        assert all(len(row) <= 80 for row in lines)


async def test_a_on_a_real_host_without_an_audio_server_says_what_is_wrong(
    fake: FakeBluez, bluez_service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the demo, `A` aligns through the audio server (tests/align/
    test_align_key_pulse.py does it on PulseAudio); with none, it says so and runs on."""
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/native")
    app = make_app(bluez_service.address, clock=FIXED_CLOCK, probe_backend=MicBackend())
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.press("A")
        await until(
            pilot,
            lambda: any(n.title == "Align failed" for n in app._notifications),
            what="the alignment's failure",
        )
        failed = next(n for n in app._notifications if n.title == "Align failed")
        assert "no audio server" in str(failed.message) or "two or more" in str(failed.message)
        assert not app.fleet.monitor.probing
