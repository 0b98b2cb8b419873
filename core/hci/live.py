"""Live HCI truth (DESIGN §3, §4.5, §9): per-speaker media packets/s from the Linux HCI monitor
channel (as btmon reads it) or from a btsnoop file that `btmon -w` is still writing. What can
and cannot be attributed to a speaker is explained in core.hci.rates.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from core.hci.btsnoop import MONITOR_TYPES, BtsnoopReader, PacketType, Record
from core.hci.follow import READ_CHUNK, FileFollower, SnoopStream
from core.hci.rates import WINDOW_S, MediaRate, MediaRates

__all__ = [
    "HciLive",
    "HciSourceError",
    "MediaRate",
    "MediaRates",
    "monitor_error",
    "monitor_record",
    "open_monitor_socket",
]

#: How often a followed file is polled for growth (s): well under the 1 s stall threshold.
POLL_S: Final = 0.1
#: Datagrams taken from the socket per readable callback before yielding to the event loop.
SOCKET_BATCH: Final = 256
#: A followed file that has not grown for this long is probably orphaned (btmon stopped).
STALE_S: Final = 10.0
#: Socket receive buffer asked for: ~8 s of eight speakers' media (~0.5 MB/s), so a busy event
#: loop does not make the kernel drop monitor packets (default ~200 KB, net.core.rmem_default).
RECEIVE_BUFFER: Final = 4 * 1024 * 1024
#: SO_RCVBUFFORCE (asm-generic/socket.h): exceeds net.core.rmem_max, needs CAP_NET_ADMIN.
SO_RCVBUFFORCE: Final = 33

# linux/socket.h, include/net/bluetooth/bluetooth.h, hci.h, hci_mon.h (as btmon's control.c).
AF_BLUETOOTH: Final = 31
BTPROTO_HCI: Final = 1
HCI_DEV_NONE: Final = 0xFFFF
HCI_CHANNEL_MONITOR: Final = 2
#: SO_TIMESTAMP (asm-generic/socket.h, alias SO_TIMESTAMP_OLD): a struct timeval per datagram.
SO_TIMESTAMP: Final = 29
_TIMEVAL: Final = struct.Struct("@ll")
#: struct hci_mon_hdr: opcode, adapter index, payload length (LE16 each).
_MON_HDR: Final = struct.Struct("<HHH")
#: The largest datagram: the header plus an HCI packet (ACL length is a 16-bit field).
_MAX_DATAGRAM: Final = _MON_HDR.size + 4 + 0xFFFF


class HciSourceError(Exception):
    """The HCI source cannot be read; the message says why and what to do."""


def monitor_error(code: int, step: str) -> str:
    """What a failed socket()/bind() on the monitor channel means, and what to do."""
    if code in (errno.EPERM, errno.EACCES):
        python = os.path.realpath(sys.executable)
        return (
            "reading the HCI monitor needs CAP_NET_RAW: run as root, or "
            f"`sudo setcap cap_net_raw+ep {python}`, or run `btmon -w /tmp/hci.btsnoop` and "
            "start btmon-tui with `--hci-file /tmp/hci.btsnoop`"
        )
    if code in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
        return (
            "this kernel has no Bluetooth support (AF_BLUETOOTH): load it with "
            "`sudo modprobe bluetooth` (a container needs the host's Bluetooth stack), or read "
            "a capture made where the speakers are: `btmon -w /tmp/hci.btsnoop` there, then "
            "`--hci-file /tmp/hci.btsnoop`"
        )
    if code == errno.EINVAL:
        return (
            "this kernel has no HCI monitor channel (Linux 3.4 or newer has it): run "
            "`btmon -w /tmp/hci.btsnoop` and start btmon-tui with `--hci-file /tmp/hci.btsnoop`"
        )
    return f"cannot open the HCI monitor channel ({step}: {os.strerror(code)}, errno {code})"


class _SockaddrHci(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("dev", ctypes.c_ushort),
        ("channel", ctypes.c_ushort),
    ]


def open_monitor_socket() -> socket.socket:
    """The HCI monitor channel, non-blocking. Raises HciSourceError with advice.

    CPython's socket module binds BTPROTO_HCI sockets to a device only, not to a channel, so
    socket() and bind() go through libc, as btmon does in C (src/monitor/control.c)."""
    libc = ctypes.CDLL(None, use_errno=True)
    kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
    fd = int(libc.socket(AF_BLUETOOTH, kind, BTPROTO_HCI))
    if fd < 0:
        raise HciSourceError(monitor_error(ctypes.get_errno(), "socket"))
    address = _SockaddrHci(AF_BLUETOOTH, HCI_DEV_NONE, HCI_CHANNEL_MONITOR)
    if libc.bind(fd, ctypes.byref(address), ctypes.sizeof(address)) < 0:
        code = ctypes.get_errno()
        os.close(fd)
        raise HciSourceError(monitor_error(code, "bind"))
    return socket.socket(AF_BLUETOOTH, socket.SOCK_RAW, BTPROTO_HCI, fileno=fd)


def monitor_record(datagram: bytes | memoryview, t: float) -> Record | None:
    """A Record from one hci_mon_hdr datagram (None when it is too short to be one)."""
    if len(datagram) < _MON_HDR.size:
        return None
    opcode, index, length = _MON_HDR.unpack_from(datagram)
    data = bytes(datagram[_MON_HDR.size : _MON_HDR.size + length])
    kind, direction = MONITOR_TYPES.get(opcode, (PacketType.OTHER, "rx"))
    return Record(t, direction, kind, data, index, opcode, length)


class HciLive:
    """A live HCI source: `await run()` reads until closed, `rates(now)` and `status` any time.

    Build one with :meth:`monitor` (the kernel's monitor channel), :meth:`follow` (a growing
    btsnoop file) or :meth:`from_socket` (any socket carrying hci_mon_hdr datagrams: the
    monitor's own parsing, used by tests to replay a stream)."""

    def __init__(
        self,
        label: str,
        runner: Callable[[HciLive], Awaitable[None]],
        *,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.label = label
        self.media = MediaRates(window_s)
        self.clock = clock
        #: Records decoded so far.
        self.records = 0
        self._runner = runner
        self._state = "starting"
        self._error: str | None = None
        self._closed = False
        #: False once the source ended or failed: its rates would only be stale.
        self._live = True
        self._close_hooks: list[Callable[[], None]] = []
        self._last_growth: float | None = None
        #: True once the source has read up to the present (a file to its end, a socket
        #: opened): until then its silence about a link means nothing.
        self.caught_up = False

    # --- constructors ---------------------------------------------------------------------
    @classmethod
    def monitor(
        cls, *, window_s: float = WINDOW_S, clock: Callable[[], float] = time.time
    ) -> HciLive:
        """The Linux HCI monitor channel (opened by run(); CAP_NET_RAW needed)."""

        async def runner(live: HciLive) -> None:
            await live._read_socket(open_monitor_socket, kernel_timestamps=True)

        return cls("monitor channel", runner, window_s=window_s, clock=clock)

    @classmethod
    def from_socket(
        cls,
        sock: socket.socket,
        label: str = "monitor stream",
        *,
        kernel_timestamps: bool = True,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> HciLive:
        """hci_mon_hdr datagrams from `sock`; without kernel timestamps, `clock()` at reading."""

        async def runner(live: HciLive) -> None:
            await live._read_socket(lambda: sock, kernel_timestamps=kernel_timestamps)

        return cls(label, runner, window_s=window_s, clock=clock)

    @classmethod
    def follow(
        cls,
        path: Path,
        *,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
        poll_s: float = POLL_S,
        label: str | None = None,
    ) -> HciLive:
        """A btsnoop file that `btmon -w` (or the demo) is still writing."""

        async def runner(live: HciLive) -> None:
            await live._read_file(Path(path), poll_s)

        return cls(label or f"following {path}", runner, window_s=window_s, clock=clock)

    @classmethod
    def finished(
        cls,
        path: Path,
        *,
        label: str | None = None,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> HciLive:
        """A finished capture, read whole at once: a still picture of its last moments (the
        screenshots' scene). Raises BtsnoopError for a file that is not btsnoop."""

        async def runner(live: HciLive) -> None:
            await asyncio.Event().wait()  # nothing more will come

        live = cls(label or f"read {path}", runner, window_s=window_s, clock=clock)
        with Path(path).open("rb") as stream:
            for record in BtsnoopReader(stream):
                live._feed(record)
        live._state = "reading"
        live.caught_up = True
        return live

    # --- what the rest of the program reads --------------------------------------------------
    async def run(self) -> None:
        """Read until close() (or the stream ends); raises HciSourceError when it cannot."""
        try:
            await self._runner(self)
        except HciSourceError as exc:
            self._error = str(exc)
            raise
        finally:
            self._live = False
            self._run_close_hooks()

    def rates(self, now: float) -> dict[str, MediaRate]:
        """Address -> media rate for every speaker HCI can account for (absent = unknown).
        Empty once the source ended or failed: no data is not "no media"."""
        if not self._live:
            return {}
        return self.media.rates(now)

    @property
    def status(self) -> str:
        if self._error is not None:
            return f"HCI: {self._error}"
        if self._state != "reading":
            return f"HCI: {self._state}"
        speakers = self.media.speakers()
        text = f"HCI: {self.label}, {speakers} speaker{'' if speakers == 1 else 's'}"
        if self._last_growth is not None:
            quiet = self.clock() - self._last_growth
            if quiet >= STALE_S:
                text += f"; no new records for {quiet:.0f} s (is `btmon -w` still running?)"
        unattributed = self.media.warnings()
        if unattributed and "before monitoring" in unattributed[0]:
            text += "; some connections predate monitoring (reconnect to attribute)"
        return text

    def warnings(self) -> list[str]:
        return self.media.warnings()

    def close(self) -> None:
        self._closed = True
        self._live = False
        self._run_close_hooks()

    # --- internals ----------------------------------------------------------------------
    def _run_close_hooks(self) -> None:
        hooks, self._close_hooks = self._close_hooks, []
        for hook in hooks:
            hook()

    def _feed(self, record: Record) -> None:
        self.records += 1
        self.media.feed(record)

    async def _read_socket(
        self, opener: Callable[[], socket.socket], *, kernel_timestamps: bool
    ) -> None:
        self._state = "opening the HCI monitor channel"
        sock = opener()
        if self._closed:
            sock.close()
            return
        sock.setblocking(False)
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
                break
            except OSError:
                continue  # without CAP_NET_ADMIN: the kernel caps it at rmem_max
        if kernel_timestamps:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
            except OSError:
                kernel_timestamps = False  # time of reading instead
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        buffer = bytearray(_MAX_DATAGRAM)
        view = memoryview(buffer)
        ancillary = socket.CMSG_SPACE(_TIMEVAL.size) if kernel_timestamps else 0

        def readable() -> None:
            for _ in range(SOCKET_BATCH):
                try:
                    size, ancdata, _flags, _ = sock.recvmsg_into([buffer], ancillary)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    if not done.done():
                        done.set_exception(HciSourceError(f"reading failed: {exc}"))
                    return
                if size == 0:  # the peer closed (a replayed stream ended)
                    self._state = "the monitor stream ended"
                    if not done.done():
                        done.set_result(None)
                    return
                record = monitor_record(view[:size], _timestamp(ancdata) or self.clock())
                if record is None:
                    self.media.analyzer.problems["datagrams shorter than hci_mon_hdr"] += 1
                else:
                    self._feed(record)

        def stop() -> None:
            loop.remove_reader(sock.fileno())
            sock.close()
            if not done.done():
                done.set_result(None)

        loop.add_reader(sock.fileno(), readable)
        self._close_hooks.append(stop)
        self._state = "reading"
        self.caught_up = True  # the monitor channel carries only what happens from now on
        await done

    async def _read_file(self, path: Path, poll_s: float) -> None:
        follower = FileFollower(path)
        self._close_hooks.append(follower.close)
        stream = SnoopStream()
        while not self._closed:
            restarted, data = await asyncio.to_thread(follower.read, READ_CHUNK)
            if self._closed:
                return
            if restarted:
                stream = SnoopStream()
                self.media.restart()
            if data:
                self._last_growth = self.clock()
                for number, record in enumerate(stream.feed(data), 1):
                    self._feed(record)
                    if number % SOCKET_BATCH == 0:
                        await asyncio.sleep(0)
            self._state = self._file_state(follower, stream, path)
            if len(data) < READ_CHUNK:
                # At the end of what was written so far (or nothing to read yet).
                self.caught_up = self._state == "reading"
                await asyncio.sleep(poll_s)

    def _file_state(self, follower: FileFollower, stream: SnoopStream, path: Path) -> str:
        if follower.error is not None:
            return f"{follower.error}; retrying"
        if stream.error is not None:
            return f"{path}: {stream.error}; waiting for the file to be replaced"
        if stream.records == 0 and not follower.exists:
            return f"waiting for {path} (start `btmon -w {path}`)"
        if stream.records == 0 and self.records == 0:
            return f"waiting for btsnoop records in {path}"
        return "reading"


def _timestamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(data) >= _TIMEVAL.size:
            seconds, micros = _TIMEVAL.unpack_from(data)
            return int(seconds) + int(micros) / 1e6
    return None
