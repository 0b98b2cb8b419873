"""ObjectTree: a small D-Bus object server with full control of types and signal shapes.

dbus-next's ServiceInterface fixes each property's type and emits InterfacesAdded from the
object's own path; BlueZ emits from `/` and a test double must also be able to misbehave
(wrong types, invalidated properties). So the fake BlueZ speaks D-Bus at the message level.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from xml.sax.saxutils import quoteattr

from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus

from core.sim.dbus_compat import patch_dbus_next_eagain

OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"

Props = dict[str, Variant]
#: A method implementation: (path, message) -> reply body (signature, values); raise MethodError.
MethodImpl = Callable[[str, Message], Awaitable[tuple[str, list[Any]]]]

log = logging.getLogger(__name__)


class MethodError(Exception):
    """Reply with a D-Bus error, e.g. MethodError('org.bluez.Error.Failed', 'br-connection-…')."""

    def __init__(self, name: str, text: str = "") -> None:
        super().__init__(f"{name}: {text}")
        self.name = name
        self.text = text


class ObjectTree:
    """Objects, properties, methods and signals of one service, served on one connection."""

    def __init__(self, bus: MessageBus, manager_path: str = "/") -> None:
        patch_dbus_next_eagain()  # a fleet's InterfacesAdded burst must not kill the service
        self.bus = bus
        self.manager_path = manager_path
        self.objects: dict[str, dict[str, Props]] = {}
        self.methods: dict[tuple[str, str], MethodImpl] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        bus.add_message_handler(self._handle)

    # -- state changes (each emits what BlueZ would) ---------------------------------------
    def add_object(self, path: str, interfaces: dict[str, Props]) -> None:
        obj = self.objects.setdefault(path, {})
        obj.update({name: dict(props) for name, props in interfaces.items()})
        self.emit(
            self.manager_path, OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}", [path, interfaces]
        )

    def remove_object(self, path: str, interfaces: list[str] | None = None) -> None:
        obj = self.objects.get(path)
        if obj is None:
            return
        names = list(obj) if interfaces is None else [i for i in interfaces if i in obj]
        for name in names:
            del obj[name]
        if not obj:
            del self.objects[path]
        if names:
            self.emit(self.manager_path, OBJECT_MANAGER, "InterfacesRemoved", "oas", [path, names])

    def set_props(
        self, path: str, interface: str, changed: Props, invalidated: list[str] | None = None
    ) -> None:
        """Update properties and emit one PropertiesChanged (only real changes are sent)."""
        props = self.objects[path][interface]
        really = {k: v for k, v in changed.items() if props.get(k) != v}
        props.update(really)
        for name in invalidated or []:
            props.pop(name, None)
        if really or invalidated:
            self.emit(
                path,
                PROPERTIES,
                "PropertiesChanged",
                "sa{sv}as",
                [interface, really, list(invalidated or [])],
            )

    def get(self, path: str, interface: str, name: str) -> Any:
        variant = self.objects.get(path, {}).get(interface, {}).get(name)
        return None if variant is None else variant.value

    def has(self, path: str, interface: str | None = None) -> bool:
        obj = self.objects.get(path)
        return obj is not None and (interface is None or interface in obj)

    def emit(self, path: str, interface: str, member: str, signature: str, body: list[Any]) -> None:
        self.bus.send(Message.new_signal(path, interface, member, signature, body))

    # -- serving ---------------------------------------------------------------------------
    def _handle(self, msg: Message) -> bool | Message:
        if msg.message_type != MessageType.METHOD_CALL:
            return False
        try:
            if msg.interface == OBJECT_MANAGER and msg.member == "GetManagedObjects":
                prefix = msg.path.rstrip("/") + "/"
                managed = {
                    p: o for p, o in self.objects.items() if p.startswith(prefix) or msg.path == "/"
                }
                return Message.new_method_return(msg, "a{oa{sa{sv}}}", [managed])
            if msg.interface == PROPERTIES:
                return self._properties(msg)
            if msg.interface == INTROSPECTABLE and msg.member == "Introspect":
                return Message.new_method_return(msg, "s", [self._introspect(msg.path)])
            impl = self.methods.get((msg.interface or "", msg.member or ""))
            if impl is None or not self.has(msg.path, msg.interface):
                return Message.new_error(
                    msg,
                    "org.freedesktop.DBus.Error.UnknownMethod",
                    f"no method {msg.interface}.{msg.member} on {msg.path}",
                )
        except MethodError as exc:
            return Message.new_error(msg, exc.name, exc.text)
        task = asyncio.get_running_loop().create_task(self._run(impl, msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, impl: MethodImpl, msg: Message) -> None:
        try:
            signature, body = await impl(msg.path, msg)
            reply = Message.new_method_return(msg, signature, body)
        except MethodError as exc:
            reply = Message.new_error(msg, exc.name, exc.text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("fake method failed")
            reply = Message.new_error(msg, "org.freedesktop.DBus.Error.Failed", str(exc))
        if self.bus.connected:
            self.bus.send(reply)

    def _properties(self, msg: Message) -> Message:
        obj = self.objects.get(msg.path)
        if obj is None:
            raise MethodError("org.freedesktop.DBus.Error.UnknownObject", msg.path)
        interface = msg.body[0] if msg.body else ""
        props = obj.get(interface)
        if props is None:
            raise MethodError("org.freedesktop.DBus.Error.UnknownInterface", interface)
        if msg.member == "GetAll":
            return Message.new_method_return(msg, "a{sv}", [props])
        if msg.member == "Get":
            name = msg.body[1]
            if name not in props:
                raise MethodError("org.freedesktop.DBus.Error.InvalidArgs", f"no property {name}")
            return Message.new_method_return(msg, "v", [props[name]])
        if msg.member == "Set":
            _, name, value = msg.body
            if name not in props:
                raise MethodError("org.freedesktop.DBus.Error.InvalidArgs", f"no property {name}")
            self.set_props(msg.path, interface, {name: value})
            return Message.new_method_return(msg)
        raise MethodError("org.freedesktop.DBus.Error.UnknownMethod", msg.member or "")

    def _introspect(self, path: str) -> str:
        prefix = path.rstrip("/") + "/"
        children = sorted(
            {p[len(prefix) :].split("/", 1)[0] for p in self.objects if p.startswith(prefix)}
        )
        parts = [
            '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"'
            ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
            "<node>",
        ]
        for interface, props in self.objects.get(path, {}).items():
            parts.append(f"<interface name={quoteattr(interface)}>")
            for name, variant in props.items():
                parts.append(
                    f"<property name={quoteattr(name)} "
                    f'type={quoteattr(variant.signature)} access="read"/>'
                )
            parts.append("</interface>")
        parts.extend(f"<node name={quoteattr(child)}/>" for child in children)
        parts.append("</node>")
        return "".join(parts)
