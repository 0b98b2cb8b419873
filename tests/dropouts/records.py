"""§4.2 records for the dropout tests, built with the real event classes (so every line is what
`watch --json` writes: compact JSON, the same keys in the same order), and a seeded generator of
whole recordings with known truth.

A recording holds three speakers: a periodic dropper (every PERIOD_S ± 2 %, measured from its
previous drop, some drops missed, a few unrelated extra drops), a random dropper (link and
transport dropouts at random times) and a steady speaker. Around them: a fleet-wide music stop
(every speaker idle at once: not a dropout) and a resync of the steady speaker (a `local`
disconnect: not a dropout). The dropouts written as `dropout` lines are the truth the test
knows, and the raw speaker/device/transport lines are what a detector must derive them from.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from core.fleet.events import DeviceEvent, DropoutEvent, SnapshotEvent, SpeakerEvent, TransportEvent
from core.fleet.model import FleetCounts, Speaker, Transport, Verdict

#: Default addresses of the detector tests.
A = "AA:00:00:00:00:01"
B = "AA:00:00:00:00:02"
C = "AA:00:00:00:00:03"

TRANSPORT_OF_VERDICT = {
    "streaming": "active",
    "stalled": "active",
    "connected-idle": "idle",
    "pending": "pending",
}


def make_speaker(
    t: float,
    address: str,
    verdict: str,
    *,
    connected: bool | None = None,
    name: str | None = None,
    codec: str = "SBC",
    last_dropout: float | None = None,
    period_s: float | None = None,
) -> Speaker:
    """A Speaker row as the mirror builds it (transport state follows the verdict)."""
    if connected is None:
        connected = verdict not in ("disconnected", "unknown")
    state = TRANSPORT_OF_VERDICT.get(verdict)
    return Speaker(
        path=f"/org/bluez/hci0/dev_{address.replace(':', '_')}",
        address=address,
        name=name or f"Speaker {address[-2:]}",
        adapter="hci0",
        paired=True,
        connected=connected,
        is_speaker=True,
        verdict=Verdict(verdict),
        transport=Transport(
            path=f"/org/bluez/hci0/dev_{address.replace(':', '_')}/sep1/fd0",
            state=state,
            codec=codec,
            delay_ms=150.0,
            volume=100,
        )
        if state
        else None,
        battery=None,
        media_pps=None,
        last_dropout=last_dropout,
        period_s=period_s,
        changed_t=t,
    )


def speaker(t: float, address: str, verdict: str, **kwargs: Any) -> dict[str, Any]:
    """A `speaker` record (§4.2)."""
    return SpeakerEvent(t, make_speaker(t, address, verdict, **kwargs)).to_json()


def device(t: float, address: str, connected: bool, reason: str | None = None) -> dict[str, Any]:
    """A `device` record (§4.2)."""
    return DeviceEvent(t, address, connected, reason).to_json()


def dropout_record(
    start: float,
    address: str,
    kind: str = "link",
    *,
    end_t: float | None = None,
    together_with: tuple[str, ...] = (),
    t: float | None = None,
    cancelled: bool = False,
) -> dict[str, Any]:
    """A recorded `dropout` record as this version writes it: phase `start` (written at `t`,
    default `start`), `end` when `end_t` is given (written then), or `cancelled` (at `t`)."""
    duration = None if end_t is None else round(end_t - start, 3)
    if cancelled:
        at = t if t is not None else start
        return DropoutEvent(
            at, address, kind, duration, "cancelled", end_t, start_t=start, detail="test"
        ).to_json()
    if end_t is None:
        at = t if t is not None else start
        return DropoutEvent(at, address, kind, together_with=together_with, start_t=start).to_json()
    return DropoutEvent(
        end_t, address, kind, duration, "end", end_t, together_with, start_t=start
    ).to_json()


def old_dropout_record(
    start: float,
    address: str,
    kind: str = "link",
    *,
    end_t: float | None = None,
    together_with: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A `dropout` record as versions before issue 11 wrote it: `t` = the start in both
    phases, no `start_t`."""
    return {
        "type": "dropout",
        "t": start,
        "address": address,
        "kind": kind,
        "duration_s": None if end_t is None else round(end_t - start, 3),
        "phase": "start" if end_t is None else "end",
        "end_t": end_t,
        "together_with": list(together_with),
    }


# -- whole recordings ---------------------------------------------------------------------------

PERIODIC = "00:1A:7D:DA:71:03"
RANDOM = "00:1A:7D:DA:71:02"
STEADY = "00:1A:7D:DA:71:01"
NAMES = {PERIODIC: "Sub Bass", RANDOM: "Stage Right", STEADY: "Stage Left"}
CODECS = {PERIODIC: "aptX LL", RANDOM: "AAC", STEADY: "SBC"}
PERIOD_S = 282.0
JITTER = 0.02
#: A link outage lasts this long (bluetoothd reconnects, the transport comes back).
OUTAGE_S = 6.8
#: A transport dropout (A2DP idle while still linked) lasts this long.
TRANSPORT_OUTAGE_S = 9.0
#: Delay of the Monitor's tick that confirms a transport loss (FLEET_STOP_SPREAD_S + a tick).
CONFIRM_DELAY_S = 5.5


@dataclass
class Truth:
    """What a recording holds, per speaker: every dropout start (sorted) and its kind."""

    t0: float
    end: float
    drops: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    #: The periodic dropper's true slots (observed or missed), including ones after the end.
    slots: list[float] = field(default_factory=list)
    #: Drops of the periodic dropper that lie on its period (the rest are extras).
    periodic: list[float] = field(default_factory=list)
    together: dict[str, int] = field(default_factory=dict)

    def count(self, address: str) -> int:
        return len(self.drops.get(address, []))

    def kinds(self, address: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, kind in self.drops.get(address, []):
            out[kind] = out.get(kind, 0) + 1
        return out

    def last(self, address: str) -> float:
        return max(t for t, _ in self.drops[address])

    def next_slot(self, now: float) -> float:
        return min(s for s in self.slots if s > now)


@dataclass
class Recording:
    """Lines in the order `watch --json` prints them (each with a tag: "dropout" for dropout
    lines, "annotation" for a speaker line that only carries a new last_dropout), and the truth."""

    tagged: list[tuple[str, str]]
    truth: Truth

    @property
    def lines(self) -> list[str]:
        return [line for _, line in self.tagged]

    def raw_lines(self) -> list[str]:
        """Speaker/device/transport lines only, the speaker rows without the dropout
        annotations, as a version without the detector wrote them."""
        out = []
        for tag, line in self.tagged:
            if tag in ("dropout", "annotation"):
                continue
            record = json.loads(line)
            if record["type"] == "speaker":
                record["last_dropout"] = None
                line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
            out.append(line)
        return out

    def text(self, *, dropouts: bool = True) -> str:
        """The file, with the `dropout` lines or raw."""
        return "".join(line + "\n" for line in (self.lines if dropouts else self.raw_lines()))

    def records(self, *, dropouts: bool = True) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.lines if dropouts else self.raw_lines())]


class _Writer:
    """Collects lines with the moment `watch` would print them (a dropout's line comes after
    the events that revealed it, its `start_t` is when the audio stopped)."""

    def __init__(self) -> None:
        self.out: list[tuple[float, int, str, str]] = []
        self.last_dropout: dict[str, float] = {}

    def emit(self, at: float, event: Any, tag: str = "") -> None:
        if isinstance(event, DropoutEvent):
            tag = "dropout"
        self.out.append((at, len(self.out), tag, event.to_line()))

    def speaker(
        self, t: float, address: str, verdict: str, annotate: bool = False, tag: str = ""
    ) -> None:
        last = self.last_dropout.get(address)
        row = make_speaker(
            t,
            address,
            verdict,
            name=NAMES[address],
            codec=CODECS[address],
            last_dropout=last if annotate else None,
        )
        self.emit(t, SpeakerEvent(t, row), tag)

    def transport(self, t: float, address: str, state: str) -> None:
        codec = None if state == "absent" else CODECS[address]
        self.emit(t, TransportEvent(t, address, state, codec))

    def link_drop(
        self,
        t: float,
        address: str,
        reason: str | None,
        together: tuple[str, ...],
        ends: tuple[str, ...],
    ) -> float:
        """Transport torn down, then the link, then bluetoothd reconnects (as the demo does)."""
        self.transport(t, address, "absent")
        self.speaker(t, address, "no-a2dp")
        self.emit(t + 0.0004, DeviceEvent(t + 0.0004, address, False, reason))
        self.speaker(t + 0.0004, address, "disconnected")
        if reason != "local":
            self.emit(
                t + 0.0004,
                DropoutEvent(t + 0.0004, address, "link", together_with=together, start_t=t),
            )
            self.last_dropout[address] = t
            self.speaker(t + 0.0005, address, "disconnected", True, "annotation")
        back = t + OUTAGE_S
        self.emit(back - 0.8, DeviceEvent(back - 0.8, address, True, None))
        self.speaker(back - 0.8, address, "no-a2dp", annotate=True)
        self.transport(back - 0.79, address, "pending")
        self.speaker(back - 0.79, address, "pending", annotate=True)
        self.transport(back, address, "active")
        self.speaker(back, address, "streaming", annotate=True)
        if reason != "local":
            self.emit(
                back, DropoutEvent(back, address, "link", OUTAGE_S, "end", back, ends, start_t=t)
            )
        return back

    def transport_drop(
        self, t: float, address: str, together: tuple[str, ...], ends: tuple[str, ...]
    ) -> float:
        """A2DP goes idle while the link stays up and the others keep streaming."""
        self.transport(t, address, "idle")
        self.speaker(t, address, "connected-idle")
        confirmed = t + CONFIRM_DELAY_S
        self.emit(
            confirmed,
            DropoutEvent(confirmed, address, "transport", together_with=together, start_t=t),
        )
        self.last_dropout[address] = t
        self.speaker(confirmed, address, "connected-idle", True, "annotation")
        back = t + TRANSPORT_OUTAGE_S
        self.transport(back, address, "active")
        self.speaker(back, address, "streaming", annotate=True)
        duration = round(back - t, 3)
        self.emit(
            back,
            DropoutEvent(back, address, "transport", duration, "end", back, ends, start_t=t),
        )
        return back

    def tagged(self) -> list[tuple[str, str]]:
        return [(tag, line) for _, _, tag, line in sorted(self.out)]

    @property
    def end(self) -> float:
        return max(at for at, _, _, _ in self.out)


def make_recording(seed: int = 1, slots: int = 30, miss: float = 0.2) -> Recording:
    """A seeded recording (see the module doc); `slots` periods of the periodic dropper.

    The recording ends as `watch` output often does: with the `end` line of the periodic
    dropper's last dropout."""
    rng = random.Random(seed)
    t0 = 1_700_000_000.0
    # The periodic dropper: a renewal process from its previous (true) drop.
    true_slots, t = [], t0 + 100.0 + rng.uniform(0, PERIOD_S)
    for _ in range(slots + 5):
        true_slots.append(round(t, 3))
        t += PERIOD_S * (1 + rng.uniform(-JITTER, JITTER))
    observed = [s for s in true_slots[:slots] if rng.random() >= miss]
    # Keep the first two and the last slot (the last is the end of the recording).
    for s in (true_slots[0], true_slots[1], true_slots[slots - 1]):
        if s not in observed:
            observed.append(s)
    observed.sort()
    limit = true_slots[slots - 1] - 60.0
    busy = list(observed)

    def free(t: float, margin: float) -> bool:
        return t0 + 60 < t < limit - margin and all(abs(t - b) > margin for b in busy)

    def pick(margin: float = 30.0) -> float:
        while True:
            t = round(rng.uniform(t0, limit), 3)
            if free(t, margin):
                busy.append(t)
                return t

    # Two unrelated extra drops of the periodic dropper, away from its slots.
    extras: list[float] = []
    while len(extras) < 2:
        t = round(rng.uniform(t0, limit), 3)
        if free(t, 30.0) and all(abs(t - s) > 0.15 * PERIOD_S for s in true_slots):
            extras.append(t)
            busy.append(t)
    # The random dropper: random times, alternately link and transport dropouts.
    random_drops = sorted(pick() for _ in range(9))
    # One drop of the random dropper 2 s after a drop of the periodic one: together.
    pair_at = observed[len(observed) // 2]
    together_t = round(pair_at + 2.0, 3)
    # A fleet-wide stop (music paused for a minute) and a resync (local) of the steady speaker.
    stop_t = pick(margin=120.0)
    busy.extend([stop_t + 30.0, stop_t + 60.0])
    resync_t = pick(margin=30.0)

    w = _Writer()
    snapshot_speakers = tuple(
        make_speaker(t0, a, "streaming", name=NAMES[a], codec=CODECS[a])
        for a in (STEADY, RANDOM, PERIODIC)
    )
    w.emit(t0, SnapshotEvent(t0, FleetCounts(3, 3, 3), snapshot_speakers))
    drops: dict[str, list[tuple[float, str]]] = {PERIODIC: [], RANDOM: []}
    for t in sorted(observed + extras):
        ends = (RANDOM,) if t == pair_at else ()
        w.link_drop(t, PERIODIC, rng.choice(["timeout", "remote", "unknown", None]), (), ends)
        drops[PERIODIC].append((t, "link"))
    for i, t in enumerate(random_drops):
        if i % 3 == 2:
            w.transport_drop(t, RANDOM, (), ())
            drops[RANDOM].append((t, "transport"))
        else:
            w.link_drop(t, RANDOM, "remote", (), ())
            drops[RANDOM].append((t, "link"))
    w.link_drop(together_t, RANDOM, "timeout", (PERIODIC,), (PERIODIC,))
    drops[RANDOM].append((together_t, "link"))
    drops[RANDOM].sort()
    # Music stops: every speaker idle within a second, back a minute later.
    for i, a in enumerate((STEADY, RANDOM, PERIODIC)):
        w.transport(stop_t + 0.3 * i, a, "idle")
        w.speaker(stop_t + 0.3 * i, a, "connected-idle", annotate=True)
        w.transport(stop_t + 60 + 0.2 * i, a, "active")
        w.speaker(stop_t + 60 + 0.2 * i, a, "streaming", annotate=True)
    w.link_drop(resync_t, STEADY, "local", (), ())
    truth = Truth(
        t0=t0,
        end=w.end,
        drops=drops,
        slots=true_slots,
        periodic=observed,
        together={PERIODIC: 1, RANDOM: 1},
    )
    return Recording(w.tagged(), truth)
