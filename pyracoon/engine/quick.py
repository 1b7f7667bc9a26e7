"""Quick mode (RFC 2409 5.5): one phase-2 negotiation under an established ISAKMP SA.

Theory of operation
-------------------
Initiator (an ACQUIRE asked for SAs)::

    GETSPI per protocol  ->  QM1 HASH(1) SA Ni [KE] [IDci IDcr]
    <- QM2 HASH(2) SA Nr [KE] [IDci IDcr] [N(RESPONDER-LIFETIME)]
    QM3 HASH(3)  ->  UPDATE (inbound) + ADD (outbound) per protocol

Responder: QM1 -> sainfo and SPD lookup, proposal choice -> GETSPI per protocol -> QM2;
QM3 -> UPDATE + ADD.  The kernel answers asynchronously: each request carries a ``seq`` (the
ACQUIRE's, when there was one, racoon's pfkey.c) and the reply is routed back here by
``(seq, satype)``.

KEYMAT (RFC 2409): inbound keys from *our* SPI, outbound from the peer's, nonces always
Ni|Nr, PFS secret first when PFS was negotiated.  Each exchange has its own CBC chain seeded from
the phase-1 chain and the M-ID (8.4); a received message moves it only once its HASH verified.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from pyracoon.config.model import ProposalCheck, SaInfo
from pyracoon.crypto.algorithms import IPCOMP_ALGORITHMS
from pyracoon.crypto.cbc import CbcState, Decrypted
from pyracoon.crypto.dh import DHKeyPair, generate_keypair
from pyracoon.crypto.errors import CryptoError
from pyracoon.crypto.hashes import (
    digests_equal,
    quick_mode_hash1,
    quick_mode_hash2,
    quick_mode_hash3,
    quick_mode_hash4,
)
from pyracoon.crypto.keys import derive_sa_keys
from pyracoon.crypto.nonce import generate_nonce, validate_nonce
from pyracoon.crypto.prf import Prf
from pyracoon.kernel import pfkey
from pyracoon.kernel.sadb import ExtType, Mode, MsgType, SaFlags, SaType
from pyracoon.wire import (
    KE,
    SA,
    Attribute,
    Encrypted,
    Hash,
    Identification,
    Message,
    Nonce,
    Notification,
    Payload,
    Proposal,
    WireError,
    decode_attributes,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from pyracoon.wire.constants import (
    EncapsulationMode,
    ExchangeType,
    Flag,
    IDType,
    IPsecAttribute,
    LifeType,
    NotifyType,
    ProtocolID,
)

from .errors import (
    AttributesNotSupported,
    InvalidHashInformation,
    InvalidIdInformation,
    InvalidKeyInformation,
    PayloadMalformed,
    UnexpectedMessage,
)
from .events import Endpoint, Level, fmt_endpoint
from .proposals import (
    PROTOCOL_NAMES,
    Phase2Choice,
    ProtocolOffer,
    check_phase2_reply,
    phase2_sa,
    sainfo_transforms,
)

if TYPE_CHECKING:
    from .engine import Engine
    from .phase1 import Phase1

SATYPE_OF = {
    ProtocolID.IPSEC_ESP: SaType.ESP,
    ProtocolID.IPSEC_AH: SaType.AH,
    ProtocolID.IPCOMP: SaType.IPCOMP,
}
SADB_MODE_OF = {
    EncapsulationMode.TUNNEL: Mode.TUNNEL,
    EncapsulationMode.TRANSPORT: Mode.TRANSPORT,
    EncapsulationMode.UDP_ENCAPSULATED_TUNNEL: Mode.TUNNEL,
    EncapsulationMode.UDP_ENCAPSULATED_TRANSPORT: Mode.TRANSPORT,
}
MODE_NAMES = {EncapsulationMode.TUNNEL: "Tunnel", EncapsulationMode.TRANSPORT: "Transport"}
#: Replay window racoon asks for (racoon's pfkey.c); IPComp has none.
REPLAY_WINDOW = 4


class QState(Enum):
    GETSPI_SENT = "getspi sent"
    QM1_SENT = "msg1 sent"
    QM2_SENT = "msg2 sent"
    WAIT_CONNECTED = "msg3 sent, waiting for CONNECTED"
    ADDING = "adding SAs"
    ESTABLISHED = "established"
    FAILED = "failed"


@dataclass(frozen=True)
class Selector:
    """One side of a traffic selector: network, upper-layer protocol (255 any) and port."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    proto: int = 255
    port: int = 0

    def id_payload(self) -> Identification:
        """ID_IPV*_ADDR for a host, ID_IPV*_ADDR_SUBNET otherwise (racoon.conf(5): sainfo)."""
        net = self.network
        proto = 0 if self.proto == 255 else self.proto
        if net.prefixlen == net.max_prefixlen:
            t = IDType.IPV4_ADDR if net.version == 4 else IDType.IPV6_ADDR
            return Identification(t, net.network_address.packed, proto, self.port)
        t = IDType.IPV4_ADDR_SUBNET if net.version == 4 else IDType.IPV6_ADDR_SUBNET
        return Identification(t, net.network_address.packed + net.netmask.packed, proto, self.port)

    @classmethod
    def from_id(cls, p: Identification) -> Selector:
        """The selector an IDci/IDcr payload names (protocol 0 means any)."""
        proto = 255 if p.protocol_id == 0 else p.protocol_id
        if p.id_type in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
            return cls(ipaddress.ip_network(p.address), proto, p.port)
        if p.id_type in (IDType.IPV4_ADDR_SUBNET, IDType.IPV6_ADDR_SUBNET):
            try:
                network = p.network
            except (WireError, ValueError) as exc:
                raise InvalidIdInformation(f"unusable quick-mode ID: {exc}") from None
            return cls(network, proto, p.port)
        raise AttributesNotSupported(f"quick-mode ID of type {IDType(p.id_type)} is not supported")

    def __str__(self) -> str:
        return f"{self.network}[{self.port or 'any'}] proto={self.proto}"


@dataclass
class Request:
    """What a quick mode is for: selectors (from our side's view), protocols, reqids."""

    local: Selector
    remote: Selector
    offers: list[ProtocolOffer]
    policy_id: int = 0
    acquire_seq: int = 0
    tunnel: bool = False


@dataclass
class Installed:
    """The kernel SAs one quick mode made (for Delete and INITIAL-CONTACT)."""

    protocol: int
    inbound_spi: int
    outbound_spi: int
    mode: int
    pending: set[str] = field(default_factory=set)


def _spi_int(spi: bytes) -> int:
    return int.from_bytes(spi, "big")


class Quick:
    """One quick-mode exchange and the kernel SAs it installs."""

    def __init__(
        self,
        engine: Engine,
        ph1: Phase1,
        initiator: bool,
        message_id: int,
        request: Request,
        now: float,
    ) -> None:
        self.engine = engine
        self.ph1 = ph1
        self.initiator = initiator
        self.message_id = message_id
        self.request = request
        self.state = QState.GETSPI_SENT
        self.created = now
        self.deadline = now + engine.config.timer.phase2
        self.sainfo: SaInfo | None = None
        self.pfs_group: int | None = None
        self.keypair: DHKeyPair | None = None
        self.nonce = b""
        self.peer_nonce = b""
        self.peer_ke = b""
        self.g_qm_xy: bytes | None = None
        self.choices: list[Phase2Choice] = []
        assert ph1.cbc is not None and ph1.prf is not None
        self.cbc: CbcState = ph1.cbc.for_message_id(ph1.prf, message_id)
        self.send_ids = True
        self.ids: tuple[Identification, Identification] | None = None
        self.seq = request.acquire_seq or engine.next_seq()
        self.spis_wanted: set[int] = set()
        self.installed: list[Installed] = []
        self.responder_lifetimes: dict[int, int] = {}
        #: SPD entries generate_policy installed for this SA: (direction, src, dst).
        self.generated_policies: list[tuple[int, Selector, Selector]] = []
        self.last_sent: bytes | None = None
        #: MD5 of an accepted datagram -> the reply we sent to it (racoon's recvdpkt).
        self.replies: dict[bytes, bytes | None] = {}
        self._answering: bytes | None = None
        self.retransmissions_seen = 0
        self.resend_at: float | None = None
        self.sends_left = 0
        self.expire_at: float | None = None
        self._pending_commit: Decrypted | None = None
        #: The commit bit (8.8): set by us only when the engine is told to, copied by a
        #: responder from QM1, noticed by an initiator in QM2.
        self.commit = bool(initiator and engine.commit_bit)

    # ------------------------------------------------------------------ naming
    @property
    def local(self) -> Endpoint:
        """Our IKE endpoint."""
        return self.ph1.local

    @property
    def peer(self) -> Endpoint:
        """The peer's IKE endpoint."""
        return self.ph1.peer

    def index(self) -> str:
        # racoon prints the msgid through ntohs(): only 16 bits survive (racoon's plog.c).
        """racoon's ``icookie:rcookie:msgid`` (msgid cut to 16 bits, as racoon prints it)."""
        return f"{self.ph1.index()}:{self.message_id & 0xFFFF:08x}"

    def log(self, level: Level, text: str) -> None:
        """A log line about this SA's peer."""
        self.engine.log(level, text, self.peer[0])

    # ------------------------------------------------------------------ timers
    def next_timer(self) -> float | None:
        """The earliest of resend, deadline and lifetime timers."""
        times = [t for t in (self.resend_at, self.deadline, self.expire_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Deadline, resend, or the end of the SA's lifetime."""
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            self.engine.phase2_failed(
                self, f"phase2 negotiation failed due to time up. {self.index()}", now
            )
            return
        if self.resend_at is not None and now >= self.resend_at:
            if self.sends_left > 0 and self.last_sent is not None:
                self.sends_left -= 1
                self.engine.send(self.last_sent, self.local, self.peer)
                self.resend_at = now + self.engine.config.timer.interval
            else:
                self.resend_at = None
        if self.expire_at is not None and now >= self.expire_at:
            self.expire_at = None
            self.engine.phase2_expired(self, now)

    # ------------------------------------------------------------------ wire
    def _commit_received(self) -> None:
        """The message being handled checked out: move the chain past it before we send."""
        if self._pending_commit is not None:
            self.cbc.commit(self._pending_commit)
        self._pending_commit = None

    def _send(self, payloads: list[Payload], now: float, *, expect_reply: bool) -> None:
        self._commit_received()
        np, body = encode_payloads(payloads)
        ciphertext = self.cbc.encrypt(body, self.engine.padding)
        msg = Message(
            self.ph1.icky,
            self.ph1.rcky,
            ExchangeType.QUICK,
            self.message_id,
            (Encrypted(np, ciphertext),),
            Flag.ENCRYPTION | (Flag.COMMIT if self.commit else 0),
        )
        data = encode_message(msg)
        self.last_sent = data
        if self._answering is not None:
            self.replies[self._answering] = data
            self._answering = None
        self.engine.send(data, self.local, self.peer)
        if expect_reply:
            timer = self.engine.config.timer
            self.sends_left = max(timer.counter - 1, 0)
            self.resend_at = now + timer.interval
        else:
            self.resend_at = None

    def _hashed(self, payloads: list[Payload], hash_fn: Callable[[bytes], bytes]) -> list[Payload]:
        """``[HASH(n), *payloads]`` where HASH(n) covers the payloads as they will be sent."""
        _, rest = encode_payloads(payloads)
        return [Hash(hash_fn(rest)), *payloads]

    def receive(self, msg: Message, raw: bytes, now: float) -> None:
        """A later message of this exchange: QM2/QM4 (initiator) or QM3 (responder)."""
        digest = hashlib.md5(raw, usedforsecurity=False).digest()
        if self.replay(digest):
            return
        expected = (
            (QState.QM1_SENT, QState.WAIT_CONNECTED) if self.initiator else (QState.QM2_SENT,)
        )
        if self.state not in expected:
            raise UnexpectedMessage(
                f"unexpected quick-mode message in state {self.state.value} of {self.index()}"
            )
        dec, payloads = self.decrypt(msg)
        self._pending_commit = dec
        self._answering = digest
        if self.state is QState.WAIT_CONNECTED:
            self._qm4(payloads, now)
        elif self.initiator:
            if msg.flags & Flag.COMMIT:
                self.commit = True  # the responder set it: wait for CONNECTED (8.8)
            self._qm2(payloads, now)
        else:
            self._qm3(payloads, now)
        self._commit_received()
        self.replies.setdefault(digest, None)
        self._answering = None

    def abandon_message(self) -> None:
        """The message being handled failed: forget it without moving the chain."""
        self._pending_commit = None
        self._answering = None

    def replay(self, digest: bytes) -> bool:
        """A datagram seen before: resend the reply we made to it, if any (8.14)."""
        if digest not in self.replies:
            return False
        reply = self.replies[digest]
        if reply is not None:
            self.retransmissions_seen += 1
            self.log(
                Level.NOTIFY,
                f"the packet is retransmitted by {fmt_endpoint(self.peer)} "
                f"({self.retransmissions_seen}).",
            )
            self.engine.send(reply, self.local, self.peer)
        return True

    def decrypt(self, msg: Message) -> tuple[Decrypted, list[Payload]]:
        """Decrypt with this exchange's CBC chain (not committed yet); HASH must come first."""
        enc = msg.encrypted
        if enc is None:
            raise PayloadMalformed("quick-mode message is not encrypted")
        try:
            dec = self.cbc.decrypt(bytes(enc.ciphertext), self.engine.padding)
            body = decode_payloads(enc.next_payload, dec.plaintext)
        except (CryptoError, WireError) as exc:
            raise PayloadMalformed(
                f"failed to decrypt/parse the quick-mode message: {exc}",
                notify=exc.notify if isinstance(exc, WireError) else None,
            ) from None
        payloads = list(body.payloads)
        if not payloads or not isinstance(payloads[0], Hash):
            raise PayloadMalformed("HASH is not the first payload of the quick-mode message")
        return dec, payloads

    def _check_hash(self, name: str, got: Payload, computed: bytes) -> None:
        assert isinstance(got, Hash)
        if not digests_equal(got.data, computed):
            raise InvalidHashInformation(f"{name} mismatch.")

    @property
    def _prf(self) -> Prf:
        assert self.ph1.prf is not None
        return self.ph1.prf

    @property
    def _skeyid_a(self) -> bytes:
        assert self.ph1.keys is not None
        return self.ph1.keys.skeyid_a

    # ------------------------------------------------------------------ kernel
    def request_spis(self) -> None:
        """GETSPI for every protocol (racoon's pfkey.c): src=peer, dst=me."""
        for offer in self.request.offers:
            satype = SATYPE_OF[offer.protocol]
            msg = pfkey.Message(MsgType.GETSPI, satype, seq=self.seq, pid=self.engine.pid)
            msg.add(pfkey.SA2(mode=SADB_MODE_OF[offer.mode], reqid=offer.reqid_in))
            msg.add(pfkey.Address(ExtType.ADDRESS_SRC, self.peer[0]))
            msg.add(pfkey.Address(ExtType.ADDRESS_DST, self.local[0]))
            if offer.protocol == ProtocolID.IPCOMP:
                msg.add(pfkey.SpiRange(min=0x100, max=0xFFFF))
            self.spis_wanted.add(satype)
            self.engine.kernel_request(msg, self)
        self.state = QState.GETSPI_SENT

    def kernel_reply(self, msg: pfkey.Message, now: float) -> None:
        """A GETSPI, UPDATE or ADD reply for this exchange."""
        if msg.errno:
            self.engine.phase2_failed(
                self,
                f"pfkey {MsgType(msg.type).name} failed: {os.strerror(msg.errno)}",
                now,
            )
            return
        if msg.type == MsgType.GETSPI:
            self._getspi_reply(msg, now)
        elif msg.type in (MsgType.UPDATE, MsgType.ADD):
            self._install_reply(msg, now)

    def _getspi_reply(self, msg: pfkey.Message, now: float) -> None:
        sa = msg.sa
        if sa is None or msg.satype not in self.spis_wanted:
            return
        self.spis_wanted.discard(msg.satype)
        for offer in self.request.offers:
            if SATYPE_OF[offer.protocol] == msg.satype:
                size = 2 if offer.protocol == ProtocolID.IPCOMP else 4
                offer.spi = sa.spi.to_bytes(size if sa.spi < 1 << (8 * size) else 4, "big")
        if self.spis_wanted:
            return
        if self.initiator:
            self._send_qm1(now)
        else:
            self._send_qm2(now)

    # ------------------------------------------------------------------ initiator
    def start(self, sainfo: SaInfo, send_ids: bool) -> None:
        """Initiator: remember the sainfo, then ask the kernel for SPIs."""
        self.sainfo = sainfo
        self.send_ids = send_ids
        self.pfs_group = sainfo.pfs_group
        for offer in self.request.offers:
            offer.transforms = sainfo_transforms(
                sainfo, offer.protocol, offer.mode, sainfo.pfs_group
            )
        self.log(Level.INFO, f"initiate new phase 2 negotiation: {self.ph1.describe()}")
        self.request_spis()

    def _send_qm1(self, now: float) -> None:
        self.nonce = generate_nonce(self.ph1.remote.nonce_size)
        payloads: list[Payload] = [phase2_sa(self.request.offers), Nonce(self.nonce)]
        if self.pfs_group:
            self.keypair = generate_keypair(self.pfs_group)
            payloads.append(KE(self.keypair.public_value))
        if self.send_ids:
            self.ids = (self.request.local.id_payload(), self.request.remote.id_payload())
            payloads += list(self.ids)
        full = self._hashed(
            payloads,
            lambda rest: quick_mode_hash1(self._prf, self._skeyid_a, self.message_id, rest),
        )
        self._send(full, now, expect_reply=True)
        self.state = QState.QM1_SENT

    def _qm2(self, payloads: list[Payload], now: float) -> None:
        _, rest = encode_payloads(payloads[1:])
        sa = next((p for p in payloads if isinstance(p, SA)), None)
        nonce = next((p for p in payloads if isinstance(p, Nonce)), None)
        if sa is None or nonce is None:
            raise PayloadMalformed("QM2 lacks SA or Nonce")
        try:
            self.peer_nonce = validate_nonce(bytes(nonce.data))
        except CryptoError as exc:
            raise PayloadMalformed(str(exc)) from None
        self._check_hash(
            "HASH(2)",
            payloads[0],
            quick_mode_hash2(self._prf, self._skeyid_a, self.message_id, self.nonce, rest),
        )
        ids = [p for p in payloads if isinstance(p, Identification)]
        if self.ids is not None:
            if len(ids) != 2 or ids[0] != self.ids[0]:
                raise AttributesNotSupported("mismatched IDci was returned.")
            if ids[1] != self.ids[1]:
                raise AttributesNotSupported("mismatched IDcr was returned.")
        self.choices = check_phase2_reply(sa, self.request.offers, self.ph1.remote.proposal_check)
        self._take_pfs(payloads)
        self._responder_lifetime(payloads)
        hash3 = quick_mode_hash3(
            self._prf, self._skeyid_a, self.message_id, self.nonce, self.peer_nonce
        )
        if self.commit:
            # Commit bit (RFC 2408 4.8; racoon's isakmp_quick.c): QM3 is resent until CONNECTED
            # comes.
            self._send([Hash(hash3)], now, expect_reply=True)
            self.state = QState.WAIT_CONNECTED
            return
        self._send([Hash(hash3)], now, expect_reply=False)
        self.install(now)

    def _connected_payloads(self) -> list[Payload]:
        notify = Notification(NotifyType.CONNECTED, ProtocolID.ISAKMP, self.ph1.cookies)
        return self._hashed(
            [notify],
            lambda rest: quick_mode_hash4(self._prf, self._skeyid_a, self.message_id, rest),
        )

    def _qm4(self, payloads: list[Payload], now: float) -> None:
        """The responder's CONNECTED, HASH(4) = prf(SKEYID_a, M-ID | N): now install."""
        _, rest = encode_payloads(payloads[1:])
        self._check_hash(
            "HASH(4)",
            payloads[0],
            quick_mode_hash4(self._prf, self._skeyid_a, self.message_id, rest),
        )
        if not any(
            isinstance(p, Notification) and p.notify_type == NotifyType.CONNECTED for p in payloads
        ):
            raise PayloadMalformed("the commit-bit reply carries no CONNECTED notify")
        self.resend_at = None
        self.install(now)

    def _responder_lifetime(self, payloads: list[Payload]) -> None:
        """RESPONDER-LIFETIME (RFC 2407 4.6.3.1), accepted per proposal_check (8.9)."""
        check = self.ph1.remote.proposal_check
        for p in payloads:
            if not isinstance(p, Notification) or p.notify_type != NotifyType.RESPONDER_LIFETIME:
                continue
            attrs = decode_attributes(bytes(p.data), 0, len(p.data), payload="N")
            life_type, seconds = None, None
            for a in attrs:
                if a.type == IPsecAttribute.SA_LIFE_TYPE:
                    life_type = a.as_int
                elif a.type == IPsecAttribute.SA_LIFE_DURATION and life_type == LifeType.SECONDS:
                    seconds = a.as_int
            if seconds is None:
                continue
            for i, choice in enumerate(self.choices):
                if choice.protocol != p.protocol_id:
                    continue
                mine = choice.transform.lifetime
                ok = (
                    check is ProposalCheck.OBEY
                    or (check is ProposalCheck.EXACT and seconds == mine)
                    or (check in (ProposalCheck.STRICT, ProposalCheck.CLAIM) and seconds <= mine)
                )
                if ok:
                    t = choice.transform
                    self.choices[i] = replace(choice, transform=replace(t, lifetime=seconds))
                    self.log(
                        Level.INFO, f"responder lifetime accepted: {seconds}s (proposed {mine}s)"
                    )
                else:
                    self.log(
                        Level.WARNING,
                        f"responder lifetime {seconds}s ignored "
                        f"(proposal_check {check.value}, mine {mine}s)",
                    )

    # ------------------------------------------------------------------ responder
    def responder_qm1(
        self,
        payloads: list[Payload],
        ids: tuple[Identification, Identification] | None,
        choices: list[Phase2Choice],
        sainfo: SaInfo,
        now: float,
    ) -> None:
        """Accepted QM1 (the engine did the lookups): keep what QM2 needs, ask for SPIs."""
        self.sainfo = sainfo
        self.ids = ids
        self.choices = choices
        nonce = next(p for p in payloads if isinstance(p, Nonce))
        try:
            self.peer_nonce = validate_nonce(bytes(nonce.data))
        except CryptoError as exc:
            raise PayloadMalformed(str(exc)) from None
        group = choices[0].transform.group
        self.pfs_group = group
        self._take_pfs(payloads, responder=True)
        self.log(Level.INFO, f"respond new phase 2 negotiation: {self.ph1.describe()}")
        self.request_spis()

    def _send_qm2(self, now: float) -> None:
        self.nonce = generate_nonce(self.ph1.remote.nonce_size)
        proposals = []
        notifies: list[Payload] = []
        for choice, offer in zip(self.choices, self.request.offers, strict=True):
            raw = choice.transform.raw
            assert raw is not None
            proposals.append(Proposal(1, choice.protocol, offer.spi, (raw,)))
            if choice.responder_lifetime is not None:
                data = (
                    Attribute(IPsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS).encode()
                    + Attribute.number(
                        IPsecAttribute.SA_LIFE_DURATION, choice.responder_lifetime
                    ).encode()
                )
                notifies.append(
                    Notification(NotifyType.RESPONDER_LIFETIME, choice.protocol, offer.spi, data)
                )
        payloads: list[Payload] = [SA(tuple(proposals)), Nonce(self.nonce)]
        if self.keypair is not None:
            payloads.append(KE(self.keypair.public_value))
        if self.ids is not None:
            payloads += list(self.ids)
        payloads += notifies
        full = self._hashed(
            payloads,
            lambda rest: quick_mode_hash2(
                self._prf, self._skeyid_a, self.message_id, self.peer_nonce, rest
            ),
        )
        self._send(full, now, expect_reply=True)
        self.state = QState.QM2_SENT

    def _qm3(self, payloads: list[Payload], now: float) -> None:
        self._check_hash(
            "HASH(3)",
            payloads[0],
            quick_mode_hash3(
                self._prf, self._skeyid_a, self.message_id, self.peer_nonce, self.nonce
            ),
        )
        self.resend_at = None
        if self.commit:
            self._send(self._connected_payloads(), now, expect_reply=False)
        self.install(now)

    # ------------------------------------------------------------------ both
    def _take_pfs(self, payloads: list[Payload], responder: bool = False) -> None:
        ke = next((p for p in payloads if isinstance(p, KE)), None)
        group = self.choices[0].transform.group if self.choices else None
        if group is None:
            return
        if ke is None:
            raise PayloadMalformed("PFS group negotiated but no KE payload received")
        if responder:
            self.keypair = generate_keypair(group)
        assert self.keypair is not None
        try:
            self.g_qm_xy = self.keypair.compute_shared_secret(bytes(ke.data), allow_short=True)
        except CryptoError as exc:
            raise InvalidKeyInformation(f"peer's quick-mode KE is unusable: {exc}") from None

    def _ni_nr(self) -> tuple[bytes, bytes]:
        return (self.nonce, self.peer_nonce) if self.initiator else (self.peer_nonce, self.nonce)

    def install(self, now: float) -> None:
        """UPDATE the inbound SA and ADD the outbound one, per protocol (racoon's pfkey.c)."""
        assert self.ph1.keys is not None
        ni, nr = self._ni_nr()
        self.state = QState.ADDING
        updates: list[pfkey.Message] = []
        adds: list[pfkey.Message] = []
        for choice, offer in zip(self.choices, self.request.offers, strict=True):
            t = choice.transform
            satype = SATYPE_OF[choice.protocol]
            our_spi, peer_spi = offer.spi, choice.peer_spi
            if choice.protocol == ProtocolID.IPCOMP:
                inbound_keys = outbound_keys = None
                calg = IPCOMP_ALGORITHMS.by("ipcomp_id", t.transform_id).sadb_id
                auth_id, enc_id, replay, flags = 0, calg, 0, int(SaFlags.RAWCPI)
            else:
                keys = derive_sa_keys(
                    self._prf,
                    self.ph1.keys.skeyid_d,
                    choice.protocol,
                    our_spi,
                    peer_spi,
                    ni,
                    nr,
                    t.encryption_key_bytes(),
                    t.authentication_key_bytes(),
                    self.g_qm_xy,
                )
                inbound_keys, outbound_keys = keys.inbound, keys.outbound
                auth = t.auth
                cipher = t.cipher
                auth_id = auth.sadb_id if auth is not None and auth.sadb_id is not None else 0
                enc_id = cipher.sadb_id if cipher is not None and cipher.sadb_id else 0
                replay, flags = REPLAY_WINDOW, 0
            mode = SADB_MODE_OF.get(t.mode, Mode.TRANSPORT)
            record = Installed(
                choice.protocol, _spi_int(our_spi), _spi_int(peer_spi), t.mode, {"in", "out"}
            )
            self.installed.append(record)
            for direction, spi, keyset, reqid, src, dst in (
                ("in", our_spi, inbound_keys, offer.reqid_in, self.peer[0], self.local[0]),
                ("out", peer_spi, outbound_keys, offer.reqid_out, self.local[0], self.peer[0]),
            ):
                msg = pfkey.Message(
                    MsgType.UPDATE if direction == "in" else MsgType.ADD,
                    satype,
                    seq=self.seq,
                    pid=self.engine.pid,
                )
                msg.add(
                    pfkey.SA(
                        spi=_spi_int(spi), replay=replay, auth=auth_id, encrypt=enc_id, flags=flags
                    )
                )
                msg.add(pfkey.SA2(mode=mode, reqid=reqid))
                msg.add(pfkey.Address(ExtType.ADDRESS_SRC, src))
                msg.add(pfkey.Address(ExtType.ADDRESS_DST, dst))
                # libipsec's pfkey_send_x3 sends KEY_ENCRYPT for every ESP cipher, null's 0
                # bits too; Linux's af_key refuses an ESP SA without it (EINVAL).
                esp_cipher = satype == SaType.ESP and enc_id != 0
                if keyset is not None and (keyset.encryption_key or esp_cipher):
                    msg.add(pfkey.Key(ExtType.KEY_ENCRYPT, keyset.encryption_key))
                if keyset is not None and keyset.authentication_key:
                    msg.add(pfkey.Key(ExtType.KEY_AUTH, keyset.authentication_key))
                msg.add(pfkey.Lifetime(ExtType.LIFETIME_HARD, addtime=t.lifetime))
                msg.add(pfkey.Lifetime(ExtType.LIFETIME_SOFT, addtime=t.lifetime * 8 // 10))
                (updates if direction == "in" else adds).append(msg)
        # racoon's pk_sendupdate() then pk_sendadd(): every UPDATE first, then every ADD
        for msg in updates + adds:
            self.engine.kernel_request(msg, self)

    def sa_text(self, record: Installed, direction: str) -> str:
        """racoon's ``ESP/Transport A[500]->B[500] spi=N(0xN)`` for one direction."""
        proto = PROTOCOL_NAMES.get(record.protocol, "?")
        mode = MODE_NAMES.get(record.mode, "Any")
        if direction == "in":
            src, dst, spi = self.peer, self.local, record.inbound_spi
        else:
            src, dst, spi = self.local, self.peer, record.outbound_spi
        return f"{proto}/{mode} {fmt_endpoint(src)}->{fmt_endpoint(dst)} spi={spi}(0x{spi:x})"

    def _install_reply(self, msg: pfkey.Message, now: float) -> None:
        direction = "in" if msg.type == MsgType.UPDATE else "out"
        spi = msg.sa.spi if msg.sa is not None else None
        for record in self.installed:
            if SATYPE_OF[record.protocol] != msg.satype or direction not in record.pending:
                continue
            if spi is not None and spi != (
                record.inbound_spi if direction == "in" else record.outbound_spi
            ):
                continue
            record.pending.discard(direction)
            self.log(Level.INFO, f"IPsec-SA established: {self.sa_text(record, direction)}")
            break
        if all(not r.pending for r in self.installed) and self.state is QState.ADDING:
            self.state = QState.ESTABLISHED
            self.deadline = None
            lifetime = min(c.transform.lifetime for c in self.choices)
            self.expire_at = now + lifetime
            self.engine.phase2_established(self, now)
