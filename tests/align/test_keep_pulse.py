"""Keeping the fleet aligned (issue 14 §3) on a private PulseAudio: an alignment saves its
delays; a speaker that disconnects loses its stage with its sink, and when it comes back
under the same name the running Monitor loads its stage again with the saved delay, so the
spread (measured by the independent check) is back within target; `align --reset` forgets
the delays, and nothing is re-applied after it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from core.align import keep, stages
from core.align.measure import Target
from core.align.server import ServerAlign
from core.monitor import Monitor
from tests.align.rooms import Room, direct_arrivals, fleet_arrivals, our_modules, spread
from tests.cli.conftest import run_cli

#: A bound for a hung test, not a speed claim: the keeper looks every 3 s.
BACK_S = 30.0


@pytest.mark.parametrize("room", [2], indirect=True)
async def test_a_speaker_that_reconnects_gets_its_delay_back(room: Room, demo_bus: str) -> None:
    before = direct_arrivals(room)
    targets = [Target(f"AA:00:00:00:00:0{i}", sink, sink) for i, sink in enumerate(room.hidden)]
    job = ServerAlign(targets, source="room.monitor")
    outcome = await asyncio.to_thread(job.run)
    assert outcome.aligned, outcome.why
    assert job.saved_problem == ""
    saved = keep.load()
    assert saved == {s.sink: s.delay_ms for s in stages.stages().values()}
    assert max(saved.values()) > 0 and min(saved.values()) == 0

    # The speaker with the largest delay disconnects: its stage goes with its sink.
    moved = max(saved, key=lambda sink: saved[sink])
    room.remove(moved)
    await asyncio.sleep(0.5)
    assert moved not in stages.stages()
    room.plug(moved)

    monitor = Monitor(demo_bus, keep_delays=True)
    task = asyncio.create_task(monitor.run())
    try:
        started = time.monotonic()
        while moved not in stages.stages():
            assert time.monotonic() - started < BACK_S, "the stage did not come back"
            await asyncio.sleep(0.2)
        assert stages.stages()[moved].delay_ms == saved[moved]
        assert any("re-applied" in w and moved in w for w in monitor.warnings)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.to_thread(room.settle)
    await asyncio.sleep(2.5)  # a freshly loaded stage stays silent for up to ~2 s
    after = await asyncio.to_thread(fleet_arrivals, room)
    print(
        f"reconnect: hidden {room.hidden}, spread before {spread(before):.1f} ms, "
        f"after the speaker came back {spread(after):.2f} ms"
    )
    assert spread(after) <= 5.0, after

    # Reset: no delays kept, nothing re-applied afterwards.
    state = {"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]}  # this test's (tests/conftest)
    reset = run_cli("align", "--reset", env={**room.server.env, **state}, timeout=30)
    assert reset.returncode == 0, reset.stderr
    assert keep.load() == {}
    assert await asyncio.to_thread(keep.reattach, keep.load()) == {}
    assert our_modules(room.server) == []


def test_saved_delays_survive_a_damaged_file_as_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "delays.json"
    assert keep.save({"bluez_sink.A": 12, "bluez_sink.B": 0}, path) == ""
    assert keep.load(path) == {"bluez_sink.A": 12, "bluez_sink.B": 0}
    path.write_text("{not json")
    assert keep.load(path) == {}
    path.write_text('{"a": -3, "b": "x", "c": true, "d": 4}')
    assert keep.load(path) == {"d": 4}
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert "cannot save the delays" in keep.save({"a": 1}, blocked / "delays.json")
