"""The capture checks themselves: a retransmission is recognised, a broken message is caught."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import require
from interop_tshark import check_capture, retransmissions


def isakmp(exchange: int = 5, flags: int = 0, body: bytes = b"") -> bytes:
    """A bare ISAKMP header (RFC 2408 3.1) with no payloads, plus ``body``."""
    return (
        struct.pack(
            "!8s8sBBBBII", b"\x11" * 8, b"\x22" * 8, 0, 0x10, exchange, flags, 0, 28 + len(body)
        )
        + body
    )


def frame(payload: bytes, ident: int) -> bytes:
    udp = struct.pack("!HHHH", 500, 500, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0x4000, 64, 17, 0,
        bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2]),
    )  # fmt: skip
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp


def pcap(path: Path, frames: list[bytes]) -> Path:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_800_000_000 + i, 0, len(f), len(f)) + f
    path.write_bytes(out)
    return path


@pytest.fixture(autouse=True)
def _tshark() -> None:
    require("tshark")


def test_a_byte_identical_copy_is_a_retransmission(tmp_path: Path) -> None:
    msg = isakmp()
    cap = pcap(tmp_path / "r.pcap", [frame(msg, 1), frame(isakmp(4), 2), frame(msg, 3)])
    assert retransmissions(cap) == [3]  # a different IP ID does not matter, the payload does


def test_a_message_whose_length_lies_is_reported(tmp_path: Path) -> None:
    bad = bytearray(isakmp())
    bad[24:28] = struct.pack("!I", 200)  # claims 200 bytes, carries 28
    cap = pcap(tmp_path / "m.pcap", [frame(bytes(bad), 1)])
    keylog = tmp_path / "keys"
    keylog.write_text("")
    with pytest.raises(AssertionError, match="tshark: "):
        check_capture(cap, keylog, quick_mode=False, encrypted=False)


def test_a_clean_capture_passes(tmp_path: Path) -> None:
    cap = pcap(tmp_path / "c.pcap", [frame(isakmp(), 1)])
    keylog = tmp_path / "keys"
    keylog.write_text("")
    assert "Internet Security Association" in check_capture(
        cap, keylog, quick_mode=False, encrypted=False
    )


def test_a_key_log_wireshark_cannot_load_is_an_error(tmp_path: Path) -> None:
    cap = pcap(tmp_path / "k.pcap", [frame(isakmp(), 1)])
    keylog = tmp_path / "keys"
    keylog.write_text("# header\n0011,00112233\n")  # a 2-byte cookie
    with pytest.raises(AssertionError, match="Error loading table"):
        check_capture(cap, keylog, quick_mode=False, encrypted=False)
