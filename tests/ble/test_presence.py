"""The pure parts of BLE presence: who counts as present, when scanning is refused or paused,
and one line for every way bleak can fail."""

from __future__ import annotations

import errno

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from core.ble import (
    PRESENT_WITHIN_S,
    BlePresence,
    BleScan,
    BleUnavailable,
    PresenceTable,
    _with_presence,
    adapter_name,
    explain,
    refusal,
)
from core.fleet.model import Speaker, Transport, Verdict


def speaker(name: str, adapter: str, state: str | None, n: int = 1) -> Speaker:
    return Speaker(
        path=f"/org/bluez/{adapter}/dev_{n}",
        address=f"AA:BB:CC:DD:EE:{n:02X}",
        name=name,
        adapter=adapter,
        paired=True,
        connected=True,
        is_speaker=True,
        verdict=Verdict.STREAMING,
        transport=Transport(path="t", state=state) if state else None,
        battery=None,
        media_pps=None,
        last_dropout=None,
        period_s=None,
        changed_t=0.0,
    )


def test_present_when_seen_within_ten_seconds() -> None:
    table = PresenceTable()
    assert PRESENT_WITHIN_S == 10.0
    assert not table.present("aa:bb:cc:dd:ee:01", 100.0)
    table.observe("aa:bb:cc:dd:ee:01", -61, 100.0)
    assert table.sighting("AA:BB:CC:DD:EE:01") is not None  # addresses in any case
    assert table.present("AA:BB:CC:DD:EE:01", 100.0)
    assert table.present("AA:BB:CC:DD:EE:01", 110.0)
    assert not table.present("AA:BB:CC:DD:EE:01", 110.01)
    table.observe("AA:BB:CC:DD:EE:01", -70, 110.0)  # a new advert renews presence
    assert table.present("AA:BB:CC:DD:EE:01", 119.0)
    assert table.sighting("AA:BB:CC:DD:EE:01").rssi == -70  # type: ignore[union-attr]
    table.observe("AA:BB:CC:DD:EE:02", -80, 105.0)
    assert table.present_set(116.0) == {"AA:BB:CC:DD:EE:01"}


def test_speaker_carries_rssi_while_present_and_last_seen_after() -> None:
    table = PresenceTable()
    bar = speaker("Bar", "hci1", "idle", n=1)
    assert _with_presence(bar, table, 0.0) is bar  # never seen: untouched
    table.observe(bar.address, -58, 50.0)
    shown = _with_presence(bar, table, 55.0)
    assert (shown.rssi, shown.ble_seen) == (-58, 50.0)
    gone = _with_presence(bar, table, 61.0)
    assert (gone.rssi, gone.ble_seen) == (None, 50.0)


def test_refusal_names_the_adapter_and_the_speakers_streaming_through_it() -> None:
    fleet = [
        speaker("Stage Right", "hci0", "active", 1),
        speaker("Stage Left", "hci0", "active", 2),
        speaker("Bar", "hci1", "idle", 3),
        speaker("Lobby", "hci1", "pending", 4),
        speaker("Patio", "hci1", None, 5),
    ]
    assert refusal("hci0", fleet) == (
        "not scanning for BLE on hci0: it streams A2DP to Stage Left, Stage Right, and "
        "scanning there makes the audio stutter; use another adapter with --ble, or add "
        "--ble-force"
    )
    assert refusal("hci1", fleet) is None  # idle, pending and no transport carry no audio
    assert refusal("hci2", fleet) is None


@pytest.mark.parametrize(
    ("text", "name"), [("hci0", "hci0"), ("/org/bluez/hci12", "hci12"), (" hci1 ", "hci1")]
)
def test_adapter_names(text: str, name: str) -> None:
    assert adapter_name(text) == name


@pytest.mark.parametrize("text", ["", "wlan0", "hci", "00:11:22:33:44:55", "hci0/dev_x"])
def test_bad_adapter_names(text: str) -> None:
    with pytest.raises(ValueError, match="name a Bluetooth adapter such as hci0"):
        adapter_name(text)


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["no org.bluez"]),
            "BLE off on hci1: BlueZ is not running (sudo systemctl start bluetooth)",
        ),
        (
            BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", ["policy"]),
            "BLE off on hci1: permission denied by the D-Bus policy: run as root or as a user "
            "in group 'bluetooth'",
        ),
        (
            BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]),
            "BLE off on hci1: the adapter is powered off (bluetoothctl power on)",
        ),
        (
            BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]),
            "BLE off on hci1: BlueZ refused to scan: org.bluez.Error.InProgress "
            "(Operation already in progress)",
        ),
        (
            BleakError("adapter 'hci1' not found"),
            "BLE off on hci1: BlueZ has no adapter hci1 (see `bluetoothctl list`)",
        ),
        (
            BleakBluetoothNotAvailableError(
                "access denied", BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM
            ),
            "BLE off on hci1: access denied (denied_by_system)",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory"),
            "BLE off on hci1: no system D-Bus to reach BlueZ (No such file or directory): is "
            "dbus running? (sudo systemctl start dbus)",
        ),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            "BLE off on hci1: no system D-Bus to reach BlueZ (Connection refused): is dbus "
            "running? (sudo systemctl start dbus)",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied"),
            "BLE off on hci1: permission denied on the system bus (Permission denied): run as "
            "a user in group 'bluetooth' or with sudo",
        ),
        (TimeoutError(), "BLE off on hci1: BlueZ did not answer within 5 s"),
        (ValueError("odd"), "BLE off on hci1: ValueError: odd"),
    ],
)
def test_every_bleak_failure_is_one_line(exc: BaseException, line: str) -> None:
    assert explain(exc, "hci1") == line


class StubPresence(BlePresence):
    """A BlePresence that records start/stop instead of scanning; `fail` makes start fail."""

    def __init__(self, adapter: str, fail: str | None = None) -> None:
        super().__init__(adapter)
        self.fail = fail
        self.calls: list[str] = []
        self._running = False

    @property
    def scanning(self) -> bool:
        return self._running

    async def start(self) -> None:
        self.calls.append("start")
        if self.fail:
            raise BleUnavailable(self.fail)
        self._running = True

    async def stop(self) -> None:
        self.calls.append("stop")
        self._running = False


async def test_scan_refuses_an_adapter_that_streams() -> None:
    scan = BleScan(StubPresence("hci0"))
    status = await scan.follow([speaker("Stage Left", "hci0", "active")])
    assert scan.state == "refused" and scan.decided.is_set()
    assert status is not None and status.startswith("not scanning for BLE on hci0")
    assert scan.presence.calls == []  # type: ignore[attr-defined]
    # refused is final: nothing starts when the adapter falls silent later
    assert await scan.follow([speaker("Stage Left", "hci0", "idle")]) is None
    assert scan.presence.calls == []  # type: ignore[attr-defined]


async def test_forced_scan_runs_while_streaming_and_is_never_paused() -> None:
    scan = BleScan(StubPresence("hci0"), force=True)
    status = await scan.follow([speaker("Stage Left", "hci0", "active")])
    assert status == "BLE scanning on hci0 (forced: audio on it may stutter)"
    assert scan.state == "scanning"
    assert await scan.follow([speaker("Stage Left", "hci0", "active")]) is None
    assert scan.presence.calls == ["start"]  # type: ignore[attr-defined]


async def test_scan_pauses_when_a_speaker_starts_streaming_and_resumes_after() -> None:
    presence = StubPresence("hci1")
    scan = BleScan(presence)
    assert await scan.follow([speaker("Bar", "hci1", "idle")]) == "BLE scanning on hci1"
    assert await scan.follow([speaker("Bar", "hci1", "pending")]) is None  # not audio yet
    paused = await scan.follow([speaker("Bar", "hci1", "active")])
    assert paused == (
        "BLE scanning on hci1 paused: Bar started streaming through it (scanning would make "
        "the audio stutter)"
    )
    assert scan.state == "paused" and not presence.scanning
    assert await scan.follow([speaker("Bar", "hci1", "active")]) is None
    resumed = await scan.follow([speaker("Bar", "hci1", "idle")])
    assert resumed == "BLE scanning on hci1 resumed: nothing streams there"
    assert presence.calls == ["start", "stop", "start"]


async def test_scan_that_bleak_cannot_run_is_an_error_status() -> None:
    scan = BleScan(StubPresence("hci1", fail="BLE off on hci1: BlueZ is not running"))
    status = await scan.follow([])
    assert (scan.state, status) == ("error", "BLE off on hci1: BlueZ is not running")
    assert scan.decided.is_set()
    assert await scan.follow([]) is None  # no retry storm
