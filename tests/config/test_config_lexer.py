"""Token shapes of racoon.conf (racoon's cftoken.l)."""

from __future__ import annotations

import pytest

from pyracoon.config import ConfigError
from pyracoon.config.lexer import Kind, tokenize


def shapes(text: str) -> list[tuple[Kind, object]]:
    return [(t.kind, t.value) for t in tokenize(text, "t.conf")][:-1]


def test_words_numbers_addresses_by_longest_match() -> None:
    assert shapes("3des 500 10.0.0.1 fe80::1%eth0 ::1 deflate utf-16le") == [
        (Kind.WORD, "3des"), (Kind.NUMBER, 500), (Kind.ADDR, "10.0.0.1"),
        (Kind.ADDR, "fe80::1%eth0"), (Kind.ADDR, "::1"), (Kind.WORD, "deflate"),
        (Kind.WORD, "utf-16le"),
    ]


def test_hex_is_its_own_token() -> None:
    assert shapes("0x1f 0") == [(Kind.HEX, "0x1f"), (Kind.NUMBER, 0)]


def test_prefix_port_range_and_punctuation() -> None:
    assert shapes("10.0.0.0/24[500] [any] 10.0.0.1-10.0.0.9 { } ; ,") == [
        (Kind.ADDR, "10.0.0.0"), (Kind.PREFIX, 24), (Kind.PORT, 500), (Kind.PORTANY, "any"),
        (Kind.ADDR, "10.0.0.1"), (Kind.RANGE, "10.0.0.9"), (Kind.LBRACE, "{"),
        (Kind.RBRACE, "}"), (Kind.SEMI, ";"), (Kind.COMMA, ","),
    ]


def test_strings_have_no_escapes_and_comments_run_to_end_of_line() -> None:
    tokens = tokenize('path include "a\\b"; # "not a string"\nlog debug;', "t.conf")
    assert [(t.kind, t.value, t.line) for t in tokens[:3]] == [
        (Kind.WORD, "path", 1), (Kind.WORD, "include", 1), (Kind.STRING, "a\\b", 1)]
    assert (tokens[4].value, tokens[4].line) == ("log", 2)
    assert tokens[-1].kind is Kind.EOF and tokens[-1].text == "<EOF>"


def test_line_numbers_count_newlines_inside_strings() -> None:
    tokens = tokenize('"a\nb"\nx', "t.conf")
    assert (tokens[1].value, tokens[1].line) == ("x", 3)


@pytest.mark.parametrize(("text", "message"), [
    ('x "unterminated', "t.conf:1: unterminated string near '\"unterminated'"),
    ("a\n@", "t.conf:2: unexpected character near '@'"),
    ("[12", "t.conf:1: a port is written [NUMBER] (or [any] in sainfo) near '[12'"),
    ("/1234", "t.conf:1: a prefix is '/' followed by 1 to 3 digits near '/1234'"),
    ("- x", "t.conf:1: unexpected '-' near '- x'"),
])
def test_lexical_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        tokenize(text, "t.conf")
    assert str(info.value) == message
