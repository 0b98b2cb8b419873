"""Real bleak against the fake BlueZ on a private bus (bleak's "system bus" is pointed there):
discovery starts with bleak's filter, adverts arrive as Device1.RSSI changes, non-adverts are
ignored, stopping ends the reports; every failure is one BleUnavailable line."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.ble import BlePresence, BleUnavailable
from core.bluez.defs import DEVICE
from core.sim.fake_bluez import FakeBluez, SimDevice, device_path
from tests.bluez.conftest import policy_bus
from tests.conftest import FakeService, wait_for

pytestmark = pytest.mark.dbus

BEACON = "AA:BB:CC:DD:EE:01"
QUIET = "AA:BB:CC:DD:EE:02"
ELSEWHERE = "AA:BB:CC:DD:EE:03"


def rig(fake: FakeBluez) -> None:
    fake.add_adapter("hci0", "B8:27:EB:00:00:01")
    fake.add_adapter("hci1", "00:E0:4C:00:00:02")
    fake.add_adapter("hci2", "00:E0:4C:00:00:03", powered=False)
    fake.add_device(SimDevice(BEACON, "Beacon", transport_state="idle", ble_rssi=-60))
    fake.add_device(SimDevice(QUIET, "Quiet", transport_state="idle"))
    fake.add_device(SimDevice(ELSEWHERE, "Elsewhere", "hci1", ble_rssi=-40))


async def test_bleak_scans_the_fake_and_reports_adverts(bluez_service: FakeService) -> None:
    fake = await bluez_service.start(rig, speed=10)
    adverts: list[tuple[str, int, float]] = []
    presence = BlePresence(
        "hci0",
        bus=bluez_service.address,
        on_advert=lambda address, rssi, t: adverts.append((address, rssi, t)),
    )
    await presence.start()
    try:
        assert presence.scanning
        assert fake.discovery_filters["hci0"] == {"Transport": "le", "DuplicateData": False}
        assert set(fake.discovering) == {"hci0"}
        await wait_for(lambda: len(adverts) >= 3, message="three adverts")
        assert {a for a, _, _ in adverts} == {BEACON}  # not the silent one, not hci1's
        assert all(-63 <= rssi <= -57 for _, rssi, _ in adverts)
        assert all(abs(t - time.time()) < 5 for _, _, t in adverts)
        assert presence.table.present(BEACON, time.time())

        # Any Device1 change reaches bleak's callback; only an RSSI makes it an advert.
        fake.drop_link(QUIET)
        await asyncio.sleep(0.2)
        assert presence.table.sighting(QUIET) is None

        fake.advertise(QUIET, -75)  # starts advertising: seen at once
        await wait_for(lambda: presence.table.sighting(QUIET) is not None, message="Quiet")
        assert presence.table.sighting(QUIET).rssi == -75  # type: ignore[union-attr]
    finally:
        await presence.stop()
    assert not presence.scanning
    assert fake.discovering == {}
    assert fake.adapter_calls == [
        ("hci0", "SetDiscoveryFilter"),
        ("hci0", "StartDiscovery"),
        ("hci0", "StopDiscovery"),
        ("hci0", "SetDiscoveryFilter"),  # bleak clears its filter again
    ]
    # RSSI is only valid during discovery: BlueZ (and the fake) drop it when it ends.
    assert fake.tree.get(device_path("hci0", BEACON), DEVICE, "RSSI") is None
    count = len(adverts)
    await asyncio.sleep(0.3)
    assert len(adverts) == count
    await presence.stop()  # twice is harmless


async def test_missing_and_switched_off_adapters(bluez_service: FakeService) -> None:
    fake = await bluez_service.start(rig, speed=10)
    with pytest.raises(BleUnavailable) as missing:
        await BlePresence("hci7", bus=bluez_service.address).start()
    assert str(missing.value) == (
        "BLE off on hci7: BlueZ has no adapter hci7 (see `bluetoothctl list`)"
    )
    with pytest.raises(BleUnavailable) as off:
        await BlePresence("hci2", bus=bluez_service.address).start()
    assert str(off.value) == "BLE off on hci2: the adapter is powered off (bluetoothctl power on)"
    assert fake.discovering == {}


async def test_no_bluez_on_the_bus(private_bus: str) -> None:
    with pytest.raises(BleUnavailable) as info:
        await BlePresence("hci0", bus=private_bus).start()
    assert (
        str(info.value) == "BLE off on hci0: BlueZ is not running (sudo systemctl start bluetooth)"
    )


async def test_no_bus_at_all(tmp_path: Path) -> None:
    with pytest.raises(BleUnavailable) as info:
        await BlePresence("hci0", bus=f"unix:path={tmp_path}/no-socket").start()
    assert str(info.value) == (
        "BLE off on hci0: no system D-Bus to reach BlueZ (No such file or directory): is dbus "
        "running? (sudo systemctl start dbus)"
    )


async def test_bus_policy_denies_bluez(tmp_path: Path) -> None:
    rules = """    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <deny send_destination="org.bluez"/>"""
    with policy_bus(tmp_path, rules) as address:
        service = FakeService(address)
        await service.start(rig)
        try:
            with pytest.raises(BleUnavailable) as info:
                await BlePresence("hci0", bus=address).start()
        finally:
            await service.stop()
    assert str(info.value) == (
        "BLE off on hci0: permission denied by the D-Bus policy: run as root or as a user in "
        "group 'bluetooth'"
    )
