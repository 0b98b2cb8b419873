"""Monitor: the BlueZ mirror, the dropout detector and the event log wired together once.

The TUI and the headless commands both run a Monitor, so a dropout seen in one is seen the
same way in the other, and every event reaches the log before anyone else sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from core.ble import BleScan, PresenceTable
from core.bluez.client import BluezMirror
from core.config import Config
from core.dropout import DropoutDetector
from core.events import DropoutEvent, Event, ProbeEvent, SpeakerEvent
from core.fleet import FleetState, MediaFacts
from core.model import DropoutSummary, FleetSnapshot, Speaker
from core.probe.drift import ProbeHistory
from core.probe.runner import Backend, ProbeFailed, missed, run_probe, targets_for

#: How often held silences are judged (a tenth of core.dropout.FLEET_STOP_SPREAD_S).
TICK_S = 0.5
#: An HCI source that has not caught up with the present within this long (a capture file
#: nobody writes yet) stops holding verdicts back: BlueZ's word stands alone (s).
HCI_FIRST_SAY_S = 3.0
#: A probe that missed a speaker is re-checked this long after, on that speaker alone, so a
#: miss (a cough, a door) is not held until the next periodic probe (s).
PROBE_RECHECK_S = 8.0
#: Warnings kept for the event log panel (oldest dropped first).
WARNINGS_KEPT = 200
#: Dropouts kept per speaker in a snapshot (the detail view lists them).
RECENT_DROPOUTS = 50

EventSink = Callable[[list[Event]], None]


class EventLog(Protocol):
    """What the Monitor needs from the event store (core.store.EventStore)."""

    def append(self, events: Iterable[Event | dict[str, Any]]) -> None: ...


class MediaRate(Protocol):
    """Media packets/s of one address and its last media packet (Unix s), from HCI."""

    @property
    def pps(self) -> float: ...
    @property
    def last_media_t(self) -> float | None: ...
    @property
    def since(self) -> float | None: ...


class MediaSource(Protocol):
    """A live HCI source (core.hci.live.HciLive): per-address media rates."""

    @property
    def status(self) -> str: ...
    @property
    def caught_up(self) -> bool: ...
    async def run(self) -> None: ...
    def rates(self, now: float) -> Mapping[str, MediaRate]: ...


class Monitor:
    """One source of truth for a running btmon-tui: fleet state, dropouts, the log."""

    def __init__(
        self,
        bus: str,
        *,
        bus_label: str = "",
        include_all: bool = False,
        clock: Callable[[], float] = time.time,
        log: EventLog | None = None,
        on_events: EventSink | None = None,
        config: Config | None = None,
        ble: BleScan | None = None,
        hci: MediaSource | None = None,
    ) -> None:
        self.clock = clock
        #: The live HCI source (`--hci`, `--hci-file`, the demo), None when not asked for.
        self.hci = hci
        #: BLE presence scanning (`--ble`), None when not asked for.
        self.ble = ble
        self.log = log
        self.on_events = on_events
        #: Extra subscribers (a running action waits for its speaker's events here).
        self.listeners: list[EventSink] = []
        self.detector = DropoutDetector()
        #: Every probe seen (live or from the log): the drift panel's data.
        self.probes = ProbeHistory()
        #: What a running probe is doing, in words ("" when none runs).
        self.probing = ""
        #: The fleet: what every source's facts add up to, judged (the Monitor owns it).
        self._state = FleetState(include_all=include_all)
        #: What the operator must read (a source failing, a probe not heard), newest last.
        self.warnings: deque[str] = deque(maxlen=WARNINGS_KEPT)
        self.mirror = BluezMirror(
            bus,
            bus_label=bus_label,
            include_all=include_all,
            clock=clock,
            on_events=self._from_mirror,
            state=self._state,
            warnings=self.warnings,
        )
        #: When the HCI source was started (its first say is awaited up to HCI_FIRST_SAY_S).
        self._hci_started = clock()
        if hci is not None:
            self._state.expect_media()
        #: The pending re-check of a probe's misses (PROBE_RECHECK_S), if any.
        self._recheck: asyncio.Task[None] | None = None
        if config is not None:
            self._state.configure(
                aliases=config.aliases, groups=config.group_of, expected=config.expected
            )

    @property
    def state(self) -> FleetState:
        return self._state

    #: True for a Monitor of live speakers; a replay of a log is not (no actions, no probes).
    live: bool = True

    def changed(self) -> None:
        """Something shown changed outside the fleet's facts (probes, warnings, presence)."""
        self._state.touch()

    @property
    def device_calls(self) -> BluezMirror | None:
        """Where actions call devices (the BlueZ mirror; None when there is no live source)."""
        return self.mirror

    def load_history(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Feed recorded dropouts (from the log) so periods survive a restart; returns count."""
        count = 0
        for record in records:
            kind = record.get("type")
            if kind == "dropout":
                self.detector.observe(record, float(record.get("t", 0.0)))
                count += 1
            elif kind == "probe":
                self.probes.load([record])
                count += 1
        return count

    def record_probe(self, event: ProbeEvent) -> ProbeEvent:
        """A finished probe: logged, added to the drift history; a speaker it played to but
        did not hear is `stalled` and has a `probe` dropout (DESIGN §3, §4.3). Returns it as
        published (stamped with when its result was known, `played_t` when it sounded)."""
        now = self.clock()
        if event.played_t is None:
            # Published now: its line's `t` is when the result was known (stream order).
            event = replace(event, t=max(now, event.t), played_t=event.t)
        self.probes.add(event)
        not_heard = missed(event)
        state = self._state
        probed = frozenset(r.address for r in event.results)
        changes = state.set_probe_missed(not_heard, now, event.played, probed=probed)
        dropouts: list[DropoutEvent] = []
        names = {r.address: r.name for r in event.results}
        for address in sorted(not_heard):
            if state.probe_miss_contradicted(address):
                # HCI saw its media flow after the probe played: the fresher, stronger
                # source wins; the miss is the room's or the microphone's, not a dropout.
                self.warnings.append(
                    f"probe did not hear {names.get(address, address)}, but its media flows "
                    "on HCI: check its volume and that the microphone can hear it"
                )
                continue
            dropouts.extend(self.detector.probe_missed(address, event.played, now))
        # The verdicts the probe changed (stalled, or streaming again: that ends the dropout).
        dropouts.extend(self.detector.observe_events(changes, now))
        self.changed()  # the drift panel changed
        self._publish([event, *changes, *dropouts, *self._annotations(changes, dropouts, now)])
        return event

    async def probe(
        self, backend: Backend, only: Sequence[str] = (), *, recheck: bool = True
    ) -> ProbeEvent:
        """Probe the speakers that should play (or `only` these addresses) now; the result
        is recorded, and a speaker it did not hear is probed once more PROBE_RECHECK_S
        later (`recheck`). Raises ProbeFailed (recorded too) when the probe cannot run."""
        targets = targets_for(self.snapshot().speakers, only)
        if not targets:
            message = (
                "no speaker is playing: start playback first (a probe only plays to "
                "speakers whose A2DP transport is active)"
                if not only
                else f"not a known speaker: {', '.join(only)}"
            )
            self.probe_failed(message)
            raise ProbeFailed(message)
        self.probing = f"probing {len(targets)} speaker{'s' if len(targets) > 1 else ''}…"
        self.changed()
        try:
            event = await run_probe(backend, targets, clock=self.clock)
        except ProbeFailed as exc:
            self.probe_failed(str(exc))
            raise
        except Exception as exc:  # a bug or an odd device must not end monitoring
            message = f"the probe failed unexpectedly: {type(exc).__name__}: {exc}"
            self.probe_failed(message)
            raise ProbeFailed(message) from exc
        finally:
            self.probing = ""
            self.changed()
        event = self.record_probe(event)
        silent = frozenset(self.state.probe_missed) & missed(event)
        if recheck and silent:
            if self._recheck is not None:
                self._recheck.cancel()
            self._recheck = asyncio.create_task(self._recheck_later(backend, silent))
        return event

    async def _recheck_later(self, backend: Backend, addresses: frozenset[str]) -> None:
        """Probe the speakers a probe missed once more, alone, while they still should play:
        a miss is confirmed or cleared within seconds, not held until the next probe."""
        await asyncio.sleep(PROBE_RECHECK_S)
        while self.probing:
            await asyncio.sleep(TICK_S)
        playing = {
            s.address
            for s in self.state.speakers.values()
            if s.transport is not None and s.transport.sending
        }
        still = sorted(a for a in addresses if a in self.state.probe_missed and a in playing)
        if still:
            with contextlib.suppress(ProbeFailed):
                await self.probe(backend, still, recheck=False)

    def probe_failed(self, message: str) -> None:
        """A probe that could not run: shown in the drift panel and the log's warnings
        (once while the same problem repeats, e.g. periodic probes while nothing plays)."""
        if message != self.probes.problem:
            self.warnings.append(f"probe failed: {message}")
        self.probes.problem = message
        self.changed()

    async def run(self) -> None:
        ticker = asyncio.create_task(self._tick())
        mirror = asyncio.create_task(self.mirror.run())
        ble = asyncio.create_task(self._follow_ble()) if self.ble is not None else None
        hci = asyncio.create_task(self._run_hci()) if self.hci is not None else None
        try:
            # The log starts with the whole fleet (names, verdicts) once BlueZ answered.
            while not await self.mirror.wait_ready(1.0):
                if mirror.done():
                    break
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # Python 3.11's wait_for swallows a cancel that lands as its wait completes;
                # without this, `await mirror` below would outlive the cancel forever.
                raise asyncio.CancelledError
            if self.log is not None and not mirror.done():
                self.log.append([self._state.snapshot_event(self.clock())])
            await mirror
        finally:
            ticker.cancel()
            mirror.cancel()
            if hci is not None:
                hci.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await hci
            if ble is not None:
                ble.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ble

    async def wait_ready(self, timeout: float) -> bool:
        return await self.mirror.wait_ready(timeout)

    def snapshot(self) -> FleetSnapshot:
        snap = self.mirror.snapshot()
        snap = replace(snap, dropouts=self.dropout_summaries(snap.t))
        if self.ble is not None:
            table = self.ble.presence.table
            speakers = tuple(_with_presence(s, table, snap.t) for s in snap.speakers)
            snap = replace(snap, speakers=speakers, ble_status=self.ble.status)
        if self.hci is not None:
            snap = replace(snap, hci_status=self.hci.status)
        if self.probes.latest is not None or self.probes.problem or self.probing:
            snap = replace(snap, drift=self.probes.summary(), probing=self.probing)
        return snap

    def has_periods(self) -> bool:
        """True when any speaker has a dropout period (its countdown needs redrawing)."""
        return any(self.detector.period(a) is not None for a in self.detector.speakers)

    def dropout_summaries(self, now: float) -> dict[str, DropoutSummary]:
        out: dict[str, DropoutSummary] = {}
        for address in self.detector.speakers:
            history = self.detector.dropouts(address)
            if not history:
                continue
            period = self.detector.period(address)
            out[address] = DropoutSummary(
                count=len(history),
                last=history[-1].start,
                period_s=period.period_s if period else None,
                confidence=period.confidence if period else 0.0,
                next_expected=period.next_expected(now) if period else None,
                recent=tuple((d.start, d.kind, d.duration_s) for d in history[-RECENT_DROPOUTS:]),
                previous_period_s=getattr(period, "previous_s", None) if period else None,
            )
        return out

    # -- internals -----------------------------------------------------------------------
    def _from_mirror(self, events: list[Event]) -> None:
        now = self.clock()
        dropouts = self.detector.observe_events(_fleet_only(events), now)
        self._publish(events + dropouts + self._annotations(events, dropouts, now))

    def _annotations(
        self, events: list[Event], dropouts: list[DropoutEvent], now: float
    ) -> list[Event]:
        """Speaker events carrying last_dropout/period_s for speakers whose facts moved."""
        addresses = {d.address for d in dropouts}
        addresses |= {
            a
            for e in events
            if isinstance(e, SpeakerEvent) and (a := e.speaker.address) in self.detector.speakers
        }
        out: list[Event] = []
        for address in sorted(addresses):
            period = self.detector.period(address)
            out.extend(
                self._state.annotate(
                    address,
                    self.detector.last_dropout(address),
                    round(period.period_s, 1) if period else None,
                    now,
                )
            )
        return out

    def publish(self, events: list[Event]) -> None:
        """Log and hand on events that come from elsewhere (actions, probes); an operator's
        resync or disconnect retracts the dropout its disconnect looked like (old BlueZ)."""
        now = self.clock()
        dropouts = self.detector.observe_events([e for e in events if e.type == "action"], now)
        if dropouts:
            events = [*events, *dropouts, *self._annotations([], dropouts, now)]
        self._publish(events)

    def _publish(self, events: list[Event]) -> None:
        if not events:
            return
        for listener in list(self.listeners):
            listener(events)
        if self.log is not None:
            self.log.append(events)
        if self.on_events is not None:
            self.on_events(events)

    async def _follow_ble(self) -> None:
        """Start BLE scanning once the fleet is known; pause it while its adapter streams."""
        assert self.ble is not None
        try:
            while not await self.mirror.wait_ready(1.0):
                pass
            seen = (-1, frozenset[str]())
            while True:
                status = await self.ble.follow(self._state.speakers.values())
                table = self.ble.presence.table
                now_seen = (table.version, table.present_set(self.clock()))
                if status is not None or now_seen != seen:
                    seen = now_seen
                    self.changed()  # RSSI and presence are shown: repaint
                if status is not None and (self.ble.state != "scanning" or "resumed" in status):
                    # Refused, paused, resumed, failed: the operator must read it.
                    self.warnings.append(status)
                await asyncio.sleep(TICK_S)
        finally:
            await self.ble.stop()

    async def _run_hci(self) -> None:
        """Run the HCI source; its failure is a warning, monitoring goes on without it."""
        assert self.hci is not None
        try:
            await self.hci.run()
        except Exception as exc:  # any source failure is shown, never fatal
            # The source's status already says what went wrong (and what to do) when it
            # knows; otherwise the exception does.
            status = self.hci.status
            self.warnings.append(status if str(exc) in status else f"HCI: {exc}")
            self.changed()
            return
        if self.hci.status:
            self.warnings.append(self.hci.status)
            self.changed()

    def _media(self, now: float) -> list[Event]:
        """The HCI source's rates folded into the fleet (media_pps, `stalled`)."""
        if self.hci is None:
            return []
        rates = self.hci.rates(now)
        facts = {a: MediaFacts(r.pps, r.last_media_t, r.since) for a, r in rates.items()}
        ready = self.hci.caught_up or now - self._hci_started >= HCI_FIRST_SAY_S
        return self._state.set_media(facts, now, ready=ready)

    def media_settled(self) -> bool:
        """True when no verdict waits for the HCI source's word any more (`watch` waits for
        this, bounded, so that its first snapshot is complete)."""
        state = self._state
        return state.media_ready and not state.awaiting_media

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock()
            media = self._media(now)
            if media:
                self._from_mirror(media)
            dropouts = self.detector.tick(now)
            if dropouts:
                self._publish([*dropouts, *self._annotations([], dropouts, now)])


def _fleet_only(events: list[Event]) -> list[Event]:
    """Events the dropout detector may see: none about an unpaired device (`--all` lists
    them; a neighbour's speaker going quiet is not our dropout), except its removal."""
    return [
        e
        for e in events
        if not isinstance(e, SpeakerEvent) or e.speaker.paired or not e.speaker.connected
    ]


def _with_presence(speaker: Speaker, table: PresenceTable, now: float) -> Speaker:
    """The speaker with its BLE RSSI (while present) and last-seen time."""
    sighting = table.sighting(speaker.address)
    if sighting is None:
        return speaker
    rssi = sighting.rssi if table.present(speaker.address, now) else None
    return replace(speaker, rssi=rssi, ble_seen=sighting.seen)
