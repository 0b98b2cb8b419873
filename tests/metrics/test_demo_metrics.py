"""`btmon-tui watch --demo --metrics`: the real command, scraped over HTTP, against the demo
fleet's known truth and the `watch --json` snapshot the same process printed."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from core.fleet.model import Verdict
from core.metrics import METRICS
from core.sim.scenario import DROP_PERIOD_S, DROPPER, STALLED
from tests.conftest import DEMO_HCI_VERDICTS, require_binary
from tests.metrics.promtool import promtool_path
from tests.metrics.scrape import (
    OPENMETRICS,
    Running,
    addresses,
    by_address,
    current_verdicts,
    samples,
    scrape,
    wait_until,
)

pytestmark = pytest.mark.dbus

#: The demo's neighbour (Paired=false) and its phone (not a speaker): `--all` lists both in
#: the snapshot; neither is a speaker of the fleet, so neither may appear in the metrics.
NEIGHBOUR = "30:C0:1D:5E:00:0B"
PHONE = "A4:50:46:00:00:09"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, dict]]:
    """One `watch --json --all --demo --metrics 127.0.0.1:0` for the module, with its first
    snapshot line."""
    require_binary("dbus-daemon", "dbus-daemon")
    running = Running(
        tmp_path_factory.mktemp("demo"),
        *("watch", "--json", "--all", "--demo", "--metrics", "127.0.0.1:0"),
    )
    try:
        running.wait_url()
        line = wait_until(
            lambda: running.stdout().split("\n", 1)[0] if "\n" in running.stdout() else None,
            20.0,
            "the first snapshot",
            running,
        )
        yield running, json.loads(line)
    finally:
        assert running.stop() == 0, running.stderr()


def test_the_scrape_is_the_snapshot(demo: tuple[Running, dict]) -> None:
    running, snapshot = demo
    assert snapshot["type"] == "snapshot"
    found = running.scrape()
    assert set(found) <= METRICS
    listed = {s["address"]: s for s in snapshot["speakers"]}
    assert NEIGHBOUR in listed and PHONE in listed  # --all lists them ...
    assert addresses(found) == set(DEMO_HCI_VERDICTS)  # ... the metrics never do
    # Exactly one verdict series is 1 per speaker: the snapshot's, the demo's known truth.
    verdicts = current_verdicts(found)
    assert verdicts == DEMO_HCI_VERDICTS
    assert verdicts == {a: listed[a]["verdict"] for a in DEMO_HCI_VERDICTS}
    every = {(s.labels["address"], s.labels["verdict"]) for s in found["btmon_speaker_verdict"]}
    assert every == {(a, v.value) for a in DEMO_HCI_VERDICTS for v in Verdict}
    # The fleet's counts are the snapshot's (the fleet line's rule: paired speakers only).
    fleet = {
        key: found[f"btmon_fleet_{key}"][0].value for key in ("speakers", "connected", "streaming")
    }
    assert fleet == snapshot["fleet"] == {"speakers": 9, "connected": 7, "streaming": 3}
    info = {s.labels["address"]: s.labels for s in found["btmon_speaker_info"]}
    for address, labels in info.items():
        speaker = listed[address]
        transport = speaker["transport"] or {}
        assert labels["name"] == speaker["name"]
        assert labels["adapter"] == speaker["adapter"]
        assert labels["codec"] == (transport.get("codec") or "")
    assert {s.value for s in found["btmon_speaker_info"]} == {1.0}
    connected = by_address(found, "btmon_speaker_connected")
    assert connected == {a: float(listed[a]["connected"]) for a in DEMO_HCI_VERDICTS}
    # HCI's rates (the demo's simulated capture): only for links it counts.
    pps = by_address(found, "btmon_speaker_media_packets_per_second")
    assert pps[DROPPER] > 30 and pps[STALLED] == 0
    assert set(pps) == {a for a in DEMO_HCI_VERDICTS if listed[a]["media_pps"] is not None}
    assert {s.labels["source"]: s.value for s in found["btmon_source_up"]} == {
        "BlueZ": 1.0,
        "HCI": 1.0,
    }


def test_dropouts_and_periods_of_the_seeded_history(demo: tuple[Running, dict]) -> None:
    running, _ = demo
    found = running.scrape()
    drops = {
        (s.labels["address"], s.labels["kind"]): s.value
        for s in found["btmon_speaker_dropouts_total"]
    }
    assert drops[(DROPPER, "link")] >= 3  # the demo's history: the dropper's past drops
    assert all(count >= 1 for count in drops.values())
    periods = by_address(found, "btmon_speaker_dropout_period_seconds")
    assert periods.keys() == {DROPPER}  # only where a period is known
    assert periods[DROPPER] == pytest.approx(DROP_PERIOD_S, rel=0.05)
    upcoming = by_address(found, "btmon_speaker_dropout_next_timestamp_seconds")
    assert upcoming.keys() == {DROPPER}
    assert time.time() - 5 < upcoming[DROPPER] < time.time() + DROP_PERIOD_S * 1.1
    # `watch` runs no probe: no latency, offset or spread series at all (never NaN).
    for name in ("btmon_speaker_latency_seconds", "btmon_speaker_offset_seconds"):
        assert name not in found
    assert "btmon_fleet_spread_seconds" not in found


def test_openmetrics_when_the_scraper_asks(demo: tuple[Running, dict]) -> None:
    running, _ = demo
    content_type, text = scrape(running.url)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    assert "# EOF" not in text
    content_type, text = scrape(running.url, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0"), content_type
    assert text.endswith("# EOF\n")
    found = samples(text, openmetrics=True)
    assert current_verdicts(found) == DEMO_HCI_VERDICTS
    assert "# TYPE btmon_speaker info" in text
    assert "# TYPE btmon_speaker_dropouts counter" in text
    assert "# UNIT btmon_speaker_dropout_period_seconds seconds" in text


def test_promtool_finds_no_naming_problem(demo: tuple[Running, dict]) -> None:
    """`promtool check metrics`: Prometheus' own linter (base units, _total counters, …)."""
    promtool = promtool_path()
    _, text = scrape(demo[0].url)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""
