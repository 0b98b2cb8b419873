"""`btmon-tui … --metrics 127.0.0.1:0` as a subprocess, and its /metrics scraped over HTTP.

Port 0: the command takes a free port and names its URL on stderr (`btmon-tui: metrics on
http://127.0.0.1:PORT/metrics`), so parallel runs never race for a port.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from core.sim.daemon import child_env

ROOT = Path(__file__).resolve().parents[2]
#: `watch` names where it serves, on stderr.
URL_LINE = re.compile(r"btmon-tui: metrics on (http://\S+/metrics)")
#: How long a command gets to come up and name its URL (the demo starts a dbus-daemon).
START_S = 20.0
OPENMETRICS = "application/openmetrics-text; version=1.0.0"

Samples = dict[str, list[Sample]]


def scrape(url: str, accept: str | None = None) -> tuple[str, str]:
    """(Content-Type, body) of one GET."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples(text: str, *, openmetrics: bool = False) -> Samples:
    """Sample name -> its samples, parsed by the client library's own parser; every value
    a number (absent values are absent series, never NaN) and no sample timestamp."""
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    out: Samples = {}
    for family in parse(text):
        for sample in family.samples:
            assert not math.isnan(sample.value), sample
            assert sample.timestamp is None, sample
            out.setdefault(sample.name, []).append(sample)
    return out


def by_address(found: Samples, name: str) -> dict[str, float]:
    return {s.labels["address"]: s.value for s in found.get(name, [])}


def addresses(found: Samples) -> set[str]:
    return {s.labels["address"] for group in found.values() for s in group if "address" in s.labels}


def current_verdicts(found: Samples) -> dict[str, str]:
    """Address -> its verdict; asserts exactly one verdict series is 1 per speaker."""
    ones: dict[str, list[str]] = {}
    for sample in found["btmon_speaker_verdict"]:
        assert sample.value in (0.0, 1.0), sample
        ones.setdefault(sample.labels["address"], [])
        if sample.value == 1.0:
            ones[sample.labels["address"]].append(sample.labels["verdict"])
    for address, verdicts in ones.items():
        assert len(verdicts) == 1, (address, verdicts)
    return {address: verdicts[0] for address, verdicts in ones.items()}


class Running:
    """One `python -m tui.cli ARGS` with stdout and stderr in files; SIGTERM on stop."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.out_path, self.err_path = tmp / "stdout", tmp / "stderr"
        self.args = args
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tui.cli", *args],
                cwd=ROOT,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.url = ""

    def stdout(self) -> str:
        return self.out_path.read_text()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_url(self, timeout: float = START_S) -> str:
        self.url = wait_until(
            lambda: (m := URL_LINE.search(self.stderr())) and m.group(1),
            timeout,
            f"the metrics URL on stderr of {self.args}",
            self,
        )
        return self.url

    def scrape(self, accept: str | None = None) -> Samples:
        _, text = scrape(self.url, accept)
        return samples(text)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_until(probe: Callable[[], Any], timeout: float, what: str, running: Running | None) -> Any:
    """Poll `probe` until it returns something true; fail after `timeout` s (with stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if running is not None and running.proc.poll() is not None:
            raise AssertionError(f"btmon-tui ended ({running.proc.returncode}): {running.stderr()}")
        if time.monotonic() > deadline:
            tail = running.stderr()[-2000:] if running is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; {tail}")
        time.sleep(0.05)
