"""End to end: the real `btmon-tui --demo` in a real terminal (tmux), driven by key presses.

Checks what a newcomer does first (read the fleet, open help, open a speaker, quit) and that
quitting leaves nothing behind: no private dbus-daemon, no fake bluetoothd.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require_binary

pytestmark = [pytest.mark.tmux, pytest.mark.dbus]

#: Seconds for the demo to come up (dbus-daemon + fake bluetoothd + first full fleet).
START_TIMEOUT_S = 20.0
#: Seconds for a key press to show on screen.
KEY_TIMEOUT_S = 5.0
#: Seconds for the app and its children to end after a quit or a hang-up (~1 s alone; what is
#: asserted is that nothing is left behind, not how fast: a loaded CI machine took over 5 s).
GONE_TIMEOUT_S = 30.0
#: Seconds between two looks at a screen that should have stopped moving (Textual animates a
#: page scroll over ~0.5 s; two equal looks this far apart mean it ended).
SETTLE_S = 0.3
#: The demo's first probe comes 2 s after start; the analysis takes well under a second, but
#: numpy and scipy load on the first one.
PROBE_TIMEOUT_S = 20.0
#: Seconds for the demo's resync of 'Bar' to end (about 3 s at the demo's speed).
ACTION_TIMEOUT_S = 20.0
#: An isolated tmux: no user config, no escape delay (so esc is esc at once), and the pane's
#: last screen kept after the app exits (to look for a traceback).
TMUX_CONF = "set -sg escape-time 0\nset -g remain-on-exit on\nset -g history-limit 0\n"


def clean_env() -> dict[str, str]:
    """This process's environment for tmux, minus COLUMNS/LINES: GNU readline (imported under
    pytest) exports them at the C level, and the app would then believe the terminal is 80x24."""
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (no psutil needed)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Tmux:
    """One private tmux server (its own socket) running one session."""

    def __init__(self, tmux: str, workdir: Path) -> None:
        self.base = [tmux, "-L", f"btmon-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"]
        self.conf = workdir / "tmux.conf"
        self.conf.write_text(TMUX_CONF)

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env=clean_env(),
        )
        return done.stdout

    def start(self, command: str, width: int, height: int) -> None:
        self.run("-f", str(self.conf), "new-session", "-d", "-s", "e2e", "-x", str(width),
                 "-y", str(height), command)  # fmt: skip

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "e2e")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "e2e", *keys)

    def pane(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", "e2e", fmt).strip()

    def wait(self, predicate: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{text}")
            time.sleep(0.05)

    def settled(self, part: Callable[[str], str], timeout: float) -> str:
        """The screen once `part` of it has stopped changing (an animation ended)."""
        deadline = time.monotonic() + timeout
        previous = self.screen()
        while True:
            time.sleep(SETTLE_S)
            text = self.screen()
            if part(text) == part(previous) or time.monotonic() > deadline:
                return text
            previous = text

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)


@dataclass
class Demo:
    """`btmon-tui --demo` running in a tmux pane, and the processes it started."""

    tmux: Tmux
    status_file: Path
    shell_pid: int = 0
    app_pid: int = 0
    children: list[int] = field(default_factory=list)
    bus_address: str = ""

    def start(self, width: int = 100, height: int = 30) -> str:
        """Start the app; return the screen once the fleet is on it."""
        # A shell notes the exit status in a file: tmux's own #{pane_dead_status} is sometimes
        # empty when the pty closes before the exit is reaped.
        self.status_file.unlink(missing_ok=True)
        command = f"{btmon_command()}; echo $? > {shlex.quote(str(self.status_file))}"
        self.tmux.start(command, width, height)
        self.shell_pid = int(self.tmux.pane("#{pane_pid}"))
        screen = self.tmux.wait(
            lambda s: "connected speakers streaming" in s, "the fleet line", START_TIMEOUT_S
        )
        (self.app_pid,) = _children(self.shell_pid)
        # The demo's private bus and fake bluetoothd are the app's children.
        self.children = descendants(self.app_pid)
        commands = [cmdline(pid) for pid in self.children]
        assert any("dbus-daemon" in c for c in commands), commands
        sim = shlex.split(next(c for c in commands if "core.sim" in c))
        self.bus_address = sim[sim.index("--address") + 1]
        return screen

    def exit_status(self) -> int:
        """Wait for the app to end; its exit status."""
        deadline = time.monotonic() + KEY_TIMEOUT_S
        while not self.status_file.exists() or not self.status_file.read_text().strip():
            assert time.monotonic() < deadline, (
                f"btmon-tui did not end (alive: {alive(self.app_pid)}):\n{self.tmux.screen()}"
            )
            time.sleep(0.05)
        return int(self.status_file.read_text())

    def assert_all_gone(self) -> None:
        """The app, its dbus-daemon and its fake bluetoothd have all ended."""
        ours = [self.app_pid, *self.children]
        deadline = time.monotonic() + GONE_TIMEOUT_S
        while any(alive(pid) for pid in ours) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {pid: cmdline(pid) for pid in ours if alive(pid)}
        assert not left, f"still running: {left}"
        users = [
            cmdline(int(p.parent.name))
            for p in Path("/proc").glob("[0-9]*/cmdline")
            if self.bus_address in cmdline(int(p.parent.name))
        ]
        assert not users, f"processes still using the demo bus: {users}"
        socket = Path(self.bus_address.removeprefix("unix:path=").split(",", 1)[0])
        assert not socket.parent.exists(), f"the demo bus left {socket.parent} behind"

    def cleanup(self) -> None:
        """Kill the tmux server, then whatever this test started that outlived it (by pid)."""
        ours = set(self.children)
        if self.shell_pid and alive(self.shell_pid):
            ours.update(descendants(self.shell_pid))
        self.tmux.kill()
        for pid in ours:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    require_binary("dbus-daemon", "dbus-daemon")
    running = Demo(Tmux(require_binary("tmux", "tmux"), tmp_path), tmp_path / "exit-status")
    try:
        yield running
    finally:
        running.cleanup()


def btmon_command() -> str:
    script = Path(sys.executable).parent / "btmon-tui"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "tui.cli"]
    return shlex.join([*argv, "--demo"])


def test_demo_help_detail_and_clean_quit(demo: Demo) -> None:
    tmux = demo.tmux
    demo.start(100, 30)
    # The demo's simulated HCI capture: Foyer's transport is active, but no media reaches it.
    # Until the capture has had its say Foyer is `pending`, never `streaming`.
    screen = tmux.wait(lambda s: "stalled" in row(s, "Foyer"), "Foyer stalled", KEY_TIMEOUT_S)
    assert "3 of 7 connected speakers streaming" in screen
    assert "0/s" in row(screen, "Foyer")
    assert "Media" in screen and "/s" in row(screen, "Stage Left")
    assert "connected-idle" in screen and "Bar" in screen
    assert " OK " in screen

    tmux.keys("?")
    screen = tmux.wait(lambda s: "btmon-tui help" in s, "the help screen", KEY_TIMEOUT_S)
    assert "Keys" in screen
    seen = screen
    for _ in range(5):  # the help scrolls: the quit keys and the verdicts come after
        if "ctrl+q" in seen and "shows Connected but gets no audio" in seen:
            break
        tmux.keys("PageDown")
        # A page scrolls in an animation (~0.5 s): read the help once it has stopped moving,
        # or a loaded machine takes the next PageDown mid-way and skips past the verdicts.
        screen = tmux.settled(help_box, KEY_TIMEOUT_S)
        seen += screen
    assert "ctrl+q" in seen  # the help says which keys quit
    assert "shows Connected but gets no audio" in seen
    tmux.keys("Escape")
    tmux.wait(lambda s: "btmon-tui help" not in s, "help to close", KEY_TIMEOUT_S)

    tmux.keys("Down", "Down", "Enter")  # third row: Sub Bass
    screen = tmux.wait(
        lambda s: "Sub Bass  00:1A:7D:DA:71:03" in s and "esc Back" in s,
        "the detail screen with its footer",
        KEY_TIMEOUT_S,
    )
    assert "active, aptX LL" in screen
    tmux.keys("Escape")
    tmux.wait(
        lambda s: "connected speakers streaming" in s and "Stage Left" in s,
        "the fleet view again",
        KEY_TIMEOUT_S,
    )

    tmux.keys("q")
    status = demo.exit_status()
    assert status == 0, f"btmon-tui exited with {status}:\n{tmux.screen()}"
    assert "Traceback" not in tmux.screen()
    demo.assert_all_gone()


def help_box(screen: str) -> str:
    """The help's text, without the live fleet around it."""
    return "\n".join(line.split("│")[1] for line in screen.splitlines() if line.count("│") >= 2)


def row(screen: str, name: str) -> str:
    return next((line for line in screen.splitlines() if f" {name} " in line), "")


def bar_row(screen: str) -> str:
    return row(screen, "Bar")


def test_r_resyncs_bar_with_its_progress_on_screen(demo: Demo) -> None:
    """The ghost-connected 'Bar': r shows the resync's steps in its row, then 'streaming'."""
    tmux = demo.tmux
    screen = demo.start(100, 30)
    assert "connected-idle" in bar_row(screen)

    tmux.keys("Down", "Down", "Down", "r")  # fourth row: Bar
    tmux.wait(lambda s: "⟳" in bar_row(s), "the step in Bar's row", KEY_TIMEOUT_S)
    screen = tmux.wait(lambda s: " streaming " in bar_row(s), "Bar streaming", ACTION_TIMEOUT_S)
    assert "4 of 7 connected speakers streaming" in screen
    tmux.wait(lambda s: "Bar: resync ok — streaming again" in s, "the log line", KEY_TIMEOUT_S)

    tmux.keys("q")
    assert demo.exit_status() == 0
    assert "Traceback" not in tmux.screen()
    demo.assert_all_gone()


def test_closed_terminal_leaves_nothing_behind(demo: Demo) -> None:
    """An SSH drop: the terminal goes away (SIGHUP) and the demo's processes must go too."""
    demo.start(80, 24)
    demo.tmux.kill()
    demo.assert_all_gone()


def test_sigterm_exits_cleanly(demo: Demo) -> None:
    demo.start(80, 24)
    os.kill(demo.app_pid, signal.SIGTERM)
    assert demo.exit_status() == 128 + signal.SIGTERM
    assert "Traceback" not in demo.tmux.screen()
    demo.assert_all_gone()


def test_demo_probes_by_itself_and_on_p(demo: Demo) -> None:
    """In a tall terminal the demo's first probe fills the drift panel; p probes again."""
    tmux = demo.tmux
    demo.start(150, 44)

    def panel_row(screen: str, name: str, word: str) -> bool:
        return any(name in line and word in line for line in screen.splitlines())

    screen = tmux.wait(
        lambda s: panel_row(s, "Foyer", "NOT HEARD") and panel_row(s, "Sub Bass", "ECHO"),
        "the first probe in the drift panel",
        PROBE_TIMEOUT_S,
    )
    assert "simulated room" in screen
    tmux.keys("p")
    logged = re.compile(r"\d\d:\d\d:\d\d probe: 3 of 4 speakers heard")
    tmux.wait(lambda s: len(logged.findall(s)) >= 2, "the log line of p", PROBE_TIMEOUT_S)
    tmux.keys("q")
    assert demo.exit_status() == 0
    assert "Traceback" not in tmux.screen()
    demo.assert_all_gone()


#: The pane's terminal modes after btmon-tui quit: normal screen, no mouse reporting, the
#: keypad as it was (tmux's own view of the modes the app set and must reset). The cursor
#: flag is not asked: tmux reports 0 for any pane whose command ended (remain-on-exit).
CLEAN_MODES = "alternate=0 mouse=0 buttons=0 sgr=0 keypad=0"


def terminal_modes(tmux: Tmux) -> str:
    return tmux.pane(
        "alternate=#{alternate_on} mouse=#{mouse_any_flag} buttons=#{mouse_button_flag} "
        "sgr=#{mouse_sgr_flag} keypad=#{keypad_cursor_flag}"
    )


def test_q_while_a_resync_runs_asks_first_then_ctrl_c_quits_clean(demo: Demo) -> None:
    """Quitting mid-resync would leave Bar disconnected: q asks (No by default), n keeps the
    resync running to its end; with nothing running ctrl+c quits at once, and cleanly."""
    tmux = demo.tmux
    demo.start(100, 30)
    tmux.keys("Down", "Down", "Down", "r")  # fourth row: Bar
    tmux.wait(lambda s: "⟳" in bar_row(s), "the step in Bar's row", KEY_TIMEOUT_S)
    tmux.keys("q")
    tmux.wait(
        lambda s: "A resync of Bar is running: quit anyway?" in s, "the question", KEY_TIMEOUT_S
    )
    tmux.keys("n")
    tmux.wait(lambda s: "quit anyway?" not in s, "the question to go", KEY_TIMEOUT_S)
    tmux.wait(lambda s: " streaming " in bar_row(s), "Bar streaming", ACTION_TIMEOUT_S)
    assert alive(demo.app_pid)
    tmux.keys("C-c")
    assert demo.exit_status() == 0
    assert "Traceback" not in tmux.screen()
    assert terminal_modes(tmux) == CLEAN_MODES
    demo.assert_all_gone()


def test_after_a_resize_the_footer_keeps_details_and_quit_is_clean(demo: Demo) -> None:
    """Too small (40x10): the notice, not covered by the demo's toasts; grown again: the
    table has its focus back, so ⏎ Details is in the footer; q leaves the terminal clean:
    modes reset, and no frame of the app left on screen or in the scrollback."""
    tmux = demo.tmux
    demo.start(80, 24)
    tmux.run("resize-window", "-t", "e2e", "-x", "40", "-y", "10")
    screen = tmux.wait(lambda s: "Terminal is 40×10" in s, "the notice", KEY_TIMEOUT_S)
    assert "q to quit" in screen and "Dropout" not in screen
    tmux.run("resize-window", "-t", "e2e", "-x", "100", "-y", "30")
    tmux.wait(
        lambda s: "⏎ Details" in s.splitlines()[-1] and "Stage Left" in s,
        "the fleet and ⏎ Details in the footer",
        KEY_TIMEOUT_S,
    )
    tmux.keys("q")
    assert demo.exit_status() == 0
    assert "Traceback" not in tmux.screen()
    assert terminal_modes(tmux) == CLEAN_MODES
    # Nothing of the app's screen is left in the pane or its scrollback (tmux moved the
    # alternate screen's last frame there after a resize, until the app blanked it).
    everything = tmux.run("capture-pane", "-p", "-S", "-500", "-t", "e2e")
    assert "Stage Left" not in everything, everything
    demo.assert_all_gone()
