"""Tokens of setkey's input language (ipsec-tools 0.8.2 ``token.l``), with line numbers.

The lexer is context-sensitive in the same three places as setkey's flex scanner:

* after ``-E`` the next word is looked up among encryption names, after ``-A`` among
  authentication names (so ``null`` means a cipher there and a hostname elsewhere);
* after ``-P`` everything up to the next ``;`` is one ``POLICY`` token, handed whole to the
  policy parser (libipsec's ``ipsec_set_policy`` has its own grammar, see ``policy``).

Otherwise flex's rule of "longest match, then first rule" decides: ``0x111`` is a hex string,
``0x111g`` a word; ``256`` a number, ``10.0.0.1`` a word; ``esp`` a keyword, ``espx`` a word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .algorithms import AUTHENTICATION_NAMES, ENCRYPTION_NAMES
from .errors import SetkeySyntaxError


class T(Enum):
    """Token kinds. Keywords are ``WORD`` tokens whose ``kw`` names them."""

    EOT = ";"
    SLASH = "/"
    BLCL = "["
    ELCL = "]"
    DECSTRING = "decimal number"
    HEXSTRING = "hex string"
    QUOTED = "quoted string"
    STRING = "string"
    KEYWORD = "keyword"
    FLAG = "flag"
    AIFLAGS = "address flags"
    ALG_ENC = "encryption algorithm"
    ALG_AUTH = "authentication algorithm"
    POLICY = "policy"
    END = "end of input"


KEYWORDS = frozenset(
    {
        # commands
        "add",
        "delete",
        "deleteall",
        "get",
        "getspi",
        "flush",
        "dump",
        "exit",
        "quit",
        "bye",
        "spdadd",
        "spdupdate",
        "spddelete",
        "spddump",
        "spdflush",
        "tagged",
        # security protocols
        "ah",
        "esp",
        "ah-old",
        "esp-old",
        "esp-udp",
        "ipcomp",
        "tcp",
        # compression algorithms
        "oui",
        "deflate",
        "lzs",
        # modes and SA extensions
        "transport",
        "tunnel",
        "random-pad",
        "seq-pad",
        "zero-pad",
        "nocyclic-seq",
        "any",
    }
)

FLAGS = frozenset(
    {"-P", "-A", "-E", "-C", "-R", "-m", "-u", "-f", "-r", "-lh", "-ls", "-bh", "-bs", "-ctx"}
)


@dataclass(frozen=True)
class Token:
    kind: T
    text: str
    """What setkey's ``yytext`` shows in an error: the word, the flag, the quoted string's
    contents (setkey strips the quotes before it can complain), the policy text."""
    line: int
    start: int
    end: int
    value: int | str | None = None
    """DECSTRING: the int; HEXSTRING: the digits after ``0x``; QUOTED: the contents;
    ALG_*: the algorithm name; KEYWORD/FLAG: the canonical word."""

    @property
    def number(self) -> int:
        """A DECSTRING's value. The lexer stores it as an int, so a failure is a parser bug."""
        if not isinstance(self.value, int):
            raise TypeError(f"token {self.text!r} ({self.kind.name}) is not a number")
        return self.value

    def is_kw(self, *words: str) -> bool:
        return self.kind is T.KEYWORD and self.value in words

    def is_flag(self, *flags: str) -> bool:
        return self.kind is T.FLAG and self.value in flags


_WS = re.compile(r"[ \t\r\f\v]+")
_WORD = re.compile(r"[A-Za-z0-9:][A-Za-z0-9:%.\-]*")
_DIGITS_COMMAS = re.compile(r"[0-9,]+")
_DEC = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")
_FLAG = re.compile(r"-(?:ctx|lh|ls|bh|bs|[PAECRmufr]|[n46]+)")
_POLICY = re.compile(r"[A-Za-z0-9:.\-_/ \n\t][A-Za-z0-9:.%\-+_/ \n\t\]\[]*")


class IncompleteInput(SetkeySyntaxError):
    """The text ends inside a quoted string: more input may complete it (``-c`` mode)."""


def tokenize(text: str, first_line: int = 1) -> list[Token]:
    """All tokens of ``text`` followed by an ``END`` token. Raises ``SetkeySyntaxError``."""
    tokens: list[Token] = []
    pos = 0
    line = first_line
    expect_alg: T | None = None  # after -E / -A
    n = len(text)
    while pos < n:
        c = text[pos]
        if tokens and tokens[-1].is_flag("-P"):
            # flex's S_PL rule starts right after "-P": the blanks there belong to the policy
            # text (setkey's messages quote it as `` in ipsec ...'``), so they are not skipped.
            m = _POLICY.match(text, pos)
            if m:
                body = m.group(0)
                end_line = line + body.count("\n")
                tokens.append(Token(T.POLICY, body, end_line, pos, m.end(), body))
                line = end_line
                pos = m.end()
                continue
        if c == "\n":
            line += 1
            pos += 1
            continue
        m = _WS.match(text, pos)
        if m:
            pos = m.end()
            continue
        if c == "#":
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl
            continue
        start_line = line
        if c == ";":
            tokens.append(Token(T.EOT, ";", line, pos, pos + 1))
            pos += 1
            expect_alg = None
            continue
        if c in "/[]":
            kind = {"/": T.SLASH, "[": T.BLCL, "]": T.ELCL}[c]
            tokens.append(Token(kind, c, line, pos, pos + 1))
            pos += 1
            continue
        if c == '"':
            close = text.find('"', pos + 1)
            if close < 0:
                # flex finds no closing quote and falls to its catch-all rule, as here
                raise IncompleteInput(line, "Syntax error", '"')
            body = text[pos + 1 : close]
            tokens.append(Token(T.QUOTED, body, start_line, pos, close + 1, body))
            line += body.count("\n")
            pos = close + 1
            continue
        if c == "-":
            m = _FLAG.match(text, pos)
            if m is None:
                raise SetkeySyntaxError(line, "Syntax error", c)
            flag = m.group(0)
            # flex takes the longest match: "-lh" is one flag, "-n4" one set of address flags
            if flag[1] in "n46" and all(ch in "n46" for ch in flag[1:]):
                tokens.append(Token(T.AIFLAGS, flag, line, pos, m.end(), flag))
            else:
                tokens.append(Token(T.FLAG, flag, line, pos, m.end(), flag))
            expect_alg = {"-E": T.ALG_ENC, "-A": T.ALG_AUTH}.get(flag)
            pos = m.end()
            continue
        word_m = _WORD.match(text, pos)
        commas_m = _DIGITS_COMMAS.match(text, pos)
        word = word_m.group(0) if word_m else ""
        commas = commas_m.group(0) if commas_m else ""
        if not word and not commas:
            raise SetkeySyntaxError(line, "Syntax error", c)
        if len(commas) > len(word):
            tokens.append(Token(T.STRING, commas, line, pos, pos + len(commas), commas))
            pos += len(commas)
            expect_alg = None
            continue
        end = pos + len(word)
        if expect_alg is T.ALG_ENC and word in ENCRYPTION_NAMES:
            tokens.append(Token(T.ALG_ENC, word, line, pos, end, word))
        elif expect_alg is T.ALG_AUTH and word in AUTHENTICATION_NAMES:
            tokens.append(Token(T.ALG_AUTH, word, line, pos, end, word))
        elif _HEX.fullmatch(word):
            tokens.append(Token(T.HEXSTRING, word, line, pos, end, word[2:]))
        elif _DEC.fullmatch(word):
            tokens.append(Token(T.DECSTRING, word, line, pos, end, int(word)))
        elif word in KEYWORDS:
            canonical = "exit" if word in ("quit", "bye") else word
            tokens.append(Token(T.KEYWORD, word, line, pos, end, canonical))
        else:
            tokens.append(Token(T.STRING, word, line, pos, end, word))
        expect_alg = None
        pos = end
    tokens.append(Token(T.END, "", line, n, n))
    return tokens
