"""Identities: my_identifier forms, peers_identifier matching, and ID-versus-certificate checks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from pki_factory import Issued, issue, name, with_raw_subject

from pyracoon.pki import (
    IdentifierKind,
    IdentifierSpec,
    Identity,
    IdType,
    build_my_identity,
    certificate_subject,
    check_id_against_certificate,
    check_peers_identifier,
    identifier_matches,
    parse_dn,
)
from pyracoon.pki.errors import (
    NOTIFY_INVALID_CERTIFICATE,
    NOTIFY_INVALID_ID_INFORMATION,
    IdentifierConfigError,
    NoSubjectAltNameError,
    PeerIdentifierMismatchError,
    SubjectAltNameMismatchError,
    SubjectNameMismatchError,
)

K = IdentifierKind


@pytest.fixture(scope="module")
def peer(root: Issued) -> Issued:
    return issue(
        name(("C", "JP"), ("O", "KAME"), ("CN", "host2.kame.net")),
        issuer=root,
        san=[
            x509.DNSName("host2.kame.net"),
            x509.DNSName("www.kame.net"),
            x509.IPAddress(ipaddress.ip_address("2001:240:7:100::1:6")),
            x509.IPAddress(ipaddress.ip_address("192.0.2.6")),
            x509.RFC822Name("ipsec@Kame.NET"),
        ],
    )


# --- values and ID_b -----------------------------------------------------------------------------


def test_id_type_numbers_are_rfc2407s() -> None:
    assert [IdType.ID_IPV4_ADDR, IdType.ID_FQDN, IdType.ID_USER_FQDN, IdType.ID_IPV6_ADDR] == [
        1,
        2,
        3,
        5,
    ]
    assert (IdType.ID_DER_ASN1_DN, IdType.ID_KEY_ID) == (9, 11)


def test_id_b_round_trip_and_text() -> None:
    ident = Identity.from_address("2001:240:7:101:260:1dff:fef2:7648")
    assert ident.id_type == IdType.ID_IPV6_ADDR and len(ident.data) == 16
    body = ident.id_b()
    assert body[:4] == bytes([5, 0, 0, 0])
    assert Identity.from_id_b(body) == ident
    assert Identity.from_id_b(bytes([1, 17, 1, 244]) + bytes([10, 0, 0, 1])) == Identity(
        IdType.ID_IPV4_ADDR, bytes([10, 0, 0, 1]), 17, 500
    )
    assert str(ident) == "2001:240:7:101:260:1dff:fef2:7648"
    assert Identity.fqdn("a.example").describe() == "ID_FQDN 'a.example'"
    assert Identity.key_id(b"\x00\x01").describe() == "ID_KEY_ID '0001'"
    assert str(Identity.der_asn1_dn(parse_dn("C=JP, CN=x"))) == "C=JP, CN=x"
    subnet = Identity(IdType.ID_IPV4_ADDR_SUBNET, bytes([10, 0, 0, 0, 255, 255, 255, 0]))
    assert str(subnet) == "10.0.0.0/255.255.255.0"
    with pytest.raises(ValueError, match="unknown ID type 99"):
        Identity.from_id_b(bytes([99, 0, 0, 0]))
    with pytest.raises(ValueError, match="at least 4"):
        Identity.from_id_b(b"\x01")


# --- my_identifier -------------------------------------------------------------------------------


def test_my_identifier_forms(tmp_path: Path, host: Issued) -> None:
    keyfile = tmp_path / "keyid.bin"
    keyfile.write_bytes(b"\x01\x02key\n")

    def build(spec: IdentifierSpec) -> Identity:
        return build_my_identity(
            spec, certificate=host.cert, local_address="192.0.2.1", base_dir=tmp_path
        )

    assert build(IdentifierSpec(K.ADDRESS)) == Identity(IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1]))
    assert build(IdentifierSpec(K.ADDRESS, "fe80::1%em0")).id_type == IdType.ID_IPV6_ADDR
    assert build(IdentifierSpec(K.FQDN, "host1.kame.net")) == Identity(
        IdType.ID_FQDN, b"host1.kame.net"
    )
    assert build(IdentifierSpec(K.USER_FQDN, "me@kame.net")).id_type == IdType.ID_USER_FQDN
    assert build(IdentifierSpec(K.KEYID_FILE, "keyid.bin")).data == b"\x01\x02key\n"
    assert build(IdentifierSpec(K.KEYID_TAG, "tag")) == Identity(IdType.ID_KEY_ID, b"tag")
    # asn1dn: the certificate's subject bytes exactly, or the DN written in racoon.conf
    assert build(IdentifierSpec(K.ASN1DN)).data == host.cert.subject.public_bytes()
    assert build(IdentifierSpec(K.ASN1DN, "C=JP, CN=me")).data == parse_dn("C=JP, CN=me").der


def test_my_identifier_asn1dn_uses_the_subject_as_encoded(root: Issued) -> None:
    odd = parse_dn("C=jp, O=  kame")  # not how cryptography would re-encode it
    cert = x509.load_der_x509_certificate(with_raw_subject(root.cert, odd.der))
    assert build_my_identity(IdentifierSpec(K.ASN1DN), certificate=cert).data == odd.der


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (IdentifierSpec(K.ASN1DN), "no certificate is configured"),
        (IdentifierSpec(K.ADDRESS), "no address given"),
        (IdentifierSpec(K.ADDRESS, "host.example"), "does not appear to be an IPv4 or IPv6"),
        (IdentifierSpec(K.FQDN), "needs a non-empty value"),
        (IdentifierSpec(K.USER_FQDN, ""), "needs a non-empty value"),
        (IdentifierSpec(K.KEYID_FILE, "/nonexistent/keyid"), "cannot read keyid file"),
        (IdentifierSpec(K.ASN1DN, "C=JP, XX=1"), "unknown attribute type 'XX'"),
    ],
)
def test_my_identifier_errors(spec: IdentifierSpec, words: str) -> None:
    with pytest.raises(IdentifierConfigError, match=words):
        build_my_identity(spec)


# --- peers_identifier / verify_identifier --------------------------------------------------------


def test_peers_identifier_matching(tmp_path: Path, peer: Issued) -> None:
    (tmp_path / "kid").write_bytes(b"secret-id")
    dn = Identity.der_asn1_dn(certificate_subject(peer.cert))
    mail = Identity.user_fqdn("ipsec@kame.net")
    udp500 = bytes([192, 0, 2, 6])
    cases = [
        (IdentifierSpec(K.ASN1DN, "C=JP, O=KAME, CN=*"), dn, True),
        (IdentifierSpec(K.ASN1DN, "C=JP, O=KAME, CN=host9.kame.net"), dn, False),
        (IdentifierSpec(K.ASN1DN, "c=jp, o=kame, cn=HOST2.kame.net"), dn, True),
        (IdentifierSpec(K.ASN1DN), dn, True),  # the subject of the peer's certificate
        (IdentifierSpec(K.ADDRESS, "192.0.2.6"), Identity.from_address("192.0.2.6"), True),
        (IdentifierSpec(K.ADDRESS), Identity.from_address("192.0.2.99"), True),  # remote address
        (IdentifierSpec(K.ADDRESS), Identity.from_address("192.0.2.6"), False),
        (
            IdentifierSpec(K.ADDRESS, "192.0.2.6"),
            Identity(IdType.ID_IPV4_ADDR, udp500, 17, 500),
            True,
        ),
        (IdentifierSpec(K.FQDN, "Host2.Kame.Net"), Identity.fqdn("host2.kame.net."), True),
        (IdentifierSpec(K.FQDN, "host2.kame.net"), Identity.user_fqdn("host2.kame.net"), False),
        (IdentifierSpec(K.USER_FQDN, "ipsec@KAME.net"), mail, True),
        (
            IdentifierSpec(K.USER_FQDN, "IPSEC@kame.net"),
            Identity.user_fqdn("ipsec@kame.net"),
            False,
        ),
        (IdentifierSpec(K.KEYID_TAG, "secret-id"), Identity.key_id(b"secret-id"), True),
        (IdentifierSpec(K.KEYID_FILE, "kid"), Identity.key_id(b"secret-id"), True),
        (IdentifierSpec(K.KEYID_FILE, "kid"), Identity.key_id(b"other"), False),
        (IdentifierSpec(K.ASN1DN, "C=JP, O=KAME, CN=*"), Identity.fqdn("x"), False),
    ]
    for spec, ident, expected in cases:
        got = identifier_matches(
            spec,
            ident,
            peer_certificate=peer.cert,
            remote_address="192.0.2.99",
            base_dir=tmp_path,
        )
        assert got is expected, (str(spec), ident.describe())


def test_check_peers_identifier_tries_every_statement(peer: Issued) -> None:
    specs = [IdentifierSpec(K.FQDN, "a.example"), IdentifierSpec(K.ASN1DN, "C=JP, O=*, CN=*")]
    dn = Identity.der_asn1_dn(certificate_subject(peer.cert))
    assert check_peers_identifier(dn, specs) == specs[1]
    with pytest.raises(PeerIdentifierMismatchError) as info:
        check_peers_identifier(Identity.fqdn("b.example"), specs)
    exc = info.value
    assert exc.racoon_message == "ID value mismatched."
    assert str(exc) == (
        "ID value mismatched. peer sent ID_FQDN 'b.example', expected one of: "
        'peers_identifier fqdn "a.example"; peers_identifier asn1dn "C=JP, O=*, CN=*"'
    )
    assert exc.notify_type == NOTIFY_INVALID_ID_INFORMATION


def test_asn1dn_peers_identifier_without_dn_needs_a_certificate() -> None:
    with pytest.raises(IdentifierConfigError, match="the peer sent none"):
        identifier_matches(IdentifierSpec(K.ASN1DN), Identity.der_asn1_dn(parse_dn("CN=x")))


def test_a_star_in_the_peers_id_matches_nothing_it_should_not(peer: Issued) -> None:
    claimed = Identity.der_asn1_dn(parse_dn("C=JP, O=KAME, CN=*"))
    spec = IdentifierSpec(K.ASN1DN, "C=JP, O=KAME, CN=alice.kame.net")
    assert not identifier_matches(spec, claimed)
    with pytest.raises(SubjectNameMismatchError):
        check_id_against_certificate(claimed, peer.cert)


# --- verify_cert: the ID must be what the certificate says ---------------------------------------


@pytest.mark.parametrize(
    "ident",
    [
        Identity.from_address("192.0.2.6"),
        Identity.from_address("2001:240:7:100::1:6"),
        Identity.fqdn("WWW.kame.net"),
        Identity.user_fqdn("ipsec@kame.net"),
    ],
)
def test_id_found_in_subject_alt_name(peer: Issued, ident: Identity) -> None:
    check_id_against_certificate(ident, peer.cert)


def test_asn1dn_id_equal_to_subject_even_when_encoded_differently(peer: Issued) -> None:
    same = parse_dn("C=jp, O=kame, CN=HOST2.KAME.NET")
    check_id_against_certificate(Identity.der_asn1_dn(same), peer.cert)


def test_asn1dn_id_mismatch_says_both_names(peer: Issued) -> None:
    with pytest.raises(SubjectNameMismatchError) as info:
        check_id_against_certificate(Identity.der_asn1_dn(parse_dn("C=JP, CN=evil")), peer.cert)
    assert str(info.value) == (
        "ID mismatched with ASN1 SubjectName. peer's ID is 'C=JP, CN=evil' but its "
        "certificate's subject is 'C=JP, O=KAME, CN=host2.kame.net'"
    )
    assert info.value.notify_type == NOTIFY_INVALID_ID_INFORMATION


def test_address_not_in_subject_alt_name(peer: Issued) -> None:
    with pytest.raises(SubjectAltNameMismatchError) as info:
        check_id_against_certificate(Identity.from_address("198.51.100.1"), peer.cert)
    assert str(info.value) == (
        "ID mismatched with subjectAltName. peer's ID is ID_IPV4_ADDR '198.51.100.1' but "
        "certificate 'C=JP, O=KAME, CN=host2.kame.net' lists only the IP addresses "
        "2001:240:7:100::1:6, 192.0.2.6"
    )
    assert not isinstance(info.value, NoSubjectAltNameError)


def test_fqdn_not_in_subject_alt_name(peer: Issued) -> None:
    with pytest.raises(SubjectAltNameMismatchError, match="DNS names host2.kame.net, www.kame.net"):
        check_id_against_certificate(Identity.fqdn("evil.example"), peer.cert)


def test_certificate_without_the_needed_kind_of_alt_name(root: Issued, host: Issued) -> None:
    with pytest.raises(NoSubjectAltNameError) as info:
        check_id_against_certificate(Identity.user_fqdn("a@b"), host.cert)
    assert "has no subjectAltName email address" in str(info.value)
    assert info.value.notify_type == NOTIFY_INVALID_CERTIFICATE
    bare = issue(name(("CN", "bare")), issuer=root)
    with pytest.raises(NoSubjectAltNameError, match="no subjectAltName IP address"):
        check_id_against_certificate(Identity.from_address("192.0.2.1"), bare.cert)


def test_key_id_cannot_be_checked_against_a_certificate(peer: Issued) -> None:
    with pytest.raises(SubjectAltNameMismatchError, match="ID_KEY_ID cannot be checked"):
        check_id_against_certificate(Identity.key_id(b"x"), peer.cert)
