"""libipsec's policy language: ipsec_set_policy and ipsec_dump_policy (ipsec_set_policy(3))."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.kernel.pfkey import IpsecRequest, Policy
from pyracoon.kernel.sadb import Direction, IpProto, Level, Mode, PolicyType, Priority
from pyracoon.setkey.errors import PolicySyntaxError
from pyracoon.setkey.policy import dump_policy, parse_policy

DEF = int(Priority.DEFAULT)


def test_directions_and_actions() -> None:
    for word, d in (("in", Direction.INBOUND), ("out", Direction.OUTBOUND), ("fwd", Direction.FWD)):
        assert parse_policy(f"{word} discard").dir == d
    for word, t in (
        ("discard", PolicyType.DISCARD),
        ("none", PolicyType.NONE),
        ("ipsec", PolicyType.IPSEC),
        ("entrust", PolicyType.ENTRUST),
        ("bypass", PolicyType.BYPASS),
    ):
        p = parse_policy(f"out {word}")
        assert p.policy_type == t and p.priority == DEF and p.requests == []


@pytest.mark.parametrize(
    "text,priority",
    [
        ("out ipsec", DEF),
        ("out prio 5 ipsec", DEF - 5),
        ("out priority 5 ipsec", DEF - 5),
        ("out prio - 5 ipsec", DEF + 5),
        ("out prio def ipsec", DEF),
        ("out prio low ipsec", 0xC0000000),
        ("out prio high ipsec", 0x40000000),
        ("out prio high + 5 ipsec", 0x40000000 - 5),
        ("out prio low - 7 ipsec", 0xC0000007),
        ("out prio def - 1073741823 ipsec", DEF + 0x3FFFFFFF),
        ("out prio def + 1073741824 ipsec", DEF - 0x40000000),
    ],
)
def test_priorities(text: str, priority: int) -> None:
    assert parse_policy(text).priority == priority


@pytest.mark.parametrize(
    "text",
    ["out prio def + 1073741825 ipsec", "out prio def - 1073741824 ipsec"],
)
def test_priority_offsets_out_of_range(text: str) -> None:
    with pytest.raises(PolicySyntaxError) as e:
        parse_policy(text)
    assert e.value.message.startswith("Priority offset from base not in valid range")


def test_direction_alone_is_the_spddelete_form() -> None:
    p = parse_policy("in")
    assert (p.dir, p.policy_type, p.priority, p.requests) == (Direction.INBOUND, 0, 0, [])


def test_rules_and_bundles() -> None:
    p = parse_policy(
        "out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require ah/transport//use "
        "ipcomp/transport/ esp/transport//unique:9 esp/transport//unique esp/transport"
    )
    assert [(r.proto, r.mode, r.level, r.reqid) for r in p.requests] == [
        (IpProto.ESP, Mode.TUNNEL, Level.REQUIRE, 0),
        (IpProto.AH, Mode.TRANSPORT, Level.USE, 0),
        (IpProto.IPCOMP, Mode.TRANSPORT, Level.DEFAULT, 0),
        (IpProto.ESP, Mode.TRANSPORT, Level.UNIQUE, 9),
        (IpProto.ESP, Mode.TRANSPORT, Level.UNIQUE, 0),
        (IpProto.ESP, Mode.TRANSPORT, Level.DEFAULT, 0),
    ]
    first = p.requests[0]
    assert first.src == ipaddress.ip_address("192.0.2.1")
    assert first.dst == ipaddress.ip_address("192.0.2.2")
    assert all(r.src is None for r in p.requests[1:])


def test_tunnel_with_nat_t_ports_and_ipv6() -> None:
    p = parse_policy("out ipsec esp/tunnel/192.0.2.1[4500]-192.0.2.2[4500]/require")
    assert (p.requests[0].src_port, p.requests[0].dst_port) == (4500, 4500)
    p = parse_policy("in ipsec\n\tesp/tunnel/2001:db8::1-2001:db8::2/use")
    assert p.requests[0].src == ipaddress.ip_address("2001:db8::1")


def test_me_any_shortcuts() -> None:
    parse_policy("out ipsec esp/transport/me-any/require")
    parse_policy("in ipsec esp/transport/any-me/require")
    with pytest.raises(PolicySyntaxError) as e:
        parse_policy("in ipsec esp/transport/me-any/require")
    assert e.value.message == "Invalid direciton"


@pytest.mark.parametrize(
    "text,message",
    [
        ("out ipsec esp/tunnel//require", "Invalid address specification"),
        ("out ipsec esp/tunnel/me-any/require", "Invalid address specification"),
        ("out ipsec esp", "Too few arguments"),
        ("out ipsec esp/", "Too few arguments"),
        ("out ipsec esp/tunnel/192.0.2.1-2001:db8::1/require", "Family mismatch"),
        ("out ipsec esp/transport//unique:16384", "Invalid ipsec level"),
        ("out ipsec esp/transport//sometimes", "Invalid argument"),
        ("sideways ipsec", "Invalid argument"),
        ("out maybe", "Invalid argument"),
        ("out ipsec gre/transport//use", "Invalid argument"),
        ("out ipsec esp/tunnel/host-192.0.2.2/require", "Name or service not known"),
        ("out prio middle ipsec", "Invalid argument"),
        ("out ipsec esp/transport//use !", "Invalid argument"),
    ],
)
def test_policy_errors(text: str, message: str) -> None:
    with pytest.raises(PolicySyntaxError) as e:
        parse_policy(text)
    assert e.value.message == message


def test_non_ipsec_policies_keep_unchecked_rules() -> None:
    # libipsec checks rules only for "ipsec"; others are stored as given
    p = parse_policy("out none esp/tunnel//require")
    assert len(p.requests) == 1


@pytest.mark.parametrize(
    "priority,text",
    [
        (0, "out ipsec"),
        (DEF, "out prio def ipsec"),
        (DEF - 5, "out prio def + 5 ipsec"),
        (DEF + 5, "out prio def - 5 ipsec"),
        (0x40000000, "out prio high ipsec"),
        (0x40000000 + 3, "out prio high - 3 ipsec"),
        (0xC0000000, "out prio low ipsec"),
        (0xC0000000 - 2, "out prio low + 2 ipsec"),
        (0x5FFFFFFF, "out prio high - 536870911 ipsec"),
        (0x60000000, "out prio def + 536870912 ipsec"),
        (0xA0000000, "out prio low + 536870912 ipsec"),
    ],
)
def test_dump_priorities(priority: int, text: str) -> None:
    assert dump_policy(Policy(PolicyType.IPSEC, Direction.OUTBOUND, 0, priority)) == text


def test_dump_requests_with_delimiter_and_ports() -> None:
    p = Policy(
        PolicyType.IPSEC,
        Direction.INBOUND,
        0,
        DEF,
        [
            IpsecRequest(
                IpProto.ESP,
                Mode.TUNNEL,
                Level.REQUIRE,
                0,
                ipaddress.ip_address("10.0.0.1"),
                ipaddress.ip_address("10.0.0.2"),
                4500,
                4501,
            ),
            IpsecRequest(IpProto.AH, Mode.TRANSPORT, Level.UNIQUE, 7),
            IpsecRequest(IpProto.IPCOMP, Mode.TRANSPORT, Level.UNIQUE, 0x4000),
        ],
    )
    assert dump_policy(p, "\n\t") == (
        "in prio def ipsec\n\tesp/tunnel/10.0.0.1-10.0.0.2/require\n\tah/transport//unique:7"
        "\n\tipcomp/transport//unique#16384"
    )
    assert dump_policy(p, " ", with_ports=True).split(" ")[4] == (
        "esp/tunnel/10.0.0.1[4500]-10.0.0.2[4501]/require"
    )


def test_dump_of_non_ipsec_actions_has_no_requests() -> None:
    p = Policy(PolicyType.DISCARD, Direction.FWD, 0, DEF, [IpsecRequest()])
    assert dump_policy(p) == "fwd prio def discard"
    assert dump_policy(Policy(PolicyType.BYPASS, 4, 0, 0)) == "in(socket) bypass"


def test_dump_refuses_values_libipsec_cannot_print() -> None:
    with pytest.raises(PolicySyntaxError, match="Invalid direciton"):
        dump_policy(Policy(PolicyType.IPSEC, 9, 0, 0))
    with pytest.raises(PolicySyntaxError, match="Invalid security policy"):
        dump_policy(Policy(7, 1, 0, 0))
    with pytest.raises(PolicySyntaxError, match="Invalid ipsec protocol"):
        dump_policy(Policy(PolicyType.IPSEC, 1, 0, 0, [IpsecRequest(proto=17)]))


_levels = st.sampled_from(["default", "use", "require", "unique", "unique:1", "unique:16383"])
_rule = st.builds(
    lambda proto, mode, level, v6: (
        f"{proto}/tunnel/{'2001:db8::1-2001:db8::2' if v6 else '192.0.2.1-192.0.2.2'}/{level}"
        if mode == "tunnel"
        else f"{proto}/transport//{level}"
    ),
    st.sampled_from(["esp", "ah", "ipcomp"]),
    st.sampled_from(["transport", "tunnel"]),
    _levels,
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["in", "out", "fwd"]),
    st.sampled_from(["", "prio def ", "prio high + 3 ", "prio low - 100 ", "prio def - 9 "]),
    st.lists(_rule, min_size=1, max_size=3),
)
def test_parse_dump_round_trip(direction: str, prio: str, rules: list[str]) -> None:
    text = f"{direction} {prio}ipsec " + " ".join(rules)
    dumped = dump_policy(parse_policy(text))
    expected_prio = prio or "prio def "
    assert dumped == f"{direction} {expected_prio}ipsec " + " ".join(rules)
    assert dump_policy(parse_policy(dumped)) == dumped
