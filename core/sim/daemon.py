"""A private dbus-daemon for the demo and tests: its own socket, torn down with it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

from core.sim.tempdirs import clean_stale, owned_tempdir

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

MISSING_DAEMON = (
    "dbus-daemon not found: install it with `sudo apt-get install dbus-daemon` "
    "(package 'dbus' on older Debian/Ubuntu), or run `make setup`"
)


class DemoUnavailable(RuntimeError):
    """The private bus cannot be started; the message names the missing package."""


class PrivateBus:
    """`with PrivateBus() as address:` runs a dbus-daemon nobody else can see."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> str:
        exe = shutil.which("dbus-daemon")
        if exe is None:
            raise DemoUnavailable(MISSING_DAEMON)
        clean_stale()  # what killed runs left behind
        self.dir = owned_tempdir("bus")
        config = self.dir / "bus.conf"
        config.write_text(_CONFIG.format(socket=self.dir / "socket"))
        self.proc = subprocess.Popen(
            [exe, f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise DemoUnavailable(f"dbus-daemon did not start: {err.strip() or 'no address'}")
        self.address = line
        return line

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 5 s; close its pipes."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when btmon-tui dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the children then rely on a clean exit


def child_env() -> dict[str, str]:
    """Environment for a child Python process that must import this project."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
