"""Initialization vectors of ISAKMP encryption (RFC 2409 appendix B).

* Phase 1: ``hash(g^xi | g^xr)`` with the *plain* negotiated hash (not the HMAC), truncated to
  the cipher block.  CBC then chains across messages (see :mod:`pyracoon.crypto.cbc`).
* Phase 2 and informational exchanges: ``hash(last phase-1 CBC block | M-ID)`` truncated, fresh
  for every M-ID; inside one quick mode CBC chains again.
"""

from __future__ import annotations

from pyracoon.crypto.hashes import message_id_bytes
from pyracoon.crypto.prf import Prf

__all__ = ["phase1_iv", "phase2_iv"]


def phase1_iv(prf: Prf, g_xi: bytes, g_xr: bytes, block_size: int) -> bytes:
    """IV of the first encrypted phase-1 message (MM5 / AM3)."""
    return prf.hash(g_xi, g_xr)[:block_size]  # RFC 2409 app. B: IV = hash(g^xi | g^xr)


def phase2_iv(prf: Prf, last_phase1_block: bytes, m_id: int | bytes, block_size: int) -> bytes:
    """IV of the first message of a quick mode or informational exchange with this M-ID."""
    # RFC 2409 app. B: IV = hash(last phase-1 CBC output block | M-ID)
    return prf.hash(last_phase1_block, message_id_bytes(m_id))[:block_size]
