"""Actions on one speaker — resync, connect, disconnect — that coexist with bluetoothd.

bluetoothd reconnects speakers by itself, answers InProgress while it does, and may restart
mid-action. Each action is a short sequence of D-Bus calls and waits on the speaker's events,
with a timeout per step; every way it can end becomes an ActionEvent with what BlueZ said
(`detail`) and what it means for the operator (`message`). Never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from core.bluez.bus import DBusCallError
from core.bluez.defs import A2DP_SINK_UUID
from core.bluez.outcomes import (
    ERROR_WORDS,
    FAILED_WORDS,
    RESTARTED,
    RETRY_DETAILS,
    ActionFailed,
    Timeouts,
    explain,
)
from core.fleet.events import ActionEvent, Event
from core.fleet.model import Speaker, Verdict
from core.fleet.state import FleetState
from core.sources import DeviceCalls

__all__ = [
    "ERROR_WORDS",
    "FAILED_WORDS",
    "ActionFailed",
    "Controller",
    "DeviceCalls",
    "Timeouts",
    "explain",
]

ACTIONS: Final = ("resync", "connect", "disconnect")
IN_PROGRESS: Final = "org.bluez.Error.InProgress"
ALREADY: Final = "org.bluez.Error.AlreadyConnected"
STREAMING: Final = Verdict.STREAMING
CANCELLED: Final = ("cancelled", "cancelled by the operator")
log = logging.getLogger(__name__)


ProgressSink = Callable[[str, str], None]  # (address, step in words)
Check = Callable[[Speaker], bool]


class ActionHost(Protocol):
    """What the Controller needs of the Monitor: the fleet to read, a way to call devices (a
    source's control), events to watch and to publish, and the clock (core.monitor.Monitor
    is one)."""

    listeners: list[Callable[[list[Event]], None]]
    clock: Callable[[], float]

    @property
    def state(self) -> FleetState: ...

    @property
    def device_calls(self) -> DeviceCalls | None: ...

    def publish(self, events: list[Event]) -> None: ...


class Controller:
    """Runs actions against the speakers a Monitor sees; one action per speaker at a time."""

    def __init__(
        self,
        monitor: ActionHost,
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
        self._watches: dict[str, _Watch] = {}
        self._cancel_why: dict[str, tuple[str, str]] = {}

    # -- public ------------------------------------------------------------------------
    def busy(self, address: str) -> bool:
        task = self._tasks.get(address.upper())
        return task is not None and not task.done()

    def start(self, action: str, address: str) -> asyncio.Task[ActionEvent] | None:
        """Start `action` in the background; None when this speaker already has one running."""
        if self.busy(_checked(action, address)):
            return None
        task = asyncio.get_running_loop().create_task(self.run(action, address))
        task.add_done_callback(lambda t: self._cancelled_early(t, action, address.upper()))
        self._tasks[address.upper()] = task
        return task

    def _cancelled_early(self, task: asyncio.Task[ActionEvent], action: str, address: str) -> None:
        # Cancelled before it ran a step, `run` could not say so: its event still goes out.
        if task.cancelled():
            why = self._cancel_why.pop(address, CANCELLED)
            self._publish(action, address, "error", *why, time.monotonic())

    def cancel(
        self, address: str, detail: str = "cancelled", message: str = "cancelled by the operator"
    ) -> bool:
        """Stop the running action; it ends as an error with this detail and message."""
        task = self._tasks.get(address.upper())
        if task is None or task.done():
            return False
        self._cancel_why[address.upper()] = (detail, message)
        task.cancel()
        return True

    async def run(self, action: str, address: str) -> ActionEvent:
        """Run one action to its end and publish its ActionEvent (also returned)."""
        address = _checked(action, address)
        started = time.monotonic()
        steps = {"resync": self._resync, "connect": self._connect, "disconnect": self._disconnect}
        watch = self._watches[address] = _Watch(address)
        self.monitor.listeners.append(watch)
        try:
            detail, message = await steps[action](address)
            result = "ok"
        except ActionFailed as exc:
            result, detail, message = "error", exc.detail, exc.message
        except asyncio.CancelledError:
            # An operator's cancel (or the caller's deadline) ends the action, not the caller.
            result, (detail, message) = "error", self._cancel_why.pop(address, CANCELLED)
        except Exception as exc:  # a bug must still end as an event, never a traceback
            log.exception("%s %s failed unexpectedly", action, address)
            result, detail, message = "error", type(exc).__name__, f"unexpected error: {exc}"
        finally:
            self.monitor.listeners.remove(watch)
            self._watches.pop(address, None)
            self._cancel_why.pop(address, None)
            self.steps.pop(address, None)
            self._progress(address, "")
        return self._publish(action, address, result, detail, message, started)

    def _publish(
        self, action: str, address: str, result: str, detail: str | None, message: str, t0: float
    ) -> ActionEvent:
        duration = round(time.monotonic() - t0, 2)
        event = ActionEvent(
            self.monitor.clock(), address, action, result, detail, message, duration
        )
        self.monitor.publish([event])
        return event

    # -- actions -----------------------------------------------------------------------
    async def _resync(self, address: str) -> tuple[str | None, str]:
        if self._speaker(address).connected:
            await self._disconnect(address)
            self._progress(address, "disconnected; settling…")
            await self._wait(address, lambda s: False, self.timeouts.settle_s)
        return await self._connect(address, again=True)

    async def _disconnect(self, address: str) -> tuple[str | None, str]:
        speaker = self._speaker(address)
        if not speaker.connected:
            return "not-connected", "was not connected"
        self._progress(address, "disconnecting…")
        seen = self._watches[address]
        try:
            await self._call(speaker, "Disconnect")
        except ActionFailed as exc:
            if exc.name != "org.bluez.Error.NotConnected":
                raise
        # Connected -> false may have come and gone (the speaker may reconnect by itself).
        gone: Check = lambda s: seen.disconnected or not s.connected  # noqa: E731
        await self._wait(
            address, gone, self.timeouts.disconnect_s, "the speaker did not disconnect"
        )
        return None, "disconnected"

    async def _connect(self, address: str, *, again: bool = False) -> tuple[str | None, str]:
        attempts = self.timeouts.attempts
        detail: str | None = None
        note = ""
        for attempt in range(1, attempts + 1):
            verb = "reconnecting" if again else "connecting"
            self._progress(address, f"{verb}…" if attempt == 1 else f"{verb} {attempt}/{attempts}…")
            try:
                await self._call(self._speaker(address), "Connect")
                break
            except ActionFailed as exc:
                if exc.name == ALREADY or exc.detail == "br-connection-already-connected":
                    # bluetoothd (or the speaker) brought it back before we asked: done.
                    note = "it had reconnected by itself" if again else "it was connected"
                    detail = exc.detail
                    break
                if exc.name == IN_PROGRESS:
                    self._progress(address, "BlueZ is already connecting it; waiting…")
                    if await self._wait(address, lambda s: s.connected, self.timeouts.call_s):
                        detail, note = exc.detail, "BlueZ connected it by itself"
                        break
                    exc = ActionFailed(
                        f"BlueZ's own connect did not finish within {self.timeouts.call_s:g} s",
                        "timeout",
                    )
                elif exc.detail not in RETRY_DETAILS:
                    raise
                if attempt == attempts:
                    if attempts > 1:
                        exc.message += f" (tried {attempts} times)"
                    raise exc from None
                await self._wait(address, lambda s: False, self.timeouts.retry_s)
        return await self._await_audio(address, detail, note, again=again)

    async def _await_audio(
        self, address: str, detail: str | None, note: str, *, again: bool = False
    ) -> tuple[str | None, str]:
        notes = [note] if note else []
        a2dp: Check = lambda s: s.transport is not None  # noqa: E731
        self._progress(address, "waiting for A2DP…")
        if not await self._wait(address, a2dp, self.timeouts.transport_s):
            # A known BlueZ dual-role regression: Connect succeeds without A2DP.
            self._progress(address, "connecting A2DP…")
            try:
                await self._call(self._speaker(address), "ConnectProfile", "s", [A2DP_SINK_UUID])
            except ActionFailed as exc:
                if exc.name not in (IN_PROGRESS, ALREADY):
                    raise
            await self._wait(address, a2dp, self.timeouts.transport_s, "connected, but no A2DP")
            notes.append("A2DP needed its own ConnectProfile")
        speaker = self._speaker(address)
        playing = self._fleet_playing(address)
        starting = speaker.transport is not None and speaker.transport.state == "pending"
        if playing or starting:
            self._progress(address, "waiting for audio…")
            if await self._wait(address, lambda s: s.verdict == STREAMING, self.timeouts.active_s):
                done = "streaming again" if again else "streaming"
                return detail, "; ".join([*notes, done])
            if playing:
                raise ActionFailed(
                    "connected, but no audio is sent to it (A2DP stays idle): restart playback "
                    "or check the audio server's output routing",
                    "transport-idle",
                )
        done = "connected; A2DP ready (nothing is playing, so it stays idle)"
        return detail, "; ".join([*notes, done])

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
            s.verdict == STREAMING and s.address.upper() != address.upper()
            for s in self.monitor.state.speakers.values()
        )

    async def _call(
        self, speaker: Speaker, member: str, signature: str = "", body: list[object] | None = None
    ) -> None:
        calls = self.monitor.device_calls
        if calls is None:
            raise ActionFailed("not connected to D-Bus", "no-bus")
        try:
            async with asyncio.timeout(self.timeouts.call_s):
                await calls.call_device(speaker.path, member, signature, body)
        except TimeoutError:
            raise ActionFailed(
                f"BlueZ did not answer {member} within {self.timeouts.call_s:g} s", "timeout"
            ) from None
        except DBusCallError as exc:
            detail, message = explain(exc)
            seen = self._watches.get(speaker.address.upper())
            if seen is not None and seen.bluez_lost and exc.name.startswith("org.freedesktop"):
                detail, message = "bluez-restarted", RESTARTED
            raise ActionFailed(message, detail, exc.name) from None

    async def _wait(self, address: str, predicate: Check, timeout: float, fail: str = "") -> bool:
        """Poll `predicate(speaker)`: True once true; at `timeout` False, or raise `fail`."""
        seen = self._watches.get(address)
        deadline = time.monotonic() + timeout
        while not predicate(self._speaker(address)):
            if seen is not None and seen.bluez_lost:
                raise ActionFailed(RESTARTED, "bluez-restarted")
            if time.monotonic() >= deadline:
                if fail:
                    raise ActionFailed(f"{fail} within {timeout:g} s", "timeout")
                return False
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return True

    def _progress(self, address: str, step: str) -> None:
        if step:
            self.steps[address] = step
        if self.on_progress is not None:
            self.on_progress(address, step)


def _checked(action: str, address: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    return address.upper()


class _Watch:
    """What happened while an action ran: its speaker's link went down, BlueZ left the bus."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.disconnected = False
        self.bluez_lost = False

    def __call__(self, events: list[Event]) -> None:
        for event in events:
            data = event.to_json() if event.type in ("source", "device") else {}
            if data.get("type") == "source":
                self.bluez_lost |= data.get("state") != "connected"
            elif data.get("connected") is False and data.get("address", "").upper() == self.address:
                self.disconnected = True
