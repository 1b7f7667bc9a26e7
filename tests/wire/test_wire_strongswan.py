"""Real IKEv1 datagrams from strongSwan charon 5.9.8 (see tests/data/isakmp/README.md).

Every datagram must decode and re-encode byte for byte.  Encrypted ones are
decrypted here with the phase-1 key charon logged (AES-128-CBC; IVs derived as
RFC 2409 appendix B says, with `cryptography` directly so the test does not
depend on pyracoon.crypto) and their plaintext bodies decoded with
decode_payloads.  For PSK, HASH_I/HASH_R are recomputed from the decoded
payloads' body_bytes(): this proves SAi_b and IDii_b are exactly the bytes the
peer hashed.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wire_samples import real_captures, real_ike_datagrams

from pyracoon.wire import (
    KE,
    SA,
    AuthenticationAlgorithm,
    AuthenticationMethod,
    Cert,
    CertEncoding,
    EncapsulationMode,
    EncryptionAlgorithm,
    ESPTransformID,
    ExchangeType,
    Fragment,
    GroupDescription,
    Hash,
    HashAlgorithm,
    Identification,
    IDType,
    IPsecAttribute,
    Message,
    NatD,
    NattKind,
    Nonce,
    Notification,
    NotifyType,
    OakleyAttribute,
    PayloadType,
    ProtocolID,
    Signature,
    VendorID,
    chain_bytes,
    classify_natt,
    decode_message,
    decode_payloads,
    encode_message,
)

CAPTURES = {doc["scenario"]: doc for doc in real_captures()}
PACKETS = [
    pytest.param(raw, id=f"{name}-frame{frame}")
    for name, doc in CAPTURES.items()
    for frame, raw in real_ike_datagrams(doc)
]
RFC3947_VID = bytes.fromhex("4a131c81070358455c5728f20e95452f")
DPD_VID = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")


def test_all_scenarios_are_present() -> None:
    assert set(CAPTURES) == {
        "main-psk",
        "main-rsasig",
        "aggressive-psk",
        "aggressive-rsasig",
        "main-psk-natt",
    }


@pytest.mark.parametrize("raw", PACKETS)
def test_decode_and_reencode_byte_for_byte(raw: bytes) -> None:
    msg = decode_message(raw)
    assert encode_message(msg) == raw


def messages(name: str) -> list[Message]:
    """The scenario's datagrams, with IKE fragments (type 132) reassembled in place."""
    out: list[Message] = []
    pieces: list[Fragment] = []
    for _, raw in real_ike_datagrams(CAPTURES[name]):
        msg = decode_message(raw)
        frag = msg.find(Fragment)
        if frag is None:
            out.append(msg)
            continue
        assert len(msg.payloads) == 1 and not msg.flags
        pieces.append(frag)
        if frag.last:
            assert [f.number for f in pieces] == list(range(1, len(pieces) + 1))
            assert len({f.fragment_id for f in pieces}) == 1
            whole = b"".join(f.data for f in pieces)
            out.append(decode_message(whole))
            assert encode_message(out[-1]) == whole
            pieces = []
    return out


def names(payloads) -> list[str]:
    return [p.name for p in payloads]


def test_main_mode_plaintext_messages() -> None:
    mm = messages("main-psk")
    assert [m.exchange_type for m in mm[:6]] == [ExchangeType.IDENTITY_PROTECTION] * 6
    assert names(mm[0].payloads) == ["SA", "VID", "VID", "VID", "VID", "VID"]
    assert names(mm[1].payloads) == ["SA", "VID", "VID", "VID", "VID"]
    assert names(mm[2].payloads) == ["KE", "NONCE", "NAT-D", "NAT-D"]
    assert mm[0].responder_cookie == bytes(8) and mm[1].responder_cookie != bytes(8)
    vids = [v.data for v in mm[0].find_all(VendorID)]
    assert RFC3947_VID in vids and DPD_VID in vids
    assert all(len(n.data) == 20 for n in mm[2].find_all(NatD))  # SHA-1 NAT-D
    assert len(mm[2].find(KE).data) == 256  # modp2048
    assert [m.encrypted is not None for m in mm] == [False] * 4 + [True] * 5


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_phase1_sa_contents(name: str) -> None:
    sa = messages(name)[0].find(SA)
    assert isinstance(sa, SA)
    (prop,) = sa.proposals
    assert prop.protocol_id == ProtocolID.ISAKMP and prop.spi == b""
    (t,) = prop.transforms
    auth = (
        AuthenticationMethod.PRE_SHARED_KEY
        if "-psk" in name
        else AuthenticationMethod.RSA_SIGNATURES
    )
    want = {
        OakleyAttribute.ENCRYPTION_ALGORITHM: EncryptionAlgorithm.AES_CBC,
        OakleyAttribute.KEY_LENGTH: 128,
        OakleyAttribute.HASH_ALGORITHM: HashAlgorithm.SHA,
        OakleyAttribute.GROUP_DESCRIPTION: GroupDescription.MODP2048,
        OakleyAttribute.AUTHENTICATION_METHOD: auth,
    }
    for attr_type, value in want.items():
        attr = t.attribute(attr_type)
        assert attr is not None and attr.basic and attr.as_int == value


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def decrypt_all(name: str) -> list[tuple[Message, tuple]]:
    """Decrypt every encrypted message; return (message, decoded payloads) pairs in order.

    Phase 1 IV = SHA1(g^xi | g^xr) truncated, then CBC chaining across messages;
    each phase-2/informational M-ID starts from SHA1(last phase-1 block | M-ID),
    then chains within that M-ID (RFC 2409 appendix B).
    """
    doc = CAPTURES[name]
    key = bytes.fromhex(doc["encryption_key_ka"])
    msgs = messages(name)
    kes = [m.find(KE) for m in msgs if m.find(KE) is not None]
    iv = hashlib.sha1(kes[0].data + kes[1].data).digest()[:16]
    assert iv.hex() == doc["phase1_initial_iv"]
    phase1_last = b""
    per_msgid: dict[int, bytes] = {}
    out = []
    for m in msgs:
        if m.encrypted is None:
            out.append((m, m.payloads))
            continue
        ct = m.encrypted.ciphertext
        assert len(ct) % 16 == 0
        if m.message_id == 0:
            this_iv = iv
            iv = phase1_last = ct[-16:]
        else:
            this_iv = (
                per_msgid.get(m.message_id)
                or hashlib.sha1(phase1_last + m.message_id.to_bytes(4, "big")).digest()[:16]
            )
            per_msgid[m.message_id] = ct[-16:]
        body = decode_payloads(m.encrypted.next_payload, aes_cbc_decrypt(key, this_iv, ct))
        assert body.encode() == aes_cbc_decrypt(key, this_iv, ct)
        assert len(body.trailing) <= 16 and set(body.trailing) <= {0}  # charon: zero padding
        out.append((m, body.payloads))
    return out


EXPECTED = {
    "main-psk": [["ID", "HASH", "N"], ["ID", "HASH"]],
    "main-rsasig": [["ID", "CERT", "SIG", "CR", "N"], ["ID", "CERT", "SIG"]],
    "aggressive-psk": [["HASH", "NAT-D", "NAT-D"]],
    "aggressive-rsasig": [["CERT", "NAT-D", "NAT-D", "SIG"]],
    "main-psk-natt": [["ID", "HASH", "N"], ["ID", "HASH"]],
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_encrypted_bodies_decode(name: str) -> None:
    decrypted = [(m, ps) for m, ps in decrypt_all(name) if m.encrypted is not None]
    phase1 = [names(ps) for m, ps in decrypted if m.message_id == 0]
    assert phase1 == EXPECTED[name]
    quick = [ps for m, ps in decrypted if m.exchange_type == ExchangeType.QUICK]
    info = [ps for m, ps in decrypted if m.exchange_type == ExchangeType.INFORMATIONAL]
    natt = CAPTURES[name]["nat_traversal"]
    if natt:
        # libipsec installs the SAs: QM3 (HASH(3)) follows, no Informational
        assert [names(ps) for ps in quick] == [["HASH", "SA", "NONCE", "ID", "ID"]] * 2 + [["HASH"]]
        assert info == []
        quick = quick[:2]
    else:
        assert [names(ps) for ps in quick] == [["HASH", "SA", "NONCE", "ID", "ID"]] * 2
        assert [names(ps) for ps in info] == [["HASH", "N"]]
        # charon's initiator fails to install SAs on this kernel and says so (pair script)
        assert info[0][1].notify_type == NotifyType.NO_PROPOSAL_CHOSEN

    for ps in quick:
        sa = ps[1]
        (prop,) = sa.proposals
        assert prop.protocol_id == ProtocolID.IPSEC_ESP and len(prop.spi) == 4
        (t,) = prop.transforms
        assert t.transform_id == ESPTransformID.ESP_AES
        assert t.attribute(IPsecAttribute.KEY_LENGTH).as_int == 128
        assert t.attribute(IPsecAttribute.AUTHENTICATION_ALGORITHM).as_int == (
            AuthenticationAlgorithm.HMAC_SHA
        )
        mode = t.attribute(IPsecAttribute.ENCAPSULATION_MODE).as_int
        ids = [p for p in ps if isinstance(p, Identification)]
        if natt:  # RFC 3947 5.2 encapsulation mode; the tunnel's inner /32 addresses
            assert mode == EncapsulationMode.UDP_ENCAPSULATED_TUNNEL
            assert {str(i.address) for i in ids} == {"10.77.1.1", "10.77.2.1"}
        else:
            assert mode == EncapsulationMode.TRANSPORT
            assert {str(i.address) for i in ids} == {"10.77.0.1", "10.77.0.2"}
        assert all(i.id_type == IDType.IPV4_ADDR for i in ids)
    assert quick[0][1].proposals[0].spi != quick[1][1].proposals[0].spi


@pytest.mark.parametrize("name", ["main-rsasig", "aggressive-rsasig"])
def test_rsasig_identities_and_certificates(name: str) -> None:
    payloads = [p for _, ps in decrypt_all(name) for p in ps]
    dns = [p for p in payloads if isinstance(p, Identification) and p.id_type == IDType.DER_ASN1_DN]
    # "C=JP, O=Test, CN=hostA" / "...hostB" in DER
    assert {d.data[-5:] for d in dns} == {b"hostA", b"hostB"}
    certs = [p for p in payloads if isinstance(p, Cert)]
    assert certs and all(c.encoding == CertEncoding.X509_SIGNATURE for c in certs)
    assert all(c.data[:2] == b"\x30\x82" for c in certs)  # DER SEQUENCE
    assert all(len(s.data) == 256 for s in payloads if isinstance(s, Signature))  # RSA-2048


def prf(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha1).digest()


@pytest.mark.parametrize("name", ["main-psk", "aggressive-psk", "main-psk-natt"])
def test_psk_hashes_cover_body_bytes(name: str) -> None:
    """RFC 2409 5: HASH_I/R = prf(SKEYID, g^xi|g^xr|CKY-I|CKY-R|SAi_b|IDii_b), PSK SKEYID."""
    doc = CAPTURES[name]
    flat = decrypt_all(name)
    init_msgs = [ps for m, ps in flat if m.message_id == 0]
    first = flat[0][0]
    ke = [p for ps in init_msgs for p in ps if isinstance(p, KE)]
    nonces = [p for ps in init_msgs for p in ps if isinstance(p, Nonce)]
    ids = [p for ps in init_msgs for p in ps if isinstance(p, Identification)]
    hashes = [p for ps in init_msgs for p in ps if isinstance(p, Hash)]
    sai_b = first.find(SA).body_bytes()
    cky_i, cky_r = flat[1][0].initiator_cookie, flat[1][0].responder_cookie
    skeyid = prf(doc["psk"].encode(), nonces[0].data + nonces[1].data)
    g_xi, g_xr = ke[0].data, ke[1].data
    hash_i = prf(skeyid, g_xi + g_xr + cky_i + cky_r + sai_b + ids[0].body_bytes())
    hash_r = prf(skeyid, g_xr + g_xi + cky_r + cky_i + sai_b + ids[1].body_bytes())
    if name.startswith("main"):  # MM5 carries HASH_I, MM6 HASH_R
        assert [h.data for h in hashes] == [hash_i, hash_r]
    else:  # AM2 carries HASH_R, AM3 HASH_I
        assert [h.data for h in hashes] == [hash_r, hash_i]


def test_initial_contact_in_main_mode_5() -> None:
    mm5 = [ps for m, ps in decrypt_all("main-psk") if m.encrypted is not None][0]
    n = mm5[2]
    assert isinstance(n, Notification)
    assert n.notify_type == NotifyType.INITIAL_CONTACT
    assert n.protocol_id == ProtocolID.ISAKMP and len(n.spi) == 16
    assert str(NotifyType(n.notify_type)) == "INITIAL-CONTACT"


def test_fragment_payloads() -> None:
    frames = [
        decode_message(bytes.fromhex(p["datagram"])) for p in CAPTURES["main-rsasig"]["packets"]
    ]
    frags = [m.find(Fragment) for m in frames if m.find(Fragment) is not None]
    assert [(f.number, f.last) for f in frags] == [(1, False), (2, True)]
    assert frames[4].payloads[0].type == PayloadType.FRAGMENT


def test_natt_capture_floats_to_4500_with_marker() -> None:
    """RFC 3947 4 / RFC 3948 2.2: after MM4 everything runs on 4500, IKE behind a zero marker."""
    packets = CAPTURES["main-psk-natt"]["packets"]
    ports = [p["port"] for p in packets]
    assert ports[:4] == [500] * 4 and set(ports[4:]) == {4500}
    kinds = [classify_natt(bytes.fromhex(p["datagram"]))[0] for p in packets[4:]]
    assert NattKind.IKE in kinds and NattKind.ESP in kinds
    mm3 = messages("main-psk-natt")[2]
    assert len(mm3.find_all(NatD)) == 2


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_quick_mode_and_informational_hashes_cover_chain_bytes(name: str) -> None:
    """RFC 2409 5.5 / 5.7: HASH(1), HASH(2), HASH(3) and the informational HASH, over the
    decoded payloads' chain_bytes(), equal what charon sent: the bytes are exact."""
    skeyid_a = bytes.fromhex(CAPTURES[name]["skeyid_a"])
    decrypted = [(m, ps) for m, ps in decrypt_all(name) if m.message_id != 0]
    quick = [(m, ps) for m, ps in decrypted if m.exchange_type == ExchangeType.QUICK]
    (qm1_msg, qm1), (_, qm2) = quick[:2]
    mid = qm1_msg.message_id.to_bytes(4, "big")
    ni_b, nr_b = qm1[2].data, qm2[2].data
    assert qm1[0].data == prf(skeyid_a, mid + chain_bytes(qm1, 1))
    assert qm2[0].data == prf(skeyid_a, mid + ni_b + chain_bytes(qm2, 1))
    for _, ps in quick[2:]:  # QM3 when the SAs could be installed
        assert ps[0].data == prf(skeyid_a, b"\x00" + mid + ni_b + nr_b)
    for m, ps in decrypted:
        if m.exchange_type == ExchangeType.INFORMATIONAL:
            m_id = m.message_id.to_bytes(4, "big")
            assert ps[0].data == prf(skeyid_a, m_id + chain_bytes(ps, 1))
