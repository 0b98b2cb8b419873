"""FleetState with an HCI source: media_pps shown with hysteresis, `stalled` after 1 s of
silence on an active transport (DESIGN §3), and the probe's misses."""

from __future__ import annotations

from core.fleet.events import SpeakerEvent
from core.fleet.model import Verdict
from core.fleet.state import FleetState, MediaFacts
from tests.fleet.builders import CONNECTED, address, make_facts, transport

T0 = 1_000.0


def fleet(*numbers: int) -> FleetState:
    state = FleetState()
    state.set_source(CONNECTED, T0)
    state.update({make_facts(n).path: make_facts(n) for n in numbers}, T0)
    return state


def verdict(state: FleetState, n: int) -> Verdict:
    return state.speakers[make_facts(n).path].verdict


def test_media_flowing_keeps_streaming_and_shows_the_rate() -> None:
    state = fleet(1)
    state.set_media({address(1): MediaFacts(71.5, T0 + 0.9)}, T0 + 1.0)
    speaker = state.speakers[make_facts(1).path]
    assert speaker.verdict == Verdict.STREAMING
    assert speaker.media_pps == 71.5


def test_active_transport_without_media_for_a_second_is_stalled() -> None:
    state = fleet(1, 2)
    state.set_media(
        {address(1): MediaFacts(70.0, T0 + 4.9), address(2): MediaFacts(0.0, T0 + 3.8)}, T0 + 5.0
    )
    assert verdict(state, 1) == Verdict.STREAMING
    assert verdict(state, 2) == Verdict.STALLED
    # Media again: streaming again.
    state.set_media(
        {address(1): MediaFacts(70.0, T0 + 5.9), address(2): MediaFacts(35.0, T0 + 5.95)}, T0 + 6
    )
    assert verdict(state, 2) == Verdict.STREAMING


def test_a_stream_that_just_started_gets_a_second_before_it_counts_as_stalled() -> None:
    state = fleet()
    idle = make_facts(3, transport=transport("idle", n=3))
    state.update({idle.path: idle}, T0)
    state.set_media({address(3): MediaFacts(0.0, None)}, T0 + 100)
    assert verdict(state, 3) == Verdict.CONNECTED_IDLE
    state.update({idle.path: make_facts(3)}, T0 + 200)  # transport goes active now
    state.set_media({address(3): MediaFacts(0.0, T0 + 50)}, T0 + 200.5)
    # Not judged yet, and not called streaming on HCI's account before a packet passed.
    assert verdict(state, 3) == Verdict.PENDING
    state.set_media({address(3): MediaFacts(0.0, T0 + 50)}, T0 + 201.1)
    assert verdict(state, 3) == Verdict.STALLED
    state.set_media({address(3): MediaFacts(30.0, T0 + 201.3)}, T0 + 201.4)
    assert verdict(state, 3) == Verdict.STREAMING


def test_an_address_hci_does_not_know_is_judged_by_bluez_alone() -> None:
    state = fleet(1)
    state.set_media({}, T0 + 30)
    speaker = state.speakers[make_facts(1).path]
    assert speaker.verdict == Verdict.STREAMING
    assert speaker.media_pps is None


def test_small_rate_jitter_makes_no_speaker_events() -> None:
    state = fleet(1)
    events = []
    for i, pps in enumerate([70.0, 71.0, 69.5, 72.0, 68.0, 70.5]):
        t = T0 + 1 + i * 0.5
        events += state.set_media({address(1): MediaFacts(pps, t)}, t)
    speaker_events = [e for e in events if isinstance(e, SpeakerEvent)]
    assert len(speaker_events) == 1  # the first rate only
    big = state.set_media({address(1): MediaFacts(20.0, T0 + 5)}, T0 + 5)
    assert [e.speaker.media_pps for e in big if isinstance(e, SpeakerEvent)] == [20.0]


def test_a_probe_miss_stalls_an_active_speaker_until_heard_again() -> None:
    state = fleet(1, 2)
    events = state.set_probe_missed(frozenset({address(2)}), T0 + 1)
    assert verdict(state, 2) == Verdict.STALLED
    assert verdict(state, 1) == Verdict.STREAMING
    assert any(isinstance(e, SpeakerEvent) for e in events)
    state.set_probe_missed(frozenset(), T0 + 2)
    assert verdict(state, 2) == Verdict.STREAMING


def test_silence_counts_from_when_the_hci_source_began_watching_the_link() -> None:
    """Active before we looked: a link watched for 5 s without one media packet is stalled;
    one watched for half a second is not judged yet."""
    state = fleet(1, 2)
    state.set_media(
        {address(1): MediaFacts(0.0, None, since=T0 - 5), address(2): MediaFacts(0.0, None, T0)},
        T0 + 0.5,
    )
    assert verdict(state, 1) == Verdict.STALLED
    assert verdict(state, 2) == Verdict.PENDING


def test_a_stream_restarted_after_the_probe_that_missed_it_is_not_stalled_by_it() -> None:
    """A resync after a probe missed the speaker: its new stream is not judged by the old
    probe (the next probe will say)."""
    state = fleet(1)
    state.set_probe_missed(frozenset({address(1)}), T0 + 10, probe_t=T0 + 9)
    assert verdict(state, 1) == Verdict.STALLED
    facts = make_facts(1)
    state.update({facts.path: make_facts(1, transport=transport("idle"))}, T0 + 20)
    state.update({facts.path: facts}, T0 + 22)  # active again after the resync
    assert verdict(state, 1) == Verdict.STREAMING


def test_until_the_hci_source_had_its_first_say_nothing_active_is_called_streaming() -> None:
    """Issue 11 §5: a `watch` snapshot taken before HCI caught up counted a stalled speaker
    as streaming. While the source is behind, an active transport is pending (media
    unknown); once it caught up, an address it cannot attribute is judged by BlueZ alone."""
    state = fleet()
    state.expect_media()
    state.update({make_facts(n).path: make_facts(n) for n in (1, 2)}, T0)
    idle = make_facts(3, transport=transport("idle", n=3))
    state.update({idle.path: idle}, T0)
    assert [verdict(state, n) for n in (1, 2, 3)] == [
        Verdict.PENDING,
        Verdict.PENDING,
        Verdict.CONNECTED_IDLE,
    ]
    assert state.counts().streaming == 0
    state.set_media({address(1): MediaFacts(0.0, None, since=T0 - 30)}, T0 + 0.2, ready=False)
    assert verdict(state, 2) == Verdict.PENDING
    state.set_media({address(1): MediaFacts(0.0, None, since=T0 - 30)}, T0 + 0.5)
    assert verdict(state, 1) == Verdict.STALLED  # watched 30 s, never a packet
    assert verdict(state, 2) == Verdict.STREAMING  # link predates the capture: BlueZ's word


def test_media_flowing_after_a_probe_miss_beats_it() -> None:
    """Issue 11 §5: a resynced speaker with 65 packets/s on HCI stayed `stalled` for
    minutes on an older probe miss. HCI media after the miss wins; without HCI, or with HCI
    silent too, the miss stands."""
    state = fleet(1, 2)
    state.set_media(
        {address(1): MediaFacts(65.0, T0 + 9.8), address(2): MediaFacts(65.0, T0 + 9.8)}, T0 + 10
    )
    state.set_probe_missed(frozenset({address(1), address(2)}), T0 + 14, probe_t=T0 + 13.5)
    assert verdict(state, 1) == Verdict.STALLED  # no packet since the probe played yet
    state.set_media(
        {address(1): MediaFacts(65.0, T0 + 14.4), address(2): MediaFacts(0.0, T0 + 9.8)}, T0 + 14.5
    )
    assert verdict(state, 1) == Verdict.STREAMING
    assert state.probe_miss_contradicted(address(1))
    assert verdict(state, 2) == Verdict.STALLED
    assert not state.probe_miss_contradicted(address(2))


def test_a_probe_of_some_speakers_keeps_the_others_misses() -> None:
    """A re-check probe of one speaker says nothing about the speakers it did not play to."""
    state = fleet(1, 2, 3)
    state.set_probe_missed(frozenset({address(1), address(2)}), T0 + 1)
    state.set_probe_missed(frozenset(), T0 + 5, probed=frozenset({address(1)}))
    assert [verdict(state, n) for n in (1, 2, 3)] == [
        Verdict.STREAMING,
        Verdict.STALLED,
        Verdict.STREAMING,
    ]
