"""Tokens of racoon.conf (racoon's cftoken.l), in the manner of racoon's flex scanner.

racoon's scanner is context-sensitive: a block keyword such as ``counter`` is a keyword only
inside ``timer { }``.  We split the job differently, on purpose: the lexer produces context-free
token *shapes* (word, number, address, string, ...) and the recursive-descent parser decides what
a word means where it stands.  The accepted language is the same; the error messages get better
("unknown directive 'countre' in timer") because the parser knows the context.

Shapes follow racoon's lexer rules:

* ``"..."`` is a string, with no escapes (a ``"`` cannot appear inside);
* ``#`` starts a comment running to the end of the line;
* ``0xHEX`` is a HEX token of its own, so it can never stand where a number is expected;
* a decimal run is a NUMBER; a run of hex digits, ``:`` and ``.`` (optionally ``%scope``) that is
  longer than any word is an ADDR -- flex's longest match, so ``10.0.0.1`` is an address while
  ``3des`` is a word;
* ``/N`` (1-3 digits) is a PREFIX, ``[N]`` a PORT, ``[any]`` PORTANY, ``-ADDR`` a RANGE end;
* ``{ } ; ,`` are punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pyracoon.config.errors import ConfigError

__all__ = ["Kind", "Token", "tokenize"]


class Kind(Enum):
    """Token shapes."""

    WORD = "word"
    NUMBER = "number"
    HEX = "hex string"
    STRING = "string"
    ADDR = "address"
    PREFIX = "prefix"
    PORT = "port"
    PORTANY = "[any]"
    RANGE = "address range"
    LBRACE = "'{'"
    RBRACE = "'}'"
    SEMI = "';'"
    COMMA = "','"
    EOF = "end of file"


@dataclass(frozen=True)
class Token:
    """One token: its shape, its value (int for numbers/prefixes/ports, str otherwise), the text
    as written and where it was written."""

    kind: Kind
    value: str | int
    text: str
    file: str
    line: int

    def error(self, message: str) -> ConfigError:
        """A :class:`ConfigError` located at this token."""
        return ConfigError(message, file=self.file, line=self.line, token=self.text)


_HEX = re.compile(r"0x[0-9A-Fa-f]+")
_DEC = re.compile(r"[0-9]+")
# "utf-16le" (gss_id_enc) is the only keyword racoon has with a hyphen in it.
_WORD = re.compile(r"utf-16le|[A-Za-z0-9_]+")
_ADDR = re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f:.]*(?:%[A-Za-z0-9]*)?")
_PREFIX = re.compile(r"/([0-9]{1,3})(?![0-9])")
_PORT = re.compile(r"\[([0-9]+)\]")
_PORTANY = re.compile(r"\[any\]")
_RANGE = re.compile(r"-([0-9A-Fa-f:][0-9A-Fa-f:.]*(?:%[A-Za-z0-9]*)?)")
_PUNCT = {"{": Kind.LBRACE, "}": Kind.RBRACE, ";": Kind.SEMI, ",": Kind.COMMA}


def tokenize(text: str, filename: str) -> list[Token]:
    """Split ``text`` into tokens; the list always ends with an EOF token.

    Raises :class:`ConfigError` for a character no token can start with, an unterminated string,
    or a malformed prefix/port.
    """
    tokens: list[Token] = []
    pos = 0
    line = 1
    length = len(text)

    def fail(message: str, snippet: str) -> ConfigError:
        return ConfigError(message, file=filename, line=line, token=snippet)

    while pos < length:
        char = text[pos]
        if char == "\n":
            line += 1
            pos += 1
            continue
        if char in " \t\r\f\v":
            pos += 1
            continue
        if char == "#":
            end = text.find("\n", pos)
            pos = length if end < 0 else end
            continue
        if char == '"':
            end = text.find('"', pos + 1)
            if end < 0:
                raise fail("unterminated string", text[pos:pos + 20].split("\n")[0])
            quoted = text[pos + 1:end]
            tokens.append(Token(Kind.STRING, quoted, text[pos:end + 1], filename, line))
            line += quoted.count("\n")
            pos = end + 1
            continue
        if char in _PUNCT:
            tokens.append(Token(_PUNCT[char], char, char, filename, line))
            pos += 1
            continue
        if char == "/":
            match = _PREFIX.match(text, pos)
            if not match:
                raise fail("a prefix is '/' followed by 1 to 3 digits", text[pos:pos + 5])
            tokens.append(Token(Kind.PREFIX, int(match.group(1)), match.group(0), filename, line))
            pos = match.end()
            continue
        if char == "[":
            match = _PORTANY.match(text, pos)
            if match:
                tokens.append(Token(Kind.PORTANY, "any", match.group(0), filename, line))
                pos = match.end()
                continue
            match = _PORT.match(text, pos)
            if not match:
                raise fail("a port is written [NUMBER] (or [any] in sainfo)", text[pos:pos + 8])
            tokens.append(Token(Kind.PORT, int(match.group(1)), match.group(0), filename, line))
            pos = match.end()
            continue
        if char == "-":
            match = _RANGE.match(text, pos)
            if not match:
                raise fail("unexpected '-'", text[pos:pos + 8])
            tokens.append(Token(Kind.RANGE, match.group(1), match.group(0), filename, line))
            pos = match.end()
            continue
        # Longest match among the word-like shapes; on a tie the earlier shape wins, as in
        # flex where the literal keyword rules come before decstring/hexstring/addrstring.
        best: tuple[int, Kind] | None = None
        for kind, regex in ((Kind.HEX, _HEX), (Kind.NUMBER, _DEC), (Kind.WORD, _WORD),
                            (Kind.ADDR, _ADDR)):
            match = regex.match(text, pos)
            if match and (best is None or match.end() > best[0]):
                best = (match.end(), kind)
        if best is None:
            if char == "." and tokens and tokens[-1].kind is Kind.WORD:
                raise fail("host names are not accepted; write a numeric IPv4 or IPv6 address",
                           tokens[-1].text + text[pos:pos + 20].split()[0])
            raise fail("unexpected character", char)
        end, kind = best
        word = text[pos:end]
        value: str | int = int(word) if kind is Kind.NUMBER else word
        tokens.append(Token(kind, value, word, filename, line))
        pos = end
    tokens.append(Token(Kind.EOF, "", "<EOF>", filename, line))
    return tokens
