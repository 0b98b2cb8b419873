"""ObjectCache: the pure mirror of BlueZ's object tree, fed with already-unwrapped signals."""

from __future__ import annotations

from typing import Any

import pytest

from core.bluez.cache import ObjectCache, TypedValue, check_properties
from core.bluez.defs import ADAPTER, BATTERY, DEVICE, TRANSPORT
from tests.fleet.builders import (
    HCI0,
    HCI1,
    Interfaces,
    adapter_obj,
    battery_obj,
    dev_path,
    device_obj,
    transport_obj,
)

DEV1, DEV2, DEV3 = dev_path(1), dev_path(2), dev_path(3, HCI1)
FD1 = f"{DEV1}/sep1/fd0"
FD2 = f"{DEV2}/sep1/fd1"


def managed() -> dict[str, Interfaces]:
    """A GetManagedObjects reply: two adapters, three devices, one transport, unwatched noise."""
    return {
        "/org/bluez": {"org.bluez.AgentManager1": {}, "org.bluez.ProfileManager1": {}},
        HCI0: {**adapter_obj(), "org.bluez.Media1": {}, "org.bluez.LEAdvertisingManager1": {}},
        HCI1: adapter_obj(powered=False, addr="00:11:22:33:44:66"),
        DEV1: {
            **device_obj(1),
            **battery_obj(80),
            "org.freedesktop.DBus.Introspectable": {},
            "org.bluez.MediaControl1": {"Connected": ("b", True)},
        },
        DEV2: device_obj(2, connected=False),
        DEV3: device_obj(3, HCI1),
        FD1: transport_obj(DEV1, state="idle"),
    }


def props_of(cache: ObjectCache, path: str, interface: str) -> dict[str, Any]:
    """The cached properties of one interface; fails the test when they are missing."""
    props = cache.props(path, interface)
    assert props is not None, f"{interface} missing on {path}"
    return props


@pytest.fixture
def cache() -> ObjectCache:
    """A cache reset from managed(), with the dirty flags of that reset already taken."""
    cache = ObjectCache()
    cache.reset(managed())
    cache.take_dirty()
    return cache


# -- reset ----------------------------------------------------------------------------------
def test_reset_keeps_watched_interfaces_with_plain_values() -> None:
    """GetManagedObjects fills path -> interface -> {property: value}; signatures are gone."""
    cache = ObjectCache()
    cache.reset(managed())
    assert sorted(cache.device_paths()) == sorted([DEV1, DEV2, DEV3])
    assert sorted(cache.adapter_paths()) == [HCI0, HCI1]
    assert cache.props(DEV1, DEVICE) == {
        "Address": "AA:BB:CC:DD:EE:01",
        "Name": "Speaker 1",
        "Alias": "Speaker 1",
        "Adapter": HCI0,
        "Paired": True,
        "Connected": True,
        "UUIDs": [
            "0000110b-0000-1000-8000-00805f9b34fb",
            "0000110c-0000-1000-8000-00805f9b34fb",
        ],
    }
    assert cache.props(DEV1, BATTERY) == {"Percentage": 80}
    assert props_of(cache, HCI1, ADAPTER)["Powered"] is False
    assert props_of(cache, FD1, TRANSPORT)["State"] == "idle"


def test_reset_ignores_unwatched_interfaces() -> None:
    """Interfaces the mirror does not use are not stored; an object with only those is absent."""
    cache = ObjectCache()
    cache.reset(managed())
    assert "/org/bluez" not in cache.objects
    assert set(cache.objects[DEV1]) == {DEVICE, BATTERY}
    assert set(cache.objects[HCI0]) == {ADAPTER}


def test_reset_marks_every_device_and_the_adapters_dirty() -> None:
    """After a reset every device must be re-derived, and take_dirty() hands that over once."""
    cache = ObjectCache()
    cache.reset(managed())
    assert cache.take_dirty() == ({DEV1, DEV2, DEV3}, True)
    assert cache.take_dirty() == (set(), False)


def test_reset_marks_devices_that_vanished(cache: ObjectCache) -> None:
    """A device missing from a new GetManagedObjects (bluetoothd restart) is dirty and gone."""
    objects = managed()
    del objects[DEV2]
    cache.reset(objects)
    dirty, adapters = cache.take_dirty()
    assert DEV2 in dirty
    assert adapters is True
    assert cache.props(DEV2, DEVICE) is None
    assert DEV2 not in cache.device_paths()


def test_reset_drops_old_transport_links(cache: ObjectCache) -> None:
    """A transport absent from the new object list is no longer linked to its device."""
    objects = managed()
    del objects[FD1]
    cache.reset(objects)
    assert cache.transports_for(DEV1) == []
    assert cache.transports_of == {}


def test_clear_forgets_everything_and_marks_devices(cache: ObjectCache) -> None:
    """clear() (BlueZ left the bus) empties the cache and marks the old devices dirty."""
    cache.clear()
    assert cache.objects == {}
    assert cache.transports_of == {}
    assert cache.take_dirty() == ({DEV1, DEV2, DEV3}, True)


# -- InterfacesAdded / InterfacesRemoved ----------------------------------------------------
def test_interfaces_added_new_device(cache: ObjectCache) -> None:
    """A new Device1 is stored and marked dirty; adapters are not."""
    new = dev_path(9)
    cache.add(new, device_obj(9))
    assert props_of(cache, new, DEVICE)["Address"] == "AA:BB:CC:DD:EE:09"
    assert cache.take_dirty() == ({new}, False)


def test_interfaces_added_merges_into_existing_object(cache: ObjectCache) -> None:
    """Battery1 added to a known device keeps its Device1 and marks it dirty."""
    cache.add(DEV2, battery_obj(15))
    assert set(cache.objects[DEV2]) == {DEVICE, BATTERY}
    assert cache.props(DEV2, BATTERY) == {"Percentage": 15}
    assert cache.take_dirty() == ({DEV2}, False)


def test_interfaces_added_only_unwatched(cache: ObjectCache) -> None:
    """An object with only unwatched interfaces is not stored and marks nothing."""
    cache.add(f"{DEV1}/service0010", {"org.bluez.GattService1": {"UUID": ("s", "180f")}})
    assert f"{DEV1}/service0010" not in cache.objects
    assert cache.take_dirty() == (set(), False)


def test_interfaces_removed_one_of_two(cache: ObjectCache) -> None:
    """Removing Battery1 keeps the device object and marks it dirty."""
    cache.remove(DEV1, [BATTERY])
    assert cache.props(DEV1, BATTERY) is None
    assert cache.props(DEV1, DEVICE) is not None
    assert cache.take_dirty() == ({DEV1}, False)


def test_interfaces_removed_last_interface_drops_object(cache: ObjectCache) -> None:
    """Removing the last watched interface drops the object entirely."""
    cache.remove(DEV2, [DEVICE, "org.freedesktop.DBus.Properties"])
    assert DEV2 not in cache.objects
    assert DEV2 not in cache.device_paths()
    assert cache.take_dirty() == ({DEV2}, False)


def test_interfaces_removed_for_unknown_object(cache: ObjectCache) -> None:
    """Removing something never seen is a no-op, not an error."""
    cache.remove("/org/bluez/hci0/dev_00_00_00_00_00_00", [DEVICE])
    cache.remove(DEV1, [TRANSPORT])  # an interface the object does not have
    assert cache.take_dirty() == (set(), False)
    assert cache.props(DEV1, DEVICE) is not None


def test_transport_removed_unlinks_and_marks_its_device(cache: ObjectCache) -> None:
    """When the A2DP transport goes away its device is dirty and has no transport any more."""
    cache.remove(FD1, [TRANSPORT])
    assert cache.transports_for(DEV1) == []
    assert FD1 not in cache.objects
    assert cache.take_dirty() == ({DEV1}, False)


# -- PropertiesChanged --------------------------------------------------------------------
def test_properties_changed_updates_value(cache: ObjectCache) -> None:
    """A changed property replaces the old value; the other properties stay."""
    cache.change(DEV2, DEVICE, {"Connected": ("b", True)})
    props = cache.props(DEV2, DEVICE)
    assert props is not None
    assert props["Connected"] is True
    assert props["Name"] == "Speaker 2"
    assert cache.take_dirty() == ({DEV2}, False)


def test_properties_changed_invalidated_property_disappears(cache: ObjectCache) -> None:
    """An invalidated property's value is unknown: it must be removed, not kept stale."""
    cache.change(DEV1, DEVICE, {}, ["Alias"])
    cache.change(FD1, TRANSPORT, {"Volume": ("q", 64)}, ["State"])
    assert "Alias" not in props_of(cache, DEV1, DEVICE)
    transport = cache.props(FD1, TRANSPORT)
    assert transport is not None
    assert "State" not in transport
    assert transport["Volume"] == 64
    assert cache.take_dirty() == ({DEV1}, False)


def test_properties_changed_invalidating_unknown_property_is_harmless(cache: ObjectCache) -> None:
    """Invalidating a property the cache never had does not raise."""
    cache.change(DEV1, DEVICE, {}, ["RSSI"])
    assert props_of(cache, DEV1, DEVICE)["Connected"] is True


def test_properties_changed_for_unknown_object_is_ignored(cache: ObjectCache) -> None:
    """A change for a path never added must not invent an object (nor mark it dirty)."""
    ghost = dev_path(42)
    cache.change(ghost, DEVICE, {"Connected": ("b", True)})
    cache.change(DEV2, BATTERY, {"Percentage": ("y", 50)})  # known object, unknown interface
    assert ghost not in cache.objects
    assert cache.props(DEV2, BATTERY) is None
    assert cache.take_dirty() == (set(), False)
    assert cache.take_warnings() == []


def test_properties_changed_for_unwatched_interface_is_ignored(cache: ObjectCache) -> None:
    """MediaControl1 and friends are not mirrored, even on a known device."""
    cache.change(DEV1, "org.bluez.MediaControl1", {"Connected": ("b", False)})
    assert "org.bluez.MediaControl1" not in cache.objects[DEV1]
    assert cache.take_dirty() == (set(), False)


# -- wrong D-Bus types -------------------------------------------------------------------
def test_wrong_type_on_add_is_dropped_with_warning() -> None:
    """A property of the wrong type is left out, the rest kept, and the warning says it all."""
    cache = ObjectCache()
    cache.add(DEV1, device_obj(1, Connected=("s", "yes")))
    props = cache.props(DEV1, DEVICE)
    assert props is not None
    assert "Connected" not in props
    assert props["Paired"] is True
    warnings = cache.take_warnings()
    assert len(warnings) == 1
    text = warnings[0]
    for part in ("org.bluez.Device1", "Connected", DEV1, "'s'", "'b'"):
        assert part in text, f"{part!r} missing from {text!r}"
    assert cache.take_warnings() == []


def test_wrong_type_on_change_does_not_replace_value(cache: ObjectCache) -> None:
    """A wrongly typed PropertiesChanged value never lands in the cache; it warns instead."""
    cache.change(FD1, TRANSPORT, {"State": ("i", 3), "Volume": ("q", 10)})
    props = cache.props(FD1, TRANSPORT)
    assert props is not None
    assert props["State"] != 3
    assert props["Volume"] == 10
    (warning,) = cache.take_warnings()
    assert "org.bluez.MediaTransport1.State" in warning
    assert FD1 in warning
    assert "'i'" in warning and "'s'" in warning


def test_check_properties_passes_undocumented_properties() -> None:
    """Properties without a documented signature (newer BlueZ) are kept, not warned about."""
    clean, warnings = check_properties(
        DEV1, DEVICE, {"PreferredBearer": ("s", "bredr"), "Paired": ("b", True)}
    )
    assert clean == {"PreferredBearer": "bredr", "Paired": True}
    assert warnings == []


# -- transports follow their Device property ----------------------------------------------
def test_transport_linked_by_device_property_not_path() -> None:
    """The link comes from MediaTransport1.Device; the object path is not parsed."""
    cache = ObjectCache()
    odd_path = "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01/sep7/fd3"
    cache.reset(
        {
            HCI0: adapter_obj(),
            DEV1: device_obj(1),
            DEV2: device_obj(2),
            odd_path: transport_obj(DEV2),
        }
    )
    assert cache.transports_for(DEV1) == []
    (linked,) = cache.transports_for(DEV2)
    assert linked["_path"] == odd_path
    assert linked["State"] == "active"


def test_transport_without_device_property_is_not_linked() -> None:
    """A transport that names no device belongs to none (not to the device in its path)."""
    cache = ObjectCache()
    cache.reset({DEV1: device_obj(1), FD1: transport_obj(None)})
    assert cache.transports_for(DEV1) == []
    assert cache.props(FD1, TRANSPORT) is not None


def test_transport_added_marks_the_named_device(cache: ObjectCache) -> None:
    """InterfacesAdded of a transport marks the device it names and links to it."""
    cache.add(FD2, transport_obj(DEV2, state="pending"))
    assert [t["_path"] for t in cache.transports_for(DEV2)] == [FD2]
    assert cache.take_dirty() == ({DEV2}, False)


def test_transport_device_property_changes(cache: ObjectCache) -> None:
    """When a transport's Device changes, it moves to the new device; both are dirty."""
    cache.change(FD1, TRANSPORT, {"Device": ("o", DEV2)})
    assert cache.transports_for(DEV1) == []
    assert [t["_path"] for t in cache.transports_for(DEV2)] == [FD1]
    assert cache.take_dirty() == ({DEV1, DEV2}, False)


def test_transport_device_property_of_wrong_type_keeps_link(cache: ObjectCache) -> None:
    """A Device value of the wrong type is dropped: the transport stays with its device."""
    cache.change(FD1, TRANSPORT, {"Device": ("s", DEV2)})
    assert [t["_path"] for t in cache.transports_for(DEV1)] == [FD1]
    assert cache.transports_for(DEV2) == []
    assert len(cache.take_warnings()) == 1


def test_transport_device_invalidated_unlinks(cache: ObjectCache) -> None:
    """An invalidated Device means the transport names no device: the link must go."""
    cache.change(FD1, TRANSPORT, {}, ["Device"])
    assert "Device" not in props_of(cache, FD1, TRANSPORT)
    assert cache.transports_for(DEV1) == []
    assert cache.take_dirty() == ({DEV1}, False)


def test_two_transports_of_one_device_sorted_by_path(cache: ObjectCache) -> None:
    """transports_for lists every transport naming the device, in path order."""
    other = f"{DEV1}/sep2/fd5"
    cache.add(other, transport_obj(DEV1, state="active"))
    assert [t["_path"] for t in cache.transports_for(DEV1)] == [FD1, other]
    cache.remove(FD1, [TRANSPORT])
    assert [t["_path"] for t in cache.transports_for(DEV1)] == [other]


# -- dirty tracking ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "interface", "changed", "dirty"),
    [
        (DEV2, DEVICE, {"Connected": ("b", True)}, {DEV2}),
        (DEV1, BATTERY, {"Percentage": ("y", 79)}, {DEV1}),
        (FD1, TRANSPORT, {"State": ("s", "active")}, {DEV1}),
    ],
    ids=["device", "battery", "transport-marks-its-device"],
)
def test_dirty_devices(
    cache: ObjectCache, path: str, interface: str, changed: dict[str, TypedValue], dirty: set[str]
) -> None:
    """Each device-related change marks exactly the device it concerns (never a transport path)."""
    cache.change(path, interface, changed)
    assert cache.take_dirty() == (dirty, False)


def test_adapter_change_marks_adapters_and_its_devices(cache: ObjectCache) -> None:
    """Powered off on hci0 flags the adapters and every device under hci0, not hci1's."""
    cache.change(HCI0, ADAPTER, {"Powered": ("b", False)})
    assert cache.take_dirty() == ({DEV1, DEV2}, True)
    cache.change(HCI1, ADAPTER, {"Powered": ("b", True)})
    assert cache.take_dirty() == ({DEV3}, True)


def test_adapter_prefix_does_not_match_hci10() -> None:
    """Devices of /org/bluez/hci10 are not under /org/bluez/hci1."""
    hci10 = "/org/bluez/hci10"
    cache = ObjectCache()
    cache.reset({HCI1: adapter_obj(), hci10: adapter_obj(), dev_path(5, hci10): device_obj(5)})
    cache.take_dirty()
    cache.change(HCI1, ADAPTER, {"Powered": ("b", False)})
    assert cache.take_dirty() == (set(), True)


def test_take_dirty_accumulates_until_taken(cache: ObjectCache) -> None:
    """Several changes between two take_dirty() calls are all reported, once."""
    cache.change(DEV1, DEVICE, {"Alias": ("s", "Kitchen")})
    cache.change(DEV2, DEVICE, {"Connected": ("b", True)})
    cache.change(DEV1, BATTERY, {"Percentage": ("y", 5)})
    assert cache.take_dirty() == ({DEV1, DEV2}, False)
    assert cache.take_dirty() == (set(), False)


def test_device_removed_mid_update(cache: ObjectCache) -> None:
    """Device removed, then late signals for it: they are ignored and nothing is resurrected."""
    cache.change(DEV1, DEVICE, {"Connected": ("b", False)})
    cache.remove(DEV1, [DEVICE, BATTERY])
    cache.change(DEV1, DEVICE, {"Connected": ("b", True)})
    cache.change(DEV1, BATTERY, {"Percentage": ("y", 70)})
    assert DEV1 not in cache.objects
    assert DEV1 not in cache.device_paths()
    assert cache.take_dirty() == ({DEV1}, False)
    # its transport, removed after the device, still marks the device it named
    cache.remove(FD1, [TRANSPORT])
    assert cache.take_dirty() == ({DEV1}, False)
    assert cache.transports_of == {}


def test_device_interface_removed_but_battery_left(cache: ObjectCache) -> None:
    """An object with Battery1 but no Device1 is not listed as a device."""
    cache.remove(DEV1, [DEVICE])
    assert DEV1 in cache.objects
    assert DEV1 not in cache.device_paths()
    assert cache.take_dirty() == ({DEV1}, False)
