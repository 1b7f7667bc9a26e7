"""X.501 distinguished names: DER, racoon's text forms, OpenSSL's canonical form and subject hash.

Why this module exists:

* racoon finds trusted CAs in ``path certificate`` by file name ``<hash>.0``, where ``<hash>`` is
  what ``openssl x509 -noout -hash`` prints. To find the same files we must compute the same hash,
  and that hash is taken over OpenSSL's *canonical* encoding of the name, not over its DER.
* Names are compared the way OpenSSL's ``X509_NAME_cmp`` does (on that canonical encoding), so a
  CA whose subject says ``O=Example CA`` as a PrintableString issues certificates whose issuer
  says ``o=example  ca`` as a UTF8String, and both still match.
* racoon.conf writes DNs as text (``asn1dn "C=JP, O=KAME, CN=*"``) and racoon logs them in
  OpenSSL's one-line form (``/C=JP/O=KAME/CN=host``); both directions are here.

Canonical form (OpenSSL ``x509_name_canon`` / ``asn1_string_canon``, re-implemented from the
description): every attribute value whose type is UTF8String, BMPString, UniversalString,
PrintableString, TeletexString (T61), IA5String or VisibleString is converted to UTF-8 (the one-byte
types are read as Latin-1), ASCII whitespace is trimmed from both ends, each internal run of ASCII
whitespace becomes one space, ASCII letters are lower-cased, and the value is re-tagged as
UTF8String. Other types (NumericString among them) are kept byte for byte. Each RDN is re-encoded as
a DER SET (members sorted by their encodings, shorter first on a tie), and the SETs are concatenated
*without* the outer SEQUENCE header. The subject hash is the first four bytes of SHA-1 over that,
read as a little-endian 32-bit number and printed as eight lower-case hex digits.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc5280

from .der import DerError, encode_tlv, read_tlv
from .errors import NameCanonicalError, NameDecodeError, NameSyntaxError

# Universal tag numbers of the string types that occur in names (X.680).
TAG_UTF8_STRING = 12
TAG_NUMERIC_STRING = 18
TAG_PRINTABLE_STRING = 19
TAG_T61_STRING = 20  # TeletexString
TAG_IA5_STRING = 22
TAG_VISIBLE_STRING = 26
TAG_UNIVERSAL_STRING = 28
TAG_BMP_STRING = 30

#: The types OpenSSL converts to UTF-8 when canonicalising (its ``ASN1_MASK_CANON``).
CANONICALISED_TAGS = frozenset(
    {
        TAG_UTF8_STRING,
        TAG_BMP_STRING,
        TAG_UNIVERSAL_STRING,
        TAG_PRINTABLE_STRING,
        TAG_T61_STRING,
        TAG_IA5_STRING,
        TAG_VISIBLE_STRING,
    }
)
_ONE_BYTE_TAGS = frozenset(
    {TAG_NUMERIC_STRING, TAG_PRINTABLE_STRING, TAG_T61_STRING, TAG_IA5_STRING, TAG_VISIBLE_STRING}
)
_ASCII_SPACE_RUN = re.compile(rb"[ \t\n\x0b\x0c\r]+")  # OpenSSL's ossl_isspace() set
_ASCII_SPACE = b" \t\n\x0b\x0c\r"
_PRINTABLE_STRING_CHARS = frozenset(string.ascii_letters + string.digits + " '()+,-./:=?")


@dataclass(frozen=True)
class AttributeKind:
    """What we know about one attribute type: its names, and how text values are encoded.

    ``text_tag``/``min_len``/``max_len`` follow OpenSSL's string table, which is what racoon's
    ``X509_NAME_add_entry_by_txt`` consults when it turns racoon.conf text into DER.
    """

    oid: str
    short_name: str
    long_name: str
    text_tag: int = TAG_UTF8_STRING
    min_len: int = 0
    max_len: int | None = None


_KINDS: tuple[AttributeKind, ...] = (
    AttributeKind("2.5.4.6", "C", "countryName", TAG_PRINTABLE_STRING, 2, 2),
    AttributeKind("2.5.4.8", "ST", "stateOrProvinceName", TAG_UTF8_STRING, 1, 128),
    AttributeKind("2.5.4.7", "L", "localityName", TAG_UTF8_STRING, 1, 128),
    AttributeKind("2.5.4.10", "O", "organizationName", TAG_UTF8_STRING, 1, 64),
    AttributeKind("2.5.4.11", "OU", "organizationalUnitName", TAG_UTF8_STRING, 1, 64),
    AttributeKind("2.5.4.3", "CN", "commonName", TAG_UTF8_STRING, 1, 64),
    AttributeKind("1.2.840.113549.1.9.1", "emailAddress", "emailAddress", TAG_IA5_STRING, 1, 128),
    AttributeKind("2.5.4.5", "serialNumber", "serialNumber", TAG_PRINTABLE_STRING, 1, 64),
    AttributeKind("2.5.4.12", "title", "title", TAG_UTF8_STRING, 1, 64),
    AttributeKind("2.5.4.4", "SN", "surname", TAG_UTF8_STRING, 1, 32768),
    AttributeKind("2.5.4.42", "GN", "givenName", TAG_UTF8_STRING, 1, 32768),
    AttributeKind("2.5.4.43", "initials", "initials", TAG_UTF8_STRING, 1, 32768),
    AttributeKind("2.5.4.44", "generationQualifier", "generationQualifier"),
    AttributeKind("2.5.4.46", "dnQualifier", "dnQualifier", TAG_PRINTABLE_STRING),
    AttributeKind("2.5.4.41", "name", "name", TAG_UTF8_STRING, 1, 32768),
    AttributeKind("2.5.4.65", "pseudonym", "pseudonym"),
    AttributeKind("2.5.4.9", "street", "streetAddress"),
    AttributeKind("2.5.4.17", "postalCode", "postalCode"),
    AttributeKind("2.5.4.15", "businessCategory", "businessCategory"),
    AttributeKind("2.5.4.13", "description", "description"),
    AttributeKind("2.5.4.97", "organizationIdentifier", "organizationIdentifier"),
    AttributeKind("0.9.2342.19200300.100.1.25", "DC", "domainComponent", TAG_IA5_STRING, 1),
    AttributeKind("0.9.2342.19200300.100.1.1", "UID", "userId"),
    AttributeKind(
        "1.3.6.1.4.1.311.60.2.1.3",
        "jurisdictionC",
        "jurisdictionCountryName",
        TAG_PRINTABLE_STRING,
        2,
        2,
    ),
)
_KIND_BY_OID = {k.oid: k for k in _KINDS}
_KIND_BY_NAME = {n.lower(): k for k in _KINDS for n in (k.short_name, k.long_name)}
_KIND_BY_NAME["e"] = _KIND_BY_OID["1.2.840.113549.1.9.1"]  # common in Windows-made DNs
_DOTTED_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")

#: Characters racoon's DN parser accepts after a backslash (RFC 2253 specials).
RACOON_ESCAPABLE = "\\,=+<>#;"


def attribute_kind(oid: str) -> AttributeKind:
    """The table entry for ``oid``; unknown OIDs get a UTF8String kind named by the dotted OID."""
    return _KIND_BY_OID.get(oid) or AttributeKind(oid, oid, oid)


def _lookup_attribute_name(name: str) -> AttributeKind | None:
    kind = _KIND_BY_NAME.get(name.lower())
    if kind is not None:
        return kind
    if _DOTTED_OID.match(name):
        return attribute_kind(name)
    return None


# --- string values -------------------------------------------------------------------------------


def decode_string_value(tag: int, content: bytes) -> str:
    """Decode the content of a string-typed attribute value to text.

    One-byte types are read as Latin-1 (as OpenSSL does), BMPString as UCS-2, UniversalString as
    UCS-4. Raises ``ValueError`` for content OpenSSL would also refuse to convert.
    """
    if tag == TAG_UTF8_STRING:
        return content.decode("utf-8")
    if tag in _ONE_BYTE_TAGS:
        return content.decode("latin-1")
    if tag == TAG_BMP_STRING:
        if len(content) % 2:
            raise ValueError("BMPString has an odd number of bytes")
        units = [int.from_bytes(content[i : i + 2], "big") for i in range(0, len(content), 2)]
        if any(0xD800 <= u <= 0xDFFF for u in units):
            raise ValueError("BMPString contains a surrogate code unit")
        return "".join(map(chr, units))
    if tag == TAG_UNIVERSAL_STRING:
        if len(content) % 4:
            raise ValueError("UniversalString length is not a multiple of 4")
        points = [int.from_bytes(content[i : i + 4], "big") for i in range(0, len(content), 4)]
        if any(p > 0x10FFFF or 0xD800 <= p <= 0xDFFF for p in points):
            raise ValueError("UniversalString contains an invalid code point")
        return "".join(map(chr, points))
    raise ValueError(f"tag {tag} is not a character string type")


def encode_string_value(tag: int, text: str) -> bytes:
    """Encode ``text`` as the content octets of a string of type ``tag``."""
    if tag == TAG_UTF8_STRING:
        return text.encode("utf-8")
    if tag in (TAG_PRINTABLE_STRING, TAG_IA5_STRING, TAG_NUMERIC_STRING, TAG_VISIBLE_STRING):
        return text.encode("ascii")
    if tag == TAG_T61_STRING:
        return text.encode("latin-1")
    if tag == TAG_BMP_STRING:
        return text.encode("utf-16-be")
    if tag == TAG_UNIVERSAL_STRING:
        return text.encode("utf-32-be")
    raise ValueError(f"tag {tag} is not a character string type")


def canonical_string(tag: int, content: bytes) -> bytes:
    """OpenSSL's ``asn1_string_canon`` on a value of a canonicalised type: UTF-8, trimmed,
    whitespace runs collapsed, ASCII lower-cased. Raises ``ValueError`` if not convertible."""
    utf8 = decode_string_value(tag, content).encode("utf-8")
    trimmed = utf8.strip(_ASCII_SPACE)
    # bytes.lower() only touches A-Z, like ossl_tolower; multi-byte UTF-8 has the top bit set in
    # every byte, so neither the space set nor lower() can hit part of a non-ASCII character.
    return _ASCII_SPACE_RUN.sub(b" ", trimmed).lower()


# --- attributes and names ------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """One AttributeTypeAndValue: the dotted OID and the value's complete DER (tag, length,
    content), kept exactly as received so that re-encoding the name reproduces its bytes."""

    oid: str
    value_der: bytes

    @classmethod
    def from_text(cls, oid: str, text: str, tag: int = TAG_UTF8_STRING) -> Attribute:
        return cls(oid, encode_tlv(tag, encode_string_value(tag, text)))

    @property
    def tag(self) -> int:
        return self.value_der[0]

    @property
    def content(self) -> bytes:
        return read_tlv(self.value_der).content

    @property
    def kind(self) -> AttributeKind:
        return attribute_kind(self.oid)

    @property
    def is_wildcard(self) -> bool:
        """A ``*`` value as :func:`parse_dn` encodes the wildcard (a PrintableString, as racoon
        does). racoon accepts ``*`` of any string type; we do not, so that ``\\2A`` in
        racoon.conf can mean a literal star."""
        return self.tag == TAG_PRINTABLE_STRING and self.content == b"*"

    def text(self) -> str | None:
        """The value as text, or None if it is not a decodable character string."""
        try:
            return decode_string_value(self.tag, self.content)
        except ValueError:
            return None

    def to_der(self) -> bytes:
        oid = der_encoder.encode(univ.ObjectIdentifier(self.oid))
        return encode_tlv(0x30, oid + self.value_der)

    def canonical_der(self) -> bytes:
        """This attribute as it appears in OpenSSL's canonical encoding."""
        if self.tag not in CANONICALISED_TAGS:
            return self.to_der()
        value = encode_tlv(TAG_UTF8_STRING, canonical_string(self.tag, self.content))
        return Attribute(self.oid, value).to_der()


def _openssl_der_order(a: bytes, b: bytes) -> int:
    """OpenSSL's SET OF member order: bytewise on the common prefix, then shorter first."""
    common = min(len(a), len(b))
    if a[:common] != b[:common]:
        return -1 if a[:common] < b[:common] else 1
    return len(a) - len(b)


def _attribute_order(a: Attribute, b: Attribute) -> int:
    return _openssl_der_order(a.to_der(), b.to_der())


def _encode_set(members: Iterable[bytes]) -> bytes:
    ordered = sorted(members, key=functools.cmp_to_key(_openssl_der_order))
    return encode_tlv(0x31, b"".join(ordered))


Rdn = tuple[Attribute, ...]


@dataclass(frozen=True, eq=False)
class DistinguishedName:
    """An X.501 Name as a sequence of RDNs (each a tuple of attributes, usually one).

    ``der`` is the encoding the name was read from (or built with). Equality and hashing follow
    OpenSSL's ``X509_NAME_cmp``: two names are equal when their canonical encodings are, so case,
    extra blanks and string types do not matter. Names whose strings cannot be canonicalised
    compare by their DER instead.
    """

    rdns: tuple[Rdn, ...]
    der: bytes = field(repr=False)

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_der(cls, der: bytes) -> DistinguishedName:
        """Parse a DER-encoded Name (RFC 5280 section 4.1.2.4) with pyasn1."""
        try:
            decoded, rest = der_decoder.decode(der, asn1Spec=rfc5280.Name())
        except PyAsn1Error as exc:
            raise NameDecodeError(f"not a DER-encoded X.501 Name: {exc}") from exc
        if rest:
            raise NameDecodeError(f"{len(rest)} bytes of garbage after the Name")
        rdns: list[Rdn] = []
        for rdn in decoded.getComponent():
            attrs = []
            for atv in rdn:
                value = bytes(atv["value"])
                try:
                    tlv = read_tlv(value)
                except DerError as exc:
                    raise NameDecodeError(f"attribute value: {exc}") from exc
                if tlv.end != len(value):
                    raise NameDecodeError("attribute value has trailing bytes")
                attrs.append(Attribute(str(atv["type"]), value))
            rdns.append(tuple(attrs))
        return cls(tuple(rdns), bytes(der))

    @classmethod
    def from_rdns(cls, rdns: Iterable[Iterable[Attribute]]) -> DistinguishedName:
        """Build a name (and its DER) from attributes, one inner iterable per RDN."""
        # members of a SET are kept in their DER order, so ``rdns`` describes ``der`` exactly
        frozen = tuple(
            tuple(sorted(rdn, key=functools.cmp_to_key(_attribute_order))) for rdn in rdns
        )
        body = b"".join(encode_tlv(0x31, b"".join(a.to_der() for a in rdn)) for rdn in frozen)
        return cls(frozen, encode_tlv(0x30, body))

    @classmethod
    def parse(cls, text: str) -> DistinguishedName:
        """Parse racoon.conf's ``asn1dn`` text. See :func:`parse_dn`."""
        return parse_dn(text)

    # views ----------------------------------------------------------------------------------

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """All attributes in order, flattening multi-valued RDNs."""
        return tuple(a for rdn in self.rdns for a in rdn)

    def canonical_der(self) -> bytes:
        """OpenSSL's canonical encoding (concatenated RDN SETs, no outer SEQUENCE header)."""
        out = []
        for r, rdn in enumerate(self.rdns):
            members = []
            for i, attr in enumerate(rdn):
                try:
                    members.append(attr.canonical_der())
                except (ValueError, DerError) as exc:
                    raise NameCanonicalError(
                        f"value {i} of RDN {r} ({attr.kind.short_name}) cannot be converted "
                        f"to UTF-8: {exc}",
                        rdn=r,
                        attribute=i,
                    ) from exc
            out.append(_encode_set(members))
        return b"".join(out)

    def subject_hash(self) -> int:
        """``X509_NAME_hash_ex``: SHA-1 of the canonical encoding, first 4 bytes little-endian."""
        return int.from_bytes(hashlib.sha1(self.canonical_der()).digest()[:4], "little")

    def subject_hash_hex(self) -> str:
        """The hash as ``openssl x509 -hash`` prints it and as CA directory links are named."""
        return f"{self.subject_hash():08x}"

    def subject_hash_old_hex(self) -> str:
        """OpenSSL before 1.0 named links by MD5 over the plain DER (``-subject_hash_old``)."""
        value = int.from_bytes(hashlib.md5(self.der).digest()[:4], "little")
        return f"{value:08x}"

    def oneline(self) -> str:
        """OpenSSL's ``X509_NAME_oneline`` form, as racoon logs it: ``/C=JP/O=Example/CN=h``.

        Bytes outside printable ASCII appear as ``\\xHH`` (upper-case hex), ``/`` or ``+``
        inside a value get a backslash, and the members of a multi-valued RDN are joined by
        ``+``, as OpenSSL 3 does.
        """
        parts = []
        for attr, first in ((a, i == 0) for rdn in self.rdns for i, a in enumerate(rdn)):
            raw = attr.content if attr.tag != 0x30 else attr.value_der
            chars = []
            for byte in raw:
                if byte < 0x20 or byte > 0x7E:
                    chars.append(f"\\x{byte:02X}")
                elif byte in (0x2F, 0x2B):  # '/', '+'
                    chars.append("\\" + chr(byte))
                else:
                    chars.append(chr(byte))
            separator = "/" if first else "+"
            parts.append(f"{separator}{attr.kind.short_name}={''.join(chars)}")
        return "".join(parts)

    def rfc2253(self) -> str:
        """``C=JP, O=Example CA, CN=host`` in the order racoon.conf writes it (the DER order,
        *not* RFC 2253's reversed order), escaped so that :func:`parse_dn` and racoon's own
        parser read the same name back. Multi-valued RDNs are joined with ``+`` (display only:
        racoon's grammar has no multi-valued RDNs)."""
        return ", ".join("+".join(_attribute_text(a) for a in rdn) for rdn in self.rdns)

    def __str__(self) -> str:
        return self.rfc2253()

    # comparison -----------------------------------------------------------------------------

    @functools.cached_property
    def _match_key(self) -> bytes:
        try:
            return b"C" + self.canonical_der()
        except NameCanonicalError:
            return b"D" + self.der

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DistinguishedName):
            return NotImplemented
        return self._match_key == other._match_key

    def __hash__(self) -> int:
        return hash(self._match_key)

    def matches(self, pattern: DistinguishedName) -> bool:
        """Does this name match ``pattern``, whose values may be ``*``? See :func:`dn_matches`."""
        return dn_matches(pattern, self)


def _escape_value(text: str) -> str:
    out = []
    for pos, ch in enumerate(text):
        if ch in RACOON_ESCAPABLE:
            out.append("\\" + ch)
        elif ch == "/" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            # racoon also splits at '/', and control characters are unreadable in logs
            out.extend(f"\\{b:02X}" for b in ch.encode("utf-8"))
        elif ch == " " and (pos == 0 or pos == len(text) - 1):
            out.append("\\20")
        else:
            out.append(ch)
    return "".join(out)


def _attribute_text(attr: Attribute) -> str:
    text = attr.text() if attr.tag in CANONICALISED_TAGS | {TAG_NUMERIC_STRING} else None
    name = attr.kind.short_name
    if text is None:
        return f"{name}=#{attr.value_der.hex()}"
    if attr.is_wildcard:
        return f"{name}=*"
    if text == "*":
        return f"{name}=\\2A"  # a literal star
    return f"{name}={_escape_value(text)}"


# --- racoon.conf text -> DER ---------------------------------------------------------------------


@dataclass
class _Entry:
    field: str
    field_offset: int
    value: bytearray | None = None
    value_offset: int = 0
    hex_form: bool = False  # value started with an unescaped '#'
    escaped: bool = False  # the value used a backslash escape


def parse_dn(text: str) -> DistinguishedName:
    """Turn racoon.conf ``asn1dn`` text into a Name, as racoon's ``eay_str2asn1dn`` does.

    Grammar (racoon's): ``field=value`` entries separated by ``,`` or ``/``; blanks after a
    separator are skipped; the first ``=`` of an entry ends the field name; a backslash escapes one
    of ``\\,=+<>#;`` or introduces two hex digits (an RFC 2253 hexpair, one byte). A value of
    exactly ``*`` is a wildcard for :func:`dn_matches`, encoded as a PrintableString as racoon
    does (``\\2A`` is a literal star, which racoon cannot express). Value types follow OpenSSL's
    table (countryName PrintableString of 2 characters, emailAddress and domainComponent
    IA5String, most others UTF8String).

    Differences from racoon, on purpose: the text is read as UTF-8 (racoon passes the bytes as
    Latin-1 and so double-encodes non-ASCII names); a leading ``/`` is allowed so the one-line
    form from a log can be pasted; attribute names are matched case-insensitively; a value that
    starts with an unescaped ``#`` is RFC 2253 hex of a whole DER value.
    """
    entries: list[_Entry] = []
    pos = 1 if text.startswith("/") else 0
    current = _Entry("", pos)
    length = len(text)

    def add(data: bytes, escaped: bool = False) -> None:
        if current.value is None:
            current.field += data.decode("latin-1")
        else:
            current.value += data
            current.escaped |= escaped

    while pos < length:
        ch = text[pos]
        if "\ud800" <= ch <= "\udfff":
            raise NameSyntaxError(text, pos, "lone surrogate: the text is not valid Unicode")
        if ch == "\\":
            if pos + 1 < length and text[pos + 1] in RACOON_ESCAPABLE:
                add(text[pos + 1].encode("utf-8"), True)
                pos += 2
                continue
            pair = text[pos + 1 : pos + 3]
            if len(pair) == 2 and all(c in string.hexdigits for c in pair):
                add(bytes([int(pair, 16)]), True)
                pos += 3
                continue
            raise NameSyntaxError(
                text, pos, f"'\\' must be followed by one of {RACOON_ESCAPABLE} or two hex digits"
            )
        if current.value is None and ch == "=":
            current.value = bytearray()
            current.value_offset = pos + 1
            current.hex_form = text[pos + 1 : pos + 2] == "#"
            pos += 1
            continue
        if ch in ",/":
            entries.append(current)
            pos += 1
            while pos < length and text[pos] == " ":
                pos += 1
            current = _Entry("", pos)
            continue
        add(ch.encode("utf-8"))
        pos += 1
    entries.append(current)
    return DistinguishedName.from_rdns((_entry_to_attribute(text, e),) for e in entries)


def _entry_to_attribute(text: str, entry: _Entry) -> Attribute:
    if entry.value is None:
        reason = "empty entry" if not entry.field.strip() else f"missing '=' after {entry.field!r}"
        raise NameSyntaxError(text, entry.field_offset, reason)
    name = entry.field.strip()
    kind = _lookup_attribute_name(name)
    if kind is None:
        raise NameSyntaxError(text, entry.field_offset, f"unknown attribute type {name!r}")
    raw = bytes(entry.value)
    if raw == b"*" and not entry.escaped:
        return Attribute(kind.oid, encode_tlv(TAG_PRINTABLE_STRING, b"*"))
    if entry.hex_form:
        try:
            der = bytes.fromhex(raw[1:].decode("ascii"))
            if read_tlv(der).end != len(der):
                raise ValueError("trailing bytes")
        except (ValueError, DerError) as exc:
            raise NameSyntaxError(
                text, entry.value_offset, f"'#' value is not hex of one DER value: {exc}"
            ) from exc
        return Attribute(kind.oid, der)
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NameSyntaxError(text, entry.value_offset, "value is not valid UTF-8") from exc
    if len(value) < kind.min_len or (kind.max_len is not None and len(value) > kind.max_len):
        bounds = (
            f"exactly {kind.min_len}"
            if kind.min_len == kind.max_len
            else f"{kind.min_len}..{kind.max_len if kind.max_len is not None else 'any'}"
        )
        raise NameSyntaxError(
            text,
            entry.value_offset,
            f"{kind.long_name} must have {bounds} characters, not {len(value)}",
        )
    if kind.text_tag == TAG_PRINTABLE_STRING:
        bad = sorted({c for c in value if c not in _PRINTABLE_STRING_CHARS})
        if bad:
            raise NameSyntaxError(
                text,
                entry.value_offset,
                f"{kind.long_name} is a PrintableString and cannot hold {''.join(bad)!r}",
            )
    elif kind.text_tag == TAG_IA5_STRING and not value.isascii():
        raise NameSyntaxError(
            text, entry.value_offset, f"{kind.long_name} is an IA5String and must be ASCII"
        )
    return Attribute.from_text(kind.oid, value, kind.text_tag)


# --- matching ------------------------------------------------------------------------------------


def dn_matches(pattern: DistinguishedName, name: DistinguishedName) -> bool:
    """Does ``name`` match ``pattern`` (a peers_identifier that may use ``*`` values)?

    As racoon's ``eay_cmp_asn1dn``: attributes are paired by position; a pair where the
    *pattern's* value is ``*`` matches if the attribute types agree and is then left out; the
    remaining attributes must be equal as whole names (OpenSSL comparison, see
    :class:`DistinguishedName`). Unlike racoon, a ``*`` in ``name`` (the peer's ID) is *not* a
    wildcard: racoon honours it on either side, which lets a peer claim ``CN=*`` and match any
    configured CN.
    """
    pattern_attrs = _positions(pattern)
    name_attrs = _positions(name)
    if len(pattern_attrs) != len(name_attrs):
        return False
    keep_pattern: list[tuple[int, Attribute]] = []
    keep_name: list[tuple[int, Attribute]] = []
    for (prdn, pattr), (nrdn, nattr) in zip(pattern_attrs, name_attrs, strict=True):
        if pattr.is_wildcard:
            if pattr.oid != nattr.oid:
                return False
            continue
        keep_pattern.append((prdn, pattr))
        keep_name.append((nrdn, nattr))
    return _regroup(keep_pattern) == _regroup(keep_name)


def _positions(name: DistinguishedName) -> list[tuple[int, Attribute]]:
    return [(r, a) for r, rdn in enumerate(name.rdns) for a in rdn]


def _regroup(items: Sequence[tuple[int, Attribute]]) -> DistinguishedName:
    groups: dict[int, list[Attribute]] = {}
    for rdn_index, attr in items:
        groups.setdefault(rdn_index, []).append(attr)
    return DistinguishedName.from_rdns(groups[k] for k in sorted(groups))
