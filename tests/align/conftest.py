"""Fixtures of the align tests: the private PulseAudio (tests/pulse_server.py), speakers
with hidden latencies drawn from a seed that is fresh every run (printed on failure, pinned
with BTMON_ALIGN_SEED), and the demo's fake BlueZ on a private bus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.align.rooms import Room, fresh_seed, hidden_latencies, speakers
from tests.pulse_server import PulseServer, serve_pulse


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A fresh private PulseAudio per module: the room's loopbacks drift in rate as the
    server ages under many rooms (up to ~1,000 ppm, measured), and a later module's checks
    of a few ms must not inherit that."""
    yield from serve_pulse(tmp_path_factory)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Iterator[int]:
    """The run's seed; printed when the test fails (pin it with BTMON_ALIGN_SEED)."""
    value = fresh_seed()
    yield value
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"\nhidden latencies drawn with BTMON_ALIGN_SEED={value}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


@pytest.fixture
def room(pulse: PulseServer, seed: int, request: pytest.FixtureRequest) -> Iterator[Room]:
    """`request.param` speakers (default 2) with hidden latencies, removed after the test
    together with anything btmon left loaded."""
    with speakers(pulse, hidden_latencies(seed, getattr(request, "param", 2))) as made:
        yield made
