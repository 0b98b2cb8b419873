"""Issue 12 ("Tried as a new user would") in the running app: quitting mid-action asks first,
alarms keep their contrast under NO_COLOR, the fleet line fits, help and Ctrl+P explain and
act, the detail view scrolls, the small-terminal notice stays readable, wide screens widen the
detail panel, and times from another day carry their date."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.cells import cell_len
from rich.color import Color
from rich.console import Console
from textual.containers import VerticalScroll
from textual.widgets import HelpPanel

from core.fleet.events import DropoutEvent
from core.sim.fake_bluez import FakeBluez
from core.sim.scenario import build_default, seed_history
from tests.conftest import FakeService
from tests.tui.helpers import (
    FIXED_CLOCK,
    FIXED_NOW,
    fleet_loaded,
    screen_lines,
    screen_text,
    table_cells,
    until,
    verdicts,
)
from tui.app import BtmonApp, make_app
from tui.keys import APP_BINDINGS, FLEET_BINDINGS
from tui.screens.confirm import ConfirmScreen
from tui.screens.detail import DetailScreen
from tui.screens.help import help_table
from tui.widgets.fleet_table import FleetTable
from tui.widgets.panels import EventLog

pytestmark = pytest.mark.dbus

BAR = "F4:4E:FD:10:22:04"
STAGE_LEFT, STAGE_RIGHT = "00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02"
#: WCAG's minimum contrast for normal text (AA): what an alarm must keep without colour.
MIN_CONTRAST = 4.5
#: A fake this slow keeps Bar's resync running for minutes: the question about it stays real.
SLOW = 0.01


def app_for(service: FakeService, **kwargs: object) -> BtmonApp:
    return make_app(service.address, clock=FIXED_CLOCK, **kwargs)  # type: ignore[arg-type]


async def select(app: BtmonApp, name: str) -> None:
    table = app.query_one(FleetTable)
    table.move_cursor(row=list(verdicts(app)).index(name), animate=False)


async def test_q_while_a_resync_runs_asks_first_and_no_is_the_default(
    bluez_service: FakeService,
) -> None:
    await bluez_service.start(build_default, speed=SLOW)
    app = app_for(bluez_service)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await select(app, "Bar")
        await pilot.press("r")
        await until(pilot, lambda: bool(app.actions.running), what="the resync")
        for key in ("q", "ctrl+c"):
            await pilot.press(key)
            screen = app.screen
            assert isinstance(screen, ConfirmScreen) and screen.kind == "quit"
            assert screen.question == "A resync of Bar is running: quit anyway?"
            assert app.focused is not None and app.focused.id == "no"  # enter says No
            await pilot.press("q")  # asked already: a second q does not stack questions
            assert app.screen is screen
            await pilot.press("enter" if key == "q" else "escape")
            assert app.screen is app.screen_stack[0]
            assert app.is_running and app.actions.running  # still resyncing
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running


async def test_q_quits_at_once_when_nothing_runs(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running


def _rgb(color: Color | None) -> tuple[int, int, int]:
    assert color is not None, "a segment without a colour: cannot judge its contrast"
    return color.get_truecolor()


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(app: BtmonApp, needle: str) -> float:
    """WCAG contrast of the first cell of `needle` on screen, as drawn (filters applied)."""
    for strip in app.screen._compositor.render_strips():
        at = strip.text.find(needle)
        if at < 0:
            continue
        offset = 0
        for segment in strip:
            if offset + cell_len(segment.text) > at and segment.style is not None:
                style = segment.style
                fg, bg = _rgb(style.color), _rgb(style.bgcolor)
                if style.reverse:
                    fg, bg = bg, fg
                light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
                return (light + 0.05) / (dark + 0.05)
            offset += cell_len(segment.text)
    raise AssertionError(f"{needle!r} is not on screen:\n{screen_text(app)}")


@pytest.fixture
def no_color(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLORTERM", "truecolor")
    yield


async def test_no_color_keeps_every_alarm_readable(
    fake: FakeBluez, bluez_service: FakeService, no_color: None
) -> None:
    """Under NO_COLOR Textual greys every colour; red and magenta alarms used to end up at
    ~1.3:1 against the background. They must stand out by weight or reverse video."""
    app = app_for(bluez_service, history=seed_history(FIXED_NOW))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        assert app.no_color
        fake.drop_link(STAGE_RIGHT)
        await until(pilot, lambda: "DROPOUT" in screen_text(app), what="the dropout line")
        await pilot.pause()
        due = table_cells(app, "dropouts")["Sub Bass"]  # '6 ~4m42s →0:45': due within a minute
        alarms = ["no-a2dp", "connected-idle", "9%!", due.split("→")[1], "DROPOUT"]
        for alarm in alarms:
            assert contrast(app, alarm) >= MIN_CONTRAST, alarm


@pytest.mark.parametrize("width", [80, 100, 200])
async def test_the_fleet_line_names_every_silent_speaker_it_can(
    fake: FakeBluez, bluez_service: FakeService, width: int
) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(width, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        for address in (STAGE_LEFT, STAGE_RIGHT):
            fake.set_transport_state(address, "idle")
        await until(
            pilot,
            lambda: any(f"4 {word}" in screen_lines(app)[0] for word in ("silent", "connected w")),
            what="4 silent speakers",
        )
        await pilot.pause()
        line = screen_lines(app)[0].rstrip()
        names = ["Stage Left", "Stage Right", "Bar", "Patio"]
        shown = [n for n in names if n in line]
        assert shown and cell_len(line) <= width, line
        assert line.endswith(names[-1] if len(shown) == 4 else "more"), line
        if width >= 100:
            assert len(shown) == 4, line


async def test_help_explains_what_the_screen_shows_and_every_key(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(help_table())
    text = console.export_text()
    for words in ("6 ~4m41s →0:41", "Last hour", "loose", "scroll", "ctrl+p", "q  ctrl+c"):
        assert words in text, words
    # Every key the footer offers is in the help, in the footer's spelling.
    for binding in [*FLEET_BINDINGS, *APP_BINDINGS]:
        if getattr(binding, "show", False):
            key = binding.key_display or binding.key  # type: ignore[union-attr]
            assert any(line.lstrip().startswith(key) for line in text.splitlines()) or (
                f" {key} " in text
            ), key
    app = app_for(bluez_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.press("question_mark")
        box = app.screen.query_one("#help-box", VerticalScroll)
        assert box.max_scroll_y > 0 and app.focused is box
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y > 0 and "Replay keys" in screen_text(app)


async def test_ctrl_p_offers_the_fleet_commands_by_name(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await select(app, "Bar")
        await pilot.press("ctrl+p")
        await pilot.press(*"resync bar")
        await until(pilot, lambda: "Resync Bar" in screen_text(app), what="the command")
        await pilot.press("ctrl+u", *"show all")
        await until(pilot, lambda: "Show all devices" in screen_text(app), what="show all")
        await pilot.press("enter")
        await until(pilot, lambda: app.feed.monitor.state.include_all, what="every device")


async def test_esc_closes_the_keys_panel(fake: FakeBluez, bluez_service: FakeService) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        app.action_show_help_panel()  # Ctrl+P → Keys
        await pilot.pause()
        assert app.screen.query(HelpPanel)
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query(HelpPanel)


async def test_the_detail_view_scrolls_at_80x24_and_dates_other_days(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    yesterday = FIXED_NOW - 86_400
    app = app_for(bluez_service, history=seed_history(yesterday))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        app.feed.monitor.publish([DropoutEvent(yesterday + 600, BAR, "link")])
        await until(pilot, lambda: "26 Nov 20:10:00 Bar: DROPOUT" in screen_text(app), what="log")
        await select(app, "Sub Bass")
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await until(pilot, lambda: "6 dropouts seen" in screen_text(app), what="the detail")
        assert "26 Nov " in screen_text(app)  # yesterday's dropouts carry their date
        view = app.screen.query_one(VerticalScroll)
        assert view.max_scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert "Recent events" in screen_text(app)


async def test_the_small_notice_is_not_covered_and_the_footer_comes_back(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        await pilot.resize_terminal(40, 10)
        app.notify("a toast that would cover the notice " * 3, timeout=30)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Terminal is 40×10" in text and "q to quit" in text, text
        assert "toast" not in text
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert app.focused is app.query_one(FleetTable)
        assert "Details" in screen_lines(app)[-1]


async def test_wide_screens_give_the_detail_panel_more_room(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(140, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        narrow = app.query_one("#detail").region.width
        await pilot.resize_terminal(200, 40)
        await pilot.pause(0.2)
        assert app.query_one("#detail").region.width > narrow
        table = app.query_one(FleetTable)
        assert "Address" in screen_lines(app)[1] and table.region.width >= 134


async def test_tab_moves_to_the_event_log_which_then_scrolls(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = app_for(bluez_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        log = app.query_one(EventLog)
        for number in range(40):
            log.warn(f"line {number}", FIXED_NOW)
        await pilot.pause()
        await pilot.press("tab")
        assert app.focused is log
        await pilot.press("home")
        await pilot.pause()
        assert log.scroll_y == 0 and "line 0" in screen_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 0 and "line 39" in screen_text(app)
        await pilot.press("tab")
        assert app.focused is app.query_one(FleetTable)
