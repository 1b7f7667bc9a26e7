"""Credentials, loaded when the configuration is: at start-up and on every reload.

Each remote's certificate and private key (``certificate_type x509``), the trust store its
peers are checked against (``ca_type`` plus the hashed ``path certificate`` directory), its
pinned ``peers_certfile`` and the CR payload data derived from them are read once, by
:meth:`Credentials.load`, not while a negotiation runs on the event loop.  At start-up the
daemon loads them itself, stops on a certificate or key that fails
(:meth:`Credentials.check_my_certificate`), and hands the same object to the engine, so no file
is read twice.  A file that cannot
be loaded is one clear log line then (naming the remote, the file and the reason, see
:attr:`Credentials.problems`), and a negotiation that needs it fails with the same
:class:`~pyracoon.engine.errors.LocalError` as before ("failed to load our certificate or key:
..."), so the log still says why at the time it matters.

psk.txt is the exception racoon makes: editing it takes effect without a reload.  The
:class:`~pyracoon.engine.psk.PskFile` kept here re-reads it only when a stat says it changed
(inode, size, mtime, mode, owner), so a lookup costs a stat, not a read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from pyracoon.config.model import Config, Remote
from pyracoon.crypto.keys import SIGNATURE_METHODS
from pyracoon.pki import (
    Identity,
    PkiError,
    TrustStore,
    build_my_identity,
    certificate_issuer,
    certificate_subject,
    check_key_pair,
    load_certificate,
    load_private_key,
)

from .errors import LocalError
from .events import Endpoint
from .psk import PskFile, PskSource

T = TypeVar("T")
EXPIRY_WARNING = timedelta(days=30)
"""How long before our certificate's end the daemon starts warning (at start and reload)."""
MyCertificate = tuple[x509.Certificate, PrivateKeyTypes]
"""Our certificate and its private key (``certificate_type x509``)."""


@dataclass
class _Loaded(Generic[T]):
    """One loaded thing, or the error a negotiation that needs it raises."""

    value: T | None = None
    error: LocalError | None = None
    cause: Exception | None = None
    """What loading raised, in its own words (the daemon's start-up error says it so)."""

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        assert self.value is not None  # one of the two is always set
        return self.value


def _uses_signatures(remote: Remote) -> bool:
    return any(int(p.authentication_method) in SIGNATURE_METHODS for p in remote.proposals)


@dataclass
class Credentials:
    """What the negotiations of one configuration authenticate with."""

    config: Config
    #: An injected pre-shared key source (tests, or a daemon that reads the file itself).
    psk_override: PskSource | None = None
    #: ``remote X: ...`` lines for every file that failed to load, for the log.
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._mine: dict[tuple[str, str | None], _Loaded[MyCertificate]] = {}
        self._trust: dict[str | None, _Loaded[TrustStore]] = {}
        self._pinned: dict[str, _Loaded[x509.Certificate]] = {}
        self._ca_subject: dict[str, bytes] = {}
        self._identities: dict[tuple[int, str], Identity] = {}
        path = self.config.paths.pre_shared_key
        self._psk_file = PskFile(path) if path else None

    @classmethod
    def load(cls, config: Config, psk_override: PskSource | None = None) -> Credentials:
        """Read every remote's files now; failures go to :attr:`problems`."""
        creds = cls(config, psk_override)
        for remote in config.remotes:
            creds._load_remote(remote)
        return creds

    def _path(self, name: str) -> str:
        return self.config.paths.resolve("certificate", name)

    def _problem(self, remote: Remote | None, text: str) -> None:
        where = f"remote {remote.describe()}: " if remote is not None else ""
        self.problems.append(where + text)

    def _load_remote(self, remote: Remote) -> None:
        ct = remote.certificate_type
        if ct is not None and ct.kind == "x509" and ct.certificate is not None:
            self._my_entry(remote, ct.certificate, ct.private_key)
        if _uses_signatures(remote) and remote.verify_cert and remote.peers_certfile is None:
            self._trust_entry(remote)
        pc = remote.peers_certfile
        if pc is not None and pc.kind == "x509" and pc.path:
            self._pinned_entry(remote, pc.path)
        if remote.ca_type and _uses_signatures(remote):
            self._ca_subject_of(remote, remote.ca_type)

    # ------------------------------------------------------------------ loaders
    def _my_entry(
        self, remote: Remote | None, cert_name: str, key_name: str | None
    ) -> _Loaded[MyCertificate]:
        key = (cert_name, key_name)
        if key in self._mine:
            return self._mine[key]
        cert_path = self._path(cert_name)
        key_path = self._path(key_name) if key_name else ""
        try:
            entry: _Loaded[MyCertificate] = _Loaded(
                (load_certificate(cert_path), load_private_key(key_path))
            )
        except (PkiError, OSError, ValueError) as exc:  # all mean the same to a person
            self._problem(
                remote, f"cannot load certificate {cert_path} or private key {key_path}: {exc}"
            )
            entry = _Loaded(
                error=LocalError(f"failed to load our certificate or key: {exc}"), cause=exc
            )
        self._mine[key] = entry
        return entry

    def _trust_entry(self, remote: Remote) -> _Loaded[TrustStore]:
        ca_type = remote.ca_type
        if ca_type in self._trust:
            return self._trust[ca_type]
        ca_files = [self._path(ca_type)] if ca_type else []
        try:
            entry: _Loaded[TrustStore] = _Loaded(
                TrustStore.from_paths(self.config.paths.certificate, ca_files)
            )
        except (PkiError, OSError) as exc:
            named = ca_files[0] if ca_files else self.config.paths.certificate
            self._problem(remote, f"cannot load the CA certificates ({named}): {exc}")
            entry = _Loaded(
                error=LocalError(f"failed to load the CA certificate of ca_type: {exc}")
            )
        self._trust[ca_type] = entry
        return entry

    def _pinned_entry(self, remote: Remote | None, name: str) -> _Loaded[x509.Certificate]:
        if name in self._pinned:
            return self._pinned[name]
        path = self._path(name)
        try:
            entry: _Loaded[x509.Certificate] = _Loaded(load_certificate(path))
        except (PkiError, OSError) as exc:
            self._problem(remote, f"cannot load peers_certfile {path}: {exc}")
            entry = _Loaded(error=LocalError(f"failed to load peers_certfile: {exc}"))
        self._pinned[name] = entry
        return entry

    def _ca_subject_of(self, remote: Remote | None, name: str) -> bytes:
        if name not in self._ca_subject:
            path = self._path(name)
            try:
                self._ca_subject[name] = certificate_subject(load_certificate(path)).der
            except (PkiError, OSError, ValueError) as exc:
                self._problem(remote, f"cannot read the ca_type certificate {path}: {exc}")
                self._ca_subject[name] = b""
        return self._ca_subject[name]

    # ------------------------------------------------------------------ for start-up
    def check_my_certificate(self, remote: Remote) -> None:
        """Raise what loading ``remote``'s ``certificate_type x509`` files raised, or
        ``PrivateKeyLoadError`` when the key is not the certificate's: the daemon refuses to
        start then.  It reads no file again: :meth:`load` read them.  A reload does not call
        it: the daemon keeps running, and a negotiation that needs a broken file fails with its
        reason."""
        ct = remote.certificate_type
        if ct is None or ct.kind != "x509" or ct.certificate is None:
            return
        entry = self._my_entry(remote, ct.certificate, ct.private_key)
        if entry.cause is not None:
            raise entry.cause
        cert, key = entry.get()
        key_path = self._path(ct.private_key) if ct.private_key else ""
        check_key_pair(cert, key, Path(self._path(ct.certificate)), Path(key_path))

    def validity_warnings(self, when: datetime, soon: timedelta = EXPIRY_WARNING) -> list[str]:
        """One line for each of our certificates that is not valid at ``when`` or stops being
        valid within ``soon``: the owner hears it from us at start and reload, instead of only
        from a peer's INVALID-CERT-AUTHORITY or AUTHENTICATION-FAILED later."""
        out = []
        for (cert_name, _), entry in self._mine.items():
            if entry.value is None:
                continue  # a file that did not load is a problem already
            cert, path = entry.value[0], self._path(cert_name)
            start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
            if when < start:
                out.append(
                    f"our certificate {path} is not valid before {start:%Y-%m-%d %H:%M:%S} UTC: "
                    "peers will refuse it until then (is this host's clock right?)"
                )
            elif when > end:
                out.append(
                    f"our certificate {path} expired on {end:%Y-%m-%d %H:%M:%S} UTC: peers "
                    "will refuse it (INVALID-CERT-AUTHORITY or AUTHENTICATION-FAILED); renew it"
                )
            elif end - when < soon:
                days = (end - when).days
                out.append(
                    f"our certificate {path} expires on {end:%Y-%m-%d %H:%M:%S} UTC, in {days} "
                    "day(s): renew it before then"
                )
        return out

    # ------------------------------------------------------------------ for phase 1
    def psk_source(self) -> PskSource | None:
        """Where pre-shared keys come from: the injected source, else ``path pre_shared_key``."""
        if self.psk_override is not None:
            return self.psk_override
        return self._psk_file

    def my_certificate(self, remote: Remote) -> MyCertificate:
        """Our certificate and private key (``certificate_type x509``)."""
        ct = remote.certificate_type
        if ct is None or ct.kind != "x509" or ct.certificate is None:
            raise LocalError(
                "no certificate configured: rsasig needs "
                'certificate_type x509 "cert" "key" in the remote block'
            )
        return self._my_entry(remote, ct.certificate, ct.private_key).get()

    def my_identity(self, remote: Remote, local: Endpoint) -> Identity:
        """Our phase-1 identity from ``my_identifier`` (address, fqdn, asn1dn ...)."""
        cache_key = (id(remote), str(local[0]))
        if cache_key in self._identities:
            return self._identities[cache_key]
        cert = None
        if remote.certificate_type is not None and remote.certificate_type.kind == "x509":
            cert = self.my_certificate(remote)[0]
        try:
            identity = build_my_identity(
                remote.my_identifier,
                certificate=cert,
                local_address=str(local[0]),
                base_dir=self.config.paths.certificate,
            )
        except Exception as exc:
            raise LocalError(f"failed to set my identifier: {exc}") from None
        if any(r is remote for r in self.config.remotes):  # not an old remote after a reload
            self._identities[cache_key] = identity
        return identity

    def trust_store(self, remote: Remote) -> TrustStore:
        """The CAs we trust for this remote: ``ca_type`` first, then the hashed directory."""
        return self._trust_entry(remote).get()

    def peers_certfile(self, remote: Remote) -> x509.Certificate:
        """The pinned ``peers_certfile x509`` certificate of the peer."""
        pc = remote.peers_certfile
        assert pc is not None
        if pc.kind != "x509" or pc.path is None:
            raise LocalError(f"peers_certfile {pc.kind} is not supported")
        return self._pinned_entry(remote, pc.path).get()

    def cr_authority(self, remote: Remote) -> bytes:
        """CR data: issuer of peers_certfile, else subject of ca_type, else empty (racoon's
        oakley.c, oakley_append_rmconf_cr())."""
        pc = remote.peers_certfile
        if pc is not None and pc.path:
            if pc.kind != "x509":
                return b""
            pinned = self._pinned_entry(remote, pc.path)
            return certificate_issuer(pinned.get()).der if pinned.error is None else b""
        if remote.ca_type:
            return self._ca_subject_of(remote, remote.ca_type)
        return b""


__all__ = ["Credentials"]
