"""Turn the mirrored BlueZ objects into domain values (Adapter, DeviceFacts) — pure functions."""

from __future__ import annotations

from typing import Any

from core.bluez.cache import ObjectCache
from core.bluez.defs import (
    A2DP_SINK_UUID,
    A2DP_SOURCE_UUID,
    ADAPTER,
    BATTERY,
    COD_MAJOR_AUDIO_VIDEO,
    DEVICE,
    TRANSPORT_STATES,
    decode_codec,
    uuid_matches,
)
from core.fleet.model import Adapter, DeviceFacts, Transport

#: When a device has several A2DP transports, the most advanced state wins.
_STATE_RANK = {"active": 3, "broadcasting": 3, "pending": 2, "idle": 1}


def adapter_name(path: str) -> str:
    """'hci0' from '/org/bluez/hci0'."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def address_from_path(path: str) -> str:
    """Fallback address from '…/dev_AA_BB_CC_DD_EE_FF' when Address is missing."""
    tail = path.rsplit("/", 1)[-1]
    return tail[4:].replace("_", ":") if tail.startswith("dev_") else tail


def adapters(cache: ObjectCache) -> tuple[Adapter, ...]:
    out = []
    for path in sorted(cache.adapter_paths()):
        props = cache.props(path, ADAPTER) or {}
        out.append(
            Adapter(
                path=path,
                name=adapter_name(path),
                address=props.get("Address"),
                alias=props.get("Alias"),
                powered=props.get("Powered"),
            )
        )
    return tuple(out)


def a2dp_transport(transports: list[dict[str, Any]]) -> Transport | None:
    """The device's A2DP transport towards the speaker (local UUID = A2DP Source), if any."""
    best: dict[str, Any] | None = None
    for props in transports:
        uuid = props.get("UUID")
        # No UUID at all (a minimal double) is taken as A2DP; a known other profile is not.
        if isinstance(uuid, str) and not uuid_matches(uuid, A2DP_SOURCE_UUID):
            continue
        state = props.get("State")
        if state not in TRANSPORT_STATES:
            # Invalidated or never sent: say so instead of guessing idle.
            state = "unknown" if state is None else str(state)
        if best is None or _STATE_RANK.get(state, 0) > _STATE_RANK.get(best["State"], 0):
            best = {**props, "State": state}
    if best is None:
        return None
    delay = best.get("Delay")
    return Transport(
        path=best["_path"],
        state=best["State"],
        codec=decode_codec(best.get("Codec"), _as_bytes(best.get("Configuration"))),
        delay_ms=round(delay / 10.0, 1) if isinstance(delay, int) else None,
        volume=best.get("Volume"),
    )


def is_audio_sink(props: dict[str, Any]) -> bool:
    """A speaker per DESIGN §3: A2DP Sink UUID, or Class of Device major class audio/video."""
    uuids = props.get("UUIDs") or []
    if any(isinstance(u, str) and uuid_matches(u, A2DP_SINK_UUID) for u in uuids):
        return True
    device_class = props.get("Class")
    return isinstance(device_class, int) and (device_class >> 8) & 0x1F == COD_MAJOR_AUDIO_VIDEO


def device_facts(cache: ObjectCache, path: str) -> DeviceFacts | None:
    """Facts for one device, or None when the object (or its Device1) is gone."""
    props = cache.props(path, DEVICE)
    if props is None:
        return None
    adapter_path = props.get("Adapter") or path.rsplit("/", 1)[0]
    adapter_props = cache.props(adapter_path, ADAPTER) or {}
    battery = (cache.props(path, BATTERY) or {}).get("Percentage")
    address = props.get("Address") or address_from_path(path)
    name = props.get("Alias") or props.get("Name") or address
    return DeviceFacts(
        path=path,
        address=address,
        name=name,
        adapter=adapter_name(adapter_path),
        adapter_powered=adapter_props.get("Powered"),
        # Bonded (BlueZ 5.67+) without Paired happens for keys restored from storage.
        paired=bool(props.get("Paired", False) or props.get("Bonded", False)),
        connected=bool(props.get("Connected", False)),
        is_speaker=is_audio_sink(props),
        transport=a2dp_transport(cache.transports_for(path)),
        battery=battery if isinstance(battery, int) else None,
    )


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        return bytes(value)
    return None
