"""The live HCI source: a scripted monitor stream replayed through a socket, a growing btsnoop
file followed while it is written, and the monitor channel's error on this machine."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.hci import writer as w
from core.hci.btsnoop import BtsnoopError, BtsnoopReader, PacketType, Record
from core.hci.live import (
    HciLive,
    HciSourceError,
    MediaRates,
    monitor_error,
    monitor_record,
    open_monitor_socket,
)
from core.hci.script import AAC_INFO, SBC_INFO, T0, Session
from core.sim.hci_sim import HciSim

A, B, C = "00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02", "F4:4E:FD:10:22:04"
#: The stalled speaker's last media packet (script time).
B_STALLS_AT = T0 + 4.0
END = T0 + 6.0


def scripted() -> Session:
    """A streams SBC at 69/s throughout; B streams AAC at 43/s and stalls at 4 s (no Suspend);
    C is configured but idle; handle 9 was connected before the capture began."""
    s = Session()
    for handle, address, name in ((1, A, "Stage Left"), (2, B, "Stage Right"), (3, C, "Bar")):
        s.connect(handle, address, name)
        s.open_a2dp(handle)
        s.configure(handle, 0x02 if handle == 2 else 0x00, AAC_INFO if handle == 2 else SBC_INFO)
    s.start(1)
    s.start(2)
    due = [(T0 + 0.1 + i / 69, 1) for i in range(int(5.9 * 69))]
    due += [(T0 + 0.1 + i / 43, 2) for i in range(int(3.9 * 43) + 1)]
    due += [(T0 + 0.1 + i / 10, 9) for i in range(59)]
    for t, handle in sorted(due):
        s.t = t
        if handle == 9:
            s.acl("tx", 9, w.l2cap(0x0041, bytes([0x80, 0x60]) + bytes(598)))
        else:
            s.media(handle, 608)
    return s


def records(session: Session) -> list[Record]:
    return list(BtsnoopReader(io.BytesIO(session.stream.getvalue())))


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- a monitor stream replayed into the live source ------------------------------------------


async def test_replayed_monitor_stream_gives_rates_and_the_stall() -> None:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    clock = Clock(T0)
    live = HciLive.from_socket(receiver, kernel_timestamps=False, clock=clock)
    task = asyncio.create_task(live.run())
    stamped: list[tuple[float, Record]] = []  # (time of reading, record)
    batch_s = 0.05
    pending = records(scripted())
    sent = 0
    while pending:
        clock.now = pending[0].time + batch_s
        batch = [r for r in pending if r.time < clock.now]
        pending = pending[len(batch) :]
        for record in batch:
            sender.send(w.monitor_datagram(record.type, record.direction, record.data))
            stamped.append((clock.now, record))
        sent += len(batch)
        await wait_for(lambda: live.records == sent, f"{sent} records read")  # noqa: B023
    assert live.status == (
        "HCI: monitor stream, 3 speakers; some connections predate monitoring"
        " (reconnect to attribute)"
    )

    now = clock.now  # the last records were read at this time
    rates = live.rates(now)
    media = MediaRates()  # the truth, from the stamped records
    for t, record in stamped:
        media.feed(Record(t, record.direction, record.type, record.data, 0, record.opcode))
    a_times = [t for t, r in stamped if r.type is PacketType.ACL and _handle(r) == 1]
    a_recent = [t for t in a_times[-200:] if t >= now - 2.0]
    b_last = max(t for t, r in stamped if r.type is PacketType.ACL and _handle(r) == 2)
    assert set(rates) == {A, B, C}  # handle 9's speaker is unknown, not 0 packets/s
    assert rates[A].pps == pytest.approx(len(a_recent) / 2.0)
    assert rates[A].pps == pytest.approx(69, rel=0.05)
    assert rates[B].pps == 0.0
    assert rates[B].last_media_t == pytest.approx(b_last)
    b_seen = rates[B].last_media_t
    assert b_seen is not None and B_STALLS_AT - 0.05 <= b_seen <= B_STALLS_AT + batch_s
    assert now - b_seen >= 1.0  # DESIGN §3: stalled
    assert rates[C].pps == 0.0 and rates[C].last_media_t is None
    assert rates == media.rates(now)
    [warning] = [x for x in live.warnings() if "before monitoring" in x]
    assert warning.startswith("59 ACL packets on 1 connection(s) opened before monitoring")
    assert "reconnect" in warning

    sender.close()
    await asyncio.wait_for(task, 5)
    assert live.status == "HCI: the monitor stream ended"
    assert live.rates(now) == {}  # an ended source knows nothing: no false stalls


def _handle(record: Record) -> int:
    return int.from_bytes(record.data[0:2], "little") & 0x0FFF


async def test_kernel_timestamps_are_used_when_the_socket_has_them() -> None:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    live = HciLive.from_socket(receiver, clock=lambda: 0.0)  # the clock must not be used
    task = asyncio.create_task(live.run())
    await wait_for(lambda: live.status.startswith("HCI: monitor stream,"), "reading")
    before = time.time()
    sender.send(w.monitor_datagram(PacketType.EVENT, "rx", w.connection_complete(1, A)))
    await wait_for(lambda: live.records == 1, "one record")
    after = time.time()
    assert live.media.latest is not None and before - 0.01 <= live.media.latest <= after + 0.01
    assert live.media.attributed() == {A}
    live.close()
    await asyncio.wait_for(task, 5)
    sender.close()


def test_monitor_datagrams_map_like_the_monitor_datalink() -> None:
    for kind, direction in [
        (PacketType.COMMAND, "tx"),
        (PacketType.EVENT, "rx"),
        (PacketType.ACL, "tx"),
        (PacketType.ACL, "rx"),
    ]:
        record = monitor_record(w.monitor_datagram(kind, direction, b"\x01\x02", index=2), 5.0)
        assert record is not None
        assert (record.type, record.direction, record.data, record.index, record.time) == (
            kind,
            direction,
            b"\x01\x02",
            2,
            5.0,
        )
    new_index = monitor_record(b"\x00\x00\x00\x00\x10\x00" + bytes(16), 1.0)
    assert new_index is not None and new_index.type is PacketType.OTHER
    assert monitor_record(b"\x02\x00", 1.0) is None


def test_a_speaker_connecting_after_the_start_is_attributed() -> None:
    """Handle 9 was unknown; its reconnection (a new Connection Complete) attributes it."""
    s = Session()
    s.acl("tx", 9, w.l2cap(0x0041, bytes(100)))
    s.tick(0.5)
    s.connect(9, A, "Stage Left")
    s.open_a2dp(9)
    s.configure(9, 0x00, SBC_INFO)
    s.start(9)
    for _ in range(100):
        s.tick(0.01)
        s.media(9)
    media = MediaRates()
    for record in records(s)[:1]:
        media.feed(record)
    assert media.warnings() == [
        "1 ACL packets on 1 connection(s) opened before monitoring started: not attributed to a "
        "speaker; reconnect those speakers to see their media rate"
    ]
    assert media.rates(T0) == {}
    for record in records(s)[1:]:
        media.feed(record)
    assert media.warnings() == []
    rates = media.rates(s.t)
    assert set(rates) == {A}
    # 100 packets in 1 s of capture (the rate's span is the capture's, at most 2 s)
    assert rates[A].pps == pytest.approx(100 / (s.t - T0), rel=0.01)
    assert rates[A].last_media_t == pytest.approx(s.t)
    assert rates[A].since == pytest.approx(T0 + 0.5)  # its Connection Complete
    # after a disconnection the address drops out once its window is empty
    s.disconnect(9)
    media.feed(records(s)[-1])
    assert A in media.rates(s.t + 1.0) and A not in media.rates(s.t + 2.5)


# --- a growing btsnoop file -----------------------------------------------------------------


async def test_follows_a_file_created_late_written_in_pieces_then_replaced_and_truncated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hci.btsnoop"
    clock = Clock(T0)
    live = HciLive.follow(path, poll_s=0.002, clock=clock)
    task = asyncio.create_task(live.run())
    await wait_for(lambda: "waiting for" in live.status, "waiting status")
    assert live.status == f"HCI: waiting for {path} (start `btmon -w {path}`)"

    capture = scripted().stream.getvalue()
    total = len(records(scripted()))
    # odd-sized pieces: record headers and packets are cut at every possible place
    with open(path, "wb") as out:
        for start in range(0, len(capture), 997):
            out.write(capture[start : start + 997])
            out.flush()
            await asyncio.sleep(0.001)
    await wait_for(lambda: live.records == total, f"{total} records")
    rates = live.rates(END)
    truth = MediaRates()
    for record in records(scripted()):
        truth.feed(record)
    assert rates == truth.rates(END)
    assert rates[A].pps == pytest.approx(69, rel=0.03)
    assert rates[B].pps == 0.0 and rates[B].last_media_t == pytest.approx(B_STALLS_AT, abs=0.03)
    assert live.status.startswith("HCI: following")

    # replaced (a new inode, as the demo rotates): a fresh capture with only speaker C
    s = Session(t=END)
    s.connect(3, C, "Bar")
    replacement = tmp_path / "new.btsnoop"
    s.save(replacement)
    os.replace(replacement, path)
    await wait_for(lambda: live.media.attributed() == {C}, "the replaced file")
    assert live.records == total + 3

    # truncated in place (btmon restarted on the same path): speaker A again
    s = Session(t=END + 1)
    s.connect(1, A)
    with open(path, "r+b") as out:
        out.truncate(0)
        out.write(s.stream.getvalue())
    await wait_for(lambda: live.media.attributed() == {A}, "the truncated file")

    clock.now = END + 60  # nothing written for a minute
    assert "no new records for" in live.status
    live.close()
    await asyncio.wait_for(task, 5)


async def test_a_file_that_is_not_btsnoop_is_reported_and_watched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a capture, but long enough for a header\n")
    live = HciLive.follow(path, poll_s=0.002)
    task = asyncio.create_task(live.run())
    await wait_for(lambda: "not a btsnoop" in live.status, "the error in the status")
    assert "waiting for the file to be replaced" in live.status
    replacement = tmp_path / "new"
    scripted().save(replacement)
    os.replace(replacement, path)
    await wait_for(lambda: live.media.attributed() == {A, B, C}, "the real capture")
    live.close()
    await asyncio.wait_for(task, 5)


# --- the monitor channel on this machine ----------------------------------------------------


async def test_monitor_channel_error_names_the_fix() -> None:
    try:
        sock = open_monitor_socket()
    except HciSourceError:
        pass
    else:  # a machine with Bluetooth and CAP_NET_RAW: the channel opens
        sock.close()
        pytest.skip("this machine can open the HCI monitor channel")
    live = HciLive.monitor()
    with pytest.raises(HciSourceError) as caught:
        await live.run()
    message = str(caught.value)
    # this machine has no Bluetooth: socket(AF_BLUETOOTH) fails with EAFNOSUPPORT
    assert "AF_BLUETOOTH" in message or "CAP_NET_RAW" in message
    assert "--hci-file" in message and "btmon -w" in message
    assert live.status == f"HCI: {message}"


def test_permission_error_says_how_to_grant_cap_net_raw() -> None:
    message = monitor_error(errno.EPERM, "bind")
    python = os.path.realpath(sys.executable)
    assert message == (
        "reading the HCI monitor needs CAP_NET_RAW: run as root, or "
        f"`sudo setcap cap_net_raw+ep {python}`, or run `btmon -w /tmp/hci.btsnoop` and "
        "start btmon-tui with `--hci-file /tmp/hci.btsnoop`"
    )
    assert monitor_error(errno.EACCES, "bind") == message
    assert "modprobe bluetooth" in monitor_error(errno.EAFNOSUPPORT, "socket")
    assert "errno 5" in monitor_error(errno.EIO, "bind")


async def test_a_directory_is_reported_and_retried(tmp_path: Path) -> None:
    live = HciLive.follow(tmp_path, poll_s=0.002)
    task = asyncio.create_task(live.run())
    await wait_for(lambda: "cannot read" in live.status, "the error in the status")
    assert live.status == f"HCI: cannot read {tmp_path}: Is a directory; retrying"
    live.close()
    await asyncio.wait_for(task, 5)


async def test_catching_up_on_a_long_capture_does_not_block_the_event_loop(
    tmp_path: Path,
) -> None:
    """~27 MB of eight speakers (80 s) already written when following starts."""
    path = tmp_path / "hci.btsnoop"
    sim = HciSim(path, now=T0, max_bytes=1 << 30)
    for number in range(8):
        address = f"00:1A:7D:DA:72:{number:02X}"
        sim.connect(address, f"Speaker {number}", now=T0)
        sim.start(address, now=T0)
    for step in range(1, 321):
        sim.step(T0 + step * 0.25)
    expected = sum(sim.media_counts().values())
    live = HciLive.follow(path, poll_s=0.002)
    loop = asyncio.get_running_loop()
    started = last = loop.time()
    worst = 0.0
    task = asyncio.create_task(live.run())
    while sum(d.media_packets for d in live.media.analyzer.devices.values()) < expected:
        await asyncio.sleep(0.001)
        now = loop.time()
        worst, last = max(worst, now - last), now
        assert now - started < 30, "catching up took too long"
    took = loop.time() - started
    size_mb = path.stat().st_size / 1e6
    print(f"caught up on {size_mb:.1f} MB in {took:.2f} s; worst lag {worst * 1000:.1f} ms")
    assert worst < 0.1  # a 10 Hz UI tick is never held up by the catch-up
    rates = live.rates(T0 + 80)
    assert len(rates) == 8 and all(r.pps == pytest.approx(68.9, rel=0.03) for r in rates.values())
    live.close()
    await asyncio.wait_for(task, 5)


async def test_a_finished_capture_is_read_whole_at_once(tmp_path: Path) -> None:
    """The still picture of the screenshots: a done capture gives its final rates at once."""
    sim = HciSim(tmp_path / "done.btsnoop", now=T0)
    sim.connect(A, "Stage Left")
    sim.start(A)
    for step in range(1, 21):
        sim.step(T0 + step * 0.25)
    sim.close()
    live = HciLive.finished(tmp_path / "done.btsnoop", label="still", clock=lambda: T0 + 5)
    rate = live.rates(T0 + 5)[A]
    assert rate.pps == pytest.approx(44100 / 128 / 5, rel=0.05)  # SBC, 5 frames a packet
    assert live.status == "HCI: still, 1 speaker"
    with pytest.raises(BtsnoopError):
        (tmp_path / "not.btsnoop").write_text("hello")
        HciLive.finished(tmp_path / "not.btsnoop")
