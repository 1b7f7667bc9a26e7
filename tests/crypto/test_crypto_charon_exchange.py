"""Known-answer test against a real IKEv1 exchange between two strongSwan charon daemons.

Source: tests/data/charon-exchange/ (README.md there says exactly how it was recorded with
strongSwan 5.9.8 and tests/data/strongswan-pair.sh).  From the captured datagrams, the
pre-shared key in the initiator's swanctl.conf and the Diffie-Hellman secrets charon logged, the
test recomputes everything else with pyracoon.crypto and compares with charon's own log lines:
SKEYID, SKEYID_d/a/e, Ka, the IVs, HASH_I/HASH_R (also against the HASH payloads decrypted from
MM5/MM6), quick-mode HASH(1)/HASH(2), the informational HASH(1) and the ESP KEYMAT of both
directions.  A third recording uses RSA signatures: SIG_I / SIG_R are verified with the
certificates' public keys.

The ISAKMP parsing here is deliberately minimal (fixed header offsets and a generic-payload
walker): the real codec lives in pyracoon.wire, which this test must not depend on.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from pyracoon.crypto.algorithms import AUTH_ALGORITHMS, CIPHERS
from pyracoon.crypto.cbc import CbcState
from pyracoon.crypto.ciphers import BlockCipher, ike_key_length
from pyracoon.crypto.errors import HashMismatch, InvalidSignature
from pyracoon.crypto.hashes import (
    hash_i,
    hash_r,
    informational_hash,
    nat_d,
    quick_mode_hash1,
    quick_mode_hash2,
    verify_hash,
)
from pyracoon.crypto.keys import (
    derive_phase1_keys,
    derive_sa_keys,
    encryption_key,
    skeyid_psk,
    skeyid_sig,
)
from pyracoon.crypto.prf import prf_for
from pyracoon.crypto.signature import rsa_verify

DATA = Path(__file__).resolve().parent.parent / "data" / "charon-exchange"

# ISAKMP payload types (RFC 2408 section 3.1)
SA, KE, ID, HASH, NONCE, NOTIFY, NAT_D = 1, 4, 5, 8, 10, 11, 20
PROTO_IPSEC_ESP = 3


# ---------------------------------------------------------------- minimal parsers ---------


def udp_payloads(pcap: bytes) -> list[bytes]:
    """UDP payloads of a classic little-endian pcap of Ethernet/IPv4 frames."""
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", pcap, 0)
    assert magic == 0xA1B2C3D4 and linktype == 1
    offset, out = 24, []
    while offset < len(pcap):
        _, _, caplen, _ = struct.unpack_from("<IIII", pcap, offset)
        frame = pcap[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        assert frame[12:14] == b"\x08\x00" and frame[23] == 17  # IPv4, UDP
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl :]
        (udp_length,) = struct.unpack_from("!H", udp, 4)
        out.append(udp[8:udp_length])
    return out


@dataclass
class Message:
    raw: bytes
    cky_i: bytes
    cky_r: bytes
    next_payload: int
    exchange: int
    flags: int
    m_id: bytes
    body: bytes  # everything after the 28-byte header (encrypted if flags & 1)


def parse_header(raw: bytes) -> Message:
    length = int.from_bytes(raw[24:28], "big")
    assert length == len(raw)
    return Message(raw, raw[0:8], raw[8:16], raw[16], raw[18], raw[19], raw[20:24], raw[28:])


def walk(first: int, data: bytes) -> list[tuple[int, bytes, bytes]]:
    """[(type, whole payload incl. generic header, body)] until next-payload 0; padding ignored."""
    out, ptype, offset = [], first, 0
    while ptype:
        nxt, length = data[offset], int.from_bytes(data[offset + 2 : offset + 4], "big")
        out.append((ptype, data[offset : offset + length], data[offset + 4 : offset + length]))
        ptype, offset = nxt, offset + length
    return out


def body_of(payloads: list[tuple[int, bytes, bytes]], ptype: int, index: int = 0) -> bytes:
    return [body for t, _, body in payloads if t == ptype][index]


def after_hash(payloads: list[tuple[int, bytes, bytes]]) -> bytes:
    """The payloads following HASH, with their generic headers, as HASH(1)/(2) cover them."""
    assert payloads[0][0] == HASH
    return b"".join(whole for _, whole, _ in payloads[1:])


def proposal_spi(sa_body: bytes) -> tuple[int, bytes]:
    """(protocol id, SPI) of the first proposal of an IPsec DOI SA payload body."""
    proposal = sa_body[8:]  # DOI(4) situation(4)
    protocol, spi_size = proposal[5], proposal[6]
    return protocol, proposal[8 : 8 + spi_size]


def charon_dumps(log: str) -> list[tuple[str, bytes]]:
    """Every ``LABEL => N bytes @ addr`` hex dump of a charon log, in order."""
    dumps: list[tuple[str, bytes]] = []
    label, want, acc = "", 0, bytearray()
    for line in log.splitlines():
        head = re.search(r"> (.+?) => (\d+) bytes @", line)
        if head:
            label, want, acc = head.group(1), int(head.group(2)), bytearray()
            if want == 0:
                dumps.append((label, b""))
            continue
        row = re.search(r">\s+\d+: ((?:[0-9A-F]{2} ?)+)", line)
        if want and row:
            acc += bytes.fromhex(row.group(1)[: 3 * min(16, want - len(acc))].replace(" ", ""))
            if len(acc) == want:
                dumps.append((label, bytes(acc)))
                want = 0
    return dumps


def logged(dumps: list[tuple[str, bytes]], label: str, index: int = 0) -> bytes:
    return [value for name, value in dumps if name == label][index]


# ---------------------------------------------------------------- scenarios -----------------


@dataclass(frozen=True)
class Scenario:
    directory: str
    hash_id: int  # Oakley hash of the IKE SA
    ike_cipher: str
    ike_key_bits: int | None
    esp_cipher: str
    esp_key_bits: int | None
    esp_auth: str
    pfs: bool


SCENARIOS = [
    Scenario("psk-3des-sha1-modp1024", 2, "3des", None, "3des", None, "hmac-sha1", False),
    Scenario(
        "psk-aes256-sha256-modp2048-pfs1536", 4, "aes", 256, "aes", 128, "hmac-sha256", True
    ),
]


@pytest.fixture(params=SCENARIOS, ids=lambda s: s.directory)
def exchange(request: pytest.FixtureRequest) -> tuple[Scenario, list[Message], list, bytes]:
    scenario: Scenario = request.param
    directory = DATA / scenario.directory
    messages = [parse_header(p) for p in udp_payloads((directory / "ike.pcap").read_bytes())]
    dumps = charon_dumps((directory / "initiator-charon.log").read_text())
    conf = (directory / "initiator-swanctl.conf").read_text()
    psk = re.search(r'secret = "([^"]*)"', conf).group(1).encode()  # type: ignore[union-attr]
    return scenario, messages, dumps, psk


def test_whole_exchange_matches_charon(exchange) -> None:
    scenario, messages, dumps, psk = exchange
    prf = prf_for(scenario.hash_id)
    mm1, mm2, mm3, mm4, mm5, mm6, qm1, qm2, info = messages
    assert [m.exchange for m in messages] == [2] * 6 + [32, 32, 5]
    cky_i, cky_r = mm2.cky_i, mm2.cky_r

    # ---- phase 1 keys: RFC 2409 section 5 ----
    sai_b = body_of(walk(mm1.next_payload, mm1.body), SA)
    p3, p4 = walk(mm3.next_payload, mm3.body), walk(mm4.next_payload, mm4.body)
    g_xi, ni_b = body_of(p3, KE), body_of(p3, NONCE)
    g_xr, nr_b = body_of(p4, KE), body_of(p4, NONCE)
    g_xy = logged(dumps, "shared Diffie Hellman secret")
    assert len(g_xy) == len(g_xi) == len(g_xr)

    # ---- NAT-D (RFC 3947 section 3.2): first the peer's address/port, then our own ----
    initiator, responder = bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2])
    assert [body for t, _, body in p3 if t == NAT_D] == [
        nat_d(prf, cky_i, cky_r, responder, 500),
        nat_d(prf, cky_i, cky_r, initiator, 500),
    ]

    skeyid = skeyid_psk(prf, psk, ni_b, nr_b)
    keys = derive_phase1_keys(prf, skeyid, g_xy, cky_i, cky_r)
    assert keys.skeyid == logged(dumps, "SKEYID")
    assert keys.skeyid_d == logged(dumps, "SKEYID_d")
    assert keys.skeyid_a == logged(dumps, "SKEYID_a")
    assert keys.skeyid_e == logged(dumps, "SKEYID_e")

    cipher_row = CIPHERS.by("name", scenario.ike_cipher)
    ka = encryption_key(prf, keys.skeyid_e, ike_key_length(cipher_row, scenario.ike_key_bits))
    assert ka == logged(dumps, "encryption key Ka")  # appendix B stretching for 3DES/SHA1
    phase1 = CbcState.for_phase1(BlockCipher(cipher_row, ka), prf, g_xi, g_xr)
    assert phase1.iv == logged(dumps, "initial IV")

    # ---- MM5 (initiator -> responder): ID, HASH_I ----
    assert mm5.flags & 1
    decrypted5 = phase1.decrypt(mm5.body)
    p5 = walk(mm5.next_payload, decrypted5.plaintext)
    assert [t for t, _, _ in p5][:2] == [ID, HASH]
    computed_hash_i = hash_i(prf, keys.skeyid, g_xi, g_xr, cky_i, cky_r, sai_b, body_of(p5, ID))
    verify_hash("HASH_I", body_of(p5, HASH), computed_hash_i)
    assert computed_hash_i == logged(dumps, "HASH_I")
    assert logged(dumps, "HASH_I data") == g_xi + g_xr + cky_i + cky_r + sai_b + body_of(p5, ID)
    phase1.commit(decrypted5)
    assert phase1.iv == logged(dumps, "next IV for MID 0", 0) == mm5.body[-len(phase1.iv) :]

    # ---- MM6 (responder -> initiator): ID, HASH_R ----
    decrypted6 = phase1.decrypt(mm6.body)
    p6 = walk(mm6.next_payload, decrypted6.plaintext)
    computed_hash_r = hash_r(prf, keys.skeyid, g_xr, g_xi, cky_r, cky_i, sai_b, body_of(p6, ID))
    verify_hash("HASH_R", body_of(p6, HASH), computed_hash_r)
    assert computed_hash_r == logged(dumps, "HASH_R")
    phase1.commit(decrypted6)
    assert phase1.iv == logged(dumps, "next IV for MID 0", 1)

    # ---- quick mode: IV = hash(last phase-1 block | M-ID), then CBC chaining ----
    quick = phase1.for_message_id(prf, qm1.m_id)
    mid = int.from_bytes(qm1.m_id, "big")
    assert quick.iv == logged(dumps, f"next IV for MID {mid}", 0)
    decrypted_q1 = quick.decrypt(qm1.body)
    q1 = walk(qm1.next_payload, decrypted_q1.plaintext)
    hash1 = quick_mode_hash1(prf, keys.skeyid_a, qm1.m_id, after_hash(q1))
    verify_hash("HASH(1)", body_of(q1, HASH), hash1)
    assert hash1 == logged(dumps, "Hash(1)")
    quick.commit(decrypted_q1)
    assert quick.iv == logged(dumps, f"next IV for MID {mid}", 1)

    decrypted_q2 = quick.decrypt(qm2.body)
    q2 = walk(qm2.next_payload, decrypted_q2.plaintext)
    qm_ni_b, qm_nr_b = body_of(q1, NONCE), body_of(q2, NONCE)
    hash2 = quick_mode_hash2(prf, keys.skeyid_a, qm2.m_id, qm_ni_b, after_hash(q2))
    verify_hash("HASH(2)", body_of(q2, HASH), hash2)
    assert hash2 == logged(dumps, "Hash(2)")
    quick.commit(decrypted_q2)
    assert quick.iv == logged(dumps, f"next IV for MID {mid}", 2)

    # ---- KEYMAT: RFC 2409 section 5.5; inbound from our SPI, outbound from the peer's ----
    protocol, spi_i = proposal_spi(body_of(q1, SA))
    _, spi_r = proposal_spi(body_of(q2, SA))
    assert protocol == PROTO_IPSEC_ESP
    g_qm_xy = None
    if scenario.pfs:
        g_qm_xy = logged(dumps, "DH secret")
        assert [t for t, _, _ in q1].count(KE) == 1
    esp = CIPHERS.by("name", scenario.esp_cipher)
    auth = AUTH_ALGORITHMS.by("name", scenario.esp_auth)
    sa_keys = derive_sa_keys(
        prf,
        keys.skeyid_d,
        protocol,
        our_spi=spi_i,
        peer_spi=spi_r,
        ni_b=qm_ni_b,
        nr_b=qm_nr_b,
        encryption_key_length=(scenario.esp_key_bits or esp.default_bits) // 8,
        authentication_key_length=auth.key_bits // 8,
        g_qm_xy=g_qm_xy,
    )
    assert sa_keys.inbound.spi == spi_i and sa_keys.outbound.spi == spi_r
    assert sa_keys.outbound.encryption_key == logged(dumps, "encryption initiator key")
    assert sa_keys.outbound.authentication_key == logged(dumps, "integrity initiator key")
    assert sa_keys.inbound.encryption_key == logged(dumps, "encryption responder key")
    assert sa_keys.inbound.authentication_key == logged(dumps, "integrity responder key")

    # ---- informational (N(NO_PROP)) under its own M-ID, IV from the phase-1 chain ----
    informational = phase1.for_message_id(prf, info.m_id)
    decrypted_info = informational.decrypt(info.body)
    pi = walk(info.next_payload, decrypted_info.plaintext)
    assert [t for t, _, _ in pi] == [HASH, NOTIFY]
    info_hash = informational_hash(prf, keys.skeyid_a, info.m_id, after_hash(pi))
    verify_hash("HASH(1)", body_of(pi, HASH), info_hash)
    assert info_hash == logged(dumps, "Hash", 0)


def test_tampered_mm5_fails_hash_and_keeps_iv(exchange) -> None:
    """A corrupted MM5 fails its HASH_I check, and the CBC state keeps its IV."""
    scenario, messages, dumps, psk = exchange
    prf = prf_for(scenario.hash_id)
    mm1, mm2, mm3, mm4, mm5 = messages[:5]
    p3, p4 = walk(mm3.next_payload, mm3.body), walk(mm4.next_payload, mm4.body)
    g_xi, g_xr = body_of(p3, KE), body_of(p4, KE)
    g_xy = logged(dumps, "shared Diffie Hellman secret")
    skeyid = skeyid_psk(prf, psk, body_of(p3, NONCE), body_of(p4, NONCE))
    keys = derive_phase1_keys(prf, skeyid, g_xy, mm2.cky_i, mm2.cky_r)
    row = CIPHERS.by("name", scenario.ike_cipher)
    ka = encryption_key(prf, keys.skeyid_e, ike_key_length(row, scenario.ike_key_bits))
    phase1 = CbcState.for_phase1(BlockCipher(row, ka), prf, g_xi, g_xr)
    iv_before = phase1.iv
    # The plaintext is ID (12 bytes: IPv4) then the HASH payload header (4) then HASH data from
    # offset 16.  Flipping ciphertext byte 16 garbles the plaintext block holding offset 16 and
    # flips one bit of the next one: both lie inside the HASH data for 3DES and AES blocks.
    tampered = bytearray(mm5.body)
    tampered[16] ^= 0x01
    decrypted = phase1.decrypt(bytes(tampered))
    p5 = walk(mm5.next_payload, decrypted.plaintext)
    sai_b = body_of(walk(mm1.next_payload, mm1.body), SA)
    assert len(body_of(p5, ID)) == 8  # type|proto|port + IPv4 address: ID survived intact
    computed = hash_i(prf, keys.skeyid, g_xi, g_xr, mm2.cky_i, mm2.cky_r, sai_b, body_of(p5, ID))
    assert computed == logged(dumps, "HASH_I")
    with pytest.raises(HashMismatch) as excinfo:
        verify_hash("HASH_I", body_of(p5, HASH), computed)
    assert excinfo.value.field == "HASH_I"
    assert phase1.iv == iv_before  # a message that does not check out is never committed


# ---------------------------------------------------------------- RSA signatures -----------

FRAGMENT = 132  # Cisco-style IKEv1 fragmentation payload (strongSwan "fragmentation = yes")
CERT, SIG = 6, 9


def reassemble(messages: list[Message]) -> list[Message]:
    """Replace runs of FRAG payloads by the whole message they carry (id 2, num 1, flags 1)."""
    out: list[Message] = []
    pending: list[bytes] = []
    for message in messages:
        if message.next_payload != FRAGMENT:
            out.append(message)
            continue
        fragment = message.body
        length = int.from_bytes(fragment[2:4], "big")
        pending.append(fragment[8:length])
        if fragment[7] & 0x01:  # last fragment
            out.append(parse_header(b"".join(pending)))
            pending = []
    return out


def test_rsa_signature_exchange_matches_charon() -> None:
    """Main mode with X.509 RSA signatures: SKEYID = prf(Ni_b | Nr_b, g^xy), and SIG_I / SIG_R
    are PKCS#1 v1.5 over HASH_I / HASH_R without DigestInfo (RFC 2409 section 5.1), checked
    with the certificates' public keys.  Recorded like the PSK runs with AUTH=rsasig (see
    README.md); MM5 was sent as two IKE fragments."""
    directory = DATA / "rsasig-3des-sha1-modp1024"
    raw = [parse_header(p) for p in udp_payloads((directory / "ike.pcap").read_bytes())]
    messages = reassemble(raw)
    mm1, mm2, mm3, mm4, mm5, mm6 = messages[:6]
    dumps = charon_dumps((directory / "initiator-charon.log").read_text())
    prf = prf_for(2)
    cky_i, cky_r = mm2.cky_i, mm2.cky_r
    sai_b = body_of(walk(mm1.next_payload, mm1.body), SA)
    p3, p4 = walk(mm3.next_payload, mm3.body), walk(mm4.next_payload, mm4.body)
    g_xi, ni_b = body_of(p3, KE), body_of(p3, NONCE)
    g_xr, nr_b = body_of(p4, KE), body_of(p4, NONCE)
    g_xy = logged(dumps, "shared Diffie Hellman secret")

    skeyid = skeyid_sig(prf, ni_b, nr_b, g_xy)
    assert skeyid == logged(dumps, "SKEYID")
    keys = derive_phase1_keys(prf, skeyid, g_xy, cky_i, cky_r)
    row = CIPHERS.by("name", "3des")
    ka = encryption_key(prf, keys.skeyid_e, ike_key_length(row, None))
    phase1 = CbcState.for_phase1(BlockCipher(row, ka), prf, g_xi, g_xr)

    def public_key(name: str):
        return x509.load_pem_x509_certificate((directory / name).read_bytes()).public_key()

    decrypted5 = phase1.decrypt(mm5.body)
    p5 = walk(mm5.next_payload, decrypted5.plaintext)
    assert [t for t, _, _ in p5][:3] == [ID, CERT, SIG]
    computed_hash_i = hash_i(prf, skeyid, g_xi, g_xr, cky_i, cky_r, sai_b, body_of(p5, ID))
    assert computed_hash_i == logged(dumps, "HASH_I")
    rsa_verify(public_key("hostA.crt"), computed_hash_i, body_of(p5, SIG))
    phase1.commit(decrypted5)

    decrypted6 = phase1.decrypt(mm6.body)
    p6 = walk(mm6.next_payload, decrypted6.plaintext)
    computed_hash_r = hash_r(prf, skeyid, g_xr, g_xi, cky_r, cky_i, sai_b, body_of(p6, ID))
    assert computed_hash_r == logged(dumps, "HASH_R")
    rsa_verify(public_key("hostB.crt"), computed_hash_r, body_of(p6, SIG))
    # the initiator's key does not verify the responder's signature
    with pytest.raises(InvalidSignature):
        rsa_verify(public_key("hostA.crt"), computed_hash_r, body_of(p6, SIG))
