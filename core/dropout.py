"""DropoutDetector: turns the event stream into dropouts (DESIGN §4.3), with time passed in.

A dropout is an interruption of a speaker's audio that the operator did not cause:
- `link`: the speaker was streaming (or stopped streaming moments before) and its link went
  down for any reason but `local` (our resync, a user's disconnect);
- `transport`: its A2DP transport went idle or away while it stayed connected and other
  speakers kept streaming (the whole fleet going idle is music stopping, not a dropout);
- `stall`: the verdict became `stalled` (transport active, no media);
- `probe`: a probe did not hear a speaker that should play.
Inputs are the §4.2 records (dicts), so live events, the SQLite log and JSON Lines files all
go through the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from core.events import DropoutEvent, Event, SpeakerEvent
from core.period import Period, find_period

#: A transport loss is confirmed after this long, so that a link loss following it (BlueZ
#: tears the transport down first) is classed as `link`, and a fleet-wide stop is recognised.
CONFIRM_AFTER_S: Final = 2.0
#: A disconnect counts as a link dropout if the speaker streamed up to this long before it.
STREAMED_RECENTLY_S: Final = 3.0
#: Dropouts of different speakers this close together are reported as simultaneous.
TOGETHER_WITHIN_S: Final = 5.0
#: Verdicts in which a speaker plays audio.
PLAYING: Final = frozenset({"streaming"})
#: Verdicts that mean "connected but silent" (a transport dropout when it starts mid-stream).
SILENT_CONNECTED: Final = frozenset({"connected-idle", "no-a2dp", "pending"})


@dataclass(frozen=True, slots=True)
class Dropout:
    """One dropout of one speaker."""

    address: str
    kind: str
    start: float
    end: float | None = None
    together_with: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else round(self.end - self.start, 3)


@dataclass
class _Speaker:
    verdict: str = "unknown"
    connected: bool = False
    #: When the speaker last stopped streaming (None while it streams or never did).
    left_streaming_t: float | None = None
    #: A silence that may become a transport dropout once confirmed.
    candidate_t: float | None = None
    open: Dropout | None = None
    history: list[Dropout] = field(default_factory=list)


class DropoutDetector:
    """Per-speaker dropout state machine plus period finding; pure."""

    def __init__(self) -> None:
        self.speakers: dict[str, _Speaker] = {}
        self._periods: dict[str, Period | None] = {}

    # -- input ---------------------------------------------------------------------------
    def observe_events(self, events: Iterable[Event], now: float) -> list[DropoutEvent]:
        out: list[DropoutEvent] = []
        for event in events:
            if isinstance(event, SpeakerEvent):
                # The bulk of a busy fleet: only the fields the detector reads, no JSON.
                speaker = event.speaker
                record = {
                    "type": "speaker",
                    "t": event.t,
                    "address": speaker.address,
                    "verdict": speaker.verdict.value,
                    "connected": speaker.connected,
                }
                out.extend(self.observe(record, now))
            elif event.type in ("device", "dropout"):
                out.extend(self.observe(event.to_json(), now))
        return out

    def observe(self, record: Mapping[str, Any], now: float) -> list[DropoutEvent]:
        """Feed one §4.2 record; returns the dropout events it caused."""
        kind = record.get("type")
        address = record.get("address")
        if not isinstance(address, str):
            return []
        t = float(record.get("t", now))
        if kind == "speaker":
            return self._speaker(address, record, t)
        if kind == "device" and record.get("connected") is False:
            return self._disconnected(address, record.get("reason"), t)
        if kind == "dropout":
            # A recorded dropout (history from the log): remember it, emit nothing.
            end = record.get("end_t")
            together = record.get("together_with")
            self._remember(
                address,
                str(record.get("kind", "link")),
                t,
                float(end) if isinstance(end, int | float) else None,
                tuple(str(a) for a in together) if isinstance(together, list | tuple) else (),
            )
        return []

    def probe_missed(self, address: str, t: float) -> list[DropoutEvent]:
        """A probe did not hear this speaker although it should play (nothing new while a
        dropout of it is already open: a stalled stream the probe confirms is one dropout)."""
        spk = self.speakers.get(address)
        if spk is not None and spk.open is not None:
            return []
        return [self._start(address, "probe", t, now=t)]

    def tick(self, now: float) -> list[DropoutEvent]:
        """Confirm or drop pending transport losses whose grace time has passed."""
        out: list[DropoutEvent] = []
        for address, spk in self.speakers.items():
            if spk.candidate_t is None or now - spk.candidate_t < CONFIRM_AFTER_S:
                continue
            start = spk.candidate_t
            spk.candidate_t = None
            if spk.verdict in PLAYING or spk.open is not None:
                continue
            others_playing = any(
                other.verdict in PLAYING for a, other in self.speakers.items() if a != address
            )
            if others_playing and spk.connected:
                out.append(self._start(address, "transport", start, now))
        return out

    # -- output --------------------------------------------------------------------------
    def dropouts(self, address: str) -> list[Dropout]:
        spk = self.speakers.get(address)
        return list(spk.history) if spk else []

    def period(self, address: str) -> Period | None:
        if address not in self._periods:
            times = [d.start for d in self.dropouts(address)]
            self._periods[address] = find_period(times)
        return self._periods[address]

    def last_dropout(self, address: str) -> float | None:
        spk = self.speakers.get(address)
        return spk.history[-1].start if spk and spk.history else None

    # -- internals -----------------------------------------------------------------------
    def _speaker(self, address: str, record: Mapping[str, Any], t: float) -> list[DropoutEvent]:
        spk = self.speakers.setdefault(address, _Speaker())
        verdict = str(record.get("verdict", "unknown"))
        was = spk.verdict
        spk.verdict = verdict
        spk.connected = bool(record.get("connected", False))
        out: list[DropoutEvent] = []
        if verdict in PLAYING:
            spk.left_streaming_t = None
            spk.candidate_t = None
            if spk.open is not None:
                out.append(self._end(spk, t))
            return out
        if was in PLAYING:
            spk.left_streaming_t = t
            if verdict == "stalled":
                out.append(self._start(address, "stall", t, t))
            elif verdict in SILENT_CONNECTED and spk.open is None:
                spk.candidate_t = t
        elif verdict == "stalled" and was != "stalled" and spk.open is None:
            out.append(self._start(address, "stall", t, t))
        return out

    def _disconnected(self, address: str, reason: Any, t: float) -> list[DropoutEvent]:
        spk = self.speakers.setdefault(address, _Speaker())
        start = spk.left_streaming_t if spk.verdict not in PLAYING else t
        streamed_recently = spk.verdict in PLAYING or (
            start is not None and t - start <= STREAMED_RECENTLY_S
        )
        spk.candidate_t = None
        if reason == "local" or not streamed_recently or spk.open is not None:
            return []
        return [self._start(address, "link", start if start is not None else t, t)]

    def _start(self, address: str, kind: str, start: float, now: float) -> DropoutEvent:
        spk = self.speakers.setdefault(address, _Speaker())
        together = tuple(
            sorted(
                a
                for a, other in self.speakers.items()
                if a != address
                and other.history
                and abs(other.history[-1].start - start) <= TOGETHER_WITHIN_S
            )
        )
        for other_address in together:
            # Together goes both ways: the other speaker's dropout names this one too.
            other = self.speakers[other_address]
            last = other.history[-1]
            if address not in last.together_with:
                marked = Dropout(
                    last.address,
                    last.kind,
                    last.start,
                    last.end,
                    tuple(sorted((*last.together_with, address))),
                )
                other.history[-1] = marked
                if other.open is last:
                    other.open = marked
        dropout = Dropout(address, kind, start, together_with=together)
        spk.open = dropout
        spk.history.append(dropout)
        self._periods.pop(address, None)
        return DropoutEvent(start, address, kind, together_with=together)

    def _end(self, spk: _Speaker, t: float) -> DropoutEvent:
        assert spk.open is not None
        ended = Dropout(spk.open.address, spk.open.kind, spk.open.start, t, spk.open.together_with)
        spk.history[spk.history.index(spk.open)] = ended
        spk.open = None
        return DropoutEvent(
            ended.start,
            ended.address,
            ended.kind,
            ended.duration_s,
            "end",
            t,
            ended.together_with,
        )

    def _remember(
        self,
        address: str,
        kind: str,
        t: float,
        end: float | None,
        together: tuple[str, ...] = (),
    ) -> None:
        spk = self.speakers.setdefault(address, _Speaker())
        for index, known in enumerate(spk.history):
            if known.start == t and known.kind == kind:
                # A dropout's end line knows more than its start line (end, together_with).
                merged = tuple(sorted({*known.together_with, *together}))
                if (end is not None and known.end is None) or merged != known.together_with:
                    new = Dropout(address, kind, t, end if known.end is None else known.end, merged)
                    spk.history[index] = new
                    if spk.open is known:
                        spk.open = new
                return
        spk.history.append(Dropout(address, kind, t, end, tuple(sorted(together))))
        spk.history.sort(key=lambda d: d.start)
        self._periods.pop(address, None)
