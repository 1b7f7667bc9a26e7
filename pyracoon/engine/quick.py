"""Quick mode (RFC 2409 5.5): one phase-2 negotiation under an established ISAKMP SA.

Theory of operation
-------------------
Initiator (an ACQUIRE asked for SAs)::

    GETSPI per protocol  ->  QM1 HASH(1) SA Ni [KE] [IDci IDcr]
    <- QM2 HASH(2) SA Nr [KE] [IDci IDcr] [N(RESPONDER-LIFETIME)]
    QM3 HASH(3)  ->  UPDATE (inbound) + ADD (outbound) per protocol

Responder: QM1 -> sainfo and SPD lookup (the SPD view, :class:`~pyracoon.engine.spd.SpdCache`,
is handed in), proposal choice -> GETSPI per protocol -> QM2; QM3 -> UPDATE + ADD.
:data:`QUICK_TABLE` maps ``(initiator, state)`` to the handler of the message that may arrive,
as phase 1's table does; anything else is "unexpected" and dropped.  The kernel answers
asynchronously: each request (:mod:`pyracoon.kernel.ops`) carries a ``seq`` (the ACQUIRE's,
when there was one, racoon's pfkey.c) and the dispatcher routes the reply back here by
``(seq, kind, protocol)``.  A quick mode
never calls the dispatcher: it writes to the output sink and reports its outcomes there.

KEYMAT (RFC 2409): inbound keys from *our* SPI, outbound from the peer's, nonces always
Ni|Nr, PFS secret first when PFS was negotiated.  Each exchange has its own CBC chain seeded from
the phase-1 chain and the M-ID (RFC 2409 appendix B; racoon's oakley.c, oakley_newiv2()); a
received message moves it only once its HASH verified.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from pyracoon.config.model import ProposalCheck, SaInfo
from pyracoon.crypto.algorithms import (
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
)
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
from pyracoon.kernel import ops
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
    IPsecAttribute,
    LifeType,
    NotifyType,
    ProtocolID,
)

from .context import OutcomeKind, Output, Settings
from .errors import (
    AttributesNotSupported,
    EngineError,
    InvalidHashInformation,
    InvalidIdInformation,
    InvalidKeyInformation,
    LocalError,
    PayloadMalformed,
    UnexpectedMessage,
)
from .events import Endpoint, Level, Phase2Established, fmt_endpoint
from .phase1 import Phase1
from .proposals import (
    PROTOCOL_NAMES,
    Phase2Choice,
    ProtocolOffer,
    check_phase2_reply,
    phase2_sa,
    sainfo_transforms,
    select_phase2,
)
from .retransmit import Retransmit, packet_digest
from .spd import Generated, SpdCache
from .traffic import KERNEL_MODE, KERNEL_PROTO, Request, Selector

__all__ = [
    "QUICK_TABLE", "Installed", "QRow", "QState", "Quick", "Request", "Selector", "SaParams",
    "getspi_request", "install_request",
]  # fmt: skip

MODE_NAMES: dict[int, str] = {
    EncapsulationMode.TUNNEL: "Tunnel",
    EncapsulationMode.TRANSPORT: "Transport",
}
#: Soft lifetimes are this percentage of the hard ones, as racoon installs them (pfkey.c).
SOFT_PERCENT = 80
#: Replay window racoon asks for (racoon's pfkey.c); IPComp has none.
REPLAY_WINDOW = 4
#: How long the SAs a rekey replaced stay after the new ones are in, before both sides delete
#: them (strongSwan's charon.delete_rekeyed_delay, 5 s by default): packets the peer sent on
#: the old SAs just before it switched still arrive and are accepted.
REKEY_DELETE_DELAY = 5.0


class QState(Enum):
    START = "start"
    GETSPI_SENT = "getspi sent"
    QM1_SENT = "msg1 sent"
    QM2_SENT = "msg2 sent"
    WAIT_CONNECTED = "msg3 sent, waiting for CONNECTED"
    ADDING = "adding SAs"
    ESTABLISHED = "established"
    FAILED = "failed"


@dataclass(frozen=True)
class QRow:
    """One transition: the handler of the message that may arrive, and the states it leads to
    (the handler picks one: the commit bit and the kernel's answers decide)."""

    handler: str
    next_states: tuple[QState, ...]
    #: The reply goes out later (QM2 waits for the kernel's SPIs): keep answering the datagram.
    answer_later: bool = False


#: (initiator, state) -> what may arrive next.  The documentation of the protocol.
QUICK_TABLE: dict[tuple[bool, QState], QRow] = {
    (False, QState.START): QRow("_qm1", (QState.GETSPI_SENT,), answer_later=True),
    (True, QState.QM1_SENT): QRow("_qm2", (QState.ADDING, QState.WAIT_CONNECTED)),
    (False, QState.QM2_SENT): QRow("_qm3", (QState.ADDING,)),
    (True, QState.WAIT_CONNECTED): QRow("_qm4", (QState.ADDING,)),
}


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


# ---------------------------------------------------------------------- kernel requests
def getspi_request(offer: ProtocolOffer, peer: Endpoint, local: Endpoint, seq: int) -> ops.GetSpi:
    """GETSPI for one protocol of a quick mode (racoon's pfkey.c): src=peer, dst=me; IPComp's
    CPIs are 16 bits, above the well-known ones (RFC 3173 section 3.3)."""
    return ops.GetSpi(
        seq,
        KERNEL_PROTO[offer.protocol],
        peer[0],
        local[0],
        KERNEL_MODE[offer.mode],
        offer.reqid_in,
        (0x100, 0xFFFF) if offer.protocol == ProtocolID.IPCOMP else None,
    )


@dataclass(frozen=True)
class SaParams:
    """What one kernel SA of a quick mode is, beside its addresses and keys."""

    spi: int
    replay: int
    mode: ops.Mode
    reqid: int
    cipher: Cipher | None = None
    auth: AuthAlgorithm | None = None
    compression: CompressionAlgorithm | None = None


def soft_lifetime(hard: ops.Lifetime) -> ops.Lifetime:
    """racoon's soft lifetime: 80 % of each hard limit (racoon's pfkey.c), so the soft EXPIRE
    that starts a rekey comes well before the SA goes.  backupsa's restores use it too."""
    return ops.Lifetime(*(v * SOFT_PERCENT // 100 for v in (
        hard.allocations, hard.bytes, hard.addtime, hard.usetime,
    )))  # fmt: skip


def install_request(
    update: bool,
    proto: ops.Proto,
    params: SaParams,
    addresses: tuple[ops.IPAddress, ops.IPAddress],
    keyset: object,
    lifetime: int,
    seq: int,
) -> ops.InstallSa:
    """UPDATE (inbound, the larval SA GETSPI made) or ADD (outbound) of one kernel SA, with its
    keys and racoon's soft lifetime at 80 % of the hard one (racoon's pfkey.c)."""
    return ops.InstallSa(
        seq,
        update,
        ops.SaId(proto, params.spi, addresses[0], addresses[1]),
        params.mode,
        params.reqid,
        params.replay,
        params.cipher,
        getattr(keyset, "encryption_key", b""),
        params.auth,
        getattr(keyset, "authentication_key", b""),
        params.compression,
        raw_cpi=params.compression is not None,
        hard=ops.Lifetime(addtime=lifetime),
        soft=soft_lifetime(ops.Lifetime(addtime=lifetime)),
    )


class Quick:
    """One quick-mode exchange and the kernel SAs it installs."""

    def __init__(
        self,
        out: Output,
        settings: Settings,
        ph1: Phase1,
        initiator: bool,
        message_id: int,
        request: Request,
        now: float,
        spd: SpdCache | None = None,
    ) -> None:
        self.out = out
        self.settings = settings
        #: The SPD view a responder looks the peer's IDs up in.
        self.spd = spd
        self.ph1 = ph1
        self.initiator = initiator
        self.message_id = message_id
        self.request = request
        self.state = QState.GETSPI_SENT if initiator else QState.START
        self.created = now
        self.deadline: float | None = now + settings.timer.phase2
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
        self.seq = request.acquire_seq or out.next_seq()
        self.spis_wanted: set[ops.Proto] = set()
        self.installed: list[Installed] = []
        self.responder_lifetimes: dict[int, int] = {}
        #: SPD entries generate_policy installed for this SA: (direction, src, dst).
        self.generated_policies: list[Generated] = []
        #: resends and racoon's received-packet list (racoon's isakmp.c)
        self.rtx = Retransmit(out.send, self.log, log_unanswered=False)
        self.expire_at: float | None = None
        self.retire_at: float | None = None
        self._pending_commit: Decrypted | None = None
        #: The commit bit (RFC 2408 3.1; racoon's isakmp_quick.c): set by us only when the
        #: engine is told to, copied by a responder from QM1, noticed by an initiator in QM2.
        self.commit = bool(initiator and settings.commit_bit)

    @classmethod
    def for_qm1(
        cls, out: Output, settings: Settings, ph1: Phase1, message_id: int, now: float,
        spd: SpdCache,
    ) -> Quick:  # fmt: skip
        """A responder for the QM1 of ``message_id``: what it is for comes from the peer's IDs
        and the SPD (``_qm1``); until then its selectors are the two IKE hosts."""
        placeholder = Request(
            Selector(ipaddress.ip_network(ph1.local[0])),
            Selector(ipaddress.ip_network(ph1.peer[0])),
            [],
        )
        return cls(out, settings, ph1, False, message_id, placeholder, now, spd)

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
        self.out.log(level, text, self.peer[0])

    # ------------------------------------------------------------------ timers
    def next_timer(self) -> float | None:
        """The earliest of resend, deadline, retirement of the SAs it replaces, and lifetime."""
        times = [
            t
            for t in (self.rtx.resend_at, self.deadline, self.retire_at, self.expire_at)
            if t is not None
        ]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Deadline, resend, or the end of the SA's lifetime."""
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            self.out.report(
                OutcomeKind.PHASE2_FAILED,
                self,
                now,
                f"phase2 negotiation failed due to time up. {self.index()}",
            )
            return
        if self.rtx.due(now):
            self.rtx.resend(self.local, self.peer, now, self.settings.timer)
        if self.retire_at is not None and now >= self.retire_at:
            self.retire_at = None
            self.out.report(OutcomeKind.PHASE2_REPLACED, self, now)
        if self.expire_at is not None and now >= self.expire_at:
            self.expire_at = None
            self.out.report(OutcomeKind.PHASE2_EXPIRED, self, now)

    # ------------------------------------------------------------------ wire
    def _commit_received(self) -> None:
        """The message being handled checked out: move the chain past it before we send."""
        if self._pending_commit is not None:
            self.cbc.commit(self._pending_commit)
        self._pending_commit = None

    def _send(self, payloads: list[Payload], now: float, *, expect_reply: bool) -> None:
        self._commit_received()
        np, body = encode_payloads(payloads)
        ciphertext = self.cbc.encrypt(body, self.settings.padding)
        msg = Message(
            self.ph1.icky,
            self.ph1.rcky,
            ExchangeType.QUICK,
            self.message_id,
            (Encrypted(np, ciphertext),),
            Flag.ENCRYPTION | (Flag.COMMIT if self.commit else 0),
        )
        self.rtx.sent(encode_message(msg), self.local, self.peer, now, self.settings.timer,
                      expect_reply=expect_reply)  # fmt: skip

    def _hashed(self, payloads: list[Payload], hash_fn: Callable[[bytes], bytes]) -> list[Payload]:
        """``[HASH(n), *payloads]`` where HASH(n) covers the payloads as they will be sent."""
        _, rest = encode_payloads(payloads)
        return [Hash(hash_fn(rest)), *payloads]

    def receive(self, msg: Message, raw: bytes, now: float) -> None:
        """A message of this exchange: QM1 (responder, the first), QM2/QM4 (initiator) or QM3
        (responder), as :data:`QUICK_TABLE` says; raises :class:`EngineError` subclasses."""
        digest = packet_digest(raw)
        if self.rtx.replay(digest, self.local, self.peer):
            return
        row = QUICK_TABLE.get((self.initiator, self.state))
        if row is None:
            raise UnexpectedMessage(
                f"unexpected quick-mode message in state {self.state.value} of {self.index()}"
            )
        if row.answer_later:
            self.rtx.replies[digest] = None  # a copy that comes while we wait is ignored
        self.rtx.begin(digest)
        dec, payloads = self.decrypt(msg)
        self._pending_commit = dec
        getattr(self, row.handler)(msg, payloads, now)
        self._commit_received()
        if not row.answer_later:
            self.rtx.accepted(digest)

    def abandon_message(self) -> None:
        """The message being handled failed: forget it without moving the chain."""
        self._pending_commit = None
        self.rtx.abandon()

    def message_failed(self, exc: EngineError) -> bool:
        """A handler raised ``exc`` (its notify is the engine's to send): forget the message;
        True when that ends this quick mode -- a responder's first message (there is nothing to
        keep) or a ``LocalError``.  Otherwise a valid message or the timer decides."""
        if self.state is QState.ESTABLISHED:
            return False
        self.abandon_message()
        return (not self.initiator and self.state is QState.START) or isinstance(exc, LocalError)

    def decrypt(self, msg: Message) -> tuple[Decrypted, list[Payload]]:
        """Decrypt with this exchange's CBC chain (not committed yet); HASH must come first."""
        enc = msg.encrypted
        if enc is None:
            raise PayloadMalformed("quick-mode message is not encrypted")
        try:
            dec = self.cbc.decrypt(bytes(enc.ciphertext), self.settings.padding)
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
            self.spis_wanted.add(KERNEL_PROTO[offer.protocol])
            self.out.kernel_request(getspi_request(offer, self.peer, self.local, self.seq), self)
        self.state = QState.GETSPI_SENT

    def kernel_reply(self, event: ops.SaEvent, now: float) -> None:
        """A GETSPI, UPDATE or ADD reply for this exchange."""
        if event.errno:
            self.out.report(
                OutcomeKind.PHASE2_FAILED,
                self,
                now,
                f"pfkey {event.change.name} failed: {os.strerror(event.errno)}",
            )
            return
        if event.change is ops.SaChange.GETSPI:
            self._getspi_reply(event, now)
        elif event.change in (ops.SaChange.UPDATE, ops.SaChange.ADD):
            self._install_reply(event, now)

    def _getspi_reply(self, event: ops.SaEvent, now: float) -> None:
        sa = event.sa
        if sa is None or event.proto not in self.spis_wanted:
            return
        self.spis_wanted.discard(event.proto)
        spi = sa.id.spi
        for offer in self.request.offers:
            if KERNEL_PROTO[offer.protocol] is event.proto:
                size = 2 if offer.protocol == ProtocolID.IPCOMP else 4
                offer.spi = spi.to_bytes(size if spi < 1 << (8 * size) else 4, "big")
        if self.spis_wanted:
            return
        if self.initiator:
            self._send_qm1(now)
        else:
            self._send_qm2(now)

    # ------------------------------------------------------------------ initiator
    def find_sainfo(self) -> SaInfo | None:
        """Initiator: the sainfo for our request's selectors and the peer's phase-1 ID, or None
        after logging each candidate and why it did not match ("failed to get sainfo.")."""
        config, request, ph1 = self.settings.config, self.request, self.ph1
        local_id, remote_id = request.local.id_payload(), request.remote.id_payload()
        sainfo = config.sainfo_for(local_id, remote_id, ph1.peer_id, ph1.remote.ph1id)
        if sainfo is not None:
            return sainfo
        cands = config.sainfo_candidates(local_id, remote_id, ph1.peer_id, ph1.remote.ph1id)
        self.log(Level.ERROR, "failed to get sainfo.")
        for c in cands:
            self.log(Level.ERROR, str(c))
        if not cands:
            self.log(
                Level.ERROR, f"no sainfo for {request.local} {request.remote}: add a sainfo block"
            )
        return None

    def ids_needed(self) -> bool:
        """Initiator: IDs are omitted when nothing they say is new (racoon's isakmp_quick.c):
        transport mode only, no proxy, any protocol and port, the selectors the IKE hosts."""
        request, ph1 = self.request, self.ph1
        if request.tunnel or ph1.remote.support_proxy:
            return True
        if any(o.mode != EncapsulationMode.TRANSPORT for o in request.offers):
            return True
        if request.local.proto != 255 or request.remote.proto != 255:
            return True
        if request.local.port or request.remote.port:
            return True
        return not (
            request.local.network == ipaddress.ip_network(ph1.local[0])
            and request.remote.network == ipaddress.ip_network(ph1.peer[0])
        )

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

    def _qm2(self, msg: Message, payloads: list[Payload], now: float) -> None:
        if msg.flags & Flag.COMMIT:
            self.commit = True  # the responder set it: wait for CONNECTED (RFC 2408 3.1)
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

    def _qm4(self, msg: Message, payloads: list[Payload], now: float) -> None:
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
        self.rtx.stop()
        self.install(now)

    def _responder_lifetime(self, payloads: list[Payload]) -> None:
        """RESPONDER-LIFETIME (RFC 2407 4.6.3.1), accepted per proposal_check (docs/racoon.md
        ("proposal_check"))."""
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
    def _qm1(self, msg: Message, payloads: list[Payload], now: float) -> None:
        """The responder's first message: HASH(1), then the sainfo and SPD lookups and the
        proposal choice; what QM2 needs is kept and the kernel is asked for SPIs."""
        self.commit = bool(msg.flags & Flag.COMMIT)  # copied into QM2 (racoon's isakmp_quick.c)
        _, rest = encode_payloads(payloads[1:])
        self._check_hash(
            "HASH(1)",
            payloads[0],
            quick_mode_hash1(self._prf, self._skeyid_a, self.message_id, rest),
        )
        ph1 = self.ph1
        sa = next((p for p in payloads if isinstance(p, SA)), None)
        if sa is None or not any(isinstance(p, Nonce) for p in payloads):
            raise PayloadMalformed("QM1 lacks SA or Nonce")
        ids = [p for p in payloads if isinstance(p, Identification)]
        if len(ids) not in (0, 2):
            raise InvalidIdInformation(f"QM1 carries {len(ids)} ID payloads (0 or 2 allowed)")
        if ids:
            idci, idcr = ids
        else:
            idci = Selector(ipaddress.ip_network(ph1.peer[0])).id_payload()
            idcr = Selector(ipaddress.ip_network(ph1.local[0])).id_payload()
        remote_sel, local_sel = Selector.from_id(idci), Selector.from_id(idcr)
        candidates = self.settings.config.sainfo_candidates(
            idcr, idci, ph1.peer_id, ph1.remote.ph1id
        )
        sainfo = next((c.sainfo for c in candidates if c.matched), None)
        if sainfo is None:
            raise InvalidIdInformation(
                "failed to get sainfo.",
                details=(f"looked for sainfo {local_sel} {remote_sel}", *map(str, candidates))
                if candidates
                else (
                    f"no sainfo at all matches local {local_sel} remote "
                    f"{remote_sel}: add a sainfo block",
                ),
            )
        assert self.spd is not None, "a quick-mode responder needs the SPD view"
        offers = self.spd.responder_offers(
            ph1.remote.generate_policy,
            sa,
            local_sel,
            remote_sel,
            sainfo,
            (self.local, self.peer),
            self.generated_policies,
        )
        choices = select_phase2(ph1.remote.proposal_check, sa, offers)
        self.request = Request(local_sel, remote_sel, offers)
        self.sainfo = sainfo
        self.ids = (idci, idcr) if ids else None
        self.choices = choices
        nonce = next(p for p in payloads if isinstance(p, Nonce))
        try:
            self.peer_nonce = validate_nonce(bytes(nonce.data))
        except CryptoError as exc:
            raise PayloadMalformed(str(exc)) from None
        self.pfs_group = choices[0].transform.group
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

    def _qm3(self, msg: Message, payloads: list[Payload], now: float) -> None:
        self._check_hash(
            "HASH(3)",
            payloads[0],
            quick_mode_hash3(
                self._prf, self._skeyid_a, self.message_id, self.peer_nonce, self.nonce
            ),
        )
        self.rtx.stop()
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
        updates: list[ops.InstallSa] = []
        adds: list[ops.InstallSa] = []
        for choice, offer in zip(self.choices, self.request.offers, strict=True):
            t = choice.transform
            proto = KERNEL_PROTO[choice.protocol]
            our_spi, peer_spi = offer.spi, choice.peer_spi
            mode = KERNEL_MODE.get(t.mode, ops.Mode.TRANSPORT)
            if choice.protocol == ProtocolID.IPCOMP:
                inbound_keys = outbound_keys = None
                calg = IPCOMP_ALGORITHMS.by("ipcomp_id", t.transform_id)
                params = SaParams(0, 0, mode, 0, compression=calg)
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
                params = SaParams(0, REPLAY_WINDOW, mode, 0, t.cipher, t.auth)
            record = Installed(
                choice.protocol, _spi_int(our_spi), _spi_int(peer_spi), t.mode, {"in", "out"}
            )
            self.installed.append(record)
            for direction, spi, keyset, reqid, src, dst in (
                ("in", our_spi, inbound_keys, offer.reqid_in, self.peer[0], self.local[0]),
                ("out", peer_spi, outbound_keys, offer.reqid_out, self.local[0], self.peer[0]),
            ):
                req = install_request(
                    direction == "in",
                    proto,
                    replace(params, spi=_spi_int(spi), reqid=reqid),
                    (src, dst),
                    keyset,
                    t.lifetime,
                    self.seq,
                )
                (updates if direction == "in" else adds).append(req)
        # racoon's pk_sendupdate() then pk_sendadd(): every UPDATE first, then every ADD
        for req in updates + adds:
            self.out.kernel_request(req, self)

    # ------------------------------------------------------------------ the engine's questions
    def negotiating_larval(self, sa: ops.SaId) -> bool:
        """Still negotiating, with ``sa`` the larval SA one of our GETSPIs made?"""
        if self.state in (QState.ESTABLISHED, QState.ADDING, QState.FAILED):
            return False
        return any(
            KERNEL_PROTO[o.protocol] is sa.proto and o.spi and _spi_int(o.spi) == sa.spi
            for o in self.request.offers
        )

    def installed_match(self, sa: ops.SaId) -> tuple[Installed, str] | None:
        """The pair ``sa`` belongs to and its direction ("in": to us, "out": to the peer)."""
        for rec in self.installed:
            if KERNEL_PROTO[rec.protocol] is not sa.proto:
                continue
            if rec.inbound_spi == sa.spi and sa.dst == self.local[0]:
                return rec, "in"
            if rec.outbound_spi == sa.spi and sa.dst == self.peer[0]:
                return rec, "out"
        return None

    def rekey_request(self) -> Request:
        """The same traffic, protocols, modes and reqids, for a new quick mode: no SPIs yet
        and no ACQUIRE to answer."""
        r = self.request
        offers = [ProtocolOffer(o.protocol, o.mode, o.reqid_in, o.reqid_out) for o in r.offers]
        return Request(r.local, r.remote, offers, r.policy_id, 0, r.tunnel, replaces=self)

    def established_event(self) -> Phase2Established:
        """What the engine announces when every kernel SA of this quick mode is in."""
        return Phase2Established(
            self.local,
            self.peer,
            self.message_id,
            tuple(PROTOCOL_NAMES.get(r.protocol, "?") for r in self.installed),
            tuple(r.inbound_spi for r in self.installed),
            tuple(r.outbound_spi for r in self.installed),
        )

    def sa_text(self, record: Installed, direction: str) -> str:
        """racoon's ``ESP/Transport A[500]->B[500] spi=N(0xN)`` for one direction."""
        proto = PROTOCOL_NAMES.get(record.protocol, "?")
        mode = MODE_NAMES.get(record.mode, "Any")
        if direction == "in":
            src, dst, spi = self.peer, self.local, record.inbound_spi
        else:
            src, dst, spi = self.local, self.peer, record.outbound_spi
        return f"{proto}/{mode} {fmt_endpoint(src)}->{fmt_endpoint(dst)} spi={spi}(0x{spi:x})"

    def _install_reply(self, event: ops.SaEvent, now: float) -> None:
        direction = "in" if event.change is ops.SaChange.UPDATE else "out"
        spi = event.sa.id.spi if event.sa is not None else None
        for record in self.installed:
            if KERNEL_PROTO[record.protocol] is not event.proto or direction not in record.pending:
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
            if self.request.replaces is not None:
                self.retire_at = now + REKEY_DELETE_DELAY
            self.out.report(OutcomeKind.PHASE2_ESTABLISHED, self, now)
