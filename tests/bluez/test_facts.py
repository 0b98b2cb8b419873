"""facts.py: mirrored BlueZ objects -> Adapter and DeviceFacts (transport choice, speaker test)."""

from __future__ import annotations

from typing import Any

import pytest

from core.bluez.cache import ObjectCache
from core.bluez.defs import A2DP_SINK_UUID, A2DP_SOURCE_UUID
from core.bluez.facts import (
    a2dp_transport,
    adapter_name,
    adapters,
    address_from_path,
    device_facts,
    is_audio_sink,
)
from core.fleet.model import Adapter, DeviceFacts, Transport
from tests.fleet.builders import (
    AVRCP_TARGET_UUID,
    HCI0,
    HCI1,
    HFP_HF_UUID,
    Interfaces,
    adapter_obj,
    battery_obj,
    dev_path,
    device_obj,
    transport_obj,
    vendor_config,
)

DEV1 = dev_path(1)


def cache_of(objects: dict[str, Interfaces]) -> ObjectCache:
    """A cache holding exactly `objects` (as GetManagedObjects would list them)."""
    cache = ObjectCache()
    cache.reset(objects)
    return cache


def facts_of(cache: ObjectCache, path: str) -> DeviceFacts:
    """device_facts() of a device that must exist."""
    facts = device_facts(cache, path)
    assert facts is not None, f"no facts for {path}"
    return facts


def tprops(path: str, **props: Any) -> dict[str, Any]:
    """One entry of ObjectCache.transports_for(): plain transport properties plus `_path`."""
    return {"_path": path, **props}


# -- a2dp_transport -----------------------------------------------------------------------
def test_picks_the_a2dp_source_transport_and_ignores_hfp() -> None:
    """Of an active HFP transport and an idle A2DP one, the A2DP one is the speaker's."""
    chosen = a2dp_transport(
        [
            tprops("/t/fd0", UUID=HFP_HF_UUID, State="active", Codec=0x01),
            tprops("/t/fd1", UUID=A2DP_SOURCE_UUID, State="idle", Codec=0x02),
        ]
    )
    assert chosen is not None
    assert (chosen.path, chosen.state, chosen.codec) == ("/t/fd1", "idle", "AAC")


def test_only_non_a2dp_transports_gives_none() -> None:
    """A device with only an HFP transport has no A2DP transport (-> no-a2dp)."""
    assert a2dp_transport([tprops("/t/fd0", UUID=HFP_HF_UUID, State="active")]) is None
    assert a2dp_transport([]) is None


def test_a2dp_sink_uuid_is_not_our_stream() -> None:
    """UUID 0000110b on a transport means the remote streams to us (we are the sink): ignored."""
    assert a2dp_transport([tprops("/t/fd0", UUID=A2DP_SINK_UUID, State="active")]) is None


@pytest.mark.parametrize("order", ["idle-first", "active-first"])
def test_prefers_active_over_idle(order: str) -> None:
    """With several A2DP transports the active one wins, whatever the list order."""
    idle = tprops("/t/fd0", UUID=A2DP_SOURCE_UUID, State="idle", Codec=0x00)
    active = tprops("/t/fd1", UUID=A2DP_SOURCE_UUID, State="active", Codec=0x02)
    items = [idle, active] if order == "idle-first" else [active, idle]
    chosen = a2dp_transport(items)
    assert chosen is not None
    assert (chosen.path, chosen.state, chosen.codec) == ("/t/fd1", "active", "AAC")


def test_prefers_pending_over_idle() -> None:
    """Pending ranks above idle (the stream is starting)."""
    chosen = a2dp_transport(
        [
            tprops("/t/fd0", UUID=A2DP_SOURCE_UUID, State="idle"),
            tprops("/t/fd1", UUID=A2DP_SOURCE_UUID, State="pending"),
        ]
    )
    assert chosen is not None and chosen.state == "pending"


def test_transport_fields() -> None:
    """Delay in 1/10 ms becomes ms; Volume passes through; SBC from codec byte 0."""
    chosen = a2dp_transport(
        [tprops("/t/fd0", UUID=A2DP_SOURCE_UUID, State="active", Codec=0, Delay=1725, Volume=90)]
    )
    assert chosen == Transport(
        path="/t/fd0", state="active", codec="SBC", delay_ms=172.5, volume=90
    )


def test_missing_optional_transport_fields() -> None:
    """No Delay, Volume, Codec or State: None, None, None and 'unknown' (nothing invented)."""
    chosen = a2dp_transport([tprops("/t/fd0", UUID=A2DP_SOURCE_UUID)])
    assert chosen == Transport(
        path="/t/fd0", state="unknown", codec=None, delay_ms=None, volume=None
    )


@pytest.mark.parametrize(
    "configuration",
    [vendor_config(0x0A, 0x02), list(vendor_config(0x0A, 0x02))],
    ids=["bytes", "list-of-ints"],
)
def test_vendor_codec_from_configuration(configuration: bytes | list[int]) -> None:
    """Configuration as bytes (dbus-next) or a list of ints decodes to the vendor codec."""
    chosen = a2dp_transport(
        [
            tprops(
                "/t/fd0",
                UUID=A2DP_SOURCE_UUID,
                State="active",
                Codec=0xFF,
                Configuration=configuration,
            )
        ]
    )
    assert chosen is not None and chosen.codec == "aptX LL"


def test_transport_without_uuid_is_taken_as_a2dp() -> None:
    """A minimal double that exports no UUID still counts as the A2DP transport."""
    chosen = a2dp_transport([tprops("/t/fd0", State="active")])
    assert chosen is not None and chosen.state == "active"


# -- is_audio_sink ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"UUIDs": [AVRCP_TARGET_UUID, A2DP_SINK_UUID]}, True),
        ({"UUIDs": ["110b"]}, True),
        ({"UUIDs": ["0000110B-0000-1000-8000-00805F9B34FB"]}, True),
        ({"UUIDs": ["110B"]}, True),
        ({"UUIDs": [], "Class": 0x240404}, True),  # major 0x04 audio/video, minor loudspeaker
        ({"Class": 0x200414}, True),  # major 0x04, minor loudspeaker, no UUIDs yet
        ({"UUIDs": [A2DP_SOURCE_UUID, AVRCP_TARGET_UUID]}, False),  # a phone: A2DP source
        ({"UUIDs": [HFP_HF_UUID], "Class": 0x5A020C}, False),  # major 0x02 phone
        ({"Class": 0x000104}, False),  # major 0x01 computer
        ({}, False),
        ({"UUIDs": None, "Class": None}, False),
    ],
    ids=[
        "sink-uuid",
        "short-form",
        "upper-case",
        "short-upper",
        "cod-audio-video",
        "cod-only",
        "a2dp-source-phone",
        "cod-phone",
        "cod-computer",
        "nothing",
        "nulls",
    ],
)
def test_is_audio_sink(props: dict[str, Any], expected: bool) -> None:
    """A speaker is an A2DP Sink by UUID (any spelling) or by Class of Device major 0x04."""
    assert is_audio_sink(props) is expected


# -- device_facts -------------------------------------------------------------------------
def test_device_facts_of_a_streaming_speaker() -> None:
    """Every field comes from Device1, Adapter1, Battery1 and the linked A2DP transport."""
    fd = f"{DEV1}/sep1/fd0"
    cache = cache_of(
        {
            HCI0: adapter_obj(powered=True),
            DEV1: {**device_obj(1, Alias=("s", "Kitchen")), **battery_obj(64)},
            fd: transport_obj(
                DEV1,
                state="active",
                codec=0xFF,
                configuration=vendor_config(0x4F, 0x01),
                delay=1500,
                volume=100,
            ),
            f"{DEV1}/sep2/fd1": transport_obj(DEV1, state="active", uuid=HFP_HF_UUID),
        }
    )
    facts = device_facts(cache, DEV1)
    assert facts is not None
    assert facts.path == DEV1
    assert facts.address == "AA:BB:CC:DD:EE:01"
    assert facts.name == "Kitchen"
    assert facts.adapter == "hci0"
    assert facts.adapter_powered is True
    assert facts.paired is True and facts.connected is True
    assert facts.is_speaker is True
    assert facts.battery == 64
    assert facts.transport == Transport(
        path=fd, state="active", codec="aptX", delay_ms=150.0, volume=100
    )
    assert (facts.media_pps, facts.last_media_t, facts.probe_missed) == (None, None, False)


def test_device_facts_transport_linked_by_property() -> None:
    """device_facts uses the transport whose Device names it, not one under its path."""
    dev2 = dev_path(2)
    cache = cache_of(
        {
            HCI0: adapter_obj(),
            DEV1: device_obj(1),
            dev2: device_obj(2),
            f"{DEV1}/sep1/fd0": transport_obj(dev2, state="active"),
        }
    )
    facts1, facts2 = device_facts(cache, DEV1), device_facts(cache, dev2)
    assert facts1 is not None and facts1.transport is None
    assert facts2 is not None and facts2.transport is not None
    assert facts2.transport.state == "active"


@pytest.mark.parametrize("powered", [True, False])
def test_adapter_powered_passed_through(powered: bool) -> None:
    """The device's adapter Powered value reaches DeviceFacts unchanged."""
    cache = cache_of({HCI1: adapter_obj(powered=powered), dev_path(3, HCI1): device_obj(3, HCI1)})
    facts = device_facts(cache, dev_path(3, HCI1))
    assert facts is not None
    assert facts.adapter_powered is powered
    assert facts.adapter == "hci1"


def test_adapter_unknown_gives_powered_none() -> None:
    """No Adapter1 object in the cache: powered is unknown (None), not False."""
    cache = cache_of({DEV1: device_obj(1)})
    facts = device_facts(cache, DEV1)
    assert facts is not None and facts.adapter_powered is None


def test_adapter_from_path_when_property_missing() -> None:
    """Without Device1.Adapter the adapter is the parent of the device path."""
    props = device_obj(3, HCI1)
    del props["org.bluez.Device1"]["Adapter"]
    cache = cache_of({HCI1: adapter_obj(powered=False), dev_path(3, HCI1): props})
    facts = device_facts(cache, dev_path(3, HCI1))
    assert facts is not None
    assert (facts.adapter, facts.adapter_powered) == ("hci1", False)


def test_address_fallback_from_path() -> None:
    """No Address: it is taken from the device path; Paired missing reads as not paired."""
    bare: Interfaces = {"org.bluez.Device1": {"Connected": ("b", True), "Class": ("u", 0x240404)}}
    cache = cache_of({HCI0: adapter_obj(), DEV1: bare})
    facts = device_facts(cache, DEV1)
    assert facts is not None
    assert facts.address == "AA:BB:CC:DD:EE:01"
    assert facts.paired is False
    assert facts.is_speaker is True


def test_name_prefers_alias_then_name_then_address() -> None:
    """Alias wins over Name, Name over Address."""
    props = device_obj(1, Alias=("s", "Stage left"), Name=("s", "JBL Flip 5"))
    cache = cache_of({DEV1: props})
    assert facts_of(cache, DEV1).name == "Stage left"
    cache.change(DEV1, "org.bluez.Device1", {}, ["Alias"])
    assert facts_of(cache, DEV1).name == "JBL Flip 5"
    cache.change(DEV1, "org.bluez.Device1", {}, ["Name"])
    assert facts_of(cache, DEV1).name == "AA:BB:CC:DD:EE:01"


def test_battery_absent_is_none() -> None:
    """No Battery1 (common on A2DP-only speakers): battery is None, not 0."""
    cache = cache_of({DEV1: device_obj(1)})
    facts = device_facts(cache, DEV1)
    assert facts is not None and facts.battery is None


def test_device_facts_for_missing_device() -> None:
    """An unknown path, or an object without Device1, has no facts."""
    cache = cache_of({DEV1: battery_obj(50)})
    assert device_facts(cache, DEV1) is None
    assert device_facts(cache, dev_path(7)) is None


def test_disconnected_speaker_without_transport() -> None:
    """Connected false, no transport: the facts say so (the verdict is classify's job)."""
    cache = cache_of({HCI0: adapter_obj(), DEV1: device_obj(1, connected=False)})
    facts = device_facts(cache, DEV1)
    assert facts is not None
    assert (facts.connected, facts.transport, facts.is_speaker) == (False, None, True)


# -- adapters and path helpers ------------------------------------------------------------
def test_adapters_sorted_with_powered() -> None:
    """adapters() lists Adapter1 objects by path with name, address, alias and Powered."""
    cache = cache_of(
        {
            HCI1: adapter_obj(powered=False, addr="00:11:22:33:44:66"),
            HCI0: adapter_obj(powered=True),
            DEV1: device_obj(1),
        }
    )
    assert adapters(cache) == (
        Adapter(path=HCI0, name="hci0", address="00:11:22:33:44:55", alias="host", powered=True),
        Adapter(path=HCI1, name="hci1", address="00:11:22:33:44:66", alias="host", powered=False),
    )


def test_path_helpers() -> None:
    """adapter_name and address_from_path read BlueZ's path conventions."""
    assert adapter_name("/org/bluez/hci2") == "hci2"
    assert adapter_name("/org/bluez/hci2/") == "hci2"
    assert address_from_path("/org/bluez/hci0/dev_0A_1B_2C_3D_4E_5F") == "0A:1B:2C:3D:4E:5F"
