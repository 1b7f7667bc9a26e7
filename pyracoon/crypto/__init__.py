"""The Oakley crypto suite of IKEv1, sans-I/O (no sockets, no clocks).

Modules, each named after the RFC concept it implements:

* :mod:`~pyracoon.crypto.algorithms` -- the one table of cipher / integrity / IPComp numbers and
  names (IKE, IPsec DOI, PF_KEY, racoon.conf, setkey, XFRM); no heavy imports;
* :mod:`~pyracoon.crypto.groups` and :mod:`~pyracoon.crypto.dh` -- Oakley groups, KE values and
  g^xy (RFC 2409 s.6, RFC 3526, RFC 5903);
* :mod:`~pyracoon.crypto.prf` -- prf (HMAC) and hash of the negotiated Hash Algorithm;
* :mod:`~pyracoon.crypto.keys` -- SKEYID, SKEYID_d/a/e, appendix-B key stretching, KEYMAT;
* :mod:`~pyracoon.crypto.hashes` -- HASH_I/HASH_R, quick-mode HASH(1..4), informational HASH;
* :mod:`~pyracoon.crypto.iv`, :mod:`~pyracoon.crypto.cbc`, :mod:`~pyracoon.crypto.padding`,
  :mod:`~pyracoon.crypto.ciphers` -- ISAKMP encryption;
* :mod:`~pyracoon.crypto.signature` -- RSA SIG payloads; :mod:`~pyracoon.crypto.nonce` --
  nonces and cookies; :mod:`~pyracoon.crypto.errors` -- typed errors.

This ``__init__`` imports nothing so that ``pyracoon.crypto.algorithms`` stays light.
"""
