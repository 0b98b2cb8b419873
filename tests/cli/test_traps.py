"""Issue 12 §1, §3, §4, §6: the traps a new user fell into, each as a class.

- a --db that cannot be written: headless commands that asked for a log exit 2 with one line,
  the TUI starts and says LOG … in its status bar;
- a fast demo (--speed up to its bound) still ends on --duration and on SIGTERM at once;
- `kill -9` leaves temporary folders behind: the next run removes them (only those whose
  owner is gone);
- the TUI with no terminal exits 2 instead of writing escape codes forever.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from core.sim.daemon import child_env
from core.sim.tempdirs import clean_stale, owned_tempdir
from tests.cli.conftest import ROOT, run_cli
from tests.conftest import require_binary
from tests.tui.test_tmux_e2e import Tmux


def _bad_logs(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.sqlite3"
    text.write_text("shopping list\n")
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return {
        "proc": Path("/proc/btmon-test.sqlite3"),
        "text": text,
        "corrupt": corrupt,
        "directory": folder,
    }


@pytest.mark.parametrize("kind", ["proc", "text", "corrupt", "directory"])
@pytest.mark.parametrize(
    "command",
    [["watch", "--duration", "0"], ["probe"], ["resync", "Bar"]],
    ids=["watch", "probe", "resync"],
)
def test_an_explicit_log_that_cannot_be_written_exits_2(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    require_binary("dbus-daemon", "dbus")
    db = _bad_logs(tmp_path)[kind]
    result = run_cli(*command, "--demo", "--db", str(db), timeout=40)
    assert result.returncode == 2, result
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert str(db) in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_tui_with_a_log_it_cannot_write_starts_and_says_so(tmp_path: Path) -> None:
    require_binary("dbus-daemon", "dbus")
    tmux = Tmux(require_binary("tmux", "tmux"), tmp_path)
    script = Path(sys.executable).parent / "btmon-tui"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "tui.cli"]
    tmux.start(shlex.join([*argv, "--demo", "--db", "/proc/btmon-test.sqlite3"]), 120, 30)
    try:
        screen = tmux.wait(
            lambda s: "connected speakers streaming" in s and "LOG" in s, "LOG in the status", 30
        )
        assert "/proc/btmon-test.sqlite3" in screen
    finally:
        tmux.kill()


def test_a_fast_demo_still_ends_on_duration_and_on_sigterm() -> None:
    require_binary("dbus-daemon", "dbus")
    started = time.monotonic()
    result = run_cli("watch", "--json", "--demo", "--speed", "1000", "--duration", "2", timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", "--json", "--demo", "--speed", "1000"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith('{"type":"snapshot"')
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        proc.communicate(timeout=10)
        assert time.monotonic() - asked < 3.0
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_stale_folders_of_dead_processes_go_and_no_others(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"btmon-tui-bus-{dead.pid}-abc123"
    stale.mkdir()
    (stale / "socket").write_text("")
    mine = tmp_path / f"btmon-tui-hci-{os.getpid()}-x"
    mine.mkdir()
    running = tmp_path / "btmon-tui-demo-1-y"  # pid 1 always runs
    running.mkdir()
    other = tmp_path / f"something-else-{dead.pid}-z"
    other.mkdir()
    assert clean_stale(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and running.exists() and other.exists()
    made = owned_tempdir("bus")
    try:
        assert made.name.startswith(f"btmon-tui-bus-{os.getpid()}-")
    finally:
        made.rmdir()


def test_what_kill_9_left_behind_is_removed_by_the_next_run() -> None:
    require_binary("dbus-daemon", "dbus")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", "--json", "--demo"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith('{"type":"snapshot"')
    left = sorted(Path(tempfile.gettempdir()).glob(f"btmon-tui-*-{proc.pid}-*"))
    assert {p.name.split("-")[2] for p in left} == {"bus", "hci"}, left
    proc.kill()
    proc.wait()
    time.sleep(0.5)  # the demo's own children die with it (PDEATHSIG)
    assert all(p.exists() for p in left)
    result = run_cli("watch", "--demo", "--duration", "0", timeout=40)
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in left), left


def test_the_tui_without_a_terminal_exits_2_and_draws_nothing() -> None:
    require_binary("dbus-daemon", "dbus")
    result = run_cli("--demo", timeout=30)  # stdin /dev/null, stdout a pipe
    assert result.returncode == 2, result
    assert result.stdout == ""
    (line,) = result.stderr_lines()
    assert "needs a terminal" in line and "watch --json" in line
