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


def _owned(base: Path) -> list[tuple[Path, int]]:
    """This user's btmon-tui temporary folders under `base`, each with its owner's pid."""
    found: list[tuple[Path, int]] = []
    uid = os.getuid()
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            match = _OWNED.match(entry.name)
            if match is None:
                continue
            try:
                info = entry.lstat()
            except OSError:
                continue
            if info.st_uid == uid and entry.is_dir() and not entry.is_symlink():
                found.append((entry, int(match.group(2))))
    return found


def clean_stale(root: Path | None = None) -> list[Path]:
    """Remove this user's btmon-tui temporary folders whose owner process is gone; returns
    what was removed. A folder of a running process, or another user's, is never touched."""
    removed: list[Path] = []
    for entry, pid in _owned(Path(root or tempfile.gettempdir())):
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def remove_own(root: Path | None = None) -> list[Path]:
    """Remove this process's own temporary folders: the last resort of a process that must
    end without its exit path (which removes them itself)."""
    removed: list[Path] = []
    for entry, pid in _owned(Path(root or tempfile.gettempdir())):
        if pid == os.getpid():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
