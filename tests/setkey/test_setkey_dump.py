"""setkey's text layouts, byte for byte (libipsec's pfkey_dump.c and the seed memo, section 10).

Times are asserted in fixed zones: the memo's dump was taken in Japan (JST, UTC+9), which the
POSIX zone string ``JST-9`` expresses without any tz database.
"""

from __future__ import annotations

import calendar
import ipaddress
import time
from collections.abc import Iterator

import pytest

from pyracoon.kernel.dump import (
    SHORTDUMP_HEADER,
    format_kdebug,
    format_policy,
    format_sa,
    format_short,
    format_time,
    hexdump,
    is_dead,
)
from pyracoon.kernel.pfkey import (
    SA,
    SA2,
    Address,
    Alg,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    NatTPort,
    NatTType,
    Policy,
    SecCtx,
    Supported,
)
from pyracoon.kernel.sadb import (
    AuthAlg,
    CompAlg,
    Direction,
    EncAlg,
    ExtType,
    IpProto,
    Level,
    Mode,
    MsgType,
    PolicyType,
    SaState,
    SaType,
)

# Section 10 of the memo dumps on canbe (A, ...:5450): 0x111 goes A->B, 0x112 na12 -> canbe.
A = "2001:240:7:101:280:4cff:fe20:5450"
B = "2001:240:7:101:290:99ff:fe2a:1139"


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def set_zone(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    set_zone("JST-9")
    yield
    monkeypatch.undo()
    time.tzset()


def jst(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    return calendar.timegm((y, mo, d, h, mi, s)) - 9 * 3600


def addr(ext_type: ExtType, a: str, port: int = 0, prefixlen: int | None = None, proto=255):
    return Address(ext_type, ipaddress.ip_address(a), port, prefixlen, proto)


def sa_entry(
    spi: int,
    enc: int,
    enc_key: bytes | None,
    auth: int,
    auth_key: bytes | None,
    *,
    satype: int = SaType.ESP,
    seq: int = 0,
    pid: int = 0,
    refcnt: int = 0,
    sequence: int = 0,
    state: int = SaState.MATURE,
    current: Lifetime | None = None,
    src: str = A,
    dst: str = B,
) -> Message:
    msg = Message(MsgType.DUMP, satype, 0, seq, pid, refcnt)
    msg.add(SA(spi, 0, state, auth, enc, 0x40)).add(SA2(0, sequence, 0))
    if current is not None:
        msg.add(current)
    msg.add(addr(ExtType.ADDRESS_SRC, src)).add(addr(ExtType.ADDRESS_DST, dst))
    if auth_key is not None:
        msg.add(Key(ExtType.KEY_AUTH, auth_key))
    if enc_key is not None:
        msg.add(Key(ExtType.KEY_ENCRYPT, enc_key))
    return msg


def test_seed_des_md5_block(tz: None) -> None:
    """The memo's FreeBSD dump (section 10), with 0.8.2's trailing spaces (pfkey_dump.c)."""
    current = Lifetime(
        ExtType.LIFETIME_CURRENT,
        allocations=6,
        bytes=576,
        addtime=jst(2003, 1, 25, 16, 24, 59),
        usetime=jst(2003, 1, 25, 16, 25, 11),
    )
    msg = sa_entry(
        0x112,
        EncAlg.DESCBC,
        b"kw,s.ql3",
        AuthAlg.MD5HMAC,
        b"ks,dlw3k529a0cks",
        seq=1,
        pid=2143,
        refcnt=2,
        sequence=6,
        current=current,
    )
    now = jst(2003, 1, 25, 16, 26, 32)
    assert format_sa(msg, now) == (
        f"{A} {B} \n"
        "\tesp mode=any spi=274(0x00000112) reqid=0(0x00000000)\n"
        "\tE: des-cbc  6b772c73 2e716c33\n"
        "\tA: hmac-md5  6b732c64 6c77336b 35323961 30636b73\n"
        "\tseq=0x00000006 replay=0 flags=0x00000040 state=mature \n"
        "\tcreated: Jan 25 16:24:59 2003\tcurrent: Jan 25 16:26:32 2003\n"
        "\tdiff: 93(s)\thard: 0(s)\tsoft: 0(s)\n"
        "\tlast: Jan 25 16:25:11 2003\thard: 0(s)\tsoft: 0(s)\n"
        "\tcurrent: 576(bytes)\thard: 0(bytes)\tsoft: 0(bytes)\n"
        "\tallocated: 6\thard: 0\tsoft: 0\n"
        "\tsadb_seq=1 pid=2143 refcnt=2\n"
    )


def test_seed_null_keyed_md5_and_blowfish_keyed_sha1_lines() -> None:
    null = sa_entry(
        0x111, EncAlg.NULL, b"asa;32qiqj5q2p983sdkfjxcjv", AuthAlg.MD5, b"ks,dlw3k529a0cks"
    )
    lines = format_sa(null, 0).split("\n")
    assert lines[2] == "\tE: null  6173613b 33327169 716a3571 32703938 3373646b 666a7863 6a76"
    assert lines[3] == "\tA: md5  6b732c64 6c77336b 35323961 30636b73"
    bf = sa_entry(0x111, EncAlg.BLOWFISHCBC, b".w,emslk3i", AuthAlg.SHA, b"ks,dlw3k529a0cks2k3j")
    lines = format_sa(bf, 0).split("\n")
    assert lines[2] == "\tE: blowfish-cbc  2e772c65 6d736c6b 3369"
    assert lines[3] == "\tA: sha  6b732c64 6c77336b 35323961 30636b73 326b336a"
    assert lines[4] == "\tseq=0x00000000 replay=0 flags=0x00000040 state=mature "


def test_hexdump_breaks_every_32_bytes_without_a_tab() -> None:
    assert hexdump(b"") == ""
    assert hexdump(bytes(range(5))) == " 00010203 04"
    text = hexdump(bytes(range(40)))
    assert text == (
        " 00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f\n"
        " 20212223 24252627"
    )
    msg = sa_entry(0x1000, EncAlg.AESCBC, bytes(32), AuthAlg.SHA2_512, bytes(range(64)))
    a_line = format_sa(msg, 0).split("\tA: ")[1]
    assert a_line.startswith("hmac-sha512  00010203")
    assert "1c1d1e1f\n 20212223" in a_line


def test_time_fields(tz: None) -> None:
    assert format_time(0) == " " * 20
    assert format_time(jst(2003, 1, 5, 9, 8, 7)) == "Jan  5 09:08:07 2003"
    msg = sa_entry(
        0x1000,
        EncAlg.NULL,
        b"",
        AuthAlg.NONE,
        None,
        current=Lifetime(ExtType.LIFETIME_CURRENT, addtime=0, usetime=0),
    )
    msg.add(Lifetime(ExtType.LIFETIME_HARD, 1, 2, 3, 4))
    msg.add(Lifetime(ExtType.LIFETIME_SOFT, 5, 6, 7, 8))
    text = format_sa(msg, jst(2020, 2, 29, 23, 59, 59))
    assert "\tcreated:                     \tcurrent: Feb 29 23:59:59 2020\n" in text
    assert "\tdiff: 0(s)\thard: 3(s)\tsoft: 7(s)\n" in text
    assert "\tlast:                     \thard: 4(s)\tsoft: 8(s)\n" in text
    assert "\tcurrent: 0(bytes)\thard: 2(bytes)\tsoft: 6(bytes)\n" in text
    assert "\tallocated: 0\thard: 1\tsoft: 5\n" in text
    assert "\tE: null \n" in text  # an empty key still shows its line


def test_no_lifetime_block_without_current() -> None:
    text = format_sa(sa_entry(0x1000, EncAlg.NULL, None, AuthAlg.NONE, None), 0)
    assert text == (
        f"{A} {B} \n"
        "\tesp mode=any spi=4096(0x00001000) reqid=0(0x00000000)\n"
        "\tseq=0x00000000 replay=0 flags=0x00000040 state=mature \n"
        "\tsadb_seq=0 pid=0 refcnt=0\n"
    )


def test_ports_nat_t_and_original_address() -> None:
    msg = sa_entry(0x1000, EncAlg.NULL, b"", AuthAlg.NONE, None, src="10.0.0.1", dst="10.0.0.2")
    msg.src.port, msg.dst.port = 500, 4500
    assert format_sa(msg, 0, with_ports=True).startswith("10.0.0.1[500] 10.0.0.2[4500] \n")
    msg.add(NatTType(2))
    msg.add(NatTPort(ExtType.X_NAT_T_SPORT, 4500)).add(NatTPort(ExtType.X_NAT_T_DPORT, 4501))
    msg.add(addr(ExtType.X_NAT_T_OA, "192.168.0.9"))
    text = format_sa(msg, 0)
    assert text.startswith(
        "10.0.0.1[4500] 10.0.0.2[4501] \n"
        "\tesp-udp mode=any spi=4096(0x00001000) reqid=0(0x00000000)\n"
        "\tNAT OA=192.168.0.9\n"
    )
    msg.satype = SaType.AH
    assert "\tnatt+ah mode=any" in format_sa(msg, 0)


def test_ipcomp_and_unknown_values() -> None:
    msg = sa_entry(0x4000, CompAlg.DEFLATE, None, AuthAlg.NONE, None, satype=SaType.IPCOMP)
    msg.sa2.mode, msg.sa2.reqid = Mode.TUNNEL, 0x4001
    lines = format_sa(msg, 0).split("\n")
    assert lines[1] == "\tipcomp mode=tunnel spi=16384(0x00004000) reqid=16385(0x00004001)"
    assert lines[2] == "\tC: deflate \tseq=0x00000000 replay=0 flags=0x00000040 state=mature "
    odd = sa_entry(1, 200, b"\x01", 201, b"\x02", satype=42, state=7)
    odd.sa2.mode = 9
    text = format_sa(odd, 0)
    assert "\t42 mode=9 spi=1(0x00000001)" in text
    assert "\tA: 201  02\n" in text and "E:" not in text
    assert "state=7 \n" in text


def test_missing_extensions() -> None:
    assert format_sa(Message(MsgType.DUMP, 3), 0) == "no ADDRESS_SRC extension.\n"
    m = Message(MsgType.DUMP, 3).add(addr(ExtType.ADDRESS_SRC, "10.0.0.1"))
    assert format_sa(m, 0) == "10.0.0.1  no ADDRESS_DST extension.\n"
    m.add(addr(ExtType.ADDRESS_DST, "10.0.0.2"))
    assert format_sa(m, 0) == "10.0.0.1 10.0.0.2 no SA extension.\n"


def test_dead_sas() -> None:
    assert is_dead(sa_entry(1, 11, b"", 0, None, state=SaState.DEAD))
    assert not is_dead(sa_entry(1, 11, b"", 0, None, state=SaState.DYING))
    assert "state=dead \n" in format_sa(sa_entry(1, 11, b"", 0, None, state=SaState.DEAD), 0)


def test_security_context_lines() -> None:
    msg = sa_entry(1, 11, b"", 0, None)
    msg.add(SecCtx(alg=1, doi=1, ctx=b"user_u:r:t\0"))
    assert (
        "\tsecurity context doi: 1\n\tsecurity context algorithm: 1\n"
        "\tsecurity context length: 11\n\tsecurity context: user_u:r:t\n"
        "\tsadb_seq=0" in format_sa(msg, 0)
    )


# --------------------------------------------------------------------------------------------
# -DP


def sp_entry(
    policy: Policy,
    src: str,
    dst: str,
    *,
    sport: int = 0,
    dport: int = 0,
    splen: int | None = None,
    dplen: int | None = None,
    proto: int = 255,
    seq: int = 0,
    pid: int = 0,
    current: Lifetime | None = None,
    hard: Lifetime | None = None,
) -> Message:
    msg = Message(MsgType.X_SPDDUMP, 0, 0, seq, pid).add(policy)
    msg.add(addr(ExtType.ADDRESS_SRC, src, sport, splen, proto))
    msg.add(addr(ExtType.ADDRESS_DST, dst, dport, dplen, proto))
    if current is not None:
        msg.add(current)
    if hard is not None:
        msg.add(hard)
    return msg


def test_spd_example_of_racoon_facts(tz: None) -> None:
    tunnel = IpsecRequest(
        IpProto.ESP,
        Mode.TUNNEL,
        Level.REQUIRE,
        0,
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_address("10.0.0.2"),
    )
    policy = Policy(PolicyType.IPSEC, Direction.OUTBOUND, 0x61, 0x80000000, [tunnel])
    msg = sp_entry(
        policy,
        "192.168.1.0",
        "192.168.2.0",
        splen=24,
        dplen=24,
        seq=3,
        pid=77,
        current=Lifetime(ExtType.LIFETIME_CURRENT, addtime=jst(2003, 1, 25, 16, 24, 59)),
        hard=Lifetime(ExtType.LIFETIME_HARD, addtime=3600, usetime=60),
    )
    assert format_policy(msg) == (
        "192.168.1.0/24[any] 192.168.2.0/24[any] 255\n"
        "\tout prio def ipsec\n"
        "\tesp/tunnel/10.0.0.1-10.0.0.2/require\n"
        "\tcreated: Jan 25 16:24:59 2003  lastused:                     \n"
        "\tlifetime: 3600(s) validtime: 60(s)\n"
        "\tspid=97 seq=3 pid=77\n"
        "\trefcnt=0\n"
    )


def test_spd_seed_transport_policy_and_ports() -> None:
    policy = Policy(
        PolicyType.IPSEC,
        Direction.INBOUND,
        8,
        0x80000000,
        [IpsecRequest(IpProto.ESP, Mode.TRANSPORT, Level.USE, 0)],
    )
    msg = sp_entry(policy, "::", "::", splen=0, dplen=0)
    assert format_policy(msg) == (
        "::/0[any] ::/0[any] 255\n"
        "\tin prio def ipsec\n"
        "\tesp/transport//use\n"
        "\tspid=8 seq=0 pid=0\n"
        "\trefcnt=0\n"
    )
    msg = sp_entry(Policy(PolicyType.NONE, 2, 1, 0), "10.0.0.1", "10.0.0.2", sport=22, proto=6)
    assert format_policy(msg).split("\n")[:2] == ["10.0.0.1[22] 10.0.0.2[any] tcp", "\tout none"]


def test_spd_icmp_and_gre_extras() -> None:
    p = Policy(PolicyType.DISCARD, 2, 1, 0)
    icmp = sp_entry(p, "10.0.0.1", "10.0.0.2", sport=8, dport=0, proto=1)
    assert format_policy(icmp).split("\n")[0] == "10.0.0.1 10.0.0.2 icmp 8,0"
    icmp6 = sp_entry(p, "::1", "::2", proto=58)
    assert format_policy(icmp6).split("\n")[0] == "::1 ::2 ipv6-icmp"
    gre = sp_entry(p, "10.0.0.0", "10.0.0.0", sport=0x1234, dport=0x5678, splen=8, proto=47)
    assert format_policy(gre).split("\n")[0] == "10.0.0.0/8 10.0.0.0 gre 305419896"


def test_spd_special_first_lines() -> None:
    per_socket = sp_entry(Policy(PolicyType.BYPASS, 4, 0x0C, 0), "10.0.0.1", "10.0.0.2")
    assert format_policy(per_socket).startswith("(per-socket policy) \n\tin(socket) bypass\n")
    bare = Message(MsgType.X_SPDDUMP).add(Policy(PolicyType.DISCARD, 1, 0, 0))
    assert format_policy(bare).startswith("(no selector, probably per-socket policy) \n\tin")
    mism = sp_entry(Policy(PolicyType.DISCARD, 1, 0, 0), "10.0.0.1", "10.0.0.2")
    mism.dst.proto = 6
    assert format_policy(mism) == "10.0.0.1[any] 10.0.0.2[any] upper layer protocol mismatched.\n"
    bad = sp_entry(Policy(PolicyType.DISCARD, 9, 0, 0), "10.0.0.1", "10.0.0.2")
    assert "\n\tPolicy:[Invalid direciton]\n" in format_policy(bad)


def test_spd_with_ports_shows_tunnel_ports() -> None:
    req = IpsecRequest(
        IpProto.ESP,
        Mode.TUNNEL,
        Level.UNIQUE,
        0x4005,
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_address("10.0.0.2"),
        4500,
        4500,
    )
    msg = sp_entry(Policy(PolicyType.IPSEC, 2, 1, 0x40000000, [req]), "10.0.0.1", "10.0.0.2")
    assert format_policy(msg, with_ports=True).split("\n")[1:3] == [
        "\tout prio high ipsec",
        "\tesp/tunnel/10.0.0.1[4500]-10.0.0.2[4500]/unique#16389",
    ]


# --------------------------------------------------------------------------------------------
# -l and -v


def test_short_dump() -> None:
    msg = sa_entry(0x1234, 11, b"", 0, None, src="10.0.0.1", dst="10.0.0.2")
    now = 3600 * 5 + 60 * 7 + 9
    msg.add(Lifetime(ExtType.LIFETIME_CURRENT, addtime=now - 42))
    msg.add(Lifetime(ExtType.LIFETIME_HARD, addtime=600)).add(Lifetime(ExtType.LIFETIME_SOFT))
    assert SHORTDUMP_HEADER == "time p   s spi      ltime   src -> dst\n"
    assert format_short(msg, now) == "0709 esp M 00001234  42/600 #255 10.0.0.1 -> #255 10.0.0.2\n"
    msg.lifetime(ExtType.LIFETIME_HARD).addtime = 5000
    msg.src.port = 500
    assert " 42/big #255 10.0.0.1[500] ->" in format_short(msg, now)
    bare = sa_entry(0x1, 11, b"", 0, None, satype=9, src="10.0.0.1", dst="10.0.0.2")
    assert format_short(bare, now) == "0709 #9  M 00000001 ???/??? #255 10.0.0.1 -> #255 10.0.0.2\n"


def test_kdebug() -> None:
    msg = Message(MsgType.ADD, SaType.ESP, 0, 5, 42)
    msg.add(Key(ExtType.KEY_ENCRYPT, b"12345678"))
    msg.add(SA(0x111, 0, 0, 0, 2, 0x40)).add(SA2(0, 0, 0))
    msg.add(addr(ExtType.ADDRESS_SRC, "10.0.0.1")).add(addr(ExtType.ADDRESS_DST, "::1"))
    assert format_kdebug(msg) == (
        "sadb_msg{ version=2 type=3 errno=0 satype=3\n"
        "  len=16 reserved=0 seq=5 pid=42\n"
        "sadb_ext{ len=2 type=9 }\n"
        "sadb_key{ bits=64 reserved=0\n"
        "  key= 31323334 35363738 }\n"
        "sadb_ext{ len=2 type=1 }\n"
        "sadb_sa{ spi=273 replay=0 state=0\n"
        "  auth=0 encrypt=2 flags=0x00000040 }\n"
        "sadb_ext{ len=2 type=19 }\n"
        "sadb_x_sa2{ mode=0 reqid=0\n"
        "  reserved1=0 reserved2=0 sequence=0 }\n"
        "sadb_ext{ len=3 type=5 }\n"
        "sadb_address{ proto=255 prefixlen=32 reserved=0x0000 }\n"
        "sockaddr{ len=16 family=2 port=0\n"
        " 0a000001  }\n"
        "sadb_ext{ len=5 type=6 }\n"
        "sadb_address{ proto=255 prefixlen=128 reserved=0x0000 }\n"
        "sockaddr{ len=28 family=10 port=0\n"
        "  flowinfo=0x00000000, scope_id=0x00000000\n"
        " 00000000 00000000 00000000 00000001  }\n"
    )


def test_kdebug_policy_and_supported() -> None:
    req = IpsecRequest(IpProto.ESP, Mode.TRANSPORT, Level.REQUIRE, 0)
    msg = Message(MsgType.X_SPDADD).add(Policy(2, 2, 0x19, 0x80000000, [req]))
    assert format_kdebug(msg).endswith(
        "sadb_x_policy{ type=2 dir=2 id=19 priority=2147483648 }\n"
        " { len=16 proto=50 mode=1 level=2 reqid=0\n }\n"
    )
    reg = Message(MsgType.REGISTER).add(Supported(ExtType.SUPPORTED_AUTH, [Alg(2, 0, 128, 128)]))
    assert format_kdebug(reg).endswith("sadb_sup{\n  { id=2 ivlen=0 min=128 max=128 }\n}\n")
