"""sainfo selection (score order, exact matching) and remote lookup (racoon.conf(5))."""

from __future__ import annotations

import pytest

from pyracoon.config import (
    Config,
    ConfigError,
    SaInfoAlgorithm,
    check_kernel_algorithms,
    parse_string,
)
from pyracoon.wire.constants import IDType
from pyracoon.wire.payloads import Identification

BODY = ("{ encryption_algorithm aes; authentication_algorithm hmac_sha1; "
        "compression_algorithm deflate; }")
PROPOSAL = ("proposal { encryption_algorithm 3des; hash_algorithm sha1; "
            "authentication_method pre_shared_key; dh_group 2; }")

addr = Identification.from_address
net = Identification.from_network


def sainfos(*headers: str) -> Config:
    return parse_string("\n".join(f"sainfo {h} {BODY}" for h in headers), "s.conf")


def test_search_order_is_score_then_file_order() -> None:
    config = sainfos(
        "anonymous",                                              # line 1, score 0
        "address 10.0.0.1 any anonymous",                         # line 2, score 1
        "anonymous address 10.0.0.2 any",                         # line 3, score 1
        "address 10.0.0.1 any address 10.0.0.2 any",              # line 4, score 2
        'anonymous from fqdn "peer.example"',                     # line 5, score 3
        "address 10.0.0.3 any address 10.0.0.2 any from address 192.0.2.1",  # line 6, score 5
    )
    assert [(s.line, s.score) for s in config.sainfos] == [
        (6, 5), (5, 3), (4, 2), (2, 1), (3, 1), (1, 0)]


def test_remoteid_scores_three() -> None:
    config = parse_string(
        f"sainfo anonymous {BODY}\n"
        "sainfo anonymous { remoteid 2; encryption_algorithm aes; "
        "authentication_algorithm hmac_sha1; compression_algorithm deflate; }")
    assert [(s.line, s.score) for s in config.sainfos] == [(2, 3), (1, 0)]
    # remoteid must equal the remote's ph1id.
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.2"), remoteid=2).line == 2
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.2")).line == 1


def test_first_match_wins_and_every_verdict_has_a_reason() -> None:
    config = sainfos("anonymous", "address 10.0.0.1 any anonymous",
                     "address 10.0.0.1 any address 10.0.0.2 any")
    candidates = config.sainfo_candidates(addr("10.0.0.1"), addr("10.0.0.9"))
    assert [(c.sainfo.line, c.matched) for c in candidates] == [
        (3, False), (2, True), (1, True)]
    assert candidates[0].reason == ("remote: 10.0.0.9[any] any is not address 10.0.0.2[any] any "
                                    "(sainfo IDs match exactly, not by containment)")
    assert candidates[1].reason == "IDs are equal"
    assert candidates[2].reason == "anonymous matches any ID"
    assert str(candidates[1]).startswith("sainfo address 10.0.0.1[any] any anonymous (s.conf:2):"
                                         " matched")
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.9")).line == 2


def test_matching_is_exact_not_containment() -> None:
    config = sainfos("subnet 10.0.0.0/16 any subnet 10.1.0.0/16 any")
    assert config.sainfo_for(net("10.0.1.0/24"), net("10.1.0.0/16")) is None
    assert config.sainfo_for(net("10.0.0.0/16"), net("10.1.0.0/16")) is not None
    # A host inside the subnet does not match either.
    assert config.sainfo_for(addr("10.0.0.5"), net("10.1.0.0/16")) is None


def test_addr_equals_subnet_with_full_mask() -> None:
    config = sainfos("address 10.0.0.1 any address 2001:db8::2 any")
    assert config.sainfo_for(net("10.0.0.1/32"), net("2001:db8::2/128")) is not None
    config = sainfos("subnet 10.0.0.1/32 any anonymous")
    (s,) = config.sainfos
    assert s.local_id is not None and s.local_id.id_type is IDType.IPV4_ADDR
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.9.9.9")) is not None
    # A /31 is not a host.
    config = sainfos("subnet 10.0.0.0/31 any anonymous")
    candidates = config.sainfo_candidates(addr("10.0.0.0"), addr("10.9.9.9"))
    assert not candidates[0].matched
    assert candidates[0].reason == "local: ID type ID_IPV4_ADDR is not ID_IPV4_ADDR_SUBNET"


def test_port_and_protocol_must_be_equal() -> None:
    config = sainfos("address 10.0.0.1 [80] tcp anonymous")
    assert config.sainfo_for(addr("10.0.0.1", 6, 80), addr("10.0.0.2")) is not None
    (c,) = config.sainfo_candidates(addr("10.0.0.1", 6, 0), addr("10.0.0.2"))
    assert c.reason == "local: port any is not 80"
    (c,) = config.sainfo_candidates(addr("10.0.0.1", 17, 80), addr("10.0.0.2"))
    assert c.reason == "local: upper-layer protocol 17 is not 6"
    # "any" in the config is 0 on the wire, and must meet 0.
    config = sainfos("address 10.0.0.1 any anonymous")
    (c,) = config.sainfo_candidates(addr("10.0.0.1", 6, 0), addr("10.0.0.2"))
    assert c.reason == "local: upper-layer protocol 6 is not any"


def test_range_and_fqdn_ids() -> None:
    config = sainfos("address 10.0.0.1-10.0.0.9 any anonymous", 'fqdn "a.example" anonymous')
    rng = Identification.from_range("10.0.0.1", "10.0.0.9")
    assert config.sainfo_for(rng, addr("1.2.3.4")).line == 1
    fqdn = Identification.from_text(IDType.FQDN, "a.example")
    assert config.sainfo_for(fqdn, addr("1.2.3.4")).line == 2


def test_from_matches_the_peers_phase1_id() -> None:
    config = sainfos('anonymous from fqdn "peer.example"', "anonymous")
    peer = Identification.from_text(IDType.FQDN, "peer.example")
    other = Identification.from_text(IDType.FQDN, "other.example")
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.2"), peer).line == 1
    candidates = config.sainfo_candidates(addr("10.0.0.1"), addr("10.0.0.2"), other)
    assert candidates[0].reason == \
        "peer ID fqdn \"other.example\" is not 'from fqdn \"peer.example\"'"
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.2"), other).line == 2
    candidates = config.sainfo_candidates(addr("10.0.0.1"), addr("10.0.0.2"), None)
    assert not candidates[0].matched and "needs the peer's phase-1 ID" in candidates[0].reason


def test_from_address() -> None:
    config = sainfos("anonymous from address 192.0.2.1")
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.2"), addr("192.0.2.1")) is not None
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.0.0.2"), addr("192.0.2.9")) is None


def test_clientaddr_needs_the_client_address() -> None:
    config = sainfos("address 10.0.0.1 any clientaddr")
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.8.0.5")) is None
    (c,) = config.sainfo_candidates(addr("10.0.0.1"), addr("10.8.0.5"))
    assert c.reason == "clientaddr needs the peer's address or mode-cfg address"
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.8.0.5"),
                             client=addr("10.8.0.5")) is not None
    assert config.sainfo_for(addr("10.0.0.1"), addr("10.8.0.5"),
                             client=addr("10.8.0.6")) is None


def test_duplicate_check_allows_different_remote_or_from() -> None:
    config = sainfos("address 10.0.0.1 any anonymous", "address 10.0.0.1 any address 10.0.0.2 any",
                     "address 10.0.0.1 any anonymous from fqdn \"x\"", "anonymous", "anonymous")
    assert len(config.sainfos) == 5  # two anonymous ones are allowed, as in racoon


def test_host_bits_in_a_subnet_warn() -> None:
    config = sainfos("subnet 10.0.0.1/24 any anonymous")
    assert [str(w) for w in config.warnings] == [
        "s.conf:1: 10.0.0.1/24 has host bits set; sainfo IDs are compared exactly, so only a "
        "peer sending the same bits will match"]


# ---------------------------------------------------------------------- remote lookup
def remotes(text: str) -> Config:
    return parse_string(text.replace("BODY", f"{{ exchange_mode main; {PROPOSAL} }}"))


def test_remote_for_address_then_anonymous() -> None:
    config = remotes("""
        remote anonymous BODY
        remote 192.0.2.1 BODY
        remote 192.0.2.2 [4500] BODY
        remote "named" { remote_address 2001:db8::7; exchange_mode main; """ + PROPOSAL + """ }
    """)
    assert config.warnings == []
    anonymous, one, two, named = config.remotes
    assert config.remote_for("192.0.2.1", 500) is one
    assert config.remote_for("192.0.2.1", 4500) is one  # unwritten port: any port
    assert config.remote_for("192.0.2.2", 4500) is two
    assert config.remote_for("192.0.2.2", 500) is anonymous  # written port must equal
    assert config.remote_for("2001:db8::7") is named
    assert config.remote_for("198.51.100.1") is anonymous
    assert config.remote_by_name("named") is named


def test_named_remote_without_address_is_a_wildcard() -> None:
    config = remotes('remote "roadwarrior" BODY remote 192.0.2.1 BODY')
    assert config.remote_for("198.51.100.1") is config.remotes[0]
    assert config.remote_for("192.0.2.1") is config.remotes[1]


def test_two_wildcards_are_ambiguous_and_warned() -> None:
    config = remotes('remote anonymous BODY\nremote "rw" BODY')
    assert config.remote_for("198.51.100.1") is None
    assert [str(w) for w in config.warnings] == [
        '<string>:2: remote "rw" and remote anonymous (<string>:1) both match any peer; '
        "neither will be chosen for it"]


def test_two_remotes_for_one_address_are_ambiguous() -> None:
    config = remotes("remote anonymous BODY remote 192.0.2.1 BODY remote 192.0.2.1 BODY")
    assert config.remote_for("192.0.2.1") is None
    assert "both match peer 192.0.2.1" in str(config.warnings[0])


def test_passive_remotes_are_not_used_to_initiate() -> None:
    config = remotes("remote 192.0.2.1 { passive on; exchange_mode main; " + PROPOSAL + " }")
    assert config.remote_for("192.0.2.1") is config.remotes[0]
    assert config.remote_for("192.0.2.1", initiating=True) is None


def test_remote_for_without_anonymous() -> None:
    config = remotes("remote 192.0.2.1 BODY")
    assert config.remote_for("192.0.2.9") is None


# ---------------------------------------------------------------------- kernel check
def test_check_kernel_algorithms_uses_racoons_message() -> None:
    config = parse_string(
        "sainfo anonymous {\n encryption_algorithm aes, twofish;\n"
        " authentication_algorithm non_auth, hmac_sha1;\n compression_algorithm deflate;\n}",
        "k.conf")
    asked: list[tuple[str, str]] = []

    def supported(kind: str, item: SaInfoAlgorithm) -> bool:
        asked.append((kind, item.name))
        return item.name != "twofish"

    with pytest.raises(ConfigError) as info:
        check_kernel_algorithms(config, supported)
    assert str(info.value) == ("k.conf:2: algorithm twofish not supported by the kernel "
                               "(missing module?) near 'twofish'")
    check_kernel_algorithms(config, lambda kind, item: True)
    assert ("authentication", "non_auth") not in asked
