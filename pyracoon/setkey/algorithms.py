"""setkey's names for SADB algorithms, protocols and key-size ranges, in one table each.

Every name, number and key range comes from the one algorithm table,
:mod:`pyracoon.crypto.algorithms` (its ``setkey_names``, ``sadb_id`` and ``kernel`` columns);
what is setkey's own is the grammar around the names. Two naming schemes coexist, exactly as in
ipsec-tools 0.8.2:

* the *input* names of setkey's lexer (``-E 3des-cbc``, ``-A keyed-md5``, aliases such as
  ``rijndael-cbc`` and ``hmac-sha2-256``), and
* the *dump* names of libipsec's ``pfkey_sadump`` (``E: null``, ``A: md5``, ``A: sha``), which
  differ for the old keyed algorithms and for ``simple``.

The built-in key ranges are the ones the simulated kernel reports in its REGISTER reply (the
table's ``kernel`` column, setkey(8): algorithms); setkey itself only checks against what the
kernel said, so they are used only with ``-n``, when no kernel is asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    kernel_auth_algorithms,
    kernel_ciphers,
)
from pyracoon.kernel.sadb import SaType


class KeyForm(Enum):
    """What an algorithm name expects after it on the command line (parse.y token classes)."""

    KEY = "key"
    """ALG_ENC / ALG_AUTH: a key string follows."""
    NOKEY = "nokey"
    """ALG_ENC_NOKEY / ALG_AUTH_NOKEY (``null``): nothing follows."""
    OLD = "old"
    """ALG_ENC_OLD (``simple``): obsolete null cipher; the KAME memo of 2003 still gave it a key,
    so an optional key is accepted (see ``parser``)."""
    DESDERIV = "des-deriv"
    """des-cbc with the IV derived from the key (SADB_X_EXT_DERIV); not with -old."""
    DES32IV = "des-32iv"
    """des-cbc with a 32-bit IV (SADB_X_EXT_IV4B); needs ah-old/esp-old."""


@dataclass(frozen=True)
class AlgName:
    """One input name of the setkey lexer."""

    name: str
    id: int
    form: KeyForm = KeyForm.KEY


_FORMS: dict[str, KeyForm] = {
    "null": KeyForm.NOKEY,
    "simple": KeyForm.OLD,
    "des-deriv": KeyForm.DESDERIV,
    "des-32iv": KeyForm.DES32IV,
}
"""The names parse.y gives a token class other than ALG_ENC / ALG_AUTH."""


def _names(rows: Iterable[Cipher | AuthAlgorithm]) -> dict[str, AlgName]:
    out: dict[str, AlgName] = {}
    for row in rows:
        if row.sadb_id is None:
            continue
        for name in row.setkey_names:
            out.setdefault(name, AlgName(name, row.sadb_id, _FORMS.get(name, KeyForm.KEY)))
    return out


ENCRYPTION_NAMES: dict[str, AlgName] = _names(CIPHERS)
"""``-E`` names (setkey token.l, state S_ENCALG): the table's ``setkey_names`` column."""

AUTHENTICATION_NAMES: dict[str, AlgName] = _names(AUTH_ALGORITHMS)
"""``-A`` names (setkey token.l, state S_AUTHALG): the table's ``setkey_names`` column."""

COMPRESSION_NAMES: dict[str, int] = {
    name: row.sadb_id for row in IPCOMP_ALGORITHMS for name in row.setkey_names
}
"""``-C`` names."""

TCP_MD5_KEY_BYTES = (1, 80)
"""setkey checks TCP-MD5 keys itself (1..80 bytes) instead of asking the kernel's ranges."""

# ---------------------------------------------------------------------------------------------
# key ranges


@dataclass(frozen=True)
class KeyRange:
    """``sadb_alg_minbits``/``maxbits`` of one algorithm, in bits."""

    minbits: int
    maxbits: int

    def allows(self, bits: int) -> bool:
        return self.minbits <= bits <= self.maxbits


DEFAULT_ENCRYPTION_RANGES: dict[int, KeyRange] = {
    c.sadb_id or 0: KeyRange(c.kernel.min_bits, c.kernel.max_bits)
    for c in kernel_ciphers()
    if c.kernel is not None
}
"""setkey(8): algorithms: what a usual kernel's REGISTER reply says -- the simulated kernel's own
answer (the table's ``kernel`` column), so that ``pysetkey -n`` and ``pysetkey`` against
``pyracoon-kernel`` agree."""

DEFAULT_AUTHENTICATION_RANGES: dict[int, KeyRange] = {
    a.sadb_id or 0: KeyRange(a.kernel.min_bits, a.kernel.max_bits)
    for a in kernel_auth_algorithms()
    if a.kernel is not None
}


@dataclass
class SupportedAlgorithms:
    """The key-size ranges setkey checks keys against: the kernel's REGISTER answer.

    ``None`` for a table means "not learnt yet", which libipsec reports as "Must get supported
    algorithms list first"; an algorithm missing from a learnt table is "Not supported".
    """

    encryption: dict[int, KeyRange] | None = None
    authentication: dict[int, KeyRange] | None = None

    @classmethod
    def builtin(cls) -> SupportedAlgorithms:
        """The usual ranges, for ``-n`` where no kernel is asked."""
        return cls(dict(DEFAULT_ENCRYPTION_RANGES), dict(DEFAULT_AUTHENTICATION_RANGES))


PROTO_SATYPE: dict[str, tuple[int, bool]] = {
    "esp": (SaType.ESP, False),
    "ah": (SaType.AH, False),
    "esp-old": (SaType.ESP, True),
    "ah-old": (SaType.AH, True),
    "ipcomp": (SaType.IPCOMP, False),
    "tcp": (SaType.TCPSIGNATURE, False),
}
"""Security protocol names of ``add``/``get``/``flush``... -> (satype, sets SADB_X_EXT_OLD)."""
