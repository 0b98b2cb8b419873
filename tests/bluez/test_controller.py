"""core.bluez.control.Controller in this process against the fake BlueZ on a private bus: every
way a resync, connect or disconnect can end (DESIGN §4.1, §4.2, §5)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from core.bluez.control import Controller
from core.sim.fake_bluez import FakeBluez, SimDevice
from tests.bluez.rig import (
    AUTO,
    BOUNCY,
    DARK,
    DUAL,
    FAST,
    GHOST,
    OFF,
    ONCE,
    PLAYER,
    PLAYER2,
    QUIET,
    SLOW,
    UNKNOWN,
    fleet,
)
from tests.conftest import wait_for

pytestmark = pytest.mark.dbus

ALREADY = "org.bluez.Error.AlreadyConnected"
IN_PROGRESS = "org.bluez.Error.InProgress"
FAILED = "org.bluez.Error.Failed"


async def test_resync_of_a_ghost_connected_speaker_brings_it_back_streaming(rig) -> None:
    r = await rig()
    assert r.speaker(GHOST).verdict == "connected-idle"
    result = await r.act("resync", GHOST)
    assert (result["result"], result["detail"]) == ("ok", None), result
    assert result["message"] == "streaming again"
    assert r.speaker(GHOST).verdict == "streaming"
    assert r.calls(GHOST) == [("Disconnect", "ok"), ("Connect", "ok")]
    assert r.steps(GHOST) == [
        "disconnecting…",
        "disconnected; settling…",
        "reconnecting…",
        "waiting for A2DP…",
        "waiting for audio…",
    ]
    # The link went down at our request: reason local, and no dropout for it.
    down = [d for d in r.records(GHOST, "device") if not d["connected"]]
    assert [d["reason"] for d in down] == ["local"]
    assert r.records(GHOST, "dropout") == []
    # The action event is published (so it reaches the log) and steps are cleared.
    assert r.records(GHOST, "action") == [result]
    assert GHOST not in r.controller.steps
    assert (r.steps(GHOST), r.progress[-1]) and r.progress[-1] == (GHOST, "")


async def test_resync_when_the_speaker_came_back_before_our_connect(rig) -> None:
    """The speaker reconnects by itself right after our Disconnect: Connect answers
    AlreadyConnected, which is what the operator wanted (exit 0 in the CLI)."""
    r = await rig()
    result = await r.act("resync", BOUNCY)
    assert result["result"] == "ok", result
    assert r.calls(BOUNCY) == [("Disconnect", "ok"), ("Connect", ALREADY)]
    assert result["detail"] == ALREADY
    assert result["message"] == "it had reconnected by itself; streaming again"
    assert r.speaker(BOUNCY).verdict == "streaming"


async def test_connect_answered_in_progress_waits_for_bluetoothds_own_connect(rig) -> None:
    """bluetoothd is paging the speaker after a link loss (ReconnectAttempts): our Connect
    gets InProgress, and the action waits for bluetoothd instead of failing."""
    r = await rig()
    r.fake.drop_link(AUTO)
    await wait_for(lambda: not r.speaker(AUTO).connected, message="Auto down")
    assert AUTO in r.fake._busy  # bluetoothd pages it for 0.5 s
    result = await r.act("connect", AUTO)
    assert result["result"] == "ok", result
    assert r.calls(AUTO) == [("Connect", IN_PROGRESS)]
    assert result["detail"] == "br-connection-busy"
    assert result["message"] == "BlueZ connected it by itself; streaming"
    assert "BlueZ is already connecting it; waiting…" in r.steps(AUTO)
    assert r.speaker(AUTO).verdict == "streaming"


async def test_page_timeout_every_time_fails_after_the_retries(rig) -> None:
    r = await rig()
    result = await r.act("resync", OFF)
    assert result["result"] == "error"
    assert result["detail"] == "br-connection-page-timeout"
    assert "did not answer" in result["message"]
    assert "tried 3 times" in result["message"]
    assert r.calls(OFF) == [("Connect", FAILED)] * 3
    assert [s for s in r.steps(OFF) if s.startswith("reconnecting")] == [
        "reconnecting…",
        "reconnecting 2/3…",
        "reconnecting 3/3…",
    ]
    assert not r.speaker(OFF).connected


async def test_page_timeout_on_the_first_attempt_only_succeeds_on_the_retry(rig) -> None:
    r = await rig()
    result = await r.act("connect", ONCE)
    assert (result["result"], result["message"]) == ("ok", "streaming"), result
    assert r.calls(ONCE) == [("Connect", FAILED), ("Connect", "ok")]
    assert "connecting 2/3…" in r.steps(ONCE)
    assert "connecting 3/3…" not in r.steps(ONCE)
    assert r.speaker(ONCE).verdict == "streaming"


async def test_connect_without_a2dp_falls_back_to_connect_profile(rig) -> None:
    r = await rig()
    result = await r.act("connect", DUAL)
    assert result["result"] == "ok", result
    assert r.calls(DUAL) == [("Connect", "ok"), ("ConnectProfile", "ok")]
    assert result["message"] == "A2DP needed its own ConnectProfile; streaming"
    assert r.steps(DUAL)[-3:] == ["waiting for A2DP…", "connecting A2DP…", "waiting for audio…"]
    assert r.speaker(DUAL).verdict == "streaming"


async def test_a_speaker_whose_a2dp_never_comes_up_fails_with_bluezs_words(rig) -> None:
    def build(fake: FakeBluez) -> None:
        fleet(fake)
        fake.add_device(SimDevice("10:00:00:00:00:0C", "Patio", has_a2dp=False))

    r = await rig(build)
    result = await r.act("resync", "10:00:00:00:00:0C")
    assert (result["result"], result["detail"]) == ("error", "br-connection-profile-unavailable")
    assert result["message"] == "the speaker offers no audio profile right now"


async def test_adapter_powered_off_is_not_ready(rig) -> None:
    r = await rig()
    result = await r.act("connect", DARK)
    assert result["result"] == "error"
    assert result["detail"] == "br-connection-adapter-not-powered"
    assert "powered off" in result["message"] and "bluetoothctl power on" in result["message"]
    assert r.calls(DARK) == [("Connect", "org.bluez.Error.NotReady")]  # not retried


async def test_connected_but_the_audio_server_never_streams_to_it(rig) -> None:
    r = await rig(timeouts=replace(FAST, active_s=0.5))
    result = await r.act("connect", QUIET)
    assert (result["result"], result["detail"]) == ("error", "transport-idle")
    assert "no audio is sent to it" in result["message"]
    assert r.speaker(QUIET).verdict == "connected-idle"


async def test_nothing_playing_anywhere_is_done_once_a2dp_is_up(rig) -> None:
    def build(fake: FakeBluez) -> None:
        fake.add_adapter("hci0", "B8:27:EB:00:00:01")
        fake.add_device(SimDevice(QUIET, "Quiet", plays=False, connected=False))

    r = await rig(build)
    result = await r.act("connect", QUIET)
    assert result["result"] == "ok", result
    assert "nothing is playing" in result["message"]


async def test_disconnect_is_local_and_not_a_dropout(rig) -> None:
    r = await rig()
    assert r.speaker(PLAYER).verdict == "streaming"
    result = await r.act("disconnect", PLAYER)
    assert (result["result"], result["message"]) == ("ok", "disconnected"), result
    assert not r.speaker(PLAYER).connected
    first_down = next(d for d in r.records(PLAYER, "device") if not d["connected"])
    assert first_down["reason"] == "local"
    # Even once pending transport losses are confirmed, nothing counts as a dropout.
    assert r.monitor.detector.tick(r.monitor.clock() + 60) == []
    assert r.records(PLAYER, "dropout") == []
    assert r.monitor.detector.dropouts(PLAYER) == []
    # The same loss not caused by us is one (so this test can tell them apart).
    r.fake.drop_link(PLAYER2)
    await wait_for(lambda: r.records(PLAYER2, "dropout"), message="Player Two's dropout")
    assert r.records(PLAYER2, "dropout")[0]["kind"] == "link"
    # Disconnecting what is already down is done at once.
    again = await r.act("disconnect", PLAYER)
    assert (again["result"], again["detail"]) == ("ok", "not-connected")


async def test_disconnect_racing_a_link_loss_is_done(rig) -> None:
    """The speaker drops by itself just as we ask: BlueZ answers NotConnected, which is done."""
    r = await rig()
    assert r.speaker(PLAYER).connected
    # BlueZ already knows the link is gone; its signals reach us a moment later.
    r.fake.devices[PLAYER].connected = False
    asyncio.get_running_loop().call_later(
        0.2, lambda: (setattr(r.fake.devices[PLAYER], "connected", True), r.fake.drop_link(PLAYER))
    )
    result = await r.act("disconnect", PLAYER)
    assert (result["result"], result["message"]) == ("ok", "disconnected"), result
    assert ("Disconnect", "org.bluez.Error.NotConnected") in r.calls(PLAYER)
    assert not r.speaker(PLAYER).connected


async def test_unknown_address_is_an_error_event(rig) -> None:
    r = await rig()
    result = await r.act("resync", UNKNOWN)
    assert (result["result"], result["detail"]) == ("error", "unknown-address")
    assert "no paired speaker" in result["message"]
    assert r.fake.calls == []


async def test_cancel_ends_the_action_as_cancelled(rig) -> None:
    r = await rig()
    task = r.controller.start("connect", SLOW)
    assert task is not None
    await wait_for(lambda: SLOW in r.fake._busy, message="Slow paging")
    task.cancel()
    event = await asyncio.wait_for(task, 5)
    assert (event.result, event.detail) == ("error", "cancelled")
    assert event.message == "cancelled by the operator"
    assert r.records(SLOW, "action") == [event.to_json()]
    assert not r.controller.busy(SLOW)
    assert SLOW not in r.controller.steps


async def test_controller_cancel_names_why(rig) -> None:
    r = await rig()
    assert r.controller.cancel(SLOW) is False  # nothing runs
    task = r.controller.start("connect", SLOW)
    assert task is not None
    await wait_for(lambda: SLOW in r.fake._busy, message="Slow paging")
    assert r.controller.cancel(SLOW.lower(), "timeout", "did not finish within 1 s")
    event = await asyncio.wait_for(task, 5)
    assert (event.result, event.detail, event.message) == (
        "error",
        "timeout",
        "did not finish within 1 s",
    )


async def test_one_action_per_speaker_at_a_time(rig) -> None:
    r = await rig()
    first = r.controller.start("connect", SLOW)
    assert first is not None
    assert r.controller.busy(SLOW) and r.controller.busy(SLOW.lower())
    assert r.controller.start("resync", SLOW) is None
    assert r.controller.start("disconnect", SLOW.lower()) is None
    other = r.controller.start("resync", GHOST)  # another speaker may act meanwhile
    assert other is not None
    assert (await asyncio.wait_for(other, 10)).result == "ok"
    r.controller.cancel(SLOW)
    await asyncio.wait_for(first, 5)
    assert not r.controller.busy(SLOW)
    # Cancelled before its first step: the task is cancelled, and its event still goes out.
    again = r.controller.start("connect", SLOW)
    assert again is not None
    again.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(again, 5)
    assert r.records(SLOW, "action")[-1]["detail"] == "cancelled"
    assert len(r.records(SLOW, "action")) == 2
    with pytest.raises(ValueError):
        r.controller.start("probe-everything", SLOW)


@pytest.mark.parametrize("when", ["in a call", "in a wait"])
async def test_bluetoothd_restart_mid_action_is_a_clear_error(rig, when: str) -> None:
    """BlueZ leaving ends the action at once, not when a step's (long) limit runs out."""
    r = await rig(timeouts=replace(FAST, call_s=10.0, transport_s=10.0))
    address, step = (SLOW, "connecting…") if when == "in a call" else (DUAL, "waiting for A2DP…")
    task = r.controller.start("connect", address)
    assert task is not None
    await wait_for(lambda: r.controller.steps.get(address) == step, message=step)
    stopped = time.monotonic()
    await r.service.stop()
    event = await asyncio.wait_for(task, 5)
    assert time.monotonic() - stopped < 1.0
    assert (event.result, event.detail) == ("error", "bluez-restarted"), event
    assert "bluetoothd stopped or restarted" in event.message


async def test_a_controller_on_a_bus_without_bluez(private_bus) -> None:
    from core.monitor import Monitor

    monitor = Monitor(private_bus)
    running = asyncio.create_task(monitor.run())
    try:
        await wait_for(lambda: monitor.state.source.state.value == "waiting", message="waiting")
        event = await Controller(monitor).run("connect", GHOST)
        assert (event.result, event.detail) == ("error", "no-bluez")
        assert "not running" in event.message
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
