"""SKEYID dispatch, KEYMAT layout and the exchange hashes, checked against the RFC 2409 formulas
written out independently with hmac/hashlib here; RSA signature format; nonces and cookies.

(The published known answers are in test_crypto_kdf_vectors.py and the real-exchange answers
in test_crypto_charon_exchange.py; these tests pin the parts those vectors do not reach:
PFS and SPI placement in KEYMAT, the at-least-three-blocks rule, HASH(3)/HASH(4), typed errors.)
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes as crypto_hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pyracoon.crypto.errors import HashMismatch, InvalidSignature, UnsupportedAlgorithm
from pyracoon.crypto.hashes import (
    hash_i,
    hash_r,
    informational_hash,
    message_id_bytes,
    quick_mode_hash1,
    quick_mode_hash2,
    quick_mode_hash3,
    quick_mode_hash4,
    verify_hash,
)
from pyracoon.crypto.keys import (
    KEYMAT_MIN_BLOCKS,
    derive_sa_keys,
    derive_skeyid,
    encryption_key,
    keymat,
    skeyid_psk,
    skeyid_sig,
)
from pyracoon.crypto.nonce import InvalidNonce, generate_cookie, generate_nonce, validate_nonce
from pyracoon.crypto.prf import prf_for
from pyracoon.crypto.signature import rsa_sign, rsa_verify

SHA1 = prf_for(2)
NI, NR, GXY = b"\x11" * 16, b"\x22" * 16, b"\x33" * 128


def hmac_sha1(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha1).digest()


def test_prf_ids_and_sizes() -> None:
    sizes = {1: 16, 2: 20, 4: 32, 5: 48, 6: 64}
    for hash_id, size in sizes.items():
        prf = prf_for(hash_id)
        assert prf.hash_id == hash_id and prf.digest_size == size
        assert len(prf(b"k", b"a", b"b")) == size
        assert prf(b"k", b"a", b"b") == prf(b"k", b"ab")
    assert prf_for(4).hash(b"x") == hashlib.sha256(b"x").digest()


def test_skeyid_dispatch_by_authentication_method() -> None:
    psk = b"secret"
    for method in (1, 65001, 65002):  # pre_shared_key, XAUTHInit/RespPreShared
        assert derive_skeyid(SHA1, method, NI, NR, GXY, psk) == hmac_sha1(psk, NI + NR)
    for method in (2, 3, 64221, 65005):  # DSS, RSA, hybrid_rsa_server, XAUTHInitRSA
        assert derive_skeyid(SHA1, method, NI, NR, GXY) == hmac_sha1(NI + NR, GXY)
    assert skeyid_psk(SHA1, psk, NI, NR) == derive_skeyid(SHA1, 1, NI, NR, GXY, psk)
    assert skeyid_sig(SHA1, NI, NR, GXY) == derive_skeyid(SHA1, 3, NI, NR, GXY)
    with pytest.raises(UnsupportedAlgorithm) as excinfo:
        derive_skeyid(SHA1, 4, NI, NR, GXY)  # rsaenc: lexed by racoon, not implemented
    assert excinfo.value.field == "authentication_method"
    with pytest.raises(UnsupportedAlgorithm):
        derive_skeyid(SHA1, 1, NI, NR, GXY)  # PSK method without a key


def test_appendix_b_short_key_is_a_prefix() -> None:
    skeyid_e = bytes(range(20))
    assert encryption_key(SHA1, skeyid_e, 16) == skeyid_e[:16]
    k1 = hmac_sha1(skeyid_e, b"\x00")
    assert encryption_key(SHA1, skeyid_e, 24) == (k1 + hmac_sha1(skeyid_e, k1))[:24]


def reference_keymat(key: bytes, seed: bytes, blocks: int) -> bytes:
    out, block = b"", b""
    for _ in range(blocks):
        block = hmac_sha1(key, block + seed)
        out += block
    return out


def test_keymat_formula_and_minimum_blocks() -> None:
    skeyid_d, spi = b"\x44" * 20, b"\xca\xfe\xba\xbe"
    seed = b"\x03" + spi + NI + NR
    full = keymat(SHA1, skeyid_d, 3, spi, NI, NR)
    assert len(full) == KEYMAT_MIN_BLOCKS * 20  # racoon makes three blocks even for 20 bytes
    assert full == reference_keymat(skeyid_d, seed, 3)
    assert keymat(SHA1, skeyid_d, 3, spi, NI, NR, 72) == reference_keymat(skeyid_d, seed, 4)[:72]
    with_pfs = keymat(SHA1, skeyid_d, 3, spi, NI, NR, 40, g_qm_xy=GXY)
    assert with_pfs == reference_keymat(skeyid_d, GXY + seed, 2)  # PFS term first


def test_sa_keys_inbound_uses_our_spi_outbound_the_peers() -> None:
    skeyid_d, ours, theirs = b"\x55" * 20, b"\x00\x00\x10\x01", b"\x00\x00\x20\x02"
    keys = derive_sa_keys(SHA1, skeyid_d, 3, ours, theirs, NI, NR, 24, 20)
    inbound = keymat(SHA1, skeyid_d, 3, ours, NI, NR, 44)
    outbound = keymat(SHA1, skeyid_d, 3, theirs, NI, NR, 44)
    assert keys.inbound.spi == ours and keys.outbound.spi == theirs
    assert keys.inbound.encryption_key + keys.inbound.authentication_key == inbound
    assert keys.outbound.encryption_key + keys.outbound.authentication_key == outbound
    assert (len(keys.inbound.encryption_key), len(keys.inbound.authentication_key)) == (24, 20)
    # AH has no cipher key: everything is the authentication key
    ah = derive_sa_keys(SHA1, skeyid_d, 2, ours, theirs, NI, NR, 0, 20)
    assert ah.inbound.encryption_key == b""
    assert ah.inbound.authentication_key == keymat(SHA1, skeyid_d, 2, ours, NI, NR, 20)


def test_phase1_hashes() -> None:
    skeyid, gxi, gxr = b"\x66" * 20, b"\x01" * 128, b"\x02" * 128
    ci, cr, sa, idi, idr = b"I" * 8, b"R" * 8, b"SA-body", b"\x01\x11\x01\xf4\x0a\x00\x00\x01", b"x"
    assert hash_i(SHA1, skeyid, gxi, gxr, ci, cr, sa, idi) == hmac_sha1(
        skeyid, gxi + gxr + ci + cr + sa + idi
    )
    assert hash_r(SHA1, skeyid, gxr, gxi, cr, ci, sa, idr) == hmac_sha1(
        skeyid, gxr + gxi + cr + ci + sa + idr
    )


def test_quick_mode_and_informational_hashes() -> None:
    key, mid, payloads = b"\x77" * 20, 0x0A0B0C0D, b"\x0a\x00\x00\x08abcd"
    m = b"\x0a\x0b\x0c\x0d"
    assert message_id_bytes(mid) == m == message_id_bytes(m)
    with pytest.raises(ValueError):
        message_id_bytes(b"\x00")
    assert quick_mode_hash1(SHA1, key, mid, payloads) == hmac_sha1(key, m + payloads)
    assert quick_mode_hash2(SHA1, key, mid, NI, payloads) == hmac_sha1(key, m + NI + payloads)
    assert quick_mode_hash3(SHA1, key, mid, NI, NR) == hmac_sha1(key, b"\x00" + m + NI + NR)
    assert quick_mode_hash4(SHA1, key, mid, payloads) == hmac_sha1(key, m + payloads)
    assert informational_hash(SHA1, key, m, payloads) == hmac_sha1(key, m + payloads)


def test_verify_hash() -> None:
    verify_hash("HASH(3)", b"same", b"same")
    with pytest.raises(HashMismatch) as excinfo:
        verify_hash("HASH(3)", b"recv", b"comp")
    assert excinfo.value.field == "HASH(3)"
    assert (excinfo.value.received, excinfo.value.computed) == (b"recv", b"comp")


# ---------------------------------------------------------------- signatures ----------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_signature_has_no_digest_info(rsa_key: rsa.RSAPrivateKey) -> None:
    """s^e mod n must be 00 01 FF..FF 00 || HASH: PKCS#1 v1.5 type 1 over the raw hash."""
    digest = hmac_sha1(b"k", b"HASH_I input")
    signature = rsa_sign(rsa_key, digest)
    numbers = rsa_key.public_key().public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(128, "big")
    assert block == b"\x00\x01" + b"\xff" * (128 - 3 - 20) + b"\x00" + digest
    rsa_verify(rsa_key.public_key(), digest, signature)


def test_rsa_verify_rejects(rsa_key: rsa.RSAPrivateKey) -> None:
    digest = hashlib.sha1(b"x").digest()
    signature = rsa_sign(rsa_key, digest)
    public = rsa_key.public_key()
    with pytest.raises(InvalidSignature):
        rsa_verify(public, hashlib.sha1(b"y").digest(), signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InvalidSignature):
        rsa_verify(public, digest, tampered)
    with pytest.raises(InvalidSignature) as excinfo:
        rsa_verify(public, digest, signature[1:])
    assert excinfo.value.field == "SIG"
    # a normal (DigestInfo) PKCS#1 signature of the same bytes is not an IKEv1 signature
    with_digest_info = rsa_key.sign(b"x", padding.PKCS1v15(), crypto_hashes.SHA1())
    with pytest.raises(InvalidSignature):
        rsa_verify(public, digest, with_digest_info)


# ---------------------------------------------------------------- nonces and cookies --------


def test_nonce_lengths() -> None:
    assert len(generate_nonce()) == 16
    assert len(generate_nonce(256)) == 256
    assert generate_nonce() != generate_nonce()
    for bad in (7, 257):
        with pytest.raises(InvalidNonce) as excinfo:
            generate_nonce(bad)
        assert excinfo.value.length == bad and excinfo.value.field == "NONCE"
        with pytest.raises(InvalidNonce):
            validate_nonce(bytes(bad))
    assert validate_nonce(bytes(8)) == bytes(8)


def test_cookies_are_eight_nonzero_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = {generate_cookie() for _ in range(50)}
    assert len(cookies) == 50 and all(len(c) == 8 and any(c) for c in cookies)
    # an all-zero draw means "no cookie yet" in ISAKMP (RFC 2408 3.1): it is drawn again
    draws = iter([bytes(8), b"\x00" * 7 + b"\x01"])
    monkeypatch.setattr("pyracoon.crypto.nonce.os.urandom", lambda n: next(draws))
    assert generate_cookie() == b"\x00" * 7 + b"\x01"
