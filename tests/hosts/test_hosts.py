"""Remote hosts end to end: two fleets on separate buses and processes, watched through their
own `btmon-tui watch --json` (tests/hosts/conftest.py), merged into one Monitor and one
`watch` stream; a host killed and brought back; hosts that cannot be reached or run an older
btmon-tui; an action run on the speaker's own host."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from core.fleet.model import SourceState, Verdict
from core.hosts import BACKOFF_S, HostSpec, RemoteActions
from tests.cli.conftest import run_cli
from tests.conftest import DEMO_VERDICTS
from tests.hosts.conftest import Host, connected, host_source, of_host, until, watching

pytestmark = pytest.mark.dbus

#: A bound for a hung test (two demo fleets starting on 2 busy cores), not a speed claim.
START_S = 60.0
#: The issue's promise: a host that is back is reached again within 10 s (its backoff's
#: longest wait is 8 s); the slack covers starting btmon-tui there on a loaded machine.
BACK_S = 10.0 + 15.0


def verdicts(speakers: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {s.address: s.verdict.value for s in speakers}


def test_watch_merges_two_hosts_with_a_snapshot_each_and_every_line_tagged(
    two_hosts: tuple[Host, Host],
) -> None:
    lab, foyer = two_hosts
    result = run_cli(
        "watch", "--json", "--duration", "3", "--host", lab.arg, "--host", foyer.arg, timeout=90
    )
    assert result.returncode == 0, result.stderr
    lines = result.json_lines()
    first, second = lines[0], lines[1]
    assert (first["type"], first["host"]) == ("snapshot", "lab")
    assert (second["type"], second["host"]) == ("snapshot", "foyer")
    for snapshot in (first, second):
        got = {s["address"]: s["verdict"] for s in snapshot["speakers"]}
        assert got == DEMO_VERDICTS
        assert {s["host"] for s in snapshot["speakers"]} == {snapshot["host"]}
        assert snapshot["fleet"]["speakers"] == len(DEMO_VERDICTS)
    assert all(line.get("host") in ("lab", "foyer") for line in lines), lines
    # Neither snapshot repeats as a line of its own stream before the merged snapshots.
    assert Counter(line["type"] for line in lines[:2]) == {"snapshot": 2}


async def test_a_host_killed_shows_unknown_while_the_other_goes_on_and_comes_back(
    two_hosts: tuple[Host, Host],
) -> None:
    lab, foyer = two_hosts
    async with watching(lab.spec, foyer.spec) as (monitor, seen):
        await until(
            lambda: connected(monitor, "lab") and connected(monitor, "foyer"), START_S, "both up"
        )
        assert verdicts(of_host(monitor, "lab")) == DEMO_VERDICTS
        assert verdicts(of_host(monitor, "foyer")) == DEMO_VERDICTS
        foyer_before = verdicts(of_host(monitor, "foyer"))

        lab.down()
        await until(
            lambda: all(s.verdict == Verdict.UNKNOWN for s in of_host(monitor, "lab")),
            START_S,
            "lab's speakers unknown",
        )
        status = host_source(monitor, "lab").status
        assert status.state == SourceState.ERROR
        assert "lab" in status.detail
        assert "trying again" in status.detail
        # The other host is untouched, and the fleet counts only what is known.
        assert connected(monitor, "foyer")
        assert verdicts(of_host(monitor, "foyer")) == foyer_before
        snap = monitor.snapshot()
        assert snap.counts.speakers == 2 * len(DEMO_VERDICTS)
        foyer_counts = [s for s in snap.speakers if s.host == "foyer" and s.in_fleet]
        assert snap.counts.connected == sum(
            1 for s in foyer_counts if s.connected and s.verdict != Verdict.UNKNOWN
        )
        lost = [line for line in seen if line.get("type") == "source" and line.get("host") == "lab"]
        assert lost and lost[-1]["state"] == "error"
        # Unreachable while it is down: it says so (ssh's words), once, not once per try.
        await until(
            lambda: "Connection refused" in host_source(monitor, "lab").status.detail,
            START_S,
            "lab unreachable",
        )
        await asyncio.sleep(sum(BACKOFF_S[:3]))  # a few more tries
        errors = [
            line
            for line in seen
            if line.get("type") == "source"
            and line.get("host") == "lab"
            and "refused" in line["detail"]
        ]
        assert len(errors) == 1, errors

        lab.up()
        took = await until(lambda: connected(monitor, "lab"), BACK_S, "lab back")
        await until(
            lambda: verdicts(of_host(monitor, "lab")) == DEMO_VERDICTS, START_S, "lab's verdicts"
        )
        print(f"lab reached again {took:.1f} s after it was back")
        assert host_source(monitor, "lab").sessions == 2


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            'echo "ssh: connect to host lab port 22: No route to host" >&2; exit 255',
            "lab: unreachable: ssh: connect to host lab port 22: No route to host",
        ),
        (
            "echo \"btmon-tui: error: argument command: invalid choice: 'watch'\" >&2; exit 2",
            "lab runs an older btmon-tui",
        ),
        (
            "echo 'bash: btmon-tui: command not found' >&2; exit 127",
            "btmon-tui was not found on lab",
        ),
        ("echo 'Welcome to lab'; sleep 30", "did not answer with `watch --json` lines"),
    ],
    ids=["unreachable", "older", "not-installed", "not-json"],
)
async def test_a_host_that_cannot_answer_says_why_and_what_to_do(
    script: str, expected: str, two_hosts: tuple[Host, Host]
) -> None:
    _, foyer = two_hosts
    bad = HostSpec("lab", ("sh", "-c", script, "sh"))
    async with watching(bad, foyer.spec) as (monitor, _):
        await until(lambda: connected(monitor, "foyer"), START_S, "foyer up")
        await until(
            lambda: expected in host_source(monitor, "lab").status.detail,
            START_S,
            f"lab's status says {expected!r} (it says "
            f"{host_source(monitor, 'lab').status.detail!r})",
        )
        assert host_source(monitor, "lab").status.state == SourceState.ERROR
        assert verdicts(of_host(monitor, "foyer")) == DEMO_VERDICTS
        assert of_host(monitor, "lab") == []


def test_watch_says_which_host_is_unreachable_and_still_streams_the_other(
    two_hosts: tuple[Host, Host],
) -> None:
    lab, foyer = two_hosts
    lab.down()
    result = run_cli(
        "watch", "--json", "--duration", "2", "--host", lab.arg, "--host", foyer.arg, timeout=90
    )
    assert result.returncode == 0, result.stderr
    lines = result.json_lines()
    assert [(line["type"], line["host"]) for line in lines[:3]] == [
        ("snapshot", "lab"),
        ("source", "lab"),
        ("snapshot", "foyer"),
    ]
    assert lines[0]["speakers"] == []
    assert lines[1]["state"] == "error"
    assert "Connection refused" in lines[1]["detail"]
    assert {s["address"]: s["verdict"] for s in lines[2]["speakers"]} == DEMO_VERDICTS


async def test_an_action_runs_on_its_speakers_host_and_is_published_with_it(
    two_hosts: tuple[Host, Host],
) -> None:
    lab, foyer = two_hosts
    address = "00:1A:7D:DA:71:01"  # Stage Left: streaming on both hosts
    steps: list[str] = []
    async with watching(lab.spec, foyer.spec) as (monitor, seen):
        await until(
            lambda: connected(monitor, "lab") and connected(monitor, "foyer"), START_S, "both up"
        )
        actions = RemoteActions(
            lab.spec, monitor.publish, on_progress=lambda _a, step: steps.append(step)
        )
        started = time.time()
        event = await asyncio.wait_for(actions.run("resync", address), START_S)
        assert (event.result, event.host, event.address) == ("ok", "lab", address), event
        assert [s for s in steps if s], "no progress from the host"
        assert any(line.get("type") == "action" and line.get("host") == "lab" for line in seen)
        await until(
            lambda: any(
                line.get("type") == "device"
                and line.get("host") == "lab"
                and line.get("address") == address
                and line["t"] >= started - 1
                for line in seen
            ),
            START_S,
            "lab's watch saw the resync",
        )
        # The same address on the other host was left alone.
        assert not any(
            line.get("host") == "foyer" and line.get("type") in ("device", "transport")
            for line in seen
            if line.get("address") == address
        )


async def test_an_action_on_a_host_that_is_down_fails_with_why() -> None:
    spec = HostSpec(
        "lab",
        ("sh", "-c", 'echo "ssh: connect to host lab: Connection refused" >&2; exit 255', "sh"),
    )
    published: list = []  # type: ignore[type-arg]
    event = await RemoteActions(spec, published.extend).run("resync", "00:1A:7D:DA:71:01")
    assert (event.result, event.detail, event.host) == ("error", "host-unreachable", "lab")
    assert "Connection refused" in event.message
    assert published == [event]
