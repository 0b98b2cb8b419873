"""bluetoothd restarts: the mirror says BlueZ is gone, keeps the fleet as `unknown`, and rebuilds
from the new BlueZ when org.bluez returns (DESIGN §5: NameOwnerChanged)."""

from __future__ import annotations

import time

from core.fleet.model import SourceState
from core.sim.demo import DemoFleet
from core.sim.fake_bluez import FakeBluez, SimDevice
from core.sim.scenario import DROPPER
from tests.conftest import DEMO_VERDICTS, require_binary, wait_for

A = "00:1A:7D:DA:71:01"
B = "00:1A:7D:DA:71:02"
C = "00:1A:7D:DA:71:03"
D = "00:1A:7D:DA:71:04"


def before_restart(fake: FakeBluez) -> None:
    fake.add_adapter("hci0", "B8:27:EB:00:00:01")
    fake.add_device(SimDevice(A, "Stage Left", codec="SBC"))
    fake.add_device(SimDevice(B, "Stage Right", transport_state="idle"))
    fake.add_device(SimDevice(C, "Sub Bass", connected=False, transport_state=None))


def after_restart(fake: FakeBluez) -> None:
    """Another state after the restart: A came back idle, B plays, C is gone, D is new, and a
    second adapter showed up."""
    fake.add_adapter("hci0", "B8:27:EB:00:00:01")
    fake.add_adapter("hci1", "00:E0:4C:00:00:02")
    fake.add_device(SimDevice(A, "Stage Left", codec="SBC", transport_state="idle"))
    fake.add_device(SimDevice(B, "Stage Right", codec="AAC"))
    fake.add_device(SimDevice(D, "Bar", "hci1", codec="aptX LL"))


async def test_bluetoothd_restart_with_new_state(bluez_service, start_mirror) -> None:
    await bluez_service.start(before_restart)
    run = await start_mirror(bluez_service.address)
    assert run.verdicts() == {A: "streaming", B: "connected-idle", C: "disconnected"}
    assert run.fleet.state.source.state == SourceState.CONNECTED

    await bluez_service.stop()  # the name vanishes (NameOwnerChanged to "")
    await wait_for(
        lambda: run.fleet.state.source.state == SourceState.WAITING, message="source WAITING"
    )
    # The operator still sees the whole fleet, but nothing is claimed about it.
    assert run.verdicts() == {A: "unknown", B: "unknown", C: "unknown"}
    assert "BlueZ left the bus" in run.fleet.state.source.detail
    snap = run.fleet.snapshot()
    assert (snap.counts.connected, snap.counts.streaming) == (0, 0)
    sources = [e.to_json() for e in run.events if e.type == "source"]
    assert sources[-1]["state"] == "waiting"

    started = time.monotonic()
    await bluez_service.start(after_restart)
    expected = {A: "connected-idle", B: "streaming", D: "streaming"}
    await wait_for(
        lambda: (
            run.fleet.state.source.state == SourceState.CONNECTED and run.verdicts() == expected
        ),
        timeout=5,
        message=f"new verdicts {expected}",
    )
    took = time.monotonic() - started
    assert took < 5.0, f"took {took:.2f} s to follow the restart"
    assert C not in run.verdicts()  # gone with the old bluetoothd
    snap = run.fleet.snapshot()
    assert [a.name for a in snap.adapters] == ["hci0", "hci1"]
    assert run.speaker(B).transport.codec == "AAC"
    assert run.speaker(D).transport.codec == "aptX LL"
    assert snap.counts.line() == "2 of 3 connected speakers streaming"
    assert [e.to_json()["state"] for e in run.events if e.type == "source"][-3:] == [
        "waiting",
        "connecting",
        "connected",
    ]

    # Live signals from the new bluetoothd are followed (the mirror tracks the new owner).
    bluez_service.fake.set_transport_state(A, "active")
    await wait_for(lambda: run.verdicts()[A] == "streaming", message="A streaming after restart")


async def test_mirror_started_before_bluez(bluez_service, start_mirror) -> None:
    run = await start_mirror(bluez_service.address, wait_ready=False)
    await wait_for(
        lambda: run.fleet.state.source.state == SourceState.WAITING, message="source WAITING"
    )
    detail = run.fleet.state.source.detail
    assert "BlueZ (org.bluez) is not running" in detail
    assert "systemctl start bluetooth" in detail
    assert run.verdicts() == {}
    assert not await run.mirror.wait_ready(0.2)

    started = time.monotonic()
    await bluez_service.start(before_restart)
    assert await run.mirror.wait_ready(5.0)
    await wait_for(
        lambda: run.verdicts() == {A: "streaming", B: "connected-idle", C: "disconnected"},
        message="verdicts once BlueZ appears",
    )
    assert time.monotonic() - started < 5.0
    assert run.fleet.state.source.state == SourceState.CONNECTED


async def test_restart_of_demo_fleet_subprocess(start_mirror) -> None:
    """The same through DemoFleet: a separate fake-bluetoothd process, SIGTERMed and restarted."""
    require_binary("dbus-daemon", "dbus-daemon")
    fleet = DemoFleet(speed=1.0)  # speed 1: the dropper's first drop is 45 s away
    try:
        address = fleet.start()
        run = await start_mirror(address)
        assert run.verdicts() == DEMO_VERDICTS

        fleet.stop_service()
        await wait_for(
            lambda: run.fleet.state.source.state == SourceState.WAITING, message="WAITING"
        )
        assert set(run.verdicts().values()) == {"unknown"}
        assert set(run.verdicts()) == set(DEMO_VERDICTS)

        started = time.monotonic()
        fleet.start_service()
        await wait_for(
            lambda: (
                run.fleet.state.source.state == SourceState.CONNECTED
                and run.verdicts() == DEMO_VERDICTS
            ),
            timeout=5,
            message="demo verdicts after restart",
        )
        assert time.monotonic() - started < 5.0
        assert run.speaker(DROPPER).transport.codec == "aptX LL"
    finally:
        fleet.stop()
    assert fleet.proc is None
    assert fleet.bus.proc is None
