"""g^xy for MODP groups straight from OpenSSL's libcrypto, without re-proving the prime.

Why this module exists: ``cryptography`` builds a peer's DH public key through
``DHPublicNumbers.public_key()``, and for a prime that OpenSSL 3 does not know by name that runs
``DH_check`` -- a probabilistic primality proof of ``p`` (and of ``(p-1)/2``) -- on *every* call.
For the groups OpenSSL names (RFC 3526's modp_1536 and up) the check is skipped, but the
1024-bit group 2 of RFC 2409 section 6.2, the one the memo's racoon.conf (``dh_group modp1024``)
and most racoon set-ups use, is not named: measured on this project's machine, 39 ms per peer
key for group 2 and 22 ms for group 1, against 0.3 ms for the exponentiation itself. The groups
are fixed constants of RFC 2409/3526; proving their primes again per handshake buys nothing.

So the shared secret is computed by ``DH_compute_key_padded`` of the system's libcrypto, loaded
with :mod:`ctypes`: the arithmetic stays in OpenSSL (constant-time exponentiation with the
private value flagged ``BN_FLG_CONSTTIME``, as for any OpenSSL DH), and OpenSSL still applies its
cheap public-value check (``DH_check_pub_key``: 1 < y < p-1). pyracoon's own check of the peer
value (``pyracoon.crypto.dh.validate_public_value``) runs before this, as before.

Where no libcrypto can be loaded (a system without OpenSSL's shared library), :func:`available`
is false and ``pyracoon.crypto.dh`` falls back to ``cryptography``'s slower path: correct, only
slower. The ``DH_*`` functions are deprecated in OpenSSL 3.0 but present in every 1.1 and 3.x
release; ``EVP_PKEY_fromdata`` would need OSSL_PARAM arrays for the same result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

__all__ = ["available", "modp_shared_secret", "LibcryptoError"]

#: Environment variable that disables this path (a diagnostic aid, and how tests prove the
#: fallback): ``PYRACOON_NO_LIBCRYPTO=1``.
DISABLE_ENV = "PYRACOON_NO_LIBCRYPTO"

_CANDIDATES = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.3.dylib", "libcrypto.so")


class LibcryptoError(ValueError):
    """OpenSSL refused the computation (for DH: the peer's public value failed its check)."""


def _load() -> ctypes.CDLL | None:
    names = list(_CANDIDATES)
    found = ctypes.util.find_library("crypto")
    if found:
        names.insert(0, found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            _prototypes(lib)
        except AttributeError:  # too old (before 1.1.0: no DH_set0_*), or not OpenSSL
            continue
        return lib
    return None


def _prototypes(lib: ctypes.CDLL) -> None:
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.DH_new.restype = vp
    lib.DH_new.argtypes = []
    lib.DH_free.restype = None
    lib.DH_free.argtypes = [vp]
    lib.DH_set0_pqg.restype = ci
    lib.DH_set0_pqg.argtypes = [vp, vp, vp, vp]
    lib.DH_set0_key.restype = ci
    lib.DH_set0_key.argtypes = [vp, vp, vp]
    lib.DH_compute_key_padded.restype = ci
    lib.DH_compute_key_padded.argtypes = [cp, vp, vp]
    lib.BN_bin2bn.restype = vp
    lib.BN_bin2bn.argtypes = [cp, ci, vp]
    lib.BN_free.restype = None
    lib.BN_free.argtypes = [vp]
    lib.BN_clear_free.restype = None
    lib.BN_clear_free.argtypes = [vp]


@cache
def _lib() -> ctypes.CDLL | None:
    if os.environ.get(DISABLE_ENV):
        return None
    return _load()


def available() -> bool:
    """True when the shared secret can be computed here (libcrypto loaded)."""
    return _lib() is not None


def _bn(lib: ctypes.CDLL, value: bytes) -> int:
    bn = lib.BN_bin2bn(value, len(value), None)
    if not bn:
        raise MemoryError("BN_bin2bn failed")
    return int(bn)


def modp_shared_secret(
    prime: int, generator: int, private_value: int, public_value: bytes, peer_value: bytes
) -> bytes:
    """g^xy mod p, left-padded to the length of ``p`` (RFC 2409 section 5).

    ``private_value`` is our x, ``public_value`` our g^x (``DH_set0_key`` wants both),
    ``peer_value`` the peer's g^y, already checked for length and range by the caller.
    Raises :class:`LibcryptoError` when OpenSSL refuses the peer value, RuntimeError when the
    library is not available (check :func:`available` first).
    """
    lib = _lib()
    if lib is None:
        raise RuntimeError("libcrypto is not available")
    size = (prime.bit_length() + 7) // 8
    dh = lib.DH_new()
    if not dh:
        raise MemoryError("DH_new failed")
    peer = None
    try:
        p = _bn(lib, prime.to_bytes(size, "big"))
        g = _bn(lib, generator.to_bytes(max(1, (generator.bit_length() + 7) // 8), "big"))
        if lib.DH_set0_pqg(dh, p, None, g) != 1:  # on success dh owns p and g
            lib.BN_free(p)
            lib.BN_free(g)
            raise MemoryError("DH_set0_pqg failed")
        pub = _bn(lib, public_value)
        priv = _bn(lib, private_value.to_bytes(size, "big"))
        if lib.DH_set0_key(dh, pub, priv) != 1:  # on success dh owns both (and clears priv)
            lib.BN_free(pub)
            lib.BN_clear_free(priv)
            raise MemoryError("DH_set0_key failed")
        peer = _bn(lib, peer_value)
        out = ctypes.create_string_buffer(size)
        n = lib.DH_compute_key_padded(out, peer, dh)
        if n != size:
            raise LibcryptoError("OpenSSL's DH_check_pub_key refused the peer's public value")
        secret = out.raw
        ctypes.memset(out, 0, size)
        return secret
    finally:
        if peer:
            lib.BN_free(peer)
        lib.DH_free(dh)
