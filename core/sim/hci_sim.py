"""The demo's simulated HCI source: a growing btsnoop file in the Linux monitor datalink, the
format `btmon -w` writes, so the demo exercises the real `--hci-file` path (core.hci.live).

The fleet is told to it at runtime (connect, start, suspend, stall, disconnect); `step(now)`
writes the media packets due since the last step and flushes. The file is rotated when it grows
past `max_bytes`: a fresh file (header, then the current connections replayed) replaces it
atomically, which a follower sees as a new inode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from core.hci.btsnoop import DATALINK_MONITOR
from core.hci.script import Session, codec_config


@dataclass(frozen=True, slots=True)
class MediaProfile:
    """How a codec's stream looks on HCI: media packets/s and L2CAP payload bytes."""

    pps: float
    size: int


#: Per codec at 44.1 kHz. SBC: 128 samples per frame (16 blocks x 8 subbands), 5 frames of
#: 119 bytes (bitpool 53, joint stereo; A2DP spec §12.9 frame length) per packet, + 12 bytes RTP
#: + 1 byte SBC header = 608 bytes at 68.9/s (PipeWire/PulseAudio fill packets up to the MTU; 5
#: frames is a common fill). AAC: one 1024-sample frame per packet (43.1/s) at ~256 kbit/s.
#: aptX family: 4:1 of 16-bit stereo = 352.8 kbit/s (aptX HD 529.2) in ~600-byte packets.
#: LDAC 330 kbit/s ("connection" quality) in ~660-byte packets. Approximations, not captures.
MEDIA: Final[dict[str, MediaProfile]] = {
    "SBC": MediaProfile(44100 / 128 / 5, 608),
    "AAC": MediaProfile(44100 / 1024, 756),
    "aptX": MediaProfile(352_800 / 8 / 600, 600),
    "aptX LL": MediaProfile(352_800 / 8 / 600, 600),
    "aptX HD": MediaProfile(529_200 / 8 / 600, 600),
    "LDAC": MediaProfile(330_000 / 8 / 660, 660),
}
#: Rotate past this size (a demo left running must not fill a Pi's card): about 90 s of
#: eight SBC speakers, each ~44 KB/s with record headers.
DEFAULT_MAX_BYTES: Final = 8 * 1024 * 1024
#: Media owed for longer than this (the demo was paused) is skipped, keeping a step cheap.
MAX_CATCH_UP_S: Final = 2.0
#: HCI connection handles are 12 bits; 0x0EFF is the highest the Core spec allows (Vol 4 E 5.4.2).
_MAX_HANDLE: Final = 0x0EFF


@dataclass
class _Speaker:
    address: str
    name: str
    codec: str
    index: int
    handle: int
    #: "idle" (configured, not started), "streaming", or "stalled" (started, no media).
    state: str = "idle"
    next_media_t: float = 0.0
    #: Media packets written into the current file / since the speaker was first connected.
    media_in_file: int = 0
    media_total: int = 0


class HciSim:
    """Writes what the simulated fleet does on HCI into `path` (created at once)."""

    def __init__(self, path: Path, *, now: float, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.t = now
        self.rotations = 0
        self.speakers: dict[str, _Speaker] = {}
        self._next_handle = 1
        self._session = Session(DATALINK_MONITOR, t=now)
        self._file: BinaryIO = self._fresh_file([])

    # --- what the fleet does ---------------------------------------------------------------
    def connect(
        self,
        address: str,
        name: str,
        *,
        codec: str = "SBC",
        index: int = 0,
        now: float | None = None,
    ) -> None:
        """Connection Complete, Remote Name, AVDTP signalling and media channels, codec."""
        address = address.upper()
        codec_config(codec)  # refuse an unknown codec before anything is written
        at = self._until(now)
        if address in self.speakers:
            self.disconnect(address, now=at)
        speaker = _Speaker(address, name, codec, index, self._handle())
        self.speakers[address] = speaker
        self._connect(speaker, at)

    def start(self, address: str, *, now: float | None = None) -> None:
        """AVDTP Start (unless stalled: then media simply flows again), then media."""
        speaker = self.speakers[address.upper()]
        at = self._until(now)
        if speaker.state == "idle":
            self._at(speaker, at)
            self._session.start(speaker.handle)
        if speaker.state != "streaming":
            speaker.state = "streaming"
            speaker.next_media_t = at
        # else: already streaming, nothing changes

    def suspend(self, address: str, *, now: float | None = None) -> None:
        """AVDTP Suspend: the transport goes idle, media stops."""
        speaker = self.speakers[address.upper()]
        at = self._until(now)
        if speaker.state != "idle":
            self._at(speaker, at)
            self._session.suspend(speaker.handle)
            speaker.state = "idle"

    def stall(self, address: str, *, now: float | None = None) -> None:
        """Media stops with no AVDTP signal: BlueZ still says `active` (DESIGN §3 `stalled`)."""
        speaker = self.speakers[address.upper()]
        self._until(now)
        if speaker.state == "streaming":
            speaker.state = "stalled"

    def disconnect(self, address: str, *, now: float | None = None) -> None:
        """Disconnection Complete (link loss or a local disconnect)."""
        speaker = self.speakers.pop(address.upper(), None)
        if speaker is None:
            return
        self._at(speaker, self._until(now))
        self._session.disconnect(speaker.handle)

    def step(self, now: float) -> int:
        """Write everything due up to `now`; returns the bytes written (rotating if due)."""
        self._until(now)
        data = self._session.drain()
        self._file.write(data)
        self._file.flush()
        if self._file.tell() > self.max_bytes:
            self._rotate()
        return len(data)

    def media_counts(self) -> dict[str, int]:
        """Address -> media packets in the current file (what `snoop` should count)."""
        return {a: s.media_in_file for a, s in self.speakers.items()}

    def close(self) -> None:
        self._file.close()

    # --- internals ------------------------------------------------------------------------
    def _handle(self) -> int:
        used = {s.handle for s in self.speakers.values()}
        while self._next_handle in used:
            self._next_handle = self._next_handle % _MAX_HANDLE + 1
        handle = self._next_handle
        self._next_handle = handle % _MAX_HANDLE + 1
        return handle

    def _at(self, speaker: _Speaker, t: float) -> None:
        self._session.t = t
        self._session.index = speaker.index

    def _connect(self, speaker: _Speaker, t: float) -> None:
        self._at(speaker, t)
        session = self._session
        session.connect(speaker.handle, speaker.address, speaker.name)
        session.open_a2dp(speaker.handle)
        codec, info = codec_config(speaker.codec)
        session.configure(speaker.handle, codec, info)

    def _until(self, now: float | None) -> float:
        """Write the media due before `now` (time-ordered across speakers); the new time."""
        if now is None or now <= self.t:
            return self.t
        due: list[tuple[float, _Speaker]] = []
        for speaker in self.speakers.values():
            if speaker.state != "streaming":
                continue
            profile = MEDIA.get(speaker.codec, MEDIA["SBC"])
            interval = 1.0 / profile.pps
            t = max(speaker.next_media_t, now - MAX_CATCH_UP_S)
            while t < now:
                due.append((t, speaker))
                t += interval
            speaker.next_media_t = t
        due.sort(key=lambda item: item[0])
        session = self._session
        for t, speaker in due:
            session.t = t
            session.index = speaker.index
            session.media(speaker.handle, MEDIA.get(speaker.codec, MEDIA["SBC"]).size)
            speaker.media_in_file += 1
            speaker.media_total += 1
        self.t = now
        return now

    def _fresh_file(self, replay: list[_Speaker]) -> BinaryIO:
        """A new file with the header and `replay`'s connections, swapped in atomically."""
        self._session = Session(DATALINK_MONITOR, t=self.t)
        for speaker in replay:
            speaker.media_in_file = 0
            self._connect(speaker, self.t)
            if speaker.state != "idle":
                self._session.start(speaker.handle)
        partial = self.path.with_name(self.path.name + ".new")
        with open(partial, "wb") as out:
            out.write(self._session.drain())
        os.replace(partial, self.path)
        return open(self.path, "ab")

    def _rotate(self) -> None:
        self._file.close()
        self.rotations += 1
        self._file = self._fresh_file(list(self.speakers.values()))
