"""setkey's lexer: flex's longest-match rules, context after -E/-A/-P, line numbers."""

from __future__ import annotations

import pytest

from pyracoon.setkey.errors import SetkeySyntaxError
from pyracoon.setkey.lexer import IncompleteInput, T, tokenize


def kinds(text: str) -> list[tuple[T, str]]:
    return [(t.kind, t.text) for t in tokenize(text) if t.kind is not T.END]


def test_longest_match_decides_between_numbers_words_and_hex() -> None:
    assert kinds("256 10.0.0.1 0x111 0x111g 8,0 espx esp") == [
        (T.DECSTRING, "256"),
        (T.STRING, "10.0.0.1"),
        (T.HEXSTRING, "0x111"),
        (T.STRING, "0x111g"),
        (T.STRING, "8,0"),
        (T.STRING, "espx"),
        (T.KEYWORD, "esp"),
    ]


def test_values_of_literal_tokens() -> None:
    toks = tokenize('42 0xAbC "a b;#c"')
    assert toks[0].value == 42
    assert toks[1].value == "AbC"
    assert toks[2].kind is T.QUOTED and toks[2].value == "a b;#c"


def test_algorithm_names_only_after_their_flag() -> None:
    assert kinds("-E null -A null null") == [
        (T.FLAG, "-E"),
        (T.ALG_ENC, "null"),
        (T.FLAG, "-A"),
        (T.ALG_AUTH, "null"),
        (T.STRING, "null"),
    ]
    assert kinds("-E hmac-md5") == [(T.FLAG, "-E"), (T.STRING, "hmac-md5")]
    assert kinds("-A 3des-cbc") == [(T.FLAG, "-A"), (T.STRING, "3des-cbc")]


def test_flags_and_address_flags() -> None:
    assert kinds("-4n -6 -n -lh -ls -bh -bs -ctx -m -u -f -r -R -C") == [
        (T.AIFLAGS, "-4n"),
        (T.AIFLAGS, "-6"),
        (T.AIFLAGS, "-n"),
        (T.FLAG, "-lh"),
        (T.FLAG, "-ls"),
        (T.FLAG, "-bh"),
        (T.FLAG, "-bs"),
        (T.FLAG, "-ctx"),
        (T.FLAG, "-m"),
        (T.FLAG, "-u"),
        (T.FLAG, "-f"),
        (T.FLAG, "-r"),
        (T.FLAG, "-R"),
        (T.FLAG, "-C"),
    ]


def test_policy_is_one_token_up_to_the_semicolon_and_counts_lines() -> None:
    toks = tokenize("spdadd a b any -P out ipsec\n  esp/tunnel/1.2.3.4-5.6.7.8/require;\nspddump;")
    policy = [t for t in toks if t.kind is T.POLICY][0]
    assert policy.text == " out ipsec\n  esp/tunnel/1.2.3.4-5.6.7.8/require"  # blank kept, as flex
    assert policy.line == 2
    eots = [t for t in toks if t.kind is T.EOT]
    assert [t.line for t in eots] == [2, 3]


def test_comments_and_line_numbers() -> None:
    toks = tokenize("# one\nflush; # two ; still comment\n\n  dump ;")
    assert [(t.text, t.line) for t in toks if t.kind is not T.END] == [
        ("flush", 2),
        (";", 2),
        ("dump", 4),
        (";", 4),
    ]


def test_quit_and_bye_are_exit() -> None:
    assert [t.value for t in tokenize("quit bye exit") if t.kind is T.KEYWORD] == ["exit"] * 3


def test_first_line_offset() -> None:
    assert tokenize("\nflush;", first_line=10)[0].line == 11


@pytest.mark.parametrize("text,bad", [("add @", "@"), ("- m", "-"), ("-x", "-"), ("a & b", "&")])
def test_characters_outside_the_language(text: str, bad: str) -> None:
    with pytest.raises(SetkeySyntaxError) as e:
        tokenize(text)
    assert e.value.message == "Syntax error"
    assert e.value.token == bad


def test_unterminated_quote_is_incomplete_input() -> None:
    with pytest.raises(IncompleteInput):
        tokenize('add a b esp 1 -E des-cbc "abc')
