"""A pure mirror of BlueZ's object tree: path -> interface -> properties, fed by decoded signals.

The D-Bus layer (client.py) unwraps variants and calls these methods in message order; this
module never touches the bus, so every case (invalidated properties, removal mid-update, buggy
types) is testable with plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.bluez.defs import (
    ADAPTER,
    BATTERY,
    DEVICE,
    PROPERTY_SIGNATURES,
    TRANSPORT,
    WATCHED_INTERFACES,
)

#: A property as it came off the bus: (D-Bus signature, unwrapped value).
TypedValue = tuple[str, Any]


def check_properties(
    path: str, interface: str, props: Mapping[str, TypedValue]
) -> tuple[dict[str, Any], list[str]]:
    """Keep properties whose signature is the documented one; describe the rest as warnings."""
    expected = PROPERTY_SIGNATURES.get(interface, {})
    clean: dict[str, Any] = {}
    warnings: list[str] = []
    for name, (signature, value) in props.items():
        want = expected.get(name)
        if want is not None and signature != want:
            warnings.append(
                f"{interface}.{name} on {path} has D-Bus type '{signature}', "
                f"expected '{want}': ignored"
            )
            continue
        clean[name] = value
    return clean, warnings


@dataclass
class ObjectCache:
    """BlueZ's objects that matter to us, plus which devices changed since the last take_dirty()."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: device path -> transport paths whose Device property names it.
    transports_of: dict[str, set[str]] = field(default_factory=dict)
    dirty_devices: set[str] = field(default_factory=set)
    adapters_dirty: bool = False
    warnings: list[str] = field(default_factory=list)

    # -- updates -------------------------------------------------------------------------
    def reset(self, managed: Mapping[str, Mapping[str, Mapping[str, TypedValue]]]) -> None:
        """Replace everything with a GetManagedObjects result."""
        old_devices = set(self.device_paths())
        self.objects.clear()
        self.transports_of.clear()
        for path, interfaces in managed.items():
            self.add(path, interfaces)
        self.dirty_devices |= old_devices
        self.adapters_dirty = True

    def clear(self) -> None:
        """Forget everything (BlueZ left the bus)."""
        self.reset({})

    def add(self, path: str, interfaces: Mapping[str, Mapping[str, TypedValue]]) -> None:
        """InterfacesAdded: merge new interfaces (with their properties) into an object."""
        for interface, props in interfaces.items():
            if interface not in WATCHED_INTERFACES:
                continue
            clean, warnings = check_properties(path, interface, props)
            self.warnings.extend(warnings)
            obj = self.objects.setdefault(path, {})
            if interface == TRANSPORT and interface in obj:
                self._unlink_transport(path, obj[interface].get("Device"))
            obj[interface] = clean
            if interface == TRANSPORT:
                self._link_transport(path, clean.get("Device"))
            self._mark(path, interface)

    def remove(self, path: str, interfaces: Iterable[str]) -> None:
        """InterfacesRemoved: drop interfaces; drop the object when none is left."""
        obj = self.objects.get(path)
        if obj is None:
            return
        for interface in interfaces:
            if interface not in obj:
                continue
            self._mark(path, interface)
            if interface == TRANSPORT:
                self._unlink_transport(path, obj[interface].get("Device"))
            del obj[interface]
        if not obj:
            del self.objects[path]

    def change(
        self,
        path: str,
        interface: str,
        changed: Mapping[str, TypedValue],
        invalidated: Iterable[str] = (),
    ) -> None:
        """PropertiesChanged: update values and drop invalidated ones (their value is unknown)."""
        if interface not in WATCHED_INTERFACES:
            return
        props = self.objects.get(path, {}).get(interface)
        if props is None:
            # A change for an object we never saw added (removed mid-update, or a race
            # with GetManagedObjects): nothing to update, nothing to invent.
            return
        clean, warnings = check_properties(path, interface, changed)
        self.warnings.extend(warnings)
        if interface == TRANSPORT and "Device" in clean:
            self._unlink_transport(path, props.get("Device"))
            self._link_transport(path, clean["Device"])
        props.update(clean)
        if interface == TRANSPORT and "Device" in invalidated:
            self._unlink_transport(path, props.get("Device"))
        for name in invalidated:
            props.pop(name, None)
        self._mark(path, interface)

    # -- queries -------------------------------------------------------------------------
    def device_paths(self) -> list[str]:
        return [p for p, ifaces in self.objects.items() if DEVICE in ifaces]

    def adapter_paths(self) -> list[str]:
        return [p for p, ifaces in self.objects.items() if ADAPTER in ifaces]

    def props(self, path: str, interface: str) -> dict[str, Any] | None:
        return self.objects.get(path, {}).get(interface)

    def transports_for(self, device_path: str) -> list[dict[str, Any]]:
        out = []
        for transport_path in sorted(self.transports_of.get(device_path, ())):
            props = self.props(transport_path, TRANSPORT)
            if props is not None:
                out.append({"_path": transport_path, **props})
        return out

    def take_dirty(self) -> tuple[set[str], bool]:
        """Devices changed since the last call, and whether any adapter changed."""
        dirty, adapters = self.dirty_devices, self.adapters_dirty
        self.dirty_devices, self.adapters_dirty = set(), False
        return dirty, adapters

    def take_warnings(self) -> list[str]:
        warnings, self.warnings = self.warnings, []
        return warnings

    # -- internals -----------------------------------------------------------------------
    def _mark(self, path: str, interface: str) -> None:
        if interface in (DEVICE, BATTERY):
            self.dirty_devices.add(path)
        elif interface == TRANSPORT:
            device = (self.props(path, TRANSPORT) or {}).get("Device")
            if isinstance(device, str):
                self.dirty_devices.add(device)
        elif interface == ADAPTER:
            self.adapters_dirty = True
            prefix = path + "/"
            self.dirty_devices.update(p for p in self.device_paths() if p.startswith(prefix))

    def _link_transport(self, transport_path: str, device_path: Any) -> None:
        if isinstance(device_path, str):
            self.transports_of.setdefault(device_path, set()).add(transport_path)
            self.dirty_devices.add(device_path)

    def _unlink_transport(self, transport_path: str, device_path: Any) -> None:
        if isinstance(device_path, str):
            paths = self.transports_of.get(device_path)
            if paths is not None:
                paths.discard(transport_path)
                if not paths:
                    del self.transports_of[device_path]
            self.dirty_devices.add(device_path)
