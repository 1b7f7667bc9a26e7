"""Every failure ends with the notify racoon sends and a log line saying what to change."""

from __future__ import annotations

import os
from pathlib import Path

from certs import build_pki
from harness import Host, Net, esp_sas

from pyracoon.engine import NegotiationFailed, PskFile

A, B = "10.0.0.1", "10.0.0.2"


def remote(
    peer: str,
    *,
    enc: str = "aes",
    auth: str = "pre_shared_key",
    extra: str = "",
    mode: str = "main",
    group: str = "modp1024",
) -> str:
    return f"""
remote {peer} {{
    exchange_mode {mode};{extra}
    proposal {{ encryption_algorithm {enc}; hash_algorithm sha1;
               authentication_method {auth}; dh_group {group}; }}
}}
"""


def sainfo(body: str = "", enc: str = "aes", auth: str = "hmac_sha1") -> str:
    return f"""
sainfo anonymous {{
    {body}
    encryption_algorithm {enc}; authentication_algorithm {auth};
    compression_algorithm deflate;
}}
"""


def pair(
    conf_a: str, conf_b: str, psk_a: dict | None = None, psk_b: dict | None = None, **kw: object
) -> tuple[Net, Host, Host]:
    net = Net()
    a = net.host("a", A, conf_a, {B: "secret"} if psk_a is None else psk_a, **kw)
    b = net.host("b", B, conf_b, {A: "secret"} if psk_b is None else psk_b)
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    return net, a, b


def failed(h: Host, phase: int) -> bool:
    return any(isinstance(e, NegotiationFailed) and e.phase == phase for e in h.other_events)


def test_phase1_proposal_mismatch_names_the_attribute() -> None:
    net, a, b = pair(remote(B, enc="3des") + sainfo(), remote(A, enc="aes") + sainfo())
    assert b.has_log("no suitable proposal found.")
    assert b.has_log("failed to get valid proposal.")
    assert b.has_log("encryption_algorithm: peer 3des, my aes"), b.log_text()
    assert a.has_log(f"notification NO-PROPOSAL-CHOSEN received from {B}[500]"), a.log_text()
    # what we offered, so that the person can hold it against the peer's side
    assert a.has_log("we offered 1 phase-1 proposal(s):")
    assert a.has_log("  #1: 3des/sha1/pre-shared key/1024-bit MODP group/lifetime 28800s"), (
        a.log_text()
    )
    assert failed(b, 1) and not failed(a, 1)  # an unprotected notify proves nothing
    net.advance(60)  # the initiator resends, gets the same answer, and gives up in time
    assert failed(a, 1) and a.has_log("phase1 negotiation failed due to time up.")
    assert len([e for e in b.logs if e.text == "no suitable proposal found."]) == 5
    assert not esp_sas(a) and not esp_sas(b)


def test_phase1_dh_group_and_lifetime_strict() -> None:
    extra = "\n    lifetime time 1 hour;"
    net, a, b = pair(remote(B, group="modp1536") + sainfo(), remote(A, extra=extra) + sainfo())
    text = b.log_text()
    assert "dh_group: peer 1536-bit MODP group, my 1024-bit MODP group" in text
    assert "long lifetime proposed: my:3600 peer:28800" in text


def test_phase1_lifetime_claim_and_obey_accept() -> None:
    for check in ("claim", "obey"):
        extra = f"\n    lifetime time 1 hour; proposal_check {check};"
        net, a, b = pair(remote(B) + sainfo(), remote(A, extra=extra) + sainfo())
        assert len(esp_sas(a)) == 2, (check, b.log_text())
        ph1 = next(iter(b.engine.ph1s.values()))
        assert ph1.params.lifetime == (3600 if check == "claim" else 28800)


def test_psk_mismatch_hints_at_the_psk_entry() -> None:
    net, a, b = pair(remote(B) + sainfo(), remote(A) + sainfo(), psk_a={B: "one"}, psk_b={A: "two"})
    text = b.log_text()
    assert "pre-shared keys differ" in text and f"psk.txt entry '{A}'" in text, text
    assert "one" not in text.replace("phase1", "") and "two" not in text
    assert not esp_sas(a) and not esp_sas(b)


def test_missing_psk_entry() -> None:
    net, a, b = pair(remote(B) + sainfo(), remote(A) + sainfo(), psk_b={"10.9.9.9": "x"})
    assert b.has_log(f"couldn't find the pskey for {A}."), b.log_text()
    assert b.has_log(f"'{A} <secret>'")


def test_psk_file_weak_permission(tmp_path: Path) -> None:
    psk = tmp_path / "psk.txt"
    psk.write_text(f"# comment\n{B}\tmy secret with spaces\n")
    os.chmod(psk, 0o644)
    net, a, b = pair(remote(B) + sainfo(), remote(A) + sainfo(), psk_source=PskFile(psk))
    assert a.has_log(f"{psk} has weak file permission"), a.log_text()
    assert not esp_sas(a)
    os.chmod(psk, 0o600)
    net2, a2, b2 = pair(
        remote(B) + sainfo(),
        remote(A) + sainfo(),
        psk_b={A: "my secret with spaces"},
        psk_source=PskFile(psk),
    )
    assert len(esp_sas(a2)) == 2, a2.log_text()


def test_phase2_proposal_mismatch_lists_why() -> None:
    net, a, b = pair(remote(B) + sainfo(enc="3des"), remote(A) + sainfo(enc="aes"))
    assert b.has_log("no suitable policy found.")
    assert any(
        "not matched" in e.text and "transform: peer ESP_3DES, my ESP_AES" in e.text for e in b.logs
    ), b.log_text()
    assert a.has_log(f"notification NO-PROPOSAL-CHOSEN received from {B}[500]")
    assert a.has_log(f"we offered for {A}/32[any] proto=255 -> {B}/32[any] proto=255:"), (
        a.log_text()
    )
    assert a.has_log("  ESP #1: ESP_3DES hmac-sha1 Transport lifetime 28800s no pfs"), a.log_text()
    assert failed(b, 2)
    net.advance(40)
    assert failed(a, 2) and a.has_log("phase2 negotiation failed due to time up.")
    # the phase-1 SA stays up
    assert a.has_log("ISAKMP-SA established")


def test_phase2_lifetime_strict_rejects_claim_notifies() -> None:
    net, a, b = pair(remote(B) + sainfo(), remote(A) + sainfo("lifetime time 3600 sec;"))
    assert b.has_log("long lifetime proposed: my:3600 peer:28800"), b.log_text()
    claim = "\n    proposal_check claim;"
    net, a, b = pair(
        remote(B) + sainfo(), remote(A, extra=claim) + sainfo("lifetime time 3600 sec;")
    )
    assert a.has_log("responder lifetime accepted: 3600s (proposed 28800s)"), a.log_text()
    for h in (a, b):
        assert {s.hard.addtime for s in esp_sas(h)} == {3600}


def test_phase2_lifetime_exact_and_obey() -> None:
    exact = "\n    proposal_check exact;"
    net, a, b = pair(
        remote(B) + sainfo("lifetime time 100 sec;"),
        remote(A, extra=exact) + sainfo("lifetime time 99 sec;"),
    )
    assert b.has_log("lifetime mismatched: my:99 peer:100"), b.log_text()
    obey = "\n    proposal_check obey;"
    net, a, b = pair(
        remote(B) + sainfo("lifetime time 100 sec;"),
        remote(A, extra=obey) + sainfo("lifetime time 50 sec;"),
    )
    assert {s.hard.addtime for s in esp_sas(b)} == {100}


def test_pfs_group_mismatch() -> None:
    net, a, b = pair(remote(B) + sainfo(), remote(A) + sainfo("pfs_group modp1024;"))
    assert b.has_log("pfs group mismatched: my:2 peer:0"), b.log_text()


def test_no_sainfo_lists_candidates() -> None:
    only = """
sainfo address 192.168.1.0/24 any address 192.168.2.0/24 any {
    encryption_algorithm aes; authentication_algorithm hmac_sha1; compression_algorithm deflate;
}
"""
    net, a, b = pair(remote(B) + sainfo(), remote(A) + only)
    assert b.has_log("failed to get sainfo."), b.log_text()
    assert any("not matched" in e.text for e in b.logs)
    assert a.has_log("notification INVALID-ID-INFORMATION received")


def test_no_policy_on_responder() -> None:
    net = Net()
    a = net.host("a", A, remote(B) + sainfo(), {B: "secret"})
    b = net.host("b", B, remote(A) + sainfo(), {A: "secret"})
    a.transport_policy(b)
    net.pump()
    net.acquire(a, b)
    net.pump()
    assert b.has_log(f"no policy found: {A}/32"), b.log_text()
    assert a.has_log("notification NO-PROPOSAL-CHOSEN received")


def test_generate_policy_installs_the_responders_spd() -> None:
    net = Net()
    a = net.host("a", A, remote(B) + sainfo(), {B: "secret"})
    b = net.host("b", B, remote(A, extra="\n    generate_policy on;") + sainfo(), {A: "secret"})
    a.transport_policy(b)
    net.pump()
    net.acquire(a, b)
    net.pump()
    assert len(esp_sas(b)) == 2, b.log_text()
    assert len(b.kernel.spd) == 2


def test_no_remote_configuration() -> None:
    net, a, b = pair(remote(B) + sainfo(), remote("10.7.7.7") + sainfo())
    assert b.has_log(f"couldn't find configuration for {A}[500]"), b.log_text()


def test_aggressive_not_allowed() -> None:
    net, a, b = pair(remote(B, mode="aggressive") + sainfo(), remote(A) + sainfo())
    assert b.has_log("not acceptable Aggressive mode"), b.log_text()


def certconf(peer: str, me: str, certdir: Path, extra: str = "") -> str:
    return (
        f'path certificate "{certdir}";'
        + remote(
            peer,
            auth="rsasig",
            extra=f"""
    certificate_type x509 "{me}.pem" "{me}.key";
    my_identifier asn1dn;{extra}""",
        )
        + sainfo()
    )


def test_untrusted_certificate(tmp_path: Path) -> None:
    good = build_pki(tmp_path / "good", {A: A, B: B})
    other = build_pki(tmp_path / "other", {A: A}, ca_name="Other CA")
    net, a, b = pair(certconf(B, A, other), certconf(A, B, good))
    assert b.has_log("unable to get local issuer certificate(20) at depth:0"), b.log_text()
    assert b.has_log("the peer's certificate is not verified.")
    assert a.has_log("notification INVALID-CERT-AUTHORITY received"), a.log_text()


def test_peers_identifier_mismatch(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    extra = (
        '\n    peers_identifier asn1dn "C=JP, O=Example, CN=somebody else";'
        "\n    verify_identifier on;"
    )
    net, a, b = pair(certconf(B, A, d), certconf(A, B, d, extra))
    assert b.has_log("ID value mismatched."), b.log_text()
    assert a.has_log("notification INVALID-ID-INFORMATION received"), a.log_text()


def test_id_not_in_certificate(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    conf_a = (
        f'path certificate "{d}";'
        + remote(
            B,
            auth="rsasig",
            extra=f"""
    certificate_type x509 "{A}.pem" "{A}.key";
    my_identifier address 10.0.0.99;""",
        )
        + sainfo()
    )
    net, a, b = pair(conf_a, certconf(A, B, d))
    assert b.has_log("ID mismatched with subjectAltName."), b.log_text()


def test_verify_cert_off_accepts_an_untrusted_certificate(tmp_path: Path) -> None:
    good = build_pki(tmp_path / "good", {A: A, B: B})
    other = build_pki(tmp_path / "other", {A: A}, ca_name="Other CA")
    off = "\n    verify_cert off;"
    net, a, b = pair(certconf(B, A, other, off), certconf(A, B, good, off))
    assert len(esp_sas(a)) == 2, b.log_text()


def test_ca_type_file_instead_of_hashed_directory(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B}, link_ca=False)
    net, a, b = pair(certconf(B, A, d), certconf(A, B, d))
    assert b.has_log("the peer's certificate is not verified."), b.log_text()
    ca = '\n    ca_type x509 "cacert.pem";'
    net, a, b = pair(certconf(B, A, d, ca), certconf(A, B, d, ca))
    assert len(esp_sas(a)) == 2, b.log_text()


def test_peers_certfile_when_the_peer_sends_no_certificate(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    no_cert = "\n    send_cert off;"
    net, a, b = pair(certconf(B, A, d, no_cert), certconf(A, B, d))
    assert b.has_log("no peer's CERT payload found."), b.log_text()
    pinned = f'\n    peers_certfile x509 "{A}.pem";'
    net, a, b = pair(certconf(B, A, d, no_cert), certconf(A, B, d, pinned))
    assert len(esp_sas(a)) == 2, b.log_text()
    # the pinned file must be the peer's: another certificate fails the signature check
    wrong = f'\n    peers_certfile x509 "{B}.pem";'
    net, a, b = pair(certconf(B, A, d, no_cert), certconf(A, B, d, wrong))
    assert b.has_log("Invalid SIG.") or b.has_log("ID mismatched"), b.log_text()


def test_aggressive_psk_mismatch_is_a_hash_mismatch() -> None:
    net, a, b = pair(
        remote(B, mode="aggressive") + sainfo(),
        remote(A, mode="aggressive") + sainfo(),
        psk_a={B: "one"},
        psk_b={A: "two"},
    )
    assert a.has_log("HASH mismatched"), a.log_text()
    assert a.has_log(f"we used the psk.txt entry '{B}'")
    # b cannot read a's notify (it is encrypted with keys made from the other secret)
    assert b.has_log("most likely the pre-shared keys differ (we used the psk.txt entry"), (
        b.log_text()
    )


def test_unsupported_authentication_method() -> None:
    net, a, b = pair(remote(B, auth="dsssig") + sainfo(), remote(A, auth="dsssig") + sainfo())
    assert b.has_log("authentication method DSS signatures is not supported"), b.log_text()
    assert a.has_log("notification AUTHENTICATION-FAILED received"), a.log_text()


def test_missing_ca_type_file_is_a_local_error(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    missing = '\n    ca_type x509 "no-such-ca.pem";'
    net, a, b = pair(certconf(B, A, d), certconf(A, B, d, missing))
    assert b.has_log("failed to load the CA certificate of ca_type"), b.log_text()
    assert failed(b, 1)


def test_a_lifetime_we_shortened_ends_with_a_delete() -> None:
    """With ``proposal_check claim`` the responder installs its shorter lifetime and sends
    RESPONDER-LIFETIME; a peer that ignores it (charon) would keep its SAs for its own lifetime
    and send into ours after they are gone, so when ours end the peer is told with a Delete."""
    claim = "\n    proposal_check claim;"
    ignores = "\n    proposal_check exact;"  # a, like charon, keeps its own lifetime
    short = sainfo("lifetime time 60 sec;")
    net, a, b = pair(remote(B, extra=ignores) + sainfo(), remote(A, extra=claim) + short)
    assert {s.hard.addtime for s in esp_sas(b)} == {60}
    assert a.has_log("responder lifetime 60s ignored") and {s.hard.addtime for s in esp_sas(a)} == {
        28800
    }
    net.advance(61)
    assert b.has_log(
        "IPsec-SA of lifetime 60 s ended: Delete sent, since we had shortened the peer's lifetime"
    ), b.log_text()
    assert a.has_log("purged IPsec-SA proto_id=ESP"), a.log_text()
    assert not esp_sas(a)  # a followed: nothing of it sends into SAs b no longer has


def test_a_lifetime_we_did_not_shorten_ends_without_a_delete() -> None:
    """racoon sends no Delete when an SA simply expires (pfkey.c pk_recvexpire): neither do we,
    when both sides agreed on the lifetime."""
    net, a, b = pair(remote(B) + sainfo("lifetime time 60 sec;"), remote(A) + sainfo(
        "lifetime time 60 sec;"))
    net.advance(61)
    assert not b.has_log("Delete sent, since we had shortened")
    assert not a.has_log("purged IPsec-SA")
