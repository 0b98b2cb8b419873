"""classify(): every verdict of DESIGN §3, from facts and a time passed in as data."""

from __future__ import annotations

from typing import Any

import pytest

from core.fleet.model import Verdict
from core.fleet.verdict import STALL_AFTER_S, classify
from tests.fleet.builders import make_facts, transport

NOW = 1_700_000_000.0

#: (id, DeviceFacts changes, source_available, expected verdict)
CASES: list[tuple[str, dict[str, Any], bool, Verdict]] = [
    ("active transport, no HCI source", {}, True, Verdict.STREAMING),
    (
        "broadcasting counts as streaming",
        {"transport": transport("broadcasting")},
        True,
        Verdict.STREAMING,
    ),
    (
        "adapter powered state unknown is not 'off'",
        {"adapter_powered": None},
        True,
        Verdict.STREAMING,
    ),
    (
        "HCI media 0.5 s ago",
        {"media_pps": 320.0, "last_media_t": NOW - 0.5},
        True,
        Verdict.STREAMING,
    ),
    ("HCI media exactly now", {"media_pps": 320.0, "last_media_t": NOW}, True, Verdict.STREAMING),
    (
        "last media time without an HCI source is ignored",
        {"media_pps": None, "last_media_t": NOW - 60},
        True,
        Verdict.STREAMING,
    ),
    (
        "HCI media 1.0 s ago (>= 1 s)",
        {"media_pps": 320.0, "last_media_t": NOW - 1.0},
        True,
        Verdict.STALLED,
    ),
    ("HCI media 5 s ago", {"media_pps": 0.0, "last_media_t": NOW - 5}, True, Verdict.STALLED),
    (
        "HCI source runs but never saw media",
        {"media_pps": 0.0, "last_media_t": None},
        True,
        Verdict.STALLED,
    ),
    (
        "broadcasting but HCI silent",
        {"transport": transport("broadcasting"), "media_pps": 0.0},
        True,
        Verdict.STALLED,
    ),
    ("last probe missed it", {"probe_missed": True}, True, Verdict.STALLED),
    ("HCI has not had its say yet", {"awaiting_media": True}, True, Verdict.PENDING),
    (
        "HCI watched a second without a packet",
        {"awaiting_media": True, "media_pps": 0.0, "last_media_t": NOW - 1.0},
        True,
        Verdict.STALLED,
    ),
    (
        "a probe miss that FleetState kept (no HCI media since) beats the rate",
        {"probe_missed": True, "media_pps": 300.0, "last_media_t": NOW},
        True,
        Verdict.STALLED,
    ),
    ("transport pending", {"transport": transport("pending")}, True, Verdict.PENDING),
    (
        "transport idle: the illusion",
        {"transport": transport("idle")},
        True,
        Verdict.CONNECTED_IDLE,
    ),
    (
        "idle stays idle when the probe missed",
        {"transport": transport("idle"), "probe_missed": True},
        True,
        Verdict.CONNECTED_IDLE,
    ),
    ("connected without A2DP transport", {"transport": None}, True, Verdict.NO_A2DP),
    ("paired, not connected", {"connected": False, "transport": None}, True, Verdict.DISCONNECTED),
    (
        "not connected beats a stale active transport",
        {"connected": False},
        True,
        Verdict.DISCONNECTED,
    ),
    ("adapter powered off", {"adapter_powered": False}, True, Verdict.UNKNOWN),
    (
        "adapter off beats disconnected",
        {"adapter_powered": False, "connected": False},
        True,
        Verdict.UNKNOWN,
    ),
    ("BlueZ source unavailable", {}, False, Verdict.UNKNOWN),
    ("source unavailable beats disconnected", {"connected": False}, False, Verdict.UNKNOWN),
]


@pytest.mark.parametrize(
    ("changes", "source_available", "expected"),
    [pytest.param(c, s, v, id=name) for name, c, s, v in CASES],
)
def test_classify(changes: dict[str, Any], source_available: bool, expected: Verdict) -> None:
    """Each row of DESIGN §3 maps to exactly the documented verdict."""
    facts = make_facts(**changes)
    assert classify(facts, NOW, source_available=source_available) is expected


def test_table_covers_every_verdict() -> None:
    """The table above exercises all seven verdicts, so a new one cannot go untested."""
    assert {expected for _, _, _, expected in CASES} == set(Verdict)


def test_source_available_defaults_to_true() -> None:
    """Without the keyword, a streaming speaker is judged streaming (not unknown)."""
    assert classify(make_facts(), NOW) is Verdict.STREAMING


def test_stall_threshold_is_one_second() -> None:
    """DESIGN §3: no media for >= 1 s is a stall; 0.875 s is still streaming.

    Times are binary fractions so the float subtraction is exact at Unix-time magnitudes.
    """
    assert STALL_AFTER_S == 1.0
    facts = make_facts(media_pps=100.0, last_media_t=NOW - 0.75)
    assert classify(facts, NOW + 0.125) is Verdict.STREAMING
    assert classify(facts, NOW + 0.25) is Verdict.STALLED


def test_time_is_data() -> None:
    """The same facts judged at a later `now` turn from streaming to stalled: no clock inside."""
    facts = make_facts(media_pps=250.0, last_media_t=NOW)
    assert [classify(facts, NOW + dt) for dt in (0.0, 0.5, 2.0)] == [
        Verdict.STREAMING,
        Verdict.STREAMING,
        Verdict.STALLED,
    ]


@pytest.mark.parametrize("state", ["unknown", "paused", ""])
def test_undocumented_transport_state_is_unknown(state: str) -> None:
    """A state BlueZ does not document (or an invalidated one) is no evidence of idle."""
    facts = make_facts(transport=transport(state=state))
    assert classify(facts, 100.0) == Verdict.UNKNOWN
