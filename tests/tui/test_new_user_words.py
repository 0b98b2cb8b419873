"""Issue 12 ("Tried as a new user would"), the rules without a screen: the fleet line fitted to
the width, plurals, dates, the quit question, NO_COLOR styles, toasts, sizes, which keys a
replay offers, the Ctrl+P commands."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rich.cells import cell_len

from core.fleet.describe import describe_dropout, describe_event, plural, short_stamp, stamp
from core.fleet.events import DropoutEvent
from core.fleet.model import FleetSnapshot, SourceState, SourceStatus, Verdict
from tests.tui.helpers import FIXED_NOW
from tui.actions import running_question
from tui.alerts import MAX_DROPOUT_TOASTS, Alerts
from tui.commands import fleet_commands
from tui.keys import offered
from tui.layout import SIDE_PANEL_MAX, SIDE_PANEL_MIN, side_panel_width, too_small_text
from tui.style import COLOUR, NO_COLOUR, VERDICT_STYLE, colour_free
from tui.widgets.fleet_line import SEPARATOR, NamedGroup, fit_names, fleet_line_parts
from tui.widgets.panels import log_style

FOUR_SILENT = ("Bar", "Green Room", "Patio", "Foyer")
COUNTS = "3 of 7 connected speakers streaming"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def line(width: int, names: tuple[str, ...] = FOUR_SILENT) -> str:
    group = NamedGroup("connected without audio", "silent", names, "bold yellow")
    return " " + SEPARATOR.join(fleet_line_parts(COUNTS, "3/7 streaming", [group], width))


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_fleet_line_fits_and_always_shows_the_count(width: int) -> None:
    text = line(width)
    assert cell_len(text) <= width, text
    assert "4 " in text and ("silent" in text or "without audio" in text)
    shown = [n for n in FOUR_SILENT if n in text]
    assert shown, text  # as many names as fit: at least one at 60 columns
    if len(shown) < len(FOUR_SILENT):
        assert f"+{len(FOUR_SILENT) - len(shown)} more" in text
    else:
        assert "more" not in text


def test_the_fleet_line_uses_its_long_words_when_everything_fits() -> None:
    assert line(200) == f" {COUNTS}  ·  4 connected without audio: Bar, Green Room, Patio, Foyer"
    assert line(80) == f" {COUNTS}  ·  4 silent: Bar, Green Room, Patio, Foyer"
    assert line(70) == " 3/7 streaming  ·  4 silent: Bar, Green Room, Patio, Foyer"
    assert line(40) == " 3/7 streaming  ·  4 silent: Bar +3 more"


def test_fit_names_cuts_with_a_count_of_the_rest() -> None:
    assert fit_names(FOUR_SILENT, 100) == "Bar, Green Room, Patio, Foyer"
    assert fit_names(FOUR_SILENT, 23) == "Bar, Green Room +2 more"
    assert fit_names(FOUR_SILENT, 3) == ""


def test_plurals_say_one_dropout() -> None:
    assert plural(1, "dropout") == "1 dropout"
    assert plural(6, "dropout") == "6 dropouts"
    assert describe_dropout("link", ("AA",)).endswith("together with 1 other speaker")
    assert describe_dropout("link", ("AA", "BB")).endswith("together with 2 other speakers")
    probe = {"type": "probe", "results": [{"address": "A", "detected": True}]}
    assert describe_event(probe) == "probe: 1 of 1 speaker heard"


def test_times_carry_the_day_when_it_is_not_today(utc: None) -> None:
    assert stamp(FIXED_NOW - 60, FIXED_NOW) == "19:59:00"
    assert stamp(FIXED_NOW - 86_400, FIXED_NOW) == "26 Nov 20:00:00"
    assert stamp(FIXED_NOW - 366 * 86_400, FIXED_NOW) == "26 Nov 2025 20:00:00"
    assert short_stamp(FIXED_NOW - 60, FIXED_NOW) == "19:59:00"
    assert short_stamp(FIXED_NOW - 86_400, FIXED_NOW) == "26 Nov"


def test_a_cancelled_dropout_reads_as_retracted() -> None:
    line = describe_event(
        {"type": "dropout", "address": "A", "kind": "transport", "phase": "cancelled"},
        {"A": "Bar"},
    )
    assert line is not None and line.startswith("Bar: not a dropout after all — retracted")
    record = {"type": "dropout", "phase": "cancelled"}
    assert log_style(record) == "italic"
    assert log_style({"type": "dropout", "phase": "start"}) == "bold red"


def test_the_quit_question_names_what_runs() -> None:
    names = {"A": "Bar", "B": "Lobby"}
    assert running_question({}, {}, names) is None
    assert running_question({"A": "resync"}, {}, names) == (
        "A resync of Bar is running: quit anyway?"
    )
    both = running_question({"A": "resync", "B": "connect"}, {"C": "resync"}, names)
    assert (
        both == "A resync of Bar and a connect of Lobby are running; 1 more is queued: quit anyway?"
    )


def test_no_color_turns_alarms_into_reverse_video_or_bold() -> None:
    assert colour_free("bold red") == "bold reverse"
    assert colour_free("bold magenta") == "bold reverse"
    assert colour_free("red") == "bold"
    assert colour_free("yellow") == "bold"
    assert colour_free("bold green") == "bold"
    assert colour_free("reverse bold red") == "reverse bold"
    assert colour_free("bright_black") == "bright_black"
    for verdict in (Verdict.STALLED, Verdict.NO_A2DP, Verdict.CONNECTED_IDLE):
        assert "reverse" in NO_COLOUR.verdict(verdict)
    assert COLOUR.verdict(Verdict.STALLED) == VERDICT_STYLE[Verdict.STALLED]


def snapshot(now: float = FIXED_NOW) -> FleetSnapshot:
    return FleetSnapshot(
        t=now,
        speakers=(),
        adapters=(),
        source=SourceStatus(SourceState.CONNECTED, "test", "test"),
    )


def test_a_burst_of_dropouts_makes_a_few_toasts_and_one_count() -> None:
    events = [DropoutEvent(FIXED_NOW, f"AA:{k:02d}", "link") for k in range(7)]
    toasts = Alerts({"AA:00": "Bar"}).update(snapshot(), events)
    assert len(toasts) == MAX_DROPOUT_TOASTS + 1
    assert toasts[0].message.startswith("Bar: link lost")
    assert toasts[-1].message == "and 4 more dropouts (see the log)"


def test_wide_terminals_give_the_side_panel_more_room() -> None:
    assert side_panel_width(140, media=True) == SIDE_PANEL_MIN
    assert SIDE_PANEL_MIN < side_panel_width(200, media=True) <= SIDE_PANEL_MAX
    assert side_panel_width(300, media=True) == SIDE_PANEL_MAX


def test_the_too_small_notice_says_the_size_and_the_fleet() -> None:
    text = too_small_text(40, 10, COUNTS)
    assert "40×10" in text and "60×12" in text and "q to quit" in text and COUNTS in text


def test_a_replay_offers_its_controls_and_no_actions() -> None:
    def live(action: str) -> bool:
        return offered(action, replay=False, acting=False, keys_panel=False)

    def replay(action: str) -> bool:
        return offered(action, replay=True, acting=True, keys_panel=False)

    for action in ("resync", "resync_all", "connect", "disconnect", "probe", "cancel_action"):
        assert live(action) != (action == "cancel_action") and not replay(action)
    for action in ("replay_pause", "replay_seek", "replay_speed", "live_only"):
        assert replay(action) and not live(action)
    assert offered("hide_keys", replay=False, acting=False, keys_panel=True)
    assert not live("hide_keys")


def test_ctrl_p_names_the_commands_for_the_selected_speaker() -> None:
    def titles(replay: bool, selected: str | None = "Bar") -> list[str]:
        def available(action: str) -> bool:
            return offered(action, replay=replay, acting=False, keys_panel=False)

        return [c.title for c in fleet_commands(selected, False, available)]

    live = titles(False)
    for title in ("Resync Bar", "Connect Bar", "Disconnect Bar", "Probe now", "Show all devices"):
        assert title in live
    assert not any(t.startswith("Replay") for t in live)
    assert "Resync Bar" not in titles(False, selected=None)
    replay = titles(True)
    assert "Replay: back 1 minute" in replay and "Resync Bar" not in replay
    assert "Probe now" not in replay
