"""The config file against the demo fleet on the fake BlueZ: 'Bar' expected to stream is
flagged (and the flag clears when it plays), aliases and groups reach the screen, and the
resync timeouts reach the app's Controller."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import pytest

from core.config import parse_config
from core.monitor import Monitor
from core.sim.scenario import build_default
from tests.conftest import FakeService, wait_for
from tests.tui.helpers import FIXED_CLOCK, fleet_loaded, screen_text, until
from tui.app import make_app
from tui.screens.detail import DetailScreen

pytestmark = pytest.mark.dbus

BAR = "F4:4E:FD:10:22:04"
CONFIG = parse_config(
    f"""
[speakers."{BAR}"]
group = "bar area"
expect_streaming = true

[speakers."00:1A:7D:DA:71:01"]
alias = "Main Left"

[resync]
call_s = 9
attempts = 2
""",
    Path("rig.toml"),
)


async def test_expected_bar_is_flagged_while_others_stream(bluez_service: FakeService) -> None:
    fake = await bluez_service.start(build_default)
    monitor = Monitor(bluez_service.address, config=CONFIG)
    task = asyncio.create_task(monitor.run())
    try:
        assert await monitor.wait_ready(5.0)
        snap = monitor.snapshot()
        bar = next(s for s in snap.speakers if s.address == BAR)
        assert bar.verdict.value == "connected-idle"  # the verdict stays what it is
        assert bar.group == "bar area"
        assert snap.expected_silent == (BAR,)
        fake.set_transport_state(BAR, "active")
        await wait_for(lambda: monitor.snapshot().expected_silent == (), message="flag cleared")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_fleet_line_detail_and_controller_follow_the_config(
    bluez_service: FakeService,
) -> None:
    await bluez_service.start(build_default)
    monitor = Monitor(bluez_service.address, clock=FIXED_CLOCK, config=CONFIG)
    app = make_app(bluez_service.address, monitor=monitor, timeouts=CONFIG.timeouts)
    assert app.controller.timeouts == CONFIG.timeouts
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        # The fleet line's long or (at 100 columns) short form names the expected speaker.
        flagged = re.compile(r"expected( but silent)?: Bar")
        await until(pilot, lambda: bool(flagged.search(screen_text(app))), what="the flag")
        assert "Main Left" in screen_text(app)
        assert "Stage Left" not in screen_text(app)
        await pilot.press("down", "down", "down", "enter")  # row 4: Bar
        assert isinstance(app.screen, DetailScreen)
        await until(pilot, lambda: "bar area" in screen_text(app), what="the group")
        assert any(
            line.split() == ["Group", "bar", "area"] for line in screen_text(app).splitlines()
        )
        await pilot.pause(0.2)  # let queued table messages drain before the app closes
