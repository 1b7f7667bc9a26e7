"""The SADB messages pysetkey sends: extension order and bytes, as setkey builds them (setkey's
parse.y, the setkeymsg_*() functions).

The expected bytes are packed here field by field with ``struct`` from RFC 2367's layouts, not
with the codec under test, so a codec mistake cannot hide a message-building one.
"""

from __future__ import annotations

import ipaddress
import struct

from pyracoon.kernel.pfkey import LINUX, Message, decode, encode
from pyracoon.kernel.sadb import Direction, ExtType, Level, MsgType, SaState, SaType
from pyracoon.setkey.messages import (
    deleteall_matches,
    header,
    sa_lookup_message,
    sa_messages,
    spd_messages,
)
from pyracoon.setkey.parser import Endpoint, ParseOptions, numeric_endpoint, parse_script

H1 = "2001:240:7:101:260:1dff:fef2:7648"
H2 = "2001:240:7:100::1:6"


def resolver(host: str, port: int, family: int, numeric: bool) -> list[Endpoint]:
    ep = numeric_endpoint(host, port, family)
    if ep is None:
        raise LookupError("Name or service not known")
    return [ep]


def commands(text: str):
    return parse_script(text, ParseOptions(resolver=resolver)).commands


def ext(ext_type: int, body: bytes) -> bytes:
    assert (4 + len(body)) % 8 == 0
    return struct.pack("=HH", (4 + len(body)) // 8, ext_type) + body


def sadb_msg(msg_type: int, satype: int, body: bytes) -> bytes:
    return struct.pack("=BBBBHHII", 2, msg_type, 0, satype, (16 + len(body)) // 8, 0, 0, 0) + body


def sockaddr6(addr: str, port: int = 0) -> bytes:
    return struct.pack("=H", 10) + struct.pack("!HI", port, 0) + ipaddress.ip_address(addr).packed


def address6(ext_type: int, addr: str, prefixlen: int, proto: int, port: int = 0) -> bytes:
    sa = sockaddr6(addr, port) + struct.pack("=I", 0)
    return ext(ext_type, struct.pack("=BBH", proto, prefixlen, 0) + sa + bytes(4))


def address4(ext_type: int, addr: str, prefixlen: int, proto: int, port: int = 0) -> bytes:
    sa = struct.pack("=H", 2) + struct.pack("!H", port) + ipaddress.ip_address(addr).packed
    return ext(ext_type, struct.pack("=BBH", proto, prefixlen, 0) + sa + bytes(8))


def key(ext_type: int, data: bytes) -> bytes:
    pad = (-(4 + 4 + len(data))) % 8
    return ext(ext_type, struct.pack("=HH", len(data) * 8, 0) + data + bytes(pad))


def test_seed_add_message_bytes() -> None:
    (cmd,) = commands(
        f'add {H1} {H2} esp 0x111 -E 3des-cbc "This is a Secret Key !!!" '
        '-A hmac-sha1 "This is a Secret Key";'
    )
    (msg,) = sa_messages(cmd)
    body = (
        key(9, b"This is a Secret Key !!!")
        + key(8, b"This is a Secret Key")
        + ext(1, struct.pack("!I", 0x111) + struct.pack("=BBBBI", 0, 0, 3, 3, 0x40))
        + ext(19, struct.pack("=BBHII", 0, 0, 0, 0, 0))
        + address6(5, H1, 128, 255)
        + address6(6, H2, 128, 255)
    )
    assert encode(msg, LINUX) == sadb_msg(3, 3, body)


def test_seed_spdadd_message_bytes_and_fwd_copy() -> None:
    (out_cmd, in_cmd) = commands(
        f"spdadd {H1} {H2} any -P out ipsec esp/transport//require;\n"
        f"spdadd {H2} {H1} any -P in ipsec esp/transport//require;"
    )
    (out_msg,) = spd_messages(out_cmd)
    # Linux's 16-byte sadb_x_ipsecrequest: len, proto, mode, level, reserved1, reqid, reserved2
    request = struct.pack("=HHBBHII", 16, 50, 1, 2, 0, 0, 0)
    policy = ext(18, struct.pack("=HBBII", 2, 2, 0, 0, 0x80000000) + request)
    assert encode(out_msg, LINUX) == sadb_msg(
        14, 0, policy + address6(5, H1, 128, 255) + address6(6, H2, 128, 255)
    )
    in_msg, fwd_msg = spd_messages(in_cmd)
    assert in_msg.policy is not None and in_msg.policy.dir == Direction.INBOUND
    fwd_policy = ext(18, struct.pack("=HBBII", 2, 3, 0, 0, 0x80000000) + request)
    assert encode(fwd_msg, LINUX) == sadb_msg(
        14, 0, fwd_policy + address6(5, H2, 128, 255) + address6(6, H1, 128, 255)
    )
    assert spd_messages(in_cmd, rfc_mode=False) == [in_msg]


def test_spd_message_with_prefix_ports_and_tunnel() -> None:
    (cmd,) = commands(
        "spdadd 10.1.0.0/16[any] 10.2.0.0/16[80] tcp "
        "-P out prio high + 1 ipsec esp/tunnel/192.0.2.1-192.0.2.2/unique:3;"
    )
    (msg,) = spd_messages(cmd)
    sa_in = struct.pack("=H", 2) + struct.pack("!H", 0) + bytes([192, 0, 2, 1]) + bytes(8)
    sa_out = struct.pack("=H", 2) + struct.pack("!H", 0) + bytes([192, 0, 2, 2]) + bytes(8)
    request = struct.pack("=HHBBHII", 48, 50, 2, 3, 0, 3, 0) + sa_in + sa_out
    policy = ext(18, struct.pack("=HBBII", 2, 2, 0, 0, 0x40000000 - 1) + request)
    assert encode(msg, LINUX) == sadb_msg(
        14, 0, policy + address4(5, "10.1.0.0", 16, 6, 0) + address4(6, "10.2.0.0", 16, 6, 80)
    )


def test_spdupdate_spddelete_and_context() -> None:
    (upd, dele) = commands(
        'spdupdate 10.0.0.1 10.0.0.2 udp -ctx 1 2 "ctx" -P in none;\n'
        "spddelete 10.0.0.1 10.0.0.2 udp -P in;"
    )
    msgs = spd_messages(upd)
    assert [m.type for m in msgs] == [MsgType.X_SPDUPDATE] * 2
    assert list(msgs[0].extensions) == [18, 5, 6, 24]
    ctx = msgs[0].get(ExtType.X_SEC_CTX)
    assert ctx is not None and ctx.ctx == b"ctx\0" and (ctx.doi, ctx.alg) == (1, 2)
    dmsgs = spd_messages(dele)
    assert [m.type for m in dmsgs] == [MsgType.X_SPDDELETE] * 2
    assert [m.policy.dir for m in dmsgs] == [Direction.INBOUND, Direction.FWD]
    assert all(m.policy.priority == 0 for m in dmsgs)


def test_tagged_policy_is_only_a_policy() -> None:
    (cmd,) = commands('spdadd tagged "t" -P in discard;')
    (msg,) = spd_messages(cmd)
    assert list(msg.extensions) == [ExtType.X_POLICY]


def test_add_extension_order_with_everything() -> None:
    (cmd,) = commands(
        "add 10.0.0.1[4500] 10.0.0.2 esp-udp 192.168.0.9 0x1000 -m tunnel -u 9 -r 16 "
        '-lh 60 -bh 1000 -ls 50 -bs 900 -ctx 1 1 "c" '
        '-E aes-cbc "1234567890123456" -A hmac-sha256 "12345678901234567890123456789012";'
    )
    (msg,) = sa_messages(cmd)
    assert list(msg.extensions) == [9, 8, 3, 4, 24, 1, 19, 20, 23, 5, 6, 21, 22]
    hard, soft = msg.lifetime(ExtType.LIFETIME_HARD), msg.lifetime(ExtType.LIFETIME_SOFT)
    assert (hard.addtime, hard.bytes, soft.addtime, soft.bytes) == (60, 1000, 50, 900)
    assert (msg.sa.replay, msg.sa.state, msg.sa.auth, msg.sa.encrypt) == (16, 0, 5, 12)
    assert (msg.sa2.mode, msg.sa2.reqid) == (2, 9)
    assert msg.get(ExtType.X_NAT_T_TYPE).nat_t_type == 2
    oa = msg.get(ExtType.X_NAT_T_OA)
    assert str(oa.addr) == "192.168.0.9" and oa.prefixlen == 32 and oa.proto == 255
    assert msg.src.port == 4500 and msg.dst.port == 0
    assert msg.get(ExtType.X_NAT_T_SPORT).port == 4500
    assert msg.get(ExtType.X_NAT_T_DPORT).port == 4500  # [any] means the NAT-T default
    assert decode(encode(msg)) == msg


def test_null_encryption_sends_an_empty_key_but_null_auth_sends_none() -> None:
    (cmd,) = commands("add 10.0.0.1 10.0.0.2 esp 0x1000 -E null -A null;")
    (msg,) = sa_messages(cmd)
    assert list(msg.extensions) == [9, 1, 19, 5, 6]
    assert encode(msg)[16:24] == struct.pack("=HHHH", 1, 9, 0, 0)
    assert (msg.sa.encrypt, msg.sa.auth) == (11, 251)


def test_ipcomp_sends_no_keys() -> None:
    (cmd,) = commands("add 10.0.0.1 10.0.0.2 ipcomp 0x4000 -C deflate -R;")
    (msg,) = sa_messages(cmd)
    assert list(msg.extensions) == [1, 19, 5, 6]
    assert msg.satype == SaType.IPCOMP and msg.sa.encrypt == 2 and msg.sa.flags == 0xC0


def test_get_delete_getspi() -> None:
    get, delete, getspi = commands(
        "get 10.0.0.1[7] 10.0.0.2 ah 300;\ndelete 10.0.0.1 10.0.0.2 esp 0x12d;\n"
        "getspi 10.0.0.1 10.0.0.2 esp 0x5000;"
    )
    (g,) = sa_messages(get)
    assert (g.type, g.satype, list(g.extensions)) == (MsgType.GET, SaType.AH, [1, 19, 5, 6])
    assert g.sa.spi == 300 and g.sa.flags == 0x40 and g.src.port == 7
    (d,) = sa_messages(delete)
    assert (d.type, d.sa.spi) == (MsgType.DELETE, 0x12D)
    (s,) = sa_messages(getspi)
    assert s.type == MsgType.GETSPI and list(s.extensions) == [16, 1, 19, 5, 6]
    rng = s.get(ExtType.SPIRANGE)
    assert (rng.min, rng.max) == (0x5000, 0x5000)


def test_one_message_per_address_pair_of_the_same_family() -> None:
    (cmd,) = commands("add 10.0.0.1 10.0.0.2 esp 300 -E null;")
    cmd.srcs.append(Endpoint(ipaddress.ip_address("10.0.0.3")))
    cmd.dsts.append(Endpoint(ipaddress.ip_address("::2")))
    msgs = sa_messages(cmd)
    assert [(str(m.src.addr), str(m.dst.addr)) for m in msgs] == [
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.3", "10.0.0.2"),
    ]


def test_headers_and_deleteall_helpers() -> None:
    assert encode(header(MsgType.X_SPDFLUSH)) == sadb_msg(19, 0, b"")
    assert encode(header(MsgType.DUMP, SaType.ESP)) == sadb_msg(10, 3, b"")
    (cmd,) = commands("deleteall 10.0.0.1 10.0.0.2 esp;")
    src, dst = cmd.srcs[0], cmd.dsts[0]
    msg = sa_lookup_message(MsgType.DELETE, SaType.ESP, src, dst, 0x999)
    assert list(msg.extensions) == [1, 19, 5, 6] and msg.sa.flags == 0x40
    entry = Message(MsgType.DUMP, SaType.ESP).add(msg.sa).add(msg.src).add(msg.dst)
    entry.sa.state = SaState.MATURE
    assert deleteall_matches(cmd, entry)
    entry.satype = SaType.AH
    assert not deleteall_matches(cmd, entry)
    other = Message(MsgType.DUMP, SaType.ESP).add(msg.sa).add(msg.dst).add(msg.dst)
    assert not deleteall_matches(cmd, other)


def test_unique_level_in_fwd_copy_bytes() -> None:
    (cmd,) = commands(f"spdadd {H2} {H1} any -P in ipsec esp/transport//unique:5;")
    in_msg, fwd_msg = spd_messages(cmd)
    assert [(r.level, r.reqid) for r in in_msg.policy.requests] == [(Level.UNIQUE, 5)]
    assert [(r.level, r.reqid) for r in fwd_msg.policy.requests] == [(Level.REQUIRE, 0)]
