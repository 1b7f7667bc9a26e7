"""The support table: what pyracoon does with each racoon.conf statement it parses.

Every keyword the parser accepts (:data:`pyracoon.config.parser.GRAMMAR`, plus the header forms
of ``remote`` and ``sainfo``) is in exactly one of two tables:

* :data:`ACTED_UPON` -- represented in the model and used: directive -> (the model attribute
  that carries it, or None when the grammar itself is the whole effect; who acts on it);
* :data:`REPORTED` -- parsed but not acted upon: directive -> what racoon would do with it.
  The parser reports every occurrence as ``FILE:LINE: directive 'X' is parsed but not acted
  upon yet`` (:class:`pyracoon.config.errors.ConfigWarning`, whose ``racoon`` field carries the
  text here and which the daemon logs with it), so nothing in a configuration is dropped in
  silence.

A directive that is acted upon only for some values has its bare key in :data:`ACTED_UPON` and
the other values, qualified (``remote.nat_traversal on``), in :data:`REPORTED`.  This is the one
place to edit when the engine or daemon starts honouring a directive: move it from
:data:`REPORTED` to :data:`ACTED_UPON` and the parser stops warning about it;
tests/config/test_config_support.py proves the two tables cover the grammar and say the truth.
docs/config.md ("The support table") is this module in prose.

Keys are the directive as a person would grep for it: a top-level keyword (``privsep``), a
qualified one (``path script``), or ``block.keyword`` for directives inside blocks; phase-1
authentication methods that need hybrid/xauth/GSS-API/DSS support are listed by their
racoon.conf name under ``authentication_method NAME``.
"""

from __future__ import annotations

__all__ = ["ACTED_UPON", "NOT_ACTED_UPON", "REPORTED", "is_acted_upon", "racoon_does"]

_XAUTH = "needs XAUTH (draft-beaulieu-ike-xauth), which pyracoon does not implement"

#: Parsed but not acted upon: directive -> what racoon would do with it (its source named).
REPORTED: dict[str, str] = {
    # top level
    "privsep": "runs a privileged helper and drops to this user/group/chroot (privsep.c)",
    "path script": "takes relative 'script' names under this directory (getpathname())",
    "gss_id_enc": "encodes the GSS-API ID attribute in this charset (gssapi.c)",
    "complex_bundle off": "proposes 'IP AH ESP IP payload' as AH tunnel + ESP transport "
    "(proposal.c); pyracoon keeps each SPD request's own modes",
    "pfkey_buffer": "sets the PF_KEY socket's send/receive buffer to this many KB "
    "(pfkey.c pfkey_set_buffer_size()); pyracoon keeps the OS default",
    "mode_cfg": "serves ISAKMP mode-config (addresses, DNS, WINS, banner) to clients "
    "(isakmp_cfg.c)",
    "ldapcfg": "authenticates XAUTH users and assigns mode-config data from LDAP "
    "(isakmp_xauth.c, isakmp_cfg.c)",
    "radiuscfg": "authenticates and accounts XAUTH users with RADIUS (isakmp_xauth.c)",
    "listen.isakmp_natt": "opens a NAT-T socket (UDP_ENCAP_ESPINUDP) on this address and port "
    "(isakmp.c isakmp_open()); pyracoon does no NAT-T",
    "timer.persend (not 1)": "sends each packet this many times (sockmisc.c sendfromto()); "
    "pyracoon sends once",
    "timer.natt_keepalive": "sends NAT-T keep-alives at this interval (nattraversal.c); "
    "pyracoon does no NAT-T",
    # remote
    "remote.situation secrecy": "puts SIT_SECRECY in its phase-1 SA payload without the labels "
    "RFC 2407 4.2 requires (ipsec_doi.c ipsecdoi_setph1proposal()), which peers refuse -- "
    "racoon's own check_situation() does; pyracoon sends SIT_IDENTITY_ONLY",
    "remote.situation integrity": "puts SIT_INTEGRITY in its phase-1 SA payload without the "
    "labels RFC 2407 4.2 requires (ipsec_doi.c ipsecdoi_setph1proposal()), which peers refuse "
    "-- racoon's own check_situation() does; pyracoon sends SIT_IDENTITY_ONLY",
    "remote.mode_cfg": "asks the peer for mode-config data as a client (isakmp_cfg.c)",
    "remote.xauth_login": "logs in with this XAUTH user, its password from psk.txt "
    "(isakmp_xauth.c)",
    "remote.ike_frag": "sends and accepts fragmented phase-1 packets (isakmp_frag.c)",
    "remote.nat_traversal on": "negotiates NAT-T (RFC 3947) and floats to port 4500 when a NAT "
    "is detected (nattraversal.c)",
    "remote.nat_traversal force": "uses NAT-T's UDP encapsulation even without a NAT "
    "(nattraversal.c)",
    "remote.match_empty_cr on": "chooses this remote for a peer whose CR names no CA "
    "(remoteconf.c rmconf_match_type())",
    "remote.esp_frag": "fragments packets before NAT-T's ESP-in-UDP encapsulation "
    "(isakmp.c, kernel SA attribute)",
    "remote.script": "runs this script on phase1_up/phase1_down/phase1_dead (script_hook())",
    "remote.weak_phase1_check": "acts on unencrypted DELETE notifications during phase 1 "
    "(isakmp_inf.c)",
    "remote.certificate_type plain_rsa": "signs with a plain RSA key, no certificate (rsalist.c)",
    "remote.peers_certfile plain_rsa": "verifies the peer with a plain RSA public key "
    "(rsalist.c)",
    "remote.peers_certfile dnssec": "fetches the peer's certificate from DNS (CERT RR, "
    "getcertsbyname())",
    # proposal
    "proposal.gss_id": "sends this GSS-API ID with gssapi_krb (gssapi.c)",
    "authentication_method gssapi_krb": "authenticates with Kerberos GSS-API (gssapi.c)",
    "authentication_method hybrid_rsa_server": "authenticates hybrid RSA as server; " + _XAUTH,
    "authentication_method hybrid_rsa_client": "authenticates hybrid RSA as client; " + _XAUTH,
    "authentication_method hybrid_dss_server": "authenticates hybrid DSS as server; " + _XAUTH,
    "authentication_method hybrid_dss_client": "authenticates hybrid DSS as client; " + _XAUTH,
    "authentication_method xauth_psk_server": "authenticates PSK + XAUTH as server; " + _XAUTH,
    "authentication_method xauth_psk_client": "authenticates PSK + XAUTH as client; " + _XAUTH,
    "authentication_method xauth_rsa_server": "authenticates RSA + XAUTH as server; " + _XAUTH,
    "authentication_method xauth_rsa_client": "authenticates RSA + XAUTH as client; " + _XAUTH,
    "authentication_method dsssig": "authenticates with DSS signatures (oakley.c)",
    # sainfo
    "sainfo.group": "uses this sainfo only for XAUTH users of this group (isakmp_xauth.c)",
}

#: Represented in the model and used: directive -> (model attribute or None, who acts on it).
ACTED_UPON: dict[str, tuple[str | None, str]] = {
    # top level
    "path include": (None, "parser: relative include names are taken under it"),
    "path pre_shared_key": ("Paths.pre_shared_key", "daemon/engine: psk.txt"),
    "path certificate": ("Paths.certificate", "pki: certificate and key files"),
    "path backupsa": ("Paths.backupsa", "daemon: pyracoon -B restores and records SAs"),
    "path pidfile": ("Paths.pidfile_path", "daemon: the pid file"),
    "include": (None, "parser: the files' statements"),
    "log": ("Config.effective_log_level", "daemon: the log level"),
    "padding": ("Config.padding", "engine: the CBC padding policy"),
    "padding.randomize": ("Padding.randomize", "crypto.padding: random pad bytes"),
    "padding.randomize_length": ("Padding.randomize_length", "crypto.padding: pad length"),
    "padding.maximum_length": ("Padding.maximum_length", "crypto.padding: pad length bound"),
    "padding.strict_check": ("Padding.strict_check", "crypto.padding: checks on receipt"),
    "padding.exclusive_tail": ("Padding.exclusive_tail", "crypto.padding: the last byte"),
    "listen": ("Listen.present", "daemon: bind the listed addresses, not every local one"),
    "listen.isakmp": ("Listen.addresses", "daemon: the ISAKMP sockets; engine: local port"),
    "listen.strict_address": ("Listen.strict_address",
                              "daemon: an address not on this host is an error, not skipped"),
    "listen.adminsock": ("Listen.adminsock", "daemon: the admin socket"),
    "timer": ("Config.timer", "engine: resends and deadlines"),
    "timer.counter": ("Timer.counter", "engine: how many times a packet is sent"),
    "timer.interval": ("Timer.interval", "engine: the resend interval"),
    "timer.persend": (None, "engine: each packet is sent once, which is persend 1"),
    "timer.phase1": ("Timer.phase1", "engine: how long an ACQUIRE waits for phase 1"),
    "timer.phase2": ("Timer.phase2", "engine: the quick-mode deadline"),
    "complex_bundle": (None, "engine: proposals as complex_bundle on, racoon's default"),
    "remote": ("Config.remote_for", "engine: the remote for a peer"),
    "sainfo": ("Config.sainfo_candidates", "engine: the sainfo for a quick mode"),
    # remote: header forms and statements
    "remote inherit": (None, "parser: the child starts as a copy of its parent"),
    "remote.remote_address": ("Remote.address", "Config.remote_for: the peer it matches"),
    "remote.exchange_mode": ("Remote.exchange_modes", "engine: allowed and initiated modes"),
    "remote.doi": ("Remote.doi", "only ipsec_doi parses; SA payloads carry DOI 1"),
    "remote.situation": ("Remote.situation",
                         "identity_only: what the engine's SA payloads carry"),
    "remote.certificate_type": ("Remote.certificate_type", "engine/pki: our certificate"),
    "remote.peers_certfile": ("Remote.peers_certfile", "engine/pki: the peer's certificate"),
    "remote.ca_type": ("Remote.ca_type", "pki: the CA to verify with; CR payloads"),
    "remote.verify_cert": ("Remote.verify_cert", "engine: certificate verification"),
    "remote.send_cert": ("Remote.send_cert", "engine: CERT payloads"),
    "remote.send_cr": ("Remote.send_cr", "engine: CR payloads"),
    "remote.match_empty_cr": (None, "off: remotes are chosen by address, racoon's default"),
    "remote.verify_identifier": ("Remote.verify_identifier", "engine: the peer's ID check"),
    "remote.passive": ("Remote.passive", "engine: never initiate"),
    "remote.support_proxy": ("Remote.support_proxy", "engine: quick-mode client IDs"),
    "remote.initial_contact": ("Remote.initial_contact", "engine: INITIAL-CONTACT"),
    "remote.dpd": ("Remote.dpd", "engine: the DPD vendor ID"),
    "remote.nonce_size": ("Remote.nonce_size", "engine: our nonce length"),
    "remote.dpd_delay": ("Remote.dpd_delay", "engine: R-U-THERE interval"),
    "remote.dpd_retry": ("Remote.dpd_retry", "engine: R-U-THERE resend"),
    "remote.dpd_maxfail": ("Remote.dpd_maxfail", "engine: when a peer is dead"),
    "remote.ph1id": ("Remote.ph1id", "engine: the sainfo remoteid it selects"),
    "remote.my_identifier": ("Remote.my_identifier", "engine/pki: our ID payload"),
    "remote.peers_identifier": ("Remote.peers_identifiers", "engine/pki: the peer's ID check"),
    "remote.dh_group": (None, "parser: refused here, as racoon does"),
    "remote.nat_traversal": (None, "off: no NAT-T, racoon's default"),
    "remote.rekey": ("Remote.rekey", "engine: phase-1 rekeying"),
    "remote.generate_policy": ("Remote.generate_policy", "engine: policies for the peer"),
    "remote.proposal_check": ("Remote.proposal_check", "engine: responder lifetime/PFS check"),
    "remote.lifetime": ("Remote.proposal_lifetime", "engine: the phase-1 lifetime"),
    "remote.proposal": ("Remote.proposals", "engine: the phase-1 transforms"),
    # proposal
    "proposal.encryption_algorithm": ("Phase1Proposal.encryption", "engine: the cipher"),
    "proposal.hash_algorithm": ("Phase1Proposal.hash", "engine: the hash"),
    "proposal.authentication_method": ("Phase1Proposal.authentication_method",
                                       "engine: PSK or RSA signatures"),
    "proposal.dh_group": ("Phase1Proposal.dh_group", "engine: the DH group"),
    "proposal.lifetime": ("Remote.proposal_lifetime", "engine: this transform's lifetime"),
    # sainfo: header forms and statements
    "sainfo from": ("SaInfo.from_id", "config.sainfo: the phase-1 ID it needs"),
    "sainfo clientaddr": ("SaInfo.remote_clientaddr", "config.sainfo: the peer's address"),
    "sainfo.pfs_group": ("SaInfo.pfs_group", "engine: quick-mode PFS"),
    "sainfo.remoteid": ("SaInfo.remoteid", "config.sainfo: matched against ph1id"),
    "sainfo.lifetime": ("SaInfo.lifetime", "engine: the IPsec SA lifetime"),
    "sainfo.encryption_algorithm": ("SaInfo.encryption", "engine: ESP transforms"),
    "sainfo.authentication_algorithm": ("SaInfo.authentication", "engine: AH/ESP auth"),
    "sainfo.compression_algorithm": ("SaInfo.compression", "engine: IPComp transforms"),
}

#: The keys of :data:`REPORTED`: the directives the parser warns about.
NOT_ACTED_UPON: frozenset[str] = frozenset(REPORTED)


def is_acted_upon(directive: str) -> bool:
    """True unless ``directive`` is listed in :data:`NOT_ACTED_UPON`."""
    return directive not in NOT_ACTED_UPON


def racoon_does(directive: str) -> str | None:
    """What racoon would do with a reported ``directive`` (None if it is not reported)."""
    return REPORTED.get(directive)
