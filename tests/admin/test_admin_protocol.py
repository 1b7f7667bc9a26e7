"""racoon's admin wire format: fixed byte layouts, round trips, and total decoding."""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.admin.clayout import CAdminComIndexes
from pyracoon.admin.errors import AdminDecodeError, AdminEncodeError
from pyracoon.admin.protocol import (
    ADMIN_FLAG_LONG_REPLY,
    ADMIN_FLAG_VERSION,
    HEADER_LEN,
    INDEX_LEN,
    PSK_HEADER_LEN,
    AdminCommand,
    AdminIndex,
    AdminProto,
    Header,
    Reply,
    Request,
    SockAddr,
    UlProto,
    XauthCredentials,
    command_name,
    proto_name,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
SRC = CAdminComIndexes.src.offset  # 8 on x86-64, 4 on i386 (test_admin_layout checks with gcc)
DST = CAdminComIndexes.dst.offset


def test_constants_are_racoons() -> None:
    assert ADMIN_FLAG_VERSION == ADMIN_FLAG_LONG_REPLY == 0x8000
    assert [c.value for c in AdminCommand] == [
        0x0001, 0x0002, 0x0003, 0x0101, 0x0102, 0x0201, 0x0202, 0x0203, 0x0204, 0x0205, 0x0206]
    assert AdminProto.ADMIN_PROTO_ISAKMP == 0x01FF
    assert AdminProto.ADMIN_PROTO_IPSEC == 0x02FF
    assert AdminProto.ADMIN_PROTO_AH == 0x0201
    assert AdminProto.ADMIN_PROTO_ESP == 0x0202
    assert AdminProto.ADMIN_PROTO_INTERNAL == 0x0301
    assert HEADER_LEN == 8
    assert INDEX_LEN == ctypes.sizeof(CAdminComIndexes)
    assert command_name(0x0101) == "ADMIN_SHOW_SA" and command_name(0x999) == "0x0999"
    assert proto_name(0x01FF) == "isakmp" and proto_name(0) == "0x0000"


def test_request_as_racoonctl_sends_it() -> None:
    # racoonctl's make_request: ac_len, cmd | ADMIN_FLAG_VERSION, version 1, proto; host order
    data = Request(AdminCommand.ADMIN_SHOW_SA, AdminProto.ADMIN_PROTO_ESP).encode()
    assert data == struct.pack("=HHHH", 8, 0x8101, 1, 0x0202)
    assert Request.decode(data) == Request(0x0101, 0x0202, b"", 1)


def test_request_without_version_flag() -> None:
    data = struct.pack("=HHHH", 8, 0x0001, 0xABCD, 0)
    req = Request.decode(data)
    assert req.version is None and req.command == 1
    assert Request(1, version=None).encode() == struct.pack("=HHHH", 8, 1, 0, 0)


def test_sockaddr_in_layout() -> None:
    raw = SockAddr(V4("10.0.0.1"), 500).encode()
    assert len(raw) == 128
    assert raw[:8] == struct.pack("=H", socket.AF_INET) + b"\x01\xf4" + bytes([10, 0, 0, 1])
    assert raw[8:] == bytes(120)


def test_sockaddr_in6_layout() -> None:
    raw = SockAddr(V6("fe80::1"), 4500, flowinfo=0x12345, scope_id=3).encode()
    assert len(raw) == 128
    assert raw[:2] == struct.pack("=H", socket.AF_INET6)
    assert raw[2:4] == b"\x11\x94"  # port, network order
    assert raw[4:8] == b"\x00\x01\x23\x45"  # flowinfo, network order
    assert raw[8:24] == V6("fe80::1").packed
    assert raw[24:28] == struct.pack("=I", 3)  # scope id, host order
    assert raw[28:] == bytes(100)
    assert SockAddr.decode(raw, 0, "src") == SockAddr(V6("fe80::1"), 4500, 0x12345, 3)


def test_index_layout() -> None:
    index = AdminIndex(SockAddr(V4("10.0.0.1")), SockAddr(V4("10.0.0.2"), 500), 24, 32,
                       UlProto.TCP)
    raw = index.encode()
    assert len(raw) == INDEX_LEN
    assert raw[:4] == bytes([24, 32, 6, 0])
    assert raw[4:SRC] == bytes(SRC - 4)  # the padding before the aligned sockaddr_storage
    assert raw[SRC:SRC + 128] == index.src.encode() and raw[DST:DST + 128] == index.dst.encode()
    req = Request(AdminCommand.ADMIN_DELETE_SA, AdminProto.ADMIN_PROTO_ESP, raw)
    assert Request.decode(req.encode()).index() == index
    assert str(index) == "10.0.0.1/24[0] 10.0.0.2/32[500] tcp"


def test_long_reply_sets_flag_and_len_high() -> None:
    body = bytes(range(256)) * 300  # 76800 bytes
    data = Reply(AdminCommand.ADMIN_SHOW_SA, AdminProto.ADMIN_PROTO_IPSEC, 0, body).encode()
    total = HEADER_LEN + len(body)
    assert data[:8] == struct.pack("=HHHH", total & 0xFFFF, 0x8101, total >> 16, 0x02FF)
    reply = Reply.decode(data)
    assert reply.errno == 0 and reply.body == body


def test_short_reply_has_no_flag() -> None:
    data = Reply(AdminCommand.ADMIN_SHOW_SA, 0x01FF, 0, b"x" * (0xFFFF - 8)).encode()
    assert struct.unpack_from("=HHHH", data) == (0xFFFF, 0x0101, 0, 0x01FF)


def test_errno_reply_layout_and_sign() -> None:
    data = Reply(AdminCommand.ADMIN_ESTABLISH_SA, 0x01FF, -1).encode()
    assert data == struct.pack("=HHhH", 8, 0x0202, -1, 0x01FF)
    assert Reply.decode(data).errno == -1
    data = Reply(AdminCommand.ADMIN_DELETE_SA, 0x0202, 2, b"no such SA").encode()
    assert data[:8] == struct.pack("=HHHH", 18, 0x0201, 2, 0x0202)
    assert Reply.decode(data) == Reply(0x0201, 0x0202, 2, b"no such SA")


def test_encode_limits_are_typed_errors() -> None:
    with pytest.raises(AdminEncodeError) as e:
        Reply(1, 0, 22, b"x" * 0x10000).encode()
    assert e.value.field == "ac_len"
    with pytest.raises(AdminEncodeError) as e:
        SockAddr(V4("1.2.3.4"), 70000).encode()
    assert e.value.field == "port"
    with pytest.raises(AdminEncodeError) as e:
        AdminIndex(SockAddr(V4("1.2.3.4")), SockAddr(V4("1.2.3.4")), 300, 32).encode()
    assert e.value.field == "prefs"
    with pytest.raises(AdminEncodeError) as e:
        Request(1, 0, b"x" * 0xFFFF).encode()
    assert e.value.field == "ac_len"
    with pytest.raises(AdminEncodeError):
        Reply(1, 0, 40000).encode()


def test_psk_body_layout() -> None:
    creds = XauthCredentials("alice@example.org", "s3cret")
    raw = creds.encode()
    id_type, id_len, key_len = struct.unpack_from("@iNN", raw)
    assert (id_type, id_len, key_len) == (2, 18, 7)  # IDTYPE_USERFQDN, with the NULs
    assert raw[PSK_HEADER_LEN:] == b"alice@example.org\0s3cret\0"
    index = AdminIndex(SockAddr(V4("192.0.2.1")), SockAddr(V4("192.0.2.2")), 32, 32)
    req = Request(AdminCommand.ADMIN_ESTABLISH_SA_PSK, 0x01FF, index.encode() + raw)
    assert Request.decode(req.encode()).establish() == (index, None, creds)


def test_establish_remote_name() -> None:
    index = AdminIndex(SockAddr(V4("192.0.2.1")), SockAddr(V4("192.0.2.2")), 32, 32)
    req = Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x01FF, index.encode() + b"gw1\0")
    assert req.establish() == (index, "gw1", None)
    assert Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x01FF, index.encode()).establish() == (
        index, None, None)


# ------------------------------------------------------------------ malformed input


def _index_bytes() -> bytes:
    return AdminIndex(SockAddr(V4("192.0.2.1")), SockAddr(V4("192.0.2.2")), 32, 32).encode()


@pytest.mark.parametrize(("data", "field"), [
    (b"", "ac_len"),
    (b"\x08\x00\x01", "ac_cmd"),
    (b"\x08\x00\x01\x80\x01", "ac_errno/ac_version/ac_len_high"),
    (b"\x08\x00\x01\x80\x01\x00\x00", "ac_proto"),
])
def test_short_header_names_the_missing_field(data: bytes, field: str) -> None:
    with pytest.raises(AdminDecodeError) as e:
        Request.decode(data)
    assert e.value.field == field


def test_length_mismatch() -> None:
    with pytest.raises(AdminDecodeError, match="says 9 bytes but the request has 8"):
        Request.decode(struct.pack("=HHHH", 9, 1, 0, 0))
    with pytest.raises(AdminDecodeError, match="shorter than the header"):
        Request.decode(struct.pack("=HHHH", 4, 1, 0, 0))
    with pytest.raises(AdminDecodeError, match="says 65544 bytes"):
        Reply.decode(struct.pack("=HHHH", 8, 0x8101, 1, 0))


def test_bad_family_names_the_field_and_offset() -> None:
    raw = bytearray(_index_bytes())
    struct.pack_into("=H", raw, DST, 7)
    with pytest.raises(AdminDecodeError) as e:
        Request(AdminCommand.ADMIN_DELETE_SA, 0x0202, bytes(raw)).index()
    assert e.value.field == "dst.ss_family" and e.value.offset == 8 + DST


def test_index_size_checks() -> None:
    with pytest.raises(AdminDecodeError,
                       match=f"{INDEX_LEN}-byte index, the body is {INDEX_LEN - 1}"):
        Request(AdminCommand.ADMIN_DELETE_SA, 0x0202, _index_bytes()[:-1]).index()
    with pytest.raises(AdminDecodeError, match=f"the body is {INDEX_LEN + 1}"):
        Request(AdminCommand.ADMIN_DELETE_SA, 0x0202, _index_bytes() + b"x").index()


@pytest.mark.parametrize(("tail", "field"), [
    (b"gw1", "remote name"),
    (b"g\0w\0", "remote name"),
    (b"\xff\0", "remote name"),
])
def test_bad_remote_name(tail: bytes, field: str) -> None:
    req = Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x01FF, _index_bytes() + tail)
    with pytest.raises(AdminDecodeError) as e:
        req.establish()
    assert e.value.field == field


def test_bad_psk_lengths() -> None:
    good = XauthCredentials("bob", "pw").encode()
    overrun = struct.pack("@iNN", 2, 100, 3) + good[PSK_HEADER_LEN:]
    with pytest.raises(AdminDecodeError) as e:
        Request(AdminCommand.ADMIN_ESTABLISH_SA_PSK, 0x01FF, _index_bytes() + overrun).establish()
    assert e.value.field == "admin_com_psk.id_len"
    with pytest.raises(AdminDecodeError) as e:
        Request(AdminCommand.ADMIN_ESTABLISH_SA_PSK, 0x01FF,
                _index_bytes() + good[:10]).establish()
    assert e.value.field == "admin_com_psk"
    with pytest.raises(AdminDecodeError, match="after the password"):
        Request(AdminCommand.ADMIN_ESTABLISH_SA_PSK, 0x01FF,
                _index_bytes() + good + b"x").establish()


def test_login_checks() -> None:
    assert Request(AdminCommand.ADMIN_LOGOUT_USER, 0, b"alice").login() == "alice"
    with pytest.raises(AdminDecodeError, match="racoon allows 31"):
        Request(AdminCommand.ADMIN_LOGOUT_USER, 0, b"a" * 32).login()
    with pytest.raises(AdminDecodeError, match="is empty"):
        Request(AdminCommand.ADMIN_LOGOUT_USER, 0, b"").login()


def test_verbosity_extension() -> None:
    assert Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF).verbosity() == 0  # racoonctl's request
    assert Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF, b"\x02").verbosity() == 2
    with pytest.raises(AdminDecodeError):
        Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF, b"\x02\x00").verbosity()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decoding_garbage_raises_only_decode_errors(data: bytes) -> None:
    for decode in (Request.decode, Reply.decode, Header.decode):
        try:
            decode(data)
        except AdminDecodeError:
            pass
    for command in AdminCommand:
        req = Request(command, 0x01FF, data)
        for accessor in (req.index, req.establish, req.login, req.verbosity):
            try:
                accessor()
            except AdminDecodeError:
                pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=INDEX_LEN, max_size=INDEX_LEN + 40))
def test_index_bytes_with_real_families_never_crash(data: bytes) -> None:
    raw = bytearray(data)
    struct.pack_into("=H", raw, SRC, socket.AF_INET6)
    struct.pack_into("=H", raw, DST, socket.AF_INET)
    req = Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x0202, bytes(raw))
    try:
        index, _, _ = req.establish()
    except AdminDecodeError:
        return
    assert index.src.address.version == 6 and index.dst.address.version == 4


# ------------------------------------------------------------------ round trips

_v4 = st.builds(V4, st.integers(0, 2**32 - 1))
_v6 = st.builds(V6, st.integers(0, 2**128 - 1))
_sockaddr = st.one_of(
    st.builds(SockAddr, _v4, st.integers(0, 65535)),
    st.builds(SockAddr, _v6, st.integers(0, 65535), st.integers(0, 2**32 - 1),
              st.integers(0, 2**32 - 1)),
)
_index = st.builds(AdminIndex, _sockaddr, _sockaddr, st.integers(0, 255), st.integers(0, 255),
                   st.integers(0, 255))


@settings(max_examples=100, deadline=None)
@given(_index)
def test_index_round_trip(index: AdminIndex) -> None:
    req = Request(AdminCommand.ADMIN_GET_SA_CERT, 0x01FF, index.encode())
    assert Request.decode(req.encode()).index() == index


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(list(AdminCommand)), st.integers(0, 0xFFFF),
       st.integers(-0x8000, 0x7FFF), st.binary(max_size=200))
def test_reply_round_trip(command: int, proto: int, errno: int, body: bytes) -> None:
    reply = Reply(command, proto, errno, body)
    assert Reply.decode(reply.encode()) == reply


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0x7FFF), st.integers(0, 0xFFFF), st.binary(max_size=300),
       st.one_of(st.none(), st.integers(0, 0xFFFF)))
def test_request_round_trip(command: int, proto: int, body: bytes, version: int | None) -> None:
    req = Request(command, proto, body, version)
    decoded = Request.decode(req.encode())
    assert decoded == Request(command, proto, body, version)


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=0, max_size=40).filter(lambda s: "\0" not in s),
       st.text(max_size=40).filter(lambda s: "\0" not in s))
def test_credentials_round_trip(login: str, password: str) -> None:
    creds = XauthCredentials(login, password)
    assert XauthCredentials.decode(creds.encode(), 0) == creds
