"""The toasts' rules without an app (tui/alerts.py): actions, dropouts, a predicted dropout
announced once, probes that speak up only with news."""

from __future__ import annotations

from core.fleet.events import ActionEvent, DropoutEvent, ProbeEvent
from core.fleet.model import (
    DropoutSummary,
    FleetSnapshot,
    SourceState,
    SourceStatus,
    Speaker,
    SpeakerProbe,
)
from tests.fleet.builders import plain_speaker
from tests.fresh import fresh_json
from tests.tui.helpers import FIXED_NOW
from tui.alerts import (
    DUE_WARNING_S,
    MAX_DROPOUT_TOASTS,
    PROBE_MISSED_TOAST_S,
    Alerts,
    Toast,
)

SUB, BAR = "00:1A:7D:DA:71:03", "F4:4E:FD:10:22:04"
PERIOD_S = 282.0


def speaker(address: str, name: str) -> Speaker:
    return plain_speaker(address, name, FIXED_NOW)


def fleet(now: float, next_drop: float | None = None) -> FleetSnapshot:
    """Sub Bass and Bar; Sub Bass drops every PERIOD_S, next at `next_drop`."""
    dropouts = {}
    if next_drop is not None:
        dropouts[SUB] = DropoutSummary(6, next_drop - PERIOD_S, PERIOD_S, 0.9, next_drop)
    return FleetSnapshot(
        t=now,
        speakers=(speaker(SUB, "Sub Bass"), speaker(BAR, "Bar")),
        adapters=(),
        source=SourceStatus(SourceState.CONNECTED, "test", "test"),
        dropouts=dropouts,
    )


def titles(toasts: list[Toast]) -> list[str]:
    return [t.title for t in toasts]


def test_a_predicted_dropout_is_announced_once_when_it_comes_near() -> None:
    alerts = Alerts()
    due = FIXED_NOW + 100
    assert alerts.update(fleet(FIXED_NOW, due), []) == []  # 100 s away: not yet
    [toast] = alerts.update(fleet(due - DUE_WARNING_S, due), [])
    assert toast == Toast(
        "Sub Bass is expected to drop in 0:30 (every 4m42s): resync it now or swap it",
        "Dropout due",
        "warning",
        10,
    )
    assert alerts.update(fleet(due - 10, due), []) == []  # said once per prediction
    later = due + PERIOD_S
    assert titles(alerts.update(fleet(later - 5, later), [])) == ["Dropout due"]  # the next


def test_a_prediction_already_past_or_of_an_unnamed_speaker_says_nothing() -> None:
    assert Alerts().update(fleet(FIXED_NOW + 1, FIXED_NOW), []) == []
    nameless = FleetSnapshot(
        t=FIXED_NOW,
        speakers=(),
        adapters=(),
        source=SourceStatus(SourceState.CONNECTED, "test", "test"),
        dropouts=fleet(FIXED_NOW, FIXED_NOW + 5).dropouts,
    )
    assert Alerts().update(nameless, []) == []


def test_going_back_in_a_replay_announces_a_prediction_again() -> None:
    alerts = Alerts()
    due = FIXED_NOW + 20
    assert len(alerts.update(fleet(FIXED_NOW, due), [])) == 1
    alerts.forget()
    assert len(alerts.update(fleet(FIXED_NOW, due), [])) == 1


def test_recorded_names_name_speakers_before_the_fleet_does() -> None:
    alerts = Alerts({SUB: "Sub Bass"})
    empty = FleetSnapshot(
        t=FIXED_NOW,
        speakers=(),
        adapters=(),
        source=SourceStatus(SourceState.CONNECTED, "test", "test"),
    )
    [toast] = alerts.update(empty, [DropoutEvent(FIXED_NOW, SUB, "link")])
    assert toast.message == "Sub Bass: link lost while streaming"


def test_actions_come_first_then_dropouts_then_predictions() -> None:
    alerts = Alerts()
    events = [
        DropoutEvent(FIXED_NOW, BAR, "link"),
        ActionEvent(FIXED_NOW, SUB, "resync", "ok"),
        ActionEvent(FIXED_NOW, BAR, "connect", "error", "br-connection-page-timeout"),
        ActionEvent(FIXED_NOW, BAR, "disconnect", "error", "cancelled"),
    ]
    toasts = alerts.update(fleet(FIXED_NOW, FIXED_NOW + 5), events)
    assert titles(toasts) == [
        "Resync: done",
        "Connect: failed",
        "Disconnect: cancelled",
        "Dropout",
        "Dropout due",
    ]
    assert [t.severity for t in toasts] == ["information", "error", "warning", "error", "warning"]
    assert [t.timeout for t in toasts[:3]] == [5, 12, 5]


def test_a_burst_of_dropouts_is_counted_after_a_few() -> None:
    events = [DropoutEvent(FIXED_NOW, f"AA:{k:02d}", "link") for k in range(5)]
    toasts = Alerts().update(fleet(FIXED_NOW), events)
    assert len(toasts) == MAX_DROPOUT_TOASTS + 1
    assert toasts[-1].message == "and 2 more dropouts (see the log)"


def probe(*heard: bool, spread_ms: float | None = 3.0) -> ProbeEvent:
    results = tuple(
        SpeakerProbe(address, name, detected, latency_ms=100.0 if detected else None)
        for (address, name), detected in zip(((SUB, "Sub Bass"), (BAR, "Bar")), heard, strict=False)
    )
    return ProbeEvent(FIXED_NOW, results, spread_ms, source="simulated room")


def test_a_periodic_probe_speaks_up_only_with_news() -> None:
    alerts = Alerts()
    clean = alerts.probed(probe(True, True), asked=False)
    assert clean is not None and clean.severity == "information"
    assert alerts.probed(probe(True, True), asked=False) is None  # same news: quiet
    missed = alerts.probed(probe(True, False), asked=False)
    assert missed is not None and missed.severity == "error"
    assert missed.timeout == PROBE_MISSED_TOAST_S and "Bar" in missed.message
    assert alerts.probed(probe(True, False), asked=False) is None
    assert alerts.probed(probe(True, False, spread_ms=30.0), asked=False) is not None  # loose
    # p: the operator asked, so the answer comes even when nothing is new.
    assert alerts.probed(probe(True, False, spread_ms=30.0), asked=True) is not None


def test_a_failed_probe_says_why_unless_a_periodic_one_found_nothing_playing() -> None:
    alerts = Alerts()
    nothing = "no speaker is playing: start playback, or name speakers to probe"
    assert alerts.probe_failed(nothing, asked=False) is None
    assert alerts.probe_failed(nothing, asked=True) == Toast(nothing, "Probe failed", "error", 10)
    assert alerts.probe_failed("no microphone", asked=False) is not None


def test_the_rules_load_without_textual() -> None:
    code = "import json, sys, tui.alerts; print(json.dumps('textual' in sys.modules))"
    assert fresh_json(code) is False
