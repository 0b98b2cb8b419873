"""Fixtures of the TUI tests: the demo's fleet on the fake BlueZ (a private dbus-daemon)."""

from __future__ import annotations

import pytest

from core.sim.fake_bluez import FakeBluez
from core.sim.scenario import build_default
from tests.conftest import FakeService


@pytest.fixture
async def fake(bluez_service: FakeService) -> FakeBluez:
    """The demo's default fleet, at the fake's own speed (a module may define its own)."""
    return await bluez_service.start(build_default)
