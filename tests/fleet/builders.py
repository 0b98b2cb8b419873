"""Test data for the pure core: DeviceFacts with defaults, and BlueZ objects shaped like the
GetManagedObjects reply after client.py unwrapped it (property -> (D-Bus signature, value))."""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any

from core.bluez.cache import TypedValue
from core.bluez.defs import A2DP_SINK_UUID, A2DP_SOURCE_UUID, ADAPTER, BATTERY, DEVICE, TRANSPORT
from core.fleet.model import DeviceFacts, SourceState, SourceStatus, Speaker, Transport, Verdict

HCI0 = "/org/bluez/hci0"
HCI1 = "/org/bluez/hci1"
#: A BlueZ UUID that is not A2DP: Hands-Free unit (HFP), as an audio server exports it.
HFP_HF_UUID = "0000111e-0000-1000-8000-00805f9b34fb"
#: AVRCP target, a common extra profile of speakers.
AVRCP_TARGET_UUID = "0000110c-0000-1000-8000-00805f9b34fb"

CONNECTED = SourceStatus(SourceState.CONNECTED, "connected to BlueZ", "system")
WAITING = SourceStatus(SourceState.WAITING, "BlueZ left the bus", "system")

Interfaces = dict[str, dict[str, TypedValue]]


def address(n: int) -> str:
    """The Bluetooth address of test device number n."""
    return f"AA:BB:CC:DD:EE:{n:02X}"


def dev_path(n: int, adapter: str = HCI0) -> str:
    """BlueZ's object path of test device number n under `adapter`."""
    return f"{adapter}/dev_{address(n).replace(':', '_')}"


def transport(
    state: str = "active", codec: str | None = "SBC", n: int = 1, fd: int = 0
) -> Transport:
    """An A2DP transport value of device n."""
    return Transport(
        path=f"{dev_path(n)}/sep1/fd{fd}", state=state, codec=codec, delay_ms=150.0, volume=100
    )


def make_facts(n: int = 1, **changes: Any) -> DeviceFacts:
    """Facts of device n: by default a powered, paired, connected speaker streaming SBC."""
    base = DeviceFacts(
        path=dev_path(n),
        address=address(n),
        name=f"Speaker {n}",
        adapter="hci0",
        adapter_powered=True,
        paired=True,
        connected=True,
        is_speaker=True,
        transport=transport(n=n),
    )
    return replace(base, **changes)


# -- BlueZ objects (signature, value) --------------------------------------------------------
def adapter_obj(powered: bool = True, addr: str = "00:11:22:33:44:55") -> Interfaces:
    """An Adapter1 object as GetManagedObjects lists it."""
    return {
        ADAPTER: {
            "Address": ("s", addr),
            "Name": ("s", "host"),
            "Alias": ("s", "host"),
            "Powered": ("b", powered),
        }
    }


def device_props(
    n: int,
    adapter: str = HCI0,
    *,
    connected: bool = True,
    paired: bool = True,
    uuids: tuple[str, ...] = (A2DP_SINK_UUID, AVRCP_TARGET_UUID),
    **extra: TypedValue,
) -> dict[str, TypedValue]:
    """Device1 properties of test device n (add or override any with `extra`)."""
    props: dict[str, TypedValue] = {
        "Address": ("s", address(n)),
        "Name": ("s", f"Speaker {n}"),
        "Alias": ("s", f"Speaker {n}"),
        "Adapter": ("o", adapter),
        "Paired": ("b", paired),
        "Connected": ("b", connected),
        "UUIDs": ("as", list(uuids)),
    }
    props.update(extra)
    return props


def device_obj(n: int, adapter: str = HCI0, **kwargs: Any) -> Interfaces:
    """A Device1 object (see device_props for the arguments)."""
    return {DEVICE: device_props(n, adapter, **kwargs)}


def battery_obj(percentage: int) -> Interfaces:
    """A Battery1 interface, as BlueZ adds it to a device object."""
    return {BATTERY: {"Percentage": ("y", percentage)}}


def vendor_config(vendor_id: int, codec_id: int, tail: bytes = b"\x00") -> bytes:
    """A vendor codec's Configuration blob: vendor id (LE32), codec id (LE16), codec bytes."""
    return struct.pack("<IH", vendor_id, codec_id) + tail


def transport_obj(
    device: str | None,
    *,
    state: str | None = "active",
    uuid: str | None = A2DP_SOURCE_UUID,
    codec: int = 0x00,
    configuration: bytes = b"\x21\x15\x02\x35",
    delay: int | None = 1500,
    volume: int = 127,
) -> Interfaces:
    """A MediaTransport1 object naming `device` (None leaves out the Device property)."""
    props: dict[str, TypedValue] = {
        "Codec": ("y", codec),
        "Configuration": ("ay", configuration),
        "Volume": ("q", volume),
    }
    if device is not None:
        props["Device"] = ("o", device)
    if uuid is not None:
        props["UUID"] = ("s", uuid)
    if state is not None:
        props["State"] = ("s", state)
    if delay is not None:
        props["Delay"] = ("q", delay)
    return {TRANSPORT: props}


#: DESIGN §4.2 Speaker = {...}: exactly these keys.
SPEAKER_KEYS = frozenset(
    {
        "address",
        "name",
        "adapter",
        "paired",
        "connected",
        "verdict",
        "transport",
        "battery",
        "media_pps",
        "last_dropout",
        "period_s",
    }
)


def sample_speaker(t: float, address: str = "AA:BB:CC:DD:EE:01") -> Speaker:
    """A streaming speaker with every optional field filled (non-ASCII name included)."""
    return Speaker(
        path="/org/bluez/hci0/dev_" + address.replace(":", "_"),
        address=address,
        name="Küche",
        adapter="hci0",
        paired=True,
        connected=True,
        is_speaker=True,
        verdict=Verdict.STREAMING,
        transport=Transport("/t/fd0", "active", "aptX LL", 38.5, 100),
        battery=55,
        media_pps=312.5,
        last_dropout=t - 282.0,
        period_s=282.1,
        changed_t=t - 1,
    )


def plain_speaker(address: str, name: str, t: float, **changes: Any) -> Speaker:
    """A paired speaker on hci0, connected and streaming, with no optional fact (no
    transport, battery, media rate or dropouts); `changes` replace fields."""
    speaker = Speaker(
        path="/org/bluez/hci0/dev_" + address.replace(":", "_"),
        address=address,
        name=name,
        adapter="hci0",
        paired=True,
        connected=True,
        is_speaker=True,
        verdict=Verdict.STREAMING,
        transport=None,
        battery=None,
        media_pps=None,
        last_dropout=None,
        period_s=None,
        changed_t=t,
    )
    return replace(speaker, **changes) if changes else speaker
