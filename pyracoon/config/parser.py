"""A recursive-descent parser for the whole racoon.conf grammar (racoon.conf(5)).

It follows ipsec-tools 0.8.2's cfparse.y statement by statement, including its checks and, where
racoon has one, its error wording ("no exchange mode specified.", "byte lifetime support is
deprecated", "dh_group cannot be defined here."...).  Errors are :class:`ConfigError` located at
the token where racoon would have noticed them -- for checks made when a block closes, that is
the closing ``}``.

Deliberate differences, each because racoon's behaviour is a trap:

* ``adminsock ... MODE``: the digits are read as octal, correctly; racoon maps x bits to w.
* ``isakmp_natt ADDR`` without a port is an error; racoon silently uses 500, the IKE port.
* A sainfo duplicate is "same local ID, same remote ID, same ``from``, same ``remoteid``";
  racoon's own check depends on the order of the blocks.
* An inheriting remote gets *copies* of the parent's lists, so the child's ``peers_identifier``
  lines are added to the inherited ones without changing the parent; a child may set
  ``remote_address``, ``certificate_type`` ... once even if the parent set them.
* An included file must hold whole statements (racoon splices token streams).
* Algorithms racoon lexes but cannot use (``rsaenc``, ``rsarev``, ``tiger``, ``des_mac``,
  ``kpdk``; ``idea``/``rc5`` in phase 1, which need OpenSSL extras) fail at parse time.
* Things racoon checks against the running system at parse time -- users and groups, whether a
  certificate file loads, the kernel's algorithm list -- are left to the daemon;
  :func:`check_kernel_algorithms` does the last one with racoon's message.

Faithful to the code where the notes or the man page say otherwise:

* A sainfo ``address``/``subnet`` keyword does not choose the ID type: as in racoon's
  ipsecdoi_sockaddr2id(), a full (or absent) prefix gives an ADDR ID, anything shorter a SUBNET.
* A named remote without ``remote_address`` is a wildcard, like ``anonymous`` (insrmconf()).
* ``yes``/``no`` are tokens but no statement takes them; switches are ``on``/``off`` only.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pyracoon.config.errors import ConfigError, ConfigWarning
from pyracoon.config.lexer import Kind, Token, tokenize
from pyracoon.config.model import (
    AdminSock,
    CertificateType,
    Config,
    GeneratePolicy,
    IkeFrag,
    IPAddress,
    LdapCfg,
    ListenAddress,
    LogLevel,
    ModeCfg,
    NatTraversal,
    PeersCertfile,
    Phase1Proposal,
    Privsep,
    ProposalCheck,
    RadiusCfg,
    RadiusServer,
    Rekey,
    Remote,
    SaInfo,
    SaInfoAlgorithm,
    SaInfoId,
    ScriptEvent,
)
from pyracoon.config.support import NOT_ACTED_UPON
from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    HASHES,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
    HashAlgorithm,
)
from pyracoon.crypto.groups import GROUPS
from pyracoon.pki.errors import DistinguishedNameError
from pyracoon.pki.identity import IdentifierKind, IdentifierSpec
from pyracoon.pki.name import parse_dn
from pyracoon.wire.constants import AuthenticationMethod, ExchangeType, IDType

__all__ = ["MAX_INCLUDE_DEPTH", "check_kernel_algorithms", "parse_file", "parse_string"]

#: racoon's MAX_INCLUDE_DEPTH: at most this many files open at once, the main file included.
MAX_INCLUDE_DEPTH = 10

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
_AUTH_METHODS: dict[str, int] = {
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
_UNSUPPORTED_AUTH = {"rsaenc", "rsarev"}

#: Every algorithm word racoon's lexer knows (cftoken.l): used to say "algorithm mismatched"
#: rather than "unknown" when a known algorithm stands in the wrong list.
_ALGORITHM_WORDS = frozenset(
    {name for row in CIPHERS for name in row.conf_names}
    | {name for row in HASHES for name in row.conf_names}
    | {name for row in AUTH_ALGORITHMS for name in row.conf_names}
    | {name for row in IPCOMP_ALGORITHMS for name in row.conf_names}
    | set(_DH_BY_NAME)
    | set(_AUTH_METHODS)
    | {"tiger", "des_mac", "kpdk"}
)

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

#: The algorithm table marks rc4 variable-key; racoon's default_keylen() does not list it, so
#: racoon.conf takes no key length for it (and sends none).
_NO_CONF_KEYLEN = frozenset({"rc4"})

_IDENTIFIER_TYPES = {"address", "fqdn", "user_fqdn", "keyid", "asn1dn", "subnet"}

# mode_cfg limits (racoon isakmp_cfg.h).
_MAXNS, _MAXWINS, _RADIUS_MAX_SERVERS = 3, 4, 5


class _Stream:
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


@dataclass
class _RemoteState:
    """What the checks at a remote's ``}`` need beyond the Remote itself."""

    remote: Remote
    header: Token
    address_set: bool = False
    certificate_set: bool = False
    peers_certfile_set: bool = False
    ca_set: bool = False
    own_peers_ids: bool = False
    own_proposals: list[Phase1Proposal] = field(default_factory=list)


@dataclass
class _ProposalDraft:
    """A ``proposal {}`` block being read; the lines may come in any order."""

    encryption: Cipher | None = None
    key_length: int | None = None
    hash: HashAlgorithm | None = None
    method: str | None = None
    dh_group: int | None = None
    lifetime: int | None = None
    gss_id: str | None = None
    gss_token: Token | None = None


class _Parser:
    def __init__(self, source: str, include_base: str | None) -> None:
        self.config = Config(source=source)
        self.include_base = include_base
        self.depth = 0

    # ------------------------------------------------------------------ helpers
    def warn_unacted(self, key: str, token: Token) -> None:
        if key in NOT_ACTED_UPON:
            self.config.warnings.append(
                ConfigWarning.not_acted_upon(key, file=token.file, line=token.line)
            )

    def warn(self, token: Token, message: str) -> None:
        self.config.warnings.append(ConfigWarning(token.file, token.line, message))

    @staticmethod
    def semi(s: _Stream) -> None:
        s.expect(Kind.SEMI)

    @staticmethod
    def number(s: _Stream, what: str = "a number") -> int:
        token = s.peek()
        if token.kind is Kind.HEX:
            raise token.error("a hex value cannot be used as a number")
        return int(s.expect(Kind.NUMBER, what).value)

    @staticmethod
    def string(s: _Stream, what: str = 'a quoted string "..."') -> str:
        return str(s.expect(Kind.STRING, what).value)

    @staticmethod
    def switch(s: _Stream) -> bool:
        token = s.peek()
        if token.kind is Kind.WORD and token.value in ("yes", "no"):
            raise token.error("expected on or off (yes/no are not switches in racoon.conf)")
        return s.expect_word(("on", "off"), "on or off").value == "on"

    def time_value(self, s: _Stream) -> int:
        value = self.number(s)
        unit = s.peek()
        if unit.kind is not Kind.WORD or unit.value not in _TIME_UNITS:
            raise unit.error("expected a time unit (sec, min, hour)")
        s.next()
        return value * _TIME_UNITS[str(unit.value)]

    def lifetime(self, s: _Stream, byte_message: str) -> int:
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

    def address(self, s: _Stream) -> tuple[IPAddress, str | None]:
        return self.address_token(s.next())

    @staticmethod
    def port(s: _Stream) -> int | None:
        token = s.accept(Kind.PORT)
        if token is None:
            return None
        if not 0 <= int(token.value) <= 65535:
            raise token.error("port number out of range")
        return int(token.value)

    def dh_group(self, s: _Stream) -> int:
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

    def block(self, s: _Stream, name: str, statement: Callable[[_Stream, Token], None]) -> Token:
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

    @staticmethod
    def unknown(token: Token, where: str) -> ConfigError:
        return token.error(f"unknown directive '{token.text}' in {where}")

    # ------------------------------------------------------------------ files
    def parse_text(self, text: str, filename: str) -> None:
        self.config.files.append(filename)
        s = _Stream(tokenize(text, filename))
        while not s.at(Kind.EOF):
            self.statement(s)

    def parse_path(self, path: str, opener: Token | None) -> None:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError as exc:
            if opener is None:  # the main file: no line of it was read, so none is named
                raise ConfigError(
                    f"cannot read the configuration file {path}: {exc.strerror}",
                    file=path, line=0, token="",
                ) from exc
            raise opener.error(f"failed to open file {path} ({exc.strerror})") from exc
        self.parse_text(text, path)

    def include(self, s: _Stream, keyword: Token) -> None:
        name_token = s.expect(Kind.STRING, 'a file name "..."')
        self.semi(s)
        path = self.config.paths.resolve("include", os.path.expanduser(str(name_token.value)))
        if not posixpath.isabs(path) and self.include_base is not None:
            path = posixpath.join(self.include_base, path)
        if self.depth + 1 >= MAX_INCLUDE_DEPTH:
            raise name_token.error("Includes nested too deeply")
        matches = sorted(glob.glob(path))
        if not matches:
            raise name_token.error(f'glob found no matches for path "{path}"')
        self.depth += 1
        try:
            for match in matches:
                self.parse_path(match, name_token)
        finally:
            self.depth -= 1

    # ------------------------------------------------------------------ top level
    def statement(self, s: _Stream) -> None:
        token = s.next()
        if token.kind is not Kind.WORD:
            raise token.error("expected a statement")
        handler = {
            "privsep": self.privsep,
            "path": self.path,
            "include": self.include,
            "pfkey_buffer": self.pfkey_buffer,
            "gss_id_enc": self.gss_id_enc,
            "log": self.log,
            "padding": self.padding,
            "listen": self.listen,
            "timer": self.timer,
            "complex_bundle": self.complex_bundle,
            "remote": self.remote,
            "sainfo": self.sainfo,
            "mode_cfg": self.mode_cfg,
            "ldapcfg": self.ldapcfg,
            "radiuscfg": self.radiuscfg,
        }.get(str(token.value))
        if handler is None:
            raise token.error(f"unknown statement '{token.text}'")
        handler(s, token)

    def privsep(self, s: _Stream, keyword: Token) -> None:
        self.warn_unacted("privsep", keyword)
        privsep = self.config.privsep or Privsep()

        def statement(s: _Stream, token: Token) -> None:
            if token.value in ("user", "group"):
                value = s.next()
                if value.kind not in (Kind.STRING, Kind.NUMBER):
                    raise value.error(f"expected a {token.value} name or number")
                setattr(privsep, str(token.value), value.value)
            elif token.value == "chroot":
                privsep.chroot = self.string(s)
            else:
                raise self.unknown(token, "privsep")
            self.semi(s)

        self.block(s, "privsep", statement)
        self.config.privsep = privsep

    def path(self, s: _Stream, keyword: Token) -> None:
        kind = s.expect_word(
            ("include", "pre_shared_key", "certificate", "script", "backupsa", "pidfile"),
            "a path type (include, pre_shared_key, certificate, script, backupsa, pidfile)",
        )
        value = self.string(s)
        self.semi(s)
        self.warn_unacted(f"path {kind.value}", kind)
        setattr(self.config.paths, str(kind.value), value)

    def pfkey_buffer(self, s: _Stream, keyword: Token) -> None:
        self.config.pfkey_buffer = self.number(s)
        self.semi(s)

    def gss_id_enc(self, s: _Stream, keyword: Token) -> None:
        value = s.expect_word(("utf-16le", "latin1"), "utf-16le or latin1")
        self.semi(s)
        self.warn_unacted("gss_id_enc", keyword)
        self.config.gss_id_enc = str(value.value)

    def log(self, s: _Stream, keyword: Token) -> None:
        names = {level.name.lower(): level for level in LogLevel}
        level = s.expect_word(names, "a log level (error, warning, notify, info, debug, debug2)")
        self.semi(s)
        self.config.log_level = names[str(level.value)]

    def complex_bundle(self, s: _Stream, keyword: Token) -> None:
        self.config.complex_bundle = self.switch(s)
        self.warn_unacted(
            f"complex_bundle {'on' if self.config.complex_bundle else 'off'}", keyword
        )
        self.semi(s)

    def padding(self, s: _Stream, keyword: Token) -> None:
        padding = self.config.padding
        switches = {
            "randomize": "randomize",
            "randomize_length": "randomize_length",
            "strict_check": "strict_check",
            "exclusive_tail": "exclusive_tail",
        }

        def statement(s: _Stream, token: Token) -> None:
            if token.value in switches:
                setattr(padding, switches[str(token.value)], self.switch(s))
            elif token.value == "maximum_length":
                padding.maximum_length = self.number(s)
            else:
                raise self.unknown(token, "padding")
            self.semi(s)

        self.block(s, "padding", statement)

    def listen(self, s: _Stream, keyword: Token) -> None:
        listen = self.config.listen
        listen.present = True

        def statement(s: _Stream, token: Token) -> None:
            if token.value in ("isakmp", "isakmp_natt"):
                address_token = s.peek()
                address, scope = self.address(s)
                port = self.port(s)
                natt = token.value == "isakmp_natt"
                if natt and port is None:
                    raise address_token.error("isakmp_natt needs an explicit port, normally [4500]")
                listen.addresses.append(ListenAddress(address, port, natt, scope))
            elif token.value == "strict_address":
                listen.strict_address = True
            elif token.value == "adminsock":
                self.adminsock(s, listen.adminsock)
            else:
                raise self.unknown(token, "listen")
            self.semi(s)

        self.block(s, "listen", statement)

    def adminsock(self, s: _Stream, sock: AdminSock) -> None:
        if s.at_word("disabled"):
            s.next()
            sock.path = None
            sock.disabled = True
            return
        sock.path = self.string(s, 'a socket path "..." or disabled')
        sock.disabled = False
        if not s.at(Kind.STRING):
            return
        sock.owner = self.string(s)
        sock.group = self.string(s, 'a group "..."')
        mode_token = s.peek()
        digits = str(self.number(s, "a mode such as 660"))
        # Written as decimal digits, meant as octal: 660 means rw-rw----.
        if len(digits) > 3 or any(d not in "01234567" for d in digits):
            raise mode_token.error(
                f"Mode {digits} is invalid: write at most three octal digits, e.g. 660"
            )
        sock.mode = int(digits, 8)

    def timer(self, s: _Stream, keyword: Token) -> None:
        timer = self.config.timer

        def statement(s: _Stream, token: Token) -> None:
            if token.value in ("counter", "persend"):
                setattr(timer, str(token.value), self.number(s))
            elif token.value in ("interval", "phase1", "phase2", "natt_keepalive"):
                setattr(timer, str(token.value), self.time_value(s))
            else:
                raise self.unknown(token, "timer")
            self.semi(s)

        self.block(s, "timer", statement)

    # ------------------------------------------------------------------ mode_cfg & co
    def ipv4(self, s: _Stream, what: str) -> ipaddress.IPv4Address:
        token = s.peek()
        address, _ = self.address(s)
        if not isinstance(address, ipaddress.IPv4Address):
            raise token.error(f"bad IPv4 {what} address.")
        return address

    def comma_list(self, s: _Stream, item: Callable[[], None]) -> None:
        item()
        while s.accept(Kind.COMMA):
            item()

    def mode_cfg(self, s: _Stream, keyword: Token) -> None:
        self.warn_unacted("mode_cfg", keyword)
        cfg = self.config.mode_cfg or ModeCfg()
        choices = {
            "auth_source": ("system", "radius", "pam", "ldap"),
            "group_source": ("system", "ldap"),
            "conf_source": ("local", "radius", "ldap"),
            "accounting": ("none", "system", "radius", "pam"),
        }

        def statement(s: _Stream, token: Token) -> None:
            name = str(token.value)
            if name in choices:
                value = s.expect_word(choices[name], " or ".join(choices[name]))
                setattr(cfg, name, str(value.value))
            elif name == "network4":
                cfg.network4 = self.ipv4(s, "network")
            elif name == "netmask4":
                cfg.netmask4 = self.ipv4(s, "netmask")
            elif name in ("dns4", "nbns4", "wins4"):
                target, limit, label = (
                    (cfg.dns4, _MAXNS, "DNS") if name == "dns4" else (cfg.wins4, _MAXWINS, "WINS")
                )

                def one() -> None:
                    token = s.peek()
                    if len(target) >= limit:
                        raise token.error(f"No more than {limit} {label}")
                    target.append(self.ipv4(s, label))

                self.comma_list(s, one)
            elif name == "split_network":
                kind = s.expect_word(("include", "local_lan"), "include or local_lan")
                cfg.split_network_type = str(kind.value)

                def net() -> None:
                    address = self.ipv4(s, "SPLIT")
                    prefix = s.expect(Kind.PREFIX, "a /prefix")
                    if int(prefix.value) > 32:
                        raise prefix.error("prefix length out of range")
                    cfg.split_network.append(
                        ipaddress.IPv4Network(f"{address}/{prefix.value}", strict=False)
                    )

                self.comma_list(s, net)
            elif name in ("split_dns", "auth_groups"):
                target = cfg.split_dns if name == "split_dns" else cfg.auth_groups
                self.comma_list(s, lambda: target.append(self.string(s)))
            elif name == "default_domain":
                cfg.default_domain = self.string(s)
            elif name == "banner":
                cfg.banner = self.string(s)
            elif name in ("pool_size", "pfs_group", "auth_throttle"):
                setattr(cfg, name, self.number(s))
            elif name == "save_passwd":
                cfg.save_passwd = self.switch(s)
            else:
                raise self.unknown(token, "mode_cfg")
            self.semi(s)

        self.block(s, "mode_cfg", statement)
        self.config.mode_cfg = cfg

    def ldapcfg(self, s: _Stream, keyword: Token) -> None:
        self.warn_unacted("ldapcfg", keyword)
        cfg = self.config.ldapcfg or LdapCfg()
        strings = {
            "uri",
            "host",
            "base",
            "bind_dn",
            "bind_pw",
            "attr_user",
            "attr_addr",
            "attr_mask",
            "attr_group",
            "attr_member",
            "attr_device",
        }

        def statement(s: _Stream, token: Token) -> None:
            name = str(token.value)
            if name == "version":
                value_token = s.peek()
                cfg.version = self.number(s)
                if cfg.version not in (2, 3):
                    raise value_token.error("invalid ldap protocol version (2|3)")
            elif name in ("debug", "timeout", "port"):
                setattr(cfg, name, self.number(s))
            elif name in strings:
                setattr(cfg, name, self.string(s))
            elif name == "subtree":
                cfg.subtree = self.switch(s)
            else:
                raise self.unknown(token, "ldapcfg")
            self.semi(s)

        self.block(s, "ldapcfg", statement)
        self.config.ldapcfg = cfg

    def radiuscfg(self, s: _Stream, keyword: Token) -> None:
        self.warn_unacted("radiuscfg", keyword)
        cfg = self.config.radiuscfg or RadiusCfg()

        def statement(s: _Stream, token: Token) -> None:
            name = str(token.value)
            if name in ("auth", "acct"):
                servers = cfg.auth if name == "auth" else cfg.acct
                if len(servers) >= _RADIUS_MAX_SERVERS:
                    label = "auth" if name == "auth" else "account"
                    raise token.error(f"maximum radius {label} servers exceeded")
                host = self.string(s, 'a host "..."')
                port = self.number(s) if s.at(Kind.NUMBER) else 0
                secret = self.string(s, 'a secret "..."')
                servers.append(RadiusServer(host, port, secret))
            elif name in ("timeout", "retries"):
                setattr(cfg, name, self.number(s))
            else:
                raise self.unknown(token, "radiuscfg")
            self.semi(s)

        self.block(s, "radiuscfg", statement)
        self.config.radiuscfg = cfg

    # ------------------------------------------------------------------ remote
    def remote_index(self, s: _Stream) -> tuple[IPAddress | None, int | None, Token]:
        """``anonymous [port]`` or ``ADDR [port]``: (address or None, port or None, token)."""
        token = s.peek()
        if s.at_word("anonymous"):
            s.next()
            return None, self.port(s), token
        address, _ = self.address(s)
        return address, self.port(s), token

    def remote(self, s: _Stream, keyword: Token) -> None:
        config = self.config
        head = s.peek()
        allow_semicolon = False
        if head.kind is Kind.STRING:
            s.next()
            name = str(head.value)
            if config.remote_by_name(name) is not None:
                raise head.error(f'named remoteconf "{name}" already exists.')
            if s.at_word("inherit"):
                s.next()
                parent_token = s.expect(Kind.STRING, 'a parent remote name "..."')
                parent = config.remote_by_name(str(parent_token.value))
                if parent is None:
                    raise parent_token.error(
                        f'named parent remoteconf "{parent_token.value}" does not exist.'
                    )
                remote = parent.copy()
                remote.inherit = parent.name
                allow_semicolon = True
            else:
                remote = Remote()
            remote.name = name
            state = _RemoteState(remote, head)
        else:
            address, port, token = self.remote_index(s)
            if s.at_word("inherit"):
                s.next()
                p_address, p_port, p_token = self.remote_index(s)
                parent = None
                if p_address is not None:
                    parent = next(
                        (
                            r
                            for r in config.remotes
                            if r.address == p_address
                            and (p_port is None or r.port in (None, p_port))
                        ),
                        None,
                    )
                if parent is None:
                    raise p_token.error(f"failed to get remoteconf for {p_token.text}.")
                remote = parent.copy()
                remote.inherit = parent.describe()
                remote.name = None
                allow_semicolon = True
            else:
                remote = Remote()
            remote.address, remote.port = address, port
            remote.anonymous = address is None
            state = _RemoteState(remote, token, address_set=True)
        remote.file, remote.line = keyword.file, keyword.line
        if allow_semicolon and s.at(Kind.SEMI):
            close = s.next()
        else:
            close = self.block(s, "remote", lambda s, t: self.remote_statement(s, t, state))
        self.finish_remote(state, close)
        for other in config.remotes:
            if other.address == remote.address and other.port == remote.port:
                what = "any peer" if remote.address is None else f"peer {remote.address}"
                self.warn(
                    keyword,
                    f"remote {remote.describe()} and remote {other.describe()} "
                    f"({other.file}:{other.line}) both match {what}; neither "
                    "will be chosen for it",
                )
                break
        config.remotes.append(remote)

    def identifier(self, s: _Stream, directive: Token) -> IdentifierSpec:
        """``TYPE [QUAL] [value]`` of my_identifier / peers_identifier / sainfo ``from``."""
        type_token = s.expect_word(
            _IDENTIFIER_TYPES, "an identifier type (address, fqdn, user_fqdn, keyid, asn1dn)"
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

    def remote_statement(self, s: _Stream, token: Token, state: _RemoteState) -> None:
        remote = state.remote
        name = str(token.value)
        simple_switches = {
            "verify_cert": "verify_cert",
            "send_cert": "send_cert",
            "send_cr": "send_cr",
            "match_empty_cr": "match_empty_cr",
            "verify_identifier": "verify_identifier",
            "passive": "passive",
            "support_proxy": "support_proxy",
            "initial_contact": "initial_contact",
            "mode_cfg": "mode_cfg",
            "weak_phase1_check": "weak_phase1_check",
            "dpd": "dpd",
        }
        numbers = {
            "nonce_size": "nonce_size",
            "dpd_delay": "dpd_delay",
            "dpd_retry": "dpd_retry",
            "dpd_maxfail": "dpd_maxfail",
            "ph1id": "ph1id",
            "esp_frag": "esp_frag",
        }
        self.warn_unacted(f"remote.{name}", token)
        if name == "proposal":
            self.proposal(s, token, state)
            return
        if name == "remote_address":
            if state.address_set:
                raise token.error("remote_address already specified")
            remote.address, _ = self.address(s)
            remote.port = self.port(s)
            remote.anonymous = False
            state.address_set = True
        elif name == "exchange_mode":
            modes = {
                "main": ExchangeType.IDENTITY_PROTECTION,
                "aggressive": ExchangeType.AGGRESSIVE,
                "base": ExchangeType.BASE,
            }
            remote.exchange_modes = []
            while not s.at(Kind.SEMI):
                if s.accept(Kind.COMMA):  # racoon ignores commas here
                    continue
                mode = s.expect_word(modes, "main, aggressive or base")
                remote.exchange_modes.append(modes[str(mode.value)])
        elif name == "doi":
            s.expect_word(("ipsec_doi",), "ipsec_doi")
            remote.doi = 1
        elif name == "situation":
            situations = {"identity_only": 1, "secrecy": 2, "integrity": 4}
            value = s.expect_word(situations, "identity_only, secrecy or integrity")
            remote.situation = situations[str(value.value)]
        elif name == "certificate_type":
            if state.certificate_set:
                raise token.error("certificate_type already defined")
            kind = s.expect_word(("x509", "plain_rsa"), "x509 or plain_rsa")
            self.warn_unacted(f"remote.certificate_type {kind.value}", kind)
            if kind.value == "x509":
                cert = self.string(s, 'a certificate file "..."')
                remote.certificate_type = CertificateType(
                    "x509", cert, self.string(s, 'a key file "..."')
                )
            else:
                remote.certificate_type = CertificateType(
                    "plain_rsa", None, self.string(s, 'a key file "..."')
                )
                # racoon.conf(5): remote: plain RSA keys have no certificates to send or verify.
                remote.send_cert = remote.send_cr = remote.verify_cert = False
            state.certificate_set = True
        elif name == "peers_certfile":
            if state.peers_certfile_set:
                raise token.error("peers_certfile already defined")
            if s.at(Kind.STRING):
                self.warn(
                    token,
                    "This directive without certtype will be removed! "
                    f"Please use 'peers_certfile x509 \"{s.peek().value}\";' instead",
                )
                remote.peers_certfile = PeersCertfile("x509", self.string(s))
            else:
                kind = s.expect_word(("x509", "plain_rsa", "dnssec"), "x509, plain_rsa or dnssec")
                self.warn_unacted(f"remote.peers_certfile {kind.value}", kind)
                path = None if kind.value == "dnssec" else self.string(s)
                remote.peers_certfile = PeersCertfile(str(kind.value), path)
            state.peers_certfile_set = True
        elif name == "ca_type":
            if state.ca_set:
                raise token.error("ca_type already defined")
            s.expect_word(("x509",), "x509")
            remote.ca_type = self.string(s, 'a CA certificate file "..."')
            state.ca_set = True
        elif name in simple_switches:
            on = self.switch(s)
            setattr(remote, simple_switches[name], on)
            self.warn_unacted(f"remote.{name} {'on' if on else 'off'}", token)
        elif name in numbers:
            setattr(remote, numbers[name], self.number(s))
        elif name == "my_identifier":
            remote.my_identifier = self.identifier(s, token)
        elif name == "peers_identifier":
            if not state.own_peers_ids:
                remote.peers_identifiers = list(remote.peers_identifiers)
                state.own_peers_ids = True
            remote.peers_identifiers.append(self.identifier(s, token))
        elif name == "xauth_login":
            remote.xauth_login = self.string(s, 'a login "..."')
        elif name == "dh_group":
            raise token.error("dh_group cannot be defined here.")
        elif name == "ike_frag":
            remote.ike_frag = self._on_off_force(s, IkeFrag)
        elif name == "nat_traversal":
            remote.nat_traversal = self._on_off_force(s, NatTraversal)
            self.warn_unacted(f"remote.nat_traversal {remote.nat_traversal.value}", token)
        elif name == "rekey":
            remote.rekey = self._on_off_force(s, Rekey)
        elif name == "generate_policy":
            value = s.expect_word(("on", "off", "require", "unique"), "on, off, require or unique")
            remote.generate_policy = {
                "on": GeneratePolicy.REQUIRE,
                "off": GeneratePolicy.OFF,
                "require": GeneratePolicy.REQUIRE,
                "unique": GeneratePolicy.UNIQUE,
            }[str(value.value)]
        elif name == "proposal_check":
            value = s.expect_word([p.value for p in ProposalCheck], "obey, strict, claim or exact")
            remote.proposal_check = ProposalCheck(str(value.value))
        elif name == "lifetime":
            remote.lifetime = self.lifetime(s, "byte lifetime support is deprecated in Phase1")
        elif name == "script":
            path = self.string(s, 'a script path "..."')
            event = s.expect_word(
                [e.value for e in ScriptEvent], "phase1_up, phase1_down or phase1_dead"
            )
            remote.scripts = dict(remote.scripts)
            remote.scripts[ScriptEvent(str(event.value))] = self.config.paths.resolve(
                "script", path
            )
        else:
            raise self.unknown(token, "remote")
        self.semi(s)

    @staticmethod
    def _on_off_force(s: _Stream, enum: type[IkeFrag] | type[NatTraversal] | type[Rekey]):
        value = s.expect_word(("on", "off", "force"), "on, off or force")
        return enum(str(value.value))

    def finish_remote(self, state: _RemoteState, close: Token) -> None:
        """racoon's process_rmconf() and set_isakmp_proposal() checks."""
        remote = state.remote
        if not remote.exchange_modes:
            raise close.error("no exchange mode specified.")
        if remote.my_identifier.kind is IdentifierKind.ASN1DN:
            has_cert = (
                remote.certificate_type is not None and remote.certificate_type.kind == "x509"
            )
            if has_cert and remote.my_identifier.value is not None:
                self.warn(close, "Both CERT and ASN1 ID are set. Hope this is OK.")
            elif not has_cert and remote.my_identifier.value is None:
                raise close.error("ASN1 ID not specified and no CERT defined!")
        if state.own_proposals:
            remote.proposals = list(state.own_proposals)
        if not remote.proposals:
            raise close.error(f"no remote specification found: {remote.describe()}.")
        if ExchangeType.AGGRESSIVE in remote.exchange_modes:
            groups = {p.dh_group for p in remote.proposals}
            if len(groups) > 1:
                raise close.error(
                    "DH group must be equal in all proposals when aggressive mode is used."
                )
            remote.dh_group = groups.pop()
        else:
            remote.dh_group = None

    def proposal(self, s: _Stream, keyword: Token, state: _RemoteState) -> None:
        draft = _ProposalDraft()

        def statement(s: _Stream, token: Token) -> None:
            name = str(token.value)
            if name == "encryption_algorithm":
                alg_token = s.next()
                draft.encryption = self.phase1_cipher(alg_token)
                draft.key_length = self.key_length(s, draft.encryption, alg_token)
            elif name == "hash_algorithm":
                alg_token = s.next()
                alg_name = str(alg_token.value)
                row = HASHES.get("conf_names", alg_name) if alg_token.kind is Kind.WORD else None
                if alg_name == "tiger":
                    raise alg_token.error("algorithm tiger not supported")
                if row is None:
                    raise self.bad_algorithm(alg_token, "a hash algorithm")
                draft.hash = row
            elif name == "authentication_method":
                alg_token = s.next()
                method = str(alg_token.value)
                if alg_token.kind is not Kind.WORD or method not in _AUTH_METHODS:
                    raise self.bad_algorithm(alg_token, "an authentication method")
                if method in _UNSUPPORTED_AUTH:
                    raise alg_token.error(f"authentication method {method} is not supported")
                self.warn_unacted(f"authentication_method {method}", alg_token)
                if (
                    method == "rsasig"
                    and state.remote.peers_certfile is not None
                    and state.remote.peers_certfile.kind == "plain_rsa"
                    and (
                        state.remote.certificate_type is None
                        or state.remote.certificate_type.kind != "plain_rsa"
                    )
                ):
                    raise alg_token.error(
                        "Private PlainRSA key not set. Use directive "
                        "'certificate_type plain_rsa ...'"
                    )
                draft.method = method
            elif name == "dh_group":
                draft.dh_group = self.dh_group(s)
            elif name == "lifetime":
                draft.lifetime = self.lifetime(s, "byte lifetime support is deprecated")
            elif name in ("gss_id", "gssapi_id"):
                self.warn_unacted("proposal.gss_id", token)
                draft.gss_id = self.string(s)
                draft.gss_token = token
            else:
                raise self.unknown(token, "proposal")
            self.semi(s)

        close = self.block(s, "proposal", statement)
        # racoon's set_isakmp_proposal(): all four lines are mandatory.
        if draft.encryption is None:
            raise close.error("encryption algorithm required.")
        if draft.hash is None:
            raise close.error("hash algorithm required.")
        if draft.dh_group is None:
            raise close.error("DH group required.")
        if draft.method is None:
            raise close.error("authentication method required.")
        if draft.gss_token is not None and draft.method != "gssapi_krb":
            raise draft.gss_token.error("wrong Vendor ID for gssapi_id")
        state.own_proposals.append(
            Phase1Proposal(
                encryption=draft.encryption,
                key_length=draft.key_length,
                hash=draft.hash,
                authentication_method=_AUTH_METHODS[draft.method],
                authentication_method_name=draft.method,
                dh_group=draft.dh_group,
                lifetime=draft.lifetime,
                gss_id=draft.gss_id,
                file=keyword.file,
                line=keyword.line,
            )
        )

    @staticmethod
    def bad_algorithm(token: Token, what: str) -> ConfigError:
        if token.kind is Kind.WORD and token.value in _ALGORITHM_WORDS:
            return token.error(f"algorithm mismatched: {token.value} is not {what}")
        return token.error(f"expected {what}")

    def phase1_cipher(self, token: Token) -> Cipher:
        row = CIPHERS.get("conf_names", str(token.value)) if token.kind is Kind.WORD else None
        if row is None or row.ike_id is None:
            raise self.bad_algorithm(token, "a phase-1 encryption algorithm")
        if row.implementation is None:
            raise token.error(f"algorithm {token.value} not supported")
        return row

    def key_length(self, s: _Stream, cipher: Cipher, alg_token: Token) -> int | None:
        """Optional keylen after a cipher: only variable-key ciphers take one (multiple of 8,
        in range); they default to ``default_bits`` (128)."""
        token = s.peek()
        variable = cipher.variable_key and cipher.name not in _NO_CONF_KEYLEN
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

    # ------------------------------------------------------------------ sainfo
    def sainfo_id(self, s: _Stream) -> SaInfoId:
        type_token = s.expect_word(
            _IDENTIFIER_TYPES,
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
        address, _ = self.address(s)
        range_token = s.accept(Kind.RANGE)
        end: IPAddress | None = None
        if range_token is not None:
            end, _ = self.address_token(
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
        bits = address.max_prefixlen
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
            written = self.port(s)
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
                self.warn(
                    address_token,
                    f"{address}/{bits} has host bits set; sainfo IDs are "
                    "compared exactly, so only a peer sending the same "
                    "bits will match",
                )
        return SaInfoId(kind, id_type, data, proto, port, text)

    def sainfo(self, s: _Stream, keyword: Token) -> None:
        sainfo = SaInfo(file=keyword.file, line=keyword.line)
        if s.at_word("anonymous"):
            s.next()
            if s.at_word("clientaddr"):
                s.next()
                sainfo.remote_clientaddr = True
            elif not s.at(Kind.LBRACE) and not s.at_word("from", "group"):
                sainfo.remote_id = self.sainfo_id(s)
        else:
            sainfo.local_id = self.sainfo_id(s)
            if s.at_word("anonymous"):
                s.next()
            elif s.at_word("clientaddr"):
                s.next()
                sainfo.remote_clientaddr = True
            else:
                sainfo.remote_id = self.sainfo_id(s)
        if s.at_word("from"):
            from_token = s.next()
            sainfo.from_id = self.identifier(s, from_token)
        elif s.at_word("group"):
            group_token = s.next()
            self.warn_unacted("sainfo.group", group_token)
            sainfo.group = self.string(s, 'an xauth group "..."')

        def statement(s: _Stream, token: Token) -> None:
            name = str(token.value)
            if name == "pfs_group":
                sainfo.pfs_group = self.dh_group(s)
            elif name == "remoteid":
                sainfo.remoteid = self.number(s)
            elif name == "lifetime":
                sainfo.lifetime = self.lifetime(s, "byte lifetime support is deprecated")
            elif name in (
                "encryption_algorithm",
                "authentication_algorithm",
                "compression_algorithm",
            ):
                target = {
                    "encryption_algorithm": sainfo.encryption,
                    "authentication_algorithm": sainfo.authentication,
                    "compression_algorithm": sainfo.compression,
                }[name]
                self.comma_list(s, lambda: target.append(self.sainfo_algorithm(s, name)))
            else:
                raise self.unknown(token, "sainfo")
            self.semi(s)

        close = self.block(s, "sainfo", statement)
        for items, what in (
            (sainfo.encryption, "encryption"),
            (sainfo.authentication, "authentication"),
            (sainfo.compression, "compression"),
        ):
            if not items:
                raise close.error(f"no {what} algorithm at {sainfo.describe()}")

        def key(sa_id: SaInfoId | None) -> tuple[int, int, int, bytes] | None:
            return None if sa_id is None else sa_id.payload_key

        for other in self.config.sainfos:
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
        sainfos = self.config.sainfos
        index = next(
            (i for i, other in enumerate(sainfos) if other.score < sainfo.score), len(sainfos)
        )
        sainfos.insert(index, sainfo)

    def sainfo_algorithm(self, s: _Stream, directive: str) -> SaInfoAlgorithm:
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
            raise self.bad_algorithm(token, what)
        if isinstance(row, Cipher):
            key_length = self.key_length(s, row, token)
        else:
            if s.at(Kind.NUMBER):
                raise s.peek().error("keylen not allowed")
            key_length = None
        return SaInfoAlgorithm(name, row, key_length, token.file, token.line)


# ---------------------------------------------------------------------- API
def parse_string(
    text: str, filename: str = "<string>", *, include_base: str | None = None
) -> Config:
    """Parse racoon.conf text.  ``include`` lines resolve as in :func:`parse_file`."""
    parser = _Parser(filename, include_base)
    parser.parse_text(text, filename)
    return parser.config


def parse_file(path: str | os.PathLike[str], *, include_base: str | None = None) -> Config:
    """Parse a racoon.conf file and everything it includes.

    A relative ``include`` is joined to ``path include``; if it is still relative it is taken
    under ``include_base`` when given, else under the current directory as racoon does.
    """
    path = os.fspath(path)
    parser = _Parser(path, include_base)
    parser.parse_path(path, None)
    return parser.config


def check_kernel_algorithms(
    config: Config, supported: Callable[[str, SaInfoAlgorithm], bool]
) -> None:
    """racoon checks each sainfo algorithm against the kernel's REGISTER reply while parsing;
    the daemon calls this once it has that reply.  ``supported(kind, algorithm)`` gets
    ``"encryption"``, ``"authentication"`` or ``"compression"``; ``non_auth`` is never asked
    about.  Raises racoon's error at the algorithm's line."""
    for sainfo in config.sainfos:
        for kind, items in (
            ("encryption", sainfo.encryption),
            ("authentication", sainfo.authentication),
            ("compression", sainfo.compression),
        ):
            for item in items:
                if kind == "authentication" and item.name == "non_auth":
                    continue
                if not supported(kind, item):
                    raise ConfigError(
                        f"algorithm {item.algorithm.name} not supported by the "
                        "kernel (missing module?)",
                        file=item.file,
                        line=item.line,
                        token=item.name,
                    )
