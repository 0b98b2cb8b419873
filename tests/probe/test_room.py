"""The simulated room: exact fractional delays and clock skew, levels, absent speakers, speed."""

from __future__ import annotations

import numpy as np
import pytest

from core.probe.room import REVERBS, Room, SpeakerPath, random_room, render, stretch
from core.probe.signals import design_probes

PROBES = design_probes(2)


def _shifted(signal: np.ndarray, delay: float, size: int) -> np.ndarray:
    """signal delayed by `delay` samples, by a frequency-domain phase shift (an independent
    method: exact for a band-limited signal that is zero near both ends of a long array)."""
    spectrum = np.fft.rfft(signal, 2 * size)
    freqs = np.fft.rfftfreq(2 * size)
    return np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * delay), 2 * size)[:size]


@pytest.mark.parametrize("delay_samples", [1000.0, 1000.25, 1234.5, 2000.875, 1500.3337])
def test_fractional_delay_and_reflection_are_exact(delay_samples: float) -> None:
    rate = PROBES.rate
    path = SpeakerPath(delay_samples / rate, 0.3, ((0.003, -0.2),))
    room = Room((path, SpeakerPath(0.1, 0.2, present=False)), None, None, duration_s=1.0)
    got = render(room, PROBES, np.random.default_rng(0))
    n = len(got)
    want = 0.3 * _shifted(PROBES.signals[0], delay_samples, n)
    want += -0.2 * _shifted(PROBES.signals[0], delay_samples + 0.003 * rate, n)
    assert n == rate
    assert np.max(np.abs(got - want)) < 1e-4 * np.max(np.abs(want))


@pytest.mark.parametrize("skew_ppm", [-100.0, 37.5, 100.0])
def test_stretch_matches_band_limited_resampling(skew_ppm: float) -> None:
    signal = PROBES.signals[1]
    out = stretch(signal, skew_ppm)
    assert len(out) == pytest.approx(len(signal) / (1 + skew_ppm * 1e-6), abs=1)
    picks = np.linspace(100, len(out) - 100, 97).astype(int)
    size = 2 * len(signal)
    spectrum = np.fft.rfft(signal, size)
    k = np.arange(len(spectrum))
    times = picks * (1 + skew_ppm * 1e-6)
    weights = np.where((k == 0) | (k == size // 2), 1.0, 2.0)
    want = (np.exp(2j * np.pi * np.outer(times, k) / size) * spectrum * weights).real.sum(1) / size
    assert np.max(np.abs(out[picks] - want)) < 1e-4 * np.max(np.abs(signal))


def test_noise_and_music_levels_are_relative_to_the_direct_sound() -> None:
    rate = PROBES.rate
    path = SpeakerPath(0.1, 0.2)
    clean = render(Room((path,), None, None, duration_s=2.0), PROBES, np.random.default_rng(1))
    probe_power = 0.2**2 * np.mean(PROBES.signals[0] ** 2)
    for color in ("white", "pink", "brown"):
        room = Room((path,), 10.0, None, duration_s=2.0, noise_color=color)
        noise = render(room, PROBES, np.random.default_rng(1)) - clean
        ratio_db = 10 * np.log10(probe_power / np.mean(noise**2))
        assert ratio_db == pytest.approx(10.0, abs=0.1)
    for kind in ("tonal", "percussive", "speech"):
        room = Room((path,), None, -6.0, duration_s=2.0, music_kind=kind)
        music = render(room, PROBES, np.random.default_rng(2)) - clean
        assert 10 * np.log10(np.mean(music**2) / probe_power) == pytest.approx(-6.0, abs=0.1)
    assert rate == 48000


def test_absent_speakers_are_silent() -> None:
    room = Room((SpeakerPath(0.1, 0.5, present=False),) * 2, None, None, duration_s=1.0)
    assert not np.any(render(room, PROBES, np.random.default_rng(0)))


def test_random_rooms_follow_their_preset() -> None:
    rng = np.random.default_rng(3)
    for reverb in REVERBS:
        room = random_room(rng, 6, snr_db=10.0, reverb=reverb, absent=2)
        assert sum(not p.present for p in room.paths) == 2
        assert all(abs(p.skew_ppm) <= 100 for p in room.paths)
        if reverb == "none":
            assert all(not p.reflections for p in room.paths) and room.diffuse_tail_s == 0
        if reverb == "louder-reflections":
            assert all(max(abs(g) for _, g in p.reflections) > p.gain for p in room.paths)
        else:
            assert all(abs(g) < p.gain for p in room.paths for _, g in p.reflections)
    with pytest.raises(ValueError, match="reverb"):
        random_room(rng, 2, snr_db=None, reverb="cathedral")
    again = random_room(np.random.default_rng(9), 4, snr_db=0.0, reverb="heavy")
    assert again == random_room(np.random.default_rng(9), 4, snr_db=0.0, reverb="heavy")
