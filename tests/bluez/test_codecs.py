"""decode_codec / is_known_codec / uuid_matches: the BlueZ codec and UUID facts of DESIGN §5."""

from __future__ import annotations

import pytest

from core.bluez.defs import (
    A2DP_SINK_UUID,
    A2DP_SOURCE_UUID,
    decode_codec,
    is_known_codec,
    uuid_matches,
)
from tests.fleet.builders import vendor_config

#: SBC's Configuration blob (44.1 kHz, joint stereo, 16 blocks, 8 subbands, bitpool 2..53).
SBC_CONFIG = bytes([0x21, 0x15, 0x02, 0x35])


@pytest.mark.parametrize(
    ("codec", "name"),
    [(0x00, "SBC"), (0x01, "MPEG-1,2"), (0x02, "AAC"), (0x04, "ATRAC"), (0x06, "LC3")],
)
def test_standard_codecs_by_codec_byte(codec: int, name: str) -> None:
    """The A2DP codec byte alone names a standard codec; Configuration does not matter."""
    assert decode_codec(codec, SBC_CONFIG) == name
    assert decode_codec(codec, None) == name
    assert is_known_codec(name)


@pytest.mark.parametrize(
    ("vendor_id", "codec_id", "name"),
    [
        (0x0000004F, 0x0001, "aptX"),
        (0x000000D7, 0x0024, "aptX HD"),
        (0x0000000A, 0x0002, "aptX LL"),
        (0x0000012D, 0x00AA, "LDAC"),
    ],
)
def test_vendor_codecs_from_configuration(vendor_id: int, codec_id: int, name: str) -> None:
    """Codec 0xFF: vendor id (LE32) + codec id (LE16) at the start of Configuration name it."""
    config = vendor_config(vendor_id, codec_id, tail=b"\x3c\x00\x00")
    assert decode_codec(0xFF, config) == name
    assert is_known_codec(name)


def test_vendor_ids_are_little_endian() -> None:
    """LDAC's bytes on the wire are 2d 01 00 00 aa 00; read big-endian they would mean nothing."""
    assert decode_codec(0xFF, bytes.fromhex("2d010000aa00")) == "LDAC"
    assert decode_codec(0xFF, bytes.fromhex("0000012d00aa")) != "LDAC"


def test_exactly_six_bytes_is_enough() -> None:
    """A blob with only vendor id and codec id (no codec-specific bytes) still decodes."""
    assert decode_codec(0xFF, vendor_config(0x4F, 0x01, tail=b"")) == "aptX"


def test_unknown_standard_codec_id() -> None:
    """An unassigned codec byte gives a readable fallback that is not a known codec."""
    name = decode_codec(0x05, None)
    assert name == "codec 0x05"
    assert not is_known_codec(name)


def test_unknown_vendor_codec() -> None:
    """An unknown (vendor, codec) pair is described by its ids, not mistaken for a known one."""
    name = decode_codec(0xFF, vendor_config(0x1234, 0x0042))
    assert name is not None
    assert name.startswith("vendor")
    assert "1234" in name and "0042" in name
    assert not is_known_codec(name)


def test_known_vendor_with_unknown_codec_id() -> None:
    """Qualcomm's vendor id with an unassigned codec id is not aptX."""
    name = decode_codec(0xFF, vendor_config(0x4F, 0x0099))
    assert name != "aptX"
    assert not is_known_codec(name)


@pytest.mark.parametrize(
    "config",
    [None, b"", bytes.fromhex("4f000000"), bytes.fromhex("4f00000001")],
    ids=["missing", "empty", "vendor-id-only", "five-bytes"],
)
def test_vendor_codec_with_short_or_missing_configuration(config: bytes | None) -> None:
    """Too little Configuration to read the ids gives the generic 'vendor', never an exception."""
    assert decode_codec(0xFF, config) == "vendor"
    assert not is_known_codec("vendor")


def test_no_codec_property() -> None:
    """A transport without a Codec property has no codec (None), whatever the Configuration."""
    assert decode_codec(None, None) is None
    assert decode_codec(None, vendor_config(0x4F, 0x01)) is None
    assert not is_known_codec(None)


@pytest.mark.parametrize(
    ("uuid", "reference", "expected"),
    [
        (A2DP_SINK_UUID, A2DP_SINK_UUID, True),
        ("0000110B-0000-1000-8000-00805F9B34FB", A2DP_SINK_UUID, True),
        ("110b", A2DP_SINK_UUID, True),
        ("110B", A2DP_SINK_UUID, True),
        ("110a", A2DP_SOURCE_UUID, True),
        ("110a", A2DP_SINK_UUID, False),
        (A2DP_SOURCE_UUID, A2DP_SINK_UUID, False),
        ("0000110b-0000-1000-8000-00805f9b34fc", A2DP_SINK_UUID, False),
    ],
)
def test_uuid_matches(uuid: str, reference: str, expected: bool) -> None:
    """UUIDs compare case-insensitively and the 16-bit short form expands to the SIG base."""
    assert uuid_matches(uuid, reference) is expected
