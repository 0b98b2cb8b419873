"""Helpers shared by the benchmarks: machine facts, percentiles, /proc readings, a pty harness.

Every timestamp that crosses a process boundary is `time.monotonic()`, which on Linux is
CLOCK_MONOTONIC: one clock for the whole machine, so a time taken in one process can be
subtracted from a time taken in another.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import math
import os
import platform
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEAD_BYTES = 4 << 20


# -- environment ---------------------------------------------------------------------------
def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child Python process that must import this project."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.pop("TEXTUAL", None)  # no devtools / debug features in a benchmark
    env.update(extra or {})
    return env


def btmon_command() -> list[str]:
    """How to start the `btmon-tui` console script of this venv."""
    script = Path(sys.executable).with_name("btmon-tui")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tui.cli"]


def machine() -> dict[str, str]:
    """What the numbers were measured on (the machine is shared: note its load too)."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mhz = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = line.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model + (f" @ {float(mhz):.0f} MHz" if mhz else ""),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "loadavg": load,
        "source": source_state(),
    }


def source_state() -> str:
    """The commit under test and whether core/ or tui/ differ from it (others work here too)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "core", "tui"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


# -- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): the smallest value with >= p % at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/max/mean in milliseconds of latencies given in seconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else math.nan,
        "mean": sum(ms) / len(ms) if ms else math.nan,
    }


# -- /proc ---------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    rss = hwm = math.nan
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024.0
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024.0
    return rss, hwm


def system_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, to report how loaded it was."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return float(total - idle), float(total)


@dataclass
class CpuWindow:
    """CPU use of some processes and of the machine between start() and stop()."""

    pids: dict[str, int]
    t0: float = 0.0
    cpu0: dict[str, float] = field(default_factory=dict)
    sys0: tuple[float, float] = (0.0, 0.0)
    result: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.sys0 = system_busy()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        out = {"wall_s": wall}
        for name, pid in self.pids.items():
            out[f"{name}_cpu_pct"] = 100.0 * (cpu_seconds(pid) - self.cpu0[name]) / wall
        busy, total = system_busy()
        ncpu = os.cpu_count() or 1
        out["machine_busy_pct"] = (
            100.0 * ncpu * (busy - self.sys0[0]) / max(1.0, total - self.sys0[1])
        )
        self.result = out
        return out


# -- processes -----------------------------------------------------------------------------
def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """Terminate (then kill) one child we started, and close its pipes."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """One line from a child's stdout, or b'' after `timeout` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else b""


class LineCollector(threading.Thread):
    """Reads a child's stdout line by line and stamps each line with time.monotonic()."""

    def __init__(self, proc: subprocess.Popen[bytes], name: str) -> None:
        super().__init__(name=f"lines-{name}", daemon=True)
        self.proc = proc
        self.lines: list[tuple[float, bytes]] = []

    def run(self) -> None:
        assert self.proc.stdout is not None
        stream = self.proc.stdout
        with contextlib.suppress(ValueError, OSError):
            while True:
                line = stream.readline()
                if not line:
                    return
                self.lines.append((time.monotonic(), line))


class PtyApp:
    """Runs a full-screen program on a pseudo-terminal of a given size and drains its output.

    The program sees a real terminal (Textual's Linux driver, real frames written); we read
    the frames, stamp them with time.monotonic() and look for marker tags in them.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        size: tuple[int, int] = (120, 40),
        env: dict[str, str] | None = None,
        tag_pattern: bytes | None = None,
    ) -> None:
        self.argv = argv
        self.size = size
        self.env = env or child_env()
        self.tag_re = re.compile(tag_pattern) if tag_pattern else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.master = -1
        self.bytes_read = 0
        #: tag -> first time it was seen on the terminal
        self.seen: dict[bytes, float] = {}
        self.first_output = threading.Event()
        self._watch: list[tuple[bytes, threading.Event]] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: the start of the output (for wait_for texts that came before the call)
        self._head = bytearray()

    def start(self) -> int:
        master, slave = os.openpty()
        cols, rows = self.size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(self.env)
        env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor", "COLUMNS": str(cols)})
        env["LINES"] = str(rows)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,  # Textual draws on stderr
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self._thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._thread.start()
        return self.proc.pid

    def wait_for(self, text: bytes, timeout: float) -> bool:
        """Block until `text` has appeared in the output (at any time) or timeout."""
        event = threading.Event()
        with self._lock:
            if text in self._head:
                return True
            self._watch.append((text, event))
        return event.wait(timeout)

    def _drain(self) -> None:
        carry = b""
        while True:
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            self.bytes_read += len(chunk)
            self.first_output.set()
            data = carry + chunk
            if self.tag_re is not None:
                for match in self.tag_re.finditer(data):
                    self.seen.setdefault(match.group(1), now)
            with self._lock:
                if len(self._head) < HEAD_BYTES:
                    self._head += chunk
                for text, event in list(self._watch):
                    if text in data:
                        event.set()
                        self._watch.remove((text, event))
            carry = data[-64:]

    def send(self, keys: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, keys)

    def stop(self, quit_keys: bytes | None = b"q", timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            if quit_keys:
                self.send(quit_keys)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=timeout)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if self.master >= 0:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = -1
        if self._thread is not None:
            self._thread.join(timeout=2)


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
