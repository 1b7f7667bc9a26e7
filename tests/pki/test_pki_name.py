"""Distinguished names: subject hash against the real openssl, canonical form, text forms."""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pki_factory import OPENSSL, issue, key, name, with_raw_subject

from pyracoon.pki.der import encode_tlv
from pyracoon.pki.errors import NameCanonicalError, NameDecodeError, NameSyntaxError
from pyracoon.pki.name import (
    TAG_BMP_STRING,
    TAG_IA5_STRING,
    TAG_NUMERIC_STRING,
    TAG_PRINTABLE_STRING,
    TAG_T61_STRING,
    TAG_UNIVERSAL_STRING,
    TAG_UTF8_STRING,
    Attribute,
    DistinguishedName,
    canonical_string,
    dn_matches,
    parse_dn,
)

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")

# --- a generator of awkward names ----------------------------------------------------------------

OIDS = [
    "2.5.4.3",  # CN
    "2.5.4.10",  # O
    "2.5.4.11",  # OU
    "2.5.4.6",  # C
    "2.5.4.7",  # L
    "1.2.840.113549.1.9.1",  # emailAddress
    "0.9.2342.19200300.100.1.25",  # DC
    "2.5.4.5",  # serialNumber
    "1.3.6.1.4.1.99999.7",  # unknown to everybody
]
PRINTABLE = "ABCxyz019 '()+,-./:=?"
ASCII = PRINTABLE + '@_!#$%&*;<>[]{}|~\\"`^ \t\n\r\x0b\x0c'
LATIN1 = ASCII + "éÉßÿ×Ä\xa0"
BMP = LATIN1 + "日本語ÅΩЖ"
ANY = BMP + "\U0001f600\U00010348"
# VisibleString is left out: OpenSSL 3 refuses to decode a Name that contains one, so it has no
# hash to compare with.
CHARSETS = {
    TAG_PRINTABLE_STRING: PRINTABLE,
    TAG_IA5_STRING: ASCII,
    TAG_NUMERIC_STRING: "0123456789 ",
    TAG_T61_STRING: LATIN1,
    TAG_BMP_STRING: BMP,
    TAG_UNIVERSAL_STRING: ANY,
    TAG_UTF8_STRING: ANY,
}


def random_value(rng: random.Random, tag: int) -> str:
    chars = CHARSETS[tag]
    body = "".join(rng.choice(chars) for _ in range(rng.randint(0, 12)))
    style = rng.random()
    if style < 0.2:
        body = "  " + body + " \t "  # leading / trailing blanks
    elif style < 0.35:
        body = body.replace(" ", "   ")  # blank runs
    elif style < 0.45:
        body = "".join(c.upper() if c.isascii() else c for c in body)  # stay in the charset
    return body


def random_name(rng: random.Random) -> DistinguishedName:
    rdns = []
    for _ in range(rng.randint(0, 5)):
        rdn = []
        for _ in range(1 if rng.random() < 0.75 else rng.randint(2, 3)):
            tag = rng.choice(list(CHARSETS))
            rdn.append(Attribute.from_text(rng.choice(OIDS), random_value(rng, tag), tag))
        rdns.append(rdn)
    return DistinguishedName.from_rdns(rdns)


@pytest.fixture(scope="module")
def template() -> x509.Certificate:
    return issue(name(("CN", "template")), subject_key=key("template")).cert


@needs_openssl
def test_subject_hash_matches_openssl_x509_hash_on_many_generated_names(
    tmp_path: Path, template: x509.Certificate
) -> None:
    rng = random.Random(20031107)
    names = [random_name(rng) for _ in range(150)]
    for index, dn in enumerate(names):
        (tmp_path / f"{index:03d}.der").write_bytes(with_raw_subject(template, dn.der))
    # one shell, one openssl per file: fast enough and exactly what an operator runs
    script = (
        'for f in "$1"/*.der; do '
        '"$2" x509 -inform DER -noout -hash -subject_hash_old -in "$f"; done'
    )
    out = subprocess.run(
        ["sh", "-c", script, "sh", str(tmp_path), OPENSSL],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(out) == 2 * len(names)
    for index, dn in enumerate(names):
        assert (dn.subject_hash_hex(), dn.subject_hash_old_hex()) == (
            out[2 * index],
            out[2 * index + 1],
        ), f"name {index}: {dn.der.hex()}"


@needs_openssl
def test_subject_hash_of_cryptography_built_ca_matches_openssl(tmp_path: Path) -> None:
    ca = issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "  Ｗide   Project "),
                x509.NameAttribute(NameOID.EMAIL_ADDRESS, "CA@Example.ORG"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Root"),
            ]
        ),
        ca=True,
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.pem)
    out = subprocess.run(
        [OPENSSL, "x509", "-noout", "-hash", "-in", str(path)], capture_output=True, text=True
    )
    dn = DistinguishedName.from_der(ca.cert.subject.public_bytes())
    assert dn.subject_hash_hex() == out.stdout.strip()


# --- the same against libcrypto directly, which allows many more examples ------------------------


def _libcrypto() -> ctypes.CDLL | None:
    found = ctypes.util.find_library("crypto")
    if not found:
        return None
    try:
        lib = ctypes.CDLL(found)
        lib.d2i_X509_NAME.restype = ctypes.c_void_p
        lib.d2i_X509_NAME.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_long,
        ]
        lib.X509_NAME_hash_ex.restype = ctypes.c_ulong
        lib.X509_NAME_hash_ex.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.X509_NAME_oneline.restype = ctypes.c_char_p
        lib.X509_NAME_oneline.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.X509_NAME_free.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


LIBCRYPTO = _libcrypto()


def openssl_name_facts(der: bytes) -> tuple[str | None, bytes]:
    """(hash or None if OpenSSL cannot hash it, X509_NAME_oneline) straight from libcrypto."""
    assert LIBCRYPTO is not None
    buf = ctypes.c_char_p(der)
    handle = LIBCRYPTO.d2i_X509_NAME(None, ctypes.byref(buf), len(der))
    if not handle:  # OpenSSL canonicalises while decoding and refuses what it cannot convert
        return None, b""
    try:
        ok = ctypes.c_int(0)
        value = LIBCRYPTO.X509_NAME_hash_ex(handle, None, None, ctypes.byref(ok))
        out = ctypes.create_string_buffer(4096)
        oneline = LIBCRYPTO.X509_NAME_oneline(handle, out, len(out))
        return (f"{value:08x}" if ok.value else None), oneline
    finally:
        LIBCRYPTO.X509_NAME_free(handle)


@pytest.mark.skipif(LIBCRYPTO is None, reason="libcrypto (OpenSSL 3) is not loadable")
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_subject_hash_and_oneline_match_libcrypto(seed: int) -> None:
    dn = random_name(random.Random(seed))
    expected_hash, expected_oneline = openssl_name_facts(dn.der)
    assert dn.subject_hash_hex() == expected_hash
    assert dn.oneline().encode("latin-1") == expected_oneline


@pytest.mark.skipif(LIBCRYPTO is None, reason="libcrypto (OpenSSL 3) is not loadable")
def test_names_openssl_cannot_canonicalise_are_refused_like_openssl() -> None:
    bad_utf8 = DistinguishedName.from_rdns([[Attribute("2.5.4.3", encode_tlv(12, b"a\xffb"))]])
    odd_bmp = DistinguishedName.from_rdns([[Attribute("2.5.4.3", encode_tlv(30, b"\x00a\x00"))]])
    for dn in (bad_utf8, odd_bmp):
        assert openssl_name_facts(dn.der)[0] is None
        with pytest.raises(NameCanonicalError) as info:
            dn.subject_hash()
        assert (info.value.rdn, info.value.attribute) == (0, 0)


# --- canonical form and comparison ---------------------------------------------------------------


def test_canonical_string_rules() -> None:
    assert canonical_string(TAG_PRINTABLE_STRING, b"  Example \t\n CA  ") == b"example ca"
    assert canonical_string(TAG_BMP_STRING, "ÄBC Ж".encode("utf-16-be")) == "Äbc Ж".encode()
    # one-byte types are Latin-1; only ASCII letters are lower-cased
    assert canonical_string(TAG_T61_STRING, b"\xc9COLE") == "École".encode()


def test_names_compare_like_x509_name_cmp() -> None:
    printable = DistinguishedName.from_rdns(
        [
            [Attribute.from_text("2.5.4.6", "JP", TAG_PRINTABLE_STRING)],
            [Attribute.from_text("2.5.4.10", "Example CA", TAG_PRINTABLE_STRING)],
        ]
    )
    utf8 = DistinguishedName.from_rdns(
        [
            [Attribute.from_text("2.5.4.6", "jp", TAG_UTF8_STRING)],
            [Attribute.from_text("2.5.4.10", "  example   ca ", TAG_BMP_STRING)],
        ]
    )
    other = parse_dn("C=JP, O=Example CB")
    assert printable == utf8 and hash(printable) == hash(utf8)
    assert printable != other
    numeric = DistinguishedName.from_rdns([[Attribute.from_text("2.5.4.3", "1  2", 18)]])
    numeric2 = DistinguishedName.from_rdns([[Attribute.from_text("2.5.4.3", "1 2", 18)]])
    assert numeric != numeric2  # NumericString is not canonicalised


def test_from_der_rejects_garbage() -> None:
    with pytest.raises(NameDecodeError):
        DistinguishedName.from_der(b"\x30\x03\x31\x01")
    with pytest.raises(NameDecodeError):
        DistinguishedName.from_der(parse_dn("CN=x").der + b"\x00")


def test_from_der_keeps_the_bytes_and_order() -> None:
    der = name(("C", "JP"), ("O", "Example"), ("CN", "host")).public_bytes()
    dn = DistinguishedName.from_der(der)
    assert dn.der == der
    assert [a.oid for a in dn.attributes] == ["2.5.4.6", "2.5.4.10", "2.5.4.3"]
    assert DistinguishedName.from_rdns(dn.rdns).der == der


# --- text forms ----------------------------------------------------------------------------------


def test_oneline_and_rfc2253_forms() -> None:
    dn = parse_dn("C=JP, O=KAME Project, CN=host\\2Fa\\,b")
    assert dn.oneline() == "/C=JP/O=KAME Project/CN=host\\/a,b"
    assert dn.rfc2253() == "C=JP, O=KAME Project, CN=host\\2Fa\\,b"
    assert str(dn) == dn.rfc2253()


def test_parse_dn_encodes_like_openssl_string_table() -> None:
    dn = parse_dn("C=JP, ST=Kanagawa, O=KAME Project, CN=foo, emailAddress=root@example.jp")
    expected = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Kanagawa"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KAME Project"),
            x509.NameAttribute(NameOID.COMMON_NAME, "foo"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "root@example.jp"),
        ]
    )
    assert dn.der == expected.public_bytes()
    assert [a.tag for a in dn.attributes] == [19, 12, 12, 12, 22]


@needs_openssl
def test_parse_dn_gives_the_der_openssl_req_gives(tmp_path: Path) -> None:
    keyfile = tmp_path / "k.pem"
    keyfile.write_bytes(
        key("req").private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    subj = "/C=JP/O=KAME Project/OU=Hosts Ünit/CN=foo.example/emailAddress=a@example.jp"
    out = subprocess.run(
        [
            OPENSSL,
            "req",
            "-new",
            "-x509",
            "-utf8",
            "-key",
            str(keyfile),
            "-subj",
            subj,
            "-outform",
            "DER",
        ],
        check=True,
        capture_output=True,
    ).stdout
    cert = x509.load_der_x509_certificate(out)
    assert parse_dn(subj).der == cert.subject.public_bytes()
    assert (
        parse_dn(
            "C=JP, O=KAME Project, OU=Hosts Ünit, CN=foo.example, emailAddress=a@example.jp"
        ).der
        == cert.subject.public_bytes()
    )


def test_parse_dn_racoon_syntax() -> None:
    # '/' separates like ',', blanks after a separator are skipped, escapes as RFC 2253
    assert parse_dn("C=JP/O=A,  CN=b") == parse_dn("C=JP, O=A, CN=b")
    assert (
        parse_dn("CN=a\\,b\\+c\\=d\\;e\\<f\\>g\\#h\\\\i").attributes[0].text()
        == "a,b+c=d;e<f>g#h\\i"
    )
    assert parse_dn("CN=\\41\\c3\\a9").attributes[0].text() == "Aé"
    assert parse_dn("commonName=x, organizationName=y").rfc2253() == "CN=x, O=y"
    assert parse_dn("2.5.4.3=x").attributes[0].oid == "2.5.4.3"
    assert parse_dn("CN=x=y").attributes[0].text() == "x=y"  # only the first '=' splits
    wildcard = parse_dn("C=JP, CN=*").attributes[1]
    assert wildcard.is_wildcard and wildcard.tag == TAG_PRINTABLE_STRING
    assert parse_dn("CN=#0c0378797a").attributes[0].text() == "xyz"


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("C=JP, XX=foo", 6, "unknown attribute type 'XX'"),
        ("C=JP, CN", 6, "missing '='"),
        ("C=JP,", 5, "empty entry"),
        ("C=JPN", 2, "exactly 2"),
        ("C=J_", 2, "PrintableString"),
        ("CN=a\\zz", 4, "two hex digits"),
        ("CN=a\\", 4, "two hex digits"),
        ("CN=\\ff", 3, "UTF-8"),
        ("emailAddress=é@x", 13, "IA5String"),
        ("CN=" + "x" * 65, 3, "1..64"),
        ("CN=a\udcff", 4, "lone surrogate"),
    ],
)
def test_parse_dn_errors_say_where(text: str, offset: int, words: str) -> None:
    with pytest.raises(NameSyntaxError) as info:
        parse_dn(text)
    assert info.value.offset == offset
    assert words in str(info.value)


single_valued_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    values=st.lists(
        st.tuples(
            st.sampled_from(["2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.7"]), single_valued_text
        ),
        min_size=1,
        max_size=5,
    )
)
def test_rfc2253_text_parses_back_to_the_same_der(values: list[tuple[str, str]]) -> None:
    dn = DistinguishedName.from_rdns([[Attribute.from_text(oid, text)] for oid, text in values])
    assert parse_dn(dn.rfc2253()).der == dn.der


# --- wildcard matching ---------------------------------------------------------------------------


def test_dn_matches_with_wildcards() -> None:
    peer = parse_dn("C=JP, O=Example, CN=host1.example")
    assert dn_matches(parse_dn("C=JP, O=Example, CN=*"), peer)
    assert dn_matches(parse_dn("C=*, O=*, CN=*"), peer)
    assert dn_matches(parse_dn("c=jp, o=EXAMPLE, cn=Host1.Example"), peer)
    assert not dn_matches(parse_dn("C=JP, O=Other, CN=*"), peer)
    assert not dn_matches(parse_dn("C=JP, OU=*, CN=*"), peer)  # '*' needs the same type
    assert not dn_matches(parse_dn("C=JP, CN=*"), peer)  # and the same number of entries
    assert peer.matches(parse_dn("C=JP, O=Example, CN=*"))


def test_an_escaped_star_is_a_literal_star() -> None:
    literal = parse_dn("C=JP, CN=\\2A")
    assert not literal.attributes[1].is_wildcard
    assert dn_matches(literal, parse_dn("C=JP, CN=\\2A"))
    assert not dn_matches(literal, parse_dn("C=JP, CN=alice"))


def test_a_star_in_the_peers_name_is_not_a_wildcard() -> None:
    # racoon's eay_cmp_asn1dn honours '*' on both sides; a peer could claim CN=* and match any CN
    assert not dn_matches(parse_dn("C=JP, CN=alice"), parse_dn("C=JP, CN=*"))
