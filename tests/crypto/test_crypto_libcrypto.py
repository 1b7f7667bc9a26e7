"""g^xy through libcrypto's DH_compute_key_padded (pyracoon.crypto.libcrypto).

Why these tests: the fast path exists only because ``cryptography`` re-proves the modp768 and
modp1024 primes for every peer key. It must give the same secret as ``cryptography`` and as
Python's pow() (test only), keep OpenSSL's own public-value check, and really be the path taken
-- a silent fallback would only show as a 100-fold slowdown.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from pyracoon.crypto import dh, libcrypto
from pyracoon.crypto.errors import InvalidPublicValue
from pyracoon.crypto.groups import GROUPS, GroupKind

MODP = sorted(g.group_id for g in GROUPS.values() if g.kind is GroupKind.MODP and g.supported)


def test_libcrypto_loads_here() -> None:
    """CI machines have OpenSSL's shared library (the openssl package): the path must be used."""
    if not libcrypto.available() and not os.environ.get("CI"):
        pytest.skip("no libcrypto shared library on this machine")
    assert libcrypto.available()


@pytest.mark.parametrize("group_id", MODP)
def test_matches_pow(group_id: int) -> None:
    if not libcrypto.available():
        pytest.skip("no libcrypto")
    group = GROUPS[group_id]
    p, g = group.prime, group.generator
    assert p is not None and g is not None
    size = group.public_length
    x, y = secrets.randbelow(p - 3) + 2, secrets.randbelow(p - 3) + 2
    ours, peer = pow(g, x, p).to_bytes(size, "big"), pow(g, y, p).to_bytes(size, "big")
    secret = libcrypto.modp_shared_secret(p, g, x, ours, peer)
    assert secret == pow(g, x * y, p).to_bytes(size, "big")
    assert len(secret) == size


@pytest.mark.parametrize("bad", ["one", "p-1"])
def test_openssl_still_checks_the_peer_value(bad: str) -> None:
    if not libcrypto.available():
        pytest.skip("no libcrypto")
    group = GROUPS[2]
    p, g = group.prime, group.generator
    assert p is not None and g is not None
    x = secrets.randbelow(p - 3) + 2
    ours = pow(g, x, p).to_bytes(128, "big")
    peer = (1 if bad == "one" else p - 1).to_bytes(128, "big")
    with pytest.raises(libcrypto.LibcryptoError, match="DH_check_pub_key"):
        libcrypto.modp_shared_secret(p, g, x, ours, peer)


def test_keypair_uses_libcrypto_not_cryptography_public_numbers(monkeypatch) -> None:
    """With libcrypto there, building the peer key through cryptography never happens."""
    if not libcrypto.available():
        pytest.skip("no libcrypto")

    def refuse(*args, **kwargs):
        raise AssertionError("DHPublicNumbers used: the DH_check of the prime runs again")

    a, b = dh.generate_keypair(2), dh.generate_keypair(2)
    monkeypatch.setattr(dh, "_DHPublicNumbers", refuse)
    assert a.compute_shared_secret(b.public_value) == b.compute_shared_secret(a.public_value)


@pytest.mark.parametrize("group_id", [1, 2, 5, 14])
def test_same_secret_as_the_cryptography_fallback(group_id: int) -> None:
    """The fallback (no libcrypto: PYRACOON_NO_LIBCRYPTO=1) agrees with the fast path."""
    a, b = dh.generate_keypair(group_id), dh.generate_keypair(group_id)
    fast = a.compute_shared_secret(b.public_value)
    libcrypto._lib.cache_clear()
    try:
        os.environ[libcrypto.DISABLE_ENV] = "1"
        assert not libcrypto.available()
        slow = a.compute_shared_secret(b.public_value)
    finally:
        del os.environ[libcrypto.DISABLE_ENV]
        libcrypto._lib.cache_clear()
    assert fast == slow


def test_fallback_rejects_what_the_fast_path_rejects() -> None:
    code = (
        "from pyracoon.crypto import dh, libcrypto\n"
        "assert not libcrypto.available()\n"
        "a = dh.generate_keypair(2)\n"
        "try:\n"
        "    a.compute_shared_secret((1).to_bytes(128, 'big'))\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
    )
    env = dict(os.environ, **{libcrypto.DISABLE_ENV: "1"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "InvalidPublicValue", out.stderr
    with pytest.raises(InvalidPublicValue):
        dh.generate_keypair(2).compute_shared_secret((1).to_bytes(128, "big"))
