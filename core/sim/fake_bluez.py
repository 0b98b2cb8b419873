"""FakeBluez: adapters, devices, A2DP transports and batteries on an ObjectTree, BlueZ-shaped.

Paths, interfaces, property types, signals (InterfacesAdded from `/`, PropertiesChanged,
Device1.Disconnected) and method errors follow BlueZ's doc/. Transports live at
`…/dev_X/sepN/fdM` and name their device in the `Device` property, as in BlueZ.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Final

from dbus_next import Message, Variant

from core.bluez.defs import (
    A2DP_SINK_UUID,
    A2DP_SOURCE_UUID,
    ADAPTER,
    BATTERY,
    DEVICE,
    TRANSPORT,
)
from core.sim.objtree import MethodError, ObjectTree

AVRCP_TARGET_UUID: Final = "0000110c-0000-1000-8000-00805f9b34fb"
AVRCP_CONTROLLER_UUID: Final = "0000110e-0000-1000-8000-00805f9b34fb"
HANDSFREE_UUID: Final = "0000111e-0000-1000-8000-00805f9b34fb"
HANDSFREE_AG_UUID: Final = "0000111f-0000-1000-8000-00805f9b34fb"
#: Class of Device of a loudspeaker: major Audio/Video (0x04), minor Loudspeaker (0x05).
COD_LOUDSPEAKER: Final = 0x240414
#: Class of Device of a smartphone: major Phone (0x02), minor Smartphone (0x03).
COD_SMARTPHONE: Final = 0x5A020C

#: Codec name -> (Codec byte, Configuration blob) as BlueZ exposes them.
CODEC_WIRE: Final[dict[str, tuple[int, bytes]]] = {
    "SBC": (0x00, bytes([0x21, 0x15, 0x02, 0x35])),
    "AAC": (0x02, bytes([0x80, 0x01, 0x8C, 0x84, 0xE2, 0x00])),
    "aptX": (0xFF, bytes.fromhex("4f0000000100") + b"\x22"),
    "aptX HD": (0xFF, bytes.fromhex("d70000002400") + b"\x22\x00\x00\x00\x00"),
    "aptX LL": (0xFF, bytes.fromhex("0a0000000200") + b"\x22\x00"),
    "LDAC": (0xFF, bytes.fromhex("2d010000aa00") + b"\x04\x07"),
}


def device_path(adapter: str, address: str) -> str:
    return f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"


@dataclass
class SimDevice:
    """One fake device and how it behaves."""

    address: str
    name: str
    adapter: str = "hci0"
    codec: str = "SBC"
    has_a2dp: bool = True
    connected: bool = True
    transport_state: str | None = "active"
    battery: int | None = None
    delay_tenth_ms: int = 1500
    volume: int = 100
    paired: bool = True
    #: Connect() fails with this org.bluez.Error.Failed detail, when set.
    connect_failure: str | None = None
    #: Seconds (at speed 1) a Connect/Disconnect takes.
    connect_delay_s: float = 1.2
    disconnect_delay_s: float = 0.4
    extra: dict[str, Any] = field(default_factory=dict)
    #: "speaker", or "phone" (a paired non-speaker: A2DP source, not sink)
    kind: str = "speaker"

    @property
    def device_class(self) -> int:
        return COD_SMARTPHONE if self.kind == "phone" else COD_LOUDSPEAKER

    @property
    def uuids(self) -> list[str]:
        base = [AVRCP_TARGET_UUID, AVRCP_CONTROLLER_UUID]
        if self.kind == "phone":
            return [A2DP_SOURCE_UUID, HANDSFREE_AG_UUID, *base]
        return [A2DP_SINK_UUID, *base] if self.has_a2dp else [A2DP_SINK_UUID, HANDSFREE_UUID, *base]


class FakeBluez:
    """The fake bluetoothd: owns an ObjectTree and changes it the way BlueZ would."""

    def __init__(self, tree: ObjectTree, *, speed: float = 1.0) -> None:
        self.tree = tree
        self.speed = speed
        self.devices: dict[str, SimDevice] = {}
        self._fd = itertools.count(1)
        self._busy: set[str] = set()
        tree.methods[(DEVICE, "Connect")] = self._connect
        tree.methods[(DEVICE, "Disconnect")] = self._disconnect
        tree.methods[(DEVICE, "ConnectProfile")] = self._connect
        tree.add_object("/org/bluez", {"org.bluez.AgentManager1": {}})

    # -- building the fleet ----------------------------------------------------------------
    def add_adapter(
        self, name: str, address: str, *, alias: str | None = None, powered: bool = True
    ) -> None:
        self.tree.add_object(
            f"/org/bluez/{name}",
            {
                ADAPTER: {
                    "Address": Variant("s", address),
                    "AddressType": Variant("s", "public"),
                    "Name": Variant("s", alias or name),
                    "Alias": Variant("s", alias or name),
                    "Class": Variant("u", 0x6C0414),
                    "Powered": Variant("b", powered),
                    "PowerState": Variant("s", "on" if powered else "off"),
                    "Discoverable": Variant("b", False),
                    "Pairable": Variant("b", True),
                    "Discovering": Variant("b", False),
                    "UUIDs": Variant("as", [A2DP_SOURCE_UUID]),
                }
            },
        )

    def set_adapter_powered(self, name: str, powered: bool) -> None:
        self.tree.set_props(
            f"/org/bluez/{name}",
            ADAPTER,
            {
                "Powered": Variant("b", powered),
                "PowerState": Variant("s", "on" if powered else "off"),
            },
        )

    def add_device(self, dev: SimDevice) -> None:
        self.devices[dev.address] = dev
        path = device_path(dev.adapter, dev.address)
        interfaces: dict[str, dict[str, Variant]] = {
            DEVICE: {
                "Address": Variant("s", dev.address),
                "AddressType": Variant("s", "public"),
                "Name": Variant("s", dev.name),
                "Alias": Variant("s", dev.name),
                "Class": Variant("u", dev.device_class),
                "Icon": Variant("s", "phone" if dev.kind == "phone" else "audio-card"),
                "Paired": Variant("b", dev.paired),
                "Bonded": Variant("b", dev.paired),
                "Trusted": Variant("b", True),
                "Blocked": Variant("b", False),
                "LegacyPairing": Variant("b", False),
                "Connected": Variant("b", dev.connected),
                "ServicesResolved": Variant("b", dev.connected),
                "UUIDs": Variant("as", dev.uuids),
                "Adapter": Variant("o", f"/org/bluez/{dev.adapter}"),
            }
        }
        if dev.battery is not None:
            interfaces[BATTERY] = {
                "Percentage": Variant("y", dev.battery),
                "Source": Variant("s", "HFP"),
            }
        self.tree.add_object(path, interfaces)
        if dev.connected and dev.has_a2dp and dev.transport_state is not None:
            self._add_transport(dev, dev.transport_state)

    def remove_device(self, address: str) -> None:
        dev = self.devices.pop(address)
        self._remove_transport(dev)
        self.tree.remove_object(device_path(dev.adapter, dev.address))

    # -- behaviour -------------------------------------------------------------------------
    def transport_path(self, dev: SimDevice) -> str | None:
        prefix = device_path(dev.adapter, dev.address) + "/sep"
        for path in self.tree.objects:
            if path.startswith(prefix) and self.tree.has(path, TRANSPORT):
                return path
        return None

    def set_transport_state(self, address: str, state: str | None) -> None:
        """Move the A2DP transport to idle/pending/active, or remove it (None)."""
        dev = self.devices[address]
        dev.transport_state = state
        path = self.transport_path(dev)
        if state is None:
            self._remove_transport(dev)
        elif path is None:
            self._add_transport(dev, state)
        else:
            self.tree.set_props(path, TRANSPORT, {"State": Variant("s", state)})

    def set_battery(self, address: str, percentage: int) -> None:
        dev = self.devices[address]
        dev.battery = percentage
        self.tree.set_props(
            device_path(dev.adapter, address), BATTERY, {"Percentage": Variant("y", percentage)}
        )

    def set_volume(self, address: str, volume: int) -> None:
        dev = self.devices[address]
        dev.volume = volume
        path = self.transport_path(dev)
        if path is not None:
            self.tree.set_props(path, TRANSPORT, {"Volume": Variant("q", volume)})

    def drop_link(self, address: str, reason: str = "org.bluez.Reason.Timeout") -> None:
        """The speaker vanished (out of range, firmware reset): transport gone, then link."""
        dev = self.devices[address]
        self._remove_transport(dev)
        path = device_path(dev.adapter, address)
        # BlueZ >= 5.83 says why before Connected goes false.
        self.tree.emit(path, DEVICE, "Disconnected", "ss", [reason, "disconnected"])
        dev.connected = False
        self.tree.set_props(
            path,
            DEVICE,
            {"Connected": Variant("b", False), "ServicesResolved": Variant("b", False)},
        )

    async def reconnect(self, address: str, *, play: bool = True) -> None:
        """What bluetoothd does after a link loss or a Connect(): link, then A2DP setup."""
        dev = self.devices[address]
        path = device_path(dev.adapter, address)
        dev.connected = True
        self.tree.set_props(path, DEVICE, {"Connected": Variant("b", True)})
        await self.sleep(0.3)
        self.tree.set_props(path, DEVICE, {"ServicesResolved": Variant("b", True)})
        if not dev.has_a2dp:
            return
        self._add_transport(dev, "pending" if play else "idle")
        if play:
            await self.sleep(0.8)
            if self.transport_path(dev) is not None:
                self.set_transport_state(address, "active")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    # -- Device1 methods ---------------------------------------------------------------------
    def _device_for(self, path: str) -> SimDevice:
        for dev in self.devices.values():
            if device_path(dev.adapter, dev.address) == path:
                return dev
        raise MethodError("org.freedesktop.DBus.Error.UnknownObject", path)

    async def _connect(self, path: str, msg: Message) -> tuple[str, list[Any]]:
        dev = self._device_for(path)
        if dev.address in self._busy:
            raise MethodError("org.bluez.Error.InProgress", "In Progress")
        if dev.connected and msg.member == "Connect":
            raise MethodError("org.bluez.Error.AlreadyConnected", "Already Connected")
        self._busy.add(dev.address)
        try:
            await self.sleep(dev.connect_delay_s)
            if dev.connect_failure:
                raise MethodError("org.bluez.Error.Failed", dev.connect_failure)
            if not dev.connected or self.transport_path(dev) is None:
                await self.reconnect(dev.address)
        finally:
            self._busy.discard(dev.address)
        return "", []

    async def _disconnect(self, path: str, msg: Message) -> tuple[str, list[Any]]:
        dev = self._device_for(path)
        if not dev.connected:
            raise MethodError("org.bluez.Error.NotConnected", "Not Connected")
        await self.sleep(dev.disconnect_delay_s)
        self.drop_link(dev.address, "org.bluez.Reason.Local")
        return "", []

    # -- internals -------------------------------------------------------------------------
    def _add_transport(self, dev: SimDevice, state: str) -> None:
        codec, config = CODEC_WIRE[dev.codec]
        device = device_path(dev.adapter, dev.address)
        path = f"{device}/sep1/fd{next(self._fd)}"
        self.tree.add_object(
            path,
            {
                TRANSPORT: {
                    "Device": Variant("o", device),
                    "UUID": Variant("s", A2DP_SOURCE_UUID),
                    "Codec": Variant("y", codec),
                    "Configuration": Variant("ay", config),
                    "State": Variant("s", state),
                    "Delay": Variant("q", dev.delay_tenth_ms),
                    "Volume": Variant("q", dev.volume),
                }
            },
        )
        dev.transport_state = state

    def _remove_transport(self, dev: SimDevice) -> None:
        path = self.transport_path(dev)
        if path is not None:
            self.tree.remove_object(path)
        dev.transport_state = None
