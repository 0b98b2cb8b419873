"""FleetState: folds device facts into speakers with verdicts and emits the events of DESIGN §4.2.

Pure: every method takes `now` as data and returns the events it caused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from core.fleet.events import (
    DeviceEvent,
    Event,
    SnapshotEvent,
    SourceEvent,
    SpeakerEvent,
    TransportEvent,
)
from core.fleet.model import (
    Adapter,
    DeviceFacts,
    FleetCounts,
    FleetSnapshot,
    SourceState,
    SourceStatus,
    Speaker,
    Verdict,
)
from core.fleet.verdict import SILENT, STALL_AFTER_S, classify

#: A displayed media rate changes only when the new one differs by more than this share:
#: packet counts jitter by a few per window, and every change is a logged speaker event.
MEDIA_PPS_HYSTERESIS = 0.2


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """What an HCI source says about one address: packets/s, last media packet (Unix s),
    and since when it has watched the link (no media since then means none)."""

    pps: float
    last_media_t: float | None
    since: float | None = None


#: How long a stream that started while HCI watches may wait for HCI to attribute its link
#: (the capture is read with a lag of up to ~0.5 s; a link that predates the capture is
#: never attributed, and is then judged by BlueZ alone).
MEDIA_ATTRIBUTION_S = 2.0

#: How long a Connected -> false waits for its Device1.Disconnected reason when this BlueZ is
#: known to send one (BlueZ emits the signal and the property change in either order).
REASON_GRACE_S = 0.5


def _transport_state(speaker: Speaker | None) -> str | None:
    if speaker is None:
        return None
    return speaker.transport.state if speaker.transport else "absent"


class FleetState:
    """The current fleet, updated from facts; knows which changes are worth an event."""

    def __init__(
        self,
        *,
        include_all: bool = False,
        aliases: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
        expected: frozenset[str] = frozenset(),
    ) -> None:
        self.include_all = include_all
        #: Address -> the operator's name for it (config file), shown instead of BlueZ's.
        self.aliases: Mapping[str, str] = aliases or {}
        #: Address -> the operator's group for it (config file).
        self.groups: Mapping[str, str] = groups or {}
        #: Addresses that should stream whenever others do (config `expect_streaming`).
        self.expected = expected
        self.facts: dict[str, DeviceFacts] = {}
        self.speakers: dict[str, Speaker] = {}
        self.adapters: tuple[Adapter, ...] = ()
        self.source = SourceStatus(SourceState.CONNECTING, "connecting to BlueZ…")
        self.version = 0
        self._reasons: dict[str, str] = {}
        #: Disconnects held back until their reason arrives: path -> the event without reason.
        self._awaiting_reason: dict[str, DeviceEvent] = {}
        #: True once BlueZ sent any Disconnected signal (5.83+); only then is a reason awaited.
        self.reasons_supported = False
        #: Address -> media facts from the HCI source (absent: HCI knows nothing of it).
        self.media: dict[str, MediaFacts] = {}
        #: Address -> the media rate shown (changes only beyond MEDIA_PPS_HYSTERESIS).
        self._shown_pps: dict[str, float] = {}
        #: Path -> when its transport last became active (media gets 1 s from then to flow).
        self._active_since: dict[str, float] = {}
        #: Address -> when the most recent probe played to it and did not hear it.
        self.probe_missed: dict[str, float] = {}
        #: False while an HCI source runs but has not caught up with the present: until it
        #: has had its first say, an active transport is not called `streaming`.
        self.media_ready = True
        #: True once an HCI source was announced (expect_media): media facts are coming.
        self.media_source = False
        #: Paths whose verdict is `pending` only because HCI has not vouched for the stream.
        self.awaiting_media: set[str] = set()

    def touch(self) -> None:
        """Mark a change the fleet's own facts do not show (a panel's data, presence): the
        next snapshot is new, so the screen repaints. The one way to say "changed"."""
        self.version += 1

    @property
    def source_available(self) -> bool:
        return self.source.state == SourceState.CONNECTED

    def note_disconnect_reason(self, path: str, word: str) -> list[Event]:
        """The source said why this device disconnected (a DESIGN §4.2 `reason` word, e.g.
        from BlueZ's Device1.Disconnected): attach it to this disconnect, before or after."""
        self.reasons_supported = True
        held = self._awaiting_reason.pop(path, None)
        if held is not None:
            return [replace(held, reason=word)]
        speaker = self.speakers.get(path)
        if speaker is None or speaker.connected:
            # Before Connected goes false: keep it for that change. Otherwise it is a late
            # duplicate (Device1 and Bearer both report it) and must not stick to a later drop.
            self._reasons[path] = word
        return []

    def expire_reasons(self, now: float) -> list[Event]:
        """Release held disconnects whose reason did not come within REASON_GRACE_S."""
        expired = [p for p, e in self._awaiting_reason.items() if now - e.t >= REASON_GRACE_S]
        return [self._awaiting_reason.pop(p) for p in expired]

    def set_adapters(self, adapters: tuple[Adapter, ...]) -> None:
        if adapters != self.adapters:
            self.adapters = adapters
            self.version += 1

    def update(self, changed: Mapping[str, DeviceFacts | None], now: float) -> list[Event]:
        """Apply new facts (None = device gone) and return the resulting events."""
        events: list[Event] = []
        for path, facts in changed.items():
            if facts is None or not (_in_fleet(facts) or self.include_all):
                self.facts.pop(path, None)
                self.awaiting_media.discard(path)
                gone = self.speakers.pop(path, None)
                if gone is not None:
                    self.version += 1
                    gone = replace(
                        gone,
                        paired=False,
                        connected=False,
                        verdict=Verdict.DISCONNECTED,
                        transport=None,
                        changed_t=now,
                    )
                    events.append(SpeakerEvent(now, gone))
                continue
            self.facts[path] = facts
            events.extend(self._rejudge(path, facts, now))
        return events

    def reclassify(self, now: float) -> list[Event]:
        """Re-judge every speaker (time-based verdicts, source availability)."""
        events: list[Event] = []
        for path, facts in self.facts.items():
            events.extend(self._rejudge(path, facts, now))
        return events

    def annotate(
        self, address: str, last_dropout: float | None, period_s: float | None, now: float
    ) -> list[Event]:
        """Set a speaker's dropout facts (from the DropoutDetector); a speaker event if changed."""
        events: list[Event] = []
        for path, speaker in list(self.speakers.items()):
            if speaker.address != address:
                continue
            if (speaker.last_dropout, speaker.period_s) == (last_dropout, period_s):
                continue
            updated = replace(speaker, last_dropout=last_dropout, period_s=period_s, changed_t=now)
            self.speakers[path] = updated
            self.version += 1
            events.append(SpeakerEvent(now, updated))
        return events

    def expect_media(self) -> None:
        """An HCI source is starting: hold `streaming` until its first say (set_media)."""
        self.media_ready = False
        self.media_source = True
        self.version += 1

    def set_media(
        self, media: Mapping[str, MediaFacts], now: float, *, ready: bool = True
    ) -> list[Event]:
        """The HCI source's media facts (all addresses it knows), `ready` once it has caught
        up with the present; re-judges every speaker, since `stalled` depends on the time
        since the last media packet."""
        self.media_ready = ready
        self.media = dict(media)
        for address in list(self._shown_pps):
            if address not in media:
                del self._shown_pps[address]
        for address, facts in media.items():
            shown = self._shown_pps.get(address)
            if shown is None or _moved(shown, facts.pps):
                self._shown_pps[address] = round(facts.pps, 1)
        return self.reclassify(now)

    def set_probe_missed(
        self,
        addresses: frozenset[str],
        now: float,
        probe_t: float | None = None,
        probed: frozenset[str] | None = None,
    ) -> list[Event]:
        """The addresses the probe at `probe_t` (default: now) did not hear, among those it
        played to (`probed`; default: every speaker). DESIGN §3: `stalled`, until a later
        probe hears them, their stream starts again, or HCI shows media flowing since."""
        at = now if probe_t is None else probe_t
        kept = (
            {}
            if probed is None
            else {a: t for a, t in self.probe_missed.items() if a not in probed}
        )
        missed = kept | {address: at for address in addresses}
        if missed == self.probe_missed:
            return []
        self.probe_missed = missed
        return self.reclassify(now)

    def probe_miss_contradicted(self, address: str) -> bool:
        """True when HCI shows media flowing to `address` when or after the probe missed it
        (a packet within STALL_AFTER_S before it counts: a capture is read with a lag): the
        stronger source wins; the miss is the microphone's or the room's. A stream that
        stops flowing is `stalled` on HCI's own account a second later."""
        missed_at = self.probe_missed.get(address)
        media = self.media.get(address)
        return (
            missed_at is not None
            and media is not None
            and media.last_media_t is not None
            and media.last_media_t > missed_at - STALL_AFTER_S
        )

    def restore(self, speaker: Speaker) -> None:
        """Put a recorded speaker in place as it was (replay); no events, no re-judging."""
        self.speakers[speaker.path] = speaker
        self.version += 1

    def set_source(self, status: SourceStatus, now: float) -> list[Event]:
        """The BlueZ source changed; all verdicts follow (unknown while BlueZ is away)."""
        if status == self.source:
            return []
        self.source = status
        self.version += 1
        return [SourceEvent(now, status.state.value, status.detail), *self.reclassify(now)]

    def counts(self) -> FleetCounts:
        return FleetCounts.of(self.speakers.values())

    def configure(
        self, *, aliases: Mapping[str, str], groups: Mapping[str, str], expected: frozenset[str]
    ) -> None:
        """Apply the config file's names, groups and expectations (before the first facts)."""
        self.aliases, self.groups, self.expected = aliases, groups, expected
        self.version += 1

    def expected_silent(self) -> tuple[str, ...]:
        """Expected speakers that get no audio while at least one other speaker streams."""
        if not any(s.verdict == Verdict.STREAMING for s in self.speakers.values()):
            return ()
        return tuple(
            s.address
            for s in sorted(self.speakers.values(), key=lambda s: (s.adapter, s.name.lower()))
            if s.address in self.expected and s.in_fleet and s.verdict in SILENT
        )

    def snapshot(self, now: float) -> FleetSnapshot:
        ordered = sorted(
            self.speakers.values(),
            key=lambda s: (s.host or "", s.adapter, s.name.lower(), s.address),
        )
        return FleetSnapshot(
            t=now,
            speakers=tuple(ordered),
            adapters=self.adapters,
            source=self.source,
            counts=self.counts(),
            version=self.version,
            expected_silent=self.expected_silent(),
        )

    def snapshot_event(self, now: float) -> SnapshotEvent:
        snap = self.snapshot(now)
        return SnapshotEvent(now, snap.counts, snap.speakers)

    # -- internals -----------------------------------------------------------------------
    def _with_overlays(self, path: str, facts: DeviceFacts, now: float) -> DeviceFacts:
        """Facts plus what HCI and the probes know about this address."""
        transport = facts.transport
        active = transport is not None and transport.sending
        if active:
            # Seen going active: media gets a grace from then. Active at first sight: it
            # started before we looked, the HCI source knows since when it watched the link.
            self._active_since.setdefault(path, now if path in self.speakers else -1.0)
        else:
            self._active_since.pop(path, None)
        media = self.media.get(facts.address)
        missed_at = self.probe_missed.get(facts.address)
        # A stream (re)started after the probe that missed it (a resync) is new evidence;
        # so is media flowing on HCI after it.
        started = self._active_since.get(path)
        missed = (
            missed_at is not None
            and (started is None or started <= missed_at)
            and not self.probe_miss_contradicted(facts.address)
        )
        awaiting = active and not self.media_ready
        if media is None:
            if active and self.media_source and started is not None:
                # Went active while HCI watches: give the capture time to attribute the link.
                awaiting = awaiting or 0 <= now - started < MEDIA_ATTRIBUTION_S
            if not (missed or awaiting):
                return facts
            return replace(facts, probe_missed=missed, awaiting_media=awaiting)
        # Silence counts from the last media packet, but no earlier than the moment the HCI
        # source began watching the link or (a stream that just started) the transport went
        # active: each gets STALL_AFTER_S before it counts.
        began = [m for m in (media.since, started) if m is not None and m >= 0]
        moments = [media.last_media_t, *began]
        known = [m for m in moments if m is not None and m >= 0]
        last = max(known) if known else None
        # No media packet since this stream began: HCI has not vouched for it yet.
        no_packet_yet = media.last_media_t is None or (
            bool(began) and media.last_media_t < max(began)
        )
        return replace(
            facts,
            media_pps=self._shown_pps.get(facts.address, media.pps),
            last_media_t=last,
            probe_missed=missed,
            awaiting_media=awaiting or (active and no_packet_yet),
        )

    def _rejudge(self, path: str, facts: DeviceFacts, now: float) -> list[Event]:
        old = self.speakers.get(path)
        facts = self._with_overlays(path, facts, now)
        verdict = classify(facts, now, source_available=self.source_available)
        if facts.awaiting_media and verdict == Verdict.PENDING:
            self.awaiting_media.add(path)
        else:
            self.awaiting_media.discard(path)
        new = Speaker(
            path=path,
            address=facts.address,
            name=self.aliases.get(facts.address, facts.name),
            adapter=facts.adapter,
            paired=facts.paired,
            connected=facts.connected,
            is_speaker=facts.is_speaker,
            verdict=verdict,
            transport=facts.transport,
            battery=facts.battery,
            media_pps=facts.media_pps,
            last_dropout=old.last_dropout if old else None,
            period_s=old.period_s if old else None,
            changed_t=old.changed_t if old else now,
            group=self.groups.get(facts.address),
        )
        if old is not None and replace(new, changed_t=old.changed_t) == old:
            return []
        new = replace(new, changed_t=now)
        self.speakers[path] = new
        self.version += 1
        events: list[Event] = []
        if old is not None and old.connected != new.connected:
            held = self._awaiting_reason.pop(path, None)
            if held is not None:
                # Back before the reason came: the disconnect still goes out first.
                events.append(held)
            reason = None if new.connected else self._reasons.pop(path, None)
            event = DeviceEvent(now, new.address, new.connected, reason)
            if not new.connected and reason is None and self.reasons_supported:
                self._awaiting_reason[path] = event
            else:
                events.append(event)
        old_state, new_state = _transport_state(old), _transport_state(new)
        if old is not None and (
            old_state != new_state
            or (old.transport and new.transport and old.transport.codec != new.transport.codec)
        ):
            codec = new.transport.codec if new.transport else None
            events.append(TransportEvent(now, new.address, new_state or "absent", codec))
        events.append(SpeakerEvent(now, new))
        return events


def _in_fleet(facts: DeviceFacts) -> bool:
    """A paired (or bonded) audio sink (DESIGN §3); discovery's unpaired devices are not."""
    return facts.is_speaker and facts.paired


def _moved(shown: float, pps: float) -> bool:
    """True when a media rate moved enough to show (to or from zero always does)."""
    if (shown == 0) != (pps == 0):
        return True
    return abs(pps - shown) > MEDIA_PPS_HYSTERESIS * max(shown, 1.0)
