"""DropoutDetector: turns the event stream into dropouts (DESIGN §4.3), with time passed in.

A dropout is an interruption of a speaker's audio that the operator did not cause:
- `link`: the speaker was streaming and its link went down for any reason but `local` (our
  resync, a user's disconnect);
- `transport`: its A2DP transport went idle or away while it stayed connected and other
  speakers kept streaming for more than FLEET_STOP_SPREAD_S (music stopping releases every
  transport on its own timer, spread over up to 5 s: that is no dropout for anyone);
- `stall`: the verdict became `stalled` (transport active, no media);
- `probe`: a probe did not hear a speaker that should play.
One interruption is one dropout, whichever of these saw it first. A silence that may still be a
music stop is held (not reported) until the fleet has shown what it is; a dropout that turns out
to be none (a stall that was music stopping, a disconnect an operator's action caused) is
retracted with a `cancelled` event and leaves the history.
Inputs are the §4.2 records (dicts), so live events, the SQLite log and JSON Lines files all
go through the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from core.dropouts.history import (
    SAME_INTERRUPTION_S,
    TOGETHER_WITHIN_S,
    Dropout,
    DropoutHistory,
)
from core.dropouts.period import Period, find_period
from core.fleet.events import DropoutEvent, Event, SpeakerEvent
from core.fleet.model import SENDING_STATES

__all__ = [
    "FLEET_STOP_SPREAD_S",
    "SAME_INTERRUPTION_S",
    "SPREAD_SLACK_S",
    "STREAMED_RECENTLY_S",
    "TOGETHER_WITHIN_S",
    "Dropout",
    "DropoutDetector",
]

#: A music stop spreads over up to this long: audio servers release each Bluetooth transport on
#: its own timer (PulseAudio module-suspend-on-idle and WirePlumber suspend a sink after 5 s of
#: idle; a combine-sink or a speaker slow to answer AVDTP SUSPEND stays inside it; issue 11 §3).
#: A speaker silent while others still stream after this long has a dropout.
FLEET_STOP_SPREAD_S: Final = 5.0
#: Slack on FLEET_STOP_SPREAD_S: one change is stamped more than once (the transport line, the
#: speaker row, each as it arrives: tens of ms apart in other writers' logs) and a release timer
#: fires a scheduler tick late, so a stop spread over exactly 5 s stays a stop. A speaker silent
#: while the rest stream on for 5–5.5 s is the price (a real dropout lasts longer than that).
SPREAD_SLACK_S: Final = 0.5
#: A disconnect within this long of the audio stopping is the link loss that stopped it (BlueZ
#: tears the transport down first: 0.4 ms in the demo, 1.5 s seen with a slow speaker).
STREAMED_RECENTLY_S: Final = 3.0
#: An operator's action covers dropouts from this long before it started (its ActionEvent's
#: `duration_s` comes from another clock than the events' `t`) to its end.
ACTION_MARGIN_S: Final = 1.0
#: Verdicts in which a speaker plays audio.
PLAYING: Final = frozenset({"streaming"})
#: Verdicts of a transport the audio server released (suspended): what music stopping looks like.
RELEASED: Final = frozenset({"connected-idle", "pending"})
#: Operator actions that disconnect a speaker (its dropouts during them are the operator's).
DISCONNECTING: Final = frozenset({"resync", "disconnect"})


@dataclass(frozen=True, slots=True)
class _Silence:
    """A speaker that stopped streaming at `start`: a dropout unless the fleet stops too."""

    start: float
    kind: str = "transport"
    #: The transport was suspended (idle, pending), as when music stops; a torn-down one
    #: followed by the link is a link loss, reported at once.
    released: bool = True


@dataclass
class _Speaker:
    verdict: str = "unknown"
    connected: bool = False
    #: A silence not yet judged (held until FLEET_STOP_SPREAD_S has passed).
    silence: _Silence | None = None
    #: (kind, start) of its dropout still going on.
    open: tuple[str, float] | None = None
    #: Start of an open stall a music stop may still retract.
    stall_check: float | None = None
    #: When the audio server last released its transport (idle, pending).
    released_t: float | None = None
    #: When the link last went down on our side (`local`) while the speaker streamed.
    local_t: float | None = None
    #: Its last two spells of streaming, (from, until or None): whether it streamed all
    #: through a silence of another, however late the tick that judges it comes.
    spells: list[tuple[float, float | None]] = field(default_factory=list)

    def streamed_through(self, since: float, until: float) -> bool:
        return any(s <= since and (u is None or u > until) for s, u in self.spells)


def _verdict_of(connected: bool, transport_state: str | None) -> str:
    """The §3 verdict from the link and the transport alone (logs without speaker rows)."""
    if not connected:
        return "disconnected"
    if transport_state in SENDING_STATES:
        return "streaming"
    if transport_state == "idle":
        return "connected-idle"
    if transport_state == "pending":
        return "pending"
    return "no-a2dp"


class DropoutDetector:
    """Per-speaker dropout state machine plus period finding; pure."""

    def __init__(self) -> None:
        self.speakers: dict[str, _Speaker] = {}
        self.history = DropoutHistory()
        self._periods: dict[str, Period | None] = {}
        #: Transport state of speakers judged from `transport` records (no speaker rows).
        self._transports: dict[str, str | None] = {}
        #: Speakers seen in `speaker` records (not only in a snapshot): judged from those.
        self._with_rows: set[str] = set()

    # -- input ---------------------------------------------------------------------------
    def observe_events(self, events: Iterable[Event], now: float) -> list[DropoutEvent]:
        out: list[DropoutEvent] = []
        for event in events:
            if isinstance(event, SpeakerEvent):
                # The bulk of a busy fleet: only the fields the detector reads, no JSON.
                speaker = event.speaker
                spk = self.speakers.get(speaker.address)
                if spk is not None:
                    out.extend(self._due(speaker.address, spk, event.t))
                out.extend(
                    self._verdict(
                        speaker.address, speaker.verdict.value, speaker.connected, event.t
                    )
                )
            elif event.type in ("device", "dropout", "action"):
                out.extend(self.observe(event.to_json(), now))
        return out

    def observe(self, record: Mapping[str, Any], now: float) -> list[DropoutEvent]:
        """Feed one §4.2 record; returns the dropout events it caused.

        `transport` records judge only speakers not (yet) seen in a `speaker` record (logs
        without speaker rows); `probe` records count their misses (the live Monitor calls
        `probe_missed` instead); a `snapshot`, or a speaker record marked `"snapshot": true`,
        is the state a recording starts in.
        """
        kind = record.get("type")
        t = float(record.get("t", now))
        if kind == "probe":
            return self._probe(record, t)
        if kind == "snapshot":
            out: list[DropoutEvent] = []
            for row in record.get("speakers") or ():
                if isinstance(row, Mapping):
                    out.extend(
                        self.observe({**row, "type": "speaker", "t": t, "snapshot": True}, t)
                    )
            return out
        address = record.get("address")
        if not isinstance(address, str):
            return []
        spk = self.speakers.get(address)
        due = self._due(address, spk, t) if spk is not None else []
        return due + self._observe(kind, address, record, t)

    def _observe(
        self, kind: Any, address: str, record: Mapping[str, Any], t: float
    ) -> list[DropoutEvent]:
        if kind == "speaker":
            verdict = str(record.get("verdict", "unknown"))
            connected = bool(record.get("connected", False))
            if record.get("snapshot") is True and address not in self.speakers:
                # The fleet as a recording starts: a state, not a change (a stall that began
                # before the recording is not one of its dropouts).
                spk = self._spk(address)
                spk.verdict, spk.connected = verdict, connected
                spk.spells = [(t, None)] if verdict in PLAYING else []
                return []
            if record.get("snapshot") is not True:
                self._with_rows.add(address)
            return self._verdict(address, verdict, connected, t)
        if kind == "transport":
            if address in self._with_rows:
                return []  # its speaker rows say more (stalled, probe misses)
            state = record.get("state")
            self._transports[address] = state if isinstance(state, str) else None
            connected = state not in (None, "absent") or self._spk(address).connected
            return self._verdict(
                address, _verdict_of(connected, self._transports[address]), connected, t
            )
        if kind == "device":
            return self._device(address, record, t)
        if kind == "action":
            return self._action(address, record, t)
        if kind == "dropout":
            self._spk(address)
            self.history.record(address, record)
            self._forget_lost(address)
        return []

    def probe_missed(self, address: str, t: float, now: float | None = None) -> list[DropoutEvent]:
        """A probe at `t` did not hear this speaker although it should play (nothing new while
        it is already silent or in a dropout: a stalled stream the probe confirms is one
        dropout). The event is stamped `now` (the analysis ends after the probe played)."""
        spk = self._spk(address)
        out = self._due(address, spk, t if now is None else max(t, now))
        out += self._stale_miss(address, spk, spk.verdict, t)
        if spk.open is not None or spk.silence is not None:
            return out
        return [*out, self._start(address, "probe", t, t if now is None else max(t, now))]

    def tick(self, now: float) -> list[DropoutEvent]:
        """Judge the silences and stalls the fleet has had FLEET_STOP_SPREAD_S to explain."""
        out: list[DropoutEvent] = []
        for address, spk in self.speakers.items():
            out.extend(self._due(address, spk, now))
        return out

    def _due(self, address: str, spk: _Speaker, now: float) -> list[DropoutEvent]:
        """One speaker's judgements due by `now`, as of their deadlines (also run before any
        news of that speaker, so that a tick coming late changes nothing)."""
        out: list[DropoutEvent] = []
        wait = FLEET_STOP_SPREAD_S + SPREAD_SLACK_S
        silence = spk.silence
        if silence is not None and now - silence.start > wait:
            out.extend(self._judge(address, spk, now, silence.start + wait))
        started = spk.stall_check
        if started is not None and now - started > wait:
            out.extend(self._judge_stall(address, spk, now, started + wait))
        return out

    def _judge_stall(
        self, address: str, spk: _Speaker, now: float, until: float
    ) -> list[DropoutEvent]:
        """An open stall whose transport was then released while nobody streamed all through
        it, up to its deadline or the speaker's return (`until`), was the music stopping
        (PipeWire pauses an idle node before suspending it): retracted."""
        started = spk.stall_check
        spk.stall_check = None
        if (
            started is None
            or spk.open != ("stall", started)
            or spk.released_t is None
            or spk.released_t < started
            or self._others_streaming(address, started, until)
        ):
            return []
        stall = self.history.find(address, "stall", started)
        return [] if stall is None else [self._cancel(spk, stall, now, "music stopped")]

    # -- output --------------------------------------------------------------------------
    def dropouts(self, address: str) -> list[Dropout]:
        return self.history.of(address)

    def period(self, address: str) -> Period | None:
        if address in self.history.changed:
            self.history.changed.discard(address)
            self._periods.pop(address, None)
        if address not in self._periods:
            times = [d.start for d in self.dropouts(address)]
            self._periods[address] = find_period(times)
        return self._periods[address]

    def last_dropout(self, address: str) -> float | None:
        last = self.history.last(address)
        return last.start if last is not None else None

    # -- live judgement --------------------------------------------------------------------
    def _spk(self, address: str) -> _Speaker:
        return self.speakers.setdefault(address, _Speaker())

    def _others_streaming(self, address: str, since: float, until: float) -> bool:
        """Whether another speaker streamed all through `since`..`until` (the rest of the
        fleet kept playing: not a music stop, not a pause between two sessions)."""
        return any(
            o.streamed_through(since, until) for a, o in self.speakers.items() if a != address
        )

    def _verdict(self, address: str, verdict: str, connected: bool, t: float) -> list[DropoutEvent]:
        spk = self._spk(address)
        was = spk.verdict
        spk.verdict = verdict
        spk.connected = connected
        if verdict in RELEASED:
            spk.released_t = t
        if (verdict in PLAYING) != (was in PLAYING):
            if verdict in PLAYING:
                spk.spells = [*spk.spells[-1:], (t, None)]
            elif spk.spells:
                spk.spells[-1] = (spk.spells[-1][0], t)
        if verdict in PLAYING:
            if spk.stall_check is not None:
                # Back before the fleet showed what the stall was (a short break): judge it now.
                cancelled = self._judge_stall(address, spk, t, t)
                if cancelled:
                    return cancelled
            if spk.silence is not None:
                # Back before the fleet showed what the silence was: judge it now.
                return self._judge(address, spk, t, t, ended=t)
            return self._end(address, spk, t)
        out = self._stale_miss(address, spk, was, t)
        if spk.open is not None or spk.silence is not None:
            return out  # the same interruption goes on
        if verdict == "stalled" and was != "stalled":
            spk.stall_check = t if was in PLAYING else None
            out.append(self._start(address, "stall", t, t))
        elif was in PLAYING and verdict != "unknown":
            if spk.local_t is not None and t - spk.local_t <= STREAMED_RECENTLY_S:
                return out  # the device record said `local` first: our resync
            kind = "link" if verdict == "disconnected" else "transport"
            spk.silence = _Silence(t, kind, released=verdict in RELEASED)
        return out

    def _stale_miss(self, address: str, spk: _Speaker, was: str, t: float) -> list[DropoutEvent]:
        """End a probe miss the speaker's verdict never followed (it streamed on, e.g. in a
        log without speaker rows) when it stops streaming later: that is another interruption."""
        miss = spk.open
        if (
            miss is None
            or miss[0] != "probe"
            or was not in PLAYING
            or t - miss[1] <= SAME_INTERRUPTION_S
        ):
            return []
        return self._end(address, spk, t)

    def _device(self, address: str, record: Mapping[str, Any], t: float) -> list[DropoutEvent]:
        spk = self._spk(address)
        connected = record.get("connected")
        out: list[DropoutEvent] = []
        if connected is False:
            out.extend(self._disconnected(address, spk, record.get("reason"), t))
        if address in self._transports and isinstance(connected, bool):
            if not connected:
                self._transports[address] = None  # the transport goes with the link
            state = self._transports[address]
            out.extend(self._verdict(address, _verdict_of(connected, state), connected, t))
        return out

    def _disconnected(
        self, address: str, spk: _Speaker, reason: Any, t: float
    ) -> list[DropoutEvent]:
        silence = spk.silence
        if silence is None:
            out = self._stale_miss(address, spk, spk.verdict, t)
            if reason == "local" and spk.verdict in PLAYING:
                spk.local_t = t  # the speaker row saying so may follow
            if spk.verdict not in PLAYING or spk.open is not None or reason == "local":
                return out
            return [*out, self._start(address, "link", t, t)]  # the device record came first
        if t - silence.start > STREAMED_RECENTLY_S:
            return []  # a later link loss of a speaker already silent: the silence decides
        if reason == "local":
            spk.silence = None  # our resync or a user's disconnect stopped the audio
            return []
        if silence.released:
            # Idle first, then the link: still a music stop if the fleet stops.
            spk.silence = replace(silence, kind="link")
            return []
        spk.silence = None
        return [self._start(address, "link", silence.start, t)]

    def _judge(
        self, address: str, spk: _Speaker, now: float, until: float, ended: float | None = None
    ) -> list[DropoutEvent]:
        """A silence is a dropout if another speaker streamed all through it, up to its
        deadline or its end (`until`); else the fleet stopped: music, no dropout."""
        silence = spk.silence
        assert silence is not None
        spk.silence = None
        if not self._others_streaming(address, silence.start, until):
            return []
        out = [self._start(address, silence.kind, silence.start, now)]
        if ended is not None:
            out.extend(self._end(address, spk, ended))
        return out

    def _probe(self, record: Mapping[str, Any], t: float) -> list[DropoutEvent]:
        out: list[DropoutEvent] = []
        for result in record.get("results") or ():
            address = result.get("address") if isinstance(result, Mapping) else None
            if not isinstance(address, str):
                continue
            if result.get("detected") is False:
                out.extend(self.probe_missed(address, t, t))
                continue
            spk = self.speakers.get(address)
            if spk is not None and spk.open is not None and spk.open[0] == "probe":
                # Heard again: the end of a miss whose verdict never changed (a log without
                # speaker rows, or from before probe misses made a speaker `stalled`).
                out.extend(self._end(address, spk, t))
        return out

    def _action(self, address: str, record: Mapping[str, Any], t: float) -> list[DropoutEvent]:
        """An operator's resync or disconnect (logged when it ends): what it interrupted is
        no dropout (old BlueZ does not say `local`)."""
        if record.get("action") not in DISCONNECTING:
            return []
        spk = self.speakers.get(address)
        if spk is None:
            return []
        duration = record.get("duration_s")
        took = float(duration) if isinstance(duration, int | float) else 0.0
        since = t - took - ACTION_MARGIN_S
        if spk.silence is not None and since <= spk.silence.start <= t:
            spk.silence = None
        return [
            self._cancel(spk, d, t, "operator action")
            for d in self.history.of(address)
            if since <= d.start <= t
        ]

    def _start(self, address: str, kind: str, start: float, now: float) -> DropoutEvent:
        dropout = self.history.add(address, kind, start)
        self._spk(address).open = (kind, start)
        return DropoutEvent(now, address, kind, together_with=dropout.together_with, start_t=start)

    def _end(self, address: str, spk: _Speaker, t: float) -> list[DropoutEvent]:
        if spk.open is None:
            return []
        ended = self.history.end(address, *spk.open, t)
        spk.open = None
        if ended is None:
            return []
        return [
            DropoutEvent(
                t,
                ended.address,
                ended.kind,
                ended.duration_s,
                "end",
                t,
                ended.together_with,
                start_t=ended.start,
            )
        ]

    def _cancel(self, spk: _Speaker, dropout: Dropout, now: float, why: str) -> DropoutEvent:
        self.history.retract(dropout)
        if spk.open == (dropout.kind, dropout.start):
            spk.open = None
        return DropoutEvent(
            now,
            dropout.address,
            dropout.kind,
            dropout.duration_s,
            "cancelled",
            dropout.end,
            start_t=dropout.start,
            detail=why,
        )

    def _forget_lost(self, address: str) -> None:
        """A recorded record retracted or merged away the dropout going on: it is over."""
        spk = self.speakers.get(address)
        if spk is not None and spk.open and self.history.find(address, *spk.open) is None:
            spk.open = None
