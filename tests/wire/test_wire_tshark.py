"""Cross-check our encoder with Wireshark's ISAKMP dissector (skipped without tshark).

Messages we encode are wrapped in pcap/Ethernet/IPv4/UDP framing built here
(127.0.0.1 -> 127.0.0.2, port 500; nothing is sent anywhere), then read back
with ``tshark -r``: tshark must flag nothing as malformed and must see exactly
the payload types we put in, nested Proposal/Transform payloads included.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from wire_samples import sample_messages

from pyracoon.wire import SA, IDType, Message, NotifyType, encode_message

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

EXPERT_WARNING = 0x00600000  # Wireshark's PI_WARN; PI_ERROR is 0x00800000


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def udp_frame(payload: bytes, ident: int) -> bytes:
    """Ethernet + IPv4 + UDP (checksum 0 = none, legal over IPv4) around one datagram."""
    udp = struct.pack("!HHHH", 500, 500, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        ident,
        0x4000,
        64,
        17,
        0,
        bytes([127, 0, 0, 1]),
        bytes([127, 0, 0, 2]),
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ethernet = bytes([0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1]) + b"\x08\x00"
    return ethernet + ip + udp


def write_pcap(path: Path, datagrams: list[bytes]) -> None:
    # classic libpcap: magic, version 2.4, thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, d in enumerate(datagrams):
        frame = udp_frame(d, i + 1)
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def expected_types(msg: Message) -> list[int]:
    """Payload types in dissection order: SA expands into its Proposals and Transforms."""
    if msg.encrypted is not None:
        return []
    types: list[int] = []
    for p in msg.payloads:
        types.append(p.type)
        if isinstance(p, SA):
            for prop in p.proposals:
                types.append(2)
                types.extend(3 for _ in prop.transforms)
    return types


def test_tshark_dissects_our_messages_cleanly(tmp_path: Path) -> None:
    msgs = sample_messages()
    pcap = tmp_path / "ours.pcap"
    write_pcap(pcap, [encode_message(m) for m in msgs])
    result = subprocess.run(
        [
            TSHARK,
            "-n",
            "-r",
            str(pcap),
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            "-e",
            "frame.number",
            "-e",
            "isakmp.exchangetype",
            "-e",
            "isakmp.typepayload",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.malformed",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(msgs)
    for msg, (number, etype, types, severity, malformed) in zip(msgs, rows, strict=True):
        where = f"frame {number} ({msg.summary()})"
        assert malformed == "", where
        assert all(int(s) < EXPERT_WARNING for s in severity.split("|") if s), where
        assert int(etype) == msg.exchange_type, where
        assert [int(t) for t in types.split("|") if t] == expected_types(msg), where


def test_tshark_verbose_names_our_payloads(tmp_path: Path) -> None:
    pcap = tmp_path / "ours.pcap"
    write_pcap(pcap, [encode_message(m) for m in sample_messages()])
    text = subprocess.run(
        [TSHARK, "-n", "-r", str(pcap), "-V"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Malformed" not in text
    for name in (
        "Security Association (1)",
        "Key Exchange (4)",
        "Identification (5)",
        "Certificate (6)",
        "Certificate Request (7)",
        "Hash (8)",
        "Signature (9)",
        "Nonce (10)",
        "Notification (11)",
        "Delete (12)",
        "Vendor ID (13)",
        "NAT-D (RFC 3947) (20)",
        "NAT-OA (RFC 3947) (21)",
        "Attributes (14)",
    ):
        assert f"Payload: {name}" in text, name
    # Wireshark's names for our numbers agree with ours (it drops the ID_ prefix)
    for notify in (
        NotifyType.R_U_THERE,
        NotifyType.INITIAL_CONTACT,
        NotifyType.RESPONDER_LIFETIME,
        NotifyType.NO_PROPOSAL_CHOSEN,
    ):
        assert f"Notify Message Type: {notify} ({int(notify)})" in text
    for id_type in IDType:
        assert f"ID type: {str(id_type).removeprefix('ID_')} ({int(id_type)})" in text
