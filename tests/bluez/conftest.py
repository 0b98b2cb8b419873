"""Fixtures for the D-Bus integration tests: a client connection to drive the bus directly, and
python-dbusmock's `bluez5` template as an independent BlueZ double on the private bus.

Everything here runs against a real dbus-daemon (the `private_bus` fixture of tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus

from core.bluez.defs import A2DP_SOURCE_UUID, ADAPTER, DEVICE, OBJECT_MANAGER, TRANSPORT
from core.sim.daemon import PrivateBus
from tests.bluez.rig import fast_config, rig  # noqa: F401 (the controller tests' fixtures)
from tests.conftest import IN_CI, require_binary

MOCK_IFACE = "org.freedesktop.DBus.Mock"
BLUEZ_MOCK_IFACE = "org.bluez.Mock"
DBUS = "org.freedesktop.DBus"


class CallFailed(Exception):
    """A D-Bus error reply to a test's own call; `name` is the error name."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name
        self.text = text


async def call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
    timeout: float = 5.0,
) -> list[Any]:
    """One method call with a timeout; raises CallFailed on an error reply."""
    msg = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=body or [],
    )
    reply = await asyncio.wait_for(bus.call(msg), timeout)
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise CallFailed(reply.error_name or "?", text)
    return list(reply.body)


@pytest.fixture
def second_bus() -> Iterator[str]:
    """A second private dbus-daemon, for running two BlueZ doubles side by side."""
    require_binary("dbus-daemon", "dbus-daemon")
    with PrivateBus() as address:
        yield address


@pytest.fixture
async def client_bus(private_bus: str) -> AsyncIterator[MessageBus]:
    """A plain dbus-next connection to the private bus, for the test's own calls and signals."""
    bus = await asyncio.wait_for(MessageBus(bus_address=private_bus).connect(), 5)
    yield bus
    bus.disconnect()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(bus.wait_for_disconnect(), 2)


# -- python-dbusmock's bluez5 template ------------------------------------------------------------


def require_dbusmock() -> None:
    """Skip (locally) or fail (CI=true) when python-dbusmock or dbus-python is missing."""
    missing = [m for m in ("dbusmock", "dbus") if importlib.util.find_spec(m) is None]
    if missing:
        message = (
            f"python module(s) {', '.join(missing)} missing: pip install python-dbusmock "
            "(needs dbus-python, i.e. libdbus-1-dev to build); `make setup` installs it"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


class MockBluez:
    """Drives `python -m dbusmock --template bluez5` over D-Bus (its org.bluez.Mock API)."""

    def __init__(
        self, bus: MessageBus, proc: subprocess.Popen[bytes], log: Path, bus_address: str
    ) -> None:
        self.bus = bus
        self.bus_address = bus_address
        self.proc = proc
        self.log = log

    async def _call(
        self, path: str, interface: str, member: str, signature: str = "", body: Any = None
    ) -> list[Any]:
        return await call(self.bus, "org.bluez", path, interface, member, signature, body)

    async def managed_objects(self) -> dict[str, dict[str, dict[str, Variant]]]:
        return (await self._call("/", OBJECT_MANAGER, "GetManagedObjects"))[0]

    async def add_adapter(self, name: str, alias: str) -> str:
        return (await self._call("/", BLUEZ_MOCK_IFACE, "AddAdapter", "ss", [name, alias]))[0]

    async def add_device(self, adapter: str, address: str, alias: str) -> str:
        body = [adapter, address, alias]
        return (await self._call("/", BLUEZ_MOCK_IFACE, "AddDevice", "sss", body))[0]

    async def pair_device(self, adapter: str, address: str) -> None:
        await self._call("/", BLUEZ_MOCK_IFACE, "PairDevice", "ss", [adapter, address])

    async def connect_device(self, adapter: str, address: str) -> None:
        await self._call("/", BLUEZ_MOCK_IFACE, "ConnectDevice", "ss", [adapter, address])

    async def disconnect_device(self, adapter: str, address: str) -> None:
        await self._call("/", BLUEZ_MOCK_IFACE, "DisconnectDevice", "ss", [adapter, address])

    async def remove_device(self, adapter: str, device_path: str) -> None:
        """Adapter1.RemoveDevice as the template implements it."""
        await self._call(f"/org/bluez/{adapter}", ADAPTER, "RemoveDevice", "o", [device_path])

    async def update(self, path: str, interface: str, props: dict[str, Variant]) -> None:
        """Mock.UpdateProperties: change existing properties, emit one PropertiesChanged."""
        await self._call(path, MOCK_IFACE, "UpdateProperties", "sa{sv}", [interface, props])

    async def add_object(
        self, path: str, interface: str, props: dict[str, Variant], *, announce: bool
    ) -> None:
        """Mock.AddObject; dbusmock emits no InterfacesAdded for it, so `announce` does it by
        hand (from `/`, as bluetoothd does)."""
        await self._call(
            "/", MOCK_IFACE, "AddObject", "ssa{sv}a(ssss)", [path, interface, props, []]
        )
        if announce:
            await self.emit_from_root(
                "InterfacesAdded",
                [Variant("o", path), Variant("a{sa{sv}}", {interface: props})],
            )

    async def remove_object(self, path: str, interfaces: list[str], *, announce: bool) -> None:
        await self._call("/", MOCK_IFACE, "RemoveObject", "s", [path])
        if announce:
            await self.emit_from_root(
                "InterfacesRemoved", [Variant("o", path), Variant("as", interfaces)]
            )

    async def emit_from_root(self, member: str, args: list[Variant]) -> None:
        await self._call(
            "/",
            MOCK_IFACE,
            "EmitSignal",
            "sssav",
            [OBJECT_MANAGER, member, "".join(a.signature for a in args), args],
        )

    async def emit(self, path: str, interface: str, member: str, args: list[Variant]) -> None:
        signature = "".join(a.signature for a in args)
        await self._call(
            path, MOCK_IFACE, "EmitSignal", "sssav", [interface, member, signature, args]
        )

    async def add_transport(
        self,
        device_path: str,
        *,
        state: str,
        codec: int,
        configuration: bytes,
        delay: int = 1500,
        volume: int = 100,
        fd: int = 1,
        announce: bool = True,
    ) -> str:
        path = f"{device_path}/sep1/fd{fd}"
        await self.add_object(
            path,
            TRANSPORT,
            transport_props(device_path, state, codec, configuration, delay, volume),
            announce=announce,
        )
        return path

    async def device_call(self, device_path: str, member: str) -> None:
        await self._call(device_path, DEVICE, member)


def transport_props(
    device_path: str, state: str, codec: int, configuration: bytes, delay: int, volume: int
) -> dict[str, Variant]:
    """MediaTransport1 properties as bluetoothd exports them (doc/org.bluez.MediaTransport.rst)."""
    return {
        "Device": Variant("o", device_path),
        "UUID": Variant("s", A2DP_SOURCE_UUID),
        "Codec": Variant("y", codec),
        "Configuration": Variant("ay", configuration),
        "State": Variant("s", state),
        "Delay": Variant("q", delay),
        "Volume": Variant("q", volume),
    }


async def _wait_for_template(bus: MessageBus, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until org.bluez answers GetManagedObjects with the template's /org/bluez object."""
    deadline = time.monotonic() + 15
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"dbusmock exited with {proc.returncode}: {log.read_text()[-800:]}"
            )
        try:
            body = await call(bus, "org.bluez", "/", OBJECT_MANAGER, "GetManagedObjects", timeout=2)
            if "/org/bluez" in body[0]:
                return
        except (CallFailed, TimeoutError) as exc:
            last = str(exc)
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"dbusmock bluez5 did not come up in 15 s ({last}): {log.read_text()[-800:]}"
    )


@pytest.fixture
async def dbusmock_bluez(
    private_bus: str, client_bus: MessageBus, tmp_path: Path
) -> AsyncIterator[MockBluez]:
    """`python -m dbusmock --template bluez5` serving org.bluez on the private bus.

    The template is a system-bus template; dbusmock connects to whatever
    DBUS_SYSTEM_BUS_ADDRESS names (dbusmock.testcase.BusType.get_connection), so pointing that
    at the private bus keeps the real system bus out of it.
    """
    require_dbusmock()
    env = dict(os.environ)
    env["DBUS_SYSTEM_BUS_ADDRESS"] = private_bus
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    log = tmp_path / "dbusmock.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        await _wait_for_template(client_bus, proc, log)
        yield MockBluez(client_bus, proc, log, private_bus)
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Terminate a child we started, kill it if it does not go, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


# -- a dbus-daemon with a hand-written security policy ------------------------------------------

POLICY_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
{rules}
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def policy_bus(tmp_path: Path, rules: str) -> Iterator[str]:
    """A dbus-daemon whose <policy context="default"> holds `rules`; yields its address."""
    exe = require_binary("dbus-daemon", "dbus-daemon")
    config = tmp_path / "policy-bus.conf"
    config.write_text(POLICY_CONFIG.format(socket=tmp_path / "policy-bus.sock", rules=rules))
    proc = subprocess.Popen(
        [exe, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address, "dbus-daemon with a custom policy did not start"
        yield address
    finally:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()
