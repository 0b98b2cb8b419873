"""The A2DP truth of a btsnoop capture, per remote device (DESIGN §4.5, §9).

:func:`analyze` reads one capture into the §4.5 JSON. The parts: :mod:`core.hci.a2dp_model`
(devices, links, protocol numbers, the starved verdict), :mod:`core.hci.a2dp_analyzer` (the
record-by-record analysis the live source feeds too), :mod:`core.hci.fast_scan` (how a whole
file goes through it quickly) and :mod:`core.hci.snoop_table` (the table in words).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.hci.a2dp_analyzer import A2dpAnalyzer, MediaHook
from core.hci.a2dp_model import NO_CONNECTION, Device, starved
from core.hci.btsnoop import BtsnoopError, BtsnoopReader
from core.hci.fast_scan import scan
from core.hci.snoop_table import snoop_table

__all__ = [
    "NO_CONNECTION",
    "A2dpAnalyzer",
    "Device",
    "MediaHook",
    "analyze",
    "snoop_table",
    "starved",
]


def analyze(path: Path, *, time_limit_s: float | None = None) -> dict[str, Any]:
    """The §4.5 JSON for one capture. Raises BtsnoopError for input that is not a capture.

    ``time_limit_s`` stops reading (with a warning) after that much wall-clock time."""
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise BtsnoopError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BtsnoopError(f"{path}: is a directory, not a btsnoop file") from None
    except OSError as exc:
        raise BtsnoopError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with stream:
        try:
            reader = BtsnoopReader(stream)
        except BtsnoopError as exc:
            raise BtsnoopError(f"{path}: {exc}") from None
        except OSError as exc:
            raise BtsnoopError(f"{path}: cannot read: {exc.strerror or exc}") from None
        analyzer = A2dpAnalyzer()
        warnings: list[str] = []
        try:
            span = scan(reader, stream, analyzer, time_limit_s, warnings)
        except OSError as exc:
            span = None
            warnings.append(f"read error after {reader.records} records: {exc}")
    duration = None if span is None else round((span[1] - span[0]) / 1e6, 6)
    return {
        "file": str(path),
        "datalink": reader.datalink,
        "records": reader.records,
        "duration_s": duration,
        "devices": [d.to_json() for d in analyzer.devices.values()],
        "disconnections": analyzer.disconnections,
        "warnings": reader.warnings + warnings + analyzer.warnings(),
        "starved": sorted(starved(analyzer.devices.values())),
    }
