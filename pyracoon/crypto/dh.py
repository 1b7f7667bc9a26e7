"""Diffie-Hellman for the KE payload: MODP groups (RFC 2409 section 6, RFC 3526) and ECP groups
(RFC 5903).

* The public value sent in KE and the shared secret g^xy are left-padded with zeros to the group
  length (RFC 2409 section 5: "MUST be the length of the negotiated DH group").
* ECP public values are ``x | y`` without the SEC1 ``0x04`` prefix and the shared secret is the
  x coordinate alone (RFC 5903 sections 7 and 9).
* Peer values are validated before use: exact length, ``1 < y < p-1`` for MODP (NIST SP 800-56A
  5.6.2.3.1 partial check, enough against small-subgroup confinement to {1, p-1}), point on the
  curve for ECP.  racoon pads a *short* MODP value instead of refusing it
  (``oakley_check_dh_pub``); ``allow_short=True`` does the same, the default is strict.

The modular exponentiation is done by OpenSSL (constant-time, and with the short exponents
OpenSSL picks for the RFC 3526 groups); no Python ``pow()`` here. Key generation goes through
``cryptography``; g^xy for MODP goes straight to libcrypto's ``DH_compute_key_padded``
(``pyracoon.crypto.libcrypto``), because ``cryptography`` re-proves the primality of the groups
OpenSSL does not name (modp768, modp1024) for every peer key, ~100 times the exchange's cost.
Private keys come from OpenSSL's CSPRNG inside ``cryptography``: that is the one secret not
drawn from ``os.urandom`` by this package, because ``cryptography`` cannot import a DH private
value without its public value and computing that ourselves would mean ``pow()``.

``cryptography`` 50 marks finite-field DH as deprecated (``CryptographyDeprecationWarning`` on
*attribute access* of the ``dh`` module names).  IKEv1 cannot do without MODP groups, so the
names are fetched once here with that warning silenced; if a future release drops FFDH this is
the single module to change.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from functools import cache

from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

from pyracoon.crypto import libcrypto
from pyracoon.crypto.errors import InvalidPublicValue, UnsupportedAlgorithm
from pyracoon.crypto.groups import DHGroup, GroupKind, group_by_id

__all__ = ["DHKeyPair", "EcpKeyPair", "ModpKeyPair", "generate_keypair", "validate_public_value"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric import dh as _dh

    # read once here, where FFDH's deprecation warning is silenced; the hints are not evaluated
    _DHParameterNumbers: type[_dh.DHParameterNumbers] = _dh.DHParameterNumbers
    _DHPublicNumbers: type[_dh.DHPublicNumbers] = _dh.DHPublicNumbers


@cache
def _modp_parameters(group_id: int) -> _dh.DHParameters:
    """``cryptography`` DHParameters for a MODP group, built once per group."""
    group = group_by_id(group_id)
    if group.prime is None:  # only ModpKeyPair calls this, and only for a MODP group
        raise UnsupportedAlgorithm(
            f"DH group {group_id} ({group.kind.name}) as MODP", field="group_description"
        )
    return _DHParameterNumbers(group.prime, group.generator).parameters()


def _curve(group: DHGroup) -> ec.EllipticCurve:
    curve = getattr(ec, str(group.curve), None)  # groups.py names the class: SECP256R1 ...
    if not (isinstance(curve, type) and issubclass(curve, ec.EllipticCurve)):
        raise UnsupportedAlgorithm(f"curve {group.curve}", field="group_description")
    return curve()


def _resolve(group: DHGroup | int) -> DHGroup:
    resolved = group_by_id(group) if isinstance(group, int) else group
    if not resolved.supported:
        raise UnsupportedAlgorithm(
            f"DH group {resolved.group_id} ({resolved.kind.name})", field="group_description"
        )
    return resolved


def validate_public_value(group: DHGroup | int, data: bytes, *, allow_short: bool = False) -> bytes:
    """Check a peer's KE data for ``group`` and return it in canonical (padded) form.

    Raises :class:`InvalidPublicValue` with the expected and actual lengths when the length is
    wrong, or with the reason when the value is out of range / not on the curve.
    """
    grp = _resolve(group)
    expected = grp.public_length
    if len(data) != expected:
        if not (allow_short and grp.kind is GroupKind.MODP and 0 < len(data) < expected):
            raise InvalidPublicValue(
                grp.group_id,
                "has the wrong length",
                expected_length=expected,
                actual_length=len(data),
            )
        data = data.rjust(expected, b"\x00")
    if grp.kind is GroupKind.MODP:
        assert grp.prime is not None
        y = int.from_bytes(data, "big")
        if not 1 < y < grp.prime - 1:
            raise InvalidPublicValue(grp.group_id, "is outside 2..p-2")
    else:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(_curve(grp), b"\x04" + data)
        except ValueError:
            raise InvalidPublicValue(grp.group_id, "is not a point on the curve") from None
    return data


class DHKeyPair(ABC):
    """Our half of one Diffie-Hellman exchange: the private key stays inside."""

    group: DHGroup

    @property
    @abstractmethod
    def public_value(self) -> bytes:
        """g^x as sent in the KE payload, padded to the group length."""

    @abstractmethod
    def compute_shared_secret(
        self, peer_public_value: bytes, *, allow_short: bool = False
    ) -> bytes:
        """g^xy from the peer's KE data, padded to the group's shared-secret length.

        ``allow_short`` (MODP only; ECP values always need their exact length) accepts a value
        shorter than the group and left-pads it, as racoon's ``oakley_check_dh_pub`` does.
        """


class ModpKeyPair(DHKeyPair):
    """A key pair in a MODP group (RFC 2409 section 6, RFC 3526)."""

    def __init__(self, group: DHGroup) -> None:
        self.group = group
        self._private_key = _modp_parameters(group.group_id).generate_private_key()
        y = self._private_key.public_key().public_numbers().y
        self._public_value = y.to_bytes(group.public_length, "big")

    @property
    def public_value(self) -> bytes:
        return self._public_value

    @property
    def private_value(self) -> int:
        """x, for known-answer tests and debugging dumps (racoon logs it at debug level)."""
        return int(self._private_key.private_numbers().x)

    def compute_shared_secret(
        self, peer_public_value: bytes, *, allow_short: bool = False
    ) -> bytes:
        data = validate_public_value(self.group, peer_public_value, allow_short=allow_short)
        if libcrypto.available():
            # The fast path (libcrypto.py says why): no DH_check of a prime we already know.
            assert self.group.prime is not None and self.group.generator is not None
            try:
                return libcrypto.modp_shared_secret(
                    self.group.prime,
                    self.group.generator,
                    self.private_value,
                    self._public_value,
                    data,
                )
            except libcrypto.LibcryptoError as exc:
                reason = f"rejected by OpenSSL: {exc}"
                raise InvalidPublicValue(self.group.group_id, reason) from None
        parameters = _modp_parameters(self.group.group_id)
        try:
            peer = _DHPublicNumbers(
                int.from_bytes(data, "big"), parameters.parameter_numbers()
            ).public_key()
            secret = self._private_key.exchange(peer)
        except (ValueError, _CryptoUnsupported) as exc:
            raise InvalidPublicValue(self.group.group_id, f"rejected by OpenSSL: {exc}") from None
        # RFC 2409 section 5: g^xy is used padded to the prime length.
        return bytes(secret).rjust(self.group.shared_secret_length, b"\x00")


class EcpKeyPair(DHKeyPair):
    """A key pair in an ECP group (RFC 5903)."""

    def __init__(self, group: DHGroup, private_key: ec.EllipticCurvePrivateKey | None = None):
        self.group = group
        self._private_key = private_key or ec.generate_private_key(_curve(group))
        point = self._private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        self._public_value = point[1:]  # RFC 5903 section 7: x | y, no 0x04 octet

    @classmethod
    def from_private_value(cls, group: DHGroup | int, private_value: int) -> EcpKeyPair:
        """A key pair with a given private scalar, for the RFC 5903 section 8 test vectors."""
        grp = _resolve(group)
        if grp.kind is not GroupKind.ECP:
            raise UnsupportedAlgorithm(
                f"private-value import for {grp.kind.name} group", field="group_description"
            )
        return cls(grp, ec.derive_private_key(private_value, _curve(grp)))

    @property
    def public_value(self) -> bytes:
        return self._public_value

    def compute_shared_secret(
        self, peer_public_value: bytes, *, allow_short: bool = False
    ) -> bytes:
        data = validate_public_value(self.group, peer_public_value)
        peer = ec.EllipticCurvePublicKey.from_encoded_point(_curve(self.group), b"\x04" + data)
        secret = self._private_key.exchange(ec.ECDH(), peer)
        # RFC 5903 section 9: the shared secret is the x coordinate, field-length octets.
        return secret.rjust(self.group.shared_secret_length, b"\x00")


def generate_keypair(group: DHGroup | int) -> DHKeyPair:
    """A fresh key pair for a Group Description value (or :class:`DHGroup`)."""
    grp = _resolve(group)
    if grp.kind is GroupKind.MODP:
        return ModpKeyPair(grp)
    return EcpKeyPair(grp)
