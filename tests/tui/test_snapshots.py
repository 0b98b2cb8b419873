"""Snapshot tests: the demo fleet as SVG screenshots, compared with the accepted ones.

snap_compare runs the app with its own event loop, so the fake BlueZ runs in a child process
(DemoFleet). Time stands still (FIXED_CLOCK, TZ=UTC), the demo's timeline is slowed so that no
scripted drop happens during a test, and nothing blinks. After a deliberate UI change:
`pytest tests/tui/test_snapshots.py --snapshot-update`, then look at the SVGs before committing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from core.sim.demo import DemoFleet
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM, STALLED
from core.sim.scene import scene_history, scene_monitor
from tests.conftest import require_binary
from tests.tui.helpers import FIXED_CLOCK, fleet_loaded, no_blink, screen_text, until
from tui.app import BtmonApp, make_app

pytestmark = pytest.mark.dbus

#: Demo timeline speed: the first scripted drop (45 s at speed 1) comes after 12.5 hours.
FROZEN_SPEED = 0.001
#: How the CLI names the demo's bus in the status line (a socket path would change every run).
DEMO_LABEL = "the demo bus"


@pytest.fixture
def stable_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """UTC clock times and truecolor rendering, whatever the developer's terminal is."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("NO_COLOR", raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def demo_bus() -> Iterator[str]:
    """The demo fleet in a child process, shared by the module's screenshots (none changes it)."""
    require_binary("dbus-daemon", "dbus-daemon")
    with DemoFleet(speed=FROZEN_SPEED) as address:
        yield address


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The demo's still scene (core.sim.scene): an HCI capture and the history to load."""
    capture = tmp_path_factory.mktemp("scene") / "demo.btsnoop"
    return capture, scene_history(FIXED_CLOCK(), capture)


def scene_app(address: str, scene: tuple[Path, list[dict[str, Any]]]) -> BtmonApp:
    """The app as the screenshots show it: the demo fleet, its capture, its probe history."""
    capture, records = scene
    return make_app(
        address,
        clock=FIXED_CLOCK,
        history=records,
        monitor=scene_monitor(address, FIXED_CLOCK, capture, DEMO_LABEL),
        probe_backend=RoomBackend(ROOM, FIXED_CLOCK),
    )


@pytest.fixture
def app(demo_bus: str, stable_terminal: None, scene: tuple[Path, list[dict[str, Any]]]) -> BtmonApp:
    return scene_app(demo_bus, scene)


async def loaded(pilot: Pilot[object]) -> None:
    """run_before: wait for the whole fleet with its HCI rates (Foyer stalled), then stop
    every cursor from blinking."""
    app = pilot.app
    assert isinstance(app, BtmonApp)
    await until(pilot, lambda: fleet_loaded(app) and stalled_seen(app), what="the demo fleet")
    no_blink(app)
    await pilot.pause()


def stalled_seen(app: BtmonApp) -> bool:
    snapshot = app.snapshot
    return snapshot is not None and any(
        s.address == STALLED and s.verdict.value == "stalled" for s in snapshot.speakers
    )


SnapCompare = Callable[..., bool]


def test_main_100x30(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """The default size: table with address and volume, event log, status bar, footer."""
    assert snap_compare(app, terminal_size=(100, 30), run_before=loaded)


def test_main_80x24(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """A classic terminal: narrow columns (no address, no volume), every row visible."""
    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)


def test_wide_140x40_with_side_panel(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """From 120 columns the selected speaker's details sit beside the table."""
    assert snap_compare(app, terminal_size=(140, 40), press=["down", "down"], run_before=loaded)


def test_drift_panel_150x44(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """From 36 rows the drift panel sits under the table: offsets against the 15/40 ms
    lines, latency, drift rate and the history of twelve probes of the demo's room."""
    assert snap_compare(app, terminal_size=(150, 44), press=["down", "down"], run_before=loaded)


def test_no_color_80x24(
    snap_compare: SnapCompare,
    demo_bus: str,
    stable_terminal: None,
    scene: tuple[Path, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NO_COLOR: every colour turns grey, so the alarms (stalled, no-a2dp, connected-idle,
    9%!, Foyer's 0/s, the countdown under a minute) are in reverse video instead."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(scene_app(demo_bus, scene), terminal_size=(80, 24), run_before=loaded)


def test_help(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """`?`: keys and what each verdict means."""
    assert snap_compare(app, terminal_size=(100, 30), press=["question_mark"], run_before=loaded)


def test_detail(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """`enter` on the fourth row: the ghost-connected speaker 'Bar'."""
    assert snap_compare(
        app, terminal_size=(100, 30), press=["down", "down", "down", "enter"], run_before=loaded
    )


def test_too_small(snap_compare: SnapCompare, app: BtmonApp) -> None:
    """Below 60x12 the app says how big the terminal must be instead of drawing a mess."""
    assert snap_compare(app, terminal_size=(50, 10), run_before=loaded)


def test_bluez_gone(
    snap_compare: SnapCompare,
    stable_terminal: None,
    request: pytest.FixtureRequest,
    scene: tuple[Path, list[dict[str, Any]]],
) -> None:
    """bluetoothd stops: the status bar says WAITING and every verdict turns unknown."""
    require_binary("dbus-daemon", "dbus-daemon")
    fleet = DemoFleet(speed=FROZEN_SPEED)
    address = fleet.start()
    request.addfinalizer(fleet.stop)
    app = scene_app(address, scene)

    async def stop_bluez(pilot: Pilot[object]) -> None:
        await loaded(pilot)
        await asyncio.to_thread(fleet.stop_service)  # waits for the child to exit
        await until(
            pilot,
            lambda: app.snapshot is not None and app.snapshot.source.state.value == "waiting",
            what="the source to wait for BlueZ",
        )
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(100, 30), run_before=stop_bluez)


def test_action_in_progress(
    snap_compare: SnapCompare,
    stable_terminal: None,
    request: pytest.FixtureRequest,
    scene: tuple[Path, list[dict[str, Any]]],
) -> None:
    """`r` on 'Bar': its verdict cell shows the resync's step, and esc (cancel) joins the footer.

    A fleet of its own: at this speed the demo's Disconnect takes minutes, so the step stays."""
    require_binary("dbus-daemon", "dbus-daemon")
    fleet = DemoFleet(speed=FROZEN_SPEED)
    address = fleet.start()
    request.addfinalizer(fleet.stop)
    app = scene_app(address, scene)

    async def resync_bar(pilot: Pilot[object]) -> None:
        await loaded(pilot)
        await pilot.press("down", "down", "down", "r")
        await until(pilot, lambda: "⟳ disconnecting…" in screen_text(app), what="the step")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=resync_bar)
