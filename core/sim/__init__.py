"""A BlueZ-shaped D-Bus service for the demo, tests and screenshots (DESIGN §7)."""
