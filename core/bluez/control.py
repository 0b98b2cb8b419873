"""Actions on one speaker — resync, connect, disconnect — that coexist with bluetoothd.

bluetoothd reconnects speakers by itself, answers InProgress while it does, and may restart
mid-action. Each action is a short sequence of D-Bus calls and waits on the speaker's events,
with a timeout per step; every way it can end becomes an ActionEvent with what BlueZ said
(`detail`) and what it means for the operator (`message`). Never a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from core.bluez.bus import DBusCallError, call_checked, method_call
from core.bluez.defs import A2DP_SINK_UUID, BLUEZ_SERVICE, DEVICE
from core.events import ActionEvent, Event
from core.model import Speaker, Verdict
from core.monitor import Monitor

#: BlueZ error names -> what the operator should read (detail strings come from BlueZ).
ERROR_WORDS: Final[dict[str, str]] = {
    "org.bluez.Error.NotReady": "the adapter is not ready (powered off?): `bluetoothctl power on`",
    "org.bluez.Error.InProgress": "BlueZ is already connecting this speaker",
    "org.bluez.Error.AlreadyConnected": "already connected",
    "org.bluez.Error.NotConnected": "not connected",
    "org.bluez.Error.DoesNotExist": "BlueZ no longer knows this speaker (unpaired?)",
    "org.bluez.Error.AuthenticationFailed": "pairing is broken: remove and pair the speaker again",
    "org.freedesktop.DBus.Error.AccessDenied": (
        "not allowed by the D-Bus policy: run as root or as a user in group 'bluetooth'"
    ),
    "org.freedesktop.DBus.Error.ServiceUnknown": "bluetoothd is not running (restarted?)",
    "org.freedesktop.DBus.Error.UnknownObject": "bluetoothd restarted or removed the speaker",
    "org.freedesktop.DBus.Error.NoReply": "BlueZ did not answer",
    "org.freedesktop.DBus.Error.Disconnected": "lost the connection to D-Bus",
}
#: org.bluez.Error.Failed detail strings (BlueZ >= 5.62) -> operator words.
FAILED_WORDS: Final[dict[str, str]] = {
    "br-connection-page-timeout": "the speaker did not answer: is it on and in range?",
    "br-connection-profile-unavailable": "the speaker offers no audio profile right now",
    "br-connection-refused": "the speaker refused the connection (busy with another host?)",
    "br-connection-canceled": "the connection was cancelled",
    "br-connection-key-missing": "pairing keys are missing: pair the speaker again",
    "br-connection-adapter-not-powered": "the adapter is off: `bluetoothctl power on`",
    "br-connection-busy": "the adapter is busy; try again in a moment",
    "br-connection-unknown": "the connection failed for an unknown reason",
}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-step limits of an action (seconds); the config file can change them."""

    call_s: float = 25.0
    disconnect_s: float = 10.0
    transport_s: float = 8.0
    active_s: float = 8.0
    attempts: int = 3


class ActionFailed(Exception):
    """An action step failed; carries BlueZ's detail and the operator's message."""

    def __init__(self, message: str, detail: str | None = None, name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        #: The D-Bus error name when the failure was an error reply.
        self.name = name


def explain(error: DBusCallError) -> tuple[str, str]:
    """(detail, message) for a D-Bus error reply."""
    if error.name == "org.bluez.Error.Failed":
        detail = error.text or "failed"
        return detail, FAILED_WORDS.get(detail, f"BlueZ says: {detail}")
    detail = error.text or error.name.rsplit(".", 1)[-1]
    return detail, ERROR_WORDS.get(error.name, f"{error.name}: {error.text}".strip(": "))


ProgressSink = Callable[[str, str], None]  # (address, step in words)


class Controller:
    """Runs actions against the speakers a Monitor sees; one action per speaker at a time."""

    def __init__(
        self,
        monitor: Monitor,
        *,
        timeouts: Timeouts | None = None,
        on_progress: ProgressSink | None = None,
    ) -> None:
        self.monitor = monitor
        self.timeouts = timeouts or Timeouts()
        self.on_progress = on_progress
        #: address -> the step the running action is at (shown in the table).
        self.steps: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[ActionEvent]] = {}

    # -- public ------------------------------------------------------------------------
    def busy(self, address: str) -> bool:
        return address in self._tasks and not self._tasks[address].done()

    def start(self, action: str, address: str) -> asyncio.Task[ActionEvent] | None:
        """Start `action` in the background; None when this speaker already has one running."""
        if self.busy(address):
            return None
        task = asyncio.get_running_loop().create_task(self.run(action, address))
        self._tasks[address] = task
        return task

    def cancel(self, address: str) -> bool:
        task = self._tasks.get(address)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def run(self, action: str, address: str) -> ActionEvent:
        """Run one action to its end and publish its ActionEvent (also returned)."""
        started = time.monotonic()
        steps = {"resync": self._resync, "connect": self._connect, "disconnect": self._disconnect}
        try:
            detail, message = await steps[action](address)
            result = "ok"
        except ActionFailed as exc:
            result, detail, message = "error", exc.detail, exc.message
        except asyncio.CancelledError:
            result, detail, message = "error", "cancelled", "cancelled by the operator"
        finally:
            self.steps.pop(address, None)
            self._progress(address, "")
        event = ActionEvent(
            self.monitor.clock(),
            address,
            action,
            result,
            detail,
            message,
            round(time.monotonic() - started, 2),
        )
        self.monitor.publish([event])
        return event

    # -- actions -----------------------------------------------------------------------
    async def _resync(self, address: str) -> tuple[str | None, str]:
        speaker = self._speaker(address)
        if speaker.connected:
            await self._disconnect(address)
        return await self._connect(address, resync=True)

    async def _disconnect(self, address: str) -> tuple[str | None, str]:
        speaker = self._speaker(address)
        if not speaker.connected:
            return "not-connected", "was not connected"
        self._progress(address, "disconnecting…")
        with self._watch(address) as seen:
            try:
                await self._call(speaker, "Disconnect")
            except ActionFailed as exc:
                if exc.name != "org.bluez.Error.NotConnected":
                    raise
            # Connected -> false may have come and gone (bluetoothd reconnects by itself).
            await self._until(
                lambda: seen.disconnected or not self._speaker(address).connected,
                self.timeouts.disconnect_s,
                "the speaker did not disconnect",
            )
        return None, "disconnected"

    async def _connect(self, address: str, *, resync: bool = False) -> tuple[str | None, str]:
        attempts = self.timeouts.attempts
        last: ActionFailed | None = None
        for attempt in range(1, attempts + 1):
            speaker = self._speaker(address)
            if speaker.connected and resync and attempt == 1 and speaker.transport is not None:
                # bluetoothd brought it back before we asked: that is what we wanted.
                break
            self._progress(
                address, "reconnecting…" if attempt == 1 else f"reconnecting {attempt}/{attempts}…"
            )
            try:
                await self._call(speaker, "Connect")
                last = None
                break
            except ActionFailed as exc:
                if exc.name == "org.bluez.Error.AlreadyConnected":
                    last = None
                    break
                if exc.name == "org.bluez.Error.InProgress":
                    await self._until(
                        lambda: self._speaker(address).connected,
                        self.timeouts.call_s,
                        "BlueZ's own connect did not finish",
                    )
                    last = None
                    break
                last = exc
                if exc.detail not in FAILED_WORDS or attempt == attempts:
                    raise
                await asyncio.sleep(1.0)
        if last is not None:
            raise last
        return await self._await_audio(address)

    async def _await_audio(self, address: str) -> tuple[str | None, str]:
        self._progress(address, "waiting for A2DP…")
        if not await self._wait(
            lambda: self._speaker(address).transport is not None, self.timeouts.transport_s
        ):
            # A known BlueZ dual-role regression: Connect succeeds without A2DP.
            self._progress(address, "connecting A2DP…")
            await self._call(self._speaker(address), "ConnectProfile", "s", [A2DP_SINK_UUID])
            await self._until(
                lambda: self._speaker(address).transport is not None,
                self.timeouts.transport_s,
                "connected, but no A2DP stream was set up",
            )
        if not self._fleet_playing(address):
            return None, "connected; A2DP ready (nothing is playing, so it stays idle)"
        self._progress(address, "waiting for audio…")
        if not await self._wait(
            lambda: self._speaker(address).verdict == Verdict.STREAMING, self.timeouts.active_s
        ):
            raise ActionFailed(
                "connected, but no audio is sent to it (A2DP stays idle): restart playback "
                "or check the audio server's output routing",
                "transport-idle",
            )
        return None, "streaming again"

    # -- helpers -----------------------------------------------------------------------
    def _speaker(self, address: str) -> Speaker:
        for speaker in self.monitor.state.speakers.values():
            if speaker.address.upper() == address.upper():
                return speaker
        if not self.monitor.state.source_available:
            raise ActionFailed(
                f"BlueZ is not available: {self.monitor.state.source.detail}", "no-bluez"
            )
        raise ActionFailed(
            f"no paired speaker {address} (see `bluetoothctl devices Paired`)", "unknown-address"
        )

    def _fleet_playing(self, address: str) -> bool:
        return any(
            s.verdict == Verdict.STREAMING and s.address != address
            for s in self.monitor.state.speakers.values()
        )

    async def _call(
        self, speaker: Speaker, member: str, signature: str = "", body: list[object] | None = None
    ) -> None:
        bus = self.monitor.mirror.bus
        if bus is None:
            raise ActionFailed("not connected to D-Bus", "no-bus")
        msg = method_call(BLUEZ_SERVICE, speaker.path, DEVICE, member, signature, body)
        try:
            async with asyncio.timeout(self.timeouts.call_s):
                await call_checked(bus, msg)
        except TimeoutError:
            raise ActionFailed(
                f"BlueZ did not answer {member} within {self.timeouts.call_s:g} s", "timeout"
            ) from None
        except DBusCallError as exc:
            detail, message = explain(exc)
            raise ActionFailed(message, detail, exc.name) from None

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _until(self, predicate: Callable[[], bool], timeout: float, failure: str) -> None:
        if not await self._wait(predicate, timeout):
            raise ActionFailed(f"{failure} within {timeout:g} s", "timeout")

    def _progress(self, address: str, step: str) -> None:
        if step:
            self.steps[address] = step
        if self.on_progress is not None:
            self.on_progress(address, step)

    def _watch(self, address: str) -> _Seen:
        return _Seen(self.monitor, address)


class _Seen:
    """Context manager recording whether a speaker's link went down while it is open."""

    def __init__(self, monitor: Monitor, address: str) -> None:
        self.monitor = monitor
        self.address = address.upper()
        self.disconnected = False

    def _listen(self, events: list[Event]) -> None:
        for event in events:
            data = event.to_json()
            if (
                data.get("type") == "device"
                and data.get("connected") is False
                and str(data.get("address", "")).upper() == self.address
            ):
                self.disconnected = True

    def __enter__(self) -> _Seen:
        self.monitor.listeners.append(self._listen)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.monitor.listeners.remove(self._listen)
