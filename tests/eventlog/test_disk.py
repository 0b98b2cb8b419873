"""A full disk and a read-only file system, for real (small mounts, see conftest): the store
keeps the events in memory, says so in `status`, and writes them once it can (DESIGN §6)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.eventlog.store import RETRY_INTERVAL_S, EventStore, StoreStatus
from tests.eventlog.conftest import SmallDisk

T = time.time()  # recent: older events would fall to the 30-day retention


def speaker_line(i: int) -> dict[str, Any]:
    """A realistic `speaker` event (~300 bytes of JSON)."""
    return {
        "type": "speaker", "t": T + i, "address": f"AA:BB:CC:DD:EE:{i % 6:02X}",
        "name": f"Speaker {i % 6}", "adapter": "hci0", "paired": True, "connected": True,
        "verdict": "streaming", "transport": {"state": "active", "codec": "SBC",
        "delay_ms": 150.0, "volume": 100}, "battery": 80, "media_pps": 312.5,
        "last_dropout": None, "period_s": None, "seq": i,
    }  # fmt: skip


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def test_full_disk_keeps_events_and_recovers(small_disk: Callable[[int], SmallDisk]) -> None:
    """A 256 KiB disk filled to the last byte while the store writes to it."""
    disk = small_disk(256)
    statuses: list[StoreStatus] = []
    store = EventStore(disk.path / "log" / "events.sqlite3", on_status=statuses.append)
    with store:
        store.append([speaker_line(i) for i in range(20)])
        assert store.flush()
        filler = disk.fill()

        store.append([speaker_line(i) for i in range(20, 80)])
        wait_until(lambda: not store.status.ok, 3.0, "the status to report the full disk")
        status = store.status
        assert "cannot write" in status.detail and str(store.path) in status.detail
        assert "disk full" in status.detail and "free space" in status.detail
        assert "60 events kept in memory" in status.detail
        assert status.pending == 60
        assert statuses and not statuses[-1].ok  # the callback heard it too
        assert not store.flush(timeout=0.2)

        for i in range(80, 120):  # monitoring goes on: appends are still accepted
            store.append([speaker_line(i)])
        assert store.status.pending == 100

        filler.unlink()
        took = wait_until(lambda: store.status.ok, 2 * RETRY_INTERVAL_S + 2, "recovery")
        assert took <= RETRY_INTERVAL_S + 1.5
        assert store.flush()
        assert statuses[-1].ok and statuses[-1].pending == 0
        assert [e["seq"] for e in store.read()] == list(range(120))
    print(f"full disk ({disk.kind}): recovered {took:.2f} s after space was freed;", statuses[0])


def test_read_only_file_system_keeps_events_and_recovers(
    small_disk: Callable[[int], SmallDisk],
) -> None:
    """The log's file system is mounted read-only (as the kernel does to an SD card after I/O
    errors, errors=remount-ro). Root ignores chmod 0444, so a mount is the real thing to test:
    the kernel refuses every write with EROFS whoever asks. Linux refuses to remount read-only
    while a file is open for writing, so the store is closed, the disk remounted, and a new
    store opened on it; open() succeeds, writes wait until the disk is read-write again."""
    disk = small_disk(1024)
    path = disk.path / "events.sqlite3"
    with EventStore(path) as store:
        store.append([speaker_line(i) for i in range(10)])
    disk.remount("ro")

    statuses: list[StoreStatus] = []
    store = EventStore(path, on_status=statuses.append)
    with store:
        assert not store.status.ok
        assert "read-only file system" in store.status.detail
        assert [e["seq"] for e in store.read()] == list(range(10))  # reading still works
        store.append([speaker_line(i) for i in range(10, 30)])
        assert store.status.pending == 20
        assert "20 events kept in memory" in store.status.detail
        assert not store.flush(timeout=0.2)

        disk.remount("rw")
        took = wait_until(lambda: store.status.ok, 2 * RETRY_INTERVAL_S + 2, "recovery")
        assert store.flush()
        assert [e["seq"] for e in store.read()] == list(range(30))
    assert statuses[0].ok is False and statuses[-1].ok
    print(f"read-only ({disk.kind}): recovered {took:.2f} s after remount rw;", statuses[0])
