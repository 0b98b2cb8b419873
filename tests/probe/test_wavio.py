"""WAV reading and writing: every sample format recorders produce, and every bad input."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from core.probe import ProbeError
from core.probe.wavio import WavError, read_wav, write_wav


def _wav_bytes(
    tag: int, bits: int, channels: int, rate: int, payload: bytes, *, extensible: bool = False
) -> bytes:
    """A WAV file assembled by hand (independent of write_wav)."""
    block = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack(
            "<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0
        )
        fmt += guid
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # an unrelated chunk before the data
    body += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


VALUES = np.array([0.0, 0.5, -0.5, 0.25, -1.0])


@pytest.mark.parametrize(
    ("tag", "bits", "encode", "tolerance"),
    [
        (
            1,
            8,
            lambda v: (np.round(v * 128) + 128).clip(0, 255).astype(np.uint8).tobytes(),
            1 / 128,
        ),
        (1, 16, lambda v: np.round(v * 32768).clip(-32768, 32767).astype("<i2").tobytes(), 1e-4),
        (
            1,
            24,
            lambda v: b"".join(
                struct.pack("<i", int(x))[:3] for x in np.round(v * 8388608).clip(-8388608, 8388607)
            ),
            1e-6,
        ),
        (
            1,
            32,
            lambda v: np.round(v * 2**31).clip(-(2**31), 2**31 - 1).astype("<i4").tobytes(),
            1e-8,
        ),
        (3, 32, lambda v: v.astype("<f4").tobytes(), 1e-7),
        (3, 64, lambda v: v.astype("<f8").tobytes(), 0.0),
    ],
)
@pytest.mark.parametrize("extensible", [False, True])
def test_reads_every_sample_format(
    tmp_path: Path, tag: int, bits: int, encode, tolerance: float, extensible: bool
) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(_wav_bytes(tag, bits, 1, 44100, encode(VALUES), extensible=extensible))
    wav = read_wav(path)
    assert wav.rate == 44100 and wav.channels == 1 and wav.samples.dtype == np.float64
    assert np.allclose(wav.samples, VALUES, atol=tolerance + 1e-12)
    assert wav.clipped_fraction == pytest.approx(1 / 5)  # the -1.0 sample


def test_round_trip_float32_mono_and_stereo(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    mono = rng.uniform(-0.9, 0.9, 1000)
    write_wav(tmp_path / "m.wav", mono, 48000)
    back = read_wav(tmp_path / "m.wav")
    assert back.rate == 48000 and back.samples.shape == (1000,)
    assert np.allclose(back.samples, mono, atol=1e-7)
    stereo = rng.uniform(-0.5, 0.5, (700, 2))
    write_wav(tmp_path / "s.wav", stereo, 8000)
    back = read_wav(tmp_path / "s.wav")
    assert back.channels == 2 and back.samples.shape == (700, 2)
    assert np.allclose(back.samples, stereo, atol=1e-7)
    assert np.allclose(back.mono(), stereo.mean(axis=1), atol=1e-7)
    assert back.clipped_fraction == 0.0


def test_reads_what_the_stdlib_wave_module_writes(tmp_path: Path) -> None:
    path = tmp_path / "std.wav"
    data = (np.arange(-100, 100) * 100).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(data.tobytes())
    wav = read_wav(path)
    assert wav.rate == 16000 and wav.samples.shape == (100, 2)
    assert np.allclose(wav.samples.reshape(-1), data / 32768.0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "nope.wav")


def test_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "REC.wav"
    path.write_text("this is text, not audio\n")
    with pytest.raises(WavError, match=r"REC\.wav: not a WAV file.*record a WAV"):
        read_wav(path)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    write_wav(path, np.zeros(1000), 48000)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(WavError, match="truncated"):
        read_wav(path)
    path.write_bytes(path.read_bytes()[:30])  # cut inside the fmt chunk
    with pytest.raises(WavError, match=r"truncated|damaged"):
        read_wav(path)


def test_streaming_header_reads_to_the_end(tmp_path: Path) -> None:
    payload = np.full(50, 1000, dtype="<i2").tobytes()
    raw = bytearray(_wav_bytes(1, 16, 1, 8000, payload))
    size_at = raw.index(b"data") + 4
    raw[size_at : size_at + 4] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "live.wav"
    path.write_bytes(bytes(raw))
    assert len(read_wav(path).samples) == 50


def test_wav_error_is_a_probe_error() -> None:
    assert issubclass(WavError, ProbeError)
