"""RSA signatures as IKEv1 makes them (SIG_I / SIG_R, RFC 2409 section 5.1).

IKEv1 signs the raw prf output HASH_I / HASH_R with PKCS#1 v1.5 type-1 padding but *without*
a DigestInfo (no hash OID): racoon calls ``RSA_private_encrypt(..., RSA_PKCS1_PADDING)`` on the
hash bytes, as do strongSwan and every other IKEv1 implementation.  ``cryptography`` (since 47)
expresses exactly that as ``padding.PKCS1v15()`` with ``utils.NoDigestInfo()`` as the algorithm;
verification uses the same pair, so no raw-RSA tricks are needed.  Verification inside OpenSSL
compares the recovered block in constant time.

DSS signatures (auth method 2) are not implemented: racoon's eay_get_x509sign only knows RSA.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo

from pyracoon.crypto.errors import InvalidSignature

__all__ = ["rsa_sign", "rsa_verify"]


def rsa_sign(private_key: rsa.RSAPrivateKey, hash_value: bytes) -> bytes:
    """SIG payload data: PKCS#1 v1.5 signature of ``hash_value`` with no DigestInfo."""
    return private_key.sign(hash_value, padding.PKCS1v15(), NoDigestInfo())


def rsa_verify(public_key: rsa.RSAPublicKey, hash_value: bytes, signature: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` signs ``hash_value``."""
    modulus_length = (public_key.key_size + 7) // 8
    if len(signature) != modulus_length:
        raise InvalidSignature(
            f"signature is {len(signature)} bytes, the key's modulus {modulus_length}"
        )
    try:
        public_key.verify(
            signature,
            hash_value,
            padding.PKCS1v15(),
            NoDigestInfo(),  # type: ignore[arg-type]  # cryptography's verify() hint omits it
        )
    except _CryptoInvalidSignature:
        raise InvalidSignature("RSA PKCS#1 v1.5 check failed") from None
