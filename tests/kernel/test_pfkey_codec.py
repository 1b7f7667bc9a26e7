"""The PF_KEY v2 codec against byte layouts written out from RFC 2367's C structures."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyracoon.kernel.pfkey import (
    LINUX,
    SA,
    SA2,
    Address,
    Alg,
    Comb,
    Identity,
    IpsecRequest,
    Key,
    KmPrivate,
    Lifetime,
    Message,
    NatTPort,
    NatTType,
    PfkeyDecodeError,
    Policy,
    Proposal,
    RawExtension,
    SecCtx,
    Sensitivity,
    SockaddrLayout,
    SpiRange,
    Supported,
    decode,
    encode,
)
from pyracoon.kernel.sadb import ExtType, MsgType, SaType

ip = ipaddress.ip_address


def header(mtype: int, satype: int, words: int, seq: int = 0, pid: int = 0, errno: int = 0):
    # struct sadb_msg { u8 version, type, errno, satype; u16 len; u16 reserved; u32 seq, pid; }
    return struct.pack("=BBBBHHII", 2, mtype, errno, satype, words, 0, seq, pid)


def test_base_header_layout():
    msg = Message(MsgType.FLUSH, SaType.ESP, seq=7, pid=4242)
    assert encode(msg) == header(9, 3, 2, 7, 4242)
    assert decode(encode(msg)) == msg


def test_sa_extension_layout_spi_in_network_order():
    msg = Message(MsgType.ADD, SaType.ESP).add(SA(0x111, 4, 1, 3, 3, 0x40))
    # struct sadb_sa { u16 len; u16 exttype; u32 spi; u8 replay, state, auth, encrypt; u32 flags; }
    ext = (
        struct.pack("=HH", 2, 1)
        + bytes.fromhex("00000111")
        + struct.pack("=BBBBI", 4, 1, 3, 3, 0x40)
    )
    assert encode(msg) == header(3, 3, 4) + ext


def test_ipv4_address_layout():
    a = Address(ExtType.ADDRESS_SRC, ip("192.0.2.1"), 500, 24, 17)
    # sadb_address {u16 len=3, u16 type=5, u8 proto, u8 prefixlen, u16 reserved} + sockaddr_in
    sockaddr = struct.pack("=H", 2) + struct.pack("!H", 500) + bytes([192, 0, 2, 1]) + bytes(8)
    expected = struct.pack("=HHBBH", 3, 5, 17, 24, 0) + sockaddr
    data = encode(Message(MsgType.ADD).add(a))
    assert data[16:] == expected
    assert decode(data).src == a


def test_ipv6_address_layout_is_padded_to_64_bits():
    a = Address(ExtType.ADDRESS_DST, ip("2001:240:7:100::1:6"), 0, None, 255, 0, 3)
    sockaddr = (
        struct.pack("=H", 10)
        + struct.pack("!HI", 0, 0)
        + ip("2001:240:7:100::1:6").packed
        + struct.pack("=I", 3)
    )
    expected = struct.pack("=HHBBH", 5, 6, 255, 128, 0) + sockaddr + bytes(4)
    data = encode(Message(MsgType.ADD).add(a))
    assert data[16:] == expected and len(expected) == 40
    assert decode(data).dst == a


def test_bsd_sockaddr_has_length_byte():
    bsd = SockaddrLayout("bsd", bsd=True, af_inet=2, af_inet6=28)
    a = Address(ExtType.ADDRESS_SRC, ip("10.0.0.1"))
    data = encode(Message(MsgType.ADD).add(a), bsd)
    assert data[16 + 8 : 16 + 10] == bytes([16, 2])
    assert decode(data, bsd).src == a


def test_key_layout_bits_and_padding():
    k = Key(ExtType.KEY_ENCRYPT, b"kw,s.ql3")
    data = encode(Message(MsgType.ADD).add(k))
    assert data[16:] == struct.pack("=HHHH", 2, 9, 64, 0) + b"kw,s.ql3"
    k2 = Key(ExtType.KEY_AUTH, b"This is a Secret Key")  # 20 bytes -> 24 padded
    data = encode(Message(MsgType.ADD).add(k2))
    assert data[16:] == struct.pack("=HHHH", 4, 8, 160, 0) + b"This is a Secret Key" + bytes(4)
    assert decode(data).key(ExtType.KEY_AUTH) == k2


def test_lifetime_layout():
    lt = Lifetime(ExtType.LIFETIME_HARD, 1, 2, 180, 4)
    data = encode(Message(MsgType.ADD).add(lt))
    assert data[16:] == struct.pack("=HHIQQQ", 4, 3, 1, 2, 180, 4)


def test_policy_with_tunnel_request_layout():
    req = IpsecRequest(50, 2, 2, 5, ip("10.0.0.1"), ip("10.0.0.2"))
    pol = Policy(2, 2, 0x11, 0x80000000, [req])
    data = encode(Message(MsgType.X_SPDADD).add(pol))
    sa1 = struct.pack("=H", 2) + struct.pack("!H", 0) + bytes([10, 0, 0, 1]) + bytes(8)
    sa2 = struct.pack("=H", 2) + struct.pack("!H", 0) + bytes([10, 0, 0, 2]) + bytes(8)
    # sadb_x_ipsecrequest_len counts bytes, not words: 8 + 2 * 16.
    r = struct.pack("=HHBBH", 40, 50, 2, 2, 5) + sa1 + sa2
    expected = struct.pack("=HHHBBII", 7, 18, 2, 2, 0, 0x11, 0x80000000) + r
    assert data[16:] == expected
    assert decode(data).policy == pol


def test_transport_request_has_no_endpoints():
    pol = Policy(2, 1, 0, 0, [IpsecRequest(50, 1, 1, 0), IpsecRequest(108, 1, 1, 0)])
    data = encode(Message(MsgType.X_SPDADD).add(pol))
    assert data[16:18] == struct.pack("=H", 4)
    assert decode(data).policy == pol


def test_ipv6_tunnel_request_is_padded():
    req = IpsecRequest(50, 2, 3, 0x4000, ip("fd00::1"), ip("fd00::2"), 4500, 4500)
    data = encode(Message(MsgType.X_SPDADD).add(Policy(2, 2, 0, 0, [req])))
    (rlen,) = struct.unpack_from("=H", data, 32)
    assert rlen == 8 + 56 + 0 + 8 - 8 == 64  # two 28-byte sockaddr_in6 padded to 64
    assert decode(data).policy.requests == [req]


def test_every_extension_round_trips_byte_for_byte():
    msg = Message(MsgType.ACQUIRE, SaType.ESP, 0, 99, 1234)
    msg.add(SA(0xDEADBEEF, 4, 1, 3, 12, 0x40))
    msg.add(Lifetime(ExtType.LIFETIME_CURRENT, 1, 2, 3, 4))
    msg.add(Lifetime(ExtType.LIFETIME_HARD, 0, 0, 180, 0))
    msg.add(Lifetime(ExtType.LIFETIME_SOFT, 0, 0, 144, 0))
    msg.add(Address(ExtType.ADDRESS_SRC, ip("10.0.0.1"), 500))
    msg.add(Address(ExtType.ADDRESS_DST, ip("10.0.0.2"), 4500))
    msg.add(Address(ExtType.ADDRESS_PROXY, ip("::1")))
    msg.add(Key(ExtType.KEY_AUTH, b"a" * 20))
    msg.add(Key(ExtType.KEY_ENCRYPT, b"e" * 24))
    msg.add(Identity(ExtType.IDENTITY_SRC, 2, 0, b"host.example"))
    msg.add(Identity(ExtType.IDENTITY_DST, 3, 7, b"user@example.org"))
    msg.add(Sensitivity(1, 2, 3, bytes(8), bytes(16)))
    msg.add(Proposal(4, [Comb(3, 12, 0, 160, 160, 128, 256, 0, 0, 0, 0, 100, 200, 0, 0)]))
    msg.add(Supported(ExtType.SUPPORTED_AUTH, [Alg(2, 0, 128, 128), Alg(3, 0, 160, 160)]))
    msg.add(Supported(ExtType.SUPPORTED_ENCRYPT, [Alg(12, 16, 128, 256)]))
    msg.add(SpiRange(0x100, 0xFFFF))
    msg.add(KmPrivate(b"opaque!!"))
    msg.add(Policy(2, 2, 9, 0x80000000, [IpsecRequest(51, 1, 2, 0)]))
    msg.add(SA2(2, 0, 7))
    msg.add(NatTType(2))
    msg.add(NatTPort(ExtType.X_NAT_T_SPORT, 4500))
    msg.add(NatTPort(ExtType.X_NAT_T_DPORT, 4501))
    msg.add(Address(ExtType.X_NAT_T_OA, ip("192.168.0.1")))
    msg.add(SecCtx(1, 1, b"system_u:object_r:ipsec_spd_t"))
    msg.add(RawExtension(26, b"\0" * 4))
    data = encode(msg)
    assert len(data) % 8 == 0
    assert struct.unpack_from("=H", data, 4)[0] * 8 == len(data)
    back = decode(data)
    assert back == msg
    assert encode(back) == data
    assert back.describe().startswith("SADB_ACQUIRE satype=ESP seq=99")


def test_proposal_comb_is_72_bytes():
    assert Comb.SIZE == 72
    data = encode(Message(MsgType.ACQUIRE).add(Proposal(0, [Comb(), Comb()])))
    assert struct.unpack_from("=H", data, 16)[0] * 8 == 8 + 2 * 72


# ---- malformed input -------------------------------------------------------------------------

VALID = encode(
    Message(MsgType.ADD, SaType.ESP, 0, 1, 2)
    .add(SA(0x1000, 0, 0, 3, 3, 0x40))
    .add(Address(ExtType.ADDRESS_SRC, ip("10.0.0.1")))
    .add(Address(ExtType.ADDRESS_DST, ip("10.0.0.2")))
    .add(Key(ExtType.KEY_ENCRYPT, b"x" * 24))
    .add(Policy(2, 2, 0, 0, [IpsecRequest(50, 2, 2, 0, ip("fd00::1"), ip("fd00::2"))]))
)


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "header"),
        (VALID[:15], "header"),
        (patched(VALID, 0, "=B", 1), "sadb_msg_version"),
        (patched(VALID, 4, "=H", 99), "sadb_msg_len"),
        (VALID[:-8], "sadb_msg_len"),
        (header(3, 3, 3) + struct.pack("=HH", 0, 1) + bytes(4), "sadb_ext_len"),
        (header(3, 3, 3) + struct.pack("=HH", 5, 1) + bytes(4), "sadb_ext_len"),
        (header(3, 3, 3) + struct.pack("=HH", 1, 1) + bytes(4), "sadb_ext_len"),
        (
            header(3, 3, 6) + (struct.pack("=HH", 2, 1) + bytes(12)) * 2,
            "sadb_ext_type",
        ),
        (patched(VALID, 16 + 16 + 8, "=H", 7), "sa_family"),
        (patched(VALID, 16 + 16 + 5, "=B", 33), "sadb_address_prefixlen"),
        (patched(VALID, 16 + 16 + 24 + 24 + 32 + 16, "=H", 12), "sadb_x_ipsecrequest_len"),
        (patched(VALID, 16 + 16 + 48 + 4, "=H", 999), "key data"),
    ],
)
def test_malformed_names_the_field(data: bytes, field: str):
    with pytest.raises(PfkeyDecodeError) as exc:
        decode(data)
    assert exc.value.field == field
    assert field in str(exc.value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_the_typed_error(data: bytes):
    try:
        msg = decode(data)
    except PfkeyDecodeError:
        return
    assert encode(msg, LINUX) is not None


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_messages_only_raise_the_typed_error(data):
    buf = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    candidate = bytes(buf[:cut]) if data.draw(st.booleans()) else bytes(buf)
    try:
        decode(candidate)
    except PfkeyDecodeError:
        pass
