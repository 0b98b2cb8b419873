"""Keeping the fleet aligned across reconnects: the delays an alignment applied are saved
(`$XDG_STATE_HOME/btmon-tui/delays.json`), and a stage whose speaker sink came back (the
audio server unloads a stage with its sink when the speaker disconnects) is loaded again
with its saved delay; the fleet output too, when the audio server restarted.

`align --reset` forgets them. BLOCKING (pactl): run `reattach` from a thread."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from core.align import stages
from core.align.stages import AlignError


def delays_path() -> Path:
    """`$XDG_STATE_HOME/btmon-tui/delays.json` (XDG default state home: ~/.local/state)."""
    state_home = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state_home) if os.path.isabs(state_home) else Path.home() / ".local" / "state"
    return base / "btmon-tui" / "delays.json"


def save(delays_by_sink: Mapping[str, int], path: Path | None = None) -> str:
    """Keep the delays (speaker sink -> ms) for the next reconnect; '' or why it could not
    (the alignment itself stands: only re-applying after a reconnect is lost)."""
    path = path or delays_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(dict(sorted(delays_by_sink.items())), indent=1) + "\n")
        temp.replace(path)
    except OSError as exc:
        return (
            f"cannot save the delays to {path} ({exc.strerror or exc}): they are not "
            "re-applied after a reconnect"
        )
    return ""


def load(path: Path | None = None) -> dict[str, int]:
    """The saved delays (speaker sink -> ms); {} when none are saved or the file is damaged."""
    try:
        data = json.loads((path or delays_path()).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(sink): int(ms)
        for sink, ms in data.items()
        if isinstance(ms, int) and not isinstance(ms, bool) and ms >= 0
    }


def forget(path: Path | None = None) -> None:
    """No delays to keep any more (`align --reset`)."""
    (path or delays_path()).unlink(missing_ok=True)


def reattach(saved: Mapping[str, int]) -> dict[str, int]:
    """Load the stage of every saved sink that is present without one (its speaker came
    back), with its saved delay; the fleet output first when it is gone (the server
    restarted). Returns the sinks re-attached and their delays ({} when nothing was due).
    Raises AlignError when the server cannot be asked."""
    if not saved:
        return {}
    present = set(stages.sinks())
    have = stages.stages()
    due = {sink: ms for sink, ms in saved.items() if sink in present and sink not in have}
    if not due:
        return {}
    stages.ensure_fleet()
    for sink, ms in due.items():
        stages.attach(sink, ms)
    return due


__all__ = ["AlignError", "delays_path", "forget", "load", "reattach", "save"]
