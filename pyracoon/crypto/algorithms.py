"""The one algorithm table: every number and name an algorithm has in IKE, IPsec DOI, PF_KEY,
racoon.conf, setkey and Linux XFRM.

Why one table: the same cipher is ``7`` in an Oakley transform (RFC 2409 appendix A), ``12`` as
an ESP transform id (RFC 2407 section 4.4.4), ``12`` again as an SADB ealg (RFC 2367 / KAME
``pfkeyv2.h``), ``aes`` in racoon.conf, ``aes-cbc`` in setkey and ``cbc(aes)`` in XFRM.  Keeping
those in one row means the engine, the kernel backends and setkey cannot disagree.  The numbers
follow ipsec-tools 0.8.2 (racoon.conf(5): proposal and sainfo; pfkeyv2.h; setkey(8): algorithms).

This module deliberately imports nothing heavy (no ``cryptography``): setkey and the kernel code
import it to translate names and numbers.  The ``implementation`` column is a dotted path
(``module:Class``) that :mod:`pyracoon.crypto.ciphers` resolves lazily.

Lookups: ``CIPHERS.by("ike_id", 7)``, ``AUTH_ALGORITHMS.by("setkey_name", "hmac-sha1")``,
``cipher_by_sadb_id(12)``... Every lookup raises :class:`UnknownAlgorithm` (carrying the key and
value) rather than returning ``None``.  Where several rows share a number (``des``, ``des_iv64``
and ``des_iv32`` are all SADB ealg 2), the first row listed wins, which is the canonical one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pyracoon.crypto.errors import UnknownAlgorithm

__all__ = [
    "AUTH_ALGORITHMS",
    "CIPHERS",
    "HASHES",
    "IPCOMP_ALGORITHMS",
    "AuthAlgorithm",
    "Cipher",
    "CompressionAlgorithm",
    "HashAlgorithm",
    "KernelAlg",
    "Table",
    "auth_by_sadb_id",
    "cipher_by_ike_id",
    "cipher_by_sadb_id",
    "hash_by_ike_id",
    "kernel_auth_algorithms",
    "kernel_ciphers",
]


@dataclass(frozen=True)
class KernelAlg:
    """An algorithm as the simulated PF_KEY kernel (``pyracoon.kernel.memory_tables``) announces it.

    These are the ``sadb_alg`` fields of a REGISTER reply: Linux 6.1's ``xfrm_algo.c`` values
    (``sadb_alg_ivlen``, ``sadb_alg_minbits``/``maxbits``), ``rank`` being the row's place in
    Linux's list so that the reply comes in the kernel's order.  Where the simulator deliberately
    offers more than Linux (null algorithms that take a key, KAME's keyed-md5/keyed-sha1/tcp-md5;
    docs/kernel.md lists it) the row says so.  ``pysetkey -n``, which asks no kernel, takes its
    key ranges from here too, so that it and ``pysetkey`` against ``pyracoon-kernel`` agree.
    """

    rank: int
    ivlen: int
    min_bits: int
    max_bits: int
    #: Key lengths the kernel's cipher accepts inside the range (AES: 16/24/32 bytes), or None.
    key_sizes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Cipher:
    """An encryption algorithm.

    Numbers are ``None`` where the namespace has none (e.g. AES-GCM has no phase-1 id in racoon).
    Key lengths are bits, as in the Key-Length attribute and in SADB REGISTER ranges.
    """

    name: str
    #: Oakley encryption algorithm (phase-1 attribute class 1), RFC 2409 appendix A.
    ike_id: int | None
    #: IPsec DOI ESP transform id, RFC 2407 section 4.4.4.
    esp_id: int | None
    #: PF_KEY SADB_EALG_* / SADB_X_EALG_* value.
    sadb_id: int | None
    #: Names racoon.conf accepts: phase-1 ``proposal`` and phase-2 ``sainfo`` lists.
    conf_names: tuple[str, ...]
    #: Names setkey accepts after ``-E`` (first is the one setkey prints).
    setkey_names: tuple[str, ...]
    #: Linux XFRM algorithm name (``ip xfrm state``), ``None`` if Linux has none.
    xfrm_name: str | None
    min_bits: int
    max_bits: int
    default_bits: int
    #: Key lengths allowed between min and max; ``None`` means every multiple of 8.
    allowed_bits: tuple[int, ...] | None
    #: True when IKE always sends the Key-Length attribute (variable-key ciphers: racoon's
    #: algorithm.c default_keylen() gives them 128, which cfparse.y puts in every proposal).
    variable_key: bool
    #: Cipher block size in bytes (1 for stream/counter modes).
    block_size: int
    #: ``module:Class`` of the ``cryptography`` algorithm usable for IKE CBC, or ``None``.
    implementation: str | None
    #: What the simulated kernel's REGISTER reply says of it; ``None``: it does not have it.
    kernel: KernelAlg | None = None

    def accepts_key_bits(self, bits: int) -> bool:
        """Whether ``bits`` is a key length this cipher takes (multiple of 8, in range)."""
        if self.allowed_bits is not None:
            return bits in self.allowed_bits
        return bits % 8 == 0 and self.min_bits <= bits <= self.max_bits

    def describe_key_bits(self) -> str:
        """Human text for error messages: ``128/192/256`` or ``40-448``."""
        if self.allowed_bits is not None:
            return "/".join(str(b) for b in self.allowed_bits)
        if self.min_bits == self.max_bits:
            return str(self.min_bits)
        return f"{self.min_bits}-{self.max_bits}"


@dataclass(frozen=True)
class HashAlgorithm:
    """A phase-1 hash (Oakley attribute class 2): the PRF is HMAC with it (RFC 2409 section 4)."""

    name: str
    #: Oakley hash algorithm id, RFC 2409 appendix A (sha2 ids from RFC 4868 / IANA).
    ike_id: int
    #: :mod:`hashlib` name.
    hashlib_name: str
    digest_size: int
    conf_names: tuple[str, ...]


@dataclass(frozen=True)
class AuthAlgorithm:
    """An IPsec integrity algorithm (ESP authentication / AH transform)."""

    name: str
    #: Phase-1 hash id of the same function (``None`` if IKE has no such hash).
    ike_hash_id: int | None
    #: IPsec DOI "Authentication Algorithm" SA attribute value, RFC 2407 section 4.5.
    auth_attribute: int | None
    #: IPsec DOI AH transform id, RFC 2407 section 4.4.3.
    ah_id: int | None
    #: PF_KEY SADB_AALG_* / SADB_X_AALG_* value.
    sadb_id: int | None
    conf_names: tuple[str, ...]
    setkey_names: tuple[str, ...]
    xfrm_name: str | None
    min_bits: int
    max_bits: int
    #: Truncated ICV length in bits as used in ESP/AH (RFC 2404, RFC 4868).
    icv_bits: int | None
    #: :mod:`hashlib` name of the underlying hash, for KEYMAT sizing and tests.
    hashlib_name: str | None
    #: What the simulated kernel's REGISTER reply says of it; ``None``: it does not have it.
    kernel: KernelAlg | None = None

    @property
    def key_bits(self) -> int:
        """The key length IKE derives for this algorithm (its fixed or maximum length)."""
        return self.max_bits


@dataclass(frozen=True)
class CompressionAlgorithm:
    """An IPComp transform (RFC 2407 section 4.4.5, RFC 3173)."""

    name: str
    #: IPsec DOI IPCOMP transform id.
    ipcomp_id: int
    #: PF_KEY SADB_X_CALG_* value.
    sadb_id: int
    conf_names: tuple[str, ...]
    setkey_names: tuple[str, ...]
    xfrm_name: str | None


T = TypeVar("T")


@dataclass(frozen=True)
class Table(Generic[T]):
    """An ordered list of rows with an index per column; the first row listed wins a collision."""

    name: str
    rows: tuple[T, ...]
    _index: dict[str, dict[object, T]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __iter__(self) -> Iterator[T]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _column(self, key: str) -> dict[object, T]:
        column = self._index.get(key)
        if column is None:
            if not self.rows or not hasattr(self.rows[0], key):
                raise UnknownAlgorithm(self.name, key, "<no such column>")
            column = {}
            for row in self.rows:
                values = getattr(row, key)
                if not isinstance(values, tuple):
                    values = (values,)
                for value in values:
                    if value is not None:
                        column.setdefault(value, row)
            self._index[key] = column
        return column

    def by(self, key: str, value: object) -> T:
        """The row whose column ``key`` is (or, for name tuples, contains) ``value``."""
        if isinstance(value, str):
            value = value.lower()
        try:
            return self._column(key)[value]
        except KeyError:
            raise UnknownAlgorithm(self.name, key, value) from None

    def get(self, key: str, value: object) -> T | None:
        """Like :meth:`by` but ``None`` when nothing matches."""
        try:
            return self.by(key, value)
        except UnknownAlgorithm:
            return None


_DES = "cryptography.hazmat.decrepit.ciphers.algorithms:TripleDES"

CIPHERS: Table[Cipher] = Table(
    "cipher",
    (
        # name, ike, esp, sadb, conf names, setkey names, xfrm, min, max, default, allowed,
        # variable, block, implementation, simulated kernel (rank, ivlen, min, max, sizes)
        # single DES = 3DES with K1=K2=K3 (ciphers.py)
        Cipher("des", 1, 2, 2, ("des",), ("des-cbc",), "cbc(des)",
               64, 64, 64, None, False, 8, _DES, KernelAlg(1, 8, 64, 64)),
        Cipher("3des", 5, 3, 3, ("3des",), ("3des-cbc",), "cbc(des3_ede)",
               192, 192, 192, None, False, 8, _DES, KernelAlg(2, 8, 192, 192)),
        Cipher("blowfish", 3, 7, 7, ("blowfish",), ("blowfish-cbc",), "cbc(blowfish)",
               40, 448, 128, None, True, 8,
               "cryptography.hazmat.decrepit.ciphers.algorithms:Blowfish",
               KernelAlg(4, 8, 40, 448)),
        Cipher("cast128", 6, 6, 6, ("cast128",), ("cast128-cbc",), "cbc(cast5)",
               40, 128, 128, None, True, 8,
               "cryptography.hazmat.decrepit.ciphers.algorithms:CAST5",
               KernelAlg(3, 8, 40, 128)),
        Cipher("aes", 7, 12, 12, ("aes", "rijndael"), ("aes-cbc", "rijndael-cbc"), "cbc(aes)",
               128, 256, 128, (128, 192, 256), True, 16,
               "cryptography.hazmat.primitives.ciphers.algorithms:AES",
               KernelAlg(5, 8, 128, 256, (128, 192, 256))),
        Cipher("camellia", 8, 22, 22, ("camellia",), ("camellia-cbc",), "cbc(camellia)",
               128, 256, 128, (128, 192, 256), True, 16,
               "cryptography.hazmat.decrepit.ciphers.algorithms:Camellia",
               KernelAlg(7, 8, 128, 256, (128, 192, 256))),
        Cipher("idea", 2, 5, None, ("idea",), (), None,
               128, 128, 128, None, False, 8, None),
        Cipher("rc5", 4, 4, None, ("rc5",), (), None,
               40, 2040, 128, None, True, 8, None),
        Cipher("des_iv64", None, 1, 2, ("des_iv64",), (), None,
               64, 64, 64, None, False, 8, None),
        Cipher("des_iv32", None, 9, 2, ("des_iv32",), ("des-32iv",), None,
               64, 64, 64, None, False, 8, None),
        Cipher("des-deriv", None, None, 2, (), ("des-deriv",), None,
               64, 64, 64, None, False, 8, None),
        Cipher("3idea", None, 8, None, ("3idea",), (), None,
               384, 384, 384, None, False, 8, None),
        Cipher("rc4", None, 10, None, ("rc4",), (), None,
               40, 2048, 128, None, True, 1, None),
        Cipher("null", None, 11, 11, ("null_enc", "null"), ("null", "simple"), "ecb(cipher_null)",
               0, 0, 0, None, False, 1, None, KernelAlg(0, 0, 0, 2048)),
        Cipher("aes-ctr", None, 13, 13, (), ("aes-ctr",), "rfc3686(ctr(aes))",
               160, 288, 160, (160, 224, 288), True, 1, None, KernelAlg(9, 8, 160, 288)),
        Cipher("aes-ccm-8", None, 14, 14, (), (), "rfc4309(ccm(aes))",
               152, 280, 152, (152, 216, 280), True, 1, None),
        Cipher("aes-ccm-12", None, 15, 15, (), (), "rfc4309(ccm(aes))",
               152, 280, 152, (152, 216, 280), True, 1, None),
        Cipher("aes-ccm-16", None, 16, 16, (), (), "rfc4309(ccm(aes))",
               152, 280, 152, (152, 216, 280), True, 1, None),
        Cipher("aes-gcm-8", None, 18, 18, (), (), "rfc4106(gcm(aes))",
               160, 288, 160, (160, 224, 288), True, 1, None),
        Cipher("aes-gcm-12", None, 19, 19, (), (), "rfc4106(gcm(aes))",
               160, 288, 160, (160, 224, 288), True, 1, None),
        Cipher("aes-gcm-16", None, 20, 20, (), (), "rfc4106(gcm(aes))",
               160, 288, 160, (160, 224, 288), True, 1, None),
        Cipher("null-aes-gmac", None, 23, 23, (), (), "rfc4543(gcm(aes))",
               160, 288, 160, (160, 224, 288), True, 1, None),
        Cipher("serpent", None, 252, 252, (), (), "cbc(serpent)",
               128, 256, 128, None, True, 16, None, KernelAlg(6, 8, 128, 256)),
        Cipher("twofish", None, 253, 253, ("twofish",), ("twofish-cbc",), "cbc(twofish)",
               0, 256, 128, None, True, 16, None, KernelAlg(8, 8, 128, 256)),
    ),
)

HASHES: Table[HashAlgorithm] = Table(
    "hash",
    (
        HashAlgorithm("md5", 1, "md5", 16, ("md5",)),
        HashAlgorithm("sha1", 2, "sha1", 20, ("sha1",)),
        HashAlgorithm("sha256", 4, "sha256", 32, ("sha256", "sha2_256")),
        HashAlgorithm("sha384", 5, "sha384", 48, ("sha384", "sha2_384")),
        HashAlgorithm("sha512", 6, "sha512", 64, ("sha512", "sha2_512")),
    ),
)

AUTH_ALGORITHMS: Table[AuthAlgorithm] = Table(
    "authentication algorithm",
    (
        # name, ike hash, auth attr, AH id, sadb, conf names, setkey names, xfrm, min, max, icv,
        # hashlib, simulated kernel (rank, ivlen, min, max)
        AuthAlgorithm("hmac-md5", 1, 1, 2, 2, ("hmac_md5",), ("hmac-md5",), "hmac(md5)",
                      128, 128, 96, "md5", KernelAlg(1, 0, 128, 128)),
        AuthAlgorithm("hmac-sha1", 2, 2, 3, 3, ("hmac_sha1",), ("hmac-sha1",), "hmac(sha1)",
                      160, 160, 96, "sha1", KernelAlg(2, 0, 160, 160)),
        AuthAlgorithm("hmac-sha256", 4, 5, 5, 5, ("hmac_sha256", "hmac_sha2_256"),
                      ("hmac-sha256", "hmac-sha2-256"), "hmac(sha256)", 256, 256, 128, "sha256",
                      KernelAlg(3, 0, 256, 256)),
        AuthAlgorithm("hmac-sha384", 5, 6, 6, 6, ("hmac_sha384", "hmac_sha2_384"),
                      ("hmac-sha384", "hmac-sha2-384"), "hmac(sha384)", 384, 384, 192, "sha384",
                      KernelAlg(4, 0, 384, 384)),
        AuthAlgorithm("hmac-sha512", 6, 7, 7, 7, ("hmac_sha512", "hmac_sha2_512"),
                      ("hmac-sha512", "hmac-sha2-512"), "hmac(sha512)", 512, 512, 256, "sha512",
                      KernelAlg(5, 0, 512, 512)),
        AuthAlgorithm("hmac-ripemd160", None, 8, 8, 8, (), ("hmac-ripemd160",), "hmac(rmd160)",
                      160, 160, 96, None, KernelAlg(6, 0, 160, 160)),
        AuthAlgorithm("aes-xcbc-mac", None, 9, 9, 9, (), ("aes-xcbc-mac",), "xcbc(aes)",
                      128, 128, 96, None, KernelAlg(7, 0, 128, 128)),
        AuthAlgorithm("keyed-md5", None, None, None, 249, (), ("keyed-md5",), None,
                      128, 128, 96, "md5", KernelAlg(8, 0, 128, 128)),
        AuthAlgorithm("keyed-sha1", None, None, None, 250, (), ("keyed-sha1",), None,
                      160, 160, 96, "sha1", KernelAlg(9, 0, 160, 160)),
        AuthAlgorithm("null", None, None, None, 251, (), ("null",), "digest_null",
                      0, 0, 0, None, KernelAlg(0, 0, 0, 2048)),
        AuthAlgorithm("tcp-md5", None, None, None, 252, (), ("tcp-md5",), None,
                      8, 640, None, None, KernelAlg(10, 0, 8, 640)),
        AuthAlgorithm("des-mac", None, 3, None, None, (), (), None, 64, 64, None, None),
        AuthAlgorithm("kpdk", None, 4, None, None, (), (), None, 0, 0, None, None),
        # racoon.conf "non_auth": ESP without an authentication attribute, SADB aalg none.
        AuthAlgorithm("non_auth", None, None, None, 0, ("non_auth",), (), None, 0, 0, None, None),
    ),
)

IPCOMP_ALGORITHMS: Table[CompressionAlgorithm] = Table(
    "IPComp algorithm",
    (
        CompressionAlgorithm("oui", 1, 1, ("oui",), ("oui",), None),
        CompressionAlgorithm("deflate", 2, 2, ("deflate",), ("deflate",), "deflate"),
        CompressionAlgorithm("lzs", 3, 3, ("lzs",), ("lzs",), "lzs"),
    ),
)


def cipher_by_ike_id(ike_id: int) -> Cipher:
    """Phase-1 encryption algorithm by Oakley id."""
    return CIPHERS.by("ike_id", ike_id)


def cipher_by_sadb_id(sadb_id: int) -> Cipher:
    """Encryption algorithm by PF_KEY ealg number (first/canonical row for shared numbers)."""
    return CIPHERS.by("sadb_id", sadb_id)


def hash_by_ike_id(ike_id: int) -> HashAlgorithm:
    """Phase-1 hash by Oakley id."""
    return HASHES.by("ike_id", ike_id)


def auth_by_sadb_id(sadb_id: int) -> AuthAlgorithm:
    """Integrity algorithm by PF_KEY aalg number."""
    return AUTH_ALGORITHMS.by("sadb_id", sadb_id)


def kernel_ciphers() -> tuple[Cipher, ...]:
    """The ciphers the simulated kernel has, in its REGISTER reply's order."""
    ranked = [(c.kernel.rank, c) for c in CIPHERS if c.kernel is not None]
    return tuple(c for _, c in sorted(ranked, key=lambda pair: pair[0]))


def kernel_auth_algorithms() -> tuple[AuthAlgorithm, ...]:
    """The integrity algorithms the simulated kernel has, in its REGISTER reply's order."""
    ranked = [(a.kernel.rank, a) for a in AUTH_ALGORITHMS if a.kernel is not None]
    return tuple(a for _, a in sorted(ranked, key=lambda pair: pair[0]))
