"""Whatever the input, the parser returns a Config or raises ConfigError -- never a traceback."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.config import Config, ConfigError, parse_string

WORDS = [
    "remote", "sainfo", "anonymous", "clientaddr", "inherit", "proposal", "exchange_mode", "main",
    "aggressive", "encryption_algorithm", "hash_algorithm", "authentication_method",
    "authentication_algorithm", "compression_algorithm", "dh_group", "pfs_group", "lifetime",
    "time", "byte", "sec", "min", "KB", "aes", "3des", "sha1", "hmac_sha1", "deflate",
    "pre_shared_key", "rsasig", "modp1024", "address", "subnet", "fqdn", "asn1dn", "keyid", "tag",
    "any", "tcp", "icmp", "from", "group", "listen", "isakmp", "adminsock", "timer", "counter",
    "padding", "path", "include", "log", "debug", "on", "off", "yes", "force", "my_identifier",
    "peers_identifier", "certificate_type", "x509", "plain_rsa", "mode_cfg", "dns4", "privsep",
    "{", "}", ";", ",", '"x"', '"CN=a"', "10.0.0.1", "::1", "/24", "[500]", "[any]", "-10.0.0.9",
    "0x1f", "5", "128", "#c\n", "\n", "@", ".",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_token_soup_never_crashes(words: list[str]) -> None:
    try:
        result = parse_string(" ".join(words), "fuzz.conf")
    except ConfigError as error:
        assert error.file == "fuzz.conf" and error.line >= 1
    else:
        assert isinstance(result, Config)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    try:
        parse_string(text, "fuzz.conf")
    except ConfigError:
        pass


SEED = """path include "/etc/racoon";
remote anonymous { exchange_mode main,aggressive; my_identifier fqdn "a.example";
  peers_identifier asn1dn "CN=*"; nat_traversal on; lifetime time 1 hour;
  proposal { authentication_method rsasig; encryption_algorithm aes 256;
             hash_algorithm sha1; dh_group 2; } }
sainfo address 10.0.0.0/24 [any] tcp address 10.0.1.1 any from fqdn "p" {
  pfs_group 2; lifetime time 3 min; encryption_algorithm 3des, aes 128;
  authentication_algorithm hmac_sha1; compression_algorithm deflate; }
listen { isakmp 127.0.0.1 [500]; adminsock "/r.sock" "root" "wheel" 660; }
"""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["delete", "duplicate", "replace"]),
                          st.integers(min_value=0, max_value=200), st.sampled_from(WORDS)),
                max_size=3))
def test_mutated_seed_never_crashes(edits: list[tuple[str, int, str]]) -> None:
    words = SEED.split(" ")
    for operation, index, word in edits:
        index %= len(words)
        if operation == "delete" and len(words) > 1:
            del words[index]
        elif operation == "duplicate":
            words.insert(index, words[index])
        else:
            words[index] = word
    try:
        parse_string(" ".join(words), "fuzz.conf")
    except ConfigError:
        pass


def test_unmutated_seed_parses() -> None:
    config = parse_string(SEED)
    assert len(config.remotes) == 1 and len(config.sainfos) == 1
