"""The fast path of :func:`core.hci.a2dp.analyze`: a whole capture file through an analyzer.

The file is read in 1 MiB windows into one reused buffer and walked in one tight loop. A record's
header and its next nine bytes (H4 indicator, ACL and L2CAP headers, or an event's code) form a
key, and what :meth:`A2dpAnalyzer.feed` does with a record depends only on that key and on the
analyzer's links, channels and reassembly state (its ``generation``). So it is learned once per
key: *skip* (feed ignores it), *media* (one whole media frame of a device: timestamp, length and
flags go to a list that is added to the Device in bulk, exactly as ``A2dpAnalyzer._media`` would,
before anything else is fed), or *feed*. Keys of whole L2CAP frames are forgotten when the
generation changes. Whatever the loop cannot take (the last bytes, a record cut short or
impossibly long, a stream that cannot seek) goes through :meth:`BtsnoopReader.raw`, so the
reader's warnings come from one place. (Reading beats mapping the file: no page faults, and a
file truncated by its writer meanwhile cannot kill the process with SIGBUS.)
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import sub
from typing import BinaryIO, Final

from core.hci.a2dp_analyzer import A2dpAnalyzer
from core.hci.a2dp_model import Device
from core.hci.btsnoop import (
    DATALINK_H4,
    EPOCH_OFFSET_US,
    MAX_RECORD,
    RECORD,
    BtsnoopReader,
    Record,
)

#: Record header (included length, flags, timestamp) then 9 bytes: the H4 indicator or the
#: first ACL byte, then the rest of the ACL and L2CAP headers (or whatever the record holds).
KEY: Final = struct.Struct(">4xII4xqBQ")
#: Bytes read and walked at a time, between two flushes of the media lists and looks at the
#: clock for ``time_limit_s`` (measured on the bench capture: 1 MiB keeps the lists in the CPU
#: cache, ~15 % faster than 8 MiB; 256 KiB gains nothing more).
WINDOW: Final = 1 << 20
#: Learned keys kept at most (a real capture needs tens; bounds memory on garbage).
MAX_KEYS: Final = 4096

Key = tuple[int, int, int, int]
Action = Callable[[tuple[int, int, int]], None]


def _skip(_: tuple[int, int, int]) -> None:
    """The action of records feed() ignores (compared by identity, never called)."""


def _feed(_: tuple[int, int, int]) -> None:
    """The action of records that go through feed() (compared by identity, never called)."""


@dataclass(slots=True)
class _Frames:
    """Media packets of one device not yet added to it, in capture order."""

    device: Device
    #: Flat (timestamp µs, included length, record flags) per packet.
    flat: list[int] = field(default_factory=list)
    #: Record flags -> True when the flags mean host → device.
    tx: dict[int, bool] = field(default_factory=dict)
    #: Packets added to the device so far.
    packets: int = 0
    #: Appends one (timestamp, included length, flags) to ``flat``: the hot loop's action.
    add: Action = field(init=False)

    def __post_init__(self) -> None:
        self.add = self.flat.extend

    def flush(self, overhead: int) -> None:
        """Add the packets to the device as A2dpAnalyzer._media would, one by one."""
        flat, device = self.flat, self.device
        times, count = flat[0::3], len(flat) // 3
        if len(self.tx) == 1:  # one kind of record flags: one direction
            tx = count if next(iter(self.tx.values())) else 0
            tx_bytes = sum(flat[1::3]) - count * overhead if tx else 0
        else:
            sent = list(map(self.tx.__getitem__, flat[2::3]))
            tx = sum(sent)
            tx_bytes = sum(compress(flat[1::3], sent)) - tx * overhead
        device.media_packets_tx += tx
        device.media_bytes_tx += tx_bytes
        device.media_packets_rx += count - tx
        self.packets += count
        # Unix seconds exactly as btsnoop.unix_time computes them, then the gaps in order.
        epoch = EPOCH_OFFSET_US
        seconds = [(timestamp - epoch) / 1e6 for timestamp in times]
        gaps = [max(map(sub, islice(seconds, 1, None), seconds))] if count > 1 else []
        if device.last_media is not None:
            gaps.append(seconds[0] - device.last_media)
        if device.max_gap_s is not None:
            gaps.append(device.max_gap_s)
        if gaps:
            device.max_gap_s = max(gaps)
        device.last_media = seconds[-1]
        flat.clear()


def scan(
    reader: BtsnoopReader,
    stream: BinaryIO,
    analyzer: A2dpAnalyzer,
    time_limit_s: float | None,
    warnings: list[str],
) -> tuple[int, int] | None:
    """Feed every record after the header as :meth:`A2dpAnalyzer.feed` would; returns the
    first and last timestamps (µs), None when there is no record.

    ``time_limit_s`` stops reading, with a warning, after that much wall-clock time."""
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    walk = _Walk(reader, analyzer, deadline)
    if analyzer.on_media is None and isinstance(stream, io.IOBase) and _seekable(stream):
        walk.run(stream)
        if not walk.stopped:
            stream.seek(walk.position)
    if not walk.stopped:
        for data, start, _, flags, timestamp in reader.raw():
            walk.first = timestamp if walk.first is None else walk.first
            walk.last = timestamp
            analyzer.feed(reader.record(data, start, flags, timestamp))
            if deadline is not None and time.monotonic() > deadline:
                walk.stopped = True
                break
    if walk.stopped:
        warnings.append(f"stopped after {time_limit_s:g} s of reading")
    if walk.first is None or walk.last is None:
        return None
    return walk.first, walk.last


def _seekable(stream: io.IOBase) -> bool:
    try:
        return stream.seekable()
    except (OSError, ValueError):
        return False


class _Walk:
    """One walk over a capture, from the first record on."""

    def __init__(self, reader: BtsnoopReader, analyzer: A2dpAnalyzer, deadline: float | None):
        self.reader, self.analyzer, self.deadline = reader, analyzer, deadline
        #: Included length minus the L2CAP payload of a media packet (H4 indicator, headers).
        self.overhead = 9 if reader.datalink == DATALINK_H4 else 8
        #: Key -> what to do, for the hot loop: skip, or add as a media packet.
        self.learned: dict[Key, Action] = {}
        #: Keys of records that go through feed (kept out of the hot loop's dict).
        self.fed: dict[Key, Action] = {}
        #: Learned keys whose meaning depends on the analyzer's state (whole L2CAP frames),
        #: forgotten when its generation changes; the others hold for the whole file.
        self.volatile: list[Key] = []
        self.pending: dict[str, _Frames] = {}
        self.generation = analyzer.generation
        #: Where the walk stopped: the file offset of the first record it did not take.
        self.position = 0
        self.first: int | None = None
        self.last: int | None = None
        self.stopped = False

    def run(self, stream: io.IOBase) -> None:
        """Walk from the stream's position until the end, the clock, or a record the reader
        must judge; :attr:`position` is then the file offset of the first record not taken."""
        self.position = stream.tell()
        buffer = bytearray(WINDOW + RECORD.size + MAX_RECORD + KEY.size)
        view = memoryview(buffer)  # unpacks from a memoryview are the fastest
        try:
            self._run(stream, buffer, view)
        finally:
            view.release()

    def _run(self, stream: io.IOBase, buffer: bytearray, view: memoryview) -> None:
        unpack, get, skip = KEY.unpack_from, self.learned.get, _skip
        header, deadline = RECORD.size, self.deadline
        analyzer, make_record, fed = self.analyzer, self.reader.record, self.fed
        pending = self.pending
        #: Records walked that are not media packets (those are counted when added).
        others = 0
        first = last = None
        base = self.position  # the file offset of buffer[0]
        size = position = 0  # bytes in the buffer; the offset of the next record in it
        included = 0
        while True:
            # Keep the unwalked bytes, fill up the rest: a window ends where the buffer is full.
            kept = size - position
            buffer[:kept] = bytes(view[position:size])  # a copy: the two may overlap
            base, size = base + position, kept
            while size < len(buffer):
                got = stream.readinto(view[size:])  # type: ignore[attr-defined]
                if not got:
                    break
                size += got
            self._flush()  # the last window's packets: small lists stay in the CPU cache
            if deadline is not None and time.monotonic() > deadline:
                self.stopped = True
                break
            if first is None and size >= KEY.size:
                first = RECORD.unpack_from(view, 0)[4]
            position, last_start = 0, size - KEY.size  # the last offset a key can be read at
            while position <= last_start:
                while position <= last_start:  # the hot loop: one record per turn
                    included, flags, timestamp, lead, rest = unpack(view, position)
                    following = position + header + included
                    if following > size:
                        break
                    action = get((included, flags, lead, rest))
                    if action is None:
                        break
                    if action is skip:
                        others += 1
                    else:
                        action((timestamp, included, flags))
                    last = timestamp
                    position = following
                else:
                    break
                if included > MAX_RECORD or following > size:
                    break  # the next window, or the reader says what is wrong with it
                key = (included, flags, lead, rest)
                record = make_record(buffer, position, flags, timestamp)
                action = fed.get(key) or self._learn(record, key)
                last, position = timestamp, following
                if action is not _feed:
                    if action is skip:
                        others += 1
                    else:
                        action((timestamp, included, flags))
                    continue
                others += 1
                if pending:
                    self._flush()
                analyzer.feed(record)
                if analyzer.generation != self.generation:
                    self.generation = analyzer.generation
                    self._forget(everything=False)
                if deadline is not None and time.monotonic() > deadline:
                    self.stopped = True
                    break
            if self.stopped or size < len(buffer) or included > MAX_RECORD:
                break  # the clock, the end of the file, or a record the reader must judge
        self._flush()
        media = sum(frames.packets for frames in self.pending.values())
        self.reader.records += others + media
        if last is not None:
            self.first, self.last = first, last
        self.position = base + position

    def _learn(self, record: Record, key: Key) -> Action:
        """What the record's key means: learned for the hot loop, or a record to feed."""
        analyzer, learned = self.analyzer, self.learned
        if len(learned) + len(self.fed) >= MAX_KEYS:
            self._forget(everything=True)
        frame = analyzer.whole_frame(record)
        if frame is None:  # what feed does with it never depends on the state
            action: Action = _skip if analyzer.ignores(record) else _feed
        else:
            device = analyzer.media_device(record, frame)
            flags = key[1]
            action = _feed if device is None else self._frames(device, record, flags).add
            self.volatile.append(key)
        (self.fed if action is _feed else learned)[key] = action
        return action

    def _forget(self, *, everything: bool) -> None:
        """Forget the keys whose meaning depends on the analyzer's state, or all of them."""
        if everything:
            self.learned.clear()
            self.fed.clear()
        else:
            for key in self.volatile:
                self.learned.pop(key, None)
                self.fed.pop(key, None)
        self.volatile.clear()

    def _frames(self, device: Device, record: Record, flags: int) -> _Frames:
        """The pending packets of ``device``, told what ``flags`` means."""
        frames = self.pending.get(device.address)
        if frames is None:
            frames = self.pending[device.address] = _Frames(device)
        frames.tx[flags] = record.direction == "tx"
        return frames

    def _flush(self) -> None:
        for frames in self.pending.values():
            if frames.flat:
                frames.flush(self.overhead)
