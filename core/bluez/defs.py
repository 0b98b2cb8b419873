"""BlueZ names, UUIDs and codec tables: the facts from BlueZ's doc/ that the mirror relies on.

References: bluez doc/org.bluez.Device.rst, org.bluez.MediaTransport.rst, org.bluez.Adapter.rst,
org.bluez.Battery.rst, and the A2DP specification's codec assignments.
"""

from __future__ import annotations

from typing import Final

BLUEZ_SERVICE: Final = "org.bluez"
OBJECT_MANAGER: Final = "org.freedesktop.DBus.ObjectManager"
PROPERTIES: Final = "org.freedesktop.DBus.Properties"
DBUS_SERVICE: Final = "org.freedesktop.DBus"

ADAPTER: Final = "org.bluez.Adapter1"
DEVICE: Final = "org.bluez.Device1"
TRANSPORT: Final = "org.bluez.MediaTransport1"
BATTERY: Final = "org.bluez.Battery1"

#: Interfaces the mirror keeps; everything else BlueZ exports is ignored.
WATCHED_INTERFACES: Final = frozenset({ADAPTER, DEVICE, TRANSPORT, BATTERY})

# 16-bit Bluetooth SIG service-class UUIDs in their 128-bit form.
A2DP_SOURCE_UUID: Final = "0000110a-0000-1000-8000-00805f9b34fb"
A2DP_SINK_UUID: Final = "0000110b-0000-1000-8000-00805f9b34fb"
#: Class of Device major class "Audio/Video" (bits 8-12 == 0x04), from the Assigned Numbers doc.
COD_MAJOR_AUDIO_VIDEO: Final = 0x04

#: Expected D-Bus signature of each property the mirror reads. A value of another type (a buggy
#: service) is dropped with a warning instead of crashing the mirror.
PROPERTY_SIGNATURES: Final[dict[str, dict[str, str]]] = {
    ADAPTER: {
        "Address": "s",
        "Name": "s",
        "Alias": "s",
        "Powered": "b",
        "Discovering": "b",
        "PowerState": "s",
    },
    DEVICE: {
        "Address": "s",
        "Name": "s",
        "Alias": "s",
        "Adapter": "o",
        "Paired": "b",
        "Bonded": "b",
        "Trusted": "b",
        "Connected": "b",
        "ServicesResolved": "b",
        "UUIDs": "as",
        "Class": "u",
        "Icon": "s",
        "RSSI": "n",
    },
    TRANSPORT: {
        "Device": "o",
        "UUID": "s",
        "Codec": "y",
        "Configuration": "ay",
        "State": "s",
        "Delay": "q",
        "Volume": "q",
    },
    BATTERY: {"Percentage": "y"},
}

#: Device1.Disconnected(reason, …) names (BlueZ 5.83+, doc/org.bluez.Device.rst), and the
#: `reason` word of DESIGN §4.2 each becomes (an unknown or future name: "unknown").
REASON_TIMEOUT: Final = "org.bluez.Reason.Timeout"
REASON_REMOTE: Final = "org.bluez.Reason.Remote"
REASON_LOCAL: Final = "org.bluez.Reason.Local"
REASON_AUTH: Final = "org.bluez.Reason.Authentication"
REASON_SUSPEND: Final = "org.bluez.Reason.Suspend"
REASON_LOCAL_SUSPEND: Final = "org.bluez.Reason.LocalSuspend"
REASON_UNKNOWN: Final = "org.bluez.Reason.Unknown"
DISCONNECT_REASONS: Final[dict[str, str]] = {
    REASON_TIMEOUT: "timeout",
    REASON_REMOTE: "remote",
    REASON_LOCAL: "local",
    REASON_AUTH: "auth",
    REASON_SUSPEND: "suspend",
    REASON_LOCAL_SUSPEND: "suspend",
    REASON_UNKNOWN: "unknown",
}


def reason_word(reason: str) -> str:
    """'org.bluez.Reason.Timeout' -> 'timeout'; anything BlueZ adds later -> 'unknown'."""
    return DISCONNECT_REASONS.get(reason, "unknown")


#: MediaTransport1.State values BlueZ documents (broadcasting since 5.78).
TRANSPORT_STATES: Final = frozenset({"idle", "pending", "active", "broadcasting"})

#: A2DP codec ids (A2DP spec, Assigned Numbers).
CODEC_SBC: Final = 0x00
CODEC_MPEG12: Final = 0x01
CODEC_AAC: Final = 0x02
CODEC_ATRAC: Final = 0x04
CODEC_LC3: Final = 0x06
CODEC_VENDOR: Final = 0xFF

STANDARD_CODECS: Final[dict[int, str]] = {
    CODEC_SBC: "SBC",
    CODEC_MPEG12: "MPEG-1,2",
    CODEC_AAC: "AAC",
    CODEC_ATRAC: "ATRAC",
    CODEC_LC3: "LC3",
}

#: (vendor id, vendor codec id) -> name, from BlueZ profiles/audio/a2dp-codecs.h.
VENDOR_CODECS: Final[dict[tuple[int, int], str]] = {
    (0x0000004F, 0x0001): "aptX",
    (0x000000D7, 0x0024): "aptX HD",
    (0x0000000A, 0x0002): "aptX LL",
    (0x0000012D, 0x00AA): "LDAC",
    (0x0000000A, 0x0001): "FastStream",
    (0x0000004F, 0x00AD): "aptX Adaptive",
    (0x000000D7, 0x00AD): "aptX Adaptive",
    (0x0000003A, 0x4C33): "LC3plus",
    (0x0000075F, 0x4C43): "Opus",
}


def decode_codec(codec: int | None, configuration: bytes | None) -> str | None:
    """Name of the codec a transport carries, or a descriptive fallback for unknown ids.

    Vendor codecs (0xFF) carry vendor id (LE32) and codec id (LE16) at the start of the
    Configuration blob. Returns None when the transport has no Codec property at all.
    """
    if codec is None:
        return None
    if codec != CODEC_VENDOR:
        return STANDARD_CODECS.get(codec, f"codec 0x{codec:02x}")
    if configuration is None or len(configuration) < 6:
        return "vendor"
    vendor_id = int.from_bytes(configuration[0:4], "little")
    codec_id = int.from_bytes(configuration[4:6], "little")
    return VENDOR_CODECS.get((vendor_id, codec_id), f"vendor {vendor_id:04x}:{codec_id:04x}")


def is_known_codec(name: str | None) -> bool:
    """True when decode_codec recognised the codec (not a fallback description)."""
    return name is not None and not name.startswith(("codec 0x", "vendor"))


def uuid_matches(uuid: str, reference: str) -> bool:
    """Compare BlueZ UUID strings case-insensitively, accepting the 16-bit short form."""
    uuid = uuid.lower()
    if len(uuid) == 4:
        uuid = f"0000{uuid}-0000-1000-8000-00805f9b34fb"
    return uuid == reference
