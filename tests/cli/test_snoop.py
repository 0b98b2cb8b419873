"""`btmon-tui snoop FILE [--json]` as a real subprocess (DESIGN §4.5)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, run_cli
from tests.hci.session import seed_case

LEFT, RIGHT = "00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02"


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_case().save(tmp_path_factory.mktemp("snoop") / "seed.btsnoop")


def test_snoop_json(seed: Path) -> None:
    result = run_cli("snoop", str(seed), "--json")
    assert result.returncode == 0, result.stderr
    (data,) = result.json_lines()
    assert set(data) >= {"file", "datalink", "records", "duration_s", "devices", "warnings"}
    assert data["file"] == str(seed) and data["datalink"] == 2001 and data["warnings"] == []
    devices = {d["address"]: d for d in data["devices"]}
    assert devices[LEFT]["media_packets_tx"] == 2843
    assert devices[RIGHT]["media_packets_tx"] == 17
    assert set(devices[LEFT]) == {
        "address",
        "name",
        "codec",
        "media_packets_tx",
        "media_packets_rx",
        "media_bytes_tx",
        "streams",
        "max_gap_ms",
    }
    assert result.stderr == ""


def test_snoop_table_says_connected_but_starved(seed: Path) -> None:
    result = run_cli("snoop", str(seed))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Linux monitor" in lines[0] and "records" in lines[0]
    right = next(line for line in lines if line.startswith(RIGHT))
    assert "Stage Right" in right and "AAC" in right and "connected but starved" in right
    left = next(line for line in lines if line.startswith(LEFT))
    assert "2843" in left and "starved" not in left


def test_snoop_truncated_reports_and_warns(seed: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.btsnoop"
    cut.write_bytes(seed.read_bytes()[:-5])
    result = run_cli("snoop", str(cut), "--json")
    assert result.returncode == 0
    (data,) = result.json_lines()
    assert any(w.startswith("truncated") for w in data["warnings"])
    assert any("warning: truncated" in line for line in result.stderr_lines())


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        (b"hello, not a capture\n", "not a btsnoop file"),
        (b"btsnoop\0" + struct.pack(">II", 1, 1000), "unsupported btsnoop datalink 1000"),
        (b"btsnoop\0" + struct.pack(">II", 2, 1002), "unsupported btsnoop version 2"),
    ],
)
def test_snoop_bad_input_exits_2_with_one_line(
    tmp_path: Path, content: bytes | None, words: str
) -> None:
    path = tmp_path / "input.btsnoop"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("snoop", str(path), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr_lines()
    assert line.startswith("btmon-tui: error: ") and words in line


def test_snoop_directory_exits_2(tmp_path: Path) -> None:
    result = run_cli("snoop", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr_lines()) == 1


def test_snoop_stays_headless(seed: Path) -> None:
    """snoop must not import Textual (it runs where Textual is missing, and starts fast)."""
    code = (
        "import sys, tui.cli.main\n"
        f"rc = tui.cli.main.main(['snoop', {str(seed)!r}, '--json'])\n"
        "assert rc == 0, rc\n"
        "assert not any(m == 'textual' or m.startswith('textual.') for m in sys.modules)\n"
        "assert 'rich' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


def test_snoop_text_lists_the_disconnections_its_json_has(tmp_path: Path) -> None:
    """Issue 12 §11: the words and the JSON tell the same story, disconnections included."""
    from tests.hci.captures import handle_reuse

    path = handle_reuse().save(tmp_path / "reuse.btsnoop")
    (data,) = run_cli("snoop", str(path), "--json").json_lines()
    assert data["disconnections"], data
    text = run_cli("snoop", str(path))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    header = lines.index(f"disconnections ({len(data['disconnections'])}):")
    listed = lines[header + 1 :]
    assert len(listed) == len(data["disconnections"])
    for line, row in zip(listed, data["disconnections"], strict=True):
        assert row["address"] in line and str(row["reason"]) in line
