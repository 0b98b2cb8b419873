"""Opt-in BLE presence (`--ble ADAPTER`): who advertises nearby, and how loud, via bleak.

Scanning on an adapter that streams A2DP makes the audio stutter (DESIGN §5), so BleScan only
scans an adapter with no active transport unless forced, and pauses when one appears. Every
failure (no bus, no BlueZ, no adapter, no permission, no bleak) becomes a status line.
Presence is pure: PresenceTable keeps the last RSSI and time per address, with time passed in.
BlueZ reports an advertisement as Device1 RSSI changes during discovery; a classic speaker is
matched only when it advertises with its BR/EDR address (many use a random LE address).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from core.fleet.model import SENDING_STATES, FleetSnapshot, SourceState, SourceStatus, Speaker
from core.sources import Shown, Source, Warn

#: A device counts as present when it advertised within this many seconds (BLE devices
#: advertise every 20 ms–10.24 s by the Core spec; 10 s tolerates a few missed scans).
PRESENT_WITHIN_S: Final = 10.0
#: Transport states in which audio flows through the adapter: no scanning then (DESIGN §5).
AUDIO_STATES: Final = SENDING_STATES
#: How long starting or stopping a scan may take before it counts as failed (a D-Bus round
#: trip takes milliseconds; a hung bus must not hang the monitor).
BLE_CALL_TIMEOUT_S: Final = 5.0
#: BlueZ adapter object names: hci0, hci1, …
ADAPTER_RE: Final = re.compile(r"^hci[0-9]+$")

AdvertSink = Callable[[str, int, float], None]  # (address, rssi dBm, unix time)


@dataclass(frozen=True, slots=True)
class Sighting:
    """The last advertisement heard from one address."""

    rssi: int
    seen: float


class PresenceTable:
    """Last RSSI and last-seen time per address; presence judged at a given `now`."""

    def __init__(self, present_within_s: float = PRESENT_WITHIN_S) -> None:
        self.present_within_s = present_within_s
        self.sightings: dict[str, Sighting] = {}
        #: Bumped on every observation, so a renderer knows when to look again.
        self.version = 0

    def observe(self, address: str, rssi: int, t: float) -> None:
        self.sightings[address.upper()] = Sighting(rssi, t)
        self.version += 1

    def sighting(self, address: str) -> Sighting | None:
        return self.sightings.get(address.upper())

    def present(self, address: str, now: float) -> bool:
        seen = self.sightings.get(address.upper())
        return seen is not None and 0 <= now - seen.seen <= self.present_within_s

    def present_set(self, now: float) -> frozenset[str]:
        return frozenset(a for a in self.sightings if self.present(a, now))


def adapter_name(text: str) -> str:
    """'hci0' from 'hci0' or '/org/bluez/hci0'; ValueError for anything else."""
    name = text.strip().removeprefix("/org/bluez/")
    if not ADAPTER_RE.match(name):
        raise ValueError(
            f"--ble {text!r}: name a Bluetooth adapter such as hci0 (see `bluetoothctl list`)"
        )
    return name


def streaming_through(
    adapter: str, speakers: Iterable[Speaker], states: frozenset[str]
) -> list[str]:
    """Names of the speakers whose A2DP transport on `adapter` is in one of `states`."""
    return sorted(
        s.name
        for s in speakers
        if s.adapter == adapter and s.transport is not None and s.transport.state in states
    )


def refusal(adapter: str, speakers: Iterable[Speaker]) -> str | None:
    """Why BLE scanning must not start on `adapter` (it streams A2DP), or None when it may."""
    names = streaming_through(adapter, speakers, AUDIO_STATES)
    if not names:
        return None
    return (
        f"not scanning for BLE on {adapter}: it streams A2DP to {', '.join(names)}, and "
        "scanning there makes the audio stutter; use another adapter with --ble, or add "
        "--ble-force"
    )


class BleUnavailable(Exception):
    """bleak cannot scan; the message says why and what to do, in one line."""


def explain(exc: BaseException, adapter: str) -> str:
    """One line for an error bleak (or the bus below it) raised while scanning."""
    try:
        from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError
    except ImportError:  # pragma: no cover - bleak is a dependency
        return f"BLE off: bleak is not installed (pip install bleak): {exc}"
    where = f"BLE off on {adapter}"
    if isinstance(exc, BleakDBusError):
        name = exc.dbus_error
        if name in (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.NameHasNoOwner",
        ):
            return f"{where}: BlueZ is not running (sudo systemctl start bluetooth)"
        if name == "org.freedesktop.DBus.Error.AccessDenied":
            return (
                f"{where}: permission denied by the D-Bus policy: run as root or as a user "
                "in group 'bluetooth'"
            )
        if name == "org.bluez.Error.NotReady":
            return f"{where}: the adapter is powered off (bluetoothctl power on)"
        if name == "org.freedesktop.DBus.Error.UnknownObject":
            return f"{where}: BlueZ has no adapter {adapter} (see `bluetoothctl list`)"
        detail = exc.dbus_error_details or ""
        return f"{where}: BlueZ refused to scan: {name}{f' ({detail})' if detail else ''}"
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return f"{where}: {exc.args[0] if exc.args else exc} ({exc.reason.name.lower()})"
    if isinstance(exc, BleakError):
        text = str(exc.args[0]) if exc.args else str(exc)
        if "not found" in text and "adapter" in text:
            return f"{where}: BlueZ has no adapter {adapter} (see `bluetoothctl list`)"
        return f"{where}: {text}"
    if isinstance(exc, PermissionError):
        return (
            f"{where}: permission denied on the system bus ({exc.strerror or exc}): run as a "
            "user in group 'bluetooth' or with sudo"
        )
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return (
            f"{where}: no system D-Bus to reach BlueZ ({exc.strerror or exc}): is dbus "
            "running? (sudo systemctl start dbus)"
        )
    if isinstance(exc, TimeoutError):
        return f"{where}: BlueZ did not answer within {BLE_CALL_TIMEOUT_S:g} s"
    if isinstance(exc, ImportError):
        return f"{where}: bleak cannot be imported ({exc}): pip install bleak"
    return f"{where}: {type(exc).__name__}: {exc}"


def system_bus_for(bus: str) -> str | None:
    """The address bleak must use as its system bus to see the same BlueZ as `--bus`."""
    if bus == "system":
        return None
    if bus == "session":
        return os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    return bus


class BlePresence:
    """A bleak scanner on one adapter feeding a PresenceTable (and `on_advert`, if given)."""

    def __init__(
        self,
        adapter: str,
        *,
        bus: str = "system",
        on_advert: AdvertSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.adapter = adapter
        self.bus = bus
        self.on_advert = on_advert
        self.clock = clock
        self.table = PresenceTable()
        self._scanner: Any = None

    @property
    def scanning(self) -> bool:
        return self._scanner is not None

    async def start(self) -> None:
        """Start scanning; BleUnavailable (one line) when bleak cannot."""
        if self._scanner is not None:
            return
        address = system_bus_for(self.bus)
        if address:
            # bleak always talks to "the system bus" and reads its address from here; a demo
            # or test bus must be named in the environment before bleak connects.
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
        try:
            from bleak import BleakScanner

            scanner = BleakScanner(self._detected, bluez={"adapter": self.adapter})
            async with asyncio.timeout(BLE_CALL_TIMEOUT_S):
                await scanner.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise BleUnavailable(explain(exc, self.adapter)) from exc
        self._scanner = scanner

    async def stop(self) -> None:
        """Stop scanning; errors (BlueZ already gone) are ignored: the scan ends either way."""
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(BLE_CALL_TIMEOUT_S):
                await scanner.stop()

    def _detected(self, device: Any, advert: Any) -> None:
        """bleak's callback: any Device1 change on the adapter. Only RSSI means an advert."""
        platform: tuple[Any, ...] = tuple(getattr(advert, "platform_data", ()))
        props = platform[1] if len(platform) > 1 and isinstance(platform[1], dict) else {}
        if "RSSI" not in props:
            return
        now = self.clock()
        self.table.observe(device.address, int(advert.rssi), now)
        if self.on_advert is not None:
            self.on_advert(device.address, int(advert.rssi), now)


class BleScan:
    """Runs a BlePresence only while its adapter streams nothing (unless forced).

    States: `waiting` (fleet not known yet), `scanning`, `refused` (the adapter streamed when
    asked; final), `paused` (a speaker began streaming through it; resumes when none does),
    `error` (bleak cannot scan; final). `status` says it in words.
    """

    def __init__(self, presence: BlePresence, *, force: bool = False) -> None:
        self.presence = presence
        self.force = force
        self.state = "waiting"
        self.status = f"BLE on {presence.adapter}: waiting for the fleet"
        #: Set once the first decision (scanning, refused, error) is made.
        self.decided = asyncio.Event()

    async def follow(self, speakers: Iterable[Speaker]) -> str | None:
        """Start, pause or resume scanning for the fleet as it is; the new status if changed."""
        adapter = self.presence.adapter
        speakers = list(speakers)
        if self.state in ("refused", "error"):
            return None
        if self.state == "waiting":
            reason = None if self.force else refusal(adapter, speakers)
            if reason is not None:
                return self._set("refused", reason)
            return await self._start(f"BLE scanning on {adapter}")
        if self.force:
            return None
        busy = streaming_through(adapter, speakers, AUDIO_STATES)
        if self.state == "scanning" and busy:
            await self.presence.stop()
            return self._set(
                "paused",
                f"BLE scanning on {adapter} paused: {', '.join(busy)} started streaming "
                "through it (scanning would make the audio stutter)",
            )
        if self.state == "paused" and not busy:
            return await self._start(f"BLE scanning on {adapter} resumed: nothing streams there")
        return None

    async def stop(self) -> None:
        await self.presence.stop()

    async def _start(self, words: str) -> str | None:
        try:
            await self.presence.start()
        except BleUnavailable as exc:
            return self._set("error", str(exc))
        forced = " (forced: audio on it may stutter)" if self.force else ""
        return self._set("scanning", words + forced)

    def _set(self, state: str, status: str) -> str:
        self.state, self.status = state, status
        self.decided.set()
        return status


#: BleScan's states as source states (refused and error are final).
SCAN_STATES: Final = {
    "waiting": SourceState.CONNECTING,
    "scanning": SourceState.CONNECTED,
    "paused": SourceState.WAITING,
    "refused": SourceState.ERROR,
    "error": SourceState.ERROR,
}


class BleSource(Source):
    """BLE presence as a Monitor source: once the fleet is known, on every tick, scanning
    follows what streams through its adapter; presence shows in the snapshot's rows."""

    name = "BLE"

    def __init__(self, scan: BleScan) -> None:
        self.scan = scan
        self._ticked = asyncio.Event()

    @property
    def status(self) -> SourceStatus:
        return SourceStatus(SCAN_STATES.get(self.scan.state, SourceState.ERROR), self.scan.status)

    async def run(self) -> None:
        """Start scanning once the fleet is known; pause it while its adapter streams."""
        scan, sink = self.scan, self.sink
        try:
            while not await sink.fleet_ready(1.0):
                pass
            seen = (-1, frozenset[str]())
            while True:
                status = await scan.follow(sink.speakers.values())
                table = scan.presence.table
                now_seen = (table.version, table.present_set(scan.presence.clock()))
                if status is not None or now_seen != seen:
                    seen = now_seen
                    sink.feed(Shown())  # RSSI and presence are shown: repaint
                if status is not None and (scan.state != "scanning" or "resumed" in status):
                    # Refused, paused, resumed, failed: the operator must read it.
                    sink.feed(Warn(status))
                self._ticked.clear()
                await self._ticked.wait()
        finally:
            await scan.stop()

    def tick(self, now: float) -> None:
        self._ticked.set()

    def view(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        table = self.scan.presence.table
        speakers = tuple(_with_presence(s, table, snapshot.t) for s in snapshot.speakers)
        return replace(snapshot, speakers=speakers, ble_status=self.scan.status)


def _with_presence(speaker: Speaker, table: PresenceTable, now: float) -> Speaker:
    """The speaker with its BLE RSSI (while present) and last-seen time."""
    sighting = table.sighting(speaker.address)
    if sighting is None:
        return speaker
    rssi = sighting.rssi if table.present(speaker.address, now) else None
    return replace(speaker, rssi=rssi, ble_seen=sighting.seen)
