"""The CBC state of an ISAKMP SA: which IV the next encrypted message uses.

RFC 2409 appendix B:

* the first phase-1 IV is ``hash(g^xi | g^xr)``; after each message the IV becomes the last
  ciphertext block of that message, *in both directions* (one chain per exchange);
* a message we send moves the chain at once;
* a message we receive moves it only once it **checks out** (decrypts, parses, its HASH / SIG
  verifies): a forged or corrupted datagram must not desynchronise us.  :meth:`CbcState.decrypt`
  therefore returns a :class:`Decrypted` carrying the would-be next IV, and the caller calls
  :meth:`CbcState.commit` after its checks;
* each quick mode / informational exchange gets its own state, seeded from the phase-1 state's
  current IV and the M-ID (:meth:`CbcState.for_message_id`); the phase-1 chain is not moved by
  them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from pyracoon.crypto.ciphers import BlockCipher
from pyracoon.crypto.errors import InvalidIV, StaleDecryption
from pyracoon.crypto.iv import phase1_iv, phase2_iv
from pyracoon.crypto.padding import RACOON_DEFAULT_PADDING, PaddingPolicy, pad, unpad
from pyracoon.crypto.prf import Prf

__all__ = ["CbcState", "Decrypted"]


@dataclass(frozen=True)
class Decrypted:
    """A received message decrypted but not yet accepted."""

    #: The decrypted body; padding stripped only under strict_check.
    plaintext: bytes
    #: The IV the state will hold once this message is committed (its last ciphertext block).
    next_iv: bytes
    #: The IV the message was decrypted with; commit refuses if the state moved on since.
    iv: bytes


class CbcState:
    """One CBC chain: a cipher, its key, and the current IV."""

    def __init__(self, cipher: BlockCipher, iv: bytes) -> None:
        if len(iv) != cipher.block_size:
            raise InvalidIV(len(iv), cipher.block_size)
        self.cipher = cipher
        self._iv = iv

    @classmethod
    def for_phase1(cls, cipher: BlockCipher, prf: Prf, g_xi: bytes, g_xr: bytes) -> CbcState:
        """The chain of an IKE SA, starting at hash(g^xi | g^xr)."""
        return cls(cipher, phase1_iv(prf, g_xi, g_xr, cipher.block_size))

    def for_message_id(self, prf: Prf, m_id: int | bytes) -> CbcState:
        """A new chain for the quick mode / informational exchange ``m_id``."""
        return CbcState(self.cipher, phase2_iv(prf, self._iv, m_id, self.cipher.block_size))

    @property
    def iv(self) -> bytes:
        """The IV the next message (sent or received) is processed with."""
        return self._iv

    def encrypt(
        self,
        body: bytes,
        policy: PaddingPolicy = RACOON_DEFAULT_PADDING,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> bytes:
        """Pad and encrypt an outgoing body; the chain moves to its last block at once."""
        ciphertext = self.cipher.encrypt(
            self._iv, pad(body, self.cipher.block_size, policy, random_bytes)
        )
        self._iv = ciphertext[-self.cipher.block_size :]
        return ciphertext

    def decrypt(
        self, ciphertext: bytes, policy: PaddingPolicy = RACOON_DEFAULT_PADDING
    ) -> Decrypted:
        """Decrypt an incoming body without moving the chain (see :meth:`commit`)."""
        plaintext = self.cipher.decrypt(self._iv, ciphertext)
        return Decrypted(
            unpad(plaintext, policy), ciphertext[-self.cipher.block_size :], self._iv
        )

    def commit(self, decrypted: Decrypted) -> None:
        """Accept a decrypted message: the chain moves to its last ciphertext block."""
        if decrypted.iv != self._iv:
            raise StaleDecryption()
        self._iv = decrypted.next_iv
