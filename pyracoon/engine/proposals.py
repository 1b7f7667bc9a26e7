"""Building our SA payloads and choosing among the peer's, as racoon does.

Phase 1 (racoon.conf(5): proposal and proposal_check): every ``proposal {}`` block is one transform,
numbered in config order, inside a single ISAKMP proposal #1; attributes in racoon's order (life
type and duration, encryption, key length, authentication method, hash, group).  The responder walks
the peer's transforms in the peer's order and takes the first one that one of its own proposals
accepts.

Phase 2 (racoon.conf(5): sainfo): one proposal #1 with one protocol per SPD ipsecrequest, in reverse
SPD order, each with one transform per encryption x authentication combination; attributes life
type and duration, encapsulation mode, [key length], [authentication], [group description].

``proposal_check`` (docs/racoon.md ("proposal_check")) decides how lifetimes, key lengths and
PFS groups may differ.  Every rejection keeps a reason naming the attribute and both values,
because "no suitable proposal found" alone tells nobody what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyracoon.config.model import (
    DEFAULT_LIFETIME,
    Phase1Proposal,
    ProposalCheck,
    Remote,
    SaInfo,
)
from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    HASHES,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
    HashAlgorithm,
)
from pyracoon.wire import SA, Attribute, Proposal, Transform
from pyracoon.wire.constants import (
    AuthenticationMethod,
    EncapsulationMode,
    GroupDescription,
    IPsecAttribute,
    IsakmpTransformID,
    LifeType,
    OakleyAttribute,
    ProtocolID,
    display_name,
    transform_name,
)

from .errors import AttributesNotSupported, NoProposalChosen


# ============================================================================ phase 1
@dataclass(frozen=True)
class Phase1Params:
    """What one phase-1 transform says, in table rows."""

    encryption: Cipher
    key_length: int | None
    hash: HashAlgorithm
    auth_method: int
    dh_group: int
    lifetime: int

    def describe(self) -> str:
        """A one-line summary for log lines."""
        enc = self.encryption.name + (f" {self.key_length}" if self.key_length else "")
        return (
            f"{enc}/{self.hash.name}/{display_name(AuthenticationMethod, self.auth_method)}/"
            f"{display_name(GroupDescription, self.dh_group)}/lifetime {self.lifetime}s"
        )


def phase1_params_of(remote: Remote, proposal: Phase1Proposal) -> Phase1Params:
    """Our proposal block as :class:`Phase1Params` (variable-key ciphers default to 128)."""
    key_length = proposal.key_length
    if key_length is None and proposal.encryption.variable_key:
        key_length = proposal.encryption.default_bits
    return Phase1Params(
        proposal.encryption,
        key_length,
        proposal.hash,
        int(proposal.authentication_method),
        proposal.dh_group,
        remote.proposal_lifetime(proposal),
    )


def phase1_transform(number: int, p: Phase1Params) -> Transform:
    """One Oakley transform with racoon's attribute order."""
    attrs = [
        Attribute(OakleyAttribute.LIFE_TYPE, LifeType.SECONDS),
        Attribute.number(OakleyAttribute.LIFE_DURATION, p.lifetime),
        Attribute(OakleyAttribute.ENCRYPTION_ALGORITHM, int(p.encryption.ike_id or 0)),
    ]
    if p.key_length is not None and p.encryption.variable_key:
        attrs.append(Attribute(OakleyAttribute.KEY_LENGTH, p.key_length))
    attrs += [
        Attribute(OakleyAttribute.AUTHENTICATION_METHOD, p.auth_method),
        Attribute(OakleyAttribute.HASH_ALGORITHM, p.hash.ike_id),
        Attribute(OakleyAttribute.GROUP_DESCRIPTION, p.dh_group),
    ]
    return Transform(number, IsakmpTransformID.KEY_IKE, tuple(attrs))


def phase1_sa(remote: Remote) -> SA:
    """The initiator's SA payload: proposal #1, one transform per proposal block."""
    transforms = tuple(
        phase1_transform(i + 1, phase1_params_of(remote, p)) for i, p in enumerate(remote.proposals)
    )
    return SA((Proposal(1, ProtocolID.ISAKMP, b"", transforms),))


def parse_phase1_transform(t: Transform) -> Phase1Params:
    """Read an Oakley transform; raise :class:`AttributesNotSupported` for what we cannot do."""
    values: dict[int, int] = {}
    life_type = None
    lifetime = DEFAULT_LIFETIME
    for a in t.attributes:
        if a.type == OakleyAttribute.LIFE_TYPE:
            life_type = a.as_int
        elif a.type == OakleyAttribute.LIFE_DURATION:
            if life_type == LifeType.SECONDS:
                lifetime = a.as_int
            elif life_type == LifeType.KILOBYTES:
                pass  # racoon ignores byte lifetimes (deprecated)
        else:
            values[a.type] = a.as_int
    missing = [
        name
        for attr, name in (
            (OakleyAttribute.ENCRYPTION_ALGORITHM, "Encryption Algorithm"),
            (OakleyAttribute.HASH_ALGORITHM, "Hash Algorithm"),
            (OakleyAttribute.AUTHENTICATION_METHOD, "Authentication Method"),
            (OakleyAttribute.GROUP_DESCRIPTION, "Group Description"),
        )
        if attr not in values
    ]
    if missing:
        raise AttributesNotSupported(
            f"transform #{t.number} lacks {', '.join(missing)}", details=()
        )
    cipher = CIPHERS.get("ike_id", values[OakleyAttribute.ENCRYPTION_ALGORITHM])
    hash_ = HASHES.get("ike_id", values[OakleyAttribute.HASH_ALGORITHM])
    if cipher is None or hash_ is None:
        raise AttributesNotSupported(f"transform #{t.number}: unknown encryption or hash")
    return Phase1Params(
        cipher,
        values.get(OakleyAttribute.KEY_LENGTH),
        hash_,
        values[OakleyAttribute.AUTHENTICATION_METHOD],
        values[OakleyAttribute.GROUP_DESCRIPTION],
        lifetime,
    )


def _check_lifetime(check: ProposalCheck, peer: int, mine: int) -> tuple[int | None, str]:
    """(lifetime to use or None if rejected, reason) under ``proposal_check``."""
    if check is ProposalCheck.OBEY:
        return peer, ""
    if check is ProposalCheck.EXACT:
        return (peer, "") if peer == mine else (None, f"lifetime mismatched: my:{mine} peer:{peer}")
    if peer > mine:
        if check is ProposalCheck.CLAIM:
            return mine, ""
        return None, f"long lifetime proposed: my:{mine} peer:{peer}"
    return peer, ""


def compare_phase1(
    check: ProposalCheck, peer: Phase1Params, mine: Phase1Params
) -> tuple[Phase1Params | None, list[str]]:
    """Does our proposal ``mine`` accept the peer's transform?  (accepted params, reasons)."""
    reasons = []
    if peer.encryption != mine.encryption:
        reasons.append(
            f"encryption_algorithm: peer {peer.encryption.name}, my {mine.encryption.name}"
        )
    peer_len = peer.key_length or (
        mine.encryption.default_bits if peer.encryption.variable_key else None
    )
    if peer.encryption == mine.encryption and peer_len != mine.key_length:
        exact = check is ProposalCheck.EXACT
        shorter = (peer_len or 0) < (mine.key_length or 0)
        if check is not ProposalCheck.OBEY and (exact or shorter):
            reasons.append(f"key length: peer {peer_len}, my {mine.key_length}")
    if peer.hash != mine.hash:
        reasons.append(f"hash_algorithm: peer {peer.hash.name}, my {mine.hash.name}")
    if peer.auth_method != mine.auth_method:
        reasons.append(
            "authentication_method: peer "
            f"{display_name(AuthenticationMethod, peer.auth_method)}, my "
            f"{display_name(AuthenticationMethod, mine.auth_method)}"
        )
    if peer.dh_group != mine.dh_group:
        reasons.append(
            f"dh_group: peer {display_name(GroupDescription, peer.dh_group)}, my "
            f"{display_name(GroupDescription, mine.dh_group)}"
        )
    lifetime, why = _check_lifetime(check, peer.lifetime, mine.lifetime)
    if lifetime is None:
        reasons.append(why)
    if reasons:
        return None, reasons
    assert lifetime is not None
    return (
        Phase1Params(
            peer.encryption, peer_len, peer.hash, peer.auth_method, peer.dh_group, lifetime
        ),
        [],
    )


@dataclass(frozen=True)
class Phase1Choice:
    """The peer transform a responder accepted, and the parameters to run with."""

    transform: Transform
    params: Phase1Params


def select_phase1(remote: Remote, sa: SA) -> Phase1Choice:
    """The responder's choice among the peer's transforms, or :class:`NoProposalChosen`."""
    details: list[str] = []
    mine = [phase1_params_of(remote, p) for p in remote.proposals]
    for group in sa.proposal_groups():
        for proposal in group:
            if proposal.protocol_id != ProtocolID.ISAKMP:
                details.append(f"proposal #{proposal.number}: protocol is not ISAKMP")
                continue
            for t in proposal.transforms:
                try:
                    peer = parse_phase1_transform(t)
                except AttributesNotSupported as exc:
                    details.append(str(exc))
                    continue
                for i, m in enumerate(mine):
                    accepted, reasons = compare_phase1(remote.proposal_check, peer, m)
                    if accepted is not None:
                        return Phase1Choice(t, accepted)
                    details.append(
                        f"peer transform #{t.number} ({peer.describe()}) vs my proposal #{i + 1} "
                        f"({m.describe()}): " + "; ".join(reasons)
                    )
    raise NoProposalChosen("no suitable proposal found.", details=tuple(details))


def check_phase1_reply(remote: Remote, sa: SA) -> Phase1Choice:
    """The initiator's check of MM2/AM2: exactly one transform, one we offered."""
    transforms = [t for p in sa.proposals for t in p.transforms]
    if len(sa.proposals) != 1 or len(transforms) != 1:
        raise NoProposalChosen(
            f"responder returned {len(transforms)} transforms, expected exactly one"
        )
    peer = parse_phase1_transform(transforms[0])
    details = []
    for i, p in enumerate(remote.proposals):
        m = phase1_params_of(remote, p)
        accepted, reasons = compare_phase1(ProposalCheck.EXACT, peer, m)
        if accepted is not None:
            return Phase1Choice(transforms[0], accepted)
        details.append(f"my proposal #{i + 1} ({m.describe()}): " + "; ".join(reasons))
    raise NoProposalChosen(
        "the responder chose a transform we did not propose.",
        details=(f"responder chose {peer.describe()}", *details),
    )


# ============================================================================ phase 2
#: racoon.conf / SADB protocol names of the IPsec DOI protocol ids; keyed by ``int`` so that a
#: number off the wire, which may be none of them, can be looked up.
PROTOCOL_NAMES: dict[int, str] = {
    ProtocolID.IPSEC_ESP: "ESP",
    ProtocolID.IPSEC_AH: "AH",
    ProtocolID.IPCOMP: "IPCOMP",
}


@dataclass(frozen=True)
class Phase2Transform:
    """One phase-2 transform, read or built; ``number`` and ``raw`` keep the wire form."""

    protocol: int
    transform_id: int
    mode: int
    lifetime: int
    key_length: int | None = None
    auth_attribute: int | None = None
    group: int | None = None
    number: int = 1
    raw: Transform | None = field(default=None, compare=False)

    # -- table rows --------------------------------------------------------------------------
    @property
    def cipher(self) -> Cipher | None:
        """The ESP cipher row, if this is ESP."""
        if self.protocol != ProtocolID.IPSEC_ESP:
            return None
        return CIPHERS.get("esp_id", self.transform_id)

    @property
    def auth(self) -> AuthAlgorithm | None:
        """The integrity algorithm row (AH transform id or ESP auth attribute)."""
        if self.protocol == ProtocolID.IPSEC_AH:
            return AUTH_ALGORITHMS.get("ah_id", self.transform_id)
        if self.auth_attribute is None:
            return None
        return AUTH_ALGORITHMS.get("auth_attribute", self.auth_attribute)

    @property
    def compression(self) -> CompressionAlgorithm | None:
        """The IPComp algorithm row, if this is IPComp."""
        if self.protocol != ProtocolID.IPCOMP:
            return None
        return IPCOMP_ALGORITHMS.get("ipcomp_id", self.transform_id)

    def encryption_key_bytes(self) -> int:
        """Cipher key length for KEYMAT (negotiated or the cipher's default)."""
        cipher = self.cipher
        if cipher is None:
            return 0
        bits = self.key_length if self.key_length else cipher.default_bits
        return bits // 8

    def authentication_key_bytes(self) -> int:
        """Integrity key length for KEYMAT."""
        auth = self.auth
        return 0 if auth is None else auth.key_bits // 8

    def describe(self) -> str:
        """A one-line summary for log lines."""
        parts = [transform_name(self.protocol, self.transform_id)]
        if self.key_length:
            parts.append(f"keylen {self.key_length}")
        if self.protocol == ProtocolID.IPSEC_ESP:
            auth = self.auth
            parts.append(auth.name if auth is not None else "non_auth")
        parts.append(display_name(EncapsulationMode, self.mode))
        parts.append(f"lifetime {self.lifetime}s")
        parts.append(f"pfs {self.group}" if self.group else "no pfs")
        return " ".join(parts)

    # -- wire -------------------------------------------------------------------------------
    def to_transform(self) -> Transform:
        """The transform on the wire, in racoon's attribute order."""
        attrs = [
            Attribute(IPsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
            Attribute.number(IPsecAttribute.SA_LIFE_DURATION, self.lifetime),
        ]
        if self.protocol != ProtocolID.IPCOMP or self.mode:
            attrs.append(Attribute(IPsecAttribute.ENCAPSULATION_MODE, self.mode))
        if self.key_length is not None:
            attrs.append(Attribute(IPsecAttribute.KEY_LENGTH, self.key_length))
        if self.auth_attribute is not None:
            attrs.append(Attribute(IPsecAttribute.AUTHENTICATION_ALGORITHM, self.auth_attribute))
        if self.group is not None:
            attrs.append(Attribute(IPsecAttribute.GROUP_DESCRIPTION, self.group))
        return Transform(self.number, self.transform_id, tuple(attrs))


def parse_phase2_transform(protocol: int, t: Transform) -> Phase2Transform:
    """Read an IPsec DOI transform (absent lifetime: 28800 s, mode: transport)."""
    lifetime = DEFAULT_LIFETIME
    life_type = None
    values: dict[int, int] = {}
    for a in t.attributes:
        if a.type == IPsecAttribute.SA_LIFE_TYPE:
            life_type = a.as_int
        elif a.type == IPsecAttribute.SA_LIFE_DURATION:
            if life_type == LifeType.SECONDS:
                lifetime = a.as_int
        else:
            values[a.type] = a.as_int
    mode = values.get(IPsecAttribute.ENCAPSULATION_MODE, EncapsulationMode.TRANSPORT)
    auth = values.get(IPsecAttribute.AUTHENTICATION_ALGORITHM)
    if protocol == ProtocolID.IPSEC_AH and auth is None:
        raise AttributesNotSupported(f"AH transform #{t.number} without Authentication Algorithm")
    return Phase2Transform(
        protocol,
        t.transform_id,
        mode,
        lifetime,
        values.get(IPsecAttribute.KEY_LENGTH),
        auth,
        values.get(IPsecAttribute.GROUP_DESCRIPTION),
        t.number,
        t,
    )


@dataclass
class ProtocolOffer:
    """One protocol of our phase-2 proposal (one SPD ipsecrequest)."""

    protocol: int
    mode: int
    reqid_in: int = 0
    reqid_out: int = 0
    spi: bytes = b""
    transforms: list[Phase2Transform] = field(default_factory=list)


def sainfo_transforms(
    sainfo: SaInfo, protocol: int, mode: int, pfs_group: int | None
) -> list[Phase2Transform]:
    """The transforms racoon proposes for one protocol from a sainfo's algorithm lists."""
    out: list[Phase2Transform] = []
    life = sainfo.lifetime
    if protocol == ProtocolID.IPSEC_ESP:
        for enc in sainfo.encryption:
            cipher = enc.algorithm
            assert isinstance(cipher, Cipher)
            key_length = enc.key_length
            if key_length is None and cipher.variable_key:
                key_length = cipher.default_bits
            for auth in sainfo.authentication:
                a = auth.algorithm
                assert isinstance(a, AuthAlgorithm)
                out.append(
                    Phase2Transform(
                        protocol,
                        int(cipher.esp_id or 0),
                        mode,
                        life,
                        key_length,
                        a.auth_attribute,
                        pfs_group,
                    )
                )
    elif protocol == ProtocolID.IPSEC_AH:
        for auth in sainfo.authentication:
            a = auth.algorithm
            assert isinstance(a, AuthAlgorithm)
            if a.ah_id is None:
                continue  # non_auth makes no AH transform
            out.append(
                Phase2Transform(protocol, a.ah_id, mode, life, None, a.auth_attribute, pfs_group)
            )
    else:
        for comp in sainfo.compression:
            c = comp.algorithm
            assert isinstance(c, CompressionAlgorithm)
            out.append(Phase2Transform(protocol, c.ipcomp_id, mode, life, None, None, pfs_group))
    return [
        Phase2Transform(
            t.protocol,
            t.transform_id,
            t.mode,
            t.lifetime,
            t.key_length,
            t.auth_attribute,
            t.group,
            i + 1,
        )
        for i, t in enumerate(out)
    ]


def phase2_sa(offers: Sequence[ProtocolOffer]) -> SA:
    """Our quick-mode SA payload: proposal #1, one Proposal substructure per protocol."""
    return SA(
        tuple(
            Proposal(1, o.protocol, o.spi, tuple(t.to_transform() for t in o.transforms))
            for o in offers
        )
    )


@dataclass(frozen=True)
class Phase2Choice:
    """One protocol of the accepted proposal: peer's SPI, the transform, and what to answer."""

    protocol: int
    peer_spi: bytes
    transform: Phase2Transform
    #: Set when proposal_check claim shortened the lifetime: send RESPONDER-LIFETIME.
    responder_lifetime: int | None = None


def _compare_phase2(
    check: ProposalCheck, peer: Phase2Transform, mine: Phase2Transform
) -> tuple[Phase2Transform | None, int | None, list[str]]:
    reasons = []
    if peer.transform_id != mine.transform_id:
        reasons.append(
            f"transform: peer {transform_name(peer.protocol, peer.transform_id)}, my "
            f"{transform_name(mine.protocol, mine.transform_id)}"
        )
    if peer.mode != mine.mode:
        reasons.append(
            f"encapsulation mode: peer {display_name(EncapsulationMode, peer.mode)}, my "
            f"{display_name(EncapsulationMode, mine.mode)}"
        )
    if peer.auth_attribute != mine.auth_attribute:

        def aname(t: Phase2Transform) -> str:
            return t.auth.name if t.auth is not None else "non_auth"

        reasons.append(f"authentication: peer {aname(peer)}, my {aname(mine)}")
    if peer.transform_id == mine.transform_id and peer.key_length != mine.key_length:
        p, m = peer.key_length or 0, mine.key_length or 0
        if check is ProposalCheck.EXACT or (check is not ProposalCheck.OBEY and p < m):
            reasons.append(f"key length: peer {peer.key_length}, my {mine.key_length}")
    if peer.group != mine.group:
        if check is ProposalCheck.EXACT or (
            check is not ProposalCheck.OBEY and mine.group is not None
        ):
            reasons.append(f"pfs group mismatched: my:{mine.group or 0} peer:{peer.group or 0}")
    lifetime, why = _check_lifetime(check, peer.lifetime, mine.lifetime)
    if lifetime is None:
        reasons.append(why)
    if reasons:
        return None, None, reasons
    assert lifetime is not None
    claimed = lifetime if lifetime != peer.lifetime else None
    accepted = Phase2Transform(
        peer.protocol,
        peer.transform_id,
        peer.mode,
        lifetime,
        peer.key_length,
        peer.auth_attribute,
        peer.group,
        peer.number,
        peer.raw,
    )
    return accepted, claimed, []


def select_phase2(
    check: ProposalCheck, sa: SA, offers: Sequence[ProtocolOffer]
) -> list[Phase2Choice]:
    """The responder's choice: the first peer proposal whose protocols all match ours."""
    details: list[str] = []
    for group in sa.proposal_groups():
        number = group[0].number
        peer_protocols = [p.protocol_id for p in group]
        my_protocols = [o.protocol for o in offers]
        if peer_protocols != my_protocols:
            details.append(
                f"peer proposal #{number} has protocols "
                f"{'+'.join(PROTOCOL_NAMES.get(p, str(p)) for p in peer_protocols)}, my policy "
                f"wants {'+'.join(PROTOCOL_NAMES.get(p, str(p)) for p in my_protocols)}"
            )
            continue
        choices: list[Phase2Choice] = []
        for proposal, offer in zip(group, offers, strict=True):
            chosen = None
            for t in proposal.transforms:
                try:
                    peer = parse_phase2_transform(proposal.protocol_id, t)
                except AttributesNotSupported as exc:
                    details.append(str(exc))
                    continue
                for mine in offer.transforms:
                    accepted, claimed, reasons = _compare_phase2(check, peer, mine)
                    if accepted is not None:
                        chosen = Phase2Choice(proposal.protocol_id, proposal.spi, accepted, claimed)
                        break
                    details.append(
                        f"not matched: peer {PROTOCOL_NAMES.get(proposal.protocol_id)} "
                        f"transform #{t.number} ({peer.describe()}) vs my ({mine.describe()}): "
                        + "; ".join(reasons)
                    )
                if chosen is not None:
                    break
            if chosen is None:
                break
            choices.append(chosen)
        if len(choices) == len(offers):
            return choices
    raise NoProposalChosen("no suitable policy found.", details=tuple(details))


def check_phase2_reply(
    sa: SA, offers: Sequence[ProtocolOffer], check: ProposalCheck
) -> list[Phase2Choice]:
    """The initiator's check of QM2: one transform per protocol, each one we offered."""
    groups = sa.proposal_groups()
    if len(groups) != 1:
        raise NoProposalChosen(f"responder returned {len(groups)} proposals, expected one")
    group = groups[0]
    if [p.protocol_id for p in group] != [o.protocol for o in offers]:
        raise NoProposalChosen("responder returned other protocols than we proposed")
    out = []
    for proposal, offer in zip(group, offers, strict=True):
        if len(proposal.transforms) != 1:
            raise NoProposalChosen(
                f"responder returned {len(proposal.transforms)} transforms for "
                f"{PROTOCOL_NAMES.get(proposal.protocol_id)}, expected one"
            )
        peer = parse_phase2_transform(proposal.protocol_id, proposal.transforms[0])
        details = []
        for mine in offer.transforms:
            accepted, _, reasons = _compare_phase2(ProposalCheck.EXACT, peer, mine)
            if accepted is not None:
                out.append(Phase2Choice(proposal.protocol_id, proposal.spi, accepted))
                break
            details.append(f"my ({mine.describe()}): " + "; ".join(reasons))
        else:
            raise NoProposalChosen(
                "the responder chose a transform we did not propose.",
                details=(f"responder chose {peer.describe()}", *details),
            )
    return out
