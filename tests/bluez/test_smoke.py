"""The mirror against the fake BlueZ on a real dbus-daemon: the default fleet's verdicts."""

from __future__ import annotations

from core.sim.scenario import build_default
from tests.conftest import DEMO_VERDICTS, wait_for


async def test_default_fleet_verdicts(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(build_default)
    run = await start_mirror(bluez_service.address)
    assert run.verdicts() == DEMO_VERDICTS
    assert run.fleet.snapshot().counts.line() == "4 of 7 connected speakers streaming"
    fake.drop_link("00:1A:7D:DA:71:03")
    await wait_for(lambda: run.verdicts()["00:1A:7D:DA:71:03"] == "disconnected")
    device_events = [e for e in run.events if e.type == "device"]
    assert device_events[-1].to_json()["reason"] == "timeout"
