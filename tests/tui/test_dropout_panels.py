"""Dropouts on screen: the Drops column, the toast, the detail list, and a failing event log."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.message import Message
from textual.notifications import Notify

from core.eventlog.store import EventStore
from core.sim.fake_bluez import FakeBluez
from core.sim.scenario import DROPPER, seed_history
from tests.conftest import FakeService
from tests.eventlog.conftest import SmallDisk, small_disk  # noqa: F401  (fixture)
from tests.tui.helpers import fleet_loaded, screen_text, table_cells, until
from tui.app import make_app
from tui.screens.detail import DetailScreen
from tui.widgets.fleet_table import FleetTable

pytestmark = pytest.mark.dbus

DROPPER_NAME = "Sub Bass"


async def test_a_drop_shows_in_the_table_a_toast_and_the_detail(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    app = make_app(bluez_service.address)
    messages: list[Message] = []
    async with app.run_test(
        size=(120, 30), notifications=True, message_hook=messages.append
    ) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        assert table_cells(app, "dropouts")[DROPPER_NAME] == "0"

        fake.drop_link(DROPPER)

        def toasts() -> list[str]:
            return [
                f"{m.notification.title}: {m.notification.message}"
                for m in messages
                if isinstance(m, Notify)
            ]

        await until(pilot, lambda: any(t.startswith("Dropout") for t in toasts()), what="toast")
        assert toasts() == ["Dropout: Sub Bass: link lost while streaming"]
        assert table_cells(app, "dropouts")[DROPPER_NAME] == "1"

        await fake.reconnect(DROPPER)
        await until(
            pilot,
            lambda: table_cells(app, "verdict")[DROPPER_NAME].endswith("streaming"),
            what="the dropper back",
        )
        table = app.query_one(FleetTable)
        table.move_cursor(
            row=table._order.index(f"/org/bluez/hci0/dev_{DROPPER.replace(':', '_')}")
        )
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
        await until(pilot, lambda: "1 dropout seen" in screen_text(app), what="the dropout list")
        text = screen_text(app)
        assert "no regular pattern" in text
        # The listed dropout has its kind and a measured duration (not "still out").
        assert " link " in text and "still out" not in text


async def test_seeded_history_shows_period_and_countdown(
    fake: FakeBluez, bluez_service: FakeService
) -> None:
    now = 1_795_809_600.0
    app = make_app(bluez_service.address, clock=lambda: now, history=seed_history(now))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
        cell = table_cells(app, "dropouts")[DROPPER_NAME]
        # 6 drops on a 282 s rhythm; the next is the demo's first live drop, 45 s away.
        assert cell.startswith("6 ~4m4"), cell
        assert cell.endswith("→0:45"), cell


async def test_a_full_disk_is_shown_while_monitoring_goes_on(
    fake: FakeBluez,
    bluez_service: FakeService,
    small_disk: Callable[[int], SmallDisk],  # noqa: F811
) -> None:
    disk = small_disk(1024)
    store = EventStore(disk.path / "events.sqlite3")
    store.open()
    try:
        app = make_app(bluez_service.address, log=store)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: fleet_loaded(app), what="the demo fleet")
            assert store.flush()
            assert "LOG " not in screen_text(app)
            filler = disk.fill()
            for volume in range(120):  # events keep coming while the disk is full
                fake.set_volume("00:1A:7D:DA:71:01", volume)
            await until(pilot, lambda: "disk full" in screen_text(app), 10, "the LOG line")
            assert "LOG " in screen_text(app)
            fake.set_transport_state("F4:4E:FD:10:22:04", "active")
            await until(
                pilot,
                lambda: table_cells(app, "verdict")["Bar"].endswith("streaming"),
                what="monitoring going on",
            )
            filler.unlink()
            await until(pilot, lambda: "LOG " not in screen_text(app), 10, "the log recovering")
        assert store.flush()
        volumes = [
            e["transport"]["volume"]
            for e in store.read(types={"speaker"}, address="00:1A:7D:DA:71:01")
            if e.get("transport")
        ]
        assert volumes[-1] == 119, "events from the full-disk period were lost"
        assert set(range(120)) <= set(volumes)
    finally:
        store.close()
