"""Cross-check: the same fleet on python-dbusmock's `bluez5` template and on our FakeBluez must
give BluezMirror identical verdicts (DESIGN §10: an independent BlueZ double).

dbusmock's template knows adapters and devices only; MediaTransport1 objects are added with the
generic org.freedesktop.DBus.Mock.AddObject. Where the two doubles behave differently on the bus,
the tests below pin the difference down (see `test_dbusmock_differences_*`):

* Mock.AddObject emits no InterfacesAdded (bluetoothd does, from `/`): a transport added that
  way is invisible to a running client until it re-reads GetManagedObjects.
* Mock.ConnectDevice sets Connected without the template's internal `connected` flag, so a later
  Device1.Disconnect() answers org.bluez.Error.NotConnected although Connected is true.
* The template's Disconnect/DisconnectDevice send no Device1.Disconnected(reason) signal
  (BlueZ >= 5.83 does) and leave the device's transports in place.
* Adapter1.RemoveDevice announces only Device1 in InterfacesRemoved and leaves child objects.
* Adapter1 has no PowerState; Device1's ManufacturerData/ServiceData/AdvertisingFlags/
  AdvertisingData are typed aa{qv}/aa{sv}/aay/aa{yv} (one array level too many vs BlueZ).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from dbus_next import Variant

from core.bluez.defs import ADAPTER, DEVICE, PROPERTY_SIGNATURES, TRANSPORT
from core.sim.fake_bluez import COD_LOUDSPEAKER, CODEC_WIRE, FakeBluez, SimDevice, device_path
from tests.bluez.conftest import CallFailed, MockBluez
from tests.conftest import FakeService, MirrorRun, wait_for

#: dbusmock's AddAdapter derives the address from the name's last digit.
ADAPTERS = {"hci0": "00:01:02:03:04:05", "hci1": "01:02:03:04:05:06"}
#: What dbusmock's AddDevice + PairDevice make of a device: an Android phone.
PHONE_CLASS = 5898764
PHONE_UUIDS = [
    "00001105-0000-1000-8000-00805f9b34fb",
    "0000110a-0000-1000-8000-00805f9b34fb",
    "0000110c-0000-1000-8000-00805f9b34fb",
    "00001112-0000-1000-8000-00805f9b34fb",
    "00001115-0000-1000-8000-00805f9b34fb",
    "00001116-0000-1000-8000-00805f9b34fb",
    "0000111f-0000-1000-8000-00805f9b34fb",
    "0000112f-0000-1000-8000-00805f9b34fb",
    "00001200-0000-1000-8000-00805f9b34fb",
]
PHONE = "AA:BB:CC:DD:EE:FF"


@dataclass(frozen=True)
class Spk:
    address: str
    name: str
    adapter: str
    connected: bool
    state: str | None
    codec: str
    expected: str
    has_a2dp: bool = True

    def sim(self) -> SimDevice:
        return SimDevice(
            self.address,
            self.name,
            self.adapter,
            codec=self.codec,
            has_a2dp=self.has_a2dp,
            connected=self.connected,
            transport_state=self.state,
            delay_tenth_ms=1500,
            volume=100,
        )


FLEET = (
    Spk("00:1A:7D:DA:71:01", "Stage Left", "hci0", True, "active", "SBC", "streaming"),
    Spk("00:1A:7D:DA:71:02", "Bar", "hci0", True, "idle", "AAC", "connected-idle"),
    Spk("00:1A:7D:DA:71:03", "Patio", "hci0", True, None, "SBC", "no-a2dp", has_a2dp=False),
    Spk("00:1A:7D:DA:71:04", "Green Room", "hci0", False, None, "AAC", "disconnected"),
    Spk("00:1A:7D:DA:71:05", "Lobby", "hci0", True, "pending", "aptX LL", "pending"),
    Spk("00:1A:7D:DA:71:06", "Spare", "hci1", False, None, "SBC", "unknown"),
)
EXPECTED = {s.address: s.expected for s in FLEET}


# -- building the fleet on each double -----------------------------------------------------------


def build_fake(fake: FakeBluez) -> None:
    fake.add_adapter("hci0", ADAPTERS["hci0"], alias="stage")
    fake.add_adapter("hci1", ADAPTERS["hci1"], alias="spare", powered=False)
    for spk in FLEET:
        fake.add_device(spk.sim())
    # A connected phone, shaped like dbusmock's AddDevice + PairDevice: not a speaker.
    fake.tree.add_object(
        device_path("hci0", PHONE),
        {
            DEVICE: {
                "Address": Variant("s", PHONE),
                "Name": Variant("s", "Phone"),
                "Alias": Variant("s", "Phone"),
                "Class": Variant("u", PHONE_CLASS),
                "UUIDs": Variant("as", PHONE_UUIDS),
                "Paired": Variant("b", True),
                "Connected": Variant("b", True),
                "Adapter": Variant("o", "/org/bluez/hci0"),
            }
        },
    )


async def build_mock(mock: MockBluez) -> dict[str, str]:
    """The same fleet through dbusmock's API; returns address -> transport path."""
    await mock.add_adapter("hci0", "stage")
    await mock.add_adapter("hci1", "spare")
    await mock.update("/org/bluez/hci1", ADAPTER, {"Powered": Variant("b", False)})
    transports: dict[str, str] = {}
    for spk in FLEET:
        path = await mock.add_device(spk.adapter, spk.address, spk.name)
        await mock.pair_device(spk.adapter, spk.address)
        await mock.update(
            path,
            DEVICE,
            {
                "UUIDs": Variant("as", spk.sim().uuids),
                "Class": Variant("u", COD_LOUDSPEAKER),
                "Icon": Variant("s", "audio-card"),
            },
        )
        if spk.connected:
            await mock.connect_device(spk.adapter, spk.address)
            await mock.update(path, DEVICE, {"ServicesResolved": Variant("b", True)})
        if spk.state is not None:
            codec, config = CODEC_WIRE[spk.codec]
            transports[spk.address] = await mock.add_transport(
                path, state=spk.state, codec=codec, configuration=config
            )
    await mock.add_device("hci0", PHONE, "Phone")
    await mock.pair_device("hci0", PHONE)
    await mock.connect_device("hci0", PHONE)
    return transports


def view(run: MirrorRun) -> dict[str, tuple[object, ...]]:
    """Everything the mirror says per speaker, minus object paths (which differ by design)."""
    out: dict[str, tuple[object, ...]] = {}
    for s in run.fleet.snapshot().speakers:
        transport = s.transport
        out[s.address] = (
            s.verdict.value,
            s.name,
            s.adapter,
            s.paired,
            s.connected,
            None
            if transport is None
            else (transport.state, transport.codec, transport.delay_ms, transport.volume),
            s.battery,
        )
    return out


def adapters_view(run: MirrorRun) -> list[tuple[object, ...]]:
    return [(a.name, a.address, a.powered) for a in run.fleet.snapshot().adapters]


async def wait_same(mock_run: MirrorRun, fake_run: MirrorRun, expected: dict[str, str]) -> None:
    """Both mirrors settle on `expected` verdicts, and agree on every other field too."""
    await wait_for(
        lambda: mock_run.verdicts() == expected and fake_run.verdicts() == expected,
        message=f"verdicts {expected}; mock {mock_run.verdicts()}; fake {fake_run.verdicts()}",
    )
    assert view(mock_run) == view(fake_run)


# -- the cross-checks ------------------------------------------------------------------------------


async def test_same_fleet_same_verdicts_from_get_managed_objects(
    dbusmock_bluez: MockBluez, second_bus: str, start_mirror
) -> None:
    """Fleet built before the mirror starts: everything comes from GetManagedObjects."""
    await build_mock(dbusmock_bluez)
    fake_service = FakeService(second_bus)
    await fake_service.start(build_fake)
    try:
        mock_run = await start_mirror(dbusmock_bluez.bus_address)
        fake_run = await start_mirror(second_bus)
        await wait_same(mock_run, fake_run, EXPECTED)
        assert view(mock_run)["00:1A:7D:DA:71:05"][5] == ("pending", "aptX LL", 150.0, 100)
        assert view(mock_run)["00:1A:7D:DA:71:02"][5] == ("idle", "AAC", 150.0, 100)
        assert adapters_view(mock_run) == adapters_view(fake_run)
        assert adapters_view(mock_run) == [
            ("hci0", "00:01:02:03:04:05", True),
            ("hci1", "01:02:03:04:05:06", False),
        ]
        for run in (mock_run, fake_run):
            snap = run.fleet.snapshot()
            assert snap.counts.line() == "1 of 4 connected speakers streaming"
            assert "hci1 powered off" in snap.source.detail
            assert list(run.fleet.warnings) == []
        # --all shows the phone (connected, no A2DP transport) the same way on both.
        for run in (mock_run, fake_run):
            run.fleet.set_include_all(True)
        assert mock_run.verdicts()[PHONE] == "no-a2dp"
        assert view(mock_run) == view(fake_run)
    finally:
        await fake_service.stop()


async def test_same_fleet_same_verdicts_built_live(
    dbusmock_bluez: MockBluez, second_bus: str, start_mirror
) -> None:
    """Mirrors first (BlueZ without adapters), then the fleet arrives as signals, then changes."""
    mock = dbusmock_bluez
    fake_service = FakeService(second_bus)
    fake = await fake_service.start()
    try:
        mock_run = await start_mirror(mock.bus_address)
        fake_run = await start_mirror(second_bus)
        for run in (mock_run, fake_run):
            assert "no Bluetooth adapter" in run.fleet.state.source.detail
            assert run.verdicts() == {}

        build_fake(fake)
        transports = await build_mock(mock)
        await wait_same(mock_run, fake_run, EXPECTED)
        for run in (mock_run, fake_run):
            assert "no Bluetooth adapter" not in run.fleet.state.source.detail

        # Bar starts playing.
        fake.set_transport_state("00:1A:7D:DA:71:02", "active")
        await mock.update(
            transports["00:1A:7D:DA:71:02"], TRANSPORT, {"State": Variant("s", "active")}
        )
        await wait_same(mock_run, fake_run, {**EXPECTED, "00:1A:7D:DA:71:02": "streaming"})

        # Stage Left drops out of range: transport gone, Disconnected(reason), Connected false.
        # dbusmock has no such helper, so the test sends what bluetoothd sends.
        left = FLEET[0]
        fake.drop_link(left.address)
        await mock.remove_object(transports[left.address], [TRANSPORT], announce=True)
        left_path = device_path("hci0", left.address)
        await mock.emit(
            left_path,
            DEVICE,
            "Disconnected",
            [Variant("s", "org.bluez.Reason.Timeout"), Variant("s", "disconnected")],
        )
        await mock.update(
            left_path,
            DEVICE,
            {"Connected": Variant("b", False), "ServicesResolved": Variant("b", False)},
        )
        step = {**EXPECTED, "00:1A:7D:DA:71:02": "streaming", left.address: "disconnected"}
        await wait_same(mock_run, fake_run, step)
        for run in (mock_run, fake_run):
            gone = [
                e.to_json()
                for e in run.events
                if e.type == "device" and e.to_json()["address"] == left.address
            ]
            assert [(e["connected"], e["reason"]) for e in gone][-1:] == [(False, "timeout")]
            assert [e for e in gone if not e["connected"]] == gone[-1:]

        # The spare dongle is switched on: its speaker is now known to be disconnected.
        fake.set_adapter_powered("hci1", True)
        await mock.update("/org/bluez/hci1", ADAPTER, {"Powered": Variant("b", True)})
        step = {**step, "00:1A:7D:DA:71:06": "disconnected"}
        await wait_same(mock_run, fake_run, step)
        assert adapters_view(mock_run) == adapters_view(fake_run)

        # Green Room is removed (unpaired) through Adapter1.RemoveDevice on the mock.
        green = "00:1A:7D:DA:71:04"
        fake.remove_device(green)
        await mock.remove_device("hci0", device_path("hci0", green))
        step = {k: v for k, v in step.items() if k != green}
        await wait_same(mock_run, fake_run, step)
        for run in (mock_run, fake_run):
            assert list(run.fleet.warnings) == []
    finally:
        await fake_service.stop()


# -- where dbusmock's bluez5 differs from bluetoothd (and from our fake) -------------------------


async def test_dbusmock_differences_add_object_is_silent(
    dbusmock_bluez: MockBluez, start_mirror
) -> None:
    """Mock.AddObject sends no InterfacesAdded: a running mirror cannot see that transport;
    a mirror that (re)reads GetManagedObjects does. bluetoothd always announces transports."""
    mock = dbusmock_bluez
    await mock.add_adapter("hci0", "stage")
    spk = FLEET[0]
    path = await mock.add_device("hci0", spk.address, spk.name)
    await mock.pair_device("hci0", spk.address)  # (sets a phone's UUIDs)
    await mock.update(path, DEVICE, {"UUIDs": Variant("as", spk.sim().uuids)})
    await mock.connect_device("hci0", spk.address)
    run = await start_mirror(mock.bus_address)
    assert run.verdicts() == {spk.address: "no-a2dp"}

    codec, config = CODEC_WIRE["SBC"]
    await mock.add_transport(
        path, state="active", codec=codec, configuration=config, announce=False
    )
    await asyncio.sleep(0.3)
    assert run.verdicts() == {spk.address: "no-a2dp"}, "dbusmock now announces AddObject"

    fresh = await start_mirror(mock.bus_address)
    assert fresh.verdicts() == {spk.address: "streaming"}


async def test_dbusmock_differences_disconnect(dbusmock_bluez: MockBluez, start_mirror) -> None:
    """The template's Disconnect: no Device1.Disconnected(reason), transport left in place; and
    after Mock.ConnectDevice it refuses with NotConnected although Connected is true."""
    mock = dbusmock_bluez
    await mock.add_adapter("hci0", "stage")
    spk = FLEET[0]
    path = await mock.add_device("hci0", spk.address, spk.name)
    await mock.pair_device("hci0", spk.address)
    await mock.update(path, DEVICE, {"UUIDs": Variant("as", spk.sim().uuids)})
    await mock.connect_device("hci0", spk.address)
    codec, config = CODEC_WIRE["SBC"]
    await mock.add_transport(path, state="active", codec=codec, configuration=config)
    run = await start_mirror(mock.bus_address)
    assert run.verdicts() == {spk.address: "streaming"}

    with pytest.raises(CallFailed) as info:
        await mock.device_call(path, "Disconnect")
    assert info.value.name == "org.bluez.Error.NotConnected"
    assert run.verdicts() == {spk.address: "streaming"}

    # Through the template's own Connect/Disconnect pair it works, but says nothing about why.
    await mock.disconnect_device("hci0", spk.address)
    await wait_for(lambda: run.verdicts() == {spk.address: "disconnected"})
    await mock.device_call(path, "Connect")
    await wait_for(lambda: run.verdicts() == {spk.address: "streaming"})
    await mock.device_call(path, "Disconnect")
    await wait_for(lambda: run.verdicts() == {spk.address: "disconnected"})
    reasons = [e.to_json()["reason"] for e in run.events if e.type == "device"]
    assert reasons == [None, None, None]  # no Device1.Disconnected from the template
    objects = await mock.managed_objects()
    assert f"{path}/sep1/fd1" in objects  # the transport outlives the link on the mock


async def test_dbusmock_differences_remove_device_leaves_children(
    dbusmock_bluez: MockBluez, start_mirror
) -> None:
    """Adapter1.RemoveDevice on the mock announces only Device1 and keeps the device's transport;
    the mirror must still drop the speaker (and not resurrect it from the orphan transport)."""
    mock = dbusmock_bluez
    await mock.add_adapter("hci0", "stage")
    spk = FLEET[0]
    path = await mock.add_device("hci0", spk.address, spk.name)
    await mock.pair_device("hci0", spk.address)
    await mock.update(path, DEVICE, {"UUIDs": Variant("as", spk.sim().uuids)})
    await mock.connect_device("hci0", spk.address)
    codec, config = CODEC_WIRE["SBC"]
    transport = await mock.add_transport(path, state="idle", codec=codec, configuration=config)
    run = await start_mirror(mock.bus_address)
    assert run.verdicts() == {spk.address: "connected-idle"}

    await mock.remove_device("hci0", path)
    await wait_for(lambda: run.verdicts() == {})
    assert transport in await mock.managed_objects()
    await mock.update(transport, TRANSPORT, {"State": Variant("s", "active")})
    await asyncio.sleep(0.2)
    assert run.verdicts() == {}
    assert list(run.fleet.warnings) == []


async def test_dbusmock_differences_property_types(
    dbusmock_bluez: MockBluez, second_bus: str
) -> None:
    """Every property the mirror reads has the same D-Bus type on both doubles (and the type
    DESIGN §5 / defs.PROPERTY_SIGNATURES documents); the known extra differences are pinned."""
    await build_mock(dbusmock_bluez)
    mock_objects = await dbusmock_bluez.managed_objects()
    fake_service = FakeService(second_bus)
    fake = await fake_service.start(build_fake)
    try:
        fake_objects = fake.tree.objects

        def types(objects, path: str, interface: str) -> dict[str, str]:
            return {k: v.signature for k, v in objects[path][interface].items()}

        left = device_path("hci0", FLEET[0].address)
        mock_transport = next(p for p in mock_objects if p.startswith(left + "/sep"))
        fake_transport = next(p for p in fake_objects if p.startswith(left + "/sep"))
        pairs = {
            ADAPTER: ("/org/bluez/hci0", "/org/bluez/hci0"),
            DEVICE: (left, left),
            TRANSPORT: (mock_transport, fake_transport),
        }
        mock_only: dict[str, set[str]] = {}
        fake_only: dict[str, set[str]] = {}
        for interface, (mock_path, fake_path) in pairs.items():
            mock_types = types(mock_objects, mock_path, interface)
            fake_types = types(fake_objects, fake_path, interface)
            for name, wanted in PROPERTY_SIGNATURES[interface].items():
                for side, found in (("dbusmock", mock_types), ("fake", fake_types)):
                    if name in found:
                        assert found[name] == wanted, f"{side} {interface}.{name}: {found[name]}"
            mock_only[interface] = set(mock_types) - set(fake_types)
            fake_only[interface] = set(fake_types) - set(mock_types)

        # Differences that do not matter to the mirror, pinned so a change shows up here.
        assert fake_only[ADAPTER] == {"PowerState"}  # BlueZ >= 5.66; the template lacks it
        assert fake_only[DEVICE] == {"Bonded"}  # BlueZ >= 5.70
        assert {"RSSI", "ManufacturerData", "AdvertisingData"} <= mock_only[DEVICE]
        assert fake_only[TRANSPORT] == mock_only[TRANSPORT] == set()
        device_types = types(mock_objects, left, DEVICE)
        assert device_types["ManufacturerData"] == "aa{qv}"  # BlueZ: a{qv}
        assert device_types["ServiceData"] == "aa{sv}"  # BlueZ: a{sv}
        assert device_types["AdvertisingData"] == "aa{yv}"  # BlueZ: a{yv}
        assert device_types["AdvertisingFlags"] == "aay"  # BlueZ: ay
    finally:
        await fake_service.stop()


async def test_unpaired_neighbours_are_not_the_fleet(
    dbusmock_bluez: MockBluez, start_mirror
) -> None:
    """Discovery creates Paired=false devices (dbusmock's AddDevice does too): a neighbour's
    speaker, even connected and streaming, is neither listed nor counted, and joins once it
    is paired. With --all it is listed (paired=false) but still outside the counts."""
    mock = dbusmock_bluez
    await mock.add_adapter("hci0", "stage")
    ours = Spk("00:1A:7D:DA:71:01", "Stage Left", "hci0", True, "active", "SBC", "streaming")
    neighbour = "00:1A:7D:DA:71:0B"
    for address, name, pair in ((ours.address, ours.name, True), (neighbour, "JBL Go", False)):
        path = await mock.add_device("hci0", address, name)
        if pair:
            await mock.pair_device("hci0", address)
        await mock.update(
            path,
            DEVICE,
            {"UUIDs": Variant("as", ours.sim().uuids), "Class": Variant("u", COD_LOUDSPEAKER)},
        )
        await mock.connect_device("hci0", address)
        codec, config = CODEC_WIRE["SBC"]
        await mock.add_transport(path, state="active", codec=codec, configuration=config)
    run = await start_mirror(mock.bus_address)
    everything = await start_mirror(mock.bus_address, include_all=True)
    await wait_for(lambda: run.verdicts() == {ours.address: "streaming"}, message="fleet")
    assert run.fleet.snapshot().counts.line() == "1 of 1 connected speaker streaming"
    await wait_for(lambda: neighbour in everything.verdicts(), message="--all lists it")
    listed = everything.speaker(neighbour)
    assert listed is not None and listed.paired is False and not listed.in_fleet
    assert everything.fleet.snapshot().counts.speakers == 1
    await mock.pair_device("hci0", neighbour)
    await wait_for(lambda: neighbour in run.verdicts(), message="paired: it joins")
    assert run.fleet.snapshot().counts.line() == "2 of 2 connected speakers streaming"
