"""Typed errors of the Oakley crypto suite.

Every failure carries the field it concerns and, where it helps a person reading a log, the
values each side had.  The engine maps them onto ISAKMP notify types (RFC 2408 section 3.14.1):
a bad KE payload is INVALID-KEY-INFORMATION, a HASH that does not match is INVALID-HASH-INFORMATION,
a signature that does not verify is INVALID-SIGNATURE, and so on.  That mapping belongs to the
engine; this module only says *what* went wrong.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by :mod:`pyracoon.crypto`."""

    #: Name of the protocol field the error is about (``"KE"``, ``"HASH_I"``, ``"padding"``...).
    field: str

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownAlgorithm(CryptoError):
    """A lookup in an algorithm table found nothing (unknown id or name)."""

    def __init__(self, table: str, key: str, value: object) -> None:
        super().__init__(f"unknown {table} with {key}={value!r}", field=key)
        self.table = table
        self.key = key
        self.value = value


class UnsupportedAlgorithm(CryptoError):
    """The algorithm is known by number but this implementation cannot compute it."""

    def __init__(self, what: str, *, field: str) -> None:
        super().__init__(f"{what} is not supported by this implementation", field=field)


class InvalidKeyLength(CryptoError):
    """A key of a length the algorithm does not accept (bits, as in the Key-Length attribute)."""

    def __init__(self, algorithm: str, bits: int, allowed: str) -> None:
        super().__init__(
            f"{algorithm}: key length {bits} bits not allowed (allowed: {allowed})",
            field="key_length",
        )
        self.algorithm = algorithm
        self.bits = bits


class InvalidPublicValue(CryptoError):
    """The peer's Diffie-Hellman public value (KE payload data) is unusable.

    ``expected_length``/``actual_length`` are set when the length is wrong (RFC 2409 section 5:
    the value is padded to the group's length), ``reason`` says what else is wrong (out of range,
    not on the curve).
    """

    def __init__(
        self,
        group: int,
        reason: str,
        *,
        expected_length: int | None = None,
        actual_length: int | None = None,
    ) -> None:
        super().__init__(f"DH group {group}: peer public value {reason}", field="KE")
        self.group = group
        self.reason = reason
        self.expected_length = expected_length
        self.actual_length = actual_length


class InvalidCiphertext(CryptoError):
    """Ciphertext whose length is not a positive multiple of the cipher's block size."""

    def __init__(self, length: int, block_size: int) -> None:
        super().__init__(
            f"encrypted body of {length} bytes is not a positive multiple of the "
            f"{block_size}-byte block",
            field="encrypted_body",
        )
        self.length = length
        self.block_size = block_size


class InvalidPadding(CryptoError):
    """strict_check is on and the trailing pad-length byte is impossible."""

    def __init__(self, pad_length: int, body_length: int, offset: int) -> None:
        super().__init__(
            f"pad length {pad_length} at offset {offset} does not fit a body of "
            f"{body_length} bytes",
            field="padding",
        )
        self.pad_length = pad_length
        self.body_length = body_length
        self.offset = offset


class InvalidIV(CryptoError):
    """An IV of the wrong length was handed to a CBC state."""

    def __init__(self, length: int, block_size: int) -> None:
        super().__init__(f"IV of {length} bytes for a {block_size}-byte block cipher", field="IV")


class StaleDecryption(CryptoError):
    """A decrypted message was committed to a CBC state that moved on since it was decrypted."""

    def __init__(self) -> None:
        super().__init__(
            "the CBC state changed between decrypt() and commit(); the message is stale",
            field="IV",
        )


class HashMismatch(CryptoError):
    """A received HASH payload (HASH_I, HASH_R, HASH(1..4)) differs from the computed one."""

    def __init__(self, which: str, received: bytes, computed: bytes) -> None:
        super().__init__(
            f"{which} mismatch: received {received.hex()}, computed {computed.hex()}", field=which
        )
        self.received = received
        self.computed = computed


class InvalidSignature(CryptoError):
    """A SIG payload does not verify with the peer's public key."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"signature does not verify: {reason}", field="SIG")
        self.reason = reason
