"""Bad buses and a misbehaving BlueZ: the mirror says what is wrong, and never crashes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

import pytest
from dbus_next import Message, Variant
from dbus_next.aio import MessageBus

from core.bluez import bus as bus_module
from core.bluez.bus import BusUnavailable, describe_bus, open_bus
from core.bluez.client import BluezMirror
from core.bluez.defs import DEVICE, OBJECT_MANAGER, PROPERTIES, TRANSPORT
from core.fleet.model import SourceState
from core.sim.fake_bluez import FakeBluez, SimDevice, device_path
from tests.bluez.conftest import policy_bus
from tests.conftest import FakeService, FleetOnly, MirrorRun, wait_for

LEFT = "00:1A:7D:DA:71:01"
RIGHT = "00:1A:7D:DA:71:02"
SUB = "00:1A:7D:DA:71:03"
NOBODY = 65534


def trio(fake: FakeBluez) -> None:
    fake.add_adapter("hci0", "B8:27:EB:00:00:01")
    fake.add_device(SimDevice(LEFT, "Stage Left", codec="SBC"))
    fake.add_device(SimDevice(RIGHT, "Stage Right", codec="AAC", transport_state="idle"))
    fake.add_device(SimDevice(SUB, "Sub Bass", codec="aptX LL"))


async def wait_state(run: MirrorRun, state: SourceState, timeout: float = 3.0) -> str:
    await wait_for(
        lambda: run.fleet.state.source.state == state,
        timeout=timeout,
        message=f"source {state} (now {run.fleet.state.source})",
    )
    return run.fleet.state.source.detail


# -- the bus itself ------------------------------------------------------------------------------


async def test_no_such_bus_address(start_mirror) -> None:
    spec = "unix:path=/nonexistent/btmon-tui/bus"
    with pytest.raises(BusUnavailable) as info:
        await open_bus(spec)
    message = str(info.value)
    assert message.startswith(f"cannot reach {describe_bus(spec)} (No such file or directory)")
    assert "/nonexistent/btmon-tui/bus" in message
    assert "--demo" in message

    run = await start_mirror(spec, wait_ready=False)
    detail = await wait_state(run, SourceState.ERROR)
    assert detail == message
    assert run.verdicts() == {}
    assert not run.task.done()  # it keeps retrying


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("not-an-address", "cannot connect to not-an-address: "),
        (
            "tcp:host=127.0.0.1,port=1",
            "cannot reach tcp:host=127.0.0.1,port=1 (Connection refused)",
        ),
    ],
)
async def test_malformed_or_refusing_address(spec: str, expected: str) -> None:
    with pytest.raises(BusUnavailable) as info:
        await asyncio.wait_for(open_bus(spec), 5)
    assert str(info.value).startswith(expected)


async def test_socket_file_nobody_listens_on(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))  # a socket file, but no listen(): connect() is refused
    try:
        with pytest.raises(BusUnavailable) as info:
            await asyncio.wait_for(open_bus(f"unix:path={path}"), 5)
        assert "(Connection refused)" in str(info.value)
    finally:
        sock.close()


async def test_socket_that_never_answers(tmp_path: Path, monkeypatch) -> None:
    """Something listens but never speaks D-Bus (a wedged daemon, a wrong socket): open_bus must
    give up with a reason instead of hanging, or `watch --duration` never ends."""
    monkeypatch.setattr(bus_module, "CONNECT_TIMEOUT_S", 0.5)
    path = tmp_path / "silent.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen()
    try:
        with pytest.raises(BusUnavailable) as info:
            await asyncio.wait_for(open_bus(f"unix:path={path}"), 5)
        assert "did not answer" in str(info.value)
    finally:
        sock.close()


async def test_permission_denied_on_socket(private_bus: str, start_mirror) -> None:
    """A real EACCES from connect(): the private bus's socket lives in a 0700 root directory.

    As root the check is real only for another user, so the connection is attempted with the
    effective uid of `nobody` (connect() checks the effective ids); as a normal user the socket
    is made mode 000 instead."""
    socket_path = private_bus.split("unix:path=", 1)[1].split(",", 1)[0]

    @contextlib.contextmanager
    def denied():
        if os.geteuid() == 0:
            os.seteuid(NOBODY)
            try:
                yield
            finally:
                os.seteuid(0)
        else:
            mode = os.stat(socket_path).st_mode
            os.chmod(socket_path, 0)
            try:
                yield
            finally:
                os.chmod(socket_path, mode)

    with denied(), pytest.raises(BusUnavailable) as info:
        await open_bus(private_bus)
    message = str(info.value)
    assert message.startswith(
        f"permission denied on {describe_bus(private_bus)} (Permission denied)"
    )
    assert "group 'bluetooth'" in message

    fleet = FleetOnly()
    with denied():
        task = asyncio.create_task(fleet.run(BluezMirror(private_bus)))
        try:
            await wait_for(lambda: fleet.state.source.state == SourceState.ERROR, timeout=2)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert fleet.state.source.detail == message


async def test_bus_policy_refuses_the_connection(tmp_path: Path) -> None:
    """dbus-daemon's policy denies this user (<deny user="*"/>): it hangs up during login."""
    rules = '    <deny user="*"/>\n    <allow own="*"/>'
    with policy_bus(tmp_path, rules) as address, pytest.raises(BusUnavailable) as info:
        await asyncio.wait_for(open_bus(address), 5)
    message = str(info.value)
    assert message.startswith(f"{describe_bus(address)} closed the connection while logging in")
    assert "not allow" in message


async def test_bus_policy_denies_talking_to_bluez(tmp_path: Path) -> None:
    """Connecting is allowed, but the policy denies messages to org.bluez (as a restrictive
    /etc/dbus-1/system.d/bluetooth.conf does for users outside the allowed group)."""
    rules = """    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <deny send_destination="org.bluez"/>"""
    with policy_bus(tmp_path, rules) as address:
        service = FakeService(address)
        await service.start(trio)
        fleet = FleetOnly()
        task = asyncio.create_task(fleet.run(BluezMirror(address)))
        try:
            await wait_for(
                lambda: fleet.state.source.state == SourceState.ERROR,
                timeout=3,
                message=f"ERROR (now {fleet.state.source})",
            )
            detail = fleet.state.source.detail
            assert "permission denied" in detail
            assert "org.bluez" in detail
            assert "group 'bluetooth'" in detail
            assert fleet.snapshot().speakers == ()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await service.stop()


# -- BlueZ without adapters, or switched off ----------------------------------------------------


async def test_no_adapters(bluez_service, start_mirror) -> None:
    await bluez_service.start()  # BlueZ runs, /org/bluez exists, no hciN
    run = await start_mirror(bluez_service.address)
    assert run.fleet.state.source.state == SourceState.CONNECTED
    detail = run.fleet.state.source.detail
    assert "no Bluetooth adapter" in detail
    assert "rfkill list" in detail
    assert run.verdicts() == {}
    assert run.fleet.snapshot().counts.line() == "0 of 0 connected speakers streaming"


async def test_adapter_powered_off(bluez_service, start_mirror) -> None:
    def powered_off(fake: FakeBluez) -> None:
        fake.add_adapter("hci0", "B8:27:EB:00:00:01", powered=False)
        fake.add_device(SimDevice(LEFT, "Stage Left", connected=False, transport_state=None))
        fake.add_device(SimDevice(RIGHT, "Stage Right", connected=False, transport_state=None))

    await bluez_service.start(powered_off)
    run = await start_mirror(bluez_service.address)
    assert run.verdicts() == {LEFT: "unknown", RIGHT: "unknown"}
    detail = run.fleet.state.source.detail
    assert "hci0 powered off" in detail
    assert "bluetoothctl power on" in detail
    assert [(a.name, a.powered) for a in run.fleet.snapshot().adapters] == [("hci0", False)]


# -- a buggy BlueZ ------------------------------------------------------------------------------


async def test_unexpected_property_types(bluez_service, start_mirror) -> None:
    def buggy(fake: FakeBluez) -> None:
        trio(fake)
        # Right's Connected arrives as a string in GetManagedObjects.
        path = device_path("hci0", RIGHT)
        fake.tree.objects[path][DEVICE]["Connected"] = Variant("s", "yes")

    fake = await bluez_service.start(buggy)
    run = await start_mirror(bluez_service.address)
    right = device_path("hci0", RIGHT)
    assert any(
        f"Device1.Connected on {right} has D-Bus type 's', expected 'b'" in w
        for w in run.fleet.warnings
    ), list(run.fleet.warnings)
    # Ignored, i.e. not known to be connected; the others are unaffected.
    assert run.verdicts() == {LEFT: "streaming", RIGHT: "disconnected", SUB: "streaming"}

    # Live: State as an integer, Connected as a string: ignored, the last good value stays.
    left = device_path("hci0", LEFT)
    transport = fake.transport_path(fake.devices[LEFT])
    fake.tree.set_props(transport, TRANSPORT, {"State": Variant("u", 2)})
    fake.tree.set_props(left, DEVICE, {"Connected": Variant("s", "no")})
    fake.tree.set_props(
        fake.transport_path(fake.devices[SUB]), TRANSPORT, {"State": Variant("s", "idle")}
    )
    await wait_for(lambda: run.verdicts()[SUB] == "connected-idle", message="Sub idle")
    warnings = list(run.fleet.warnings)
    assert f"MediaTransport1.State on {transport} has D-Bus type 'u', expected 's': ignored" in (
        " ".join(warnings)
    ), warnings
    assert any(f"Device1.Connected on {left} has D-Bus type 's'" in w for w in warnings)
    assert run.verdicts()[LEFT] == "streaming"
    assert run.speaker(LEFT).transport.state == "active"
    assert not run.task.done()


@pytest.mark.parametrize(
    ("codec", "config", "shown"),
    [
        (0x42, bytes([1, 2, 3, 4]), "codec 0x42"),
        (0xFF, bytes.fromhex("341200007856") + b"\x01", "vendor 1234:5678"),
        (0xFF, bytes([0x4F, 0]), "vendor"),
    ],
    ids=["unknown-byte", "unknown-vendor", "truncated-vendor"],
)
async def test_unknown_codec(bluez_service, start_mirror, codec, config, shown) -> None:
    fake = await bluez_service.start(trio)
    run = await start_mirror(bluez_service.address)
    transport = fake.transport_path(fake.devices[SUB])
    fake.tree.set_props(
        transport,
        TRANSPORT,
        {"Codec": Variant("y", codec), "Configuration": Variant("ay", config)},
    )
    await wait_for(lambda: run.speaker(SUB).transport.codec == shown, message=f"codec {shown}")
    assert run.verdicts() == {LEFT: "streaming", RIGHT: "connected-idle", SUB: "streaming"}
    assert run.speaker(LEFT).transport.codec == "SBC"
    warnings = [w for w in run.fleet.warnings if "codec" in w]
    assert len(warnings) == 1, list(run.fleet.warnings)
    assert SUB in warnings[0]
    assert shown in warnings[0]
    # The transport event carries the fallback name, so a log reader sees what happened.
    last = [e.to_json() for e in run.events if e.type == "transport"][-1]
    assert (last["address"], last["state"], last["codec"]) == (SUB, "active", shown)


async def test_malformed_signal_bodies(bluez_service, start_mirror, private_bus) -> None:
    fake = await bluez_service.start(trio)
    run = await start_mirror(bluez_service.address)
    left = device_path("hci0", LEFT)
    send = fake.tree.bus.send
    # Right member and interface, wrong shapes, from the real org.bluez owner.
    send(Message.new_signal(left, PROPERTIES, "PropertiesChanged", "s", [DEVICE]))
    send(Message.new_signal("/", OBJECT_MANAGER, "InterfacesAdded", "os", [left, "Device1"]))
    send(Message.new_signal("/", OBJECT_MANAGER, "InterfacesRemoved", "o", [left]))
    send(
        Message.new_signal(
            left,
            PROPERTIES,
            "PropertiesChanged",
            "sa{ss}as",
            [DEVICE, {"Connected": "false"}, []],
        )
    )
    send(Message.new_signal(left, DEVICE, "Disconnected", "u", [7]))
    send(Message.new_signal(left, DEVICE, "Disconnected", "", []))
    # A well-formed change afterwards must still be applied.
    fake.set_transport_state(RIGHT, "active")
    await wait_for(lambda: run.verdicts()[RIGHT] == "streaming", message="Right streaming")

    warnings = list(run.fleet.warnings)
    assert sum("ignored a malformed PropertiesChanged" in w for w in warnings) == 1, warnings
    assert sum("ignored a malformed InterfacesAdded" in w for w in warnings) == 1, warnings
    assert sum("ignored a malformed InterfacesRemoved" in w for w in warnings) == 1, warnings
    assert any(f"Device1.Connected on {left} has D-Bus type '?'" in w for w in warnings)
    assert run.verdicts() == {LEFT: "streaming", RIGHT: "streaming", SUB: "streaming"}
    assert not run.task.done()

    # Someone else on the bus (not the org.bluez owner) cannot change the picture.
    spoofer = await MessageBus(bus_address=private_bus).connect()
    try:
        spoofer.send(
            Message.new_signal(
                left,
                PROPERTIES,
                "PropertiesChanged",
                "sa{sv}as",
                [DEVICE, {"Connected": Variant("b", False)}, []],
            )
        )
        spoofer.send(
            Message.new_signal(
                "/",
                OBJECT_MANAGER,
                "InterfacesRemoved",
                "oas",
                [left, [DEVICE]],
            )
        )
        await asyncio.sleep(0.3)
        assert run.verdicts()[LEFT] == "streaming"
    finally:
        spoofer.disconnect()


async def test_device_removed_while_transport_update_in_flight(bluez_service, start_mirror) -> None:
    """The device object goes; its transport (still naming it) keeps changing for a moment."""
    fake = await bluez_service.start(trio)
    run = await start_mirror(bluez_service.address)
    left = device_path("hci0", LEFT)
    transport = fake.transport_path(fake.devices[LEFT])
    events_before = len(run.events)

    fake.tree.remove_object(left)  # Device1 gone first…
    fake.tree.set_props(transport, TRANSPORT, {"State": Variant("s", "idle")})  # …then this
    fake.tree.set_props(transport, TRANSPORT, {"Volume": Variant("q", 12)})
    await wait_for(lambda: LEFT not in run.verdicts(), message="Left gone")
    await asyncio.sleep(0.2)
    assert LEFT not in run.verdicts()
    assert run.verdicts() == {RIGHT: "connected-idle", SUB: "streaming"}
    left_events = [
        e.to_json() for e in run.events[events_before:] if e.to_json().get("address") == LEFT
    ]
    assert [e["type"] for e in left_events] == ["speaker"]
    assert left_events[0]["verdict"] == "disconnected"

    # The transport finally goes too; nothing about Left reappears, nothing is warned.
    fake.tree.remove_object(transport)
    await asyncio.sleep(0.2)
    assert LEFT not in run.verdicts()
    assert list(run.fleet.warnings) == []
    assert not run.task.done()
