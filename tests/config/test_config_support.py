"""The support table (pyracoon/config/support.py) covers the grammar and says the truth.

Every keyword the parser accepts must be classified -- acted upon, or reported as not acted
upon -- so that no line of somebody's racoon.conf can be dropped in silence; every directive
the table calls reported must really be reported, with racoon's behaviour in the warning; and
writing only directives the table calls acted upon must give no such warning.
"""

from __future__ import annotations

import pytest

from pyracoon.config import parse_string
from pyracoon.config.parser import GRAMMAR
from pyracoon.config.support import ACTED_UPON, NOT_ACTED_UPON, REPORTED

#: Blocks reported as a whole (``Reader.section_block``): their statements have no keys.
WHOLE_SECTIONS = {"privsep", "mode_cfg", "ldapcfg", "radiuscfg"}
#: Keywords with another spelling: ``gssapi_id`` is reported as ``gss_id``.
ALIASES = {"proposal.gssapi_id": "proposal.gss_id"}


def support_key(block: str, keyword: str) -> str:
    """The support table's key for ``keyword`` of ``block`` (``""`` is the top level)."""
    if block == "":
        return keyword
    if block == "path":
        return f"path {keyword}"
    if block in WHOLE_SECTIONS:
        return block
    key = f"{block}.{keyword}"
    return ALIASES.get(key, key)


def test_the_two_tables_do_not_overlap() -> None:
    assert not set(ACTED_UPON) & set(REPORTED)
    assert frozenset(REPORTED) == NOT_ACTED_UPON


def test_every_keyword_of_the_grammar_is_classified() -> None:
    keys = set(ACTED_UPON) | set(REPORTED)
    unclassified = sorted(
        support_key(block, keyword)
        for block, keywords in GRAMMAR.items()
        for keyword in keywords
        # "path" itself is classified by the word after it (the "path" block)
        if not (block == "" and keyword == "path") and support_key(block, keyword) not in keys
    )
    assert not unclassified, f"add these to support.py's ACTED_UPON or REPORTED: {unclassified}"


_PROPOSAL = (
    "proposal {{ encryption_algorithm aes; hash_algorithm sha1; "
    "authentication_method {method}; dh_group 2; {extra} }}"
)


def _remote(body: str = "", method: str = "pre_shared_key", extra: str = "") -> str:
    proposal = _PROPOSAL.format(method=method, extra=extra)
    return f"remote anonymous {{ exchange_mode main; {body} {proposal} }}"


_SAINFO_BODY = (
    "{ encryption_algorithm aes; authentication_algorithm hmac_sha1; "
    "compression_algorithm deflate; }"
)

#: A line that uses each reported directive, and nothing else that is reported.
REPORTED_EXAMPLES: dict[str, str] = {
    "privsep": 'privsep { user "racoon"; group "racoon"; chroot "/var/empty"; }',
    "path script": 'path script "/etc/racoon/scripts";',
    "gss_id_enc": "gss_id_enc latin1;",
    "complex_bundle off": "complex_bundle off;",
    "pfkey_buffer": "pfkey_buffer 64;",
    "mode_cfg": "mode_cfg { pool_size 10; dns4 10.0.0.1; }",
    "ldapcfg": 'ldapcfg { host "ldap.example"; version 3; }',
    "radiuscfg": 'radiuscfg { auth "radius.example" "secret"; timeout 3; }',
    "listen.isakmp_natt": "listen { isakmp_natt 127.0.0.1 [4500]; }",
    "timer.persend (not 1)": "timer { persend 2; }",
    "timer.natt_keepalive": "timer { natt_keepalive 10 sec; }",
    "remote.situation secrecy": _remote("situation secrecy;"),
    "remote.situation integrity": _remote("situation integrity;"),
    "remote.mode_cfg": _remote("mode_cfg on;"),
    "remote.xauth_login": _remote('xauth_login "user";'),
    "remote.ike_frag": _remote("ike_frag on;"),
    "remote.nat_traversal on": _remote("nat_traversal on;"),
    "remote.nat_traversal force": _remote("nat_traversal force;"),
    "remote.match_empty_cr on": _remote("match_empty_cr on;"),
    "remote.esp_frag": _remote("esp_frag 1400;"),
    "remote.script": _remote('script "up.sh" phase1_up;'),
    "remote.weak_phase1_check": _remote("weak_phase1_check on;"),
    "remote.certificate_type plain_rsa": _remote('certificate_type plain_rsa "key.priv";'),
    "remote.peers_certfile plain_rsa": _remote('peers_certfile plain_rsa "peer.pub";'),
    "remote.peers_certfile dnssec": _remote("peers_certfile dnssec;"),
    "proposal.gss_id": _remote(method="gssapi_krb", extra='gss_id "host/me";'),
    **{
        f"authentication_method {method}": _remote(method=method)
        for method in (
            "gssapi_krb",
            "hybrid_rsa_server", "hybrid_rsa_client", "hybrid_dss_server", "hybrid_dss_client",
            "xauth_psk_server", "xauth_psk_client", "xauth_rsa_server", "xauth_rsa_client",
            "dsssig",
        )
    },
    "sainfo.group": f'sainfo anonymous group "users" {_SAINFO_BODY}',
}


def test_every_reported_directive_has_an_example() -> None:
    assert set(REPORTED_EXAMPLES) == set(REPORTED)


@pytest.mark.parametrize("directive", sorted(REPORTED))
def test_a_reported_directive_is_reported_with_what_racoon_does(directive: str) -> None:
    config = parse_string(REPORTED_EXAMPLES[directive], "r.conf")
    reported = {w.directive: w for w in config.warnings if w.directive is not None}
    assert directive in reported, [str(w) for w in config.warnings]
    warning = reported[directive]
    assert warning.racoon == REPORTED[directive]
    assert warning.log_line().endswith(f"(racoon: {REPORTED[directive]})")
    assert str(warning).startswith("r.conf:1: directive ")


def test_a_file_of_acted_upon_directives_gives_no_such_warning() -> None:
    text = "\n".join([
        'path include "/etc/racoon";',
        'path pre_shared_key "/etc/racoon/psk.txt";',
        'path certificate "/etc/racoon/cert";',
        'path backupsa "/var/lib/racoon/backupsa";',
        'path pidfile "racoon.pid";',
        "log debug;",
        "complex_bundle on;",
        "padding { randomize on; randomize_length off; maximum_length 20; "
        "exclusive_tail on; strict_check off; }",
        'listen { isakmp 127.0.0.1 [500]; strict_address; adminsock "/tmp/r.sock" "root" '
        '"root" 600; }',
        "timer { counter 5; interval 10 sec; persend 1; phase1 30 sec; phase2 30 sec; }",
        'remote "parent" { remote_address 127.0.0.2; exchange_mode main, aggressive;',
        "  doi ipsec_doi; situation identity_only; my_identifier address 127.0.0.1;",
        "  peers_identifier address 127.0.0.2; verify_identifier on;",
        '  certificate_type x509 "host.crt" "host.key"; peers_certfile x509 "peer.crt";',
        '  ca_type x509 "ca.crt"; verify_cert on; send_cert on; send_cr on;',
        "  match_empty_cr off; passive off; support_proxy off; initial_contact on; dpd on;",
        "  nonce_size 16; dpd_delay 20; dpd_retry 5; dpd_maxfail 5; ph1id 1;",
        "  nat_traversal off; rekey force; generate_policy unique; proposal_check claim;",
        "  lifetime time 8 hour;",
        "  proposal { encryption_algorithm aes 256; hash_algorithm sha256;",
        "             authentication_method rsasig; dh_group modp2048; lifetime time 1 hour; }",
        "}",
        'remote "child" inherit "parent";',
        "sainfo address 10.0.0.0/24 any address 10.1.0.0/24 any from address 127.0.0.2 {",
        "  pfs_group 14; remoteid 1; lifetime time 1 hour;",
        "  encryption_algorithm aes 128, 3des; authentication_algorithm hmac_sha1;",
        "  compression_algorithm deflate; }",
        f"sainfo anonymous clientaddr {_SAINFO_BODY}",
    ])
    config = parse_string(text, "acted.conf")
    assert [w.log_line() for w in config.warnings if w.directive is not None] == []
    assert [r.name for r in config.remotes] == ["parent", "child"]
