"""racoon.conf's top level: the file, ``include``, and the small global blocks (racoon.conf(5)).

This is a recursive-descent reading of ipsec-tools' cfparse.y, statement by statement, with its
checks and, where racoon has one, its error wording ("no exchange mode specified.", "byte
lifetime support is deprecated", "dh_group cannot be defined here."...).  Errors are
:class:`ConfigError` located at the token where racoon would have noticed them -- for checks
made when a block closes, that is the closing ``}``.

The grammar is split by block, and every block dispatches by a table (keyword -> handler):
:data:`STATEMENTS` here for the top level, with :data:`PRIVSEP_STATEMENTS`,
:data:`PADDING_STATEMENTS`, :data:`LISTEN_STATEMENTS` and :data:`TIMER_STATEMENTS`;
:mod:`.remote_block` for ``remote``/``proposal``, :mod:`.sainfo_block` for ``sainfo``,
:mod:`.modecfg_block` for ``mode_cfg``/``ldapcfg``/``radiuscfg``; the shared value readers are
:mod:`.reader`.  :data:`GRAMMAR` collects every table's keywords, so that the support table
(:mod:`.support`) can be checked to classify each one -- docs/config.md describes all of this.

What the grammar is, racoon's real defaults, and the racoon behaviours we deliberately do not
copy (``adminsock`` mode digits, ``isakmp_natt`` without a port, the sainfo duplicate check that
depends on block order, shared lists of inheriting remotes, token-spliced includes, algorithms
racoon lexes but cannot use) are docs/racoon.md ("racoon.conf grammar", "Bugs not copied").
Things racoon checks against the running system at parse time -- users and groups, whether a
certificate file loads, the kernel's algorithm list -- are left to the daemon;
:func:`check_kernel_algorithms` does the last one with racoon's message.
"""

from __future__ import annotations

import glob
import os
import posixpath
from collections.abc import Callable, Mapping

from pyracoon.config import modecfg_block, remote_block, sainfo_block
from pyracoon.config.errors import ConfigError
from pyracoon.config.lexer import Kind, Token, tokenize
from pyracoon.config.model import (
    AdminSock,
    Config,
    Listen,
    ListenAddress,
    LogLevel,
    Padding,
    Privsep,
    SaInfoAlgorithm,
    Timer,
)
from pyracoon.config.reader import Handler, Reader, Stream

__all__ = [
    "GRAMMAR",
    "MAX_INCLUDE_DEPTH",
    "STATEMENTS",
    "check_kernel_algorithms",
    "parse_file",
    "parse_string",
]

#: racoon's MAX_INCLUDE_DEPTH: at most this many files open at once, the main file included.
MAX_INCLUDE_DEPTH = 10


class _Parser(Reader):
    """A :class:`Reader` that also knows the files: the include depth and base directory."""

    def __init__(self, source: str, include_base: str | None) -> None:
        super().__init__(Config(source=source))
        self.include_base = include_base
        self.depth = 0

    def parse_text(self, text: str, filename: str) -> None:
        self.config.files.append(filename)
        s = Stream(tokenize(text, filename))
        while not s.at(Kind.EOF):
            token = s.next()
            if token.kind is not Kind.WORD:
                raise token.error("expected a statement")
            handler = STATEMENTS.get(str(token.value))
            if handler is None:
                raise token.error(f"unknown statement '{token.text}'")
            handler(self, s, token)

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


# ---------------------------------------------------------------------- include, path
def _include(p: _Parser, s: Stream, keyword: Token) -> None:
    """``include "GLOB";``: every match, in sorted order, as whole statements."""
    name_token = s.expect(Kind.STRING, 'a file name "..."')
    p.semi(s)
    path = p.config.paths.resolve("include", os.path.expanduser(str(name_token.value)))
    if not posixpath.isabs(path) and p.include_base is not None:
        path = posixpath.join(p.include_base, path)
    if p.depth + 1 >= MAX_INCLUDE_DEPTH:
        raise name_token.error("Includes nested too deeply")
    matches = sorted(glob.glob(path))
    if not matches:
        raise name_token.error(f'glob found no matches for path "{path}"')
    p.depth += 1
    try:
        for match in matches:
            p.parse_path(match, name_token)
    finally:
        p.depth -= 1


#: The words after ``path`` (cfparse.y path_statement): each names a field of ``Paths``.
PATH_KINDS = ("include", "pre_shared_key", "certificate", "script", "backupsa", "pidfile")


def _path(p: Reader, s: Stream, keyword: Token) -> None:
    kind = s.expect_word(
        PATH_KINDS,
        "a path type (include, pre_shared_key, certificate, script, backupsa, pidfile)",
    )
    value = p.string(s)
    p.semi(s)
    p.warn_unacted(f"path {kind.value}", kind)
    setattr(p.config.paths, str(kind.value), value)


# ---------------------------------------------------------------------- one-line statements
def _pfkey_buffer(p: Reader, s: Stream, keyword: Token) -> None:
    p.config.pfkey_buffer = p.number(s)
    p.semi(s)
    p.warn_unacted("pfkey_buffer", keyword)


def _gss_id_enc(p: Reader, s: Stream, keyword: Token) -> None:
    value = s.expect_word(("utf-16le", "latin1"), "utf-16le or latin1")
    p.semi(s)
    p.warn_unacted("gss_id_enc", keyword)
    p.config.gss_id_enc = str(value.value)


_LOG_LEVELS = {level.name.lower(): level for level in LogLevel}


def _log(p: Reader, s: Stream, keyword: Token) -> None:
    level = s.expect_word(
        _LOG_LEVELS, "a log level (error, warning, notify, info, debug, debug2)"
    )
    p.semi(s)
    p.config.log_level = _LOG_LEVELS[str(level.value)]


def _complex_bundle(p: Reader, s: Stream, keyword: Token) -> None:
    p.config.complex_bundle = p.switch(s)
    p.warn_unacted(f"complex_bundle {'on' if p.config.complex_bundle else 'off'}", keyword)
    p.semi(s)


# ---------------------------------------------------------------------- privsep
def _privsep_id(p: Reader, s: Stream, token: Token, privsep: Privsep) -> None:
    value = s.next()
    if value.kind not in (Kind.STRING, Kind.NUMBER):
        raise value.error(f"expected a {token.value} name or number")
    setattr(privsep, str(token.value), value.value)


def _privsep_chroot(p: Reader, s: Stream, token: Token, privsep: Privsep) -> None:
    privsep.chroot = p.string(s)


#: cfparse.y privsep_stmt.
PRIVSEP_STATEMENTS: dict[str, Handler] = {
    "user": _privsep_id,
    "group": _privsep_id,
    "chroot": _privsep_chroot,
}


def _privsep(p: Reader, s: Stream, keyword: Token) -> None:
    p.section_block(s, keyword, PRIVSEP_STATEMENTS, Privsep)


# ---------------------------------------------------------------------- padding
def _padding_switch(p: Reader, s: Stream, token: Token, padding: Padding) -> None:
    setattr(padding, str(token.value), p.switch(s))


def _padding_maximum_length(p: Reader, s: Stream, token: Token, padding: Padding) -> None:
    padding.maximum_length = p.number(s)


#: cfparse.y padding_stmt; each keyword is the ``Padding`` field it sets.
PADDING_STATEMENTS: dict[str, Handler] = {
    "randomize": _padding_switch,
    "randomize_length": _padding_switch,
    "strict_check": _padding_switch,
    "exclusive_tail": _padding_switch,
    "maximum_length": _padding_maximum_length,
}


def _padding(p: Reader, s: Stream, keyword: Token) -> None:
    p.table_block(s, "padding", PADDING_STATEMENTS, p.config.padding, report="padding")


# ---------------------------------------------------------------------- listen
def _listen_isakmp(p: Reader, s: Stream, token: Token, listen: Listen) -> None:
    address_token = s.peek()
    address, scope = p.address(s)
    port = p.port(s)
    natt = token.value == "isakmp_natt"
    if natt and port is None:
        raise address_token.error("isakmp_natt needs an explicit port, normally [4500]")
    listen.addresses.append(ListenAddress(address, port, natt, scope))


def _listen_strict_address(p: Reader, s: Stream, token: Token, listen: Listen) -> None:
    listen.strict_address = True


def _listen_adminsock(p: Reader, s: Stream, token: Token, listen: Listen) -> None:
    _adminsock(p, s, listen.adminsock)


#: cfparse.y listen_stmt.
LISTEN_STATEMENTS: dict[str, Handler] = {
    "isakmp": _listen_isakmp,
    "isakmp_natt": _listen_isakmp,
    "strict_address": _listen_strict_address,
    "adminsock": _listen_adminsock,
}


def _listen(p: Reader, s: Stream, keyword: Token) -> None:
    listen = p.config.listen
    listen.present = True
    p.table_block(s, "listen", LISTEN_STATEMENTS, listen, report="listen")


def _adminsock(p: Reader, s: Stream, sock: AdminSock) -> None:
    """``adminsock disabled`` | ``adminsock "PATH" ["OWNER" "GROUP" MODE]``."""
    if s.at_word("disabled"):
        s.next()
        sock.path = None
        sock.disabled = True
        return
    sock.path = p.string(s, 'a socket path "..." or disabled')
    sock.disabled = False
    if not s.at(Kind.STRING):
        return
    sock.owner = p.string(s)
    sock.group = p.string(s, 'a group "..."')
    mode_token = s.peek()
    digits = str(p.number(s, "a mode such as 660"))
    # Written as decimal digits, meant as octal: 660 means rw-rw----.
    if len(digits) > 3 or any(d not in "01234567" for d in digits):
        raise mode_token.error(
            f"Mode {digits} is invalid: write at most three octal digits, e.g. 660"
        )
    sock.mode = int(digits, 8)


# ---------------------------------------------------------------------- timer
def _timer_count(p: Reader, s: Stream, token: Token, timer: Timer) -> None:
    value = p.number(s)
    setattr(timer, str(token.value), value)
    if token.value == "persend" and value != 1:
        # racoon's sendfromto() sends each packet this many times; pyracoon sends it once.
        p.warn_unacted("timer.persend (not 1)", token)


def _timer_time(p: Reader, s: Stream, token: Token, timer: Timer) -> None:
    setattr(timer, str(token.value), p.time_value(s))


#: cfparse.y timer_stmt; each keyword is the ``Timer`` field it sets.
TIMER_STATEMENTS: dict[str, Handler] = {
    "counter": _timer_count,
    "persend": _timer_count,
    "interval": _timer_time,
    "phase1": _timer_time,
    "phase2": _timer_time,
    "natt_keepalive": _timer_time,
}


def _timer(p: Reader, s: Stream, keyword: Token) -> None:
    p.table_block(s, "timer", TIMER_STATEMENTS, p.config.timer, report="timer")


# ---------------------------------------------------------------------- the top level
#: Every top-level statement (cfparse.y statement), keyword -> handler(reader, stream, keyword).
STATEMENTS: dict[str, Callable[..., None]] = {
    "privsep": _privsep,
    "path": _path,
    "include": _include,
    "pfkey_buffer": _pfkey_buffer,
    "gss_id_enc": _gss_id_enc,
    "log": _log,
    "padding": _padding,
    "listen": _listen,
    "timer": _timer,
    "complex_bundle": _complex_bundle,
    "remote": remote_block.remote,
    "sainfo": sainfo_block.sainfo,
    "mode_cfg": modecfg_block.mode_cfg,
    "ldapcfg": modecfg_block.ldapcfg,
    "radiuscfg": modecfg_block.radiuscfg,
}

#: Every keyword the parser accepts, by block: ``""`` is the top level, ``path`` the words after
#: ``path``.  The support table test walks this to prove each one is acted upon or reported.
GRAMMAR: Mapping[str, frozenset[str]] = {
    "": frozenset(STATEMENTS),
    "path": frozenset(PATH_KINDS),
    "privsep": frozenset(PRIVSEP_STATEMENTS),
    "padding": frozenset(PADDING_STATEMENTS),
    "listen": frozenset(LISTEN_STATEMENTS),
    "timer": frozenset(TIMER_STATEMENTS),
    "remote": frozenset(remote_block.REMOTE_STATEMENTS),
    "proposal": frozenset(remote_block.PROPOSAL_STATEMENTS),
    "sainfo": frozenset(sainfo_block.SAINFO_STATEMENTS),
    "mode_cfg": frozenset(modecfg_block.MODE_CFG_STATEMENTS),
    "ldapcfg": frozenset(modecfg_block.LDAPCFG_STATEMENTS),
    "radiuscfg": frozenset(modecfg_block.RADIUSCFG_STATEMENTS),
}


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
