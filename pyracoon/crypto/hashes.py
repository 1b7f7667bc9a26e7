"""The authentication hashes of IKEv1 exchanges: HASH_I / HASH_R (phase 1), HASH(1), HASH(2),
HASH(3) and HASH(4) of quick mode, and the informational HASH(1).

RFC 2409 sections 5 (main and aggressive mode), 5.5 (quick mode), 5.7 (informational), and
RFC 2409; racoon's isakmp_quick.c.  Conventions, as racoon uses them:

* ``SAi_b`` is the body of the **initiator's** SA payload (no 4-byte generic header) in both
  HASH_I and HASH_R;
* ``IDii_b`` / ``IDir_b`` is ``type | protocol | port | data``, again without the generic header;
* the quick-mode and informational hashes cover the payloads that follow the HASH payload
  *with* their generic headers, exactly as they are on the wire (the caller passes those
  bytes; the next-payload field of the last one is part of them);
* M-ID enters as 4 bytes in network order.

NAT-D (RFC 3947 section 3.2) is here too: it is the plain hash of the
cookies, an address and a port.

Comparison of a received HASH with the computed one is constant-time (:func:`verify_hash`).
"""

from __future__ import annotations

import hmac

from pyracoon.crypto.errors import HashMismatch
from pyracoon.crypto.prf import Prf

__all__ = [
    "hash_i",
    "hash_r",
    "informational_hash",
    "message_id_bytes",
    "nat_d",
    "quick_mode_hash1",
    "quick_mode_hash2",
    "quick_mode_hash3",
    "quick_mode_hash4",
    "verify_hash",
]


def message_id_bytes(m_id: int | bytes) -> bytes:
    """M-ID as the 4 network-order bytes of the ISAKMP header."""
    if isinstance(m_id, bytes):
        if len(m_id) != 4:
            raise ValueError(f"M-ID must be 4 bytes, got {len(m_id)}")
        return m_id
    return m_id.to_bytes(4, "big")


def hash_i(
    prf: Prf,
    skeyid: bytes,
    g_xi: bytes,
    g_xr: bytes,
    cky_i: bytes,
    cky_r: bytes,
    sai_b: bytes,
    idii_b: bytes,
) -> bytes:
    """The initiator's proof of identity (also what SIG_I signs)."""
    # RFC 2409 s.5: HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
    return prf(skeyid, g_xi, g_xr, cky_i, cky_r, sai_b, idii_b)


def hash_r(
    prf: Prf,
    skeyid: bytes,
    g_xr: bytes,
    g_xi: bytes,
    cky_r: bytes,
    cky_i: bytes,
    sai_b: bytes,
    idir_b: bytes,
) -> bytes:
    """The responder's proof of identity (also what SIG_R signs)."""
    # RFC 2409 s.5: HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
    return prf(skeyid, g_xr, g_xi, cky_r, cky_i, sai_b, idir_b)


def quick_mode_hash1(prf: Prf, skeyid_a: bytes, m_id: int | bytes, payloads: bytes) -> bytes:
    """HASH(1) of the first quick-mode message: everything after the HASH payload."""
    # RFC 2409 s.5.5: HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
    return prf(skeyid_a, message_id_bytes(m_id), payloads)


def quick_mode_hash2(
    prf: Prf, skeyid_a: bytes, m_id: int | bytes, ni_b: bytes, payloads: bytes
) -> bytes:
    """HASH(2) of the second quick-mode message; binds the initiator's nonce."""
    # RFC 2409 s.5.5: HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
    return prf(skeyid_a, message_id_bytes(m_id), ni_b, payloads)


def quick_mode_hash3(
    prf: Prf, skeyid_a: bytes, m_id: int | bytes, ni_b: bytes, nr_b: bytes
) -> bytes:
    """HASH(3) of the third quick-mode message: liveness proof over both nonces."""
    # RFC 2409 s.5.5: HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
    return prf(skeyid_a, b"\x00", message_id_bytes(m_id), ni_b, nr_b)


def quick_mode_hash4(prf: Prf, skeyid_a: bytes, m_id: int | bytes, notify: bytes) -> bytes:
    """HASH(4) of the CONNECTED notify sent when the commit bit is set (racoon's isakmp_quick.c)."""
    # RFC 2408 s.4.8 / racoon isakmp_quick.c: HASH(4) = prf(SKEYID_a, M-ID | N)
    return prf(skeyid_a, message_id_bytes(m_id), notify)


def informational_hash(prf: Prf, skeyid_a: bytes, m_id: int | bytes, payloads: bytes) -> bytes:
    """HASH(1) of an informational exchange protected by an IKE SA."""
    # RFC 2409 s.5.7: HASH(1) = prf(SKEYID_a, M-ID | N/D)
    return prf(skeyid_a, message_id_bytes(m_id), payloads)


def nat_d(prf: Prf, cky_i: bytes, cky_r: bytes, address: bytes, port: int) -> bytes:
    """NAT-D payload data for one address (4 or 16 bytes, network order) and UDP port."""
    # RFC 3947 s.3.2: HASH = HASH(CKY-I | CKY-R | IP | Port), the plain negotiated hash
    return prf.hash(cky_i, cky_r, address, port.to_bytes(2, "big"))


def digests_equal(received: bytes, computed: bytes) -> bool:
    """Whether a HASH or MAC from the peer equals ours, in time independent of where they differ.

    The one comparison of secrets-derived values in pyracoon: a plain ``==`` stops at the first
    differing byte and tells an attacker how much of a forged HASH was right. Every HASH payload
    check goes through here (``tests/crypto/test_crypto_constant_time.py`` looks for any other).
    """
    return hmac.compare_digest(bytes(received), bytes(computed))


def verify_hash(which: str, received: bytes, computed: bytes) -> None:
    """Raise :class:`HashMismatch` unless ``received == computed`` (constant time)."""
    if not digests_equal(received, computed):
        raise HashMismatch(which, received, computed)
