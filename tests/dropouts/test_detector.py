"""DropoutDetector (DESIGN §4.3) driven by §4.2 record sequences, with time passed in.

Each case is a list of steps (a record, observed at its own `t`, or a Tick(now)) and the exact
dropout events the whole sequence must produce, plus the dropouts the detector then holds.
Times are T0 + a few seconds, so the expected values are exact. An event's `t` is when the line
is written (a held transport loss: the tick that judged it), `start_t` when the audio stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from core.dropouts.detector import (
    FLEET_STOP_SPREAD_S,
    SPREAD_SLACK_S,
    STREAMED_RECENTLY_S,
    TOGETHER_WITHIN_S,
    DropoutDetector,
)
from tests.dropouts.records import A, B, C, device, dropout_record, old_dropout_record, speaker

T0 = 1_700_000_000.0


@dataclass(frozen=True)
class Tick:
    at: float


Step = dict[str, Any] | Tick
#: (address, phase, kind, start_t, t, duration_s, end_t, together_with), times relative to T0.
Ev = tuple[str, str, str, float, float, float | None, float | None, tuple[str, ...]]


def at(dt: float) -> float:
    return T0 + dt


def spk(dt: float, address: str, verdict: str, **kwargs: Any) -> dict[str, Any]:
    return speaker(at(dt), address, verdict, **kwargs)


def dev(dt: float, address: str, connected: bool, reason: str | None = None) -> dict[str, Any]:
    return device(at(dt), address, connected, reason)


def tick(dt: float) -> Tick:
    return Tick(at(dt))


def fleet(dt: float, verdict: str = "streaming", *who: str) -> list[Step]:
    return [spk(dt, a, verdict) for a in (who or (A, B, C))]


def link_loss(dt: float, address: str, reason: str | None) -> list[Step]:
    """What the mirror emits when a streaming speaker vanishes: the transport goes first (a
    speaker row still connected, no A2DP), then the link, 0.4 ms later."""
    return [
        spk(dt, address, "no-a2dp", connected=True),
        dev(dt + 0.0004, address, False, reason),
        spk(dt + 0.0004, address, "disconnected"),
    ]


def reconnect(dt: float, address: str) -> list[Step]:
    """bluetoothd reconnects: link, A2DP pending, streaming 1.1 s later."""
    return [
        dev(dt, address, True),
        spk(dt, address, "no-a2dp"),
        spk(dt + 0.3, address, "pending"),
        spk(dt + 1.1, address, "streaming"),
    ]


def run(steps: list[Step], detector: DropoutDetector | None = None) -> list[Ev]:
    """Feed the steps; the dropout events they caused, times relative to T0."""
    detector = detector if detector is not None else DropoutDetector()
    out: list[Ev] = []
    for step in steps:
        if isinstance(step, Tick):
            events = detector.tick(step.at)
        else:
            events = detector.observe(step, float(step["t"]))
        for event in events:
            data = event.to_json()
            assert data["type"] == "dropout"
            out.append(
                (
                    data["address"],
                    data["phase"],
                    data["kind"],
                    round(data["start_t"] - T0, 6),
                    round(data["t"] - T0, 6),
                    data["duration_s"],
                    None if data["end_t"] is None else round(data["end_t"] - T0, 6),
                    tuple(data["together_with"]),
                )
            )
    return out


def held(detector: DropoutDetector, address: str) -> list[tuple[str, float, float | None]]:
    """The detector's dropouts of one speaker: (kind, start, end) relative to T0."""
    return [
        (d.kind, round(d.start - T0, 6), None if d.end is None else round(d.end - T0, 6))
        for d in detector.dropouts(address)
    ]


# -- the table ------------------------------------------------------------------------------------


def ticks(start: float, stop: float, step: float = 0.5) -> list[Step]:
    """The Monitor's ticks (every 0.5 s) from start to stop, both included."""
    count = round((stop - start) / step)
    return [tick(start + k * step) for k in range(count + 1)]


CASES: dict[str, tuple[list[Step], list[Ev]]] = {
    # Link loss while streaming: ONE link dropout from the moment the transport went (the
    # teardown 0.4 ms before the link is not a transport dropout of its own), reported when
    # the link goes, ended when the speaker streams again.
    "link timeout": (
        [*fleet(0), *link_loss(10, A, "timeout"), tick(12.5), *reconnect(16, A), tick(30)],
        [
            (A, "start", "link", 10.0, 10.0004, None, None, ()),
            (A, "end", "link", 10.0, 17.1, 7.1, 17.1, ()),
        ],
    ),
    "link remote": (
        [*fleet(0), *link_loss(10, A, "remote"), tick(12.5), *reconnect(16, A)],
        [
            (A, "start", "link", 10.0, 10.0004, None, None, ()),
            (A, "end", "link", 10.0, 17.1, 7.1, 17.1, ()),
        ],
    ),
    "link, old BlueZ without reason": (
        [*fleet(0), *link_loss(10, A, None), tick(12.5), *reconnect(16, A)],
        [
            (A, "start", "link", 10.0, 10.0004, None, None, ()),
            (A, "end", "link", 10.0, 17.1, 7.1, 17.1, ()),
        ],
    ),
    "link, device record before the speaker row": (
        [
            *fleet(0),
            dev(10, A, False, "timeout"),
            spk(10, A, "disconnected"),
            tick(16),
            *reconnect(20, A),
        ],
        [
            (A, "start", "link", 10.0, 10.0, None, None, ()),
            (A, "end", "link", 10.0, 21.1, 11.1, 21.1, ()),
        ],
    ),
    "link, speaker row before the device record": (
        [*fleet(0), spk(10, A, "disconnected"), dev(10.2, A, False, None), *reconnect(20, A)],
        [
            (A, "start", "link", 10.0, 10.2, None, None, ()),
            (A, "end", "link", 10.0, 21.1, 11.1, 21.1, ()),
        ],
    ),
    "link, teardown 1.5 s before the link loss": (
        # The transport went at 10, the link at 11.5: one link dropout from 10.
        [
            *fleet(0),
            spk(10, A, "no-a2dp", connected=True),
            tick(11),
            dev(11.5, A, False, "timeout"),
            spk(11.5, A, "disconnected"),
            tick(16),
            *reconnect(16, A),
        ],
        [
            (A, "start", "link", 10.0, 11.5, None, None, ()),
            (A, "end", "link", 10.0, 17.1, 7.1, 17.1, ()),
        ],
    ),
    # Idle first, the link 2.9 s later, the others streaming on: one link dropout from the
    # idle, reported once the fleet has shown it is no music stop.
    "idle, then the link, others stream": (
        [
            *fleet(0),
            spk(10, A, "connected-idle"),
            dev(12.9, A, False, None),
            spk(12.9, A, "disconnected"),
            *ticks(13, 16),
        ],
        [(A, "start", "link", 10.0, 16.0, None, None, ())],
    ),
    # Our resync or a user's disconnect: not a dropout, and the transport loss before it is
    # not one either.
    "local disconnect": (
        [*fleet(0), *link_loss(10, A, "local"), *ticks(12.5, 20), *reconnect(21, A)],
        [],
    ),
    # The whole fleet went idle (music stopped) long before the link went: nothing.
    "disconnect after a long idle": (
        [
            *fleet(0),
            *fleet(10, "connected-idle"),
            tick(12.5),
            tick(60),
            dev(100, A, False, "timeout"),
            spk(100, A, "disconnected"),
            tick(110),
        ],
        [],
    ),
    "disconnect of a speaker that never streamed": (
        [
            spk(0, A, "connected-idle"),
            *fleet(0, "streaming", B, C),
            tick(5),
            dev(50, A, False, "remote"),
            spk(50, A, "disconnected"),
            tick(60),
        ],
        [],
    ),
    # Music stopped, and 2.9 s later one speaker's link went (old BlueZ: no reason): its
    # audio had stopped with everyone's, no dropout.
    "link 2.9 s after a music stop": (
        [
            *fleet(0),
            *fleet(10, "connected-idle"),
            dev(12.9, A, False, None),
            spk(12.9, A, "disconnected"),
            *ticks(13, 20),
        ],
        [],
    ),
    # A2DP idle while linked and the others keep streaming: a transport dropout, reported
    # once FLEET_STOP_SPREAD_S (and its slack, 0.5 s) has passed, once, dated from the idle.
    "transport idle, others stream": (
        [
            *fleet(0),
            spk(10, A, "connected-idle"),
            *ticks(10.5, 15.5),
            tick(16),
            tick(20),
            spk(30, A, "streaming"),
            tick(40),
        ],
        [
            (A, "start", "transport", 10.0, 16.0, None, None, ()),
            (A, "end", "transport", 10.0, 30.0, 20.0, 30.0, ()),
        ],
    ),
    "transport gone (no-a2dp), others stream": (
        [*fleet(0), spk(10, A, "no-a2dp"), tick(16.0), spk(16.25, A, "streaming")],
        [
            (A, "start", "transport", 10.0, 16.0, None, None, ()),
            (A, "end", "transport", 10.0, 16.25, 6.25, 16.25, ()),
        ],
    ),
    "transport pending, others stream": (
        [*fleet(0), spk(10, A, "pending"), tick(16.0), spk(17, A, "streaming")],
        [
            (A, "start", "transport", 10.0, 16.0, None, None, ()),
            (A, "end", "transport", 10.0, 17.0, 7.0, 17.0, ()),
        ],
    ),
    # Back before the hold ended, the others streaming all along: a short dropout, reported
    # when it ends.
    "transport idle 1.5 s, others stream": (
        [*fleet(0), spk(10, A, "connected-idle"), tick(11), spk(11.5, A, "streaming"), tick(20)],
        [
            (A, "start", "transport", 10.0, 11.5, None, None, ()),
            (A, "end", "transport", 10.0, 11.5, 1.5, 11.5, ()),
        ],
    ),
    "transport idle while nobody else streams": (
        [
            spk(0, A, "streaming"),
            *fleet(0, "connected-idle", B, C),
            spk(10, A, "connected-idle"),
            *ticks(10, 20),
        ],
        [],
    ),
    # Music stopped: the whole fleet idle within a second. Not a dropout, neither at the
    # ticks nor when the music comes back.
    "whole fleet idle at once": (
        [
            *fleet(0),
            spk(10.0, A, "connected-idle"),
            spk(10.2, B, "connected-idle"),
            spk(10.4, C, "connected-idle"),
            *ticks(10.5, 20),
            *fleet(60),
            tick(70),
        ],
        [],
    ),
    "whole fleet idle, one tick late": (
        [*fleet(0), *fleet(10, "connected-idle"), tick(25)],
        [],
    ),
    # Transports released one by one, exactly FLEET_STOP_SPREAD_S from first to last: a stop.
    "music stop spread over 5.0 s": (
        [
            *fleet(0),
            spk(10.0, A, "connected-idle"),
            spk(12.5, B, "connected-idle"),
            tick(15.0),
            spk(15.0, C, "connected-idle"),
            *ticks(15.5, 25),
        ],
        [],
    ),
    # A stop stamped a little late (5.4 s: the slack for timestamps of other writers) is
    # still a stop.
    "music stop spread over 5.4 s": (
        [
            *fleet(0),
            spk(10.0, A, "connected-idle"),
            spk(12.5, B, "connected-idle"),
            tick(15.0),
            spk(15.4, C, "connected-idle"),
            *ticks(15.5, 25),
        ],
        [],
    ),
    # 5.6 s: C streamed on past A's hold: A's silence was a dropout (judged as of its
    # deadline, although the tick comes after C stopped); B's was not (C stopped 3.1 s later).
    "music stop spread over 5.6 s": (
        [
            *fleet(0),
            spk(10.0, A, "connected-idle"),
            spk(12.5, B, "connected-idle"),
            tick(15.0),
            spk(15.6, C, "connected-idle"),
            *ticks(15.5, 25),
        ],
        [(A, "start", "transport", 10.0, 16.0, None, None, ())],
    ),
    # A short pause: every transport released, the music back 2 s after the last. The others
    # stream again by A's deadline, but they did not stream all through its silence: no dropout.
    "short pause between two tracks": (
        [
            *fleet(0),
            spk(10.0, A, "connected-idle"),
            spk(11.0, B, "connected-idle"),
            spk(13.0, C, "connected-idle"),
            spk(15.0, B, "streaming"),
            spk(15.2, C, "streaming"),
            *ticks(15.5, 17),
            spk(17.5, A, "streaming"),
            *ticks(18, 25),
        ],
        [],
    ),
    # Transport active, no media: a stall at once (no hold), once.
    "stall": (
        [*fleet(0), spk(10, A, "stalled"), spk(11, A, "stalled"), spk(12.5, A, "streaming")],
        [
            (A, "start", "stall", 10.0, 10.0, None, None, ()),
            (A, "end", "stall", 10.0, 12.5, 2.5, 12.5, ()),
        ],
    ),
    "stall, then the link goes: still one dropout": (
        [
            *fleet(0),
            spk(10, A, "stalled"),
            *link_loss(11, A, "timeout"),
            *ticks(12, 18),
            *reconnect(19, A),
        ],
        [
            (A, "start", "stall", 10.0, 10.0, None, None, ()),
            (A, "end", "stall", 10.0, 20.1, 10.1, 20.1, ()),
        ],
    ),
    # Media stopped first (PipeWire pauses an idle node), then every transport was released:
    # the stall was music stopping, retracted once the fleet has shown it.
    "stall, then a music stop: retracted": (
        [
            *fleet(0),
            spk(10, A, "stalled"),
            spk(11, A, "connected-idle"),
            spk(12, B, "connected-idle"),
            spk(14, C, "connected-idle"),
            *ticks(14.5, 20),
        ],
        [
            (A, "start", "stall", 10.0, 10.0, None, None, ()),
            (A, "cancelled", "stall", 10.0, 16.0, None, None, ()),
        ],
    ),
    # The same, but the next song starts before the stall's deadline (a short break): judged
    # when it comes back, retracted, not ended as a dropout (CI seed 271662920).
    "stall, a music stop, music again within 5 s: retracted": (
        [
            *fleet(0),
            spk(9.3, C, "connected-idle"),
            spk(10, A, "stalled"),
            spk(10.01, B, "connected-idle"),
            spk(10.7, A, "connected-idle"),
            spk(15.1, A, "streaming"),
            spk(17.0, B, "streaming"),
            spk(17.4, C, "streaming"),
            *ticks(17.5, 25),
        ],
        [
            (A, "start", "stall", 10.0, 10.0, None, None, ()),
            (A, "cancelled", "stall", 10.0, 15.1, None, None, ()),
        ],
    ),
    # Two speakers within TOGETHER_WITHIN_S: each dropout names the other (the first one's
    # start event cannot know yet; its end event and its record do). A third, later: alone.
    "together": (
        [
            *fleet(0),
            *link_loss(10, A, "timeout"),
            *link_loss(14.9, B, "timeout"),
            *link_loss(30, C, "timeout"),
            *reconnect(40, A),
            *reconnect(42, B),
            *reconnect(44, C),
        ],
        [
            (A, "start", "link", 10.0, 10.0004, None, None, ()),
            (B, "start", "link", 14.9, 14.9004, None, None, (A,)),
            (C, "start", "link", 30.0, 30.0004, None, None, ()),
            (A, "end", "link", 10.0, 41.1, 31.1, 41.1, (B,)),
            (B, "end", "link", 14.9, 43.1, 28.2, 43.1, (A,)),
            (C, "end", "link", 30.0, 45.1, 15.1, 45.1, ()),
        ],
    ),
    # Replays: the same records twice do not make a second dropout or a second end.
    "duplicate records": (
        [
            *fleet(0),
            *fleet(0),
            *link_loss(10, A, "timeout"),
            *link_loss(10, A, "timeout"),
            tick(12.5),
            tick(12.5),
            *reconnect(16, A),
            spk(17.1, A, "streaming"),
            tick(30),
        ],
        [
            (A, "start", "link", 10.0, 10.0004, None, None, ()),
            (A, "end", "link", 10.0, 17.1, 7.1, 17.1, ()),
        ],
    ),
    "records without an address, and other types, are ignored": (
        [
            *fleet(0),
            {"type": "speaker", "t": at(5), "verdict": "stalled"},
            {"type": "source", "t": at(6), "state": "connected", "detail": ""},
            {"type": "probe", "t": at(7), "results": []},
            tick(20),
        ],
        [],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_table(name: str) -> None:
    steps, expected = CASES[name]
    detector = DropoutDetector()
    events = run(steps, detector)
    assert events == expected
    # Lines of one stream are in time order.
    assert [e[4] for e in events] == sorted(e[4] for e in events)
    # What the detector holds afterwards is what the events said: one dropout per start,
    # none for a cancelled one.
    cancelled = {(e[0], e[3]) for e in expected if e[1] == "cancelled"}
    starts = [e for e in expected if e[1] == "start" and (e[0], e[3]) not in cancelled]
    ends = {(e[0], e[3]): e[6] for e in expected if e[1] == "end"}
    for address in (A, B, C):
        assert held(detector, address) == [
            (kind, start, ends.get((addr, start)))
            for addr, _, kind, start, *_ in starts
            if addr == address
        ]


def test_constants_the_table_relies_on() -> None:
    assert FLEET_STOP_SPREAD_S == 5.0
    assert SPREAD_SLACK_S == 0.5
    assert STREAMED_RECENTLY_S == 3.0
    assert TOGETHER_WITHIN_S == 5.0


def test_together_is_kept_in_the_history_both_ways() -> None:
    detector = DropoutDetector()
    run(CASES["together"][0], detector)
    assert [d.together_with for d in detector.dropouts(A)] == [(B,)]
    assert [d.together_with for d in detector.dropouts(B)] == [(A,)]
    assert [d.together_with for d in detector.dropouts(C)] == [()]


def test_together_boundary() -> None:
    """Exactly TOGETHER_WITHIN_S apart is together; 0.1 s more is not."""
    detector = DropoutDetector()
    run([*fleet(0), *link_loss(10, A, "remote"), *link_loss(15, B, "remote")], detector)
    run([*link_loss(20.1, C, "remote")], detector)
    assert [d.together_with for d in detector.dropouts(B)] == [(A,)]
    assert [d.together_with for d in detector.dropouts(C)] == [()]


def test_end_event_round_trip_fields() -> None:
    """The end event carries duration_s (rounded to ms) and end_t, its `t` is the end, and
    `start_t` is the start in both phases."""
    detector = DropoutDetector()
    run([*fleet(0)], detector)
    (start,) = detector.observe(spk(10, A, "stalled"), at(10))
    (end,) = detector.observe(spk(13.12345, A, "streaming"), at(13.12345))
    assert start.to_json() == dropout_record(at(10), A, "stall")
    assert end.to_json() == {
        "type": "dropout",
        "t": at(13.12345),
        "address": A,
        "kind": "stall",
        "phase": "end",
        "start_t": at(10),
        "end_t": at(13.12345),
        "duration_s": 3.123,
        "together_with": [],
    }


def test_no_dropout_without_any_prior_state() -> None:
    """A disconnect of a speaker the detector never saw: nothing (it may never have played)."""
    detector = DropoutDetector()
    assert detector.observe(dev(10, A, False, "timeout"), at(10)) == []
    assert detector.dropouts(A) == []
    assert detector.dropouts("00:00:00:00:00:00") == []
    assert detector.period(A) is None
    assert detector.last_dropout(A) is None


# -- history records -----------------------------------------------------------------------------


def test_history_records_are_remembered_without_events() -> None:
    detector = DropoutDetector()
    records = [
        dropout_record(at(100), A, "link", t=at(100.0004)),
        dropout_record(at(100), A, "link", end_t=at(106)),
        dropout_record(at(50), A, "transport", end_t=at(59)),  # older, out of order
        dropout_record(at(200), A, "transport", t=at(205.5)),
    ]
    for record in records:
        assert detector.observe(record, at(1000)) == []
    expected = [("transport", 50.0, 59.0), ("link", 100.0, 106.0), ("transport", 200.0, None)]
    assert held(detector, A) == expected
    # The same log read again (a restart that loads it twice): no duplicates, end kept.
    for record in [*records, dropout_record(at(100), A, "link")]:
        assert detector.observe(record, at(2000)) == []
    assert held(detector, A) == expected
    assert detector.last_dropout(A) == at(200)
    assert detector.tick(at(3000)) == []


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_history_old_and_new_records_alike(order: str) -> None:
    """Records written before `start_t` existed (`t` = start in both phases) and new ones
    (`t` = when written, `start_t`) give the same history, in any order."""
    old = [
        old_dropout_record(at(10), A, "link"),
        old_dropout_record(at(10), A, "link", end_t=at(16.8)),
        old_dropout_record(at(292), A, "transport"),
        old_dropout_record(at(292), A, "transport", end_t=at(301)),
    ]
    new = [
        dropout_record(at(574), A, "transport", t=at(579.5)),
        dropout_record(at(574), A, "transport", end_t=at(583)),
        dropout_record(at(856), A, "link", t=at(856.0004)),
    ]
    detector = DropoutDetector()
    records = old + new
    for record in records if order == "forward" else list(reversed(records)):
        detector.observe(record, at(1000))
    assert held(detector, A) == [
        ("link", 10.0, 16.8),
        ("transport", 292.0, 301.0),
        ("transport", 574.0, 583.0),
        ("link", 856.0, None),
    ]


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_history_cancelled_records(order: str) -> None:
    """A `cancelled` record takes its dropout (address, kind, start_t) out of the history and
    out of the others' together_with; reading the log again does not revive it."""
    records = [
        dropout_record(at(10), A, "stall"),
        dropout_record(at(12), B, "link", together_with=(A,)),
        dropout_record(at(12), B, "link", end_t=at(20), together_with=(A,)),
        dropout_record(at(10), A, "stall", t=at(15.5), cancelled=True),
        dropout_record(at(400), A, "stall"),
    ]
    detector = DropoutDetector()
    for record in records if order == "forward" else list(reversed(records)):
        detector.observe(record, at(1000))
    for record in records:
        detector.observe(record, at(2000))
    assert held(detector, A) == [("stall", 400.0, None)]
    assert held(detector, B) == [("link", 12.0, 20.0)]
    assert [d.together_with for d in detector.dropouts(B)] == [()]


def test_history_one_interruption_from_two_sources() -> None:
    """Logs of versions before issue 11: a missed probe logged a `probe` dropout (never
    ended) and the `stall` it caused a moment later (ended): one interruption, from the
    probe's start to the stall's end. A later, separate drop stays separate."""
    detector = DropoutDetector()
    for record in [
        old_dropout_record(at(100), A, "probe"),
        old_dropout_record(at(100.6), A, "stall"),
        old_dropout_record(at(100.6), A, "stall", end_t=at(131)),
        old_dropout_record(at(140), A, "link"),
        old_dropout_record(at(140), A, "link", end_t=at(147)),
        old_dropout_record(at(150), A, "stall"),
    ]:
        detector.observe(record, at(1000))
    assert held(detector, A) == [
        ("probe", 100.0, 131.0),
        ("link", 140.0, 147.0),
        ("stall", 150.0, None),
    ]


def test_history_end_only_record() -> None:
    """A log that kept only the end line of a dropout still counts it once, with its end."""
    detector = DropoutDetector()
    detector.observe(dropout_record(at(10), A, "stall", end_t=at(12)), at(20))
    detector.observe(dropout_record(at(10), A, "stall"), at(20))
    assert held(detector, A) == [("stall", 10.0, 12.0)]


def test_history_keeps_together_with() -> None:
    detector = DropoutDetector()
    detector.observe(dropout_record(at(10), A, "link"), at(20))
    detector.observe(dropout_record(at(10), A, "link", end_t=at(16), together_with=(B,)), at(20))
    detector.observe(dropout_record(at(12), B, "link", together_with=(A,)), at(20))
    assert [d.together_with for d in detector.dropouts(A)] == [(B,)]
    assert [d.together_with for d in detector.dropouts(B)] == [(A,)]


def test_history_gives_a_period_and_live_drops_extend_it() -> None:
    """Six recorded drops 282 s apart (±1 %): a period before any live drop; a live drop on
    the rhythm is counted and the period stays; the prediction moves on by one period."""
    gaps = [281.0, 283.5, 280.2, 284.0, 282.3]
    times = [0.0]
    for g in gaps:
        times.append(times[-1] + g)
    detector = DropoutDetector()
    for t in times:
        detector.observe(dropout_record(at(t), A, "link"), at(t))
        detector.observe(dropout_record(at(t), A, "link", end_t=at(t + 6)), at(t + 6))
    period = detector.period(A)
    assert period is not None
    mean = (times[-1] - times[0]) / len(gaps)
    assert period.period_s == pytest.approx(mean, rel=0.002)
    now = at(times[-1] + 100)
    assert period.next_expected(now) == pytest.approx(at(times[-1]) + period.period_s, abs=0.01)

    live = times[-1] + 281.5
    run([*fleet(live - 100), *link_loss(live, A, "timeout")], detector)
    assert len(detector.dropouts(A)) == len(times) + 1
    again = detector.period(A)
    assert again is not None
    assert again.period_s == pytest.approx(282.0, rel=0.01)
    assert again.next_expected(at(live + 10)) == pytest.approx(at(live) + again.period_s, abs=0.01)


def test_replay_order_does_not_matter_for_history() -> None:
    records = [dropout_record(at(t), A, "link") for t in (0.0, 282.0, 564.0, 846.0, 1128.0)]
    forward, backward = DropoutDetector(), DropoutDetector()
    for record in records:
        forward.observe(record, at(2000))
    for record in reversed(records):
        backward.observe(record, at(2000))
    assert held(forward, A) == held(backward, A)
    assert [t for _, t, _ in held(forward, A)] == [0.0, 282.0, 564.0, 846.0, 1128.0]


def test_a_month_of_history_loads_fast() -> None:
    """30 days of a 282 s dropper (≈ 9,200 dropouts, a start and an end line each) load in
    well under a second (lookups are binary searches); 3 s here for a loaded machine."""
    import time

    records = []
    for k in range(9200):
        start = at(282.0 * k)
        records += [
            dropout_record(start, A, "link", t=start + 0.0004),
            dropout_record(start, A, "link", end_t=start + 7),
        ]
    detector = DropoutDetector()
    began = time.perf_counter()
    for record in records:
        detector.observe(record, record["t"])
    assert time.perf_counter() - began < 3.0
    assert len(detector.dropouts(A)) == 9200
    assert detector.dropouts(A)[-1].end == at(282.0 * 9199 + 7)
