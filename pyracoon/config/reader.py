"""The token cursor and the value readers every racoon.conf block shares.

racoon's grammar (cfparse.y) reads the same few kinds of value in many places -- a number, a
quoted string, an ``on``/``off`` switch, a time with its unit, a numeric address with an
optional ``[port]``, a DH group, an identifier.  They live here once so that the block modules
(:mod:`.parser` for the top level, :mod:`.remote_block`, :mod:`.sainfo_block`,
:mod:`.modecfg_block`) agree on them, and on racoon's wording where an error has one.  A block is
read by :meth:`Reader.block` against a *table* of its statements (keyword -> handler); the
tables are what docs/config.md ("How a statement is dispatched") describes and what the support
table test walks.  The lexical facts (which words racoon's cftoken.l knows) are in
docs/racoon.md ("racoon.conf grammar").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping

from pyracoon.config.errors import ConfigError, ConfigWarning
from pyracoon.config.lexer import Kind, Token
from pyracoon.config.model import Config, IPAddress
from pyracoon.config.support import NOT_ACTED_UPON, racoon_does
from pyracoon.crypto.algorithms import AUTH_ALGORITHMS, CIPHERS, HASHES, IPCOMP_ALGORITHMS, Cipher
from pyracoon.crypto.groups import GROUPS
from pyracoon.pki.errors import DistinguishedNameError
from pyracoon.pki.identity import IdentifierKind, IdentifierSpec
from pyracoon.pki.name import parse_dn
from pyracoon.wire.constants import AuthenticationMethod

__all__ = ["AUTH_METHODS", "Handler", "Reader", "Stream"]

#: A statement handler: (reader, stream, the statement's keyword token, the block's state).
Handler = Callable[..., None]

_TIME_UNITS = {
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
}
# TB is 1024**3 in racoon (a bug); irrelevant since byte lifetimes are refused.
_BYTE_UNITS = {"B": 1, "byte": 1, "bytes": 1, "KB": 1024, "MB": 1024**2, "TB": 1024**3}

#: DH groups racoon.conf accepts by number (cfparse.y num2dhgroup) and by name.
_CONF_DH_GROUPS = {1, 2, 3, 4, 5, 14, 15, 16, 17, 18}
_DH_BY_NAME = {
    name: group.group_id
    for group in GROUPS.values()
    if group.group_id in _CONF_DH_GROUPS
    for name in group.names
}

#: Phase-1 authentication methods (racoon algorithm.c oakley_authdef).  gssapi_krb uses
#: racoon's private value 65001, which clashes with XAUTH_PSKEY_I; racoon lives with that.
AUTH_METHODS: dict[str, int] = {
    "pre_shared_key": AuthenticationMethod.PRE_SHARED_KEY,
    "dsssig": AuthenticationMethod.DSS_SIGNATURES,
    "rsasig": AuthenticationMethod.RSA_SIGNATURES,
    "rsaenc": AuthenticationMethod.RSA_ENCRYPTION,
    "rsarev": AuthenticationMethod.REVISED_RSA_ENCRYPTION,
    "gssapi_krb": 65001,
    "hybrid_rsa_server": AuthenticationMethod.HYBRID_RSA_R,
    "hybrid_rsa_client": AuthenticationMethod.HYBRID_RSA_I,
    "hybrid_dss_server": AuthenticationMethod.HYBRID_DSS_R,
    "hybrid_dss_client": AuthenticationMethod.HYBRID_DSS_I,
    "xauth_psk_server": AuthenticationMethod.XAUTH_PSKEY_R,
    "xauth_psk_client": AuthenticationMethod.XAUTH_PSKEY_I,
    "xauth_rsa_server": AuthenticationMethod.XAUTH_RSASIG_R,
    "xauth_rsa_client": AuthenticationMethod.XAUTH_RSASIG_I,
}
#: Lexed by racoon but never usable.
UNSUPPORTED_AUTH = {"rsaenc", "rsarev"}

#: Every algorithm word racoon's lexer knows (cftoken.l): used to say "algorithm mismatched"
#: rather than "unknown" when a known algorithm stands in the wrong list.
_ALGORITHM_WORDS = frozenset(
    {name for row in CIPHERS for name in row.conf_names}
    | {name for row in HASHES for name in row.conf_names}
    | {name for row in AUTH_ALGORITHMS for name in row.conf_names}
    | {name for row in IPCOMP_ALGORITHMS for name in row.conf_names}
    | set(_DH_BY_NAME)
    | set(AUTH_METHODS)
    | {"tiger", "des_mac", "kpdk"}
)

#: The algorithm table marks rc4 variable-key; racoon's default_keylen() does not list it, so
#: racoon.conf takes no key length for it (and sends none).
NO_CONF_KEYLEN = frozenset({"rc4"})

IDENTIFIER_TYPES = {"address", "fqdn", "user_fqdn", "keyid", "asn1dn", "subnet"}


class Stream:
    """A cursor over one file's tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        if token.kind is not Kind.EOF:
            self.pos += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind is Kind.WORD and token.value in words

    def at(self, kind: Kind) -> bool:
        return self.peek().kind is kind

    def accept(self, kind: Kind) -> Token | None:
        return self.next() if self.at(kind) else None

    def expect(self, kind: Kind, what: str | None = None) -> Token:
        token = self.peek()
        if token.kind is not kind:
            raise token.error(f"expected {what or kind.value}")
        return self.next()

    def expect_word(self, words: Iterable[str], what: str) -> Token:
        token = self.peek()
        if token.kind is not Kind.WORD or token.value not in set(words):
            raise token.error(f"expected {what}")
        return self.next()


class Reader:
    """The :class:`Config` being built and the value readers of the grammar.

    Every block module's handlers get the reader as their first argument, so that warnings go
    to one list and each value is read one way everywhere.
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    # ------------------------------------------------------------------ reporting
    def warn_unacted(self, key: str, token: Token) -> None:
        """Report ``key`` at ``token`` if :mod:`.support` lists it as not acted upon."""
        if key in NOT_ACTED_UPON:
            self.config.warnings.append(
                ConfigWarning.not_acted_upon(
                    key, file=token.file, line=token.line, racoon=racoon_does(key)
                )
            )

    def warn(self, token: Token, message: str) -> None:
        self.config.warnings.append(ConfigWarning(token.file, token.line, message))

    @staticmethod
    def unknown(token: Token, where: str) -> ConfigError:
        return token.error(f"unknown directive '{token.text}' in {where}")

    # ------------------------------------------------------------------ blocks
    def block(self, s: Stream, name: str, statement: Callable[[Stream, Token], None]) -> Token:
        """``{ statement* }``: calls ``statement`` with the directive word; returns the ``}``."""
        s.expect(Kind.LBRACE)
        while True:
            token = s.peek()
            if token.kind is Kind.RBRACE:
                return s.next()
            if token.kind is Kind.EOF:
                raise token.error(f"missing '}}' closing {name}")
            if token.kind is not Kind.WORD:
                raise token.error(f"expected a directive of {name}")
            s.next()
            statement(s, token)

    def section_block(
        self, s: Stream, keyword: Token, table: Mapping[str, Handler], factory: Callable[[], object]
    ) -> None:
        """A top-level section kept in ``Config`` under its own keyword (privsep, mode_cfg,
        ldapcfg, radiuscfg): reported if :mod:`.support` lists it, a repeated section adds to
        the first, as cfparse.y fills one global structure."""
        name = str(keyword.value)
        self.warn_unacted(name, keyword)
        state = getattr(self.config, name) or factory()
        self.table_block(s, name, table, state)
        setattr(self.config, name, state)

    def table_block(
        self,
        s: Stream,
        name: str,
        table: Mapping[str, Handler],
        state: object,
        *,
        report: str | None = None,
        nested: frozenset[str] = frozenset(),
    ) -> Token:
        """A block whose statements are looked up in ``table`` (keyword -> handler).

        A handler reads the statement's values; the ``;`` after them is read here, except for
        ``nested`` keywords, which are blocks ending with their own ``}``.  With ``report``,
        ``REPORT.KEYWORD`` is reported first if :mod:`.support` lists it.  Returns the ``}``.
        """

        def statement(s: Stream, token: Token) -> None:
            keyword = str(token.value)
            handler = table.get(keyword)
            if handler is None:
                raise self.unknown(token, name)
            if report is not None:
                self.warn_unacted(f"{report}.{keyword}", token)
            handler(self, s, token, state)
            if keyword not in nested:
                self.semi(s)

        return self.block(s, name, statement)

    # ------------------------------------------------------------------ values
    @staticmethod
    def semi(s: Stream) -> None:
        s.expect(Kind.SEMI)

    @staticmethod
    def number(s: Stream, what: str = "a number") -> int:
        token = s.peek()
        if token.kind is Kind.HEX:
            raise token.error("a hex value cannot be used as a number")
        return int(s.expect(Kind.NUMBER, what).value)

    @staticmethod
    def string(s: Stream, what: str = 'a quoted string "..."') -> str:
        return str(s.expect(Kind.STRING, what).value)

    @staticmethod
    def switch(s: Stream) -> bool:
        token = s.peek()
        if token.kind is Kind.WORD and token.value in ("yes", "no"):
            raise token.error("expected on or off (yes/no are not switches in racoon.conf)")
        return s.expect_word(("on", "off"), "on or off").value == "on"

    def time_value(self, s: Stream) -> int:
        value = self.number(s)
        unit = s.peek()
        if unit.kind is not Kind.WORD or unit.value not in _TIME_UNITS:
            raise unit.error("expected a time unit (sec, min, hour)")
        s.next()
        return value * _TIME_UNITS[str(unit.value)]

    def lifetime(self, s: Stream, byte_message: str) -> int:
        """``lifetime time N UNIT`` -> seconds; ``lifetime byte ...`` is refused as racoon does."""
        kind = s.expect_word(("time", "byte"), "time or byte")
        if kind.value == "byte":
            self.number(s)
            unit = s.peek()
            if unit.kind is not Kind.WORD or unit.value not in _BYTE_UNITS:
                raise unit.error("expected a byte unit (B, KB, MB, TB)")
            raise unit.error(byte_message)
        return self.time_value(s)

    @staticmethod
    def address_token(token: Token) -> tuple[IPAddress, str | None]:
        if token.kind not in (Kind.ADDR, Kind.WORD, Kind.NUMBER):
            raise token.error("expected a numeric IPv4 or IPv6 address")
        text, _, scope = str(token.text).partition("%")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise token.error(
                "expected a numeric IPv4 or IPv6 address (host names are not accepted)"
            ) from None
        if "%" in str(token.text) and address.version == 4:
            raise token.error("a %scope applies only to IPv6 addresses")
        return address, scope or None

    def address(self, s: Stream) -> tuple[IPAddress, str | None]:
        return self.address_token(s.next())

    @staticmethod
    def port(s: Stream) -> int | None:
        token = s.accept(Kind.PORT)
        if token is None:
            return None
        if not 0 <= int(token.value) <= 65535:
            raise token.error("port number out of range")
        return int(token.value)

    def ipv4(self, s: Stream, what: str) -> ipaddress.IPv4Address:
        token = s.peek()
        address, _ = self.address(s)
        if not isinstance(address, ipaddress.IPv4Address):
            raise token.error(f"bad IPv4 {what} address.")
        return address

    @staticmethod
    def comma_list(s: Stream, item: Callable[[], None]) -> None:
        item()
        while s.accept(Kind.COMMA):
            item()

    def dh_group(self, s: Stream) -> int:
        token = s.next()
        if token.kind is Kind.WORD and token.value in _DH_BY_NAME:
            group = _DH_BY_NAME[str(token.value)]
        elif token.kind is Kind.NUMBER and token.value in _CONF_DH_GROUPS:
            group = int(token.value)
        else:
            raise token.error("must be DH group")
        if not GROUPS[group].supported:
            self.warn(
                token,
                f"DH group {group} ({GROUPS[group].names[0]}) parses but cannot be "
                "computed; an exchange using it will fail",
            )
        return group

    # ------------------------------------------------------------------ algorithms
    @staticmethod
    def bad_algorithm(token: Token, what: str) -> ConfigError:
        if token.kind is Kind.WORD and token.value in _ALGORITHM_WORDS:
            return token.error(f"algorithm mismatched: {token.value} is not {what}")
        return token.error(f"expected {what}")

    def key_length(self, s: Stream, cipher: Cipher, alg_token: Token) -> int | None:
        """Optional keylen after a cipher: only variable-key ciphers take one (multiple of 8,
        in range); they default to ``default_bits`` (128)."""
        token = s.peek()
        variable = cipher.variable_key and cipher.name not in NO_CONF_KEYLEN
        if token.kind is Kind.HEX:
            raise token.error("a hex value cannot be used as a number")
        if token.kind is not Kind.NUMBER:
            return cipher.default_bits if variable else None
        s.next()
        bits = int(token.value)
        if not variable:
            raise token.error("keylen not allowed")
        if not cipher.accepts_key_bits(bits):
            raise token.error(
                f"invalid keylen {bits} (multiple of 8, {cipher.describe_key_bits()})"
            )
        return bits

    # ------------------------------------------------------------------ identifiers
    def identifier(self, s: Stream, directive: Token) -> IdentifierSpec:
        """``TYPE [QUAL] [value]`` of my_identifier / peers_identifier / sainfo ``from``."""
        type_token = s.expect_word(
            IDENTIFIER_TYPES, "an identifier type (address, fqdn, user_fqdn, keyid, asn1dn)"
        )
        id_type = str(type_token.value)
        qualifier = None
        if s.at_word("tag", "file"):
            qualifier = s.next()
            if id_type != "keyid":
                raise qualifier.error(f"qualifier '{qualifier.value}' applies only to keyid")
        value_token = s.peek()
        value: str | None = None
        if value_token.kind in (Kind.STRING, Kind.ADDR):
            value = str(s.next().value)
        elif value_token.kind in (Kind.NUMBER, Kind.WORD) and id_type == "address":
            value = str(s.next().text)
        if id_type == "subnet":
            raise type_token.error("identifier type subnet is not allowed here")
        if id_type == "address":
            if value is not None:
                # racoon's identifierstring also takes the address in quotes.
                bare = (
                    value_token
                    if value_token.kind is not Kind.STRING
                    else Token(Kind.ADDR, value, value, value_token.file, value_token.line)
                )
                try:
                    address, _ = self.address_token(bare)
                except ConfigError:
                    raise value_token.error("expected a numeric IPv4 or IPv6 address") from None
                value = str(address)
            return IdentifierSpec(IdentifierKind.ADDRESS, value)
        if id_type == "asn1dn":
            if value is not None:
                try:
                    parse_dn(value)
                except DistinguishedNameError as exc:
                    raise value_token.error(f"invalid asn1dn: {exc}") from None
            return IdentifierSpec(IdentifierKind.ASN1DN, value)
        if value is None or value_token.kind is not Kind.STRING:
            raise value_token.error(f"identifier {id_type} needs a quoted value")
        if id_type == "keyid":
            kind = (
                IdentifierKind.KEYID_TAG
                if qualifier is not None and qualifier.value == "tag"
                else IdentifierKind.KEYID_FILE
            )
            return IdentifierSpec(kind, value)
        return IdentifierSpec(
            IdentifierKind.FQDN if id_type == "fqdn" else IdentifierKind.USER_FQDN, value
        )
