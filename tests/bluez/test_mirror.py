"""BluezMirror following live changes of the fake BlueZ over a real dbus-daemon (DESIGN §3, §5)."""

from __future__ import annotations

import asyncio

from dbus_next import Variant

from core.bluez.defs import ADAPTER, BATTERY, DEVICE, TRANSPORT
from core.sim.fake_bluez import FakeBluez, SimDevice, device_path
from tests.bluez.conftest import call
from tests.conftest import MirrorRun, wait_for

LEFT = "00:1A:7D:DA:71:01"
RIGHT = "00:1A:7D:DA:71:02"
BAR = "F4:4E:FD:10:22:04"
NEWCOMER = "F4:4E:FD:10:22:09"


def small_fleet(fake: FakeBluez) -> None:
    """hci0: Stage Left (streaming, SBC, battery 81), Stage Right (streaming, AAC);
    hci1: Bar (connected-idle, SBC)."""
    fake.add_adapter("hci0", "B8:27:EB:00:00:01", alias="stage-pi")
    fake.add_adapter("hci1", "00:E0:4C:00:00:02", alias="usb-dongle")
    fake.add_device(SimDevice(LEFT, "Stage Left", "hci0", codec="SBC", battery=81))
    fake.add_device(SimDevice(RIGHT, "Stage Right", "hci0", codec="AAC", delay_tenth_ms=1450))
    fake.add_device(SimDevice(BAR, "Bar", "hci1", codec="SBC", transport_state="idle"))


def of(run: MirrorRun, kind: str, address: str, since: int = 0) -> list[dict[str, object]]:
    """The JSON of every `kind` event the mirror emitted about `address` (from event number
    `since` on), in order."""
    out = []
    for event in run.events[since:]:
        data = event.to_json()
        if data["type"] == kind and data.get("address") == address:
            out.append(data)
    return out


async def test_transport_idle_active_removed(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)
    assert run.verdicts() == {LEFT: "streaming", RIGHT: "streaming", BAR: "connected-idle"}
    assert run.speaker(BAR).transport.state == "idle"

    fake.set_transport_state(BAR, "active")
    await wait_for(lambda: run.verdicts()[BAR] == "streaming", message="Bar streaming")
    assert run.fleet.snapshot().counts.line() == "3 of 3 connected speakers streaming"

    fake.set_transport_state(BAR, "pending")
    await wait_for(lambda: run.verdicts()[BAR] == "pending", message="Bar pending")

    fake.set_transport_state(BAR, None)  # InterfacesRemoved of the transport object
    await wait_for(lambda: run.verdicts()[BAR] == "no-a2dp", message="Bar no-a2dp")
    assert run.speaker(BAR).transport is None
    assert run.speaker(BAR).connected is True

    transitions = [(e["state"], e["codec"]) for e in of(run, "transport", BAR)]
    assert transitions == [("active", "SBC"), ("pending", "SBC"), ("absent", None)]
    assert run.verdicts()[LEFT] == run.verdicts()[RIGHT] == "streaming"


async def test_device_disconnect_reasons(bluez_service, start_mirror, client_bus) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)

    # Link loss, BlueZ >= 5.83: Device1.Disconnected(reason) before Connected goes false.
    fake.drop_link(LEFT, "org.bluez.Reason.Remote")
    await wait_for(lambda: run.verdicts()[LEFT] == "disconnected", message="Left disconnected")
    assert [(e["connected"], e["reason"]) for e in of(run, "device", LEFT)] == [(False, "remote")]
    assert [e["state"] for e in of(run, "transport", LEFT)] == ["absent"]
    assert run.speaker(LEFT).transport is None

    # Our own Device1.Disconnect(): the fake says Reason.Local, as bluetoothd does.
    await call(client_bus, "org.bluez", device_path("hci0", RIGHT), DEVICE, "Disconnect")
    await wait_for(lambda: run.verdicts()[RIGHT] == "disconnected", message="Right disconnected")
    assert [(e["connected"], e["reason"]) for e in of(run, "device", RIGHT)] == [(False, "local")]

    # Older BlueZ (< 5.83): no Disconnected signal, only Connected -> false: reason unknown.
    bar = device_path("hci1", BAR)
    fake.tree.set_props(bar, DEVICE, {"Connected": Variant("b", False)})
    await wait_for(lambda: run.verdicts()[BAR] == "disconnected", message="Bar disconnected")
    # This BlueZ sent reasons before, so the mirror holds the event briefly for one; none comes.
    await wait_for(lambda: of(run, "device", BAR) != [], timeout=3, message="Bar's device event")
    assert [(e["connected"], e["reason"]) for e in of(run, "device", BAR)] == [(False, None)]

    # A reason never leaks into a later disconnect: reconnect and lose Left again, silently.
    await fake.reconnect(LEFT)
    await wait_for(lambda: run.verdicts()[LEFT] == "streaming", message="Left back")
    fake.tree.set_props(device_path("hci0", LEFT), DEVICE, {"Connected": Variant("b", False)})
    await wait_for(lambda: run.verdicts()[LEFT] == "disconnected", message="Left gone again")
    await wait_for(lambda: len(of(run, "device", LEFT)) == 3, timeout=3, message="3rd event")
    assert [(e["connected"], e["reason"]) for e in of(run, "device", LEFT)] == [
        (False, "remote"),
        (True, None),
        (False, None),
    ]
    assert run.fleet.snapshot().counts.line() == "0 of 0 connected speakers streaming"


async def test_battery_change(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)
    assert run.speaker(LEFT).battery == 81
    assert run.speaker(RIGHT).battery is None
    since = len(run.events)

    fake.set_battery(LEFT, 9)
    await wait_for(lambda: run.speaker(LEFT).battery == 9, message="battery 9")
    assert [e["battery"] for e in of(run, "speaker", LEFT, since)] == [9]
    assert of(run, "speaker", RIGHT, since) == []

    # A battery provider appears later for Right: InterfacesAdded on an existing object.
    right = device_path("hci0", RIGHT)
    fake.tree.add_object(right, {BATTERY: {"Percentage": Variant("y", 55)}})
    await wait_for(lambda: run.speaker(RIGHT).battery == 55, message="Right battery")
    # ... and goes away again (InterfacesRemoved of Battery1 only): the speaker stays.
    fake.tree.remove_object(right, [BATTERY])
    await wait_for(lambda: run.speaker(RIGHT).battery is None, message="Right battery gone")
    assert run.verdicts()[RIGHT] == "streaming"
    assert run.speaker(RIGHT).name == "Stage Right"


async def test_adapter_power_off_and_on(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)
    before = run.verdicts()

    fake.set_adapter_powered("hci0", False)
    await wait_for(
        lambda: run.verdicts() == {LEFT: "unknown", RIGHT: "unknown", BAR: "connected-idle"},
        message="hci0's speakers unknown",
    )
    snap = run.fleet.snapshot()
    assert [(a.name, a.powered) for a in snap.adapters] == [("hci0", False), ("hci1", True)]
    assert "hci0 powered off" in snap.source.detail
    assert "hci1" not in snap.source.detail
    assert "bluetoothctl power on" in snap.source.detail
    assert snap.counts.streaming == 0

    fake.set_adapter_powered("hci0", True)
    await wait_for(lambda: run.verdicts() == before, message="verdicts back after power on")
    assert "powered off" not in run.fleet.snapshot().source.detail
    assert run.fleet.snapshot().counts.line() == "2 of 3 connected speakers streaming"


async def test_new_speaker_appears(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)
    assert NEWCOMER not in run.verdicts()

    fake.add_device(
        SimDevice(NEWCOMER, "Foyer", "hci1", codec="aptX HD", delay_tenth_ms=600, volume=90)
    )
    await wait_for(lambda: run.verdicts().get(NEWCOMER) == "streaming", message="Foyer streaming")
    foyer = run.speaker(NEWCOMER)
    assert (foyer.name, foyer.adapter, foyer.paired, foyer.connected) == (
        "Foyer",
        "hci1",
        True,
        True,
    )
    assert (foyer.transport.codec, foyer.transport.delay_ms, foyer.transport.volume) == (
        "aptX HD",
        60.0,
        90,
    )
    assert run.fleet.snapshot().counts.line() == "3 of 4 connected speakers streaming"

    # A new device that is not a speaker (no A2DP sink, not audio/video) stays out, unless --all.
    keyboard = device_path("hci1", "11:22:33:44:55:66")
    fake.tree.add_object(
        keyboard,
        {
            DEVICE: {
                "Address": Variant("s", "11:22:33:44:55:66"),
                "Alias": Variant("s", "Keyboard"),
                "Class": Variant("u", 0x002540),
                "UUIDs": Variant("as", ["00001124-0000-1000-8000-00805f9b34fb"]),
                "Paired": Variant("b", True),
                "Connected": Variant("b", True),
                "Adapter": Variant("o", "/org/bluez/hci1"),
            }
        },
    )
    await asyncio.sleep(0.2)
    assert "11:22:33:44:55:66" not in run.verdicts()
    run.fleet.set_include_all(True)
    assert run.verdicts()["11:22:33:44:55:66"] == "no-a2dp"


async def test_device_removed_mid_update(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)
    left = device_path("hci0", LEFT)
    transport = fake.transport_path(fake.devices[LEFT])
    assert transport is not None

    # bluetoothd removes the device while changes for it are still on the wire: the signals
    # arrive in this order, within one burst, before the mirror gets to run.
    fake.tree.set_props(transport, TRANSPORT, {"Volume": Variant("q", 30)})
    fake.tree.remove_object(left)  # InterfacesRemoved(Device1, Battery1)
    fake.tree.emit(
        left,
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        "sa{sv}as",
        [DEVICE, {"Connected": Variant("b", False)}, []],
    )
    fake.tree.set_props(transport, TRANSPORT, {"State": Variant("s", "idle")})
    fake.tree.remove_object(transport)
    fake.tree.emit(
        transport,
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        "sa{sv}as",
        [TRANSPORT, {"State": Variant("s", "active")}, []],
    )
    await wait_for(lambda: LEFT not in run.verdicts(), message="Left removed")
    await asyncio.sleep(0.2)  # any late resurrection would show up here
    assert run.verdicts() == {RIGHT: "streaming", BAR: "connected-idle"}
    assert run.mirror.cache.props(left, DEVICE) is None
    assert run.mirror.cache.props(transport, TRANSPORT) is None
    assert left not in run.mirror.cache.transports_of
    last = of(run, "speaker", LEFT)[-1]
    assert (last["verdict"], last["connected"], last["transport"]) == ("disconnected", False, None)
    assert list(run.fleet.warnings) == []

    # The same address coming back later is a fresh speaker, built from its own signals.
    fake.devices.pop(LEFT)
    fake.add_device(SimDevice(LEFT, "Stage Left", "hci0", transport_state="idle"))
    await wait_for(lambda: run.verdicts().get(LEFT) == "connected-idle", message="Left back")
    assert run.speaker(LEFT).battery is None


async def test_properties_changed_with_invalidated(bluez_service, start_mirror) -> None:
    fake = await bluez_service.start(small_fleet)
    run = await start_mirror(bluez_service.address)
    left = device_path("hci0", LEFT)
    transport = fake.transport_path(fake.devices[LEFT])
    assert run.speaker(LEFT).transport.delay_ms == 150.0

    # Invalidated = "changed, value not sent": the old value must not linger.
    fake.tree.set_props(transport, TRANSPORT, {"Volume": Variant("q", 64)}, invalidated=["Delay"])
    await wait_for(lambda: run.speaker(LEFT).transport.volume == 64, message="volume 64")
    assert run.speaker(LEFT).transport.delay_ms is None
    assert run.verdicts()[LEFT] == "streaming"

    fake.tree.set_props(left, BATTERY, {}, invalidated=["Percentage"])
    await wait_for(lambda: run.speaker(LEFT).battery is None, message="battery invalidated")

    # A later real value comes back in.
    fake.tree.set_props(transport, TRANSPORT, {"Delay": Variant("q", 1234)})
    await wait_for(lambda: run.speaker(LEFT).transport.delay_ms == 123.4, message="delay back")
    # Invalidating an adapter's Alias leaves Powered (and so the verdicts) alone.
    fake.tree.set_props("/org/bluez/hci0", ADAPTER, {}, invalidated=["Alias"])
    await wait_for(
        lambda: run.fleet.snapshot().adapters[0].alias is None, message="alias invalidated"
    )
    assert run.verdicts() == {LEFT: "streaming", RIGHT: "streaming", BAR: "connected-idle"}
