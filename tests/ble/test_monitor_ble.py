"""`--ble` through the Monitor on the demo fleet (fake BlueZ, real bleak): RSSI reaches the
speakers, an adapter that streams is refused, scanning pauses while a speaker starts streaming
through its adapter and resumes after; the TUI shows the RSSI line and the refusal."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable

import pytest

from core.ble import BlePresence, BleScan
from core.monitor import Monitor
from core.sim.fake_bluez import FakeBluez
from core.sim.scenario import build_default
from tests.conftest import FakeService, wait_for
from tests.tui.helpers import fleet_loaded, screen_text, until
from tui.app import make_app
from tui.screens.detail import DetailScreen

pytestmark = pytest.mark.dbus

STAGE_LEFT = "00:1A:7D:DA:71:01"
BAR = "F4:4E:FD:10:22:04"
PATIO = "F4:4E:FD:10:22:05"


def demo_with_adverts(fake: FakeBluez) -> None:
    """The demo fleet; Stage Left (hci0), Bar and Patio (hci1) advertise over BLE."""
    build_default(fake)
    for address, rssi in ((STAGE_LEFT, -50), (BAR, -58), (PATIO, -71)):
        fake.devices[address].ble_rssi = rssi


@pytest.fixture
async def fake(bluez_service: FakeService) -> FakeBluez:
    return await bluez_service.start(demo_with_adverts, speed=10)


@pytest.fixture
async def monitor_on(
    bluez_service: FakeService,
) -> AsyncIterator[Callable[..., Monitor]]:
    tasks: list[asyncio.Task[None]] = []

    def start(adapter: str, *, force: bool = False) -> Monitor:
        scan = BleScan(BlePresence(adapter, bus=bluez_service.address), force=force)
        monitor = Monitor(bluez_service.address, ble=scan)
        tasks.append(asyncio.create_task(monitor.run()))
        return monitor

    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def rssi(monitor: Monitor, address: str) -> int | None:
    """The speaker's RSSI as the snapshot shows it; None also before the fleet is in."""
    return next((s.rssi for s in monitor.snapshot().speakers if s.address == address), None)


async def test_rssi_of_advertising_speakers_on_the_scanned_adapter(
    fake: FakeBluez, monitor_on: Callable[..., Monitor]
) -> None:
    monitor = monitor_on("hci1")
    assert monitor.ble is not None
    await wait_for(lambda: rssi(monitor, BAR) is not None, message="Bar's RSSI")
    await wait_for(lambda: rssi(monitor, PATIO) is not None, message="Patio's RSSI")
    assert -61 <= (rssi(monitor, BAR) or 0) <= -55
    assert rssi(monitor, STAGE_LEFT) is None  # it advertises, but hci0 is not scanned
    assert monitor.snapshot().ble_status == "BLE scanning on hci1"
    assert list(monitor.warnings) == []  # starting as asked is not a warning
    assert set(fake.discovering) == {"hci1"}


async def test_adapter_that_streams_is_refused(
    fake: FakeBluez, monitor_on: Callable[..., Monitor]
) -> None:
    monitor = monitor_on("hci0")
    assert monitor.ble is not None
    await asyncio.wait_for(monitor.ble.decided.wait(), 5)
    refusal = (
        "not scanning for BLE on hci0: it streams A2DP to Stage Left, Stage Right, Sub Bass, "
        "and scanning there makes the audio stutter; use another adapter with --ble, or add "
        "--ble-force"
    )
    assert monitor.ble.state == "refused"
    assert monitor.snapshot().ble_status == refusal
    await wait_for(lambda: refusal in monitor.warnings, message="the warning")
    assert fake.adapter_calls == []  # hci0's discovery was never touched
    assert rssi(monitor, STAGE_LEFT) is None


async def test_forced_scan_on_a_streaming_adapter(
    fake: FakeBluez, monitor_on: Callable[..., Monitor]
) -> None:
    monitor = monitor_on("hci0", force=True)
    await wait_for(lambda: rssi(monitor, STAGE_LEFT) is not None, message="Stage Left's RSSI")
    assert "forced" in monitor.snapshot().ble_status


async def test_scan_pauses_while_a_speaker_streams_through_the_adapter(
    fake: FakeBluez, monitor_on: Callable[..., Monitor]
) -> None:
    monitor = monitor_on("hci1")
    assert monitor.ble is not None
    await wait_for(lambda: monitor.ble is not None and monitor.ble.state == "scanning")
    fake.set_transport_state(BAR, "active")
    await wait_for(lambda: monitor.ble is not None and monitor.ble.state == "paused")
    assert "hci1" not in fake.discovering
    paused = (
        "BLE scanning on hci1 paused: Bar started streaming through it (scanning would make "
        "the audio stutter)"
    )
    assert list(monitor.warnings) == [paused]
    fake.set_transport_state(BAR, "idle")
    await wait_for(lambda: monitor.ble is not None and monitor.ble.state == "scanning")
    assert "hci1" in fake.discovering
    assert list(monitor.warnings)[-1] == ("BLE scanning on hci1 resumed: nothing streams there")


async def test_tui_shows_rssi_in_the_detail(fake: FakeBluez, bluez_service: FakeService) -> None:
    scan = BleScan(BlePresence("hci1", bus=bluez_service.address))
    app = make_app(bluez_service.address, monitor=Monitor(bluez_service.address, ble=scan))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.press("down", "down", "down", "enter")  # row 4: Bar
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail")
        assert "Bar  F4:4E:FD:10:22:04" in screen_text(app)
        line = re.compile(r"BLE\s+-\d+ dBm, advertising \(last seen \d\d:\d\d:\d\d\)")
        await until(pilot, lambda: bool(line.search(screen_text(app))), what="the BLE line")
        await pilot.pause(0.2)  # let queued table messages drain before the app closes


async def test_tui_shows_a_refusal_in_the_log(fake: FakeBluez, bluez_service: FakeService) -> None:
    refused = BleScan(BlePresence("hci0", bus=bluez_service.address))
    app = make_app(bluez_service.address, monitor=Monitor(bluez_service.address, ble=refused))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await until(
            pilot,
            lambda: any(w.startswith("not scanning for BLE on hci0") for w in app.feed.warnings()),
            what="the refusal",
        )
        await until(
            pilot,
            lambda: "warning: not scanning for BLE on hci0" in screen_text(app),
            what="the refusal in the log",
        )
        await pilot.pause(0.2)  # let queued table messages drain before the app closes
