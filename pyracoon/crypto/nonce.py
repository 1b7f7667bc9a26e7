"""Nonces and cookies: the random values an exchange contributes (RFC 2409 section 5,
RFC 2408 section 2.5.3).  All from ``os.urandom`` (the kernel CSPRNG).
"""

from __future__ import annotations

import os

from pyracoon.crypto.errors import CryptoError

__all__ = ["NONCE_MAX", "NONCE_MIN", "generate_cookie", "generate_nonce", "validate_nonce"]

#: RFC 2409 section 5: "The length of nonce payload MUST be between 8 and 256 bytes inclusive."
NONCE_MIN = 8
NONCE_MAX = 256
#: racoon's default ``nonce_size``.
DEFAULT_NONCE_SIZE = 16


class InvalidNonce(CryptoError):
    """A nonce whose length is outside 8..256 bytes."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"nonce of {length} bytes (must be {NONCE_MIN}..{NONCE_MAX})", field="NONCE"
        )
        self.length = length


def validate_nonce(data: bytes) -> bytes:
    """Return ``data`` if it is a valid Ni_b / Nr_b, else raise :class:`InvalidNonce`."""
    if not NONCE_MIN <= len(data) <= NONCE_MAX:
        raise InvalidNonce(len(data))
    return data


def generate_nonce(size: int = DEFAULT_NONCE_SIZE) -> bytes:
    """A fresh nonce of ``size`` bytes."""
    if not NONCE_MIN <= size <= NONCE_MAX:
        raise InvalidNonce(size)
    return os.urandom(size)


def generate_cookie() -> bytes:
    """A fresh 8-byte ISAKMP cookie, never all zero (zero means "not yet known", RFC 2408 3.1)."""
    while True:
        cookie = os.urandom(8)
        if any(cookie):
            return cookie
