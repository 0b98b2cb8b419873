"""btmon-tui's domain: BlueZ mirror, verdicts, events and the fake BlueZ, without any UI code."""
