"""Two simulated peers run the crypto of main mode + quick mode against each other, each side
deriving everything from its own private values only.  Covers the suite combinations the
published vectors and the strongSwan recordings do not (SHA-384/512, MD5, Blowfish, CAST-128,
Camellia, ECP groups, PFS over ECP) and checks the properties that make an exchange work: both
sides agree on every key, decrypt each other's messages, verify each other's hashes, and the
initiator's outbound SA keys are the responder's inbound ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pyracoon.crypto.algorithms import CIPHERS
from pyracoon.crypto.cbc import CbcState
from pyracoon.crypto.ciphers import BlockCipher, ike_cipher, ike_key_length
from pyracoon.crypto.dh import DHKeyPair, generate_keypair
from pyracoon.crypto.hashes import (
    hash_i,
    hash_r,
    quick_mode_hash1,
    quick_mode_hash2,
    quick_mode_hash3,
    verify_hash,
)
from pyracoon.crypto.keys import (
    Phase1Keys,
    derive_phase1_keys,
    derive_sa_keys,
    derive_skeyid,
    encryption_key,
)
from pyracoon.crypto.nonce import generate_cookie, generate_nonce
from pyracoon.crypto.padding import PaddingPolicy
from pyracoon.crypto.prf import Prf, prf_for

SUITES = [
    # (Oakley cipher id, Key-Length attribute, hash id, group, auth method, PFS group)
    (5, None, 1, 2, 1, None),  # 3des / md5 / modp1024 / psk
    (3, 448, 6, 14, 1, 19),  # blowfish-448 / sha512 / modp2048 / psk, PFS ecp256
    (6, 80, 5, 19, 3, None),  # cast128-80 / sha384 / ecp256 / rsasig formula
    (8, 256, 4, 20, 1, 5),  # camellia-256 / sha256 / ecp384, PFS modp1536
    (7, 192, 2, 21, 3, 21),  # aes-192 / sha1 / ecp521, PFS ecp521
    (1, None, 2, 1, 1, None),  # single des / sha1 / modp768
]
SA_BODY = b"\x00\x00\x00\x01\x00\x00\x00\x01" + b"proposal and transforms"


@dataclass
class Peer:
    """What one side knows after MM4: its own DH pair and nonce, the peer's public values."""

    prf: Prf
    keypair: DHKeyPair
    nonce: bytes
    keys: Phase1Keys | None = None
    cbc: CbcState | None = None


def phase1(peer: Peer, *, ni: bytes, nr: bytes, peer_public: bytes, initiator: bool,
           suite: tuple, cky_i: bytes, cky_r: bytes) -> None:  # fmt: skip
    cipher_id, key_bits, _, _, auth_method, _ = suite
    g_xy = peer.keypair.compute_shared_secret(peer_public)
    skeyid = derive_skeyid(peer.prf, auth_method, ni, nr, g_xy, psk=b"shared secret")
    peer.keys = derive_phase1_keys(peer.prf, skeyid, g_xy, cky_i, cky_r)
    row = ike_cipher(cipher_id)
    key = encryption_key(peer.prf, peer.keys.skeyid_e, ike_key_length(row, key_bits))
    g_xi = peer.keypair.public_value if initiator else peer_public
    g_xr = peer_public if initiator else peer.keypair.public_value
    peer.cbc = CbcState.for_phase1(BlockCipher(row, key), peer.prf, g_xi, g_xr)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: "-".join(map(str, s)))
def test_two_peers_agree(suite: tuple) -> None:
    _, _, hash_id, group, _, pfs_group = suite
    prf = prf_for(hash_id)
    cky_i, cky_r = generate_cookie(), generate_cookie()
    alice = Peer(prf, generate_keypair(group), generate_nonce())
    bob = Peer(prf, generate_keypair(group), generate_nonce(32))
    ni, nr = alice.nonce, bob.nonce
    g_xi, g_xr = alice.keypair.public_value, bob.keypair.public_value
    common = {"ni": ni, "nr": nr, "suite": suite, "cky_i": cky_i, "cky_r": cky_r}
    phase1(alice, peer_public=g_xr, initiator=True, **common)
    phase1(bob, peer_public=g_xi, initiator=False, **common)
    assert alice.keys == bob.keys and alice.keys is not None and bob.keys is not None
    assert alice.cbc is not None and bob.cbc is not None
    skeyid = alice.keys.skeyid

    # MM5: ID + HASH_I, random padding of random length
    idii_b = b"\x01\x11\x01\xf4\x0a\x00\x00\x01"
    policy = PaddingPolicy(randomize_length=True, maximum_length=3)
    hash_i_sent = hash_i(prf, skeyid, g_xi, g_xr, cky_i, cky_r, SA_BODY, idii_b)
    mm5 = alice.cbc.encrypt(idii_b + hash_i_sent, policy)
    received = bob.cbc.decrypt(mm5)
    got_id, got_hash = received.plaintext[:8], received.plaintext[8 : 8 + prf.digest_size]
    verify_hash("HASH_I", got_hash, hash_i(prf, skeyid, g_xi, g_xr, cky_i, cky_r, SA_BODY, got_id))
    bob.cbc.commit(received)

    # MM6: ID + HASH_R
    idir_b = b"\x01\x11\x01\xf4\x0a\x00\x00\x02"
    hash_r_sent = hash_r(prf, skeyid, g_xr, g_xi, cky_r, cky_i, SA_BODY, idir_b)
    received = alice.cbc.decrypt(bob.cbc.encrypt(idir_b + hash_r_sent))
    verify_hash("HASH_R", received.plaintext[8 : 8 + prf.digest_size], hash_r_sent)
    alice.cbc.commit(received)
    assert alice.cbc.iv == bob.cbc.iv

    # Quick mode with its own IV chain, optional PFS
    m_id = 0x12345678
    qa, qb = alice.cbc.for_message_id(prf, m_id), bob.cbc.for_message_id(prf, m_id)
    qni, qnr = generate_nonce(), generate_nonce()
    pfs_a = generate_keypair(pfs_group) if pfs_group else None
    pfs_b = generate_keypair(pfs_group) if pfs_group else None
    qm1_payloads = b"SA|Ni|" + qni + (pfs_a.public_value if pfs_a else b"")
    hash1 = quick_mode_hash1(prf, alice.keys.skeyid_a, m_id, qm1_payloads)
    received = qb.decrypt(qa.encrypt(hash1 + qm1_payloads))
    verify_hash(
        "HASH(1)",
        received.plaintext[: prf.digest_size],
        quick_mode_hash1(prf, bob.keys.skeyid_a, m_id, qm1_payloads),
    )
    qb.commit(received)
    qm2_payloads = b"SA|Nr|" + qnr
    hash2 = quick_mode_hash2(prf, bob.keys.skeyid_a, m_id, qni, qm2_payloads)
    received = qa.decrypt(qb.encrypt(hash2 + qm2_payloads))
    verify_hash("HASH(2)", received.plaintext[: prf.digest_size], hash2)
    qa.commit(received)
    hash3 = quick_mode_hash3(prf, alice.keys.skeyid_a, m_id, qni, qnr)
    received = qb.decrypt(qa.encrypt(hash3))
    verify_hash("HASH(3)", received.plaintext[: prf.digest_size], hash3)
    qb.commit(received)

    g_qm_a = pfs_a.compute_shared_secret(pfs_b.public_value) if pfs_a and pfs_b else None
    g_qm_b = pfs_b.compute_shared_secret(pfs_a.public_value) if pfs_a and pfs_b else None
    assert g_qm_a == g_qm_b
    spi_a, spi_b = b"\xaa\x00\x00\x01", b"\xbb\x00\x00\x02"
    esp = CIPHERS.by("name", "aes")
    keys_a = derive_sa_keys(prf, alice.keys.skeyid_d, 3, spi_a, spi_b, qni, qnr, 32, 64, g_qm_a)
    keys_b = derive_sa_keys(prf, bob.keys.skeyid_d, 3, spi_b, spi_a, qni, qnr, 32, 64, g_qm_b)
    assert keys_a.outbound == keys_b.inbound and keys_a.inbound == keys_b.outbound
    assert keys_a.inbound != keys_a.outbound
    assert esp.accepts_key_bits(len(keys_a.inbound.encryption_key) * 8)
