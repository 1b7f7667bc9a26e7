"""racoonctl's SAOPTS syntax → AdminIndex, and the errors for everything else."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from pyracoon.admin.errors import SaoptsError
from pyracoon.admin.protocol import AdminProto, SockAddr, UlProto
from pyracoon.admin.saopts import parse_endpoint, parse_index, parse_proto, parse_saopts

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


def test_isakmp() -> None:
    proto, index = parse_saopts(["isakmp", "inet", "192.0.2.1", "192.0.2.2"])
    assert proto == AdminProto.ADMIN_PROTO_ISAKMP
    assert index.src == SockAddr(V4("192.0.2.1")) and index.dst == SockAddr(V4("192.0.2.2"))
    assert (index.prefs, index.prefd, index.ul_proto) == (32, 32, 0)


def test_esp_with_prefixes_ports_and_ul_proto() -> None:
    proto, index = parse_saopts(["esp", "inet", "10.0.1.0/24[any]", "10.0.2.5/32[80]", "tcp"])
    assert proto == AdminProto.ADMIN_PROTO_ESP
    assert index.src == SockAddr(V4("10.0.1.0"), 0) and index.prefs == 24
    assert index.dst == SockAddr(V4("10.0.2.5"), 80) and index.prefd == 32
    assert index.ul_proto == UlProto.TCP


def test_port_without_prefix_and_inet6_defaults() -> None:
    proto, index = parse_saopts(["ah", "inet6", "2001:db8::1[500]", "2001:db8::/64", "udp"])
    assert proto == AdminProto.ADMIN_PROTO_AH
    assert index.src == SockAddr(V6("2001:db8::1"), 500)
    assert index.prefs == 128  # racoonctl would say 32 here, making an IPv6 /32
    assert index.prefd == 64 and index.ul_proto == 17


@pytest.mark.parametrize(("word", "value"), [
    ("any", 0), ("icmp", 1), ("tcp", 6), ("udp", 17), ("gre", 47)])
def test_ul_protos(word: str, value: int) -> None:
    assert parse_index(["inet", "1.1.1.1", "2.2.2.2", word]).ul_proto == value


def test_numeric_scope() -> None:
    sock, plen = parse_endpoint("fe80::1%7[500]", 6)
    assert sock == SockAddr(V6("fe80::1"), 500, 0, 7) and plen == 128


def test_interface_scope() -> None:
    sock, _ = parse_endpoint("fe80::1%lo", 6)
    assert sock.scope_id == socket.if_nametoindex("lo")


@pytest.mark.parametrize(("args", "message"), [
    (["foo", "inet", "1.1.1.1", "2.2.2.2"],
     "unknown protocol 'foo': expected isakmp, ah, esp"),
    (["ipsec", "inet", "1.1.1.1", "2.2.2.2"], "protocol 'ipsec' cannot be used here"),
    (["esp", "ipx", "1.1.1.1", "2.2.2.2"], "unknown address family 'ipx'"),
    (["esp", "inet", "10.0.0.x", "2.2.2.2"], "bad address '10.0.0.x'"),
    (["esp", "inet6", "10.0.0.1", "::1"], "inet6 given but 10.0.0.1 is IPv4"),
    (["esp", "inet", "10.0.0.1", "::1"], "inet given but ::1 is IPv6"),
    (["esp", "inet", "10.0.0.1/33", "10.0.0.2"], "bad prefix length '33' in '10.0.0.1/33'"),
    (["esp", "inet", "10.0.0.1/abc", "10.0.0.2"], "bad prefix length 'abc'"),
    (["esp", "inet6", "::1/129", "::2"], "expected 0..128"),
    (["esp", "inet", "10.0.0.1[70000]", "10.0.0.2"], "bad port '70000'"),
    (["esp", "inet", "10.0.0.1[http]", "10.0.0.2"], "bad port 'http'"),
    (["esp", "inet", "10.0.0.1[500", "10.0.0.2"], "bad address '10.0.0.1[500'"),
    (["esp", "inet", "/24", "10.0.0.2"], "bad address '/24'"),
    (["esp", "inet", "10.0.0.1%eth0", "10.0.0.2"], "only IPv6 addresses have a %scope"),
    (["esp", "inet6", "fe80::1%nosuchif0", "::2"], "unknown interface 'nosuchif0'"),
    (["esp", "inet", "1.1.1.1", "2.2.2.2", "sctp"], "unknown upper-layer protocol 'sctp'"),
    (["esp", "inet", "1.1.1.1"], "insufficient arguments"),
    (["esp", "inet", "1.1.1.1", "2.2.2.2", "tcp", "x"], "too many arguments: 'x'"),
    (["esp", "inet", "host.example", "2.2.2.2"], "bad address 'host.example'"),
    ([], "insufficient arguments"),
])
def test_errors(args: list[str], message: str) -> None:
    with pytest.raises(SaoptsError) as e:
        parse_saopts(args)
    assert message in e.value.message


def test_error_names_the_argument() -> None:
    with pytest.raises(SaoptsError) as e:
        parse_saopts(["esp", "inet", "1.1.1.1", "10.0.0.x"])
    assert e.value.argument == "10.0.0.x"


def test_parse_proto_accepts_every_racoonctl_word() -> None:
    assert [parse_proto(w) for w in ("isakmp", "ipsec", "ah", "esp", "internal")] == [
        0x01FF, 0x02FF, 0x0201, 0x0202, 0x0301]
