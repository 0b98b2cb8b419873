"""WAV files in and out, without extra dependencies: PCM 8/16/24/32 bit and IEEE float 32/64,
plain or WAVE_FORMAT_EXTENSIBLE, read into float64 in [-1, 1]; written as IEEE float32.

The stdlib `wave` module reads integer PCM only, and recorders (arecord, sox, Audacity,
PortAudio callbacks saved by hand) write float and extensible files as often as PCM.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from core.probe import ProbeError

#: Format tags (Microsoft mmreg.h).
FORMAT_PCM: Final = 0x0001
FORMAT_FLOAT: Final = 0x0003
FORMAT_EXTENSIBLE: Final = 0xFFFE
#: Data-chunk sizes streaming writers leave when they never patch the header.
STREAMING_SIZES: Final = (0, 0xFFFFFFFF)
#: A sample this close to full scale counts as clipped (one 16-bit LSB).
CLIP_LEVEL: Final = 1.0 - 1.0 / 32768.0
_WHAT_TO_DO: Final = "record a WAV file (PCM 8/16/24/32-bit or float 32/64)"


class WavError(ProbeError):
    """A WAV file could not be read or written; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class Wav:
    """Decoded audio: float64 samples in [-1, 1], shape (n,) when mono, (n, channels) otherwise."""

    rate: int
    samples: np.ndarray
    channels: int
    clipped_fraction: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def mono(self) -> np.ndarray:
        """The channels averaged (a stereo recording of one microphone is two copies)."""
        if self.samples.ndim == 1:
            return self.samples
        return np.asarray(self.samples.mean(axis=1), dtype=np.float64)


def _fail(path: Path, what: str, todo: str = _WHAT_TO_DO) -> WavError:
    return WavError(f"{path.name}: {what}; {todo}")


def _chunks(path: Path, data: bytes) -> dict[bytes, tuple[int, int]]:
    """Chunk id -> (offset, declared size) of the first chunk of each id."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        found.setdefault(cid, (pos + 8, size))
        if cid == b"data":
            break  # the data chunk may be followed by junk or be open-ended
        pos += 8 + size + (size & 1)
    return found


def _decode(path: Path, raw: bytes, fmt: int, bits: int, channels: int) -> np.ndarray:
    if fmt == FORMAT_FLOAT and bits in (32, 64):
        values = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
        return np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0)
    if fmt != FORMAT_PCM:
        raise _fail(path, f"unsupported sample format (tag 0x{fmt:04x}, {bits} bit)")
    if bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float64) / float(1 << 23)
    if bits == 32:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    raise _fail(path, f"unsupported PCM sample width ({bits} bit)")


def read_wav(path: Path) -> Wav:
    """Read a WAV file; `WavError` (with what to do) when it is missing, not a WAV or truncated."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, "no such file", "check the path") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})", "check the path") from None
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (RIFF/WAVE header missing)")
    chunks = _chunks(path, data)
    if b"fmt " not in chunks:
        raise _fail(path, "truncated or damaged WAV (no 'fmt ' chunk)")
    fpos, fsize = chunks[b"fmt "]
    if fsize < 16 or fpos + 16 > len(data):
        raise _fail(path, "truncated or damaged WAV ('fmt ' chunk too short)")
    fmt, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", data, fpos)
    if fmt == FORMAT_EXTENSIBLE:
        if fsize < 40 or fpos + 40 > len(data):
            raise _fail(path, "truncated WAVE_FORMAT_EXTENSIBLE header")
        fmt = struct.unpack_from("<H", data, fpos + 24)[0]  # first two bytes of the GUID
    if channels < 1 or rate < 1 or bits < 8 or block_align != channels * ((bits + 7) // 8):
        raise _fail(path, f"inconsistent format ({channels} ch, {rate} Hz, {bits} bit)")
    if b"data" not in chunks:
        raise _fail(path, "truncated WAV (no 'data' chunk: the recording has no audio)")
    dpos, dsize = chunks[b"data"]
    available = len(data) - dpos
    if dsize in STREAMING_SIZES:
        dsize = available
    elif dsize > available:
        raise _fail(
            path,
            f"truncated WAV (header announces {dsize} bytes of audio, file holds {available})",
            "record again, or repair the header (e.g. `sox in.wav out.wav`)",
        )
    dsize -= dsize % block_align
    samples = _decode(path, data[dpos : dpos + dsize], fmt, bits, channels)
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL)) if samples.size else 0.0
    shaped = samples if channels == 1 else samples.reshape(-1, channels)
    return Wav(rate=rate, samples=shaped, channels=channels, clipped_fraction=clipped)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write IEEE float32 (WAVE_FORMAT_IEEE_FLOAT, with a 'fact' chunk), mono or (n, ch).

    Float keeps the probes' sub-LSB detail; every recorder and player named above reads it.
    Values are written as given (not clipped): keep them within [-1, 1].
    """
    path = Path(path)
    array = np.asarray(samples, dtype=np.float64)
    channels = 1 if array.ndim == 1 else int(array.shape[1])
    frames = int(array.shape[0])
    payload = np.ascontiguousarray(array, dtype="<f4").tobytes()
    fmt_chunk = struct.pack(
        "<HHIIHHH", FORMAT_FLOAT, channels, rate, rate * 4 * channels, 4 * channels, 32, 0
    )
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt_chunk))
        + fmt_chunk
        + b"fact"
        + struct.pack("<II", 4, frames)
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
    )
    try:
        path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    except OSError as exc:
        raise WavError(f"{path}: cannot be written ({exc.strerror}); check the folder") from None
