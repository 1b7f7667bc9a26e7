"""setkey's input grammar: every construct of setkey(8); ipsec_set_policy(3) and every rejection.

No test here resolves a hostname through the system: a fake resolver stands in for DNS.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.kernel.pfkey import decode, encode
from pyracoon.kernel.sadb import (
    AuthAlg,
    CompAlg,
    Direction,
    EncAlg,
    IpProto,
    Level,
    Mode,
    NatTType,
    PolicyType,
    Priority,
    SaFlags,
    SaType,
)
from pyracoon.setkey.algorithms import KeyRange, SupportedAlgorithms
from pyracoon.setkey.errors import SetkeySyntaxError
from pyracoon.setkey.messages import sa_messages, spd_messages
from pyracoon.setkey.parser import (
    DeleteAllCommand,
    DumpCommand,
    Endpoint,
    FlushCommand,
    ParseOptions,
    SaCommand,
    SpdCommand,
    SpdDumpCommand,
    SpdFlushCommand,
    fwd_copy,
    numeric_endpoint,
    parse_script,
)

HOSTS = {
    "gw.example": ["192.0.2.1", "2001:db8::1"],
    "two.example": ["192.0.2.7", "192.0.2.8"],
}


def fake_resolver(host: str, port: int, family: int, numeric: bool) -> list[Endpoint]:
    ep = numeric_endpoint(host, port, family)
    if ep is not None:
        return [ep]
    if numeric or host not in HOSTS:
        raise LookupError("Name or service not known")
    out = []
    for a in HOSTS[host]:
        addr = ipaddress.ip_address(a)
        if family == socket.AF_INET and addr.version != 4:
            continue
        if family == socket.AF_INET6 and addr.version != 6:
            continue
        out.append(Endpoint(addr, port))
    if not out:
        raise LookupError("Address family for hostname not supported")
    return out


DIAG: list[str] = []


def opts(**kw) -> ParseOptions:
    DIAG.clear()
    kw.setdefault("resolver", fake_resolver)
    kw.setdefault("keylen_diagnostic", DIAG.append)
    return ParseOptions(**kw)


def one(text: str, **kw):
    script = parse_script(text, opts(**kw))
    assert len(script.commands) == 1
    return script.commands[0]


def err(text: str, **kw) -> SetkeySyntaxError:
    with pytest.raises(SetkeySyntaxError) as e:
        parse_script(text, opts(**kw))
    return e.value


A4, B4 = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")


# --------------------------------------------------------------------------------------------
# add / get / delete / getspi


def test_seed_add_line() -> None:
    cmd = one(
        "add 2001:240:7:101:260:1dff:fef2:7648 2001:240:7:100::1:6 esp 0x111 "
        '-E 3des-cbc "This is a Secret Key !!!" -A hmac-sha1 "This is a Secret Key";'
    )
    assert isinstance(cmd, SaCommand)
    assert cmd.verb == "add" and cmd.satype == SaType.ESP and cmd.spi == 0x111
    assert cmd.srcs == [Endpoint(ipaddress.ip_address("2001:240:7:101:260:1dff:fef2:7648"))]
    assert cmd.enc_alg == EncAlg.THREEDESCBC and cmd.enc_key == b"This is a Secret Key !!!"
    assert cmd.auth_alg == AuthAlg.SHA1HMAC and cmd.auth_key == b"This is a Secret Key"
    assert cmd.flags == SaFlags.CYCSEQ and cmd.mode == Mode.ANY and cmd.reqid == 0


def test_every_sa_extension() -> None:
    cmd = one(
        "add 10.0.0.1[500] 10.0.0.2[any] esp 4096 -m tunnel -r 32 -u 7 -f zero-pad "
        "-f random-pad -f seq-pad -lh 3600 -ls 3000 -bh 100000 -bs 90000 "
        '-ctx 1 2 "system_u:object_r:ipsec_spd_t" -E null;'
    )
    assert cmd.srcs == [Endpoint(A4, 500)] and cmd.dsts == [Endpoint(B4, 0)]
    assert cmd.spi == 4096 and cmd.mode == Mode.TUNNEL and cmd.replay == 32 and cmd.reqid == 7
    assert cmd.flags == SaFlags.CYCSEQ | SaFlags.PZERO | SaFlags.PRAND
    assert (cmd.lifetime_hard_time, cmd.lifetime_soft_time) == (3600, 3000)
    assert (cmd.lifetime_hard_bytes, cmd.lifetime_soft_bytes) == (100000, 90000)
    assert cmd.ctx is not None and (cmd.ctx.doi, cmd.ctx.alg) == (1, 2)
    assert cmd.ctx.text == b"system_u:object_r:ipsec_spd_t\0"
    assert cmd.enc_alg == EncAlg.NULL and cmd.enc_key == b""


def test_nocyclic_seq_clears_the_default_flag() -> None:
    assert one("add 10.0.0.1 10.0.0.2 esp 300 -f nocyclic-seq -E null;").flags == 0


@pytest.mark.parametrize("mode,value", [("transport", 1), ("tunnel", 2), ("any", 0)])
def test_modes(mode: str, value: int) -> None:
    assert one(f"add 10.0.0.1 10.0.0.2 esp 300 -m {mode} -E null;").mode == value


@pytest.mark.parametrize(
    "name,alg_id,key",
    [
        ("des-cbc", EncAlg.DESCBC, '"12345678"'),
        ("3des-cbc", EncAlg.THREEDESCBC, '"123456789012345678901234"'),
        ("blowfish-cbc", EncAlg.BLOWFISHCBC, '".w,emslk3i"'),
        ("cast128-cbc", EncAlg.CAST128CBC, '"12345"'),
        ("aes-cbc", EncAlg.AESCBC, '"1234567890123456"'),
        ("rijndael-cbc", EncAlg.AESCBC, "0x" + "00" * 32),
        ("twofish-cbc", EncAlg.TWOFISHCBC, "0x" + "11" * 16),
        ("camellia-cbc", EncAlg.CAMELLIACBC, "0x" + "22" * 24),
        ("aes-ctr", EncAlg.AESCTR, "0x" + "33" * 20),
        ("des-deriv", EncAlg.DESCBC, '"12345678"'),
    ],
)
def test_encryption_names(name: str, alg_id: int, key: str) -> None:
    cmd = one(f"add 10.0.0.1 10.0.0.2 esp 300 -E {name} {key};")
    assert cmd.enc_alg == alg_id
    if name == "des-deriv":
        assert cmd.flags & SaFlags.DERIV


def test_des_32iv_needs_esp_old() -> None:
    cmd = one('add 10.0.0.1 10.0.0.2 esp-old 300 -E des-32iv "12345678";')
    assert cmd.flags == SaFlags.CYCSEQ | SaFlags.OLD | SaFlags.IV4B
    e = err('add 10.0.0.1 10.0.0.2 esp 300 -E des-32iv "12345678";')
    assert (e.message, e.token) == ("algorithm mismatched", "des-32iv")
    e = err('add 10.0.0.1 10.0.0.2 esp-old 300 -E des-deriv "12345678";')
    assert e.message == "algorithm mismatched"


@pytest.mark.parametrize(
    "name,alg_id,nbytes",
    [
        ("hmac-md5", AuthAlg.MD5HMAC, 16),
        ("hmac-sha1", AuthAlg.SHA1HMAC, 20),
        ("keyed-md5", AuthAlg.MD5, 16),
        ("keyed-sha1", AuthAlg.SHA, 20),
        ("hmac-sha2-256", AuthAlg.SHA2_256, 32),
        ("hmac-sha256", AuthAlg.SHA2_256, 32),
        ("hmac-sha2-384", AuthAlg.SHA2_384, 48),
        ("hmac-sha384", AuthAlg.SHA2_384, 48),
        ("hmac-sha2-512", AuthAlg.SHA2_512, 64),
        ("hmac-sha512", AuthAlg.SHA2_512, 64),
        ("hmac-ripemd160", AuthAlg.RIPEMD160HMAC, 20),
        ("aes-xcbc-mac", AuthAlg.AES_XCBC_MAC, 16),
    ],
)
def test_authentication_names(name: str, alg_id: int, nbytes: int) -> None:
    cmd = one(f"add 10.0.0.1 10.0.0.2 ah 300 -A {name} 0x{'ab' * nbytes};")
    assert cmd.satype == SaType.AH and cmd.auth_alg == alg_id and cmd.auth_key == b"\xab" * nbytes


def test_null_algorithms_take_no_key() -> None:
    cmd = one("add 10.0.0.1 10.0.0.2 esp 300 -E null -A null;")
    assert (cmd.enc_alg, cmd.enc_key) == (EncAlg.NULL, b"")
    assert (cmd.auth_alg, cmd.auth_key) == (AuthAlg.NULL, None)
    e = err('add 10.0.0.1 10.0.0.2 esp 300 -E null "key";')
    assert (e.message, e.token) == ("syntax error", "key")


def test_simple_is_an_obsolete_null_with_an_optional_key() -> None:
    script = parse_script(
        'add 10.0.0.1 10.0.0.2 esp 300 -E simple "asa;32qiqj5q2p983sdkfjxcjv" '
        '-A keyed-md5 "ks,dlw3k529a0cks";\nadd 10.0.0.1 10.0.0.2 esp 301 -E simple;',
        opts(),
    )
    first, second = script.commands
    assert first.enc_alg == EncAlg.NULL and first.enc_key == b"asa;32qiqj5q2p983sdkfjxcjv"
    assert second.enc_key == b""
    assert script.warnings == [
        "line 1: WARNING: obsolete algorithm at [simple]",
        "line 2: WARNING: obsolete algorithm at [simple]",
    ]


def test_hex_keys_and_the_odd_digit_rule() -> None:
    cmd = one("add 10.0.0.1 10.0.0.2 esp 300 -E des-cbc 0xabc1234567890def;")
    assert cmd.enc_key == bytes.fromhex("abc1234567890def")
    # nine digits: the first one is a byte of its own, 0xabc12345f = 0a bc 12 34 5f (40 bits)
    cmd = one("add 10.0.0.1 10.0.0.2 esp 300 -E blowfish-cbc 0xabc12345f;")
    assert cmd.enc_key == bytes([0x0A, 0xBC, 0x12, 0x34, 0x5F])


def test_compression() -> None:
    cmd = one("add 10.0.0.1 10.0.0.2 ipcomp 0x4000 -C deflate -R;")
    assert cmd.satype == SaType.IPCOMP and cmd.enc_alg == CompAlg.DEFLATE
    assert cmd.flags == SaFlags.CYCSEQ | SaFlags.RAWCPI and cmd.enc_key is None
    assert one("add 10.0.0.1 10.0.0.2 ipcomp 0x4000 -C lzs;").enc_alg == CompAlg.LZS
    assert one("add 10.0.0.1 10.0.0.2 ipcomp 0x4000 -C oui;").enc_alg == CompAlg.OUI


def test_old_protocols_set_the_old_flag() -> None:
    cmd = one('add 10.0.0.1 10.0.0.2 ah-old 300 -A keyed-md5 "1234567890123456";')
    assert cmd.satype == SaType.AH and cmd.flags & SaFlags.OLD
    e = err("add 10.0.0.1 10.0.0.2 esp-old 300 -r 4 -E null;")
    assert e.message == "replay prevention cannot be used with ah/esp-old"


def test_nat_t_esp_udp_with_original_address() -> None:
    cmd = one("add 10.0.0.1[4500] 10.0.0.2[4501] esp-udp 192.168.1.1 300 -E null;")
    assert cmd.satype == SaType.ESP and cmd.natt_type == NatTType.ESPINUDP
    assert cmd.natt_oa == Endpoint(ipaddress.ip_address("192.168.1.1"))
    assert cmd.srcs[0].port == 4500 and cmd.dsts[0].port == 4501
    plain = one("add 10.0.0.1 10.0.0.2 esp-udp 300 -E null;")
    assert plain.natt_type == NatTType.ESPINUDP and plain.natt_oa is None


def test_tcp_md5_checks_its_own_key_length() -> None:
    cmd = one('add 10.0.0.1 10.0.0.2 tcp 0x1000 -A tcp-md5 "secret";')
    assert cmd.satype == SaType.TCPSIGNATURE and cmd.auth_alg == AuthAlg.TCP_MD5
    e = err(f'add 10.0.0.1 10.0.0.2 tcp 0x1000 -A tcp-md5 "{"x" * 81}";')
    assert e.message == "Invalid key length"


def test_get_and_delete() -> None:
    script = parse_script(
        "get 10.0.0.1 10.0.0.2 esp 300;\ndelete -4n 10.0.0.1 10.0.0.2 ah 0x12c -m transport;",
        opts(),
    )
    get, delete = script.commands
    assert (get.verb, get.spi, get.satype) == ("get", 300, SaType.ESP)
    assert (delete.verb, delete.spi, delete.satype) == ("delete", 300, SaType.AH)
    assert script.warnings == ["line 2: WARNING: mode is obsolete at [;]"]


def test_getspi() -> None:
    cmd = one("getspi 10.0.0.1 10.0.0.2 esp 0x5000 -u 3;")
    assert (cmd.verb, cmd.spi, cmd.reqid) == ("getspi", 0x5000, 3)


def test_spi_sizes() -> None:
    assert one("add 10.0.0.1 10.0.0.2 esp 0xffffffff -E null;").spi == 0xFFFFFFFF
    e = err("add 10.0.0.1 10.0.0.2 esp 0x100000000 -E null;")
    assert (e.message, e.token) == ("SPI too big.", "0x100000000")
    e = err("add 10.0.0.1 10.0.0.2 esp 4294967296 -E null;")
    assert e.message == "SPI too big."


# --------------------------------------------------------------------------------------------
# key lengths


@pytest.mark.parametrize(
    "alg,nbytes,rng",
    [
        ("des-cbc", 7, "56 64 64"),
        ("3des-cbc", 23, "184 192 192"),
        ("blowfish-cbc", 57, "456 40 448"),
        ("cast128-cbc", 4, "32 40 128"),
        ("aes-cbc", 15, "120 128 256"),
    ],
)
def test_encryption_key_lengths(alg: str, nbytes: int, rng: str) -> None:
    e = err(f"add 10.0.0.1 10.0.0.2 esp 300 -E {alg} 0x{'01' * nbytes};")
    assert e.render() == f"line 1: Invalid key length at [0x{'01' * nbytes}]"
    bits, lo, hi = rng.split()
    assert DIAG[0] == rng  # libipsec's own line, unchanged
    assert DIAG[1].startswith(f"line 1: the {alg} encryption key is {bits} bits ({nbytes} bytes)")
    allowed = f"{lo} to {hi} bits" if lo != hi else f"exactly {hi} bits ({int(hi) // 8} bytes)"
    assert DIAG[1].endswith(f"{alg} takes {allowed}")


@pytest.mark.parametrize(
    "alg,nbytes,rng",
    [
        ("hmac-md5", 15, "120 128 128"),
        ("hmac-sha1", 21, "168 160 160"),
        ("keyed-md5", 17, "136 128 128"),
        ("keyed-sha1", 16, "128 160 160"),
        ("hmac-sha2-256", 16, "128 256 256"),
        ("hmac-sha2-384", 32, "256 384 384"),
        ("hmac-sha2-512", 32, "256 512 512"),
    ],
)
def test_authentication_key_lengths(alg: str, nbytes: int, rng: str) -> None:
    e = err(f'add 10.0.0.1 10.0.0.2 ah 300 -A {alg} "{"k" * nbytes}";')
    assert e.render() == f"line 1: Invalid key length at [{'k' * nbytes}]"
    bits, _, hi = rng.split()
    assert DIAG == [
        rng,
        f"line 1: the {alg} authentication key is {bits} bits ({nbytes} bytes); "
        f"{alg} takes exactly {hi} bits ({int(hi) // 8} bytes)",
    ]


def test_key_lengths_come_from_the_kernel_ranges() -> None:
    narrow = SupportedAlgorithms({EncAlg.AESCBC: KeyRange(256, 256)}, {})
    e = err('add 10.0.0.1 10.0.0.2 esp 300 -E aes-cbc "1234567890123456";', supported=narrow)
    assert e.message == "Invalid key length" and DIAG[0] == "128 256 256"
    assert DIAG[1].endswith("aes-cbc takes exactly 256 bits (32 bytes)")
    e = err('add 10.0.0.1 10.0.0.2 esp 300 -E des-cbc "12345678";', supported=narrow)
    assert e.message == "Not supported"
    unknown = SupportedAlgorithms()
    e = err('add 10.0.0.1 10.0.0.2 esp 300 -E des-cbc "12345678";', supported=unknown)
    assert e.message == "Must get supported algorithms list first"


def test_keylen_diagnostic_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SetkeySyntaxError):
        parse_script(
            'add 10.0.0.1 10.0.0.2 esp 300 -E des-cbc "1234567";',
            ParseOptions(resolver=fake_resolver),
        )
    assert capsys.readouterr().err == (
        "56 64 64\n"
        "line 1: the des-cbc encryption key is 56 bits (7 bytes); des-cbc takes exactly 64 bits "
        "(8 bytes)\n"
    )


# --------------------------------------------------------------------------------------------
# addresses


def test_address_families_and_resolution() -> None:
    cmd = one("add gw.example 10.0.0.2 esp 300 -E null;")
    assert cmd.srcs == [
        Endpoint(ipaddress.ip_address("192.0.2.1")),
        Endpoint(ipaddress.ip_address("2001:db8::1")),
    ]
    assert one("add -6 gw.example ::2 esp 300 -E null;").srcs == [
        Endpoint(ipaddress.ip_address("2001:db8::1"))
    ]
    e = err("add -n gw.example 10.0.0.2 esp 300 -E null;")
    assert e.render() == "line 1: Name or service not known at [gw.example]"
    e = err("add -6 10.0.0.1 10.0.0.2 esp 300 -E null;")
    assert e.message == "Address family for hostname not supported"
    e = err("add nowhere.example 10.0.0.2 esp 300 -E null;")
    assert e.message == "Name or service not known"


def test_scoped_ipv6_addresses() -> None:
    cmd = one("add fe80::1%1 fe80::2%1 esp 300 -E null;")
    assert cmd.srcs[0].scope_id == 1 and str(cmd.srcs[0].addr) == "fe80::1"


def test_delete_refuses_several_addresses_but_get_loops() -> None:
    e = err("delete two.example 10.0.0.2 esp 300;")
    assert e.message == "multiple address specified"
    assert len(one("get two.example 10.0.0.2 esp 300;").srcs) == 2


def test_mixed_families_are_refused() -> None:
    assert err("add 10.0.0.1 ::1 esp 300 -E null;").message == (
        "source and destination address families differ"
    )
    assert err("spdadd 10.0.0.1 ::1 any -P out none;").message == (
        "source and destination address families differ"
    )


def test_ports() -> None:
    cmd = one("spdadd 10.0.0.1[1234] 10.0.0.2[any] udp -P out none;")
    assert cmd.src.port == 1234 and cmd.dst.port == 0
    e = err("spdadd 10.0.0.1[70000] 10.0.0.2 udp -P out none;")
    assert e.message == "Servname not supported for ai_socktype"


# --------------------------------------------------------------------------------------------
# deleteall / flush / dump / spdflush / spddump / exit


def test_table_commands() -> None:
    script = parse_script(
        "deleteall 10.0.0.1 10.0.0.2 esp;\nflush;\nflush ah;\ndump;\ndump ipcomp;\n"
        "spdflush;\nspddump;\n",
        opts(),
    )
    kinds = [type(c) for c in script.commands]
    assert kinds == [
        DeleteAllCommand,
        FlushCommand,
        FlushCommand,
        DumpCommand,
        DumpCommand,
        SpdFlushCommand,
        SpdDumpCommand,
    ]
    assert [c.line for c in script.commands] == [1, 2, 3, 4, 5, 6, 7]
    assert script.commands[1].satype == SaType.UNSPEC
    assert script.commands[2].satype == SaType.AH
    assert script.commands[4].satype == SaType.IPCOMP


@pytest.mark.parametrize("word", ["exit", "quit", "bye"])
def test_exit_stops_parsing(word: str) -> None:
    script = parse_script(f"flush;\n{word};\nthis is not parsed", opts())
    assert script.exited and len(script.commands) == 1


def test_commands_span_lines_and_comments() -> None:
    script = parse_script(
        "# manual keys\nadd 10.0.0.1   # source\n\t10.0.0.2 esp\n 300 -E null\n;\n", opts()
    )
    assert script.commands[0].line == 5


# --------------------------------------------------------------------------------------------
# spdadd / spdupdate / spddelete


def test_seed_spd_lines() -> None:
    script = parse_script(
        "spdflush;\nspdadd ::/0 ::/0 any -P out ipsec esp/transport//use;\n"
        "spdadd ::/0 ::/0 any -P in ipsec esp/transport//use;\nflush;\n",
        opts(),
    )
    out, inb = script.commands[1], script.commands[2]
    assert isinstance(out, SpdCommand) and out.verb == "spdadd"
    assert out.src_prefix == 0 and out.dst_prefix == 0 and out.ulproto == 255
    assert out.policy.dir == Direction.OUTBOUND and inb.policy.dir == Direction.INBOUND
    assert out.policy.priority == Priority.DEFAULT
    (req,) = out.policy.requests
    assert (req.proto, req.mode, req.level) == (IpProto.ESP, Mode.TRANSPORT, Level.USE)


def test_host_prefix_by_default() -> None:
    cmd = one("spdadd 10.0.0.1 10.0.0.0/8 any -P out discard;")
    assert (cmd.src_prefix, cmd.dst_prefix) == (32, 8)
    cmd = one("spdupdate 2001:db8::1 2001:db8::/32[443] tcp -P out bypass;")
    assert (cmd.verb, cmd.src_prefix, cmd.dst_prefix, cmd.dst.port) == ("spdupdate", 128, 32, 443)
    assert cmd.ulproto == 6 and cmd.policy.policy_type == PolicyType.BYPASS
    e = err("spdadd 10.0.0.1/33 10.0.0.2 any -P out discard;")
    assert (e.message, e.token) == ("Invalid prefix length", "33")


@pytest.mark.parametrize(
    "upper,number",
    [
        ("any", 255),
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("icmp6", 58),
        ("ipv6-icmp", 58),
        ("ip4", 4),
        ("gre", 47),
        ("sctp", 132),
        ("132", 132),
        ("0", 0),
        ("UDP", 17),
    ],
)
def test_upper_layer_protocols(upper: str, number: int) -> None:
    assert one(f"spdadd 10.0.0.1 10.0.0.2 {upper} -P out none;").ulproto == number


def test_unknown_upper_layer_protocol() -> None:
    e = err("spdadd 10.0.0.1 10.0.0.2 nosuchproto -P out none;")
    assert (e.message, e.token) == ("invalid upper layer protocol", "nosuchproto")
    e = err("spdadd 10.0.0.1 10.0.0.2 256 -P out none;")
    assert e.message == "invalid upper layer protocol"


def test_icmp_type_code_and_gre_key_go_into_the_ports() -> None:
    cmd = one("spdadd 10.0.0.1 10.0.0.2 icmp 8,0 -P out none;")
    assert (cmd.src.port, cmd.dst.port) == (8, 0)
    cmd = one("spdadd ::1 ::2 icmp6 135,3 -P out none;")
    assert (cmd.src.port, cmd.dst.port) == (135, 3)
    cmd = one("spdadd 10.0.0.1 10.0.0.2 gre 1.2.3.4 -P out none;")
    assert (cmd.src.port, cmd.dst.port) == (0x0102, 0x0304)
    cmd = one("spdadd 10.0.0.1 10.0.0.2 gre 305419896 -P out none;")
    assert (cmd.src.port, cmd.dst.port) == (0x1234, 0x5678)
    e = err("spdadd 10.0.0.1 10.0.0.2 tcp 8,0 -P out none;")
    assert e.message == "invalid an upper layer protocol spec"
    e = err("spdadd 10.0.0.1 10.0.0.2 icmp 8,0,1 -P out none;")
    assert e.message == "invalid an upper layer protocol spec"


def test_security_context_on_a_policy() -> None:
    cmd = one('spdadd 10.0.0.1 10.0.0.2 any -ctx 1 1 "user_u:role_r:type_t" -P out none;')
    assert cmd.ctx is not None and cmd.ctx.text == b"user_u:role_r:type_t\0"


def test_spddelete_needs_only_the_direction() -> None:
    cmd = one("spddelete 10.0.0.0/24 10.0.1.0/24 any -P out;")
    assert cmd.verb == "spddelete" and cmd.policy.dir == Direction.OUTBOUND
    assert cmd.policy.priority == 0 and cmd.policy.requests == []


def test_tagged_policy() -> None:
    cmd = one('spdadd tagged "web" -P out discard;')
    assert cmd.tag == "web" and cmd.src is None
    assert err('spddelete tagged "web" -P out;').message == "syntax error"


def test_policy_errors_are_reported_with_the_policy_text() -> None:
    e = err("spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel//require;")
    assert e.render() == (
        "line 1: Invalid address specification at [ out ipsec esp/tunnel//require]"
    )
    with pytest.raises(SetkeySyntaxError) as info:
        parse_script("spdadd 10.0.0.1 10.0.0.2 any -P sideways ipsec;", opts())
    assert info.value.message == "Invalid argument"
    assert info.value.warnings == [
        'libipsec: syntax error while parsing "sideways"'
    ]


def test_fwd_copy_turns_unique_into_require() -> None:
    cmd = one(
        "spdadd 10.0.0.1 10.0.0.2 any -P in ipsec esp/transport//unique:5 ah/transport//unique:6;"
    )
    fwd = fwd_copy(cmd.policy)
    assert fwd.dir == Direction.FWD
    assert [(r.level, r.reqid) for r in fwd.requests] == [(Level.REQUIRE, 0), (Level.UNIQUE, 6)]
    assert [(r.level, r.reqid) for r in cmd.policy.requests] == [
        (Level.UNIQUE, 5),
        (Level.UNIQUE, 6),
    ]


# --------------------------------------------------------------------------------------------
# syntax errors


@pytest.mark.parametrize(
    "text,line,message,token",
    [
        ("bogus;", 1, "syntax error", "bogus"),
        ("add 10.0.0.1 10.0.0.2 esp 300;", 1, "syntax error", ";"),
        ("add 10.0.0.1 10.0.0.2 esp -E null;", 1, "syntax error", "-E"),
        ("flush\nadd", 2, "syntax error", "add"),
        ("\n\nadd 10.0.0.1 10.0.0.2 esp 300 -E null", 3, "syntax error", ""),
        ('add 10.0.0.1 10.0.0.2 esp 300 -E foo-cbc "k";', 1, "syntax error", "foo-cbc"),
        ("add 10.0.0.1 10.0.0.2 esp 300 -A null -E null;", 1, "syntax error", "-E"),
        ("add 10.0.0.1 10.0.0.2 esp 300 -m sideways -E null;", 1, "syntax error", "sideways"),
        ("add 10.0.0.1 10.0.0.2 esp 300 -f foo-pad -E null;", 1, "syntax error", "foo-pad"),
        ("add 10.0.0.1 10.0.0.2 ipcomp 300 -C zip;", 1, "syntax error", "zip"),
        ("add 10.0.0.1 10.0.0.2 esp 300 -E null extra;", 1, "syntax error", "extra"),
        ("spdadd 10.0.0.1 10.0.0.2 any;", 1, "syntax error", ";"),
        ("spdflush now;", 1, "syntax error", "now"),
        ("exit now;", 1, "syntax error", "now"),
        ("add 10.0.0.1 10.0.0.2 esp 300 -E null; %", 1, "Syntax error", "%"),
        ('add 10.0.0.1 10.0.0.2 esp 300 -u "x" -E null;', 1, "syntax error", "x"),
        (
            "add 10.0.0.1 10.0.0.2 esp 300 -r 300 -E null;",
            1,
            "replay window too large (at most 255)",
            "300",
        ),
    ],
)
def test_syntax_errors(text: str, line: int, message: str, token: str) -> None:
    e = err(text)
    assert (e.line, e.message, e.token) == (line, message, token)


def test_an_error_anywhere_means_no_commands() -> None:
    with pytest.raises(SetkeySyntaxError) as e:
        parse_script('flush;\nspdflush;\nadd 10.0.0.1 10.0.0.2 esp 300 -E des-cbc "x";\n', opts())
    assert e.value.line == 3


def test_quoted_keys_keep_raw_bytes() -> None:
    text = 'add 10.0.0.1 10.0.0.2 esp 300 -E des-cbc "\xe9t\xe9 abcd";'
    assert one(text).enc_key == b"\xe9t\xe9 abcd"


# --------------------------------------------------------------------------------------------
# robustness: any input gives commands or a SetkeySyntaxError, nothing else

_WORDS = [
    "add", "get", "delete", "deleteall", "getspi", "flush", "dump", "spdadd", "spdupdate",
    "spddelete", "spdflush", "spddump", "exit", "tagged", "esp", "ah", "esp-old", "esp-udp",
    "ipcomp", "tcp", "any", "transport", "tunnel", "-E", "-A", "-C", "-R", "-m", "-u", "-f",
    "-r", "-lh", "-bs", "-ctx", "-4", "-n", "-P", "des-cbc", "null", "simple", "hmac-md5",
    "keyed-sha1", "deflate", "zero-pad", "nocyclic-seq", "10.0.0.1", "::1", "10.0.0.0/8",
    "[any]", "[500]", "/", "[", "]", "0x1234", "0xabc", "300", "65536", "99999999999",
    '"key"', '"12345678"', "icmp", "8,0", "gre", "1.2.3.4", ";", ";", ";", "\n", "#c\n",
    "out", "in", "fwd", "ipsec", "discard", "prio", "def", "+", "-", "esp/transport//require",
    "esp/tunnel/1.2.3.4-5.6.7.8/unique:3", "host.example", "@", '"unterminated',
]  # fmt: skip


def numeric_only(host: str, port: int, family: int, numeric: bool) -> list[Endpoint]:
    ep = numeric_endpoint(host, port, family)
    if ep is None:
        raise LookupError("Name or service not known")
    return [ep]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=25))
def test_parser_is_total(words: list[str]) -> None:
    text = " ".join(words)
    options = ParseOptions(resolver=numeric_only, keylen_diagnostic=lambda s: None)
    try:
        script = parse_script(text, options)
    except SetkeySyntaxError as e:
        assert e.line >= 1 and isinstance(e.message, str) and e.message
        return
    for cmd in script.commands:
        if isinstance(cmd, SaCommand):
            for msg in sa_messages(cmd):
                assert decode(encode(msg)) == msg
        elif isinstance(cmd, SpdCommand):
            for msg in spd_messages(cmd):
                assert decode(encode(msg)) == msg
