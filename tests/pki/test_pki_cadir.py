"""The hashed CA directory: the memo's layout, several CAs, hash collisions, helpful misses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pki_factory import (
    NOW,
    OPENSSL,
    Issued,
    chmod,
    install,
    issue,
    key,
    name,
    openssl_hash,
    openssl_link,
)

from pyracoon.pki import (
    CaDirectory,
    TrustStore,
    certificate_subject,
    load_certificate,
    load_private_key,
    verify_certificate_chain,
)
from pyracoon.pki.errors import IssuerNotFoundError, VerifyCode

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


@pytest.fixture(scope="module")
def own_ca() -> Issued:
    return issue(name(("C", "JP"), ("O", "KAME Project"), ("CN", "KAME CA")), ca=True)


@pytest.fixture(scope="module")
def verisign() -> Issued:
    return issue(
        name(("C", "US"), ("O", "VeriSign, Inc."), ("OU", "Class 3 Public Primary CA")),
        ca=True,
        subject_key=key("verisign", "rsa"),
    )


@needs_openssl
def test_the_memos_layout_with_links_made_by_openssl(
    cert_dir: Path, own_ca: Issued, verisign: Issued
) -> None:
    """host_cert.pem / host_priv.pem / cacert.pem / veri_cert.pem, and both CAs linked with
    ``ln -s X `openssl x509 -noout -hash -in X`.0``; peers of either CA are accepted."""
    me = issue(name(("C", "JP"), ("CN", "host1.kame.net")), issuer=own_ca)
    (cert_dir / "host_cert.pem").write_bytes(me.pem)
    (cert_dir / "host_priv.pem").write_bytes(me.key_pem())
    chmod(cert_dir / "host_priv.pem", 0o600)
    (cert_dir / "cacert.pem").write_bytes(own_ca.pem)
    (cert_dir / "veri_cert.pem").write_bytes(verisign.pem)
    links = [openssl_link(cert_dir, "cacert.pem"), openssl_link(cert_dir, "veri_cert.pem")]

    # our hash names the very files openssl made
    for link, ca in zip(links, (own_ca, verisign), strict=True):
        assert link.name == f"{certificate_subject(ca.cert).subject_hash_hex()}.0"

    assert load_certificate(cert_dir / "host_cert.pem") == me.cert
    assert load_private_key(cert_dir / "host_priv.pem") is not None

    trust = TrustStore(CaDirectory(cert_dir))
    peer_kame = issue(name(("C", "JP"), ("CN", "host2.kame.net")), issuer=own_ca)
    peer_veri = issue(name(("C", "US"), ("CN", "www.example.com")), issuer=verisign)
    stranger_ca = issue(name(("C", "JP"), ("O", "Elsewhere CA")), ca=True)
    stranger = issue(name(("CN", "host3")), issuer=stranger_ca)
    for peer, ca in ((peer_kame, own_ca), (peer_veri, verisign)):
        chain = verify_certificate_chain(peer.cert, trust=trust, now=NOW)
        assert chain.trust_anchor == ca.cert
    with pytest.raises(IssuerNotFoundError) as info:
        verify_certificate_chain(stranger.cert, trust=trust, now=NOW)
    expected_hash = openssl_hash_of_name(cert_dir, stranger_ca)
    assert str(info.value) == (
        f"issuer 'C=JP, O=Elsewhere CA' of 'CN=host3' not found in the CA directory {cert_dir} "
        f"(looked for {expected_hash}.0)"
    )
    assert info.value.code == VerifyCode.UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert info.value.racoon_log_line() == (
        "unable to get local issuer certificate(20) at depth:0 SubjectName:/CN=host3"
    )


def openssl_hash_of_name(directory: Path, ca: Issued) -> str:
    scratch = directory.parent / "scratch.pem"
    scratch.write_bytes(ca.pem)
    try:
        return openssl_hash(scratch)
    finally:
        scratch.unlink()


@needs_openssl
def test_link_helper_names_links_like_openssl(cert_dir: Path, own_ca: Issued) -> None:
    (cert_dir / "cacert.pem").write_bytes(own_ca.pem)
    link = CaDirectory(cert_dir).link("cacert.pem")
    assert link.name == openssl_hash(cert_dir / "cacert.pem") + ".0"
    assert os.readlink(link) == "cacert.pem"
    assert CaDirectory(cert_dir).link("cacert.pem") == link  # idempotent


def test_hash_collision_is_resolved_by_name(cert_dir: Path, own_ca: Issued, verisign: Issued):
    """Two CA names with one hash live at .0 and .1; the lookup reads on past the wrong one.
    (A real 32-bit collision is impractical to make, so .0 is planted by hand.)"""
    digest = certificate_subject(own_ca.cert).subject_hash_hex()
    (cert_dir / "veri_cert.pem").write_bytes(verisign.pem)
    (cert_dir / "cacert.pem").write_bytes(own_ca.pem)
    (cert_dir / f"{digest}.0").symlink_to("veri_cert.pem")
    link = CaDirectory(cert_dir).link("cacert.pem")
    assert link.name == f"{digest}.1"

    lookup = CaDirectory(cert_dir).lookup(certificate_subject(own_ca.cert))
    assert lookup.certificates == (own_ca.cert,)
    assert lookup.looked_for == (f"{digest}.0", f"{digest}.1", f"{digest}.2")
    assert "same hash, other name" in lookup.notes[0]
    peer = issue(name(("CN", "collide")), issuer=own_ca)
    assert verify_certificate_chain(peer.cert, trust=TrustStore(CaDirectory(cert_dir)), now=NOW)


def test_two_cas_with_one_name_both_trusted(cert_dir: Path) -> None:
    """A re-keyed CA keeps its name: old and new certificate sit at .0 and .1 and each one's
    peers verify (the issuer is chosen by signature, not by file order)."""
    ca_name = name(("C", "JP"), ("O", "Rekeyed CA"))
    old = issue(ca_name, ca=True, subject_key=key("old-ca"), key_ids=False)
    new = issue(ca_name, ca=True, subject_key=key("new-ca"), key_ids=False)
    install(cert_dir, "old.pem", old)
    install(cert_dir, "new.pem", new)
    trust = TrustStore(CaDirectory(cert_dir))
    for ca in (old, new):
        peer = issue(name(("CN", "peer")), issuer=ca, key_ids=False)
        assert verify_certificate_chain(peer.cert, trust=trust, now=NOW).trust_anchor == ca.cert


def test_misses_explain_themselves(cert_dir: Path, own_ca: Issued) -> None:
    dn = certificate_subject(own_ca.cert)
    (cert_dir / f"{dn.subject_hash_old_hex()}.0").symlink_to("cacert.pem")
    (cert_dir / "cacert.pem").write_bytes(own_ca.pem)
    (cert_dir / f"{dn.subject_hash_hex()}.0").symlink_to("gone.pem")
    notes = CaDirectory(cert_dir).lookup(dn).notes
    assert any("dangling symbolic link" in n for n in notes)
    assert any("pre-OpenSSL-1.0 hash" in n and "openssl x509 -noout -hash" in n for n in notes)


def test_unreadable_hash_file_is_a_note_not_a_crash(cert_dir: Path, own_ca: Issued) -> None:
    dn = certificate_subject(own_ca.cert)
    (cert_dir / f"{dn.subject_hash_hex()}.0").write_bytes(b"not a certificate")
    lookup = CaDirectory(cert_dir).lookup(dn)
    assert lookup.certificates == ()
    assert "neither a PEM nor a DER" in lookup.notes[0]


def test_ca_type_file_and_directory_together(cert_dir: Path, own_ca: Issued, verisign: Issued):
    ca_file = cert_dir.parent / "ca_type.pem"
    ca_file.write_bytes(verisign.pem)
    install(cert_dir, "cacert.pem", own_ca)
    trust = TrustStore.from_paths(cert_dir, [ca_file])
    for ca in (own_ca, verisign):
        peer = issue(name(("CN", "p")), issuer=ca)
        assert verify_certificate_chain(peer.cert, trust=trust, now=NOW)
    only_file = TrustStore.from_paths(None, [ca_file])
    orphan = issue(name(("CN", "p")), issuer=own_ca)
    with pytest.raises(IssuerNotFoundError, match="among the ca_type certificates"):
        verify_certificate_chain(orphan.cert, trust=only_file, now=NOW)
    with pytest.raises(IssuerNotFoundError, match="no CA directory"):
        verify_certificate_chain(orphan.cert, trust=TrustStore(), now=NOW)


def test_directory_changes_are_seen(cert_dir: Path, own_ca: Issued) -> None:
    directory = CaDirectory(cert_dir)
    dn = certificate_subject(own_ca.cert)
    assert directory.lookup(dn).certificates == ()
    install(cert_dir, "cacert.pem", own_ca)
    assert directory.lookup(dn).certificates == (own_ca.cert,)


def test_der_ca_files_work(cert_dir: Path, own_ca: Issued) -> None:
    (cert_dir / "cacert.der").write_bytes(own_ca.cert.public_bytes(serialization.Encoding.DER))
    CaDirectory(cert_dir).link("cacert.der")
    found = CaDirectory(cert_dir).lookup(certificate_subject(own_ca.cert)).certificates
    assert found == (own_ca.cert,) and isinstance(found[0], x509.Certificate)


def test_missing_directory_is_named(tmp_path: Path, own_ca: Issued) -> None:
    lookup = CaDirectory(tmp_path / "nope").lookup(certificate_subject(own_ca.cert))
    assert lookup.notes == (f"{tmp_path / 'nope'} is not a directory (check 'path certificate')",)
