"""BluezMirror: the BlueZ source, feeding the Monitor BlueZ's device facts over D-Bus (DESIGN §5).

Match rules first, GetManagedObjects second, then every signal in message order; signals
that arrive before the GetManagedObjects reply are already reflected in it and are dropped.
When org.bluez leaves the bus (bluetoothd restart) the mirror clears, says so, and rebuilds
when the name returns. The fleet these facts add up to is the Monitor's (core.sources).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from typing import Any

from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus

from core.bluez.bus import BusUnavailable, call_checked, describe_bus, method_call, open_bus
from core.bluez.cache import ObjectCache, TypedValue
from core.bluez.defs import (
    BLUEZ_SERVICE,
    DBUS_SERVICE,
    DEVICE,
    OBJECT_MANAGER,
    PROPERTIES,
    is_known_codec,
    reason_word,
)
from core.bluez.facts import adapters, device_facts
from core.bluez.outcomes import ActionFailed
from core.fleet.model import DeviceFacts, SourceState, SourceStatus
from core.sources import (
    Adapters,
    DeviceCalls,
    Devices,
    DisconnectReason,
    Fact,
    Source,
    Status,
    Warn,
)

#: How long to wait before retrying a dead bus (s).
RETRY_BUS_S = 3.0

MATCH_RULES = (
    f"type='signal',sender='{BLUEZ_SERVICE}',interface='{OBJECT_MANAGER}'",
    f"type='signal',sender='{BLUEZ_SERVICE}',interface='{PROPERTIES}',member='PropertiesChanged'",
    # Device1.Disconnected (5.83+); newer BlueZ also sends it on org.bluez.Bearer.*1.
    f"type='signal',sender='{BLUEZ_SERVICE}',member='Disconnected'",
    f"type='signal',sender='{DBUS_SERVICE}',interface='{DBUS_SERVICE}',"
    f"member='NameOwnerChanged',arg0='{BLUEZ_SERVICE}'",
)


def unwrap_props(props: dict[str, Any]) -> dict[str, TypedValue]:
    """{name: Variant} -> {name: (signature, value)}; non-variants get signature '?'."""
    out: dict[str, TypedValue] = {}
    for name, value in props.items():
        if isinstance(value, Variant):
            out[name] = (value.signature, value.value)
        else:
            out[name] = ("?", value)
    return out


def unwrap_interfaces(interfaces: dict[str, Any]) -> dict[str, dict[str, TypedValue]]:
    return {iface: unwrap_props(props) for iface, props in interfaces.items()}


async def local_bluez_version() -> str:
    """`bluetoothd --version` of this host, or "" when it is not installed here."""
    for exe in (
        "/usr/libexec/bluetooth/bluetoothd",
        "/usr/lib/bluetooth/bluetoothd",
        shutil.which("bluetoothd") or "",
    ):
        if exe and os.access(exe, os.X_OK):
            try:
                proc = await asyncio.create_subprocess_exec(
                    exe,
                    "--version",
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                out, _ = await asyncio.wait_for(proc.communicate(), 2.0)
            except (OSError, TimeoutError):
                return ""
            return out.decode(errors="replace").strip()
    return ""


class BluezMirror(Source):
    """The live source: one D-Bus connection, one ObjectCache, device facts out."""

    name = "BlueZ"

    def __init__(self, bus_spec: str = "system", *, bus_label: str = "") -> None:
        self.bus_spec = bus_spec
        #: How the bus is named in status lines ("the system bus", "the demo's private bus").
        self.where = bus_label or describe_bus(bus_spec)
        self.cache = ObjectCache()
        self.bus: MessageBus | None = None
        self._status = SourceStatus(SourceState.CONNECTING, "connecting to BlueZ…")
        self._seen_warnings: set[str] = set()
        #: Paths fed with facts (a device gone from the cache is fed as gone on `refresh`).
        self._paths: set[str] = set()
        self._owner: str | None = None
        self._pending_serial: int | None = None
        self._ready = asyncio.Event()
        #: bluetoothd's version when it runs on this host's system bus (BlueZ has no D-Bus API
        #: for it), else "".
        self.bluez_version = ""

    # -- the Source interface ----------------------------------------------------------------
    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def control(self) -> DeviceCalls:
        return self

    async def call_device(
        self, path: str, member: str, signature: str = "", body: list[object] | None = None
    ) -> None:
        """org.bluez.Device1.`member` on `path` (the Controller's DeviceCalls); raises
        DBusCallError with BlueZ's answer, ActionFailed when there is no bus."""
        if self.bus is None:
            raise ActionFailed("not connected to D-Bus", "no-bus")
        await call_checked(
            self.bus, method_call(BLUEZ_SERVICE, path, DEVICE, member, signature, body)
        )

    def refresh(self) -> None:
        """Feed every device again (the fleet's include-all rule changed)."""
        paths = set(self.cache.device_paths()) | self._paths
        self._devices({p: device_facts(self.cache, p) for p in paths})

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the first full state from BlueZ is in (False on timeout)."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands
        # just as the wait completes, and the caller's task then never stops.
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Mirror forever: reconnect to the bus when it drops, follow BlueZ when it restarts."""
        if self.bus_spec == "system":
            self.bluez_version = await local_bluez_version()
        try:
            while True:
                try:
                    self.bus = await open_bus(self.bus_spec)
                except BusUnavailable as exc:
                    self._set_status(SourceState.ERROR, str(exc))
                    await asyncio.sleep(RETRY_BUS_S)
                    continue
                try:
                    await self._session(self.bus)
                finally:
                    with contextlib.suppress(Exception):
                        self.bus.disconnect()
                    self.bus = None
                self._lost_bluez(f"lost the connection to {self.where}; reconnecting…")
                await asyncio.sleep(RETRY_BUS_S)
        finally:
            if self.bus is not None:
                with contextlib.suppress(Exception):
                    self.bus.disconnect()

    # -- one bus connection ----------------------------------------------------------------
    async def _session(self, bus: MessageBus) -> None:
        bus.add_message_handler(self._on_message)
        for rule in MATCH_RULES:
            await call_checked(
                bus,
                method_call(
                    DBUS_SERVICE, "/org/freedesktop/DBus", DBUS_SERVICE, "AddMatch", "s", [rule]
                ),
            )
        self._request_objects(bus)
        await bus.wait_for_disconnect()

    def _request_objects(self, bus: MessageBus) -> None:
        msg = method_call(BLUEZ_SERVICE, "/", OBJECT_MANAGER, "GetManagedObjects")
        msg.serial = bus.next_serial()
        self._pending_serial = msg.serial
        bus.send(msg)

    # -- message handling (synchronous, in bus order) --------------------------------------
    def _on_message(self, msg: Message) -> bool:
        try:
            self._dispatch(msg)
        except Exception as exc:  # a buggy peer must never kill the mirror
            self._warn(f"ignored a malformed {msg.member or msg.message_type.name} message: {exc}")
        return False

    def _dispatch(self, msg: Message) -> None:
        if msg.message_type in (MessageType.METHOD_RETURN, MessageType.ERROR):
            if msg.reply_serial is not None and msg.reply_serial == self._pending_serial:
                self._pending_serial = None
                if msg.message_type == MessageType.ERROR:
                    self._objects_failed(msg)
                else:
                    self._owner = msg.sender
                    self.cache.reset({p: unwrap_interfaces(i) for p, i in msg.body[0].items()})
                    self._set_status(SourceState.CONNECTED, self._connected_detail())
                    self._flush()
                    self._ready.set()
            return
        if msg.message_type != MessageType.SIGNAL:
            return
        if msg.member == "NameOwnerChanged" and msg.interface == DBUS_SERVICE:
            name, _old, new = msg.body
            if name != BLUEZ_SERVICE:
                return
            if new:
                self._set_status(SourceState.CONNECTING, "BlueZ is back; reading its state…")
                if self.bus is not None:
                    self._request_objects(self.bus)
            else:
                self._lost_bluez(
                    "BlueZ left the bus (bluetoothd stopped or restarting); waiting for it "
                    "to return — check `systemctl status bluetooth`"
                )
            return
        if self._owner is None or msg.sender != self._owner or self._pending_serial is not None:
            return
        if msg.interface == OBJECT_MANAGER and msg.member == "InterfacesAdded":
            path, interfaces = msg.body
            self.cache.add(path, unwrap_interfaces(interfaces))
            if any(i.startswith("org.bluez.Adapter") for i in interfaces):
                self._set_status(SourceState.CONNECTED, self._connected_detail())
        elif msg.interface == OBJECT_MANAGER and msg.member == "InterfacesRemoved":
            path, interfaces = msg.body
            self.cache.remove(path, interfaces)
            if any(i.startswith("org.bluez.Adapter") for i in interfaces):
                self._set_status(SourceState.CONNECTED, self._connected_detail())
        elif msg.interface == PROPERTIES and msg.member == "PropertiesChanged":
            interface, changed, invalidated = msg.body
            self.cache.change(msg.path, interface, unwrap_props(changed), invalidated)
        elif msg.member == "Disconnected" and (
            msg.interface == DEVICE or (msg.interface or "").startswith("org.bluez.Bearer.")
        ):
            reason = str(msg.body[0]) if msg.body else ""
            self._feed(DisconnectReason(msg.path, reason_word(reason)))
            return
        else:
            return
        self._flush()

    def _objects_failed(self, msg: Message) -> None:
        if msg.error_name in (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.NameHasNoOwner",
        ):
            self._lost_bluez(
                f"BlueZ (org.bluez) is not running on {self.where}: start it "
                "with `sudo systemctl start bluetooth`; waiting for it to appear"
            )
        elif msg.error_name == "org.freedesktop.DBus.Error.AccessDenied":
            # The bus policy (e.g. /etc/dbus-1/system.d/bluetooth.conf) forbids us to ask BlueZ.
            self._owner = None
            self._set_status(
                SourceState.ERROR,
                f"permission denied: the policy of {self.where} does not let this user talk to "
                "BlueZ (org.bluez); run as root or as a user in group 'bluetooth'",
            )
        else:
            text = msg.body[0] if msg.body else ""
            self._lost_bluez(f"BlueZ did not answer GetManagedObjects: {msg.error_name} {text}")

    def _lost_bluez(self, detail: str) -> None:
        self._owner = None
        self._pending_serial = None
        self._set_status(SourceState.WAITING, detail)
        # Keep the last known speakers (as `unknown`) so the operator still sees the fleet.
        self.cache.take_dirty()

    def _connected_detail(self) -> str:
        n_adapters = len(self.cache.adapter_paths())
        where = self.where
        if n_adapters == 0:
            return (
                f"BlueZ on {where} has no Bluetooth adapter: plug one in or check "
                "`rfkill list` and `btmgmt info`"
            )
        off = [a.name for a in adapters(self.cache) if a.powered is False]
        version = f" {self.bluez_version}" if self.bluez_version else ""
        text = f"BlueZ{version} on {where}: {n_adapters} adapter{'s' if n_adapters > 1 else ''}"
        if off:
            text += f"; {', '.join(off)} powered off (`bluetoothctl power on`)"
        return text

    def _set_status(self, state: SourceState, detail: str) -> None:
        self._status = SourceStatus(state, detail, self.bus_spec)
        self._feed(Status(self._status))

    def _flush(self) -> None:
        dirty, adapters_changed = self.cache.take_dirty()
        for warning in self.cache.take_warnings():
            self._warn(warning)
        if adapters_changed:
            self._feed(Adapters(adapters(self.cache)))
            if self._owner is not None:
                self._set_status(SourceState.CONNECTED, self._connected_detail())
        if not dirty:
            return
        facts = {p: device_facts(self.cache, p) for p in dirty}
        for fact in facts.values():
            transport = fact.transport if fact is not None else None
            if transport is not None and transport.codec and not is_known_codec(transport.codec):
                self._warn(
                    f"{fact.address if fact else ''}: unknown A2DP codec ({transport.codec}) "
                    f"on {transport.path}: shown as is"
                )
        self._devices(facts)

    def _devices(self, facts: dict[str, DeviceFacts | None]) -> None:
        for path, fact in facts.items():
            if fact is None:
                self._paths.discard(path)
            else:
                self._paths.add(path)
        self._feed(Devices(facts))

    def _feed(self, fact: Fact) -> None:
        self.sink.feed(fact)

    def _warn(self, text: str) -> None:
        if text not in self._seen_warnings:
            self._seen_warnings.add(text)
            self._feed(Warn(text))
