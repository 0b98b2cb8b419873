"""A seeded night at a venue as §4.2 event records, with the truth of its dropouts.

3–12 speakers play sessions of music with breaks. Music stopping releases each transport on its
own timer, staggered over 0–5 s (uniform, skewed, or one straggler at the full 5 s), sometimes
after HCI saw the media stop first (the speakers `stalled` for a moment). Real dropouts of every
kind happen during the music: a periodic dropper (every ~282 s ± 2 %, from its previous drop,
slots in breaks lost), random droppers (link loss, transport idle, a link loss after an idle, a
stall, a probe miss, a probe miss coinciding with a stall); most speakers are quiet (no dropout
at all). Operators resync speakers in breaks and during the music (`local`, with an `action`
record when btmon-tui ran it), speakers go idle and then lose their link in a break, old BlueZ
sends no reason anywhere. Lines are what `watch --json` writes without the dropout lines (the
mirror's transport line, then the speaker row), or, for logs of other writers, transport and
device lines only.

`night(seed)` returns the records in time order and `truth`: per speaker, the (start, kind) of
every dropout a reader must find.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from typing import Any

from core.fleet.events import ActionEvent, DeviceEvent, SnapshotEvent, SpeakerEvent, TransportEvent
from core.fleet.model import FleetCounts
from core.monitor import TICK_S
from tests.dropouts.records import make_speaker

#: A music stop spreads over up to this long (DESIGN §4.3; the detector's FLEET_STOP_SPREAD_S).
STOP_SPREAD_S = 5.0
#: The periodic dropper's period (the demo's firmware: 4.7 min) and its jitter.
PERIOD_S = 282.0
JITTER = 0.02
#: Kinds of the random droppers' dropouts and how often each comes.
RANDOM_KINDS = {
    "link": 4,
    "transport": 3,
    "idle-then-link": 1,
    "stall": 2,
    "probe": 1,
    "probe-only": 1,
    "probe+stall": 1,
}
TRUE_KIND = {"idle-then-link": "link", "probe+stall": "stall", "probe-only": "probe"}
#: Kinds that need another speaker streaming through them (else they are a music stop).
NEEDS_OTHERS = frozenset({"transport", "idle-then-link"})


def fresh_seed() -> int:
    """BTMON_DROPOUT_SEED (or BTMON_TEST_SEED) when set, to replay a failure; else a new one."""
    pinned = os.environ.get("BTMON_DROPOUT_SEED") or os.environ.get("BTMON_TEST_SEED")
    return int(pinned) if pinned else random.SystemRandom().randrange(1 << 31)


@dataclass
class Night:
    seed: int
    records: list[dict[str, Any]]
    #: address -> [(start, kind)] of its real dropouts.
    truth: dict[str, list[tuple[float, str]]]
    #: What the night holds, for failure messages.
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def addresses(self) -> list[str]:
        return sorted(self.truth)

    def count(self, address: str) -> int:
        return len(self.truth[address])


@dataclass(frozen=True)
class _Incident:
    address: str
    kind: str
    start: float
    end: float


class _Writer:
    """Records with the order the mirror emits them (transport line, then the speaker row)."""

    def __init__(self, addresses: list[str], rows: bool) -> None:
        self.rows = rows
        self.out: list[tuple[float, int, dict[str, Any]]] = []
        self.transport: dict[str, str | None] = {a: None for a in addresses}
        self.connected: dict[str, bool] = {a: True for a in addresses}
        #: When each speaker is out (its incidents, resyncs): a probe does not hear it then.
        self.down: dict[str, list[tuple[float, float]]] = {}

    def emit(self, t: float, record: dict[str, Any]) -> None:
        self.out.append((round(t, 4), len(self.out), {**record, "t": round(t, 4)}))

    def state(self, t: float, address: str, verdict: str) -> None:
        """The speaker's verdict changes (its transport line first when the state moves)."""
        state = {
            "streaming": "active",
            "stalled": "active",
            "connected-idle": "idle",
            "pending": "pending",
            "no-a2dp": None,
            "disconnected": None,
        }[verdict]
        if state != self.transport[address] and verdict != "disconnected":
            line = TransportEvent(t, address, state or "absent", None if state is None else "SBC")
            self.emit(t, line.to_json())
            self.transport[address] = state
        elif verdict == "disconnected":
            self.transport[address] = None
        if self.rows:
            self.emit(t, SpeakerEvent(t, make_speaker(t, address, verdict)).to_json())

    def device(self, t: float, address: str, connected: bool, reason: str | None) -> None:
        self.connected[address] = connected
        self.emit(t, DeviceEvent(t, address, connected, None if connected else reason).to_json())

    def records(self) -> list[dict[str, Any]]:
        return [record for _, _, record in sorted(self.out, key=lambda x: (x[0], x[1]))]


def night(seed: int, *, rows: bool | None = None) -> Night:
    """One seeded night (see the module doc); `rows` forces speaker rows on or off."""
    rng = random.Random(seed)
    n = rng.randint(3, 12)
    addresses = [f"B0:00:00:00:{seed % 256:02X}:{i:02X}" for i in range(n)]
    old_bluez = rng.random() < 0.4
    rows = rng.random() < 0.85 if rows is None else rows
    media_first = rng.random() < 0.3  # PipeWire + HCI: media stops before the release
    stagger = rng.choice(["uniform", "skewed", "straggler"])
    t0 = 1_790_000_000.0 + rng.uniform(0, 1e6)
    # Roles: one or two periodic droppers, a few random droppers, the rest quiet; sometimes
    # a speaker that never plays (connected, idle all night).
    shuffled = rng.sample(addresses, n)
    idle_all_night = {shuffled.pop()} if n > 3 and rng.random() < 0.3 else set()
    periodic = set(shuffled[: rng.choice([0, 1, 1, 2])])
    rest = shuffled[len(periodic) :]
    random_droppers = {a: 1 / rng.uniform(300, 2400) for a in rest[: rng.randint(0, len(rest))]}
    players = [a for a in addresses if a not in idle_all_night]

    # Sessions and breaks.
    sessions: list[tuple[float, float]] = []
    t = t0 + 30.0
    for _ in range(rng.randint(3, 6)):
        length = rng.uniform(600, 2400)
        sessions.append((t, t + length))
        # A break, or a pause between two tracks long enough for the release timers (the
        # music back 1–8 s after the stop's last release).
        t += length + (rng.uniform(6, 13) if rng.random() < 0.2 else rng.uniform(60, 900))
    end = t

    # Incidents during the music, per speaker, apart from each other and from the edges.
    busy: dict[str, list[tuple[float, float]]] = {a: [] for a in addresses}
    incidents: list[_Incident] = []

    def free(address: str, start: float, stop: float) -> bool:
        return all(stop + 10 < s or start - 10 > e for s, e in busy[address])

    def in_session(start: float, stop: float) -> bool:
        return any(a + 12 <= start and stop <= b - 12 for a, b in sessions)

    def add(address: str, kind: str, start: float, length: float) -> None:
        start, stop = round(start, 3), round(start + length, 3)
        if in_session(start, stop) and free(address, start, stop):
            busy[address].append((start, stop))
            incidents.append(_Incident(address, kind, start, stop))

    for address in periodic:
        slot = t0 + rng.uniform(0, PERIOD_S)
        while slot < end:
            kind = "link" if rng.random() < 0.8 else "transport"
            add(address, kind, slot, rng.uniform(4, 12))
            slot += PERIOD_S * (1 + rng.uniform(-JITTER, JITTER))
    # Without speaker rows a stall cannot be seen (transport active): no stalls then.
    offered = {k: v for k, v in RANDOM_KINDS.items() if rows or "stall" not in k}
    kinds, weights = zip(*offered.items(), strict=True)
    for address, rate in random_droppers.items():
        for a, b in sessions:
            at = a
            while True:
                at += rng.expovariate(rate)
                if at >= b:
                    break
                add(address, rng.choices(kinds, weights)[0], at, rng.uniform(2, 25))
    # Operator resyncs during the music (not dropouts), and in breaks.
    resyncs = []
    for a, b in sessions:
        if rng.random() < 0.4 and players:
            who = rng.choice(players)
            at = rng.uniform(a + 20, b - 30)
            if free(who, at, at + 8):
                busy[who].append((at, at + 8))
                resyncs.append((who, at))
    # Transport-like dropouts need another speaker streaming through their first 5 s.
    incidents.sort(key=lambda i: i.start)
    kept = []
    for inc in incidents:
        if inc.kind in NEEDS_OTHERS:
            others = [
                o
                for o in players
                if o != inc.address
                and all(
                    inc.start + STOP_SPREAD_S + 2 < s - 1 or inc.start - 1 > e for s, e in busy[o]
                )
            ]
            if not others:
                busy[inc.address].remove((inc.start, inc.end))
                continue
        kept.append(inc)
    incidents = kept

    w = _Writer(addresses, rows)
    w.down = busy
    truth: dict[str, list[tuple[float, str]]] = {a: [] for a in addresses}
    reason = (lambda r: None) if old_bluez else (lambda r: r)
    # The night starts between sessions: everybody connected and idle.
    snapshot = tuple(make_speaker(t0, a, "connected-idle") for a in addresses)
    w.emit(t0, SnapshotEvent(t0, FleetCounts(n, n, 0), snapshot).to_json())
    for a in addresses:
        w.transport[a] = "idle"

    disconnected_until: dict[str, float] = {}
    for index, (start, stop) in enumerate(sessions):
        for a in players:
            at = start + rng.uniform(0, 3)
            if a in disconnected_until:
                w.device(at - 2.5, a, True, None)
                w.state(at - 2.5, a, "no-a2dp")
                w.state(at - 2.0, a, "connected-idle")
                del disconnected_until[a]
            w.state(at, a, "pending")
            w.state(at + rng.uniform(0.2, 1.0), a, "streaming")
        for inc in (i for i in incidents if start <= i.start <= stop):
            _incident(w, rng, inc, reason, players, truth)
        for who, at in resyncs:
            if start <= at <= stop:
                _resync(w, rng, who, at, reason("local"), streaming=True)
        # Music stops: each transport released on its own timer.
        spread = STOP_SPREAD_S if stagger == "straggler" else rng.uniform(0, STOP_SPREAD_S)
        offsets = {}
        for a in players:
            u = rng.random()
            offsets[a] = spread * (u**4 if stagger != "uniform" else u)
        if stagger == "straggler":
            offsets[rng.choice(players)] = STOP_SPREAD_S
        for a in players:
            if media_first and offsets[a] > 1.2:
                w.state(stop + 1.0 + rng.uniform(0, 0.15), a, "stalled")
            w.state(stop + offsets[a], a, "connected-idle")
        # The break: a resync, a speaker that goes idle and then loses its link.
        following = sessions[index + 1][0] if index + 1 < len(sessions) else end
        if following - stop < 60:
            continue  # a pause: nothing else happens
        if rng.random() < 0.4:
            who = rng.choice(players)
            _resync(w, rng, who, stop + rng.uniform(8, 40), reason("local"), streaming=False)
        elif rng.random() < 0.5:
            who = rng.choice(players)
            gone = stop + offsets[who] + rng.choice([rng.uniform(0.3, 2.9), rng.uniform(3, 50)])
            w.state(gone, who, "no-a2dp")
            w.device(gone + 0.0004, who, False, reason(rng.choice(["timeout", "remote"])))
            w.state(gone + 0.0004, who, "disconnected")
            disconnected_until[who] = following
    notes = {
        "speakers": n,
        "old_bluez": old_bluez,
        "rows": rows,
        "media_first": media_first,
        "stagger": stagger,
        "sessions": len(sessions),
        "periodic": sorted(periodic),
        "random": sorted(random_droppers),
        "resyncs": len(resyncs),
    }
    for a in truth:
        truth[a].sort()
    return Night(seed, w.records(), truth, notes)


def _incident(
    w: _Writer,
    rng: random.Random,
    inc: _Incident,
    reason: Any,
    players: list[str],
    truth: dict[str, list[tuple[float, str]]],
) -> None:
    a, s, e = inc.address, inc.start, inc.end
    truth[a].append((s, TRUE_KIND.get(inc.kind, inc.kind)))
    if inc.kind == "link":
        w.state(s, a, "no-a2dp")
        gap = 0.0004 if rng.random() < 0.8 else rng.uniform(0.01, 1.5)
        w.device(s + gap, a, False, reason(rng.choice(["timeout", "remote", "unknown"])))
        w.state(s + gap, a, "disconnected")
        _back(w, a, max(e, s + 3.0), linked=False)
    elif inc.kind == "transport":
        w.state(s, a, rng.choice(["connected-idle", "connected-idle", "no-a2dp"]))
        _back(w, a, e, linked=True)
    elif inc.kind == "idle-then-link":
        w.state(s, a, "connected-idle")
        lost = s + rng.uniform(0.3, 2.8)
        w.device(lost, a, False, reason("timeout"))
        w.state(lost, a, "disconnected")
        _back(w, a, max(e, lost + 3.0), linked=False)
    elif inc.kind == "stall":
        w.state(s, a, "stalled")
        w.state(e, a, "streaming")
    elif inc.kind == "probe":
        _probe(w, s, players, missed=a)
        w.state(s + 0.3, a, "stalled")
        _probe(w, e, players, missed=None, heard=a)
        w.state(e + 0.2, a, "streaming")
    elif inc.kind == "probe-only":
        # A miss the verdict never followed (no `stalled` row, no later probe of it).
        _probe(w, s, players, missed=a)
    else:  # probe+stall: HCI saw the stall, a probe a moment later missed it too
        w.state(s, a, "stalled")
        _probe(w, s + rng.uniform(0.1, min(3.0, e - s - 0.5)), players, missed=a)
        w.state(e, a, "streaming")


def _back(w: _Writer, address: str, at: float, *, linked: bool) -> None:
    """bluetoothd reconnects (or the audio server restarts the stream): streaming at `at`."""
    if not linked:
        w.device(at - 1.0, address, True, None)
        w.state(at - 1.0, address, "no-a2dp")
    w.state(at - 0.6, address, "pending")
    w.state(at, address, "streaming")


def _probe(
    w: _Writer, t: float, players: list[str], missed: str | None, heard: str | None = None
) -> None:
    """A probe record: every playing speaker heard (`heard` too, back at `t`), but `missed`."""
    results = [
        {"address": a, "name": f"Speaker {a[-2:]}", "detected": a != missed}
        for a in players
        if a in (missed, heard)
        or (w.transport[a] == "active" and not any(s - 1 <= t <= e + 1 for s, e in w.down[a]))
    ]
    w.emit(t, {"type": "probe", "results": results, "spread_ms": 3.0, "source": "microphone"})


def _resync(
    w: _Writer, rng: random.Random, address: str, at: float, reason: str | None, *, streaming: bool
) -> None:
    """An operator's resync: disconnect (`local`; null on old BlueZ), reconnect, and, when
    btmon-tui ran it, its `action` record as it ends."""
    w.state(at, address, "no-a2dp")
    w.device(at + 0.0004, address, False, reason)
    w.state(at + 0.0004, address, "disconnected")
    back = at + rng.uniform(2.0, 5.0)
    w.device(back, address, True, None)
    w.state(back, address, "no-a2dp")
    if streaming:
        w.state(back + 0.3, address, "pending")
        w.state(back + 1.0, address, "streaming")
    else:
        w.state(back + 0.3, address, "connected-idle")
    if reason is None or rng.random() < 0.7:
        # Old BlueZ: only the action record tells the operator's disconnect from a link loss.
        done = back + (1.2 if streaming else 0.5)
        started = at - rng.uniform(0.05, 0.5)
        action = ActionEvent(done, address, "resync", "ok", None, "", round(done - started, 2))
        w.emit(done, action.to_json())


#: Record types the live Monitor hands its detector (transport lines it does not: it has rows).
LIVE_TYPES = frozenset({"speaker", "device", "action", "probe"})


def run_live(
    records: list[dict[str, Any]],
    detector: Any,
    tick_s: float = TICK_S,
    types: frozenset[str] | None = LIVE_TYPES,
) -> list[dict[str, Any]]:
    """Feed records one by one as the Monitor does (`types`; None: every record, snapshots
    and transport lines too), with `tick(now)` every `tick_s` as time advances; returns the
    dropout lines in the order they were written."""
    lines: list[dict[str, Any]] = []
    next_tick: float | None = None
    for record in records:
        t = float(record["t"])
        if next_tick is None:
            next_tick = t + tick_s
        while next_tick < t:
            lines.extend(e.to_json() for e in detector.tick(next_tick))
            next_tick += tick_s
        if types is None or record.get("type") in types:
            lines.extend(e.to_json() for e in detector.observe(record, t))
    if next_tick is not None:
        # Ticks covering twice the stop spread after the last record, however long a tick.
        for _ in range(math.ceil(2 * STOP_SPREAD_S / tick_s) + 1):
            lines.extend(e.to_json() for e in detector.tick(next_tick))
            next_tick += tick_s
    return lines


#: Ways other writers' logs differ from ours; the truth is the same.
VARIANTS = ("plain", "no-snapshot", "row-lag", "no-teardown")


def perturbed(n: Night, variant: str) -> Night:
    """The night as another writer might log it: without the first snapshot, with speaker
    rows stamped up to 80 ms after their transport line (each stamped on arrival), or with
    a link loss's transport teardown unlogged (the device line first)."""
    rng = random.Random(n.seed ^ 0x5A5A)
    records = list(n.records)
    if variant == "no-snapshot":
        records = [r for r in records if r["type"] != "snapshot"]
    elif variant == "row-lag":
        lagged = [
            {**r, "t": round(r["t"] + rng.uniform(0, 0.08), 4)} if r["type"] == "speaker" else r
            for r in records
        ]
        records = sorted(lagged, key=lambda r: r["t"])
    elif variant == "no-teardown":
        gone = {
            (r["address"], round(r["t"] - 0.0004, 4))
            for r in records
            if r["type"] == "device" and r["connected"] is False
        }
        records = [
            r
            for r in records
            if not (
                (r["type"] == "speaker" and r["verdict"] == "no-a2dp")
                or (r["type"] == "transport" and r["state"] == "absent")
            )
            or (r["address"], r["t"]) not in gone
        ]
    return Night(n.seed, records, n.truth, {**n.notes, "variant": variant})
