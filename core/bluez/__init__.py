"""Everything that speaks to BlueZ over D-Bus (dbus-next stays inside this package and core.sim)."""
