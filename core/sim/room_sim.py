"""The demo's room: probes "played" on the demo speakers are rendered through simulated
acoustics (each speaker's real latency, its clock drift, distance, reflections, noise) and
handed to the real analysis (DESIGN §7, §8). The truth lives in `core.sim.scenario.ROOM`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from core.fleet.events import ProbeEvent
from core.probe.runner import Recording, Target

#: Speed of sound at 20 °C (m/s): distance -> acoustic delay.
SOUND_M_S: Final = 343.0
#: Silence before the probes in the simulated recording (s): the room's pre-roll.
PRE_ROLL_S: Final = 0.05
#: Recorded after the latest arrival (s): reverb tails and the gap finder need some.
TAIL_S: Final = 0.4
#: Background noise of the demo room relative to the probes (dB): a quiet soundcheck.
ROOM_SNR_DB: Final = 20.0


@dataclass(frozen=True, slots=True)
class RoomSpeaker:
    """A demo speaker's acoustic truth."""

    #: Latency from host to sound at start (ms): the codec's buffer plus the speaker's DSP.
    latency_ms: float
    #: Its clock's error against the host's (ppm): latency grows by this many µs per second.
    drift_ppm: float = 0.0
    #: Distance to the microphone (m).
    distance_m: float = 5.0
    #: True when it plays nothing although BlueZ says it streams (the stalled speaker).
    silent: bool = False


if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class RoomBackend:
    """A probe backend that renders a simulated room instead of playing and recording."""

    source = "simulated room"
    #: As the demo's fleet output (core.align.by_probe.FleetOutput): what the player plays to.
    sink = "btmon_fleet"

    def __init__(
        self,
        truth: Mapping[str, RoomSpeaker],
        clock: Callable[[], float],
        *,
        seed: int = 11,
        silent: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        """`clock`: the demo's clock (drift accumulates on it); `silent`: the addresses that
        play nothing right now (the demo asks its HCI capture: no media, no sound); without
        it, the truth's `silent` flags say."""
        self.truth = dict(truth)
        self.clock = clock
        self.start = clock()
        self.seed = seed
        self.probes = 0
        self.silent = silent
        #: The demo's fleet output: the delay (ms) its stage adds to each speaker (align).
        self.delays_ms: dict[str, int] = {}

    def delays(self) -> dict[str, int]:
        """The delay each speaker's stage adds now (ms); 0 for those without one."""
        return dict(self.delays_ms)

    def apply(self, delays_ms: dict[str, int]) -> None:
        """Set the stages' delays (the demo's stand-in for module-loopback stages)."""
        self.delays_ms = {address: int(delay) for address, delay in delays_ms.items()}

    def latency_ms(self, address: str, now: float) -> float | None:
        """The true latency of a speaker now (ms, acoustic path and its stage's delay
        included), None if unheard."""
        speaker = self.truth.get(address)
        if speaker is None:
            return None
        drift = speaker.drift_ppm * 1e-6 * (now - self.start) * 1000.0
        acoustic = speaker.distance_m / SOUND_M_S * 1000.0
        return speaker.latency_ms + self.delays_ms.get(address, 0) + drift + acoustic

    def capture(
        self, targets: Sequence[Target], signals: NDArray[np.float64], rate: int
    ) -> Recording:
        import numpy as np

        from core.probe.room import Room, SpeakerPath, render
        from core.probe.signals import ProbeSet

        now = self.clock()
        self.probes += 1
        rng = np.random.default_rng((self.seed, self.probes))
        if self.silent is not None:
            quiet = self.silent()
        else:
            quiet = frozenset(a for a, speaker in self.truth.items() if speaker.silent)
        paths = []
        for target in targets:
            speaker = self.truth.get(target.address)
            latency = self.latency_ms(target.address, now)
            present = not (speaker is None or latency is None or target.address in quiet)
            delay_s = PRE_ROLL_S + (latency or 0.0) / 1000.0
            # A wall behind the microphone: a reflection 4-12 ms after the direct sound,
            # sometimes louder than it (the direct path is partly blocked), and a weaker one.
            gain = 0.2 / max(1.0, speaker.distance_m if speaker else 5.0) ** 0.5
            reflections = (
                (float(rng.uniform(0.004, 0.012)), gain * float(rng.uniform(0.3, 1.1))),
                (float(rng.uniform(0.015, 0.03)), gain * float(rng.uniform(0.1, 0.4))),
            )
            paths.append(
                SpeakerPath(
                    delay_s=delay_s,
                    gain=gain,
                    reflections=reflections,
                    skew_ppm=speaker.drift_ppm if speaker else 0.0,
                    present=present,
                )
            )
        samples = np.asarray(signals, dtype=np.float64)
        longest = max((p.delay_s for p in paths), default=0.0)
        duration = longest + samples.shape[-1] / rate + TAIL_S
        room = Room(
            paths=tuple(paths),
            noise_snr_db=ROOM_SNR_DB,
            music_db=None,
            diffuse_tail_s=0.15,
            duration_s=duration,
        )
        probes = ProbeSet(rate=rate, signals=samples, design={"source": "demo"})
        recording = render(room, probes, rng)
        emission = tuple(PRE_ROLL_S for _ in targets)
        return Recording(rate, recording, emission)


def past_probes(
    truth: Mapping[str, RoomSpeaker],
    names: Mapping[str, str],
    now: float,
    *,
    count: int,
    every_s: float,
) -> list[ProbeEvent]:
    """Probes of the room as they would have come out at `now - k * every_s` (oldest first),
    each through the real analysis: a drift history for screenshots and tests."""
    from core.probe.runner import run_blocking

    times = [now - every_s * k for k in range(count - 1, -1, -1)]
    clock_at = iter(times)
    current = [times[0]]

    def clock() -> float:
        return current[0]

    backend = RoomBackend(truth, clock)
    backend.start = now  # drift is counted from `now`: the past probes lie before it
    targets = [Target(a, names.get(a, a), i + 1) for i, a in enumerate(truth)]
    events = []
    for t in clock_at:
        current[0] = t
        events.append(run_blocking(backend, targets, clock=clock))
    return events
