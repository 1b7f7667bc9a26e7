"""Trusted CAs: the hashed directory of ``path certificate`` plus ``ca_type x509`` files.

racoon hands ``path certificate`` to OpenSSL's hash-directory lookup, so the operator makes each
CA findable with ``ln -s cacert.pem `openssl x509 -noout -hash -in cacert.pem`.0``; several CAs
(the memo adds VeriSign's ``veri_cert.pem``) simply mean several links, and two CA names with the
same hash get ``.0`` and ``.1``. The lookup here follows OpenSSL's: compute the issuer name's hash,
read ``<hash>.0``, ``<hash>.1``, ... until the first missing index, and keep the certificates whose
subject equals the wanted name. Everything tried is recorded, so that a failure can say which
file names were looked for, and a link made with the pre-1.0 MD5 hash (the memo dates from 2003)
is pointed out instead of silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .certs import certificate_subject, crl_issuer, load_certificates, load_crls
from .errors import PkiError
from .name import DistinguishedName


@dataclass(frozen=True)
class CrlLookup:
    """CRLs issued under a name, and the file names tried."""

    name: DistinguishedName
    crls: tuple[x509.CertificateRevocationList, ...]
    looked_for: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class IssuerLookup:
    """The result of looking a name up: matching certificates and what was tried."""

    name: DistinguishedName
    certificates: tuple[x509.Certificate, ...]
    looked_for: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class CaDirectory:
    """A directory of CA certificates named by OpenSSL subject hash (``<hash>.<n>``).

    Loaded files are cached by (mtime, size), so a long-running daemon sees new links without
    re-reading unchanged ones.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._cache: dict[Path, tuple[tuple[int, int], list[x509.Certificate]]] = {}
        self._crl_cache: dict[Path, tuple[tuple[int, int], list[x509.CertificateRevocationList]]]
        self._crl_cache = {}

    def __repr__(self) -> str:
        return f"CaDirectory({str(self.path)!r})"

    def _load(self, path: Path) -> list[x509.Certificate]:
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        certs = load_certificates(path)
        self._cache[path] = (key, certs)
        return certs

    def lookup(self, name: DistinguishedName) -> IssuerLookup:
        """Find certificates whose subject is ``name`` (``<hash>.0``, ``.1``, ...)."""
        digest = name.subject_hash_hex()
        found: list[x509.Certificate] = []
        looked: list[str] = []
        notes: list[str] = []
        index = 0
        while True:
            candidate = self.path / f"{digest}.{index}"
            looked.append(candidate.name)
            if not candidate.exists():
                if candidate.is_symlink():
                    notes.append(f"{candidate} is a dangling symbolic link")
                break
            try:
                certs = self._load(candidate)
            except (PkiError, OSError) as exc:
                notes.append(f"{candidate}: {exc}")
                certs = []
            for cert in certs:
                subject = certificate_subject(cert)
                if subject == name:
                    found.append(cert)
                else:
                    notes.append(f"{candidate} holds '{subject}' (same hash, other name)")
            index += 1
        if not self.path.is_dir():
            notes.append(f"{self.path} is not a directory (check 'path certificate')")
        elif not found:
            old = self.path / f"{name.subject_hash_old_hex()}.0"
            if old.exists():
                notes.append(
                    f"{old} exists but uses the pre-OpenSSL-1.0 hash; re-create the link with "
                    f"'ln -s <cacert> $(openssl x509 -noout -hash -in <cacert>).0'"
                )
        return IssuerLookup(name, tuple(found), tuple(looked), tuple(notes))

    def lookup_crls(self, issuer: DistinguishedName) -> CrlLookup:
        """CRLs of ``issuer`` from ``<hash>.r0``, ``.r1``, ... (OpenSSL's hash-dir CRL names)."""
        digest = issuer.subject_hash_hex()
        found: list[x509.CertificateRevocationList] = []
        looked: list[str] = []
        notes: list[str] = []
        index = 0
        while True:
            candidate = self.path / f"{digest}.r{index}"
            looked.append(candidate.name)
            if not candidate.exists():
                break
            try:
                st = candidate.stat()
                key = (st.st_mtime_ns, st.st_size)
                cached = self._crl_cache.get(candidate)
                if cached and cached[0] == key:
                    crls = cached[1]
                else:
                    crls = load_crls(candidate)
                    self._crl_cache[candidate] = (key, crls)
            except (PkiError, OSError) as exc:
                notes.append(f"{candidate}: {exc}")
                crls = []
            found.extend(c for c in crls if crl_issuer(c) == issuer)
            index += 1
        return CrlLookup(issuer, tuple(found), tuple(looked), tuple(notes))

    def link(self, cert_file: str | os.PathLike[str]) -> Path:
        """Make ``<hash>.<n>`` point at ``cert_file``, as the memo's ``ln -s`` does.

        Picks the first free index; if a link for the same certificate already exists, returns
        it unchanged. The link target is relative when the file is inside this directory.
        """
        cert_path = Path(cert_file)
        if not cert_path.is_absolute():
            cert_path = self.path / cert_path
        cert = load_certificates(cert_path)[0]
        fingerprint = cert.fingerprint(hashes.SHA256())
        digest = certificate_subject(cert).subject_hash_hex()
        index = 0
        while True:
            link = self.path / f"{digest}.{index}"
            if not link.exists() and not link.is_symlink():
                break
            try:
                existing = self._load(link)
            except (PkiError, OSError):
                existing = []
            if any(c.fingerprint(hashes.SHA256()) == fingerprint for c in existing):
                return link
            index += 1
        target = cert_path.name if cert_path.parent.resolve() == self.path.resolve() else cert_path
        link.symlink_to(target)
        return link


@dataclass
class TrustStore:
    """Everything racoon trusts for one remote: ``ca_type`` certificates, then the CA directory."""

    ca_directory: CaDirectory | None = None
    ca_certificates: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    @classmethod
    def from_paths(
        cls,
        ca_directory: str | os.PathLike[str] | None = None,
        ca_files: Iterable[str | os.PathLike[str]] = (),
        crl_files: Iterable[str | os.PathLike[str]] = (),
    ) -> TrustStore:
        """A CA directory (``path certificate``), ``ca_type`` files and optional CRL files."""
        certs = [c for f in ca_files for c in load_certificates(f)]
        crls = [c for f in crl_files for c in load_crls(f)]
        directory = CaDirectory(ca_directory) if ca_directory is not None else None
        return cls(directory, certs, crls)

    def lookup(self, name: DistinguishedName) -> IssuerLookup:
        explicit = tuple(c for c in self.ca_certificates if certificate_subject(c) == name)
        if self.ca_directory is None:
            return IssuerLookup(name, explicit)
        found = self.ca_directory.lookup(name)
        seen = {c.fingerprint(hashes.SHA256()) for c in explicit}
        merged = explicit + tuple(
            c for c in found.certificates if c.fingerprint(hashes.SHA256()) not in seen
        )
        return IssuerLookup(name, merged, found.looked_for, found.notes)

    def lookup_crls(self, issuer: DistinguishedName) -> CrlLookup:
        explicit = tuple(c for c in self.crls if crl_issuer(c) == issuer)
        if self.ca_directory is None:
            return CrlLookup(issuer, explicit)
        found = self.ca_directory.lookup_crls(issuer)
        return CrlLookup(issuer, explicit + found.crls, found.looked_for, found.notes)

    def contains(self, cert: x509.Certificate) -> bool:
        """Is this very certificate (byte for byte) trusted?"""
        fingerprint = cert.fingerprint(hashes.SHA256())
        return any(
            c.fingerprint(hashes.SHA256()) == fingerprint
            for c in self.lookup(certificate_subject(cert)).certificates
        )

    def explain_missing(self, lookup: IssuerLookup) -> str:
        """Where we looked, for an "issuer not found" message."""
        if self.ca_directory is not None:
            where = (
                f"in the CA directory {self.ca_directory.path} "
                f"(looked for {', '.join(lookup.looked_for)})"
            )
            if self.ca_certificates:
                where += " nor among the ca_type certificates"
        elif self.ca_certificates:
            where = "among the ca_type certificates (no 'path certificate' directory is set)"
        else:
            where = "anywhere: no CA directory ('path certificate') and no ca_type is configured"
        text = f"not found {where}"
        if lookup.notes:
            text += "; " + "; ".join(lookup.notes)
        return text
