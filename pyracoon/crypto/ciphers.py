"""Block ciphers for ISAKMP encryption (CBC mode, RFC 2409 appendix B).

Rows of :data:`pyracoon.crypto.algorithms.CIPHERS` name their ``cryptography`` class; this module
resolves it lazily and checks key lengths against the table.

Implementation notes (``cryptography`` 50):

* TripleDES, Blowfish, CAST5 and Camellia live in
  ``cryptography.hazmat.decrepit.ciphers.algorithms`` (the ``primitives`` aliases warn).
* Single DES is run as TripleDES with K1 = K2 = K3 (EDE with equal keys is single DES):
  ``cryptography`` has no DES class and its 8-byte TripleDES form is deprecated.
* AES is in ``cryptography.hazmat.primitives.ciphers.algorithms``.
* IDEA and RC5 have Oakley ids but no implementation here (racoon builds them only when
  OpenSSL has them); they raise :class:`UnsupportedAlgorithm`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, modes
from cryptography.hazmat.primitives.ciphers import Cipher as _CryptoCipher

from pyracoon.crypto.algorithms import CIPHERS, Cipher
from pyracoon.crypto.errors import (
    InvalidCiphertext,
    InvalidIV,
    InvalidKeyLength,
    UnsupportedAlgorithm,
)

__all__ = ["BlockCipher", "ike_cipher", "ike_key_length"]


@cache
def _implementation(path: str) -> Callable[[bytes], BlockCipherAlgorithm]:
    """The ``cryptography`` cipher class a table row names as ``module:Class``.

    algorithms.py keeps names, not classes, so that importing the table stays cheap.
    """
    module, _, name = path.partition(":")
    factory: Callable[[bytes], BlockCipherAlgorithm] = getattr(
        importlib.import_module(module), name
    )
    return factory


def ike_cipher(ike_id: int) -> Cipher:
    """The table row of a phase-1 Encryption Algorithm value, if we can compute it."""
    row = CIPHERS.by("ike_id", ike_id)
    if row.implementation is None:
        raise UnsupportedAlgorithm(f"cipher {row.name}", field="encryption_algorithm")
    return row


def ike_key_length(cipher: Cipher, key_length_attribute: int | None) -> int:
    """Key length in **bytes** from the optional Key-Length attribute (bits).

    RFC 2409 appendix A forbids the attribute for fixed-key ciphers and RFC 3602 section 5.3
    requires it for AES; racoon always sends it for variable-key ciphers but, receiving, falls
    back to the cipher's default length when it is absent.  This function does the same and,
    leniently, accepts a Key-Length on a fixed-key cipher when it states the fixed length.
    """
    bits = cipher.default_bits if key_length_attribute is None else key_length_attribute
    if not cipher.accepts_key_bits(bits):
        raise InvalidKeyLength(cipher.name, bits, cipher.describe_key_bits())
    return bits // 8


class BlockCipher:
    """One cipher with one key, doing CBC over whole blocks (no padding: see padding.py)."""

    def __init__(self, cipher: Cipher, key: bytes) -> None:
        if cipher.implementation is None:
            raise UnsupportedAlgorithm(f"cipher {cipher.name}", field="encryption_algorithm")
        if not cipher.accepts_key_bits(len(key) * 8):
            raise InvalidKeyLength(cipher.name, len(key) * 8, cipher.describe_key_bits())
        self.cipher = cipher
        self.block_size = cipher.block_size
        material = key * 3 if cipher.name == "des" else key  # DES = 3DES with K1=K2=K3
        self._algorithm = _implementation(cipher.implementation)(material)

    def _check(self, iv: bytes, data: bytes) -> None:
        if len(iv) != self.block_size:
            raise InvalidIV(len(iv), self.block_size)
        if not data or len(data) % self.block_size:
            raise InvalidCiphertext(len(data), self.block_size)

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        """CBC-encrypt whole blocks."""
        self._check(iv, plaintext)
        encryptor = _CryptoCipher(self._algorithm, modes.CBC(iv)).encryptor()
        return encryptor.update(plaintext) + encryptor.finalize()

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        """CBC-decrypt whole blocks."""
        self._check(iv, ciphertext)
        decryptor = _CryptoCipher(self._algorithm, modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()
