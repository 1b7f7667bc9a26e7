"""Key derivation of IKEv1: SKEYID, SKEYID_d/a/e, the phase-1 encryption key and KEYMAT.

RFC 2409 section 5 (SKEYID and its three children), appendix B (stretching SKEYID_e into a longer
cipher key) and section 5.5 (KEYMAT for quick mode), as racoon computes them (RFC 2409):

* g^xy enters every formula padded to the group length (see :mod:`pyracoon.crypto.dh`);
* nonces are always ``Ni_b | Nr_b`` (initiator first) on both sides;
* KEYMAT is always at least three prf blocks long (racoon makes three even when fewer would do);
* inbound keys are made with *our* SPI (the one GETSPI gave us and we sent in our proposal),
  outbound keys with the *peer's* SPI; the encryption key comes first in KEYMAT, then the
  authentication key.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyracoon.crypto.errors import UnsupportedAlgorithm
from pyracoon.crypto.prf import Prf

__all__ = [
    "DirectionKeys",
    "Phase1Keys",
    "SaKeys",
    "derive_phase1_keys",
    "derive_sa_keys",
    "derive_skeyid",
    "encryption_key",
    "keymat",
    "skeyid_d",
    "skeyid_a",
    "skeyid_e",
    "skeyid_psk",
    "skeyid_sig",
]

#: Authentication methods whose SKEYID is made from the pre-shared key: pre_shared_key (1) and
#: XAUTHInitPreShared / XAUTHRespPreShared (65001 / 65002).
PSK_METHODS = frozenset({1, 65001, 65002})
#: Signature methods: DSS (2), RSA (3), hybrid RSA/DSS server/client (64221-64224) and
#: XAUTHInit/RespDSS, XAUTHInit/RespRSA (65003-65006).
SIGNATURE_METHODS = frozenset({2, 3, 64221, 64222, 64223, 64224, 65003, 65004, 65005, 65006})
#: RSA encryption (4), revised RSA encryption (5) and their XAUTH forms (65007-65010): racoon
#: lexes them but does not implement them.
ENCRYPTION_METHODS = frozenset({4, 5, 65007, 65008, 65009, 65010})


def skeyid_psk(prf: Prf, psk: bytes, ni_b: bytes, nr_b: bytes) -> bytes:
    """SKEYID for pre-shared keys."""
    return prf(psk, ni_b, nr_b)  # RFC 2409 s.5: SKEYID = prf(pre-shared-key, Ni_b | Nr_b)


def skeyid_sig(prf: Prf, ni_b: bytes, nr_b: bytes, g_xy: bytes) -> bytes:
    """SKEYID for signature authentication."""
    return prf(ni_b + nr_b, g_xy)  # RFC 2409 s.5: SKEYID = prf(Ni_b | Nr_b, g^xy)


def derive_skeyid(
    prf: Prf,
    auth_method: int,
    ni_b: bytes,
    nr_b: bytes,
    g_xy: bytes,
    psk: bytes | None = None,
) -> bytes:
    """SKEYID for the negotiated Authentication Method attribute value."""
    if auth_method in PSK_METHODS:
        if psk is None:
            raise UnsupportedAlgorithm(
                f"authentication method {auth_method} without a pre-shared key",
                field="authentication_method",
            )
        return skeyid_psk(prf, psk, ni_b, nr_b)
    if auth_method in SIGNATURE_METHODS:
        return skeyid_sig(prf, ni_b, nr_b, g_xy)
    raise UnsupportedAlgorithm(
        f"authentication method {auth_method}", field="authentication_method"
    )


def skeyid_d(prf: Prf, skeyid: bytes, g_xy: bytes, cky_i: bytes, cky_r: bytes) -> bytes:
    """Keying material for phase-2 SAs."""
    return prf(skeyid, g_xy, cky_i, cky_r, b"\x00")  # RFC 2409 s.5: prf(SKEYID, g^xy|CKY-I|CKY-R|0)


def skeyid_a(
    prf: Prf, skeyid: bytes, skeyid_d_: bytes, g_xy: bytes, cky_i: bytes, cky_r: bytes
) -> bytes:
    """Key of the ISAKMP integrity hashes (HASH(1..4), informational HASH)."""
    # RFC 2409 s.5: SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
    return prf(skeyid, skeyid_d_, g_xy, cky_i, cky_r, b"\x01")


def skeyid_e(
    prf: Prf, skeyid: bytes, skeyid_a_: bytes, g_xy: bytes, cky_i: bytes, cky_r: bytes
) -> bytes:
    """Source of the ISAKMP encryption key."""
    # RFC 2409 s.5: SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
    return prf(skeyid, skeyid_a_, g_xy, cky_i, cky_r, b"\x02")


@dataclass(frozen=True)
class Phase1Keys:
    """SKEYID and its three children, as one value the IKE SA keeps."""

    skeyid: bytes
    skeyid_d: bytes
    skeyid_a: bytes
    skeyid_e: bytes


def derive_phase1_keys(
    prf: Prf, skeyid: bytes, g_xy: bytes, cky_i: bytes, cky_r: bytes
) -> Phase1Keys:
    """SKEYID_d, SKEYID_a and SKEYID_e from SKEYID (RFC 2409 section 5)."""
    d = skeyid_d(prf, skeyid, g_xy, cky_i, cky_r)
    a = skeyid_a(prf, skeyid, d, g_xy, cky_i, cky_r)
    e = skeyid_e(prf, skeyid, a, g_xy, cky_i, cky_r)
    return Phase1Keys(skeyid, d, a, e)


def encryption_key(prf: Prf, skeyid_e_: bytes, key_length: int) -> bytes:
    """The phase-1 cipher key of ``key_length`` bytes (RFC 2409 appendix B).

    If SKEYID_e is long enough its leading bytes are the key; otherwise it is stretched.
    Weak DES keys are not checked, as in racoon.
    """
    if len(skeyid_e_) >= key_length:
        return skeyid_e_[:key_length]
    block = prf(skeyid_e_, b"\x00")  # RFC 2409 app. B: K1 = prf(SKEYID_e, 0)
    out = bytearray(block)
    while len(out) < key_length:
        block = prf(skeyid_e_, block)  # RFC 2409 app. B: Kn = prf(SKEYID_e, Kn-1)
        out += block
    return bytes(out[:key_length])


#: racoon always computes at least this many prf blocks of KEYMAT.
KEYMAT_MIN_BLOCKS = 3


def keymat(
    prf: Prf,
    skeyid_d_: bytes,
    protocol: int,
    spi: bytes,
    ni_b: bytes,
    nr_b: bytes,
    length: int | None = None,
    g_qm_xy: bytes | None = None,
) -> bytes:
    """KEYMAT for one direction of one protocol (RFC 2409 section 5.5).

    ``protocol`` is the Protocol-ID of the proposal (2 AH, 3 ESP, 4 IPCOMP), ``spi`` the SPI as
    it appears in the proposal (4 bytes for AH/ESP).  ``g_qm_xy`` is the quick-mode DH secret
    when PFS was negotiated and a KE was received.  Without ``length`` the whole computed
    KEYMAT (a whole number of blocks, at least three) is returned.
    """
    pfs = g_qm_xy if g_qm_xy is not None else b""
    # RFC 2409 s.5.5: KEYMAT = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
    seed = pfs + bytes([protocol]) + spi + ni_b + nr_b
    needed = KEYMAT_MIN_BLOCKS * prf.digest_size
    if length is not None:
        needed = max(needed, length)
    block = prf(skeyid_d_, seed)  # K1 = prf(SKEYID_d, seed)
    out = bytearray(block)
    while len(out) < needed:
        block = prf(skeyid_d_, block, seed)  # RFC 2409 s.5.5: Kn = prf(SKEYID_d, Kn-1 | seed)
        out += block
    return bytes(out if length is None else out[:length])


@dataclass(frozen=True)
class DirectionKeys:
    """Keys of one kernel SA (one direction)."""

    spi: bytes
    encryption_key: bytes
    authentication_key: bytes


@dataclass(frozen=True)
class SaKeys:
    """Keys of both SAs a quick mode makes for one protocol."""

    inbound: DirectionKeys
    outbound: DirectionKeys


def derive_sa_keys(
    prf: Prf,
    skeyid_d_: bytes,
    protocol: int,
    our_spi: bytes,
    peer_spi: bytes,
    ni_b: bytes,
    nr_b: bytes,
    encryption_key_length: int,
    authentication_key_length: int,
    g_qm_xy: bytes | None = None,
) -> SaKeys:
    """Both directions' keys: inbound from our SPI, outbound from the peer's (RFC 2409).

    Lengths are bytes.  The encryption key is the head of KEYMAT, the authentication key follows
    it (RFC 2409 section 5.5 leaves the split to the DOI; RFC 2407 section 4.5 and every
    implementation put the cipher key first).
    """
    total = encryption_key_length + authentication_key_length

    def one(spi: bytes) -> DirectionKeys:
        material = keymat(prf, skeyid_d_, protocol, spi, ni_b, nr_b, total, g_qm_xy)
        return DirectionKeys(
            spi, material[:encryption_key_length], material[encryption_key_length:total]
        )

    return SaKeys(inbound=one(our_spi), outbound=one(peer_spi))
