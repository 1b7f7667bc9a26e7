"""The ``sainfo`` block (racoon.conf(5): sainfo): its IDs, ``from``/``group`` and algorithms.

racoon's cfparse.y turns each sainfo ID into the ID payload it must equal (ipsecdoi_sockaddr2id(),
ipsecdoi_sockrange2id()) and stores the block with inssainfo() in score order; this module does
the same and dispatches the body by :data:`SAINFO_STATEMENTS`.  Matching a quick-mode exchange
against the stored blocks is :mod:`pyracoon.config.sainfo`.  The ID rules racoon follows (and
where the man page says otherwise) are docs/racoon.md ("sainfo"); what is acted upon is
docs/config.md ("The support table").
"""

from __future__ import annotations

import ipaddress

from pyracoon.config.lexer import Kind, Token
from pyracoon.config.model import IPAddress, SaInfo, SaInfoAlgorithm, SaInfoId
from pyracoon.config.reader import IDENTIFIER_TYPES, Handler, Reader, Stream
from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
)
from pyracoon.wire.constants import IDType

__all__ = ["SAINFO_STATEMENTS", "sainfo", "sainfo_algorithm", "sainfo_id"]

#: Upper-layer protocol words of a sainfo ID (cftoken.l ul_proto) and their numbers.
_UL_PROTOS = {
    "esp": 50,
    "ah": 51,
    "ipcomp": 108,
    "icmp": 1,
    "icmp6": 58,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
}
_IPPROTO_ICMP, _IPPROTO_ICMPV6 = 1, 58


def sainfo_id(p: Reader, s: Stream) -> SaInfoId:
    """One sainfo ID, as the ID payload it must equal (docs/racoon.md, "sainfo")."""
    type_token = s.expect_word(
        IDENTIFIER_TYPES,
        "anonymous, clientaddr or an ID (address, subnet, fqdn, user_fqdn, keyid)",
    )
    kind = str(type_token.value)
    if kind in ("fqdn", "user_fqdn", "keyid", "asn1dn"):
        value_token = s.expect(Kind.STRING, 'a quoted value "..."')
        if kind == "asn1dn":
            raise type_token.error("id type forbidden: asn1dn")
        id_type = {"fqdn": IDType.FQDN, "user_fqdn": IDType.USER_FQDN, "keyid": IDType.KEY_ID}[
            kind
        ]
        value = str(value_token.value)
        return SaInfoId(kind, id_type, value.encode("utf-8"), text=f'{kind} "{value}"')
    address_token = s.peek()
    address, _ = p.address(s)
    range_token = s.accept(Kind.RANGE)
    end: IPAddress | None = None
    if range_token is not None:
        end, _ = p.address_token(
            Token(
                Kind.ADDR,
                range_token.value,
                str(range_token.value),
                range_token.file,
                range_token.line,
            )
        )
        if end.version != address.version:
            raise range_token.error("the two ends of a range must be of one family")
        if int(end) < int(address):
            raise range_token.error("the range ends below its start")
    prefix_token = s.accept(Kind.PREFIX)
    bits: int = address.max_prefixlen
    if prefix_token is not None:
        if range_token is not None:
            raise prefix_token.error("a prefix makes no sense after an address range")
        bits = int(prefix_token.value)
        if bits > address.max_prefixlen:
            raise prefix_token.error(f"prefix length {bits} is out of range")
    port = 0
    port_text = "any"
    port_token = s.peek()
    if s.accept(Kind.PORTANY) is None:
        written = p.port(s)
        if written is not None:
            port, port_text = written, str(written)
    ul_token = s.next()
    if ul_token.kind is Kind.NUMBER:
        proto = int(ul_token.value)
        if proto > 255:
            raise ul_token.error("upper-layer protocol must be 0..255")
        proto = 0 if proto == 255 else proto  # IPSEC_ULPROTO_ANY
    elif ul_token.kind is Kind.WORD and ul_token.value == "any":
        proto = 0
    elif ul_token.kind is Kind.WORD and ul_token.value in _UL_PROTOS:
        proto = _UL_PROTOS[str(ul_token.value)]
    else:
        raise ul_token.error(
            "expected an upper-layer protocol (any, a number, esp, ah, "
            "ipcomp, icmp, icmp6, tcp, udp, gre)"
        )
    if proto in (_IPPROTO_ICMP, _IPPROTO_ICMPV6) and port != 0:
        raise port_token.error('port number must be "any".')
    if (proto == _IPPROTO_ICMP and address.version == 6) or (
        proto == _IPPROTO_ICMPV6 and address.version == 4
    ):
        raise ul_token.error("upper layer protocol mismatched.")
    ul_text = "any" if proto == 0 else str(ul_token.text)
    if end is not None:
        id_type = IDType.IPV4_ADDR_RANGE if address.version == 4 else IDType.IPV6_ADDR_RANGE
        data = address.packed + end.packed
        text = f"{kind} {address}-{end}[{port_text}] {ul_text}"
    elif bits == address.max_prefixlen:
        # racoon's ipsecdoi_sockaddr2id(): a full prefix is an ADDR ID, whether the line
        # says address or subnet (the keyword itself is not used).
        id_type = IDType.IPV4_ADDR if address.version == 4 else IDType.IPV6_ADDR
        data = address.packed
        text = f"{kind} {address}[{port_text}] {ul_text}"
    else:
        id_type = IDType.IPV4_ADDR_SUBNET if address.version == 4 else IDType.IPV6_ADDR_SUBNET
        network = ipaddress.ip_network(f"{address}/{bits}", strict=False)
        data = address.packed + network.netmask.packed
        text = f"{kind} {address}/{bits}[{port_text}] {ul_text}"
        if network.network_address != address:
            p.warn(
                address_token,
                f"{address}/{bits} has host bits set; sainfo IDs are "
                "compared exactly, so only a peer sending the same "
                "bits will match",
            )
    return SaInfoId(kind, id_type, data, proto, port, text)

def sainfo(p: Reader, s: Stream, keyword: Token) -> None:
    """The top-level ``sainfo`` statement: its IDs, ``from``/``group``, body and checks."""
    sainfo = SaInfo(file=keyword.file, line=keyword.line)
    if s.at_word("anonymous"):
        s.next()
        if s.at_word("clientaddr"):
            s.next()
            sainfo.remote_clientaddr = True
        elif not s.at(Kind.LBRACE) and not s.at_word("from", "group"):
            sainfo.remote_id = sainfo_id(p, s)
    else:
        sainfo.local_id = sainfo_id(p, s)
        if s.at_word("anonymous"):
            s.next()
        elif s.at_word("clientaddr"):
            s.next()
            sainfo.remote_clientaddr = True
        else:
            sainfo.remote_id = sainfo_id(p, s)
    if s.at_word("from"):
        from_token = s.next()
        sainfo.from_id = p.identifier(s, from_token)
    elif s.at_word("group"):
        group_token = s.next()
        p.warn_unacted("sainfo.group", group_token)
        sainfo.group = p.string(s, 'an xauth group "..."')

    close = p.table_block(s, "sainfo", SAINFO_STATEMENTS, sainfo, report="sainfo")
    for items, what in (
        (sainfo.encryption, "encryption"),
        (sainfo.authentication, "authentication"),
        (sainfo.compression, "compression"),
    ):
        if not items:
            raise close.error(f"no {what} algorithm at {sainfo.describe()}")

    def key(sa_id: SaInfoId | None) -> tuple[int, int, int, bytes] | None:
        return None if sa_id is None else sa_id.payload_key

    for other in p.config.sainfos:
        if (
            sainfo.local_id is not None
            and key(other.local_id) == key(sainfo.local_id)
            and key(other.remote_id) == key(sainfo.remote_id)
            and other.remote_clientaddr == sainfo.remote_clientaddr
            and other.from_id == sainfo.from_id
            and other.remoteid == sainfo.remoteid
        ):
            raise close.error(
                f"duplicated sainfo: {sainfo.describe()} (first at {other.file}:{other.line})"
            )
    # racoon's inssainfo(): before the first entry with a lower score.
    sainfos = p.config.sainfos
    index = next(
        (i for i, other in enumerate(sainfos) if other.score < sainfo.score), len(sainfos)
    )
    sainfos.insert(index, sainfo)


def sainfo_algorithm(p: Reader, s: Stream, directive: str) -> SaInfoAlgorithm:
    token = s.next()
    name = str(token.value)
    row: Cipher | AuthAlgorithm | CompressionAlgorithm | None = None
    if token.kind is Kind.WORD:
        if directive == "encryption_algorithm":
            cipher = CIPHERS.get("conf_names", name)
            row = cipher if cipher is not None and cipher.esp_id is not None else None
        elif directive == "authentication_algorithm":
            if name in ("des_mac", "kpdk"):
                raise token.error(f"algorithm {name} is not supported by pyracoon")
            row = AUTH_ALGORITHMS.get("conf_names", name)
        else:
            row = IPCOMP_ALGORITHMS.get("conf_names", name)
    if row is None:
        what = {
            "encryption_algorithm": "an ESP encryption algorithm",
            "authentication_algorithm": "an authentication algorithm",
            "compression_algorithm": "a compression algorithm",
        }[directive]
        raise p.bad_algorithm(token, what)
    if isinstance(row, Cipher):
        key_length = p.key_length(s, row, token)
    else:
        if s.at(Kind.NUMBER):
            raise s.peek().error("keylen not allowed")
        key_length = None
    return SaInfoAlgorithm(name, row, key_length, token.file, token.line)


# ---------------------------------------------------------------------- sainfo statements
def _pfs_group(p: Reader, s: Stream, token: Token, sainfo: SaInfo) -> None:
    sainfo.pfs_group = p.dh_group(s)


def _remoteid(p: Reader, s: Stream, token: Token, sainfo: SaInfo) -> None:
    sainfo.remoteid = p.number(s)


def _lifetime(p: Reader, s: Stream, token: Token, sainfo: SaInfo) -> None:
    sainfo.lifetime = p.lifetime(s, "byte lifetime support is deprecated")


def _algorithms(field: str) -> Handler:
    """``KEYWORD alg [keylen], ...;`` appended to ``SaInfo.field``."""

    def handler(p: Reader, s: Stream, token: Token, sainfo: SaInfo) -> None:
        target: list[SaInfoAlgorithm] = getattr(sainfo, field)
        name = str(token.value)
        p.comma_list(s, lambda: target.append(sainfo_algorithm(p, s, name)))

    return handler


#: Every statement of a sainfo body (cfparse.y sainfo_spec), keyword -> handler.
SAINFO_STATEMENTS: dict[str, Handler] = {
    "pfs_group": _pfs_group,
    "remoteid": _remoteid,
    "lifetime": _lifetime,
    "encryption_algorithm": _algorithms("encryption"),
    "authentication_algorithm": _algorithms("authentication"),
    "compression_algorithm": _algorithms("compression"),
}
