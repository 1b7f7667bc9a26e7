"""Directives parsed but not acted upon are reported, never dropped in silence."""

from __future__ import annotations

import pytest

from pyracoon.config import NOT_ACTED_UPON, is_acted_upon, parse_string

PROPOSAL = ("proposal { encryption_algorithm 3des; hash_algorithm sha1; "
            "authentication_method pre_shared_key; dh_group 2; }")


def warnings_of(text: str) -> list[str]:
    return [str(w) for w in parse_string(text, "w.conf").warnings]


@pytest.mark.parametrize(("text", "directive"), [
    ('privsep { user "racoon"; }', "privsep"),
    ('path script "/etc/racoon/scripts";', "path script"),
    ("gss_id_enc latin1;", "gss_id_enc"),
    ("mode_cfg { pool_size 10; }", "mode_cfg"),
    ('ldapcfg { host "x"; }', "ldapcfg"),
    ("radiuscfg { timeout 2; }", "radiuscfg"),
])
def test_top_level_unacted_directives(text: str, directive: str) -> None:
    assert warnings_of(text) == [
        f"w.conf:1: directive '{directive}' is parsed but not acted upon yet"]


@pytest.mark.parametrize(("line", "directive"), [
    ("mode_cfg on;", "remote.mode_cfg"),
    ('xauth_login "bob";', "remote.xauth_login"),
    ("ike_frag on;", "remote.ike_frag"),
    ("esp_frag 552;", "remote.esp_frag"),
    ('script "up" phase1_up;', "remote.script"),
    ("weak_phase1_check on;", "remote.weak_phase1_check"),
    ('certificate_type plain_rsa "k";', "remote.certificate_type plain_rsa"),
    ('peers_certfile plain_rsa "p";', "remote.peers_certfile plain_rsa"),
    ("peers_certfile dnssec;", "remote.peers_certfile dnssec"),
])
def test_remote_unacted_directives(line: str, directive: str) -> None:
    text = f"remote anonymous {{\n exchange_mode main;\n {line}\n {PROPOSAL} }}"
    assert warnings_of(text) == [
        f"w.conf:3: directive '{directive}' is parsed but not acted upon yet"]


@pytest.mark.parametrize("method", ["gssapi_krb", "hybrid_rsa_server", "xauth_psk_client",
                                    "dsssig"])
def test_auth_methods_needing_unwritten_support_warn(method: str) -> None:
    text = (f"remote anonymous {{ exchange_mode main; proposal {{ encryption_algorithm aes; "
            f"hash_algorithm sha1; authentication_method {method}; dh_group 2; }} }}")
    assert warnings_of(text) == [
        f"w.conf:1: directive 'authentication_method {method}' is parsed but not acted upon yet"]


def test_gss_id_and_sainfo_group_warn() -> None:
    text = ("remote anonymous { exchange_mode main; proposal { encryption_algorithm aes;\n"
            "hash_algorithm sha1; authentication_method gssapi_krb; dh_group 2;\n"
            'gss_id "host/x"; } }\n'
            'sainfo anonymous group "g" { encryption_algorithm aes; '
            "authentication_algorithm hmac_sha1; compression_algorithm deflate; }")
    assert warnings_of(text) == [
        "w.conf:2: directive 'authentication_method gssapi_krb' is parsed but not acted upon yet",
        "w.conf:3: directive 'proposal.gss_id' is parsed but not acted upon yet",
        "w.conf:4: directive 'sainfo.group' is parsed but not acted upon yet",
    ]


def test_acted_upon_directives_do_not_warn() -> None:
    text = (f"remote anonymous {{ exchange_mode main; nat_traversal off; dpd_delay 10; "
            f"passive on; generate_policy on; rekey force; match_empty_cr off; "
            f"{PROPOSAL} }} listen {{ isakmp 127.0.0.1 [500]; }} timer {{ counter 3; }} "
            f"complex_bundle on;")
    assert warnings_of(text) == []


def test_values_not_acted_upon_warn() -> None:
    text = (f"remote anonymous {{ exchange_mode main; nat_traversal force; match_empty_cr on; "
            f"{PROPOSAL} }} complex_bundle off;")
    assert [w.directive for w in parse_string(text).warnings] == [
        "remote.nat_traversal force", "remote.match_empty_cr on", "complex_bundle off"]


def test_one_list_drives_the_warnings() -> None:
    assert "privsep" in NOT_ACTED_UPON and not is_acted_upon("privsep")
    assert is_acted_upon("remote.nat_traversal off")
    assert not is_acted_upon("remote.nat_traversal on")
    warning = parse_string('privsep { user "x"; }').warnings[0]
    assert warning.directive == "privsep" and warning.directive in NOT_ACTED_UPON
