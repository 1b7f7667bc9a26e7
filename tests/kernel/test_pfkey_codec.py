"""The PF_KEY v2 codec against byte layouts written out from RFC 2367's C structures."""

from __future__ import annotations

import ipaddress
import struct
import sys

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
from pyracoon.kernel.sadb import ExtType, IpProto, Level, Mode, MsgType, SaType

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
    # Linux's sadb_x_ipsecrequest_len counts bytes, not words: 16 + 2 * 16.
    r = struct.pack("=HHBBHII", 48, 50, 2, 2, 0, 5, 0) + sa1 + sa2
    expected = struct.pack("=HHHBBII", 8, 18, 2, 2, 0, 0x11, 0x80000000) + r
    assert data[16:] == expected
    assert decode(data).policy == pol


def test_transport_request_has_no_endpoints():
    pol = Policy(2, 1, 0, 0, [IpsecRequest(50, 1, 1, 0), IpsecRequest(108, 1, 1, 0)])
    data = encode(Message(MsgType.X_SPDADD).add(pol))
    assert data[16:18] == struct.pack("=H", 6)  # 16-byte header + two 16-byte requests
    assert decode(data).policy == pol


# ---- sadb_x_ipsecrequest, byte for byte ------------------------------------------------------
#
# The expected bytes below are written out by hand from the C structures, not produced by the
# encoder. Linux (linux/pfkeyv2.h), packed, 16 bytes:
#     u16 len; u16 proto; u8 mode; u8 level; u16 reserved1; u32 reqid; u32 reserved2;
# KAME/BSD (net/pfkeyv2.h), 8 bytes:
#     u16 len; u16 proto; u8 mode; u8 level; u16 reqid;
# followed, in tunnel mode, by the source and destination sockaddrs. Integers other than ports
# and addresses are in host order; the literals are a little-endian host's (x86, arm64).

little_endian = pytest.mark.skipif(
    sys.byteorder != "little", reason="the hex literals are a little-endian host's bytes"
)
BSD = SockaddrLayout("bsd", bsd=True, af_inet=2, af_inet6=28)


def _hex(*fields: str) -> bytes:
    return bytes.fromhex("".join(fields))


def _one_request(data: bytes, layout: SockaddrLayout = LINUX) -> IpsecRequest:
    """Decode ``data`` as the only request of an X_SPDADD's X_POLICY."""
    body = struct.pack("=HBBII", 2, 2, 0, 0, 0) + data
    ext = struct.pack("=HH", (4 + len(body)) // 8, 18) + body
    (req,) = decode(header(14, 0, 2 + len(ext) // 8) + ext, layout).policy.requests
    return req


@little_endian
def test_linux_transport_request_is_16_bytes():
    req = IpsecRequest(IpProto.ESP, Mode.TRANSPORT, Level.UNIQUE, 0x12345)
    expected = _hex(
        "1000",  # sadb_x_ipsecrequest_len = 16
        "3200",  # sadb_x_ipsecrequest_proto = IPPROTO_ESP (50)
        "01",  # sadb_x_ipsecrequest_mode = IPSEC_MODE_TRANSPORT
        "03",  # sadb_x_ipsecrequest_level = IPSEC_LEVEL_UNIQUE
        "0000",  # sadb_x_ipsecrequest_reserved1
        "45230100",  # sadb_x_ipsecrequest_reqid = 0x12345, more than KAME's 16 bits hold
        "00000000",  # sadb_x_ipsecrequest_reserved2
    )
    assert req.encode(LINUX) == expected
    assert _one_request(expected) == req


@little_endian
def test_linux_ipv4_tunnel_request_is_48_bytes():
    req = IpsecRequest(IpProto.ESP, Mode.TUNNEL, Level.REQUIRE, 0, ip("10.0.0.1"), ip("10.0.0.2"))
    expected = _hex(
        "3000",  # sadb_x_ipsecrequest_len = 48 = 16 + 2 * sizeof(struct sockaddr_in)
        "3200",  # proto = IPPROTO_ESP
        "02",  # mode = IPSEC_MODE_TUNNEL
        "02",  # level = IPSEC_LEVEL_REQUIRE
        "0000",  # reserved1
        "00000000",  # reqid = 0
        "00000000",  # reserved2
        "0200",  # sockaddr_in.sin_family = AF_INET (16 bits on Linux)
        "0000",  # sin_port = 0 (network order)
        "0a000001",  # sin_addr = 10.0.0.1
        "0000000000000000",  # sin_zero
        "0200",  # the destination: sin_family = AF_INET
        "0000",  # sin_port
        "0a000002",  # sin_addr = 10.0.0.2
        "0000000000000000",  # sin_zero
    )
    assert len(expected) == 48
    assert req.encode(LINUX) == expected
    assert _one_request(expected) == req


@little_endian
def test_linux_ipv6_tunnel_request_is_72_bytes():
    req = IpsecRequest(IpProto.AH, Mode.TUNNEL, Level.USE, 0, ip("fd00::1"), ip("fd00::2"))
    expected = _hex(
        "4800",  # sadb_x_ipsecrequest_len = 72 = 16 + 2 * sizeof(struct sockaddr_in6)
        "3300",  # proto = IPPROTO_AH (51)
        "02",  # mode = IPSEC_MODE_TUNNEL
        "01",  # level = IPSEC_LEVEL_USE
        "0000",  # reserved1
        "00000000",  # reqid
        "00000000",  # reserved2
        "0a00",  # sockaddr_in6.sin6_family = AF_INET6 (10 on Linux)
        "0000",  # sin6_port
        "00000000",  # sin6_flowinfo
        "fd000000000000000000000000000001",  # sin6_addr = fd00::1
        "00000000",  # sin6_scope_id
        "0a00",  # the destination: sin6_family = AF_INET6
        "0000",  # sin6_port
        "00000000",  # sin6_flowinfo
        "fd000000000000000000000000000002",  # sin6_addr = fd00::2
        "00000000",  # sin6_scope_id
    )
    assert len(expected) == 72  # a multiple of 8 already: no padding
    assert req.encode(LINUX) == expected
    assert _one_request(expected) == req


@little_endian
def test_memo_spdadd_message_bytes():
    """The seed memo's policy, as the whole SADB_X_SPDADD pysetkey writes to a Linux kernel."""
    from pyracoon.setkey.messages import spd_messages
    from pyracoon.setkey.parser import parse_script

    (cmd,) = parse_script(
        "spdadd 2001:240:7:101:260:1dff:fef2:7648 2001:240:7:100::1:6 any "
        "-P out ipsec esp/transport//require;"
    ).commands
    (msg,) = spd_messages(cmd)
    msg.seq, msg.pid = 1, 1234
    expected = _hex(
        # struct sadb_msg
        "02",  # sadb_msg_version = PF_KEY_V2
        "0e",  # sadb_msg_type = SADB_X_SPDADD (14)
        "00",  # sadb_msg_errno
        "00",  # sadb_msg_satype = SADB_SATYPE_UNSPEC
        "1000",  # sadb_msg_len = 16 words = 128 bytes
        "0000",  # sadb_msg_reserved
        "01000000",  # sadb_msg_seq = 1
        "d2040000",  # sadb_msg_pid = 1234
        # struct sadb_x_policy
        "0400",  # sadb_x_policy_len = 4 words: 16 + one 16-byte request
        "1200",  # sadb_x_policy_exttype = SADB_X_EXT_POLICY (18)
        "0200",  # sadb_x_policy_type = IPSEC_POLICY_IPSEC
        "02",  # sadb_x_policy_dir = IPSEC_DIR_OUTBOUND
        "00",  # sadb_x_policy_reserved
        "00000000",  # sadb_x_policy_id = 0 (the kernel picks it)
        "00000080",  # sadb_x_policy_priority = 0x80000000, "prio def"
        # struct sadb_x_ipsecrequest
        "1000",  # sadb_x_ipsecrequest_len = 16
        "3200",  # proto = IPPROTO_ESP
        "01",  # mode = IPSEC_MODE_TRANSPORT
        "02",  # level = IPSEC_LEVEL_REQUIRE
        "0000",  # reserved1
        "00000000",  # reqid = 0
        "00000000",  # reserved2
        # struct sadb_address (source) + sockaddr_in6 + 4 bytes of padding
        "0500",  # sadb_address_len = 5 words = 8 + 28 + 4
        "0500",  # sadb_address_exttype = SADB_EXT_ADDRESS_SRC
        "ff",  # sadb_address_proto = IPSEC_ULPROTO_ANY ("any")
        "80",  # sadb_address_prefixlen = 128
        "0000",  # sadb_address_reserved
        "0a00",  # sin6_family = AF_INET6
        "0000",  # sin6_port = any
        "00000000",  # sin6_flowinfo
        "20010240000701010260" "1dfffef27648",  # sin6_addr = 2001:240:7:101:260:1dff:fef2:7648
        "00000000",  # sin6_scope_id
        "00000000",  # padding to 64 bits
        # struct sadb_address (destination)
        "0500",  # sadb_address_len = 5 words
        "0600",  # sadb_address_exttype = SADB_EXT_ADDRESS_DST
        "ff",  # sadb_address_proto = any
        "80",  # sadb_address_prefixlen = 128
        "0000",  # sadb_address_reserved
        "0a00",  # sin6_family = AF_INET6
        "0000",  # sin6_port
        "00000000",  # sin6_flowinfo
        "20010240000701000000000000010006",  # sin6_addr = 2001:240:7:100::1:6
        "00000000",  # sin6_scope_id
        "00000000",  # padding
    )
    assert len(expected) == 128
    assert encode(msg, LINUX) == expected
    assert decode(expected) == msg


@little_endian
def test_transport_request_with_zeroed_sockaddrs_has_no_endpoints():
    data = _hex(
        "3000",  # sadb_x_ipsecrequest_len = 48: room for two sockaddr_in ...
        "3200",  # proto = ESP
        "01",  # mode = IPSEC_MODE_TRANSPORT
        "02",  # level = REQUIRE
        "0000",  # reserved1
        "00000000",  # reqid
        "00000000",  # reserved2
        "00" * 32,  # ... both zero-filled: sa_family 0
    )
    req = _one_request(data)
    assert (req.src, req.dst) == (None, None)
    assert (req.proto, req.mode, req.level, req.reqid) == (50, 1, 2, 0)


@little_endian
def test_linux_ignores_what_follows_a_transport_request():
    """af_key reads tunnel endpoints in tunnel mode only; in transport mode the rest is
    ignored, so even an unknown family there is not an error."""
    data = _hex("2000", "3200", "01", "02", "0000", "00000000", "00000000", "0700" + "00" * 14)
    req = _one_request(data)
    assert (req.src, req.mode) == (None, 1)
    tunnel = bytearray(data)
    tunnel[4] = 2  # the same bytes in tunnel mode name the field
    with pytest.raises(PfkeyDecodeError) as exc:
        _one_request(bytes(tunnel))
    assert exc.value.field == "sa_family"


@little_endian
def test_kame_sized_request_vanishes_on_linux():
    """An 8-byte KAME request inside a Linux X_POLICY is shorter than Linux's fixed part, so
    parse_ipsecrequests never reads it: the policy arrives with no template (issue 9)."""
    kame = _hex("0800", "3200", "01", "02", "0000")
    body = struct.pack("=HBBII", 2, 2, 0, 0, 0) + kame
    ext = struct.pack("=HH", 3, 18) + body
    msg = decode(header(14, 0, 5) + ext, LINUX)
    assert msg.policy is not None and msg.policy.requests == []


@little_endian
def test_kame_request_on_a_bsd_layout_is_8_bytes():
    req = IpsecRequest(IpProto.ESP, Mode.TUNNEL, Level.UNIQUE, 5, ip("10.0.0.1"), ip("10.0.0.2"))
    expected = _hex(
        "2800",  # sadb_x_ipsecrequest_len = 40 = 8 + 2 * 16
        "3200",  # proto = ESP
        "02",  # mode = TUNNEL
        "03",  # level = UNIQUE
        "0500",  # sadb_x_ipsecrequest_reqid = 5 (u16)
        "10",  # sockaddr_in.sin_len = 16 (BSD)
        "02",  # sin_family = AF_INET (8 bits on BSD)
        "0000",  # sin_port
        "0a000001",  # sin_addr = 10.0.0.1
        "0000000000000000",  # sin_zero
        "10",  # the destination: sin_len
        "02",  # sin_family
        "0000",  # sin_port
        "0a000002",  # sin_addr = 10.0.0.2
        "0000000000000000",  # sin_zero
    )
    assert BSD.kame_ipsecrequest and not LINUX.kame_ipsecrequest
    assert req.encode(BSD) == expected
    assert _one_request(expected, BSD) == req
    transport = IpsecRequest(IpProto.AH, Mode.TRANSPORT, Level.REQUIRE, 0)
    assert transport.encode(BSD) == _hex("0800", "3300", "01", "02", "0000")


def test_kame_reqid_is_16_bits():
    with pytest.raises(ValueError, match="16-bit"):
        IpsecRequest(50, 1, 3, 0x10000).encode(BSD)
    assert len(IpsecRequest(50, 1, 3, 0xFFFFFFFF).encode(LINUX)) == 16
    with pytest.raises(ValueError, match="does not fit"):
        IpsecRequest(50, 1, 3, 1 << 32).encode(LINUX)


@little_endian
def test_linux_acquire_policy_extension_has_no_requests():
    """pfkey_send_acquire's X_POLICY is the bare 16-byte header: type IPSEC, dir OUT, the
    policy's index and priority."""
    addr = _hex(
        "0300", "0500", "00", "20", "0000",  # sadb_address: 3 words, SRC, proto 0, /32
        "0200", "0000", "0a000001", "0000000000000000",  # sockaddr_in 10.0.0.1
    )  # fmt: skip
    dst = addr[:2] + _hex("0600") + addr[4:12] + _hex("0a000002") + addr[16:]
    policy = _hex(
        "0200",  # sadb_x_policy_len = 2 words: the header only
        "1200",  # SADB_X_EXT_POLICY
        "0200",  # IPSEC_POLICY_IPSEC
        "02",  # dir = XFRM_POLICY_OUT + 1 = IPSEC_DIR_OUTBOUND
        "00",  # reserved
        "09000000",  # sadb_x_policy_id = 9 (index 1, direction out)
        "00000080",  # sadb_x_policy_priority
    )
    data = header(6, 3, 2 + 3 + 3 + 2, seq=1) + addr + dst + policy
    msg = decode(data)
    assert msg.policy == Policy(2, 2, 9, 0x80000000, [])
    assert (msg.src.addr, msg.dst.addr) == (ip("10.0.0.1"), ip("10.0.0.2"))


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
