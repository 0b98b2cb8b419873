"""BLE tests point bleak at a private bus through DBUS_SYSTEM_BUS_ADDRESS (bleak only talks to
"the system bus"); this puts the variable back after every test, whatever the code set."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_system_bus_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv/delenv record the original value; monkeypatch restores it at teardown even when
    # BlePresence changed the variable in between.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/btmon-tui-test")
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS")
