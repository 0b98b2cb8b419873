"""The TUI with remote hosts (Textual's Pilot): a Host column, the fleet line per host, a host
taken away named in the status bar, and a key acting on the selected speaker's own host."""

from __future__ import annotations

import asyncio

import pytest

from core.fleet.events import ActionEvent, Event
from core.fleet.model import Speaker
from core.hosts import RemoteHost
from core.monitor import Monitor
from tests.conftest import DEMO_VERDICTS
from tests.hosts.conftest import Host
from tests.tui.helpers import screen_text
from tui.app import make_app
from tui.widgets.fleet_table import HOST_COLUMN, FleetTable
from tui.widgets.panels import StatusBar

pytestmark = pytest.mark.dbus

#: A bound for a hung test (two demo fleets and their watch on 2 busy cores).
WAIT_S = 60.0


async def _until(pilot, check, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"not within {WAIT_S:g} s: {what}")
        await pilot.pause(0.1)


async def test_two_hosts_in_one_view_and_a_key_acts_on_the_selected_speakers_host(
    two_hosts: tuple[Host, Host],
) -> None:
    lab, foyer = two_hosts
    monitor = Monitor(sources=[RemoteHost(lab.spec), RemoteHost(foyer.spec)])
    seen: list[Event] = []
    monitor.listeners.append(seen.extend)
    app = make_app("", monitor=monitor)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(FleetTable)
        rows = 2 * len(DEMO_VERDICTS)
        await _until(
            pilot,
            lambda: (
                table.row_count == rows
                and app.snapshot is not None
                and all(s.verdict.value == DEMO_VERDICTS[s.address] for s in app.snapshot.speakers)
            ),
            "both hosts' fleets on screen",
        )
        assert HOST_COLUMN in table.columns_shown
        text = screen_text(app)
        # Rows grouped by host; the fleet line counts the whole fleet and each host.
        assert "foyer" in text and "lab" in text
        line = text.splitlines()[0]
        streaming = sum(1 for v in DEMO_VERDICTS.values() if v == "streaming")
        assert f"lab {streaming}/" in line or f"lab {streaming} " in line, line
        assert f"{2 * streaming}" in line, line

        # Select lab's Stage Left and resync it: the action runs on lab, not on foyer.
        speakers: list[Speaker] = list(app.snapshot.speakers)  # type: ignore[union-attr]
        target = next(
            i
            for i, s in enumerate(speakers)
            if s.host == "lab" and s.address == "00:1A:7D:DA:71:01"
        )
        table.move_cursor(row=target)
        await pilot.pause(0.2)
        await pilot.press("r")
        await _until(
            pilot,
            lambda: any(isinstance(e, ActionEvent) and e.host == "lab" for e in seen),
            "the resync's outcome from lab",
        )
        event = next(e for e in seen if isinstance(e, ActionEvent))
        assert (event.result, event.address, event.host) == ("ok", "00:1A:7D:DA:71:01", "lab")
        await _until(pilot, lambda: "Stage Left@lab: resync ok" in screen_text(app), "toast/log")

        # A host taken away: named in the status bar, its speakers unknown, foyer goes on.
        lab.down()
        await _until(
            pilot,
            lambda: (
                "lab: " in str(app.query_one(StatusBar).render())
                and "Connection refused" in str(app.query_one(StatusBar).render())
            ),
            "the status bar names lab",
        )
        assert "lab away" in screen_text(app).splitlines()[0]
        snap = app.snapshot
        assert snap is not None
        assert {s.verdict.value for s in snap.speakers if s.host == "lab"} == {"unknown"}
        assert {s.address: s.verdict.value for s in snap.speakers if s.host == "foyer"} == (
            DEMO_VERDICTS
        )
