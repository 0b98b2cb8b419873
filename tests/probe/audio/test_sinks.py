"""Sink naming (no audio server needed) and the pactl listings against the private server."""

from __future__ import annotations

import pytest

from core.probe.audio import AudioError, list_sinks, list_sources, sink_for_address
from core.probe.sinks import require_sink, sink_names_for
from tests.probe.audio.conftest import SPEAKERS, PulseServer

ADDRESS = "00:1A:7D:DA:71:01"


def test_exact_names_of_both_servers() -> None:
    assert sink_names_for(ADDRESS) == (
        "bluez_sink.00_1A_7D_DA_71_01.a2dp_sink",
        "bluez_output.00_1A_7D_DA_71_01.1",
    )


@pytest.mark.parametrize(
    ("sinks", "expected"),
    [
        (["alsa_output.pci", "bluez_sink.00_1A_7D_DA_71_01.a2dp_sink"], 1),
        (["bluez_output.00_1A_7D_DA_71_01.1", "bluez_output.00_1A_7D_DA_71_02.1"], 0),
        # older PipeWire named the A2DP node after the profile
        (["bluez_output.00_1A_7D_DA_71_01.a2dp-sink"], 0),
        # some other sink carrying the address (a user's filter or combine sink)
        (["eq_for_00_1A_7D_DA_71_01"], 0),
        # PulseAudio's exact name wins over a looser match listed first
        (["bluez_output.00_1A_7D_DA_71_01.2", "bluez_sink.00_1A_7D_DA_71_01.a2dp_sink"], 1),
    ],
)
def test_sink_for_address(sinks: list[str], expected: int) -> None:
    assert sink_for_address(ADDRESS, sinks) == sinks[expected]
    assert sink_for_address(ADDRESS.lower(), sinks) == sinks[expected]


def test_no_sink_for_another_speaker() -> None:
    sinks = ["bluez_sink.00_1A_7D_DA_71_02.a2dp_sink", "alsa_output.pci"]
    assert sink_for_address(ADDRESS, sinks) is None
    with pytest.raises(AudioError) as caught:
        require_sink(ADDRESS, sinks)
    message = str(caught.value)
    assert "bluez_sink.00_1A_7D_DA_71_01.a2dp_sink" in message
    assert "bluez_output.00_1A_7D_DA_71_01.1" in message


def test_listings_from_the_server(pulse: PulseServer) -> None:
    sinks = list_sinks()
    assert {"room", *SPEAKERS} <= set(sinks)
    assert {"room.monitor", *(f"{s}.monitor" for s in SPEAKERS)} <= set(list_sources())


def test_no_server_is_a_clear_error(
    pulse: PulseServer, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/no-such-socket")
    with pytest.raises(AudioError, match=r"no audio server answered.*start pulseaudio"):
        list_sinks()
