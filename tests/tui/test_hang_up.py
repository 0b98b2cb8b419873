"""A hang-up ends the TUI even when its shutdown blocks (tui/launch.py HANG_UP_GRACE_S): the
event log is flushed and the process exits with 128 + the signal. The app here is a stand-in
whose exit never ends (as Textual's did once, waiting on a terminal that was gone); the
signal, the process, its temporary folder and the event log are real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from core.eventlog.store import EventStore
from tests.cli.conftest import ROOT

STUCK = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from core.eventlog.store import EventStore
    from core.fleet.events import RawEvent
    import tui.launch as launch
    from core.sim.tempdirs import owned_tempdir

    class StuckApp:
        return_code = None

        def run(self):
            async def forever():
                print("running", flush=True)
                await asyncio.Event().wait()
            asyncio.run(forever())

        def exit(self, return_code=None):
            pass  # a shutdown that never ends

    print(owned_tempdir("bus"), flush=True)  # as the demo's private bus has
    store = EventStore(Path(sys.argv[1]))
    store.open()
    store.append([RawEvent(1.0, {"type": "hang-up-test", "t": 1.0})])
    launch._run_app(StuckApp(), store, grace_s=float(sys.argv[2]))
    """
)


def test_a_hang_up_ends_a_stuck_shutdown_and_keeps_the_log(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK, str(db), "0.5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().strip())
        assert folder.parent == temp and folder.is_dir()
        assert proc.stdout.readline().strip() == "running"
        proc.send_signal(signal.SIGHUP)
        started = time.monotonic()
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert code == 128 + signal.SIGHUP
    assert time.monotonic() - started >= 0.5  # the normal exit path had its chance first
    assert [e["type"] for e in EventStore(db).read()] == ["hang-up-test"]
    assert not folder.exists()  # its temporary folders went with it
