"""Opening a D-Bus connection from a `--bus` value, with errors a person can act on."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from dbus_next import AuthError, BusType, Message, MessageType
from dbus_next.aio import MessageBus

#: How long connecting (socket, authentication, Hello) may take before the bus counts as dead:
#: a socket whose peer never answers would otherwise block forever.
CONNECT_TIMEOUT_S = 5.0


class BusUnavailable(Exception):
    """The requested bus cannot be reached; the message says what to do."""


def describe_bus(spec: str) -> str:
    """'the system bus', or a bus address without its guid (unix:path=/x,guid=… -> /x)."""
    named = {"system": "the system bus", "session": "the session bus"}.get(spec)
    if named:
        return named
    first = spec.split(";", 1)[0]
    for key in ("unix:path=", "unix:abstract="):
        if first.startswith(key):
            return first[len(key) :].split(",", 1)[0]
    return first.split(",guid=", 1)[0]


async def open_bus(spec: str) -> MessageBus:
    """Connect to `system`, `session` or an explicit address such as `unix:path=/run/x`."""
    try:
        if spec == "system":
            bus = MessageBus(bus_type=BusType.SYSTEM)
        elif spec == "session":
            if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
                raise BusUnavailable(
                    "no session bus: DBUS_SESSION_BUS_ADDRESS is not set; use --bus system"
                )
            bus = MessageBus(bus_type=BusType.SESSION)
        else:
            bus = MessageBus(bus_address=spec)
        try:
            return await asyncio.wait_for(bus.connect(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(Exception):
                bus.disconnect()
            raise BusUnavailable(
                f"{describe_bus(spec)} did not answer within {CONNECT_TIMEOUT_S:g} s: is it a "
                "D-Bus socket, and is dbus-daemon responsive? (`systemctl status dbus`)"
            ) from None
    except BusUnavailable:
        raise
    except PermissionError as exc:
        raise BusUnavailable(
            f"permission denied on {describe_bus(spec)} ({exc.strerror or exc}): run as a user "
            "allowed to talk to BlueZ (e.g. in group 'bluetooth') or with sudo"
        ) from exc
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise BusUnavailable(
            f"cannot reach {describe_bus(spec)} ({exc.strerror or exc}): is dbus running? "
            "try `sudo systemctl start dbus`, or use --demo to see the built-in fleet"
        ) from exc
    except (ConnectionError, EOFError, AuthError) as exc:  # reset, broken pipe, REJECTED
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BusUnavailable(
            f"{describe_bus(spec)} closed the connection while logging in ({why}): its "
            f"policy may not allow this user (uid {os.getuid()}); run as a user it allows, "
            "or with sudo"
        ) from exc
    except Exception as exc:  # dbus-next raises bare Exception/ValueError here
        raise BusUnavailable(f"cannot connect to {describe_bus(spec)}: {exc}") from exc


def method_call(
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
) -> Message:
    return Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=body or [],
    )


async def call_checked(bus: MessageBus, msg: Message) -> Message:
    """Send a method call; raise DBusCallError carrying the D-Bus error name on failure."""
    reply = await bus.call(msg)
    if reply is None:
        raise DBusCallError("org.freedesktop.DBus.Error.NoReply", "no reply")
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise DBusCallError(reply.error_name or "unknown", text)
    return reply


class DBusCallError(Exception):
    """A D-Bus error reply, e.g. org.bluez.Error.Failed with 'br-connection-page-timeout'."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name
        self.text = text
