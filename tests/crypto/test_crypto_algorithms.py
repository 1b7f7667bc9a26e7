"""The algorithm table: numbers from racoon.conf(5), pfkeyv2.h and setkey(8) (ipsec-tools
0.8.2), lookups by every key, and the promise that it imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    HASHES,
    IPCOMP_ALGORITHMS,
    auth_by_sadb_id,
    cipher_by_ike_id,
    cipher_by_sadb_id,
    hash_by_ike_id,
)
from pyracoon.crypto.errors import UnknownAlgorithm

# racoon.conf(5): proposal: Oakley encryption ids
PHASE1_CIPHERS = {"des": 1, "idea": 2, "blowfish": 3, "rc5": 4, "3des": 5, "cast128": 6,
                  "aes": 7, "camellia": 8}  # fmt: skip
# racoon.conf(5): sainfo: ESP transform ids
ESP_IDS = {"des_iv64": 1, "des": 2, "3des": 3, "rc5": 4, "idea": 5, "cast128": 6, "blowfish": 7,
           "3idea": 8, "des_iv32": 9, "rc4": 10, "null": 11, "aes": 12, "camellia": 22,
           "twofish": 253}  # fmt: skip
# pfkeyv2.h: SADB ealg numbers
SADB_EALG = {"des": 2, "3des": 3, "cast128": 6, "blowfish": 7, "null": 11, "aes": 12,
             "aes-ctr": 13, "camellia": 22, "serpent": 252, "twofish": 253}  # fmt: skip
# setkey(8): algorithms: kernel key ranges (bits)
KEY_BITS = {"des": (64, 64), "3des": (192, 192), "blowfish": (40, 448), "cast128": (40, 128),
            "aes": (128, 256), "camellia": (128, 256), "null": (0, 0)}  # fmt: skip


@pytest.mark.parametrize("name,ike_id", sorted(PHASE1_CIPHERS.items()))
def test_phase1_cipher_ids(name: str, ike_id: int) -> None:
    assert cipher_by_ike_id(ike_id).name == name
    assert CIPHERS.by("conf_names", name).ike_id == ike_id


@pytest.mark.parametrize("name,esp_id", sorted(ESP_IDS.items()))
def test_esp_transform_ids(name: str, esp_id: int) -> None:
    assert CIPHERS.by("esp_id", esp_id).name == name
    assert CIPHERS.by("conf_names", name if name != "null" else "null_enc").esp_id == esp_id


@pytest.mark.parametrize("name,sadb_id", sorted(SADB_EALG.items()))
def test_sadb_ealg_ids(name: str, sadb_id: int) -> None:
    assert cipher_by_sadb_id(sadb_id).name == name


@pytest.mark.parametrize("name,bits", sorted(KEY_BITS.items()))
def test_key_lengths(name: str, bits: tuple[int, int]) -> None:
    row = CIPHERS.by("name", name)
    assert (row.min_bits, row.max_bits) == bits
    assert row.accepts_key_bits(bits[0]) and row.accepts_key_bits(bits[1])
    assert not row.accepts_key_bits(bits[1] + 8)


def test_variable_key_ciphers() -> None:
    """Variable-key ciphers default to 128 and always send Key-Length (racoon.conf(5): proposal)."""
    for name in ("blowfish", "cast128", "aes", "camellia"):
        row = CIPHERS.by("name", name)
        assert row.variable_key and row.default_bits == 128
    for name in ("des", "3des"):
        assert not CIPHERS.by("name", name).variable_key
    aes = CIPHERS.by("name", "aes")
    assert not aes.accepts_key_bits(160) and aes.describe_key_bits() == "128/192/256"
    blowfish = CIPHERS.by("name", "blowfish")
    assert blowfish.accepts_key_bits(48) and not blowfish.accepts_key_bits(44)
    assert blowfish.describe_key_bits() == "40-448"


def test_names_across_tools() -> None:
    aes = CIPHERS.by("setkey_names", "rijndael-cbc")
    assert aes is CIPHERS.by("setkey_names", "AES-CBC") is CIPHERS.by("xfrm_name", "cbc(aes)")
    assert aes is CIPHERS.by("conf_names", "rijndael")
    assert (aes.ike_id, aes.esp_id, aes.sadb_id, aes.block_size) == (7, 12, 12, 16)
    assert CIPHERS.by("xfrm_name", "cbc(des3_ede)").name == "3des"
    assert CIPHERS.by("setkey_names", "simple").name == "null"
    # shared SADB number: the canonical row wins
    assert CIPHERS.by("sadb_id", 2).name == "des"
    assert CIPHERS.by("esp_id", 9).sadb_id == 2


def test_every_ike_cipher_with_an_implementation_is_a_block_cipher() -> None:
    for row in CIPHERS:
        if row.implementation is not None:
            assert row.ike_id is not None and row.block_size in (8, 16), row.name


# racoon.conf(5) (hash ids, auth attribute), pfkeyv2.h (SADB aalg), setkey(8) (key bits)
AUTH = [
    # name, ike hash, auth attribute, AH id, sadb, setkey, key bits
    ("hmac-md5", 1, 1, 2, 2, "hmac-md5", 128),
    ("hmac-sha1", 2, 2, 3, 3, "hmac-sha1", 160),
    ("hmac-sha256", 4, 5, 5, 5, "hmac-sha256", 256),
    ("hmac-sha384", 5, 6, 6, 6, "hmac-sha384", 384),
    ("hmac-sha512", 6, 7, 7, 7, "hmac-sha512", 512),
    ("keyed-md5", None, None, None, 249, "keyed-md5", 128),
    ("keyed-sha1", None, None, None, 250, "keyed-sha1", 160),
    ("hmac-ripemd160", None, 8, 8, 8, "hmac-ripemd160", 160),
    ("aes-xcbc-mac", None, 9, 9, 9, "aes-xcbc-mac", 128),
]


@pytest.mark.parametrize("name,ike,attr,ah,sadb,setkey,bits", AUTH)
def test_auth_algorithms(name, ike, attr, ah, sadb, setkey, bits) -> None:
    row = auth_by_sadb_id(sadb)
    assert (row.name, row.ike_hash_id, row.auth_attribute, row.ah_id) == (name, ike, attr, ah)
    assert AUTH_ALGORITHMS.by("setkey_names", setkey) is row
    assert row.key_bits == bits
    if attr is not None:
        assert AUTH_ALGORITHMS.by("auth_attribute", attr) is row


def test_auth_aliases_and_special_rows() -> None:
    assert AUTH_ALGORITHMS.by("setkey_names", "hmac-sha2-256").name == "hmac-sha256"
    assert AUTH_ALGORITHMS.by("conf_names", "hmac_sha2_256").sadb_id == 5
    assert AUTH_ALGORITHMS.by("conf_names", "non_auth").sadb_id == 0
    assert AUTH_ALGORITHMS.by("sadb_id", 251).name == "null"
    tcp = AUTH_ALGORITHMS.by("setkey_names", "tcp-md5")
    assert (tcp.sadb_id, tcp.min_bits, tcp.max_bits) == (252, 8, 640)


def test_hashes_and_ipcomp() -> None:
    assert [hash_by_ike_id(i).name for i in (1, 2, 4, 5, 6)] == [
        "md5", "sha1", "sha256", "sha384", "sha512"
    ]  # fmt: skip
    assert HASHES.by("conf_names", "sha2_384").digest_size == 48
    assert {(c.name, c.ipcomp_id, c.sadb_id) for c in IPCOMP_ALGORITHMS} == {
        ("oui", 1, 1), ("deflate", 2, 2), ("lzs", 3, 3)
    }  # fmt: skip


def test_unknown_lookups_are_typed() -> None:
    with pytest.raises(UnknownAlgorithm) as excinfo:
        cipher_by_ike_id(99)
    assert (excinfo.value.table, excinfo.value.key, excinfo.value.value) == ("cipher", "ike_id", 99)
    with pytest.raises(UnknownAlgorithm):
        CIPHERS.by("no_such_column", 1)
    assert CIPHERS.get("setkey_names", "rot13") is None


def test_table_imports_nothing_heavy() -> None:
    """setkey and the kernel code import the table; it must not pull in cryptography."""
    code = (
        "import sys, pyracoon.crypto.algorithms;"
        "assert 'cryptography' not in sys.modules, sorted(m for m in sys.modules if 'crypto' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
