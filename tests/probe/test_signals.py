"""Probe design: distinct, band-limited, short, reproducible; the probe folder round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.probe import ProbeError
from core.probe.signals import design_probes, load_reference, write_probe_dir
from core.probe.wavio import WavError, write_wav


def _xcorr_peak(a: np.ndarray, b: np.ndarray) -> float:
    size = 2 * len(a)
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    return float(np.max(np.abs(corr)) / np.sqrt(np.sum(a**2) * np.sum(b**2)))


def test_probes_are_distinct_short_and_bounded() -> None:
    probes = design_probes(8)
    assert probes.count == 8 and probes.rate == 48000
    assert 0.1 <= probes.duration_s <= 1.0
    assert probes.signals.shape == (8, probes.length)
    assert np.max(np.abs(probes.signals)) <= 1.0
    for i in range(8):
        assert _xcorr_peak(probes.signals[i], probes.signals[i]) == pytest.approx(1.0)
        for j in range(i + 1, 8):
            assert _xcorr_peak(probes.signals[i], probes.signals[j]) < 0.06


def test_probes_stay_in_their_band_and_fade_in() -> None:
    probes = design_probes(2)
    spectrum = np.abs(np.fft.rfft(probes.signals[0])) ** 2
    freqs = np.fft.rfftfreq(probes.length, 1 / probes.rate)
    outside = spectrum[(freqs < 200) | (freqs > 15500)].sum() / spectrum.sum()
    assert outside < 0.01
    assert abs(probes.signals[0, 0]) < 1e-3 and abs(probes.signals[0, -1]) < 1e-3  # no click


def test_design_is_deterministic_and_seeded() -> None:
    assert np.array_equal(design_probes(3).signals, design_probes(3).signals)
    assert not np.allclose(design_probes(3, seed=1).signals, design_probes(3, seed=2).signals)
    low = design_probes(2, 16000)
    assert low.rate == 16000 and low.design["band_hz"][1] <= 0.4 * 16000


def test_bad_design_requests() -> None:
    with pytest.raises(ProbeError, match="at least one"):
        design_probes(0)
    with pytest.raises(ProbeError, match="too low"):
        design_probes(2, 1000)


def test_probe_folder_round_trip(tmp_path: Path) -> None:
    probes = design_probes(3)
    written = write_probe_dir(probes, tmp_path / "p")
    names = [p.name for p in written]
    assert names == ["probe_01.wav", "probe_02.wav", "probe_03.wav", "probe.json"]
    meta = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert meta["rate"] == 48000 and meta["length"] == probes.length and meta["count"] == 3
    assert meta["design"]["band_hz"] == probes.design["band_hz"]
    loaded = load_reference(tmp_path / "p")
    assert loaded.count == 3 and loaded.rate == 48000 and loaded.length == probes.length
    assert np.allclose(loaded.signals, probes.signals, atol=1e-6)  # float32 on disk


def test_single_wav_reference_and_stereo_mix(tmp_path: Path) -> None:
    tone = 0.5 * np.sin(np.arange(4800) * 0.1)
    write_wav(tmp_path / "ref.wav", np.stack([tone, tone * 0.5], axis=1), 48000)
    ref = load_reference(tmp_path / "ref.wav")
    assert ref.count == 1 and ref.length == 4800
    assert np.allclose(ref.signals[0], tone * 0.75, atol=1e-6)


def test_folder_of_unequal_probes_is_padded(tmp_path: Path) -> None:
    write_wav(tmp_path / "probe_1.wav", np.ones(100) * 0.1, 8000)
    write_wav(tmp_path / "probe_2.wav", np.ones(300) * 0.1, 8000)
    ref = load_reference(tmp_path)
    assert ref.signals.shape == (2, 300) and ref.signals[0, 150] == 0.0


def test_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match=r"no probe_NN\.wav"):
        load_reference(tmp_path)
    with pytest.raises(WavError, match="no such file"):
        load_reference(tmp_path / "missing.wav")
    write_wav(tmp_path / "probe_01.wav", np.ones(10) * 0.1, 8000)
    write_wav(tmp_path / "probe_02.wav", np.ones(10) * 0.1, 48000)
    with pytest.raises(ProbeError, match="different rates"):
        load_reference(tmp_path)
    write_wav(tmp_path / "silent.wav", np.zeros(100), 48000)
    with pytest.raises(ProbeError, match="silent"):
        load_reference(tmp_path / "silent.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(WavError, match="not a WAV"):
        load_reference(tmp_path / "text.wav")
