"""setkey's input grammar (ipsec-tools 0.8.2 ``parse.y``) to a list of typed commands.

Unlike setkey, which sends each command to the kernel as soon as its ``;`` is read, pysetkey
parses the *whole* input first (``parse_script``) and only then executes it, so a file with a
syntax error anywhere changes nothing. The checks setkey makes while parsing are all made
here, with its messages: key lengths against the kernel's REGISTER ranges (the caller passes
them in ``SupportedAlgorithms``), address resolution, the policy string, SPI size.

Grammar (setkey(8))::

    add [-46n] SRC DST PROTO SPI [EXT...] ALGS ;
    get|delete|getspi [-46n] SRC DST PROTO SPI [EXT...] ;
    deleteall [-46n] SRC DST PROTO ;       flush [PROTO] ;       dump [PROTO] ;
    spdadd|spdupdate|spddelete [-46n] SRC_RANGE DST_RANGE UPPERSPEC [EXTRA] [-ctx D A "s"] -P POL ;
    spdadd|spdupdate tagged "tag" -P POL ;
    spdflush ;    spddump ;    exit|quit|bye ;
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pyracoon.kernel.pfkey import IPAddress, Policy
from pyracoon.kernel.protocols import (
    IPPROTO_GRE,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_MH,
    IPPROTO_TCP,
    protocol_number,
)
from pyracoon.kernel.sadb import Direction, Level, Mode, NatTType, SaFlags, SaType

from .algorithms import (
    AUTHENTICATION_NAMES,
    COMPRESSION_NAMES,
    ENCRYPTION_NAMES,
    PROTO_SATYPE,
    TCP_MD5_KEY_BYTES,
    KeyForm,
    KeyRange,
    SupportedAlgorithms,
)
from .errors import PolicySyntaxError, SetkeySyntaxError
from .lexer import T, Token, tokenize
from .policy import parse_policy

ULPROTO_ANY = 255

# ---------------------------------------------------------------------------------------------
# commands


@dataclass(frozen=True)
class Endpoint:
    """One resolved address with the port from ``[port]`` (0 = any)."""

    addr: IPAddress
    port: int = 0
    scope_id: int = 0


@dataclass(frozen=True)
class SecurityContext:
    """``-ctx DOI ALG "string"``; ``text`` includes the NUL that setkey counts in the length."""

    doi: int
    alg: int
    text: bytes


@dataclass
class SaCommand:
    """``add``, ``get``, ``delete`` or ``getspi``: one SA, for every resolved address pair."""

    line: int
    verb: str
    satype: int
    srcs: list[Endpoint]
    dsts: list[Endpoint]
    spi: int = 0
    flags: int = SaFlags.CYCSEQ
    mode: int = Mode.ANY
    reqid: int = 0
    replay: int = 0
    enc_alg: int = 0
    enc_key: bytes | None = None
    auth_alg: int = 0
    auth_key: bytes | None = None
    lifetime_hard_time: int = 0
    lifetime_soft_time: int = 0
    lifetime_hard_bytes: int = 0
    lifetime_soft_bytes: int = 0
    ctx: SecurityContext | None = None
    natt_type: int = NatTType.NONE
    natt_oa: Endpoint | None = None


@dataclass
class DeleteAllCommand:
    """``deleteall``: on Linux a DUMP, then a DELETE per matching SPI."""

    line: int
    satype: int
    srcs: list[Endpoint]
    dsts: list[Endpoint]


@dataclass
class FlushCommand:
    line: int
    satype: int = SaType.UNSPEC


@dataclass
class DumpCommand:
    line: int
    satype: int = SaType.UNSPEC


@dataclass
class SpdCommand:
    """``spdadd``, ``spdupdate`` or ``spddelete`` of one selector."""

    line: int
    verb: str
    src: Endpoint | None
    src_prefix: int
    dst: Endpoint | None
    dst_prefix: int
    ulproto: int
    policy: Policy
    ctx: SecurityContext | None = None
    tag: str | None = None


@dataclass
class SpdFlushCommand:
    line: int


@dataclass
class SpdDumpCommand:
    line: int


Command = (
    SaCommand
    | DeleteAllCommand
    | FlushCommand
    | DumpCommand
    | SpdCommand
    | SpdFlushCommand
    | SpdDumpCommand
)


@dataclass
class Script:
    """A parsed input: its commands in order, setkey's warnings, and whether it said ``exit``."""

    commands: list[Command] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exited: bool = False


# ---------------------------------------------------------------------------------------------
# address resolution

Resolver = Callable[[str, int, int, bool], list[Endpoint]]
"""(host, port, family, numeric_only) -> endpoints; raises ``LookupError(gai message)``."""

_GAI_NONAME = "Name or service not known"
_GAI_ADDRFAMILY = "Address family for hostname not supported"


def numeric_endpoint(host: str, port: int, family: int) -> Endpoint | None:
    """The endpoint of a numeric address (optionally ``%scope``), None for a hostname."""
    text, _, scope = host.partition("%")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if scope and addr.version == 4:
        return None
    if family == socket.AF_INET and addr.version != 4:
        raise LookupError(_GAI_ADDRFAMILY)
    if family == socket.AF_INET6 and addr.version != 6:
        raise LookupError(_GAI_ADDRFAMILY)
    scope_id = 0
    if scope:
        if scope.isdigit():
            scope_id = int(scope)
        else:
            try:
                scope_id = socket.if_nametoindex(scope)
            except OSError as e:
                raise LookupError(_GAI_NONAME) from e
    return Endpoint(addr, port, scope_id)


def system_resolver(host: str, port: int, family: int, numeric_only: bool) -> list[Endpoint]:
    """``getaddrinfo`` as setkey calls it; numeric addresses never reach the system resolver."""
    ep = numeric_endpoint(host, port, family)
    if ep is not None:
        return [ep]
    if numeric_only:
        raise LookupError(_GAI_NONAME)
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    except socket.gaierror as e:
        raise LookupError(e.strerror or _GAI_NONAME) from e
    out: list[Endpoint] = []
    for fam, _, _, _, sockaddr in infos:
        if fam == socket.AF_INET:
            out.append(Endpoint(ipaddress.IPv4Address(sockaddr[0]), port))
        elif len(sockaddr) == 4:  # AF_INET6's (host, port, flowinfo, scope_id)
            addr = ipaddress.IPv6Address(str(sockaddr[0]).partition("%")[0])
            out.append(Endpoint(addr, port, int(sockaddr[3])))
    if not out:
        raise LookupError("No address associated with hostname")
    return out


# ---------------------------------------------------------------------------------------------
# the parser


@dataclass
class ParseOptions:
    supported: SupportedAlgorithms = field(default_factory=SupportedAlgorithms.builtin)
    resolver: Resolver = system_resolver
    keylen_diagnostic: Callable[[str], None] | None = None
    """Where ``KEYLEN MIN MAX`` goes when a key length is refused (default stderr)."""
    where: Callable[[int], str] = lambda line: f"line {line}: "
    """How a warning names its line: KAME's ``line N: `` unless the caller says otherwise
    (ipsec-tools' ``-f`` says ``setkey: FILE,N: ``, see ``cli.run_script``)."""
    on_warning: Callable[[str], None] | None = None
    """Print each warning at once (setkey's ``-f`` prints them as its parser meets them, between
    the key-length diagnostics and the error); unset, they are kept in ``Script.warnings``."""
    quote: Callable[[str], str] = lambda token: f"[{token}]"
    """How a warning quotes the token: KAME's ``[TOKEN]``, ipsec-tools' ``-f`` ```TOKEN'``."""


class _Parser:
    def __init__(self, tokens: list[Token], options: ParseOptions, script: Script) -> None:
        self.toks = tokens
        self.i = 0
        self.opt = options
        self.script = script

    # -- token helpers --------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind is not T.END:
            self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> SetkeySyntaxError:
        tok = tok or self.peek()
        return SetkeySyntaxError(tok.line, message, tok.text)

    def syntax_error(self) -> SetkeySyntaxError:
        return self.error("syntax error")

    def expect(self, kind: T) -> Token:
        if self.peek().kind is not kind:
            raise self.syntax_error()
        return self.take()

    def expect_eot(self) -> Token:
        return self.expect(T.EOT)

    def warn(self, message: str, tok: Token) -> None:
        where, token = self.opt.where(tok.line), self.opt.quote(tok.text)
        self._warning(f"{where}{message} at {token}")

    def _warning(self, text: str) -> None:
        if self.opt.on_warning is not None:
            self.opt.on_warning(text)
        else:
            self.script.warnings.append(text)

    # -- driver ---------------------------------------------------------------------------
    def parse(self) -> None:
        while self.peek().kind is not T.END:
            tok = self.peek()
            if tok.kind is not T.KEYWORD:
                raise self.syntax_error()
            verb = tok.value
            handler = {
                "add": self.sa_command,
                "get": self.sa_command,
                "delete": self.sa_command,
                "getspi": self.sa_command,
                "deleteall": self.deleteall,
                "flush": self.flush_or_dump,
                "dump": self.flush_or_dump,
                "spdadd": self.spd_command,
                "spdupdate": self.spd_command,
                "spddelete": self.spd_command,
                "spdflush": self.spd_simple,
                "spddump": self.spd_simple,
                "exit": self.exit,
            }.get(str(verb))
            if handler is None:
                raise self.syntax_error()
            handler()
            if self.script.exited:
                return

    def exit(self) -> None:
        self.take()
        self.expect_eot()
        self.script.exited = True

    # -- pieces ---------------------------------------------------------------------------
    def addr_opts(self) -> tuple[int, bool]:
        family, numeric = socket.AF_UNSPEC, False
        while self.peek().kind is T.AIFLAGS:
            for ch in self.take().text[1:]:
                if ch == "4":
                    family = socket.AF_INET
                elif ch == "6":
                    family = socket.AF_INET6
                else:
                    numeric = True
        return family, numeric

    def portstr(self) -> int:
        """``[N]``, ``[any]`` or ``[service]``; no brackets means port 0."""
        if self.peek().kind is not T.BLCL:
            return 0
        self.take()
        tok = self.peek()
        if tok.is_kw("any"):
            port = 0
        elif tok.kind is T.DECSTRING:
            port = tok.number
            if port > 0xFFFF:
                raise self.error("Servname not supported for ai_socktype", tok)
        elif tok.kind is T.STRING:
            try:
                port = socket.getservbyname(tok.text, "udp")
            except OSError:
                raise self.error("Servname not supported for ai_socktype", tok) from None
        else:
            raise self.syntax_error()
        self.take()
        self.expect(T.ELCL)
        return port

    def resolve(self, tok: Token, port: int, family: int, numeric: bool) -> list[Endpoint]:
        try:
            return self.opt.resolver(tok.text, port, family, numeric)
        except LookupError as e:
            raise self.error(str(e.args[0]) if e.args else _GAI_NONAME, tok) from None

    def address(self, family: int, numeric: bool, with_port: bool) -> list[Endpoint]:
        tok = self.peek()
        if tok.kind is not T.STRING:
            raise self.syntax_error()
        self.take()
        port = self.portstr() if with_port else 0
        return self.resolve(tok, port, family, numeric)

    def protocol_spec(self, cmd: SaCommand | None = None) -> tuple[int, bool, Endpoint | None]:
        """-> (satype, OLD flag, NAT-T original address); UNSPEC when no protocol is named."""
        tok = self.peek()
        if tok.kind is not T.KEYWORD:
            return SaType.UNSPEC, False, None
        if tok.value == "esp-udp":
            self.take()
            oa = None
            if self.peek().kind is T.STRING:
                oa_tok = self.take()
                oa = self.resolve(oa_tok, 0, socket.AF_UNSPEC, False)[0]
            if cmd is not None:
                cmd.natt_type = NatTType.ESPINUDP
                cmd.natt_oa = oa
            return SaType.ESP, False, oa
        entry = PROTO_SATYPE.get(str(tok.value))
        if entry is None:
            return SaType.UNSPEC, False, None
        self.take()
        return entry[0], entry[1], None

    def spi(self) -> int:
        tok = self.peek()
        if tok.kind is T.DECSTRING:
            value = tok.number
        elif tok.kind is T.HEXSTRING:
            value = int(str(tok.value), 16)
        else:
            raise self.syntax_error()
        if value > 0xFFFFFFFF:
            raise self.error("SPI too big.", tok)
        self.take()
        return value

    def decimal(self) -> int:
        return self.expect(T.DECSTRING).number

    def quoted(self) -> Token:
        return self.expect(T.QUOTED)

    def security_context(self) -> SecurityContext:
        self.take()  # -ctx
        doi = self.decimal()
        alg = self.decimal()
        text = self.quoted().text.encode("latin-1")
        if doi > 255 or alg > 255:
            raise self.error("invalid security context")
        return SecurityContext(doi, alg, text + b"\0")

    def extensions(self, cmd: SaCommand) -> None:
        while True:
            tok = self.peek()
            if tok.is_flag("-f"):
                self.take()
                ext = self.peek()
                if ext.is_kw("random-pad"):
                    cmd.flags |= SaFlags.PRAND
                elif ext.is_kw("zero-pad"):
                    cmd.flags |= SaFlags.PZERO
                elif ext.is_kw("seq-pad"):
                    pass  # SADB_X_EXT_PSEQ is 0
                elif ext.is_kw("nocyclic-seq"):
                    cmd.flags &= ~SaFlags.CYCSEQ
                else:
                    raise self.syntax_error()
                self.take()
            elif tok.is_flag("-m"):
                self.take()
                mode = self.peek()
                if mode.is_kw("transport"):
                    cmd.mode = Mode.TRANSPORT
                elif mode.is_kw("tunnel"):
                    cmd.mode = Mode.TUNNEL
                elif mode.is_kw("any"):
                    cmd.mode = Mode.ANY
                else:
                    raise self.syntax_error()
                self.take()
            elif tok.is_flag("-u"):
                self.take()
                cmd.reqid = self._u32(self.peek())
            elif tok.is_flag("-r"):
                self.take()
                if cmd.flags & SaFlags.OLD:
                    raise self.error("replay prevention cannot be used with ah/esp-old")
                window = self.peek()
                cmd.replay = self._u32(window)
                if cmd.replay > 255:
                    raise self.error("replay window too large (at most 255)", window)
            elif tok.kind is T.FLAG and tok.value in ("-lh", "-ls", "-bh", "-bs"):
                self.take()
                value = self._u64(self.peek())
                if tok.value == "-lh":
                    cmd.lifetime_hard_time = value
                elif tok.value == "-ls":
                    cmd.lifetime_soft_time = value
                elif tok.value == "-bh":
                    cmd.lifetime_hard_bytes = value
                else:
                    cmd.lifetime_soft_bytes = value
            elif tok.is_flag("-ctx"):
                cmd.ctx = self.security_context()
            else:
                return

    def _u32(self, tok: Token) -> int:
        value = self.decimal()
        if value > 0xFFFFFFFF:
            raise self.error("value too large", tok)
        return value

    def _u64(self, tok: Token) -> int:
        value = self.decimal()
        if value >= 2**64:
            raise self.error("value too large", tok)
        return value

    def key_string(self) -> tuple[bytes, Token]:
        tok = self.peek()
        if tok.kind is T.QUOTED:
            self.take()
            return tok.text.encode("latin-1"), tok
        if tok.kind is T.HEXSTRING:
            self.take()
            digits = str(tok.value)
            if len(digits) % 2:
                digits = "0" + digits  # an odd first digit is a byte of its own: 0xabc = 0a bc
            return bytes.fromhex(digits), tok
        raise self.syntax_error()

    def check_keylen(self, table: str, alg_id: int, key: bytes, tok: Token, name: str) -> None:
        """libipsec ``ipsec_check_keylen``: against the ranges the kernel reported.

        libipsec prints a bare ``KEYLEN MIN MAX``; we keep that line for scripts that grep it
        and add one a person can act on: which key, how long it is, what the algorithm takes.
        """
        ranges = (
            self.opt.supported.encryption if table == "enc" else self.opt.supported.authentication
        )
        if ranges is None:
            raise self.error("Must get supported algorithms list first", tok)
        rng: KeyRange | None = ranges.get(alg_id)
        if rng is None:
            raise self.error("Not supported", tok)
        bits = len(key) * 8
        if not rng.allows(bits):
            what = "encryption" if table == "enc" else "authentication"
            allowed = (
                f"exactly {rng.minbits} bits ({rng.minbits // 8} bytes)"
                if rng.minbits == rng.maxbits
                else f"{rng.minbits} to {rng.maxbits} bits"
            )
            for diag in (
                f"{bits} {rng.minbits} {rng.maxbits}",
                f"{self.opt.where(tok.line)}the {name} {what} key is {bits} bits "
                f"({len(key)} byte{'' if len(key) == 1 else 's'}); "
                f"{name} takes {allowed}",
            ):
                if self.opt.keylen_diagnostic is not None:
                    self.opt.keylen_diagnostic(diag)
                else:
                    print(diag, file=sys.stderr)
            raise self.error("Invalid key length", tok)

    def algorithms(self, cmd: SaCommand) -> None:
        tok = self.peek()
        if tok.is_flag("-E"):
            self.take()
            self.enc_alg(cmd)
            if self.peek().is_flag("-A"):
                self.take()
                self.auth_alg(cmd)
        elif tok.is_flag("-A"):
            self.take()
            self.auth_alg(cmd)
        elif tok.is_flag("-C"):
            self.take()
            calg = self.peek()
            if calg.kind is not T.KEYWORD or calg.value not in COMPRESSION_NAMES:
                raise self.syntax_error()
            self.take()
            cmd.enc_alg = COMPRESSION_NAMES[str(calg.value)]
            if self.peek().is_flag("-R"):
                self.take()
                cmd.flags |= SaFlags.RAWCPI
        else:
            raise self.syntax_error()

    def enc_alg(self, cmd: SaCommand) -> None:
        tok = self.peek()
        if tok.kind is not T.ALG_ENC:
            raise self.syntax_error()
        self.take()
        alg = ENCRYPTION_NAMES[str(tok.value)]
        cmd.enc_alg = alg.id
        if alg.form is KeyForm.NOKEY:
            key, key_tok = b"", tok
        elif alg.form is KeyForm.OLD:
            self.warn("WARNING: obsolete algorithm", tok)
            if self.peek().kind in (T.QUOTED, T.HEXSTRING):
                key, key_tok = self.key_string()  # the 2003 memo's `-E simple "key"`
            else:
                key, key_tok = b"", tok
        else:
            if alg.form is KeyForm.DESDERIV:
                if cmd.flags & SaFlags.OLD:
                    raise self.error("algorithm mismatched", tok)
                cmd.flags |= SaFlags.DERIV
            elif alg.form is KeyForm.DES32IV:
                if not cmd.flags & SaFlags.OLD:
                    raise self.error("algorithm mismatched", tok)
                cmd.flags |= SaFlags.IV4B
            key, key_tok = self.key_string()
        self.check_keylen("enc", alg.id, key, key_tok, alg.name)
        cmd.enc_key = key

    def auth_alg(self, cmd: SaCommand) -> None:
        tok = self.peek()
        if tok.kind is not T.ALG_AUTH:
            raise self.syntax_error()
        self.take()
        alg = AUTHENTICATION_NAMES[str(tok.value)]
        cmd.auth_alg = alg.id
        if alg.form is KeyForm.NOKEY:
            cmd.auth_key = None
            return
        key, key_tok = self.key_string()
        if alg.name == "tcp-md5":
            lo, hi = TCP_MD5_KEY_BYTES
            if not lo <= len(key) <= hi:
                raise self.error("Invalid key length", key_tok)
        else:
            self.check_keylen("auth", alg.id, key, key_tok, alg.name)
        cmd.auth_key = key

    # -- commands -------------------------------------------------------------------------
    def sa_command(self) -> None:
        verb_tok = self.take()
        verb = str(verb_tok.value)
        family, numeric = self.addr_opts()
        srcs = self.address(family, numeric, with_port=True)
        dsts = self.address(family, numeric, with_port=True)
        cmd = SaCommand(verb_tok.line, verb, SaType.UNSPEC, srcs, dsts)
        satype, old, _ = self.protocol_spec(cmd)
        cmd.satype = satype
        if old:
            cmd.flags |= SaFlags.OLD
        cmd.spi = self.spi()
        self.extensions(cmd)
        if verb == "add":
            self.algorithms(cmd)
        eot = self.expect_eot()
        cmd.line = eot.line
        if verb in ("get", "delete") and cmd.mode != Mode.ANY:
            self.warn("WARNING: mode is obsolete", eot)
        if verb == "delete" and (len(srcs) > 1 or len(dsts) > 1):
            raise self.error("multiple address specified", eot)
        if not _pairs(srcs, dsts):
            raise self.error("source and destination address families differ", eot)
        self.script.commands.append(cmd)

    def deleteall(self) -> None:
        self.take()
        family, numeric = self.addr_opts()
        srcs = self.address(family, numeric, with_port=False)
        dsts = self.address(family, numeric, with_port=False)
        satype, _, _ = self.protocol_spec()
        eot = self.expect_eot()
        if not _pairs(srcs, dsts):
            raise self.error("source and destination address families differ", eot)
        self.script.commands.append(DeleteAllCommand(eot.line, satype, srcs, dsts))

    def flush_or_dump(self) -> None:
        verb = self.take().value
        satype, _, _ = self.protocol_spec()
        eot = self.expect_eot()
        cls = FlushCommand if verb == "flush" else DumpCommand
        self.script.commands.append(cls(eot.line, satype))

    def spd_simple(self) -> None:
        verb = self.take().value
        eot = self.expect_eot()
        cls = SpdFlushCommand if verb == "spdflush" else SpdDumpCommand
        self.script.commands.append(cls(eot.line))

    def prefix(self) -> tuple[int | None, Token | None]:
        if self.peek().kind is not T.SLASH:
            return None, None
        self.take()
        tok = self.peek()
        return self.decimal(), tok

    def upper_spec(self) -> int:
        tok = self.peek()
        if tok.kind is T.DECSTRING:
            value = tok.number
            if value > 255:
                raise self.error("invalid upper layer protocol", tok)
        elif tok.is_kw("any"):
            value = ULPROTO_ANY
        elif tok.is_kw("tcp"):
            value = IPPROTO_TCP
        elif tok.kind in (T.STRING, T.KEYWORD):
            number = protocol_number(tok.text)
            if number is None:
                raise self.error("invalid upper layer protocol", tok)
            value = number
        else:
            raise self.syntax_error()
        self.take()
        return value

    def upper_misc(self, ulproto: int) -> tuple[int, int] | None:
        """The optional word after the upper-layer protocol (setkey ``fix_portstr``)."""
        tok = self.peek()
        if tok.kind not in (T.STRING, T.DECSTRING):
            return None
        self.take()
        text = tok.text
        bad = self.error("invalid an upper layer protocol spec", tok)
        if ulproto in (IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MH):
            parts = text.split(",")
            if len(parts) > 2 or not all(p.isdigit() for p in parts):
                raise bad
            icmp_type = int(parts[0])
            icmp_code = int(parts[1]) if len(parts) == 2 else 0
            if icmp_type > 0xFFFF or icmp_code > 0xFFFF:
                raise bad
            return icmp_type, icmp_code
        if ulproto == IPPROTO_GRE:
            parts = text.split(".")
            if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
                a, b, c, d = (int(p) for p in parts)
                return (a << 8) + b, (c << 8) + d
            if text.isdigit() and int(text) <= 0xFFFFFFFF:
                key = int(text)
                return key >> 16, key & 0xFFFF
            raise bad
        raise bad

    def spd_command(self) -> None:
        verb_tok = self.take()
        verb = str(verb_tok.value)
        if self.peek().is_kw("tagged"):
            if verb == "spddelete":
                raise self.syntax_error()
            self.take()
            tag = self.quoted().text
            policy, _ = self.policy_spec()
            eot = self.expect_eot()
            self.script.commands.append(
                SpdCommand(eot.line, verb, None, 0, None, 0, ULPROTO_ANY, policy, tag=tag)
            )
            return
        family, numeric = self.addr_opts()
        src_tok = self.expect(T.STRING)
        src_prefix, src_ptok = self.prefix()
        src_port = self.portstr()
        dst_tok = self.expect(T.STRING)
        dst_prefix, dst_ptok = self.prefix()
        dst_port = self.portstr()
        ulproto = self.upper_spec()
        misc = self.upper_misc(ulproto)
        ctx = self.security_context() if self.peek().is_flag("-ctx") else None
        policy, _ = self.policy_spec()
        eot = self.expect_eot()
        if misc is not None:
            src_port, dst_port = misc
        srcs = self.resolve(src_tok, src_port, family, numeric)
        dsts = self.resolve(dst_tok, dst_port, family, numeric)
        if len(srcs) > 1 or len(dsts) > 1:
            raise self.error("multiple address specified", eot)
        src, dst = srcs[0], dsts[0]
        if src.addr.version != dst.addr.version:
            raise self.error("source and destination address families differ", eot)
        for plen, ptok, ep in ((src_prefix, src_ptok, src), (dst_prefix, dst_ptok, dst)):
            if plen is not None and plen > ep.addr.max_prefixlen:
                raise self.error("Invalid prefix length", ptok)
        self.script.commands.append(
            SpdCommand(
                eot.line,
                verb,
                src,
                src.addr.max_prefixlen if src_prefix is None else src_prefix,
                dst,
                dst.addr.max_prefixlen if dst_prefix is None else dst_prefix,
                ulproto,
                policy,
                ctx,
            )
        )

    def policy_spec(self) -> tuple[Policy, Token]:
        if not self.peek().is_flag("-P"):
            raise self.syntax_error()
        self.take()
        tok = self.expect(T.POLICY)
        try:
            policy = parse_policy(tok.text)
        except PolicySyntaxError as e:
            if e.detail:
                self._warning(e.detail)
            raise self.error(e.message, tok) from None
        return policy, tok


def _pairs(srcs: list[Endpoint], dsts: list[Endpoint]) -> list[tuple[Endpoint, Endpoint]]:
    """Every (src, dst) of the same family, as setkey loops over getaddrinfo results."""
    return [(s, d) for s in srcs for d in dsts if s.addr.version == d.addr.version]


def address_pairs(cmd: SaCommand | DeleteAllCommand) -> list[tuple[Endpoint, Endpoint]]:
    return _pairs(cmd.srcs, cmd.dsts)


def parse_script(text: str, options: ParseOptions | None = None, first_line: int = 1) -> Script:
    """Parse a whole setkey input. Raises ``SetkeySyntaxError`` on the first error.

    Warnings setkey would print while parsing (obsolete mode, obsolete algorithm, libipsec's
    own syntax-error line) are returned in ``Script.warnings``; when an error is raised, the
    warnings gathered so far are attached to it as ``warnings``.
    """
    options = options or ParseOptions()
    script = Script()
    try:
        tokens = tokenize(text, first_line)
        _Parser(tokens, options, script).parse()
    except SetkeySyntaxError as e:
        e.warnings = script.warnings
        raise
    return script


def fwd_copy(policy: Policy) -> Policy:
    """The ``fwd`` twin ``-r`` mode installs for an ``in`` policy.

    As setkey does, only the first request's level changes: unique becomes require and its
    reqid is dropped, since a forwarded packet's SA is not bound to this policy.
    """
    reqs = [
        type(r)(r.proto, r.mode, r.level, r.reqid, r.src, r.dst, r.src_port, r.dst_port)
        for r in policy.requests
    ]
    if reqs and reqs[0].level == Level.UNIQUE:
        reqs[0].level = Level.REQUIRE
        reqs[0].reqid = 0
    return Policy(policy.policy_type, Direction.FWD, policy.id, policy.priority, reqs)
