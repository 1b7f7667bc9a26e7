"""sainfo selection: racoon's getsainfo() with the reason for every verdict.

Users are regularly surprised that racoon matches sainfo IDs by **exact equality** with the
quick-mode ID payloads, not by containment (racoon.conf(5): sainfo): ``sainfo subnet 10.0.0.0/16``
does not match a peer proposing ``10.0.1.0/24``.  The only leniency is that an ID_IPVx_ADDR
equals an ID_IPVx_ADDR_SUBNET whose mask is all ones.  Since that is confusing, every candidate
comes back with a sentence saying why it did or did not match, for the log.

Search order is racoon's inssainfo() order: score (+3 ``remoteid``, +3 ``from``, +1 for each
non-anonymous ID), ties in file order; the first match wins.  The parser already keeps
:attr:`Config.sainfos` in that order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from pyracoon.config.model import SaInfo, SaInfoId
from pyracoon.pki.errors import PkiError
from pyracoon.pki.identity import IdentifierSpec, Identity, IdType, identifier_matches
from pyracoon.wire.constants import IDType

__all__ = ["IdPayloadLike", "SaInfoCandidate", "describe_id", "id_equal", "sainfo_candidates"]


class IdPayloadLike(Protocol):
    """What the matcher needs of an ID payload: the wire ``Identification`` payload, the pki
    ``Identity`` and :class:`~pyracoon.config.model.SaInfoId` all fit."""

    @property
    def id_type(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def protocol_id(self) -> int: ...
    @property
    def port(self) -> int: ...


@dataclass(frozen=True)
class SaInfoCandidate:
    """One sainfo considered, in search order, with the verdict and its reason."""

    sainfo: SaInfo
    matched: bool
    reason: str

    def __str__(self) -> str:
        verdict = "matched" if self.matched else "not matched"
        return f"sainfo {self.sainfo.describe()} ({self.sainfo.file}:{self.sainfo.line}): " \
               f"{verdict}: {self.reason}"


_ADDR_OF_SUBNET = {IDType.IPV4_ADDR_SUBNET: IDType.IPV4_ADDR,
                   IDType.IPV6_ADDR_SUBNET: IDType.IPV6_ADDR}


def _normalized(id_type: int, data: bytes) -> tuple[int, bytes]:
    """An ADDR_SUBNET with an all-ones mask becomes the ADDR it denotes; nothing else changes."""
    addr_type = _ADDR_OF_SUBNET.get(IDType(id_type)) if id_type in (4, 6) else None
    if addr_type is not None and len(data) % 2 == 0:
        half = len(data) // 2
        if data[half:] == b"\xff" * half:
            return int(addr_type), data[:half]
    return id_type, data


def describe_id(id_type: int, data: bytes, protocol_id: int = 0, port: int = 0) -> str:
    """A short human form of an ID payload: ``10.0.0.0/24[any] tcp``, ``fqdn "x"``..."""
    try:
        kind = IDType(id_type)
    except ValueError:
        return f"ID type {id_type} ({data.hex()})"
    text: str
    if kind in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
        text = str(ipaddress.ip_address(data)) if len(data) in (4, 16) else data.hex()
    elif kind in (IDType.IPV4_ADDR_SUBNET, IDType.IPV6_ADDR_SUBNET) and len(data) in (8, 32):
        half = len(data) // 2
        mask = int.from_bytes(data[half:], "big")
        prefix = bin(mask).count("1")
        text = f"{ipaddress.ip_address(data[:half])}/{prefix}"
    elif kind in (IDType.IPV4_ADDR_RANGE, IDType.IPV6_ADDR_RANGE) and len(data) in (8, 32):
        half = len(data) // 2
        text = f"{ipaddress.ip_address(data[:half])}-{ipaddress.ip_address(data[half:])}"
    elif kind in (IDType.FQDN, IDType.USER_FQDN, IDType.KEY_ID):
        name = {IDType.FQDN: "fqdn", IDType.USER_FQDN: "user_fqdn", IDType.KEY_ID: "keyid"}[kind]
        text = f'{name} "{data.decode("utf-8", "replace")}"'
    else:
        text = f"{kind} {data.hex()}"
    if kind in (IDType.FQDN, IDType.USER_FQDN, IDType.KEY_ID) and not (protocol_id or port):
        return text
    return f"{text}[{port if port else 'any'}] {protocol_id if protocol_id else 'any'}"


def _type_name(id_type: int) -> str:
    try:
        return str(IDType(id_type))
    except ValueError:
        return str(id_type)


def _describe(payload: IdPayloadLike) -> str:
    return describe_id(payload.id_type, payload.data, payload.protocol_id, payload.port)


def id_equal(payload: IdPayloadLike, configured: SaInfoId) -> tuple[bool, str]:
    """racoon's ipsecdoi_chkcmpids() for one configured ID: exact equality of type (ADDR equals
    a full-mask SUBNET), upper-layer protocol, port and data.  Returns (equal, reason)."""
    got_type, got_data = _normalized(int(payload.id_type), bytes(payload.data))
    want_type, want_data = _normalized(int(configured.id_type), configured.data)
    if got_type != want_type:
        return False, f"ID type {_type_name(got_type)} is not {_type_name(want_type)}"
    if payload.protocol_id != configured.protocol_id:
        return False, (f"upper-layer protocol {payload.protocol_id or 'any'} is not "
                       f"{configured.protocol_id or 'any'}")
    if payload.port != configured.port:
        return False, f"port {payload.port or 'any'} is not {configured.port or 'any'}"
    if got_data != want_data:
        return False, (f"{_describe(payload)} is not {configured.text} "
                       "(sainfo IDs match exactly, not by containment)")
    return True, "equal"


def _from_matches(peer_id: IdPayloadLike | None, spec: IdentifierSpec) -> tuple[bool, str]:
    if peer_id is None:
        return False, f"'from {spec}' needs the peer's phase-1 ID and there is none"
    try:
        identity = Identity(IdType(int(peer_id.id_type)), bytes(peer_id.data),
                            peer_id.protocol_id, peer_id.port)
        ok = identifier_matches(spec, identity)
    except (ValueError, PkiError) as exc:
        return False, f"'from {spec}' cannot be compared: {exc}"
    if ok:
        return True, "equal"
    return False, f"peer ID {_describe(peer_id)} is not 'from {spec}'"


def _check(sainfo: SaInfo, local_id: IdPayloadLike | None, remote_id: IdPayloadLike | None,
           peer_id: IdPayloadLike | None, remoteid: int,
           client: IdPayloadLike | None) -> tuple[bool, str]:
    if sainfo.remoteid != remoteid:
        return False, f"remoteid {sainfo.remoteid} is not the remote's ph1id {remoteid}"
    if sainfo.from_id is not None:
        ok, why = _from_matches(peer_id, sainfo.from_id)
        if not ok:
            return False, why
    if sainfo.local_id is not None:
        if local_id is None:
            return False, "no local ID to compare"
        ok, why = id_equal(local_id, sainfo.local_id)
        if not ok:
            return False, f"local: {why}"
    if sainfo.remote_clientaddr:
        if client is None:
            return False, "clientaddr needs the peer's address or mode-cfg address"
        if remote_id is None:
            return False, "no remote ID to compare"
        client_id = SaInfoId("client", IDType(int(client.id_type)), bytes(client.data),
                             client.protocol_id, client.port, _describe(client))
        ok, why = id_equal(remote_id, client_id)
        if not ok:
            return False, f"remote (clientaddr): {why}"
        return True, "local ID matches and the remote ID is the client address"
    if sainfo.remote_id is not None:
        if remote_id is None:
            return False, "no remote ID to compare"
        ok, why = id_equal(remote_id, sainfo.remote_id)
        if not ok:
            return False, f"remote: {why}"
    if sainfo.local_id is None and sainfo.remote_id is None:
        return True, "anonymous matches any ID"
    return True, "IDs are equal"


def sainfo_candidates(sainfos: Iterable[SaInfo], local_id: IdPayloadLike | None,
                      remote_id: IdPayloadLike | None, peer_id: IdPayloadLike | None = None,
                      remoteid: int = 0,
                      client: IdPayloadLike | None = None) -> list[SaInfoCandidate]:
    """Judge every sainfo (already in search order) against the quick-mode IDs.

    ``local_id``/``remote_id`` are our and the peer's client IDs (IDci/IDcr as seen from us),
    ``peer_id`` the peer's phase-1 ID (for ``from``), ``remoteid`` the remote's ``ph1id``,
    ``client`` the peer's address or mode-cfg address as an ID (for ``clientaddr``).
    """
    return [SaInfoCandidate(s, *_check(s, local_id, remote_id, peer_id, remoteid, client))
            for s in sainfos]
