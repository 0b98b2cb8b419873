"""Running `btmon-tui` as a real subprocess, with a hard timeout and no leftovers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.sim.daemon import child_env

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(*args: str, timeout: float = 20.0, env: dict[str, str] | None = None) -> Result:
    """`python -m tui.cli ARGS` from the repository root; SIGTERM (then SIGKILL) on timeout.

    SIGTERM first so that `--demo` runs its `finally` and stops its dbus-daemon and fake
    bluetoothd, which live in their own sessions and would survive a plain kill."""
    import time

    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *args],
        cwd=ROOT,
        env=env if env is not None else child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"btmon-tui {' '.join(args)} ran over {timeout} s; stderr: {err[-1000:]}")
    return Result(proc.returncode, out, err, time.monotonic() - started)
