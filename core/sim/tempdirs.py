"""Temporary folders of a btmon-tui process (the demo's private bus, its HCI capture, its
throw-away event log), named after the process that owns them, so that a later run can remove
what a killed one (`kill -9`, a power cut of the SSH session) left behind, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Final

#: btmon-tui-<kind>-<owner pid>-<random>: what `owned_tempdir` makes.
_OWNED: Final = re.compile(r"^btmon-tui-(bus|hci|demo)-(\d+)-")


def owned_tempdir(kind: str) -> Path:
    """A new temporary folder for `kind` (bus, hci, demo), marked with this process's id."""
    return Path(tempfile.mkdtemp(prefix=f"btmon-tui-{kind}-{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clean_stale(root: Path | None = None) -> list[Path]:
    """Remove this user's btmon-tui temporary folders whose owner process is gone; returns
    what was removed. A folder of a running process, or another user's, is never touched."""
    base = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    uid = os.getuid()
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            match = _OWNED.match(entry.name)
            if match is None or int(match.group(2)) == os.getpid():
                continue
            try:
                info = entry.lstat()
            except OSError:
                continue
            if info.st_uid != uid or not entry.is_dir() or entry.is_symlink():
                continue
            if not _alive(int(match.group(2))):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed
