"""Every racoon.conf grammar item parses into the expected model values (racoon.conf(5))."""

from __future__ import annotations

import ipaddress

import pytest

from pyracoon.config import (
    Config,
    GeneratePolicy,
    IdentifierKind,
    IkeFrag,
    LogLevel,
    NatTraversal,
    ProposalCheck,
    Rekey,
    ScriptEvent,
    parse_string,
)
from pyracoon.wire.constants import AuthenticationMethod, ExchangeType, IDType

PROPOSAL = """proposal { encryption_algorithm 3des; hash_algorithm sha1;
    authentication_method pre_shared_key; dh_group 2; }"""


def parse(text: str) -> Config:
    return parse_string(text, "t.conf")


def remote(body: str = "", header: str = "remote 192.0.2.1") -> Config:
    return parse(f"{header} {{ exchange_mode main; {body} {PROPOSAL} }}")


# ---------------------------------------------------------------------- defaults
def test_empty_file_has_racoons_code_defaults() -> None:
    config = parse("")
    assert (config.timer.counter, config.timer.interval, config.timer.persend) == (5, 10, 1)
    assert (config.timer.phase1, config.timer.phase2, config.timer.natt_keepalive) == (30, 30, 20)
    assert config.complex_bundle is True
    assert config.log_level is None and config.effective_log_level() is LogLevel.INFO
    pad = config.padding
    assert (pad.randomize, pad.randomize_length, pad.maximum_length, pad.exclusive_tail,
            pad.strict_check) == (True, False, 20, True, False)
    assert config.listen.present is False and config.listen.addresses == []
    assert config.listen.adminsock.path == "/var/run/racoon/racoon.sock"
    assert config.listen.adminsock.mode == 0o600
    assert config.pfkey_buffer == 0 and config.gss_id_enc == "utf-16le"
    assert config.privsep is None and config.mode_cfg is None
    assert config.remotes == [] and config.sainfos == [] and config.warnings == []


def test_remote_defaults_are_the_codes() -> None:
    (r,) = remote().remotes
    assert (r.lifetime, r.nonce_size, r.ph1id, r.esp_frag) == (28800, 16, 0, 65535)
    assert (r.send_cert, r.send_cr, r.verify_cert, r.match_empty_cr) == (True, True, True, False)
    assert (r.passive, r.initial_contact, r.support_proxy, r.mode_cfg) == (
        False, True, False, False)
    assert (r.verify_identifier, r.weak_phase1_check) == (False, False)
    assert r.proposal_check is ProposalCheck.STRICT
    assert r.generate_policy is GeneratePolicy.OFF
    assert r.nat_traversal is NatTraversal.OFF and r.ike_frag is IkeFrag.OFF
    assert (r.dpd, r.dpd_delay, r.dpd_retry, r.dpd_maxfail) == (True, 0, 5, 5)
    assert r.rekey is Rekey.ON
    assert (r.doi, r.situation) == (1, 1)
    assert r.my_identifier.kind is IdentifierKind.ADDRESS and r.my_identifier.value is None
    assert r.dh_group is None  # main mode only


# ---------------------------------------------------------------------- top level
def test_top_level_statements() -> None:
    config = parse("""
        path include "/etc/racoon"; path pre_shared_key "/etc/racoon/psk.txt";
        path certificate "/etc/racoon/certs"; path backupsa "/var/backupsa";
        path pidfile "racoon-test.pid";
        pfkey_buffer 2048;
        log debug2;
        complex_bundle off;
        padding { randomize off; randomize_length on; maximum_length 40;
                  exclusive_tail off; strict_check on; }
        timer { counter 7; interval 2 min; persend 2; phase1 1 hour; phase2 45 secs;
                natt_keepalive 0 sec; }
    """)
    assert config.paths.pre_shared_key == "/etc/racoon/psk.txt"
    assert config.paths.pidfile_path() == "/var/run/racoon-test.pid"
    assert config.paths.resolve("include", "/abs.conf") == "/abs.conf"
    assert config.paths.resolve("include", "x.conf") == "/etc/racoon/x.conf"
    assert config.pfkey_buffer == 2048
    assert config.log_level is LogLevel.DEBUG2
    assert config.complex_bundle is False
    pad = config.padding
    assert (pad.randomize, pad.randomize_length, pad.maximum_length, pad.exclusive_tail,
            pad.strict_check) == (False, True, 40, False, True)
    t = config.timer
    assert (t.counter, t.interval, t.persend, t.phase1, t.phase2, t.natt_keepalive) == (
        7, 120, 2, 3600, 45, 0)


@pytest.mark.parametrize(("unit", "factor"), [
    ("sec", 1), ("secs", 1), ("second", 1), ("seconds", 1), ("min", 60), ("mins", 60),
    ("minute", 60), ("minutes", 60), ("hour", 3600), ("hours", 3600)])
def test_time_units(unit: str, factor: int) -> None:
    assert parse(f"timer {{ interval 3 {unit}; }}").timer.interval == 3 * factor


def test_log_level_is_relative_to_the_d_flags() -> None:
    assert parse("log notify;").effective_log_level(1) is LogLevel.INFO
    assert parse("log error;").effective_log_level(0) is LogLevel.ERROR
    assert parse("").effective_log_level(2) is LogLevel.DEBUG2
    assert parse("log debug;").effective_log_level(5) is LogLevel.DEBUG2  # capped


def test_listen_block() -> None:
    config = parse("""listen {
        isakmp 127.0.0.1; isakmp ::1 [5000]; isakmp fe80::1%lo [500];
        isakmp_natt 127.0.0.1 [4500]; strict_address;
        adminsock "/run/racoon/racoon.sock" "root" "operator" 660;
    }""")
    listen = config.listen
    assert listen.present and listen.strict_address
    a, b, c, d = listen.addresses
    assert (a.address, a.port, a.natt) == (ipaddress.ip_address("127.0.0.1"), None, False)
    assert a.effective_port() == 500
    assert config.with_command_line(isakmp_port=7500).isakmp_port == 7500
    assert a.effective_port(7500) == 7500 and b.effective_port(7500) == 5000
    assert (c.address, c.scope, c.port) == (ipaddress.ip_address("fe80::1"), "lo", 500)
    assert (d.natt, d.port) == (True, 4500)
    sock = listen.adminsock
    assert (sock.path, sock.owner, sock.group, sock.mode) == (
        "/run/racoon/racoon.sock", "root", "operator", 0o660)


def test_adminsock_mode_is_octal_with_x_bits_kept() -> None:
    # racoon would turn 0770 into 0660 (x -> w); we keep what was written.
    sock = parse('listen { adminsock "/s.sock" "u" "g" 775; }').listen.adminsock
    assert sock.mode == 0o775


def test_adminsock_path_only_and_disabled() -> None:
    assert parse('listen { adminsock "/x.sock"; }').listen.adminsock.path == "/x.sock"
    sock = parse("listen { adminsock disabled; }").listen.adminsock
    assert sock.disabled and sock.path is None


def test_command_line_ports() -> None:
    config = parse("").with_command_line(isakmp_port=10500, natt_port=14500)
    assert (config.isakmp_port, config.natt_port) == (10500, 14500)
    assert parse("").with_command_line().isakmp_port == 500


def test_privsep_gss_id_enc() -> None:
    config = parse('privsep { user "racoon"; group 65534; chroot "/var/empty"; } '
                   "gss_id_enc latin1;")
    assert config.privsep is not None
    assert (config.privsep.user, config.privsep.group, config.privsep.chroot) == (
        "racoon", 65534, "/var/empty")
    assert config.gss_id_enc == "latin1"


def test_mode_cfg_block() -> None:
    config = parse("""mode_cfg {
        network4 10.8.0.1; netmask4 255.255.255.0; pool_size 20;
        dns4 10.0.0.53, 10.0.0.54; wins4 10.0.0.1; nbns4 10.0.0.2;
        split_network include 10.1.0.0/16, 10.2.0.0/16; split_dns "example.org", "ex.net";
        default_domain "example.org"; auth_source pam; auth_groups "vpn", "admins";
        group_source ldap; conf_source radius; accounting system; banner "/etc/banner";
        auth_throttle 3; pfs_group 2; save_passwd on;
    }""")
    cfg = config.mode_cfg
    assert cfg is not None
    assert str(cfg.network4) == "10.8.0.1" and str(cfg.netmask4) == "255.255.255.0"
    assert cfg.pool_size == 20
    assert [str(a) for a in cfg.dns4] == ["10.0.0.53", "10.0.0.54"]
    assert [str(a) for a in cfg.wins4] == ["10.0.0.1", "10.0.0.2"]
    assert cfg.split_network_type == "include"
    assert [str(n) for n in cfg.split_network] == ["10.1.0.0/16", "10.2.0.0/16"]
    assert cfg.split_dns == ["example.org", "ex.net"]
    assert cfg.auth_groups == ["vpn", "admins"]
    assert (cfg.auth_source, cfg.group_source, cfg.conf_source, cfg.accounting) == (
        "pam", "ldap", "radius", "system")
    assert (cfg.default_domain, cfg.banner, cfg.auth_throttle, cfg.pfs_group,
            cfg.save_passwd) == ("example.org", "/etc/banner", 3, 2, True)


def test_mode_cfg_defaults() -> None:
    cfg = parse("mode_cfg { }").mode_cfg
    assert cfg is not None
    assert (cfg.auth_source, cfg.conf_source, cfg.pool_size, cfg.banner, cfg.auth_throttle) == (
        "system", "local", 255, "/etc/motd", 1)


def test_ldapcfg_and_radiuscfg() -> None:
    config = parse("""
        ldapcfg { version 2; host "ldap.example"; port 636; base "dc=example";
                  subtree on; bind_dn "cn=racoon"; bind_pw "pw"; attr_user "uid";
                  attr_addr "ip"; attr_mask "mask"; attr_group "g"; attr_member "m";
                  debug 1; timeout 5; uri "ldaps://x"; }
        radiuscfg { auth "10.0.0.1" "s1"; auth "10.0.0.2" 1812 "s2"; acct "10.0.0.3" "s3";
                    timeout 5; retries 2; }
    """)
    ldap = config.ldapcfg
    assert ldap is not None
    assert (ldap.version, ldap.host, ldap.port, ldap.base, ldap.subtree, ldap.bind_dn,
            ldap.attr_user, ldap.uri) == (
        2, "ldap.example", 636, "dc=example", True, "cn=racoon", "uid", "ldaps://x")
    radius = config.radiuscfg
    assert radius is not None
    assert [(s.host, s.port, s.secret) for s in radius.auth] == [
        ("10.0.0.1", 0, "s1"), ("10.0.0.2", 1812, "s2")]
    assert [(s.host, s.secret) for s in radius.acct] == [("10.0.0.3", "s3")]
    assert (radius.timeout, radius.retries) == (5, 2)


def test_radiuscfg_defaults() -> None:
    radius = parse("radiuscfg { }").radiuscfg
    assert radius is not None and (radius.timeout, radius.retries) == (3, 3)


# ---------------------------------------------------------------------- remote headers
def test_remote_old_form_address_and_port() -> None:
    (r,) = remote(header="remote 192.0.2.1 [4500]").remotes
    assert (r.name, r.address, r.port, r.anonymous) == (
        None, ipaddress.ip_address("192.0.2.1"), 4500, False)
    (r,) = remote(header="remote anonymous [500]").remotes
    assert r.anonymous and r.port == 500 and r.address is None


def test_named_remote_with_remote_address() -> None:
    (r,) = remote('remote_address 2001:db8::1 [500];', header='remote "peer"').remotes
    assert r.name == "peer" and r.address == ipaddress.ip_address("2001:db8::1")
    assert r.port == 500 and not r.anonymous


def test_named_remote_without_address() -> None:
    config = remote(header='remote "roadwarrior"')
    (r,) = config.remotes
    assert (r.name, r.address, r.anonymous) == ("roadwarrior", None, False)
    assert config.remote_by_name("roadwarrior") is r


def test_remote_inherit_forms() -> None:
    config = parse(f"""
        remote "base" {{ exchange_mode aggressive; lifetime time 1 hour; nat_traversal on;
                         peers_identifier fqdn "a.example"; {PROPOSAL} }}
        remote "copy" inherit "base";
        remote "child" inherit "base" {{ remote_address 192.0.2.7; lifetime time 2 hours;
                                         peers_identifier fqdn "b.example"; }}
        remote 192.0.2.8 {{ exchange_mode main; {PROPOSAL} }}
        remote 192.0.2.9 inherit 192.0.2.8 {{ passive on; }}
        remote 192.0.2.10 inherit 192.0.2.8;
    """)
    base, copy, child, old, old_child, old_copy = config.remotes
    assert copy.name == "copy" and copy.inherit == "base"
    assert copy.exchange_modes == [ExchangeType.AGGRESSIVE] and copy.lifetime == 3600
    assert child.inherit == "base" and child.address == ipaddress.ip_address("192.0.2.7")
    assert child.nat_traversal is NatTraversal.ON and child.lifetime == 7200
    # The child's peers_identifier adds to a copy; the parent keeps its own list.
    assert [p.value for p in child.peers_identifiers] == ["a.example", "b.example"]
    assert [p.value for p in base.peers_identifiers] == ["a.example"]
    # Inherited proposals take the child's lifetime when they set none.
    assert child.proposal_lifetime(child.proposals[0]) == 7200
    assert base.proposal_lifetime(base.proposals[0]) == 3600
    assert old_child.address == ipaddress.ip_address("192.0.2.9") and old_child.passive
    assert old_child.exchange_modes == [ExchangeType.IDENTITY_PROTECTION]
    assert old_copy.address == ipaddress.ip_address("192.0.2.10") and not old_copy.passive
    assert config.remote_for("192.0.2.7") is child


def test_inheriting_child_may_replace_proposals() -> None:
    config = parse(f"""
        remote "base" {{ exchange_mode main; {PROPOSAL} }}
        remote "child" inherit "base" {{ proposal {{ encryption_algorithm aes 256;
            hash_algorithm sha256; authentication_method rsasig; dh_group modp2048; }} }}
    """)
    base, child = config.remotes
    assert [p.encryption.name for p in base.proposals] == ["3des"]
    assert [(p.encryption.name, p.key_length, p.dh_group) for p in child.proposals] == [
        ("aes", 256, 14)]


# ---------------------------------------------------------------------- remote directives
def test_every_remote_directive() -> None:
    config = parse("""
    path script "/etc/racoon/scripts";
    remote "all" {
        remote_address 198.51.100.1 [4500];
        exchange_mode aggressive main base;
        doi ipsec_doi; situation secrecy;
        my_identifier user_fqdn "me@example.org";
        peers_identifier fqdn "peer.example.org";
        peers_identifier address 198.51.100.1;
        peers_identifier keyid tag "kid";
        peers_identifier keyid file "/etc/racoon/keyid";
        peers_identifier keyid "/etc/racoon/keyid2";
        peers_identifier asn1dn "C=JP, O=WIDE, CN=*";
        peers_identifier asn1dn;
        verify_identifier on;
        certificate_type x509 "my.pem" "my.key";
        ca_type x509 "ca.pem";
        peers_certfile x509 "peer.pem";
        send_cert off; send_cr off; verify_cert off; match_empty_cr on;
        lifetime time 12 hours;
        nonce_size 32; passive on; initial_contact off; support_proxy on;
        mode_cfg on; weak_phase1_check on; ike_frag force; esp_frag 1400;
        ph1id 7; proposal_check claim; generate_policy unique; nat_traversal force;
        dpd off; dpd_delay 20; dpd_retry 3; dpd_maxfail 4; rekey force;
        script "up.sh" phase1_up; script "/abs/down.sh" phase1_down;
        script "dead.sh" phase1_dead;
        xauth_login "alice";
        proposal { encryption_algorithm aes 192; hash_algorithm sha512;
                   authentication_method xauth_psk_client; dh_group 14;
                   lifetime time 10 min; }
    }""")
    r = config.remotes[0]
    assert (r.address, r.port) == (ipaddress.ip_address("198.51.100.1"), 4500)
    assert r.exchange_modes == [ExchangeType.AGGRESSIVE, ExchangeType.IDENTITY_PROTECTION,
                                ExchangeType.BASE]
    assert (r.doi, r.situation) == (1, 2)
    assert (r.my_identifier.kind, r.my_identifier.value) == (
        IdentifierKind.USER_FQDN, "me@example.org")
    assert [(p.kind, p.value) for p in r.peers_identifiers] == [
        (IdentifierKind.FQDN, "peer.example.org"), (IdentifierKind.ADDRESS, "198.51.100.1"),
        (IdentifierKind.KEYID_TAG, "kid"), (IdentifierKind.KEYID_FILE, "/etc/racoon/keyid"),
        (IdentifierKind.KEYID_FILE, "/etc/racoon/keyid2"),
        (IdentifierKind.ASN1DN, "C=JP, O=WIDE, CN=*"), (IdentifierKind.ASN1DN, None)]
    assert r.verify_identifier is True
    assert r.certificate_type is not None and r.certificate_type.certificate == "my.pem"
    assert r.ca_type == "ca.pem"
    assert r.peers_certfile is not None and (r.peers_certfile.kind, r.peers_certfile.path) == (
        "x509", "peer.pem")
    assert (r.send_cert, r.send_cr, r.verify_cert, r.match_empty_cr) == (
        False, False, False, True)
    assert r.lifetime == 43200
    assert (r.nonce_size, r.passive, r.initial_contact, r.support_proxy, r.mode_cfg,
            r.weak_phase1_check) == (32, True, False, True, True, True)
    assert (r.ike_frag, r.esp_frag, r.ph1id) == (IkeFrag.FORCE, 1400, 7)
    assert r.proposal_check is ProposalCheck.CLAIM
    assert r.generate_policy is GeneratePolicy.UNIQUE
    assert r.nat_traversal is NatTraversal.FORCE
    assert (r.dpd, r.dpd_delay, r.dpd_retry, r.dpd_maxfail) == (False, 20, 3, 4)
    assert r.rekey is Rekey.FORCE
    assert r.scripts == {ScriptEvent.PHASE1_UP: "/etc/racoon/scripts/up.sh",
                         ScriptEvent.PHASE1_DOWN: "/abs/down.sh",
                         ScriptEvent.PHASE1_DEAD: "/etc/racoon/scripts/dead.sh"}
    assert r.xauth_login == "alice"
    (p,) = r.proposals
    assert (p.encryption.name, p.key_length, p.hash.name, p.dh_group, p.lifetime) == (
        "aes", 192, "sha512", 14, 600)
    assert p.authentication_method == AuthenticationMethod.XAUTH_PSKEY_I == 65001
    assert r.dh_group == 14


@pytest.mark.parametrize(("value", "expected"), [
    ("on", GeneratePolicy.REQUIRE), ("require", GeneratePolicy.REQUIRE),
    ("off", GeneratePolicy.OFF), ("unique", GeneratePolicy.UNIQUE)])
def test_generate_policy_on_means_require(value: str, expected: GeneratePolicy) -> None:
    assert remote(f"generate_policy {value};").remotes[0].generate_policy is expected


@pytest.mark.parametrize("level", ["obey", "strict", "claim", "exact"])
def test_proposal_check_levels(level: str) -> None:
    assert remote(f"proposal_check {level};").remotes[0].proposal_check.value == level


@pytest.mark.parametrize(("value", "expected"), [
    ("on", NatTraversal.ON), ("off", NatTraversal.OFF), ("force", NatTraversal.FORCE)])
def test_nat_traversal(value: str, expected: NatTraversal) -> None:
    assert remote(f"nat_traversal {value};").remotes[0].nat_traversal is expected


def test_exchange_mode_commas_are_optional() -> None:
    for text in ("main,aggressive", "main aggressive", "main , aggressive,"):
        (r,) = remote(f"exchange_mode {text};").remotes
        assert r.exchange_modes == [ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE]


def test_my_identifier_forms() -> None:
    cases = {
        "address": (IdentifierKind.ADDRESS, None),
        "address 192.0.2.5": (IdentifierKind.ADDRESS, "192.0.2.5"),
        "address 2001:db8::5": (IdentifierKind.ADDRESS, "2001:db8::5"),
        'address "192.0.2.6"': (IdentifierKind.ADDRESS, "192.0.2.6"),
        'fqdn "host.example"': (IdentifierKind.FQDN, "host.example"),
        'user_fqdn "a@b.example"': (IdentifierKind.USER_FQDN, "a@b.example"),
        'keyid "/etc/kid"': (IdentifierKind.KEYID_FILE, "/etc/kid"),
        'keyid file "/etc/kid"': (IdentifierKind.KEYID_FILE, "/etc/kid"),
        'keyid tag "kid"': (IdentifierKind.KEYID_TAG, "kid"),
        'asn1dn "CN=host, O=Example"': (IdentifierKind.ASN1DN, "CN=host, O=Example"),
    }
    for text, expected in cases.items():
        (r,) = remote(f"my_identifier {text};").remotes
        assert (r.my_identifier.kind, r.my_identifier.value) == expected, text


def test_asn1dn_with_certificate_is_fine_and_both_warns() -> None:
    config = remote('certificate_type x509 "c" "k"; my_identifier asn1dn;')
    assert config.warnings == []
    config = remote('certificate_type x509 "c" "k"; my_identifier asn1dn "CN=x";')
    assert [str(w) for w in config.warnings] == [
        "t.conf:2: Both CERT and ASN1 ID are set. Hope this is OK."]  # at the "}"


def test_plain_rsa_forces_cert_switches_off() -> None:
    (r,) = remote('certificate_type plain_rsa "/etc/racoon/rsa.key";').remotes
    assert r.certificate_type is not None and r.certificate_type.kind == "plain_rsa"
    assert r.certificate_type.private_key == "/etc/racoon/rsa.key"
    assert (r.send_cert, r.send_cr, r.verify_cert) == (False, False, False)
    # A later explicit switch still wins, as in racoon.
    (r,) = remote('certificate_type plain_rsa "k"; verify_cert on;').remotes
    assert r.verify_cert is True


def test_peers_certfile_forms() -> None:
    (r,) = remote('peers_certfile plain_rsa "pub.key";').remotes
    assert r.peers_certfile is not None and r.peers_certfile.kind == "plain_rsa"
    (r,) = remote("peers_certfile dnssec;").remotes
    assert r.peers_certfile is not None and (r.peers_certfile.kind, r.peers_certfile.path) == (
        "dnssec", None)
    config = remote('peers_certfile "old.pem";')
    assert config.remotes[0].peers_certfile.kind == "x509"  # type: ignore[union-attr]
    assert "without certtype will be removed" in str(config.warnings[0])


# ---------------------------------------------------------------------- proposal
@pytest.mark.parametrize(("text", "name", "ike_id", "key_length"), [
    ("des", "des", 1, None), ("3des", "3des", 5, None), ("blowfish", "blowfish", 3, 128),
    ("blowfish 448", "blowfish", 3, 448), ("blowfish 40", "blowfish", 3, 40),
    ("cast128", "cast128", 6, 128), ("cast128 80", "cast128", 6, 80), ("aes", "aes", 7, 128),
    ("aes 256", "aes", 7, 256), ("rijndael 192", "aes", 7, 192),
    ("camellia", "camellia", 8, 128), ("camellia 256", "camellia", 8, 256)])
def test_phase1_encryption(text: str, name: str, ike_id: int, key_length: int | None) -> None:
    p = parse(f"remote anonymous {{ exchange_mode main; proposal {{ encryption_algorithm {text};"
              " hash_algorithm md5; authentication_method pre_shared_key; dh_group 1; } }"
              ).remotes[0].proposals[0]
    assert (p.encryption.name, p.encryption.ike_id, p.key_length) == (name, ike_id, key_length)


@pytest.mark.parametrize(("name", "ike_id"), [
    ("md5", 1), ("sha1", 2), ("sha256", 4), ("sha2_256", 4), ("sha384", 5), ("sha2_384", 5),
    ("sha512", 6), ("sha2_512", 6)])
def test_phase1_hash(name: str, ike_id: int) -> None:
    p = parse(f"remote anonymous {{ exchange_mode main; proposal {{ hash_algorithm {name};"
              " encryption_algorithm des; authentication_method rsasig; dh_group 2; } }"
              ).remotes[0].proposals[0]
    assert p.hash.ike_id == ike_id


@pytest.mark.parametrize(("name", "number"), [
    ("pre_shared_key", 1), ("dsssig", 2), ("rsasig", 3), ("gssapi_krb", 65001),
    ("hybrid_rsa_server", 64222), ("hybrid_rsa_client", 64221),
    ("hybrid_dss_server", 64224), ("hybrid_dss_client", 64223),
    ("xauth_psk_server", 65002), ("xauth_psk_client", 65001),
    ("xauth_rsa_server", 65006), ("xauth_rsa_client", 65005)])
def test_phase1_authentication_methods(name: str, number: int) -> None:
    p = parse(f"remote anonymous {{ exchange_mode main; proposal {{ authentication_method {name};"
              " encryption_algorithm des; hash_algorithm md5; dh_group 2; } }"
              ).remotes[0].proposals[0]
    assert (p.authentication_method, p.authentication_method_name) == (number, name)


@pytest.mark.parametrize(("text", "group"), [
    ("1", 1), ("modp768", 1), ("2", 2), ("modp1024", 2), ("5", 5), ("modp1536", 5),
    ("14", 14), ("modp2048", 14), ("15", 15), ("modp3072", 15), ("16", 16), ("modp4096", 16),
    ("17", 17), ("modp6144", 17), ("18", 18), ("modp8192", 18)])
def test_dh_group_by_name_or_number(text: str, group: int) -> None:
    p = parse(f"remote anonymous {{ exchange_mode main; proposal {{ dh_group {text};"
              " encryption_algorithm des; hash_algorithm md5; authentication_method rsasig;"
              " } }").remotes[0].proposals[0]
    assert p.dh_group == group


def test_ec2n_groups_parse_with_a_warning() -> None:
    config = parse("remote anonymous { exchange_mode main; proposal { dh_group ec2n155;"
                   " encryption_algorithm des; hash_algorithm md5; "
                   "authentication_method rsasig; } }")
    assert config.remotes[0].proposals[0].dh_group == 3
    assert "cannot be computed" in str(config.warnings[0])


def test_proposals_keep_config_order_and_gss_id() -> None:
    config = parse("""remote anonymous { exchange_mode main;
        proposal { encryption_algorithm aes; hash_algorithm sha1;
                   authentication_method pre_shared_key; dh_group 2; lifetime time 1 hour; }
        proposal { encryption_algorithm 3des; hash_algorithm md5;
                   authentication_method gssapi_krb; dh_group 5; gss_id "host/x"; }
        proposal { encryption_algorithm des; hash_algorithm md5;
                   authentication_method gssapi_krb; dh_group 5; gssapi_id "host/y"; }
    }""")
    r = config.remotes[0]
    assert [p.encryption.name for p in r.proposals] == ["aes", "3des", "des"]
    assert [r.proposal_lifetime(p) for p in r.proposals] == [3600, 28800, 28800]
    assert [p.gss_id for p in r.proposals] == [None, "host/x", "host/y"]
    assert [p.line for p in r.proposals] == [2, 4, 6]


def test_aggressive_with_one_shared_dh_group() -> None:
    config = parse("""remote anonymous { exchange_mode aggressive;
        proposal { encryption_algorithm aes; hash_algorithm sha1;
                   authentication_method pre_shared_key; dh_group modp1536; }
        proposal { encryption_algorithm 3des; hash_algorithm md5;
                   authentication_method pre_shared_key; dh_group 5; }
    }""")
    assert config.remotes[0].dh_group == 5


# ---------------------------------------------------------------------- sainfo
SAINFO_BODY = "{ encryption_algorithm aes; authentication_algorithm hmac_sha1; " \
              "compression_algorithm deflate; }"


def sainfo(header: str, body: str = SAINFO_BODY) -> Config:
    return parse(f"sainfo {header} {body}")


@pytest.mark.parametrize(("text", "id_type", "data", "proto", "port"), [
    ("address 10.0.0.1 any", IDType.IPV4_ADDR, "0a000001", 0, 0),
    ("subnet 10.0.0.1 any", IDType.IPV4_ADDR, "0a000001", 0, 0),
    ("address 10.0.0.1/32 any", IDType.IPV4_ADDR, "0a000001", 0, 0),
    ("subnet 10.0.0.0/24 any", IDType.IPV4_ADDR_SUBNET, "0a000000ffffff00", 0, 0),
    ("address 10.0.0.0/8 [any] tcp", IDType.IPV4_ADDR_SUBNET, "0a000000ff000000", 6, 0),
    ("address 10.0.0.1 [80] tcp", IDType.IPV4_ADDR, "0a000001", 6, 80),
    ("address 10.0.0.1 [53] udp", IDType.IPV4_ADDR, "0a000001", 17, 53),
    ("address 10.0.0.1 icmp", IDType.IPV4_ADDR, "0a000001", 1, 0),
    ("address 10.0.0.1 [any] icmp", IDType.IPV4_ADDR, "0a000001", 1, 0),
    ("address ::1 icmp6", IDType.IPV6_ADDR, "0" * 31 + "1", 58, 0),
    ("subnet 2001:db8::/32 gre", IDType.IPV6_ADDR_SUBNET,
     "20010db8" + "0" * 24 + "ffffffff" + "0" * 24, 47, 0),
    ("address 10.0.0.1 esp", IDType.IPV4_ADDR, "0a000001", 50, 0),
    ("address 10.0.0.1 ah", IDType.IPV4_ADDR, "0a000001", 51, 0),
    ("address 10.0.0.1 ipcomp", IDType.IPV4_ADDR, "0a000001", 108, 0),
    ("address 10.0.0.1 132", IDType.IPV4_ADDR, "0a000001", 132, 0),
    ("address 10.0.0.1 255", IDType.IPV4_ADDR, "0a000001", 0, 0),
    ("address 10.0.0.1-10.0.0.9 any", IDType.IPV4_ADDR_RANGE, "0a0000010a000009", 0, 0),
    ("address 10.0.0.1-10.0.0.9 [25] tcp", IDType.IPV4_ADDR_RANGE, "0a0000010a000009", 6, 25),
    ("address fe80::1%eth0 any", IDType.IPV6_ADDR, "fe80" + "0" * 27 + "1", 0, 0),
    ('fqdn "gw.example"', IDType.FQDN, b"gw.example".hex(), 0, 0),
    ('user_fqdn "a@gw.example"', IDType.USER_FQDN, b"a@gw.example".hex(), 0, 0),
    ('keyid "kid"', IDType.KEY_ID, b"kid".hex(), 0, 0),
])
def test_sainfo_id_forms(text: str, id_type: IDType, data: str, proto: int, port: int) -> None:
    (s,) = sainfo(f"{text} anonymous").sainfos
    assert s.local_id is not None and s.remote_id is None
    assert (s.local_id.id_type, s.local_id.data.hex(), s.local_id.protocol_id,
            s.local_id.port) == (id_type, data, proto, port)


def test_sainfo_header_forms() -> None:
    config = parse(f"""
        sainfo anonymous {SAINFO_BODY}
        sainfo anonymous clientaddr {SAINFO_BODY}
        sainfo anonymous address 10.0.0.2 any {SAINFO_BODY}
        sainfo address 10.0.0.1 any anonymous {SAINFO_BODY}
        sainfo address 10.0.0.1 any clientaddr {SAINFO_BODY}
        sainfo address 10.0.0.1 any address 10.0.0.2 any {SAINFO_BODY}
        sainfo address 10.0.0.3 any address 10.0.0.2 any from fqdn "peer" {SAINFO_BODY}
        sainfo address 10.0.0.4 any address 10.0.0.2 any from address 192.0.2.1 {SAINFO_BODY}
        sainfo address 10.0.0.5 any address 10.0.0.2 any from asn1dn "CN=peer" {SAINFO_BODY}
        sainfo anonymous group "vpnusers" {SAINFO_BODY}
    """)
    described = [s.describe() for s in config.sainfos]
    assert described == [
        'address 10.0.0.3[any] any address 10.0.0.2[any] any from fqdn "peer"',
        "address 10.0.0.4[any] any address 10.0.0.2[any] any from address \"192.0.2.1\"",
        'address 10.0.0.5[any] any address 10.0.0.2[any] any from asn1dn "CN=peer"',
        "address 10.0.0.1[any] any clientaddr",
        "address 10.0.0.1[any] any address 10.0.0.2[any] any",
        "anonymous clientaddr",
        "anonymous address 10.0.0.2[any] any",
        "address 10.0.0.1[any] any anonymous",
        "anonymous anonymous",
        'anonymous anonymous group "vpnusers"',
    ]
    assert [s.score for s in config.sainfos] == [5, 5, 5, 2, 2, 1, 1, 1, 0, 0]


def test_sainfo_body() -> None:
    (s,) = parse("""sainfo anonymous {
        pfs_group modp2048; lifetime time 1 hour; remoteid 3;
        encryption_algorithm aes 256, 3des, blowfish 448, null_enc, twofish, camellia 192,
                             cast128, des, rijndael;
        authentication_algorithm hmac_sha256, hmac_sha2_384, hmac_sha512, hmac_md5, hmac_sha1,
                                 non_auth;
        compression_algorithm deflate, lzs, oui;
    }""").sainfos
    assert (s.pfs_group, s.lifetime, s.remoteid) == (14, 3600, 3)
    assert [(a.algorithm.esp_id, a.key_length) for a in s.encryption] == [
        (12, 256), (3, None), (7, 448), (11, None), (253, 128), (22, 192), (6, 128), (2, None),
        (12, 128)]
    assert [a.algorithm.auth_attribute for a in s.authentication] == [5, 6, 7, 1, 2, None]
    assert [a.algorithm.ipcomp_id for a in s.compression] == [2, 3, 1]
    assert s.score == 3


def test_sainfo_old_esp_ciphers() -> None:
    (s,) = sainfo("anonymous", "{ encryption_algorithm des_iv64, des_iv32, rc4, rc5, idea, "
                  "3idea, null; authentication_algorithm non_auth; "
                  "compression_algorithm deflate; }").sainfos
    assert [a.algorithm.esp_id for a in s.encryption] == [1, 9, 10, 4, 5, 8, 11]


def test_sainfo_algorithm_lines_accumulate() -> None:
    (s,) = sainfo("anonymous", "{ encryption_algorithm aes; encryption_algorithm 3des; "
                  "authentication_algorithm hmac_sha1; compression_algorithm deflate; }").sainfos
    assert [a.name for a in s.encryption] == ["aes", "3des"]


def test_hex_and_unknown_shapes_in_a_full_file() -> None:
    config = parse("""# comment at top
    remote anonymous { exchange_mode main; # trailing comment
      proposal { encryption_algorithm 3des; hash_algorithm sha1; # x
                 authentication_method pre_shared_key; dh_group 2; } }
    """)
    assert len(config.remotes) == 1
