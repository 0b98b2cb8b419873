"""Monitor: the owner of a running btmon-tui's domain — the fleet, dropouts, probes and
warnings — fed by its sources (core.sources: BlueZ, HCI, BLE, the replay of a log).

The TUI and the headless commands both run a Monitor, so a dropout seen in one is seen the
same way in the other, and every event reaches the log before anyone else sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from core.align import keep, plan, stages
from core.align.by_probe import FleetOutput, align_by_probe
from core.align.loop import Round
from core.align.measure import FleetMic, Target
from core.align.server import ServerAlign, server_targets
from core.align.stages import AlignError
from core.ble import BleScan, BleSource
from core.bluez.client import BluezMirror
from core.config import Config
from core.dropouts.detector import DropoutDetector
from core.fleet.events import (
    AlignEvent,
    AlignResult,
    DropoutEvent,
    Event,
    ProbeEvent,
    RawEvent,
    SpeakerEvent,
)
from core.fleet.model import (
    Alignment,
    DropoutSummary,
    FleetSnapshot,
    SourceState,
    SourceStatus,
    Speaker,
    host_key,
)
from core.fleet.state import FleetState
from core.fleet.verdict import PLAYING
from core.hci.source import HciSource, MediaSource
from core.probe.drift import ProbeHistory
from core.probe.runner import (
    Backend,
    ProbeFailed,
    missed,
    run_probe,
    sent_audio,
    targets_for,
)
from core.sources import (
    DeviceCalls,
    Fact,
    Media,
    MediaExpected,
    Record,
    Rewind,
    Shown,
    Source,
    Status,
    Warn,
    apply_to_fleet,
)

#: How often the Monitor ticks: held silences are judged, time-based verdicts re-judged,
#: every source's `tick` called (a tenth of core.dropouts.detector.FLEET_STOP_SPREAD_S).
TICK_S: Final = 0.5
#: An HCI source that has not caught up with the present within this long (a capture file
#: nobody writes yet) stops holding verdicts back: BlueZ's word stands alone (s).
HCI_FIRST_SAY_S = 3.0
#: A probe that missed a speaker is re-checked this long after, on that speaker alone, so a
#: miss (a cough, a door) is not held until the next periodic probe (s).
PROBE_RECHECK_S = 8.0
#: How often saved delays are checked against the audio server (core.align.keep): a speaker
#: that reconnected gets its stage back within this long (s).
KEEP_DELAYS_EVERY_S = 3.0
#: Warnings kept for the event log panel (oldest dropped first).
WARNINGS_KEPT = 200
#: Dropouts kept per speaker in a snapshot (the detail view lists them).
RECENT_DROPOUTS = 50

#: Why probes and alignments do not run from a view of remote hosts only.
REMOTE_PROBES: Final = (
    "probes and alignments run on each host, where its microphone is: run `btmon-tui probe` "
    "or `btmon-tui align` there (e.g. over ssh), or add --host local for this machine's room"
)

EventSink = Callable[[list[Event]], None]

__all__ = ["TICK_S", "EventLog", "MediaSource", "Monitor"]


class EventLog(Protocol):
    """What the Monitor needs from the event store (core.eventlog.store.EventStore)."""

    def append(self, events: Iterable[Event | dict[str, Any]]) -> None: ...


class _Sink:
    """What one source may do to its Monitor (core.sources.SourceSink)."""

    __slots__ = ("_monitor", "_source")

    def __init__(self, monitor: Monitor, source: Source) -> None:
        self._monitor = monitor
        self._source = source

    def feed(self, fact: Fact) -> None:
        self._monitor._take(self._source, fact)

    @property
    def speakers(self) -> Mapping[str, Speaker]:
        return self._monitor.state.speakers

    async def fleet_ready(self, timeout: float) -> bool:
        return await self._monitor.wait_ready(timeout)


class Monitor:
    """One source of truth for a running btmon-tui: fleet state, dropouts, the log."""

    def __init__(
        self,
        bus: str | None = None,
        *,
        sources: Sequence[Source] = (),
        bus_label: str = "",
        include_all: bool = False,
        clock: Callable[[], float] = time.time,
        log: EventLog | None = None,
        on_events: EventSink | None = None,
        config: Config | None = None,
        ble: BleScan | None = None,
        hci: MediaSource | None = None,
        keep_delays: bool = False,
    ) -> None:
        """Watch BlueZ on `bus` (with the HCI reader `hci` and the BLE scan `ble`, if given),
        and/or the given `sources`."""
        self.clock = clock
        #: The live HCI reader (`--hci`, `--hci-file`, the demo), None when not asked for.
        self.hci = hci
        #: BLE presence scanning (`--ble`), None when not asked for.
        self.ble = ble
        self.log = log
        #: Re-apply saved delays when a speaker reconnects (a real host's audio server).
        self.keep_delays = keep_delays
        self.on_events = on_events
        #: Extra subscribers (a running action waits for its speaker's events here).
        self.listeners: list[EventSink] = []
        self.detector = DropoutDetector()
        #: Every probe seen (live or from the log): the drift panel's data.
        self.probes = ProbeHistory()
        #: What a running probe is doing, in words ("" when none runs).
        self.probing = ""
        #: The last alignment that applied or removed delays (live or from the log).
        self.alignment: Alignment | None = None
        #: The fleet: what every source's facts add up to, judged (the Monitor owns it).
        self._state = FleetState(include_all=include_all)
        #: What the operator must read (a source failing, a probe not heard), newest last.
        self.warnings: deque[str] = deque(maxlen=WARNINGS_KEPT)
        #: When media facts were announced (their first say is awaited up to HCI_FIRST_SAY_S).
        self._media_since = clock()
        #: The pending re-check of a probe's misses (PROBE_RECHECK_S), if any.
        self._recheck: asyncio.Task[None] | None = None
        #: Sources whose run() failed: what went wrong, in words.
        self._failed: dict[Source, str] = {}
        #: Sources whose status is the fleet's `source` (they feed Status).
        self._fleet_sources: set[Source] = set()
        #: The BlueZ source built from `bus`, None without one.
        self.bluez = BluezMirror(bus, bus_label=bus_label) if bus is not None else None
        built: list[Source] = [] if self.bluez is None else [self.bluez]
        built += sources
        if hci is not None:
            built.append(HciSource(hci))
        if ble is not None:
            built.append(BleSource(ble))
        #: Every input, in the order they were given (their views apply in this order).
        self.sources: tuple[Source, ...] = tuple(built)
        for source in self.sources:
            source.attach(_Sink(self, source))
        if self.sources and all(source.remote for source in self.sources):
            # Only other machines' fleets: each host says how its own BlueZ is (its view).
            names = ", ".join(source.name for source in self.sources)
            self._state.source = SourceStatus(SourceState.CONNECTED, f"watching {names}")
        if config is not None:
            self._state.configure(
                aliases=config.aliases, groups=config.group_of, expected=config.expected
            )

    @property
    def state(self) -> FleetState:
        return self._state

    @property
    def live(self) -> bool:
        """True when actions and probes are possible: some source can act on its devices (a
        replay of a log cannot)."""
        return any(source.control is not None or source.remote for source in self.sources)

    def changed(self) -> None:
        """Something shown changed outside the fleet's facts (probes, warnings, presence)."""
        self._state.touch()

    @property
    def device_calls(self) -> DeviceCalls | None:
        """Where actions call devices: the first source with a control (None: read only)."""
        return next((s.control for s in self.sources if s.control is not None), None)

    def set_include_all(self, include_all: bool) -> None:
        """Show every paired device (True) or only speakers; re-derives every row."""
        self._state.include_all = include_all
        for source in self.sources:
            source.refresh()

    def source_statuses(self) -> dict[str, SourceStatus]:
        """Each source's status by name; a source whose run failed says so."""
        return {
            source.name: (
                SourceStatus(SourceState.ERROR, self._failed[source])
                if source in self._failed
                else source.status
            )
            for source in self.sources
        }

    def load_history(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Feed recorded dropouts (from the log) so periods survive a restart; returns count."""
        count = 0
        for record in records:
            kind = record.get("type")
            if kind == "dropout":
                self.detector.observe(_by_host(record), float(record.get("t", 0.0)))
                count += 1
            elif record.get("host"):
                continue  # another room's probe or alignment: its own host shows it
            elif kind == "probe":
                self.probes.load([record])
                count += 1
            elif kind == "align":
                self.aligned(AlignEvent.from_json(record))
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
        targets = targets_for(_here(self.snapshot().speakers), only)
        if not targets and not only and self._remote_only():
            message = REMOTE_PROBES
            self.probe_failed(message)
            raise ProbeFailed(message)
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

    async def align(
        self,
        backend: Backend,
        output: FleetOutput,
        *,
        target_ms: float = 5.0,
        rounds: int = plan.DEFAULT_ROUNDS,
        on_round: Callable[[Round, plan.Verdict, dict[str, int]], None] | None = None,
    ) -> tuple[AlignEvent, tuple[str, ...]]:
        """Align the streaming speakers through `output`, measuring with probes through
        `backend` (each round's probe recorded: the drift panel follows). Returns the
        published `align` event and the names of speakers left out (sent audio but not
        heard: a stalled speaker cannot be aligned). Raises ProbeFailed when nothing streams
        or a probe cannot run. `on_round` is called from the worker thread."""
        chosen, stalled = self._alignable()
        loop = asyncio.get_running_loop()

        def record(event: ProbeEvent) -> None:  # from the worker: on the loop, in order
            loop.call_soon_threadsafe(self.record_probe, event)

        self.probing = f"aligning {len(chosen)} speakers…"
        self.changed()
        try:
            outcome, targets, unheard = await asyncio.to_thread(
                align_by_probe,
                backend,
                output,
                chosen,
                record=record,
                clock=self.clock,
                target_ms=target_ms,
                rounds=rounds,
                on_round=on_round,
            )
        except ProbeFailed as exc:
            self.probe_failed(str(exc))
            raise
        finally:
            self.probing = ""
            self.changed()
        await asyncio.sleep(0)  # the last round's probe is recorded before the event
        event = outcome.event(self.clock(), output.sink, targets, target_ms)
        self.aligned(event)
        self._publish([event])
        return event, stalled + unheard

    async def align_on_server(
        self,
        *,
        input_device: int | str | None = None,
        source: str | None = None,
        sinks: Mapping[str, str] | None = None,
        target_ms: float = 5.0,
        rounds: int = plan.DEFAULT_ROUNDS,
        on_round: Callable[[Round, plan.Verdict, dict[str, int]], None] | None = None,
    ) -> AlignEvent:
        """Align this machine's streaming speakers through the audio server's fleet output
        (core.align.server, as `btmon-tui align`), measuring with the microphone
        (`input_device` or the server's `source`); `sinks` maps addresses to sinks where the
        naming rule does not find them. The event is published and kept. Raises ProbeFailed
        with what is wrong and what to do (no server, a speaker without a sink, fewer than
        two streaming); `on_round` is called from the worker thread."""
        chosen, _ = self._alignable()
        self.probing = f"aligning {len(chosen)} speakers through {stages.FLEET_SINK}…"
        self.changed()
        try:
            targets = await asyncio.to_thread(server_targets, chosen, dict(sinks or {}))
            job = ServerAlign(
                targets,
                input_device=input_device,
                source=source,
                target_ms=target_ms,
                rounds=rounds,
                on_round=on_round,
            )
            outcome = await asyncio.to_thread(job.run)
        except AlignError as exc:
            self.probe_failed(str(exc))
            raise ProbeFailed(str(exc)) from exc
        finally:
            self.probing = ""
            self.changed()
        event = outcome.event(self.clock(), stages.FLEET_SINK, targets, target_ms)
        self._publish([event])
        self.aligned(event)
        return event

    async def keep_aligned(
        self,
        event: ProbeEvent,
        backend: Backend,
        *,
        target_ms: float = 5.0,
        sinks: Mapping[str, str] | None = None,
    ) -> AlignEvent | None:
        """After a periodic probe (`--keep-aligned`): when the fleet was aligned and has drifted
        past `target_ms` as the audience hears it, move each delay by at most
        plan.KEEP_STEP_MS toward lining up again. The demo's room is judged from the probe
        (its probes go through the delays); on a real host the fleet output is measured as
        `align` measures it (each speaker through its stage, the others muted for a moment:
        a microphone probe plays to the sinks directly, past the stages). Published as an
        `align` event with result `kept`; None when nothing was due. A problem of the audio
        server is a warning."""
        kept = self.alignment
        if kept is None or kept.result == "reset" or not kept.delays_ms:
            return None
        room = isinstance(backend, FleetOutput)
        try:
            if room:
                latencies = {r.address: r.latency_ms for r in event.results if r.detected}
                targets: list[Target] = []
            else:
                speakers = [
                    s for s in _here(self.snapshot().speakers) if s.address in kept.delays_ms
                ]
                targets = await asyncio.to_thread(server_targets, speakers, dict(sinks or {}))
                mic = FleetMic(
                    input_device=getattr(backend, "input_device", None),
                    source=getattr(backend, "pulse_source", None),
                )
                current = {t.address: kept.delays_ms[t.address] for t in targets}
                latencies = await asyncio.to_thread(mic.arrivals, targets, current)
            step = plan.keep_step(latencies, kept.delays_ms, delays_heard=True, target_ms=target_ms)
            if step is None or step[0] == dict(kept.delays_ms):
                return None
            delays, spread_ms = step
            if isinstance(backend, FleetOutput):
                await asyncio.to_thread(backend.apply, delays)
            else:
                by_sink = {t.sink: delays[t.address] for t in targets}
                await asyncio.to_thread(stages.apply, by_sink)
                await asyncio.to_thread(keep.save, by_sink)
        except AlignError as exc:
            self.warnings.append(f"keeping the fleet aligned: {exc}")
            self.changed()
            return None
        results = tuple(
            AlignResult(a, ms, None, None, name=kept.names.get(a, ""))
            for a, ms in sorted(delays.items())
        )
        sink = "room" if room else stages.FLEET_SINK
        kept_event = AlignEvent(
            self.clock(), sink, results, round(spread_ms, 1), None, 1, target_ms, "kept",
            f"drift corrected by at most {plan.KEEP_STEP_MS} ms per speaker",
        )  # fmt: skip
        self._publish([kept_event])
        self.aligned(kept_event)
        return kept_event

    def aligned(self, event: AlignEvent) -> None:
        """An alignment (live, replayed, from the log or a remote host): kept when it applied
        or removed delays and is not older than the one kept (AlignEvent.applied)."""
        if event.result == "kept":  # a drift step (--keep-aligned): new delays, same story
            if self.alignment is not None and event.t >= self.alignment.t:
                delays = {r.address: r.delay_ms for r in event.results}
                self.alignment = replace(self.alignment, t=event.t, delays_ms=delays)
                self.changed()
            return
        kept = event.applied()
        if kept is None or (self.alignment is not None and kept.t < self.alignment.t):
            return
        self.alignment = kept
        self.changed()

    def _alignable(self) -> tuple[list[Speaker], tuple[str, ...]]:
        """This machine's streaming speakers an alignment can take, and the names of those
        sent audio but not heard (a stalled speaker cannot be aligned). Raises ProbeFailed
        (shown in the drift panel) with only remote hosts in view or fewer than two."""
        if self._remote_only():
            self.probe_failed(REMOTE_PROBES)
            raise ProbeFailed(REMOTE_PROBES)
        here = _here(self.snapshot().speakers)
        chosen = [s for s in here if s.in_fleet and s.verdict in PLAYING]
        stalled = tuple(s.name for s in here if sent_audio(s) and s not in chosen)
        if len(chosen) < 2:
            message = "align needs two or more streaming speakers" + (
                f" (not heard, left out: {', '.join(stalled)})"
                if stalled
                else " (start playback first)"
            )
            self.probe_failed(message)
            raise ProbeFailed(message)
        return chosen, stalled

    def _remote_only(self) -> bool:
        """True when every source is another machine's (nothing here to probe or align)."""
        return bool(self.sources) and all(source.remote for source in self.sources)

    def probe_failed(self, message: str) -> None:
        """A probe that could not run: shown in the drift panel and the log's warnings
        (once while the same problem repeats, e.g. periodic probes while nothing plays)."""
        if message != self.probes.problem:
            self.warnings.append(f"probe failed: {message}")
        self.probes.problem = message
        self.changed()

    async def run(self) -> None:
        """Run every source and the one ticker until cancelled (or every source ended)."""
        ticker = asyncio.create_task(self._tick())
        if self.keep_delays:
            keeper = asyncio.create_task(self._keep_delays())
            ticker.add_done_callback(lambda _: keeper.cancel())
        runs = [(source, asyncio.create_task(self._run_source(source))) for source in self.sources]
        try:
            # The log starts with the whole fleet (names, verdicts) once every source has
            # its first full state in (BlueZ answered); not when one ended before that.
            ready = True
            for source, task in runs:
                while ready and not await source.wait_ready(1.0):
                    ready = not task.done()
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # Python 3.11's wait_for swallows a cancel that lands as its wait completes;
                # without this, the wait below would outlive the cancel forever.
                raise asyncio.CancelledError
            if self.log is not None and ready:
                self.log.append([self._state.snapshot_event(self.clock())])
            if runs:
                await asyncio.wait([task for _, task in runs])
        finally:
            ticker.cancel()
            for _, task in runs:
                task.cancel()
            for _, task in runs:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _keep_delays(self) -> None:
        """Every KEEP_DELAYS_EVERY_S: a speaker whose sink came back gets its saved delay
        again (core.align.keep); said in the log's warnings."""
        problem = ""
        while True:
            saved = keep.load()
            if saved:
                try:
                    due = await asyncio.to_thread(keep.reattach, saved)
                    problem = ""
                except AlignError as exc:
                    if str(exc) != problem:
                        self.warnings.append(f"keeping the alignment: {exc}")
                        self.changed()
                    problem, due = str(exc), {}
                if due:
                    shown = ", ".join(f"{sink} +{ms} ms" for sink, ms in sorted(due.items()))
                    self.warnings.append(
                        f"reconnected, its delay re-applied in btmon_fleet: {shown}"
                    )
                    self.changed()
            await asyncio.sleep(KEEP_DELAYS_EVERY_S)

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until every source has its first full state in (False after `timeout` s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for source in self.sources:
            if not await source.wait_ready(max(0.0, deadline - loop.time())):
                return False
        return True

    def snapshot(self) -> FleetSnapshot:
        snap = self._state.snapshot(self.clock())
        snap = replace(snap, dropouts=self.dropout_summaries(snap.t))
        for source in self.sources:
            snap = source.view(snap)
        if self.probes.latest is not None or self.probes.problem or self.probing:
            snap = replace(snap, drift=self.probes.summary(), probing=self.probing)
        if self.alignment is not None:
            snap = replace(snap, alignment=self.alignment)
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
                kinds=dict(Counter(d.kind for d in history)),
            )
        return out

    # -- internals -----------------------------------------------------------------------
    def _take(self, source: Source, fact: Fact) -> None:
        """One fact from a source (through its sink): judged, logged, published."""
        now = self.clock()
        match fact:
            case Media(rates, caught_up):
                ready = caught_up or now - self._media_since >= HCI_FIRST_SAY_S
                self._judged(self._state.set_media(rates, now, ready=ready), now)
            case Record(data):
                self._record(data)
            case Warn(text):
                self.warnings.append(text)
            case Shown():
                self.changed()
            case Rewind():
                self._rewind()
            case Status():
                self._fleet_sources.add(source)  # its failure is the fleet's source's
                self._judged(apply_to_fleet(self._state, fact, now), now)
            case MediaExpected():
                self._media_since = now
                self._judged(apply_to_fleet(self._state, fact, now), now)
            case _:  # facts about devices
                self._judged(apply_to_fleet(self._state, fact, now), now)

    def _judged(self, events: list[Event], now: float) -> None:
        """The fleet's events, then the dropouts they start or end, then the rows those
        dropouts annotate."""
        if not events:
            return
        dropouts = self.detector.observe_events(_fleet_only(events), now)
        self._publish(events + dropouts + self._annotations(events, dropouts, now))

    def _record(self, record: Mapping[str, Any]) -> None:
        """A §4.2 record (a replayed log, a remote host): its speakers are put in place as
        they were, not re-judged; its dropouts and probes go to the history; it is published
        again as it was."""
        state = self._state
        kind = record.get("type")
        t = float(record["t"])
        host = record.get("host")
        if kind == "snapshot":
            rows = [
                Speaker.from_json(d, t) for d in record.get("speakers") or [] if isinstance(d, dict)
            ]
            if host:  # a host's whole fleet now: what it no longer lists is gone
                kept = {speaker.path for speaker in rows}
                for path in [p for p, s in state.speakers.items() if s.host == host]:
                    if path not in kept:
                        del state.speakers[path]
                self.changed()
            for speaker in rows:
                state.restore(speaker)
        elif kind == "speaker":
            state.restore(Speaker.from_json(record, t))
        elif kind == "dropout":
            self.detector.observe(_by_host(record), t)
            self.changed()
        elif host:
            pass  # another room's probe or alignment: shown on its host, logged here
        elif kind == "probe":  # the drift panel shows what the microphone heard then
            self.probes.load([record])
            self.changed()
        elif kind == "align":  # the delays it applied (or removed) stay shown
            self.aligned(AlignEvent.from_json(record))
        self._publish([RawEvent(t, dict(record))])

    def _rewind(self) -> None:
        """Back to before a recording's first record: no speakers, dropouts or probes yet."""
        self._state.speakers.clear()
        self.changed()
        self.detector = DropoutDetector()
        self.probes = ProbeHistory()
        self.alignment = None

    async def _run_source(self, source: Source) -> None:
        """Run one source; its failure is a warning (and its status), the others go on."""
        try:
            await source.run()
        except Exception as exc:  # any source failure is shown, never fatal
            # The source's status already says what went wrong (and what to do) when it
            # knows; otherwise the exception does.
            detail = source.status.detail
            text = detail if detail and str(exc) in detail else f"{source.name}: {exc}"
            self._failed[source] = text
            self.warnings.append(text)
            if source in self._fleet_sources:
                self._take(source, Status(SourceStatus(SourceState.ERROR, text)))
            self.changed()
            return
        if source.status.detail:  # it ended: its last word
            self.warnings.append(source.status.detail)
            self.changed()

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

    def media_settled(self) -> bool:
        """True when no verdict waits for the HCI source's word any more (`watch` waits for
        this, bounded, so that its first snapshot is complete)."""
        state = self._state
        return state.media_ready and not state.awaiting_media

    async def _tick(self) -> None:
        """The one ticker."""
        while True:
            await asyncio.sleep(TICK_S)
            self.tick(self.clock())

    def tick(self, now: float) -> None:
        """One tick (every TICK_S): each source's tick (HCI media), the held silences judged,
        then the fleet's time-based verdicts and the disconnect reasons not worth waiting for."""
        for source in self.sources:
            source.tick(now)
        dropouts = self.detector.tick(now)
        if dropouts:
            self._publish([*dropouts, *self._annotations([], dropouts, now)])
        self._judged(self._state.reclassify(now) + self._state.expire_reasons(now), now)


def _here(speakers: Sequence[Speaker]) -> list[Speaker]:
    """The speakers of this machine: a probe plays and listens in this room only."""
    return [s for s in speakers if s.host is None]


def _by_host(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A dropout record as the detector keeps it: a remote host's under `host/address`
    (Speaker.key), so each host's history and periods stay its own."""
    host = record.get("host")
    if not host or not isinstance(record.get("address"), str):
        return record
    return {**record, "address": host_key(str(host), record["address"])}


def _fleet_only(events: list[Event]) -> list[Event]:
    """Events the dropout detector may see: none about an unpaired device (`--all` lists
    them; a neighbour's speaker going quiet is not our dropout), except its removal."""
    return [
        e
        for e in events
        if not isinstance(e, SpeakerEvent) or e.speaker.paired or not e.speaker.connected
    ]
