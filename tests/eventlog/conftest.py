"""Fixtures for the event-log tests: small real file systems that can fill up or turn read-only.

Mounting needs root (the test containers run as root). Without it a test that needs a mount
skips on a developer's machine and fails under CI=true (DESIGN §10).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


class SmallDisk:
    """A mounted file system of `size_kib` KiB at `path`: a tmpfs, or an ext4 loop file."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind

    def remount(self, mode: str) -> None:
        """`mode` "ro" or "rw": `mount -o remount,MODE` (fails while a file is open for write)."""
        result = _run("mount", "-o", f"remount,{mode}", str(self.path))
        assert result.returncode == 0, f"remount {mode} failed: {result.stderr.strip()}"

    def fill(self) -> Path:
        """Write a file until the disk is full (ENOSPC); return it so a test can delete it."""
        filler = self.path / "filler"
        with open(filler, "wb", buffering=0) as out:
            block = b"\xaa" * 4096
            with contextlib.suppress(OSError):
                while True:
                    out.write(block)
            with contextlib.suppress(OSError):
                while True:  # the last partial page
                    out.write(b"\xaa")
        return filler


def _mount(mountpoint: Path, image: Path, size_kib: int) -> str | None:
    """Mount a small file system at `mountpoint`; its kind, or None if this machine can't."""
    result = _run("mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mountpoint))
    if result.returncode == 0:
        return "tmpfs"
    if shutil.which("mkfs.ext4") is None:
        return None
    with open(image, "wb") as out:
        out.truncate(size_kib * 1024)
    # No journal and no root reserve: the whole (tiny) disk is usable and fills for root too.
    made = _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(image))
    if made.returncode != 0:
        return None
    if _run("mount", "-o", "loop", str(image), str(mountpoint)).returncode != 0:
        return None
    return "ext4-loop"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], SmallDisk]]:
    """`disk = small_disk(size_kib)` mounts a fresh small file system; unmounted afterwards."""
    mounted: list[Path] = []

    def make(size_kib: int) -> SmallDisk:
        mountpoint = tmp_path / f"disk{len(mounted)}"
        mountpoint.mkdir()
        kind = _mount(mountpoint, tmp_path / f"disk{len(mounted)}.img", size_kib)
        if kind is None:
            message = "cannot mount a small file system here (needs root: mount -t tmpfs)"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(mountpoint)
        return SmallDisk(mountpoint, kind)

    try:
        yield make
    finally:
        for mountpoint in mounted:
            result = _run("umount", str(mountpoint))
            if result.returncode != 0:
                _run("umount", "-l", str(mountpoint))
