"""The pseudo-random function and plain hash of an IKE SA.

RFC 2409 section 4: "the HMAC version of the negotiated hash algorithm is used as a default
prf".  racoon never negotiates a separate PRF attribute, so the phase-1 Hash Algorithm attribute
(ids 1 md5, 2 sha1, 4 sha2-256, 5 sha2-384, 6 sha2-512) selects both the prf (HMAC) and the plain
hash used for the phase-1 IV and NAT-D.

A :class:`Prf` object is what the rest of the suite passes around, so a caller never has to
remember which hash an SA negotiated.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pyracoon.crypto.algorithms import HashAlgorithm, hash_by_ike_id

__all__ = ["Prf", "prf_for"]


@dataclass(frozen=True)
class Prf:
    """HMAC-<hash> as prf(key, msg), plus the plain hash of the same algorithm."""

    algorithm: HashAlgorithm

    @property
    def digest_size(self) -> int:
        """Output length of prf() and hash(), in bytes."""
        return self.algorithm.digest_size

    @property
    def hash_id(self) -> int:
        """The Oakley Hash Algorithm id."""
        return self.algorithm.ike_id

    def __call__(self, key: bytes, *data: bytes) -> bytes:
        """prf(key, data[0] | data[1] | ...) -- RFC 2409 section 4 / RFC 2104."""
        mac = hmac.new(key, digestmod=self.algorithm.hashlib_name)
        for part in data:
            mac.update(part)
        return mac.digest()

    def hash(self, *data: bytes) -> bytes:
        """The plain (un-keyed) hash of data[0] | data[1] | ... (used for IVs and NAT-D)."""
        digest = hashlib.new(self.algorithm.hashlib_name)
        for part in data:
            digest.update(part)
        return digest.digest()


def prf_for(hash_id: int) -> Prf:
    """The prf of an SA that negotiated Oakley Hash Algorithm ``hash_id``."""
    return Prf(hash_by_ike_id(hash_id))
