"""FakeBluez: adapters, devices, A2DP transports and batteries on an ObjectTree, BlueZ-shaped.

Paths, interfaces, property types, signals (InterfacesAdded from `/`, PropertiesChanged,
Device1.Disconnected) and method errors follow BlueZ's doc/. Transports live at
`…/dev_X/sepN/fdM` and name their device in the `Device` property, as in BlueZ.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from dbus_next import Message, Variant

from core.bluez.defs import (
    A2DP_SINK_UUID,
    A2DP_SOURCE_UUID,
    ADAPTER,
    BATTERY,
    DEVICE,
    REASON_AUTH,
    REASON_LOCAL,
    REASON_REMOTE,
    REASON_SUSPEND,
    REASON_TIMEOUT,
    REASON_UNKNOWN,
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

#: Device1.Disconnected(reason, message) as bluetoothd words them (src/device.c).
REASON_MESSAGES: Final[dict[str, str]] = {
    REASON_UNKNOWN: "Unspecified",
    REASON_TIMEOUT: "Connection timeout",
    REASON_LOCAL: "Connection terminated by local host",
    REASON_REMOTE: "Connection terminated by remote user",
    REASON_AUTH: "Connection terminated due to authentication failure",
    REASON_SUSPEND: "Connection terminated by local host for suspend",
}
#: org.bluez.Error.Failed detail of a speaker that is off or out of range (BlueZ >= 5.62).
PAGE_TIMEOUT: Final = "br-connection-page-timeout"

#: Codec name -> (Codec byte, Configuration blob) as BlueZ exposes them.
CODEC_WIRE: Final[dict[str, tuple[int, bytes]]] = {
    "SBC": (0x00, bytes([0x21, 0x15, 0x02, 0x35])),
    "AAC": (0x02, bytes([0x80, 0x01, 0x8C, 0x84, 0xE2, 0x00])),
    "aptX": (0xFF, bytes.fromhex("4f0000000100") + b"\x22"),
    "aptX HD": (0xFF, bytes.fromhex("d70000002400") + b"\x22\x00\x00\x00\x00"),
    "aptX LL": (0xFF, bytes.fromhex("0a0000000200") + b"\x22\x00"),
    "LDAC": (0xFF, bytes.fromhex("2d010000aa00") + b"\x04\x07"),
}
#: Seconds (at speed 1) between two BLE advertisements the fake reports while discovering.
ADVERT_INTERVAL_S: Final = 1.0
#: Adapter1.SetDiscoveryFilter keys BlueZ accepts (doc/org.bluez.Adapter.rst).
DISCOVERY_FILTER_KEYS: Final = frozenset(
    {"UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable", "Pattern"}
)


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
    #: Connect() fails with this org.bluez.Error.Failed detail, when set (PAGE_TIMEOUT: the
    #: speaker is off or out of range) ...
    connect_failure: str | None = None
    #: ... on the first `connect_failures` attempts only (None: on every attempt).
    connect_failures: int | None = None
    #: Chance (0..1, seeded by FakeBluez) that an attempt fails with PAGE_TIMEOUT anyway.
    flaky: float = 0.0
    #: False: Connect brings the link up without A2DP (BlueZ's dual-role regression), and
    #: ConnectProfile(A2DP sink) brings the transport.
    a2dp_on_connect: bool = True
    #: The audio server streams to it once A2DP is up (transport pending -> active).
    plays: bool = True
    #: bluetoothd's policy reconnects it this long after a link loss (ReconnectAttempts;
    #: paging takes the last connect_delay_s of it, during which Connect answers InProgress).
    auto_reconnect_s: float | None = None
    #: The speaker connects back by itself this long after we disconnected it.
    returns_after_disconnect_s: float | None = None
    #: Seconds (at speed 1) a Connect/Disconnect takes; a page timeout takes page_timeout_s.
    connect_delay_s: float = 1.2
    disconnect_delay_s: float = 0.4
    page_timeout_s: float = 5.12
    extra: dict[str, Any] = field(default_factory=dict)
    #: "speaker", or "phone" (a paired non-speaker: A2DP source, not sink)
    kind: str = "speaker"
    #: Advertises over BLE at about this RSSI (dBm) while its adapter discovers; None: silent.
    ble_rssi: int | None = None
    #: Its transport goes `active` but no media reaches it over the air (the demo's simulated
    #: HCI capture shows the stream stalled; BlueZ alone cannot tell).
    media_stalls: bool = False

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

    def __init__(self, tree: ObjectTree, *, speed: float = 1.0, seed: int = 1) -> None:
        self.tree = tree
        self.speed = speed
        self.devices: dict[str, SimDevice] = {}
        #: Every Device1 call answered: (address, member, "ok" or the error name).
        self.calls: list[tuple[str, str, str]] = []
        self.rng = random.Random(seed)
        self._fd = itertools.count(1)
        #: Devices bluetoothd is connecting (ours or its own reconnect): Connect -> InProgress.
        self._busy: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        tree.methods[(DEVICE, "Connect")] = self._connect
        tree.methods[(DEVICE, "Disconnect")] = self._disconnect
        tree.methods[(DEVICE, "ConnectProfile")] = self._connect
        tree.methods[(ADAPTER, "StartDiscovery")] = self._start_discovery
        tree.methods[(ADAPTER, "StopDiscovery")] = self._stop_discovery
        tree.methods[(ADAPTER, "SetDiscoveryFilter")] = self._set_discovery_filter
        #: Adapter name -> its advertisement task while it discovers.
        self.discovering: dict[str, asyncio.Task[None]] = {}
        #: Adapter name -> the last SetDiscoveryFilter it got (values unwrapped).
        self.discovery_filters: dict[str, dict[str, Any]] = {}
        #: Every discovery call, in order: (adapter, member), for tests to assert on.
        self.adapter_calls: list[tuple[str, str]] = []
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

    def drop_link(self, address: str, reason: str = REASON_TIMEOUT) -> None:
        """The speaker vanished (out of range, firmware reset): transport gone, then link.

        After a link loss (reason Timeout) bluetoothd reconnects by itself when the device's
        auto_reconnect_s is set, as its policy plugin does (ReconnectAttempts)."""
        dev = self.devices[address]
        self._remove_transport(dev)
        path = device_path(dev.adapter, address)
        # BlueZ >= 5.83 says why before Connected goes false.
        message = REASON_MESSAGES.get(reason, "Unspecified")
        self.tree.emit(path, DEVICE, "Disconnected", "ss", [reason, message])
        dev.connected = False
        self.tree.set_props(
            path,
            DEVICE,
            {"Connected": Variant("b", False), "ServicesResolved": Variant("b", False)},
        )
        if reason == REASON_TIMEOUT and dev.auto_reconnect_s is not None:
            self._later(self._come_back(dev, dev.auto_reconnect_s))

    async def reconnect(self, address: str, *, play: bool = True) -> None:
        """What bluetoothd does after a link loss or a Connect(): link, then A2DP setup."""
        dev = self.devices[address]
        await self._link_up(dev, a2dp=True, play=play)
        if play:
            await self._start_audio(dev)

    def adapter_powered(self, name: str) -> bool:
        return bool(self.tree.get(f"/org/bluez/{name}", ADAPTER, "Powered"))

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
        member = msg.member or ""
        try:
            profile = str(msg.body[0]).lower() if member == "ConnectProfile" else None
            await self._connect_device(dev, profile)
        except MethodError as exc:
            self.calls.append((dev.address, member, exc.name))
            raise
        self.calls.append((dev.address, member, "ok"))
        return "", []

    async def _connect_device(self, dev: SimDevice, profile: str | None) -> None:
        """Device1.Connect (profile None) or ConnectProfile(uuid), as src/device.c answers."""
        if dev.address in self._busy:
            raise MethodError("org.bluez.Error.InProgress", "br-connection-busy")
        if not self.adapter_powered(dev.adapter):
            raise MethodError("org.bluez.Error.NotReady", "br-connection-adapter-not-powered")
        if profile is not None and profile not in dev.uuids:
            raise MethodError(
                "org.bluez.Error.BREDR.ProfileUnavailable", "No more profiles to connect to"
            )
        a2dp = profile == A2DP_SINK_UUID or (profile is None and dev.a2dp_on_connect)
        self._busy.add(dev.address)
        try:
            if dev.connected:
                # Only the profiles still down are connected; none left: AlreadyConnected
                # (current bluetoothd may answer success instead; clients accept both).
                if not (a2dp and dev.has_a2dp and self.transport_path(dev) is None):
                    if profile is None:
                        raise MethodError("org.bluez.Error.AlreadyConnected", "Already Connected")
                    if profile == A2DP_SINK_UUID and not dev.has_a2dp:
                        raise MethodError(
                            "org.bluez.Error.Failed", "br-connection-profile-unavailable"
                        )
                    return
                await self.sleep(0.3)
                self._add_transport(dev, "pending" if dev.plays else "idle")
            else:
                failure = self._failure(dev)
                if failure is not None:
                    await self.sleep(
                        dev.page_timeout_s if failure == PAGE_TIMEOUT else dev.connect_delay_s
                    )
                    raise MethodError("org.bluez.Error.Failed", failure)
                await self.sleep(dev.connect_delay_s)
                await self._link_up(dev, a2dp=a2dp, play=dev.plays)
        finally:
            self._busy.discard(dev.address)
        if dev.plays:
            # The audio server starts the stream after bluetoothd answered.
            self._later(self._start_audio(dev))

    async def _disconnect(self, path: str, msg: Message) -> tuple[str, list[Any]]:
        dev = self._device_for(path)
        if not dev.connected:
            self.calls.append((dev.address, "Disconnect", "org.bluez.Error.NotConnected"))
            raise MethodError("org.bluez.Error.NotConnected", "Not Connected")
        await self.sleep(dev.disconnect_delay_s)
        self.drop_link(dev.address, REASON_LOCAL)
        self.calls.append((dev.address, "Disconnect", "ok"))
        if dev.returns_after_disconnect_s is not None:
            self._later(self._come_back(dev, dev.returns_after_disconnect_s))
        return "", []

    def _failure(self, dev: SimDevice) -> str | None:
        """Whether this connection attempt fails, and with which Failed detail."""
        attempt = self._attempts[dev.address] = self._attempts.get(dev.address, 0) + 1
        if dev.connect_failure and (
            dev.connect_failures is None or attempt <= dev.connect_failures
        ):
            return dev.connect_failure
        if dev.flaky and self.rng.random() < dev.flaky:
            return PAGE_TIMEOUT
        return None

    async def _come_back(self, dev: SimDevice, after_s: float) -> None:
        """bluetoothd's reconnect (or the speaker's own): wait, page, then link and A2DP.

        One attempt: a speaker that fails it stays down (bluetoothd would retry later)."""
        await self.sleep(max(0.0, after_s - dev.connect_delay_s))
        if dev.connected or dev.address in self._busy or not self._alive(dev):
            return
        self._busy.add(dev.address)
        try:
            await self.sleep(dev.connect_delay_s)
            if dev.connected or not self._alive(dev) or self._failure(dev) is not None:
                return
            await self._link_up(dev, a2dp=dev.a2dp_on_connect, play=dev.plays)
        finally:
            self._busy.discard(dev.address)
        if dev.plays:
            await self._start_audio(dev)

    async def _link_up(self, dev: SimDevice, *, a2dp: bool, play: bool) -> None:
        """The ACL link comes up, services resolve, then the A2DP stream is configured."""
        path = device_path(dev.adapter, dev.address)
        dev.connected = True
        dev.media_stalls = False  # a fresh link clears a stalled stream (what resync is for)
        self.tree.set_props(path, DEVICE, {"Connected": Variant("b", True)})
        await self.sleep(0.3)
        self.tree.set_props(path, DEVICE, {"ServicesResolved": Variant("b", True)})
        if a2dp and dev.has_a2dp and self.transport_path(dev) is None:
            self._add_transport(dev, "pending" if play else "idle")

    async def _start_audio(self, dev: SimDevice) -> None:
        """The audio server starts streaming: pending -> active."""
        await self.sleep(0.8)
        path = self.transport_path(dev)
        if path is not None and dev.connected and dev.transport_state != "active":
            self.set_transport_state(dev.address, "active")

    def _alive(self, dev: SimDevice) -> bool:
        """Still known, bluetoothd still on the bus, and its adapter on."""
        return (
            dev.address in self.devices
            and bool(self.tree.bus.connected)
            and self.adapter_powered(dev.adapter)
        )

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Adapter1 discovery (what bleak uses to scan) ---------------------------------------
    def advertise(self, address: str, rssi: int | None) -> None:
        """The device starts (an RSSI) or stops (None) advertising; reported at once while its
        adapter discovers, as BlueZ does (Device1.RSSI only changes during discovery)."""
        dev = self.devices[address]
        dev.ble_rssi = rssi
        if rssi is not None and dev.adapter in self.discovering:
            self._report_advert(dev, rssi)

    async def _start_discovery(self, path: str, msg: Message) -> tuple[str, list[Any]]:
        name = path.rsplit("/", 1)[-1]
        self.adapter_calls.append((name, "StartDiscovery"))
        if not self.tree.get(path, ADAPTER, "Powered"):
            raise MethodError("org.bluez.Error.NotReady", "Resource Not Ready")
        if name in self.discovering:
            raise MethodError("org.bluez.Error.InProgress", "Operation already in progress")
        self.discovering[name] = asyncio.get_running_loop().create_task(self._advertise(name))
        self.tree.set_props(path, ADAPTER, {"Discovering": Variant("b", True)})
        return "", []

    async def _stop_discovery(self, path: str, msg: Message) -> tuple[str, list[Any]]:
        name = path.rsplit("/", 1)[-1]
        self.adapter_calls.append((name, "StopDiscovery"))
        task = self.discovering.pop(name, None)
        if task is None:
            raise MethodError("org.bluez.Error.Failed", "No discovery started")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.tree.set_props(path, ADAPTER, {"Discovering": Variant("b", False)})
        # BlueZ drops RSSI when discovery ends: it is only valid while discovering.
        for dev in self.devices.values():
            device = device_path(dev.adapter, dev.address)
            if dev.adapter == name and self.tree.get(device, DEVICE, "RSSI") is not None:
                self.tree.set_props(device, DEVICE, {}, invalidated=["RSSI"])
        return "", []

    async def _set_discovery_filter(self, path: str, msg: Message) -> tuple[str, list[Any]]:
        name = path.rsplit("/", 1)[-1]
        self.adapter_calls.append((name, "SetDiscoveryFilter"))
        filters = msg.body[0] if msg.body else {}
        unknown = sorted(set(filters) - DISCOVERY_FILTER_KEYS)
        if unknown:
            raise MethodError("org.bluez.Error.InvalidArguments", f"Invalid arguments: {unknown}")
        self.discovery_filters[name] = {
            k: v.value if isinstance(v, Variant) else v for k, v in filters.items()
        }
        return "", []

    async def _advertise(self, adapter: str) -> None:
        """While `adapter` discovers: each advertiser's RSSI wobbles by a few dB, every interval."""
        rng = random.Random(adapter)
        while True:
            for dev in list(self.devices.values()):
                if dev.adapter == adapter and dev.ble_rssi is not None:
                    self._report_advert(dev, dev.ble_rssi + rng.randint(-3, 3))
            await self.sleep(ADVERT_INTERVAL_S)

    def _report_advert(self, dev: SimDevice, rssi: int) -> None:
        path = device_path(dev.adapter, dev.address)
        if self.tree.has(path, DEVICE):
            self.tree.set_props(path, DEVICE, {"RSSI": Variant("n", rssi)})

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
