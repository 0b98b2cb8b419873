"""Reading a btsnoop file that another program (`btmon -w`, the demo) is still writing."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import BinaryIO, Final

from core.hci.btsnoop import HEADER, MAX_RECORD, RECORD, BtsnoopError, BtsnoopReader, Record

#: Bytes read per poll: ~400 media records, a few ms of decoding.
READ_CHUNK: Final = 256 * 1024


class SnoopStream:
    """Decodes a btsnoop byte stream that arrives in pieces: complete records come out, a
    partial one waits for the next piece. Decoding is BtsnoopReader's, on complete records."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pipe = io.BytesIO()
        self._reader: BtsnoopReader | None = None
        #: Why decoding stopped (not btsnoop, corrupt record); None while all is well.
        self.error: str | None = None

    @property
    def records(self) -> int:
        return 0 if self._reader is None else self._reader.records

    def feed(self, data: bytes) -> list[Record]:
        if self.error is not None:
            return []
        buffer = self._buffer
        buffer += data
        if self._reader is None:
            if len(buffer) < HEADER.size:
                return []
            self._pipe.write(buffer[: HEADER.size])
            self._pipe.seek(0)
            del buffer[: HEADER.size]
            try:
                self._reader = BtsnoopReader(self._pipe)
            except BtsnoopError as exc:
                self.error = str(exc)
                return []
        end, size = 0, len(buffer)
        while end + RECORD.size <= size:
            included = int.from_bytes(buffer[end + 4 : end + 8], "big")
            if included > MAX_RECORD:  # the reader reports it and stops
                end += RECORD.size
                break
            if end + RECORD.size + included > size:
                break
            end += RECORD.size + included
        if end == 0:
            return []
        pipe = self._pipe
        pipe.seek(0)
        pipe.truncate()
        pipe.write(buffer[:end])
        pipe.seek(0)
        del buffer[:end]
        records = list(self._reader)
        if self._reader.warnings:
            self.error = self._reader.warnings[-1]
        return records


class FileFollower:
    """Blocking reads of a file another program appends to (run it off the event loop; close()
    may come from another thread). Replacement (new inode) and truncation (size below what was
    read) restart it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._position = 0
        self._lock = threading.Lock()
        self._closed = False
        #: False while the path does not exist.
        self.exists = False
        #: Why the file cannot be opened (permissions, a directory); None when it can.
        self.error: str | None = None

    def read(self, max_bytes: int = READ_CHUNK) -> tuple[bool, bytes]:
        """(a new capture starts with these bytes, the bytes)."""
        with self._lock:
            if self._closed:
                return False, b""
            return self._poll(max_bytes)

    def _poll(self, max_bytes: int) -> tuple[bool, bytes]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self.exists = False
            return False, self._read(max_bytes)  # a deleted file may still be written
        self.exists = True
        identity = (stat.st_dev, stat.st_ino)
        if self._file is not None and identity == self._identity:
            if stat.st_size >= self._position:
                return False, self._read(max_bytes)
            self._file.seek(0)  # truncated in place
            self._position = 0
            return True, self._read(max_bytes)
        if self._file is not None:
            rest = self._read(max_bytes)  # finish the replaced file first
            if rest:
                return False, rest
            self._file.close()
            self._file = None
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across polls
        except FileNotFoundError:
            self.exists = False
            return False, b""
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror or exc}"
            return False, b""
        self.error = None
        opened = os.fstat(self._file.fileno())
        self._identity = (opened.st_dev, opened.st_ino)
        self._position = 0
        return True, self._read(max_bytes)

    def _read(self, max_bytes: int) -> bytes:
        if self._file is None:
            return b""
        data = self._file.read(max_bytes)
        self._position += len(data)
        return data

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None
