"""Phase 1: one ISAKMP SA, main mode (identity protection) or aggressive mode, PSK or RSA sig.

Theory of operation
-------------------
A :class:`Phase1` object is created by the dispatcher (:mod:`.engine`) when we initiate (an
ACQUIRE found no ISAKMP SA) or when a first message with a zero responder cookie arrives.  It is
handed an output sink and the settings (:mod:`.context`: timers, padding, credentials) and never
calls the dispatcher: what concerns other SAs (established, failed, dying, expired, dead) is
reported as an :class:`~pyracoon.engine.context.Outcome`.  Every later message for its cookies
is handed to :meth:`Phase1.receive`, which looks up ``(exchange, role, state)`` in
:data:`STATE_TABLE`: the row names the handler, the payloads that must be present and the state
that follows.  A message that fits no row is reported as "unexpected" (a late duplicate or a
reordered datagram) and dropped, as racoon does.

Messages, racoon's isakmp_ident.c::

    main        I: MM1 SA          R: MM2 SA            I: MM3 KE Ni      R: MM4 KE Nr [CR]
                I: MM5 *ID [CERT] HASH_I|SIG_I [CR]     R: MM6 *ID [CERT] HASH_R|SIG_R
    aggressive  I: AM1 SA KE Ni ID [CR]   R: AM2 SA KE Nr ID [CR] [CERT] HASH_R|SIG_R
                I: AM3 [CERT] HASH_I|SIG_I   (sent in the clear, as racoon does)

The CBC chain (``pyracoon.crypto.cbc``) moves on a received message only after the message
checked out, so a forged or corrupted datagram cannot desynchronise us.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from pyracoon.config.model import Remote
from pyracoon.crypto.cbc import CbcState, Decrypted
from pyracoon.crypto.ciphers import BlockCipher, ike_key_length
from pyracoon.crypto.dh import DHKeyPair, generate_keypair
from pyracoon.crypto.errors import CryptoError
from pyracoon.crypto.errors import InvalidSignature as CryptoInvalidSignature
from pyracoon.crypto.hashes import digests_equal, hash_i, hash_r, informational_hash
from pyracoon.crypto.iv import phase2_iv
from pyracoon.crypto.keys import (
    PSK_METHODS,
    SIGNATURE_METHODS,
    Phase1Keys,
    derive_phase1_keys,
    derive_skeyid,
    encryption_key,
)
from pyracoon.crypto.nonce import generate_cookie, generate_nonce, validate_nonce
from pyracoon.crypto.prf import Prf, prf_for
from pyracoon.crypto.signature import rsa_sign, rsa_verify
from pyracoon.pki.certs import certificate_subject, parse_certificates
from pyracoon.pki.errors import (
    CertificateVerifyError,
    IdentifierConfigError,
    IdentityMismatchError,
    PkiError,
)
from pyracoon.pki.identity import (
    Identity,
    IdType,
    check_id_against_certificate,
    check_peers_identifier,
)
from pyracoon.pki.verify import verify_certificate_chain
from pyracoon.wire import (
    KE,
    SA,
    Cert,
    CertRequest,
    Encrypted,
    Hash,
    Identification,
    Message,
    Nonce,
    Notification,
    Payload,
    Signature,
    VendorID,
    WireError,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from pyracoon.wire.constants import (
    AuthenticationMethod,
    CertEncoding,
    ExchangeType,
    Flag,
    IDType,
    NotifyType,
    ProtocolID,
    display_name,
)

from .context import OutcomeKind, Output, Settings
from .errors import (
    AuthenticationFailed,
    InvalidCertAuthority,
    InvalidCertificate,
    InvalidFlags,
    InvalidHashInformation,
    InvalidIdInformation,
    InvalidKeyInformation,
    InvalidSignature,
    LocalError,
    NoPreSharedKey,
    PayloadMalformed,
    UnexpectedMessage,
)
from .events import Endpoint, Level, fmt_endpoint
from .proposals import Phase1Params, check_phase1_reply, phase1_sa, select_phase1
from .retransmit import Retransmit, packet_digest

MAIN = ExchangeType.IDENTITY_PROTECTION
AGGRESSIVE = ExchangeType.AGGRESSIVE

#: Vendor IDs worth a log line (racoon's plog.c: "received Vendor ID: DPD").
DPD_VENDOR_ID = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")  # RFC 3706 section 7
KNOWN_VENDOR_IDS = {
    DPD_VENDOR_ID: "DPD",
    bytes.fromhex("4a131c81070358455c5728f20e95452f"): "RFC 3947",
    bytes.fromhex("12f5f28c457168a9702d9fe274cc0100"): "CISCO-UNITY",
    bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3"): "IKE FRAGMENTATION",
}


class Role(Enum):
    INITIATOR = "I"
    RESPONDER = "R"


class P1State(Enum):
    """racoon's ph1 status names, reduced to what a state machine needs."""

    START = "start"
    MSG1_SENT = "msg1 sent"
    MSG2_SENT = "msg2 sent"
    MSG3_SENT = "msg3 sent"
    MSG4_SENT = "msg4 sent"
    MSG5_SENT = "msg5 sent"
    ESTABLISHED = "established"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True)
class Row:
    """One transition: handler name, payload classes required, whether the body is encrypted."""

    handler: str
    required: tuple[type[Payload], ...]
    encrypted: bool
    next_state: P1State


INIT, RESP = Role.INITIATOR, Role.RESPONDER
#: (exchange, role, state) -> what may arrive next.  The documentation of the protocol.
STATE_TABLE: dict[tuple[int, Role, P1State], Row] = {
    (MAIN, RESP, P1State.START): Row("_main_r1", (SA,), False, P1State.MSG2_SENT),
    (MAIN, INIT, P1State.MSG1_SENT): Row("_main_i2", (SA,), False, P1State.MSG3_SENT),
    (MAIN, RESP, P1State.MSG2_SENT): Row("_main_r3", (KE, Nonce), False, P1State.MSG4_SENT),
    (MAIN, INIT, P1State.MSG3_SENT): Row("_main_i4", (KE, Nonce), False, P1State.MSG5_SENT),
    (MAIN, RESP, P1State.MSG4_SENT): Row("_main_r5", (Identification,), True, P1State.ESTABLISHED),
    (MAIN, INIT, P1State.MSG5_SENT): Row("_main_i6", (Identification,), True, P1State.ESTABLISHED),
    (AGGRESSIVE, RESP, P1State.START): Row(
        "_aggr_r1", (SA, KE, Nonce, Identification), False, P1State.MSG2_SENT
    ),
    (AGGRESSIVE, INIT, P1State.MSG1_SENT): Row(
        "_aggr_i2", (SA, KE, Nonce, Identification), False, P1State.ESTABLISHED
    ),
    (AGGRESSIVE, RESP, P1State.MSG2_SENT): Row("_aggr_r3", (), False, P1State.ESTABLISHED),
}


def id_payload(identity: Identity) -> Identification:
    """Our phase-1 ID payload: protocol UDP, port 500 (RFC 2407 4.6.2: 0/0 or UDP/500)."""
    return Identification(int(identity.id_type), identity.data, 17, 500)


def identity_of(payload: Identification) -> Identity:
    """The pki :class:`Identity` of a received ID payload."""
    try:
        id_type = IdType(payload.id_type)
    except ValueError:
        raise InvalidIdInformation(f"unknown ID type {payload.id_type}") from None
    return Identity(id_type, payload.data, payload.protocol_id, payload.port)


def psk_lookup_key(payload: Identification) -> str:
    """The psk.txt key of an ID (racoon: the address as text, or the ID data)."""
    if payload.id_type in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
        return str(payload.address)
    return payload.data.decode("utf-8", "backslashreplace")


class Phase1:
    """One ISAKMP SA and its negotiation."""

    def __init__(
        self,
        out: Output,
        settings: Settings,
        remote: Remote,
        local: Endpoint,
        peer: Endpoint,
        role: Role,
        exchange: int,
        now: float,
        initiator_cookie: bytes | None = None,
    ) -> None:
        self.out = out
        self.settings = settings
        self.remote = remote
        self.local = local
        self.peer = peer
        self.role = role
        self.exchange = exchange
        self.state = P1State.START
        self.icky = initiator_cookie or generate_cookie()
        self.rcky = bytes(8) if role is Role.INITIATOR else generate_cookie()
        self.created = now
        self.params: Phase1Params | None = None
        self.prf: Prf | None = None
        self.keypair: DHKeyPair | None = None
        self.sai_b = b""
        self.nonce = b""
        self.peer_nonce = b""
        self.peer_ke = b""
        self.g_xy = b""
        self.keys: Phase1Keys | None = None
        self.cbc: CbcState | None = None
        self.my_id: Identification | None = None
        self.peer_id: Identification | None = None
        self.peer_cert: x509.Certificate | None = None
        self.psk_entry: str | None = None
        #: Message ids of the protected informationals received under this SA (replays are
        #: dropped: informational.py), oldest first, at most SEEN_INFORMATIONALS of them.
        self.informationals_seen: dict[int, None] = {}
        self.peer_sent_cr = False
        #: resends and racoon's received-packet list (racoon's isakmp.c)
        self.rtx = Retransmit(out.send, self.log, log_unanswered=True)
        self.expire_at: float | None = None
        self.dying_at: float | None = None
        #: Past 80 % of its lifetime: new quick modes prefer a fresher ISAKMP SA.
        self.dying = False
        # DPD (RFC 3706): the peer announced it; our sequence starts at random & 0xfff
        self.peer_dpd = False
        #: The peer said INITIAL-CONTACT inside an encrypted phase-1 message (MM5/MM6, as
        #: charon does): acted upon once the SA is established (Informational.initial_contact).
        self.peer_initial_contact = False
        self.dpd_seq = int.from_bytes(os.urandom(4), "big") & 0xFFF
        self.dpd_last_ack = self.dpd_seq
        self.dpd_fails = 0
        self.dpd_next_at: float | None = None
        self.dpd_retry_at: float | None = None
        self.established_at: float | None = None
        self.deleted = False
        self._pending_commit: Decrypted | None = None

    @classmethod
    def for_first_message(
        cls, out: Output, settings: Settings, msg: Message, local: Endpoint, remote: Endpoint,
        now: float,
    ) -> Phase1 | None:  # fmt: skip
        """A responder for the peer's MM1/AM1, or None after logging why there is none: no
        ``remote`` block for the peer, or an exchange mode it does not allow."""
        rmconf = settings.config.remote_for(remote[0], remote[1])
        if rmconf is None:
            out.log(
                Level.ERROR,
                f"couldn't find configuration for {fmt_endpoint(remote)}: "
                "add a 'remote' block for this address (or 'remote anonymous')",
                remote[0],
            )
            return None
        if msg.exchange_type not in [int(m) for m in rmconf.exchange_modes]:
            out.log(
                Level.ERROR,
                f"not acceptable {display_name(ExchangeType, msg.exchange_type)} mode: "
                f"remote {rmconf.describe()} allows exchange_mode "
                + ", ".join(str(m) for m in rmconf.exchange_modes),
                remote[0],
            )
            return None
        ph1 = cls(
            out, settings, rmconf, local, remote, Role.RESPONDER, msg.exchange_type, now,
            initiator_cookie=bytes(msg.initiator_cookie),
        )  # fmt: skip
        ph1.log(Level.INFO, f"respond new phase 1 negotiation: {ph1.describe()}")
        ph1.log(
            Level.INFO,
            "begin Identity Protection mode." if ph1.exchange == MAIN else "begin Aggressive mode.",
        )
        return ph1

    # ------------------------------------------------------------------ naming
    @property
    def cookies(self) -> bytes:
        """CKY-I | CKY-R: the index of the SA and the SPI of its notifies."""
        return self.icky + self.rcky

    def index(self) -> str:
        """racoon's ``icookie:rcookie`` spelling for logs."""
        return f"{self.icky.hex()}:{self.rcky.hex()}"

    def describe(self) -> str:
        """``L[500]<=>R[500]`` as racoon logs a negotiation."""
        return f"{fmt_endpoint(self.local)}<=>{fmt_endpoint(self.peer)}"

    def log(self, level: Level, text: str) -> None:
        """A log line about this SA's peer."""
        self.out.log(level, text, self.peer[0])

    @property
    def established(self) -> bool:
        """True once the last phase-1 message checked out."""
        return self.state is P1State.ESTABLISHED

    @property
    def auth_method(self) -> int:
        """The negotiated Authentication Method attribute."""
        assert self.params is not None
        return self.params.auth_method

    # ------------------------------------------------------------------ sending
    def _message(self, payloads: list[Payload], *, encrypt: bool, flags: int = 0) -> bytes:
        if encrypt:
            assert self.cbc is not None
            self._commit_received()
            np, body = encode_payloads(payloads)
            ciphertext = self.cbc.encrypt(body, self.settings.padding)
            msg = Message(
                self.icky,
                self.rcky,
                self.exchange,
                0,
                (Encrypted(np, ciphertext),),
                flags | Flag.ENCRYPTION,
            )
        else:
            msg = Message(self.icky, self.rcky, self.exchange, 0, tuple(payloads), flags)
        return encode_message(msg)

    def informational(self, payloads: list[Payload], *, base_iv: bytes | None = None) -> bytes:
        """An informational message about this SA (RFC 2409 5.7): HASH(1)-protected and
        encrypted under a fresh M-ID once the SA has keys, in the clear before.  ``base_iv``
        replaces the chain's IV (the notify after a failed message, racoon's "ive")."""
        if self.keys is None or self.cbc is None or self.prf is None:
            msg = Message(self.icky, self.rcky, ExchangeType.INFORMATIONAL, 0, tuple(payloads))
            return encode_message(msg)
        mid = random_message_id()
        _, rest = encode_payloads(payloads)
        h = informational_hash(self.prf, self.keys.skeyid_a, mid, rest)
        np, body = encode_payloads([Hash(h), *payloads])
        iv = phase2_iv(self.prf, self.cbc.iv if base_iv is None else base_iv, mid,
                       self.cbc.cipher.block_size)  # fmt: skip
        ciphertext = CbcState(self.cbc.cipher, iv).encrypt(body, self.settings.padding)
        msg = Message(
            self.icky,
            self.rcky,
            ExchangeType.INFORMATIONAL,
            mid,
            (Encrypted(np, ciphertext),),
            Flag.ENCRYPTION,
        )
        return encode_message(msg)

    def send_info(self, payloads: list[Payload], *, base_iv: bytes | None = None) -> None:
        """Send an informational exchange about this SA (notify, Delete, DPD)."""
        self.out.send(self.informational(payloads, base_iv=base_iv), self.local, self.peer)

    def _send(self, data: bytes, now: float, *, expect_reply: bool) -> None:
        self.rtx.sent(data, self.local, self.peer, now, self.settings.timer,
                      expect_reply=expect_reply)  # fmt: skip

    def next_timer(self) -> float | None:
        """The earliest of resend, DPD, 80 % and 100 % lifetime timers."""
        candidates = (self.rtx.resend_at, self.dying_at, self.expire_at, self.dpd_next_at,
                      self.dpd_retry_at)  # fmt: skip
        times = [t for t in candidates if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Resend or give up, probe the peer (DPD), mark dying, expire."""
        if self.rtx.due(now):
            if self.rtx.resend(self.local, self.peer, now, self.settings.timer):
                self.log(Level.DEBUG, f"resend phase1 packet {self.index()}")
            else:
                self.state = P1State.FAILED
                self.out.report(
                    OutcomeKind.PHASE1_FAILED,
                    self,
                    now,
                    f"phase1 negotiation failed due to time up. {self.index()}",
                )
                return
        if self._dpd_timer(now):
            return
        if self.state is not P1State.ESTABLISHED:
            return
        if self.dying_at is not None and now >= self.dying_at:
            self.dying_at = None
            self.dying = True
            self.out.report(OutcomeKind.PHASE1_DYING, self, now)
        if self.expire_at is not None and now >= self.expire_at:
            self.expire_at = None
            self.out.report(OutcomeKind.PHASE1_EXPIRED, self, now)

    # ------------------------------------------------------------------ starting
    def start(self, now: float) -> None:
        """Send MM1 or AM1 (initiator)."""
        sa = phase1_sa(self.remote)
        self.sai_b = sa.body_bytes()
        if self.exchange == MAIN:
            self.log(Level.INFO, "begin Identity Protection mode.")
            payloads0: list[Payload] = [sa, *self._vendor_ids()]
            self._send(self._message(payloads0, encrypt=False), now, expect_reply=True)
        else:
            self.log(Level.INFO, "begin Aggressive mode.")
            group = self.remote.proposals[0].dh_group
            self.keypair = generate_keypair(group)
            self.nonce = generate_nonce(self.remote.nonce_size)
            self.my_id = id_payload(self.settings.credentials.my_identity(self.remote, self.local))
            payloads: list[Payload] = [
                sa,
                KE(self.keypair.public_value),
                Nonce(self.nonce),
                self.my_id,
            ]
            payloads += self._cert_request()
            payloads += self._vendor_ids()
            self._send(self._message(payloads, encrypt=False), now, expect_reply=True)
        self.state = P1State.MSG1_SENT

    # ------------------------------------------------------------------ receiving
    def receive(self, msg: Message, raw: bytes, now: float) -> None:
        """Process one datagram of this SA; raises :class:`EngineError` subclasses."""
        digest = packet_digest(raw)
        if self.rtx.replay(digest, self.local, self.peer):
            return
        row = STATE_TABLE.get((self.exchange, self.role, self.state))
        if row is None:
            raise UnexpectedMessage(
                f"unexpected {display_name(ExchangeType, msg.exchange_type)} message in state "
                f"{self.state.value} ({self.role.value}) of {self.index()}"
            )
        if msg.flags & Flag.COMMIT:
            raise InvalidFlags("the commit bit is not allowed in phase 1")
        decrypted = None
        if msg.encrypted is not None:
            if self.cbc is None:
                raise UnexpectedMessage("encrypted phase-1 message before keys exist")
            decrypted = self._decrypt(msg)
            payloads = list(decrypted[1])
        elif row.encrypted:
            raise PayloadMalformed("this phase-1 message must be encrypted")
        else:
            payloads = [p for p in msg.payloads if isinstance(p, Payload)]
        for cls in row.required:
            if not any(isinstance(p, cls) for p in payloads):
                raise PayloadMalformed(
                    f"{cls.__name__} payload missing in {row.handler[1:]} "
                    f"(state {self.state.value}); got "
                    f"[{' '.join(p.name for p in payloads)}]"
                )
        for p in payloads:
            if isinstance(p, VendorID):
                name = KNOWN_VENDOR_IDS.get(bytes(p.data))
                if name:
                    self.log(Level.INFO, f"received Vendor ID: {name}")
                if bytes(p.data) == DPD_VENDOR_ID:
                    self.peer_dpd = True
            elif (
                isinstance(p, Notification)
                and p.notify_type == NotifyType.INITIAL_CONTACT
                and decrypted is not None  # under the new keys: only the peer can have sent it
            ):
                self.peer_initial_contact = True
        self._pending_commit = decrypted[0] if decrypted is not None else None
        self.rtx.begin(digest)
        getattr(self, row.handler)(msg, payloads, now)
        self._commit_received()
        self.rtx.accepted(digest)
        self.state = row.next_state
        if self.state is P1State.ESTABLISHED:
            self._established(now)

    def _commit_received(self) -> None:
        """Move the CBC chain past the message being handled: it checked out (docs/engine.md
        ("Decisions, and why"); racoon's isakmp_ident.c copies ivm->ive to ivm->iv only then)."""
        if self._pending_commit is not None and self.cbc is not None:
            self.cbc.commit(self._pending_commit)
        self._pending_commit = None

    def pending_iv(self) -> bytes | None:
        """The last block of the message being handled (racoon's "ive"), if it was encrypted."""
        if self._pending_commit is not None:
            return self._pending_commit.next_iv
        return None

    def abandon_message(self) -> None:
        """The message being handled failed: forget it without moving the chain."""
        self._pending_commit = None
        self.rtx.abandon()

    def _decrypt(self, msg: Message) -> tuple[Decrypted, tuple[Payload, ...]]:
        assert self.cbc is not None and msg.encrypted is not None
        try:
            dec = self.cbc.decrypt(bytes(msg.encrypted.ciphertext), self.settings.padding)
            body = decode_payloads(msg.encrypted.next_payload, dec.plaintext)
        except (CryptoError, WireError) as exc:
            hint: tuple[str, ...] = ()
            if self.params is not None and self.params.auth_method in PSK_METHODS:
                hint = (
                    "the decrypted message makes no sense: most likely the pre-shared keys "
                    f"differ (we used the psk.txt entry '{self.psk_entry}'); check that entry "
                    "on both sides",
                )
            notify = exc.notify if isinstance(exc, WireError) else None
            raise PayloadMalformed(
                f"failed to decrypt/parse the message: {exc}", details=hint, notify=notify
            ) from None
        return dec, body.payloads

    # ------------------------------------------------------------------ helpers
    def _first(self, payloads: list[Payload], cls: type[Payload]) -> Payload | None:
        for p in payloads:
            if isinstance(p, cls):
                return p
        return None

    def _set_params(self, params: Phase1Params) -> None:
        self.params = params
        self.prf = prf_for(params.hash.ike_id)

    def _check_auth_method_supported(self) -> None:
        method = self.auth_method
        if method not in PSK_METHODS and method != AuthenticationMethod.RSA_SIGNATURES:
            raise AuthenticationFailed(
                f"authentication method {display_name(AuthenticationMethod, method)} is not "
                "supported (use pre_shared_key or rsasig)"
            )

    def _take_ke_nonce(self, payloads: list[Payload]) -> None:
        ke = self._first(payloads, KE)
        nonce = self._first(payloads, Nonce)
        assert isinstance(ke, KE) and isinstance(nonce, Nonce)
        try:
            self.peer_nonce = validate_nonce(bytes(nonce.data))
        except CryptoError as exc:
            raise PayloadMalformed(str(exc)) from None
        self.peer_ke = bytes(ke.data)

    def _compute_keys(self, psk_keys: list[str]) -> None:
        """g^xy, SKEYID..SKEYID_e, the cipher key and the phase-1 IV (RFC 2409 5, app. B)."""
        assert self.params is not None and self.prf is not None and self.keypair is not None
        try:
            self.g_xy = self.keypair.compute_shared_secret(self.peer_ke, allow_short=True)
        except CryptoError as exc:
            raise InvalidKeyInformation(f"peer's KE is unusable: {exc}") from None
        ni, nr = self._ni_nr()
        psk = None
        if self.auth_method in PSK_METHODS:
            psk = self._lookup_psk(psk_keys)
        skeyid = derive_skeyid(self.prf, self.auth_method, ni, nr, self.g_xy, psk=psk)
        self.keys = derive_phase1_keys(self.prf, skeyid, self.g_xy, self.icky, self.rcky)
        cipher_row = self.params.encryption
        key = encryption_key(
            self.prf, self.keys.skeyid_e, ike_key_length(cipher_row, self.params.key_length)
        )
        g_xi, g_xr = self._g_xi_g_xr()
        self.cbc = CbcState.for_phase1(BlockCipher(cipher_row, key), self.prf, g_xi, g_xr)
        self.out.ike_keys(self.icky, key)

    def _lookup_psk(self, keys: list[str]) -> bytes:
        source = self.settings.credentials.psk_source()
        if source is None:
            raise NoPreSharedKey("no pre-shared key file: set 'path pre_shared_key' in racoon.conf")
        found = source.lookup(keys)
        if found.key is None:
            raise NoPreSharedKey(
                f"couldn't find the pskey for {keys[-1] if keys else '?'}.",
                details=(
                    f"looked up {', '.join(keys)} (and '*') in {found.path}; add a line "
                    f"'{keys[-1] if keys else 'ADDRESS'} <secret>' there",
                ),
            )
        self.psk_entry = found.matched_id
        self.log(Level.DEBUG, f"the psk found for {found.matched_id} in {found.path}")
        return found.key

    def _ni_nr(self) -> tuple[bytes, bytes]:
        if self.role is Role.INITIATOR:
            return self.nonce, self.peer_nonce
        return self.peer_nonce, self.nonce

    def _g_xi_g_xr(self) -> tuple[bytes, bytes]:
        assert self.keypair is not None
        mine = self.keypair.public_value
        peer = self.peer_ke.rjust(len(mine), b"\x00")
        return (mine, peer) if self.role is Role.INITIATOR else (peer, mine)

    def _vendor_ids(self) -> list[Payload]:
        """The Vendor IDs we announce: DPD (RFC 3706) unless ``dpd off``."""
        return [VendorID(DPD_VENDOR_ID)] if self.remote.dpd else []

    # ------------------------------------------------------------------ DPD (RFC 3706)
    @property
    def dpd_active(self) -> bool:
        """We probe: dpd_delay > 0 and both sides announced DPD (RFC 3706)."""
        return self.remote.dpd and self.remote.dpd_delay > 0 and self.peer_dpd

    def _send_r_u_there(self, now: float) -> None:
        self.dpd_seq = (self.dpd_seq + 1) & 0xFFFFFFFF
        self.send_info(
            [
                Notification(
                    NotifyType.R_U_THERE,
                    ProtocolID.ISAKMP,
                    self.cookies,
                    self.dpd_seq.to_bytes(4, "big"),
                )
            ]
        )
        self.log(Level.DEBUG, f"DPD R-U-THERE sent (seq={self.dpd_seq})")
        self.dpd_next_at = None
        self.dpd_retry_at = now + self.remote.dpd_retry

    def dpd_ack(self, seq: int, now: float) -> None:
        """An R-U-THERE-ACK: accepted only if last_ack < seq <= our sequence number."""
        if not self.dpd_last_ack < seq <= self.dpd_seq:
            self.log(Level.DEBUG, f"DPD: ACK with unexpected seq {seq} ignored")
            return
        self.dpd_last_ack = seq
        self.dpd_fails = 0
        self.dpd_retry_at = None
        self.dpd_next_at = now + self.remote.dpd_delay
        self.log(Level.DEBUG, f"DPD R-U-THERE-ACK received (seq={seq})")

    def _dpd_timer(self, now: float) -> bool:
        """Probe, retry or give up; True when the peer was declared dead."""
        if self.dpd_next_at is not None and now >= self.dpd_next_at:
            self._send_r_u_there(now)
        elif self.dpd_retry_at is not None and now >= self.dpd_retry_at:
            self.dpd_fails += 1
            if self.dpd_fails >= self.remote.dpd_maxfail:
                self.dpd_retry_at = None
                self.out.report(OutcomeKind.PHASE1_DEAD, self, now)
                return True
            self._send_r_u_there(now)
        return False

    def _cert_request(self) -> list[Payload]:
        """CR when rsasig and send_cr (racoon's isakmp_ident.c: peers_certfile issuer, ca_type
        subject, else empty)."""
        if not self._uses_signatures() or not self.remote.send_cr:
            return []
        authority = self.settings.credentials.cr_authority(self.remote)
        return [CertRequest(CertEncoding.X509_SIGNATURE, authority)]

    def _uses_signatures(self) -> bool:
        if self.params is not None:
            return self.params.auth_method in SIGNATURE_METHODS
        return any(int(p.authentication_method) in SIGNATURE_METHODS for p in self.remote.proposals)

    def _my_hash(self) -> bytes:
        assert self.prf is not None and self.keys is not None and self.my_id is not None
        g_xi, g_xr = self._g_xi_g_xr()
        id_b = self.my_id.body_bytes()
        if self.role is Role.INITIATOR:
            return hash_i(
                self.prf, self.keys.skeyid, g_xi, g_xr, self.icky, self.rcky, self.sai_b, id_b
            )
        return hash_r(
            self.prf, self.keys.skeyid, g_xr, g_xi, self.rcky, self.icky, self.sai_b, id_b
        )

    def _peer_hash(self) -> bytes:
        assert self.prf is not None and self.keys is not None and self.peer_id is not None
        g_xi, g_xr = self._g_xi_g_xr()
        id_b = self.peer_id.body_bytes()
        if self.role is Role.RESPONDER:
            return hash_i(
                self.prf, self.keys.skeyid, g_xi, g_xr, self.icky, self.rcky, self.sai_b, id_b
            )
        return hash_r(
            self.prf, self.keys.skeyid, g_xr, g_xi, self.rcky, self.icky, self.sai_b, id_b
        )

    def _auth_payloads(self) -> list[Payload]:
        """Our proof of identity: HASH_I/HASH_R (PSK), or [CERT] SIG (RSA signatures)."""
        proof = self._my_hash()
        if self.auth_method in PSK_METHODS:
            return [Hash(proof)]
        cert, key = self.settings.credentials.my_certificate(self.remote)
        out: list[Payload] = []
        if self.remote.send_cert:
            out.append(Cert(CertEncoding.X509_SIGNATURE, cert.public_bytes(Encoding.DER)))
        if not isinstance(key, rsa.RSAPrivateKey):
            raise LocalError(
                f"rsasig needs an RSA private key; certificate_type names a {type(key).__name__}"
            )
        out.append(Signature(rsa_sign(key, proof)))
        return out

    def _verify_peer(self, payloads: list[Payload], now: float) -> None:
        """Check the peer's ID (verify_identifier), certificate and HASH/SIG."""
        peer_identity = identity_of(self.peer_id) if self.peer_id else None
        assert peer_identity is not None
        if self.auth_method in PSK_METHODS:
            got = self._first(payloads, Hash)
            if not isinstance(got, Hash):
                raise AuthenticationFailed("HASH payload missing (pre-shared key authentication)")
            if not digests_equal(got.data, self._peer_hash()):
                raise InvalidHashInformation(
                    "HASH mismatched",
                    details=(
                        "the peer proved knowledge of a different pre-shared key, or hashed a "
                        f"different ID; we used the psk.txt entry '{self.psk_entry}'",
                    ),
                )
            self._check_identifier(peer_identity, None)
            return
        # RSA signatures
        cert = self._peer_certificate(payloads)
        sig = self._first(payloads, Signature)
        if not isinstance(sig, Signature):
            raise AuthenticationFailed("SIG payload missing (rsasig authentication)")
        if self.remote.verify_cert and self.remote.peers_certfile is None:
            try:
                untrusted = [
                    c for p in payloads if isinstance(p, Cert) for c in self._parse_cert(p)
                ]
                verify_certificate_chain(
                    cert,
                    trust=self.settings.credentials.trust_store(self.remote),
                    untrusted=untrusted,
                    now=self.settings.wall_date(now),
                )
            except CertificateVerifyError as exc:
                raise InvalidCertAuthority(
                    exc.racoon_log_line(),
                    details=(str(exc), "the peer's certificate is not verified."),
                ) from None
        if self.remote.verify_cert:
            try:
                check_id_against_certificate(peer_identity, cert)
            except IdentityMismatchError as exc:
                raise InvalidIdInformation(
                    str(exc.args[0]) if exc.args else str(exc),
                    details=(getattr(exc, "detail", ""),),
                ) from None
        self._check_identifier(peer_identity, cert)
        try:
            public_key = cert.public_key()
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise TypeError(f"the certificate holds a {type(public_key).__name__}, not RSA")
            rsa_verify(public_key, self._peer_hash(), bytes(sig.data))
        except (CryptoInvalidSignature, TypeError, ValueError) as exc:
            raise InvalidSignature(
                "Invalid SIG.",
                details=(
                    f"{exc}; the signature does not match certificate "
                    f"'{certificate_subject(cert).rfc2253()}'",
                ),
            ) from None

    def _parse_cert(self, payload: Cert) -> list[x509.Certificate]:
        if payload.encoding != CertEncoding.X509_SIGNATURE:
            return []
        try:
            return parse_certificates(bytes(payload.data), source="CERT payload")
        except PkiError:
            return []

    def _peer_certificate(self, payloads: list[Payload]) -> x509.Certificate:
        if self.remote.peers_certfile is not None:
            return self.settings.credentials.peers_certfile(self.remote)
        for p in payloads:
            if isinstance(p, Cert):
                certs = self._parse_cert(p)
                if certs:
                    self.peer_cert = certs[0]
                    return certs[0]
        raise InvalidCertificate(
            "no peer's CERT payload found.",
            details=(
                "the peer sent no usable X.509 certificate: set send_cert on there, or "
                "peers_certfile here",
            ),
        )

    def _check_identifier(self, peer_identity: Identity, cert: x509.Certificate | None) -> None:
        if not self.remote.verify_identifier:
            return
        try:
            check_peers_identifier(
                peer_identity,
                self.remote.peers_identifiers,
                peer_certificate=cert,
                remote_address=str(self.peer[0]),
            )
        except (IdentityMismatchError, IdentifierConfigError) as exc:
            raise InvalidIdInformation(
                "ID value mismatched.", details=(str(getattr(exc, "detail", exc)),)
            ) from None

    # ------------------------------------------------------------------ main mode
    def _main_r1(self, msg: Message, payloads: list[Payload], now: float) -> None:
        sa = self._first(payloads, SA)
        assert isinstance(sa, SA)
        self.sai_b = sa.body_bytes()
        choice = select_phase1(self.remote, sa)
        self._set_params(choice.params)
        self._check_auth_method_supported()
        reply = SA(
            (
                type(sa.proposals[0])(
                    sa.proposals[0].number,
                    sa.proposals[0].protocol_id,
                    sa.proposals[0].spi,
                    (choice.transform,),
                ),
            )
        )
        self._send(
            self._message([reply, *self._vendor_ids()], encrypt=False), now, expect_reply=True
        )

    def _main_i2(self, msg: Message, payloads: list[Payload], now: float) -> None:
        sa = self._first(payloads, SA)
        assert isinstance(sa, SA)
        self.rcky = bytes(msg.responder_cookie)
        choice = check_phase1_reply(self.remote, sa)
        self._set_params(choice.params)
        self._check_auth_method_supported()
        self.keypair = generate_keypair(choice.params.dh_group)
        self.nonce = generate_nonce(self.remote.nonce_size)
        out: list[Payload] = [KE(self.keypair.public_value), Nonce(self.nonce)]
        self._send(self._message(out, encrypt=False), now, expect_reply=True)

    def _main_r3(self, msg: Message, payloads: list[Payload], now: float) -> None:
        assert self.params is not None
        self._take_ke_nonce(payloads)
        self.peer_sent_cr = any(isinstance(p, CertRequest) for p in payloads)
        self.keypair = generate_keypair(self.params.dh_group)
        self.nonce = generate_nonce(self.remote.nonce_size)
        self._compute_keys([str(self.peer[0])])
        out: list[Payload] = [KE(self.keypair.public_value), Nonce(self.nonce)]
        out += self._cert_request()
        self._send(self._message(out, encrypt=False), now, expect_reply=True)

    def _main_i4(self, msg: Message, payloads: list[Payload], now: float) -> None:
        self._take_ke_nonce(payloads)
        self.peer_sent_cr = any(isinstance(p, CertRequest) for p in payloads)
        self._compute_keys([str(self.peer[0])])
        self.my_id = id_payload(self.settings.credentials.my_identity(self.remote, self.local))
        out: list[Payload] = [self.my_id, *self._auth_payloads(), *self._cert_request()]
        self._send(self._message(out, encrypt=True), now, expect_reply=True)

    def _main_r5(self, msg: Message, payloads: list[Payload], now: float) -> None:
        peer_id = self._first(payloads, Identification)
        assert isinstance(peer_id, Identification)
        self.peer_id = peer_id
        self._verify_peer(payloads, now)
        self.my_id = id_payload(self.settings.credentials.my_identity(self.remote, self.local))
        out: list[Payload] = [self.my_id, *self._auth_payloads()]
        self._send(self._message(out, encrypt=True), now, expect_reply=False)

    def _main_i6(self, msg: Message, payloads: list[Payload], now: float) -> None:
        peer_id = self._first(payloads, Identification)
        assert isinstance(peer_id, Identification)
        self.peer_id = peer_id
        self._verify_peer(payloads, now)
        self.rtx.stop()

    # ------------------------------------------------------------------ aggressive mode
    def _psk_keys_for(self, peer_id: Identification) -> list[str]:
        keys = [psk_lookup_key(peer_id)]
        if not self.remote.verify_identifier and str(self.peer[0]) not in keys:
            keys.append(str(self.peer[0]))
        return keys

    def _aggr_r1(self, msg: Message, payloads: list[Payload], now: float) -> None:
        sa = self._first(payloads, SA)
        peer_id = self._first(payloads, Identification)
        assert isinstance(sa, SA) and isinstance(peer_id, Identification)
        self.sai_b = sa.body_bytes()
        choice = select_phase1(self.remote, sa)
        self._set_params(choice.params)
        self._check_auth_method_supported()
        self._take_ke_nonce(payloads)
        self.peer_id = peer_id
        self.peer_sent_cr = any(isinstance(p, CertRequest) for p in payloads)
        self.keypair = generate_keypair(choice.params.dh_group)
        self.nonce = generate_nonce(self.remote.nonce_size)
        self._compute_keys(self._psk_keys_for(peer_id))
        self.my_id = id_payload(self.settings.credentials.my_identity(self.remote, self.local))
        proposal = sa.proposals[0]
        reply = SA(
            (
                type(proposal)(
                    proposal.number, proposal.protocol_id, proposal.spi, (choice.transform,)
                ),
            )
        )
        out: list[Payload] = [
            reply,
            KE(self.keypair.public_value),
            Nonce(self.nonce),
            self.my_id,
            *self._cert_request(),
            *self._auth_payloads(),
            *self._vendor_ids(),
        ]
        self._send(self._message(out, encrypt=False), now, expect_reply=True)

    def _aggr_i2(self, msg: Message, payloads: list[Payload], now: float) -> None:
        sa = self._first(payloads, SA)
        peer_id = self._first(payloads, Identification)
        assert isinstance(sa, SA) and isinstance(peer_id, Identification)
        self.rcky = bytes(msg.responder_cookie)
        choice = check_phase1_reply(self.remote, sa)
        self._set_params(choice.params)
        self._check_auth_method_supported()
        self._take_ke_nonce(payloads)
        self.peer_id = peer_id
        self._compute_keys(self._psk_keys_for(peer_id))
        self._verify_peer(payloads, now)
        out: list[Payload] = self._auth_payloads()
        self._send(self._message(out, encrypt=False), now, expect_reply=False)

    def _aggr_r3(self, msg: Message, payloads: list[Payload], now: float) -> None:
        if not any(isinstance(p, (Hash, Signature)) for p in payloads):
            raise PayloadMalformed("AM3 carries neither HASH nor SIG")
        self._verify_peer(payloads, now)
        self.rtx.stop()

    # ------------------------------------------------------------------ established
    def _established(self, now: float) -> None:
        assert self.params is not None
        self.established_at = now
        self.expire_at = now + self.params.lifetime
        # racoon's isakmp.c: the ISAKMP SA is "dying" at 80 % of its lifetime
        self.dying_at = now + self.params.lifetime * 8 // 10
        if self.dpd_active:
            self.dpd_next_at = now + self.remote.dpd_delay
        if self.role is Role.RESPONDER:
            self.rtx.stop()
        self.log(
            Level.INFO,
            f"ISAKMP-SA established {fmt_endpoint(self.local)}-{fmt_endpoint(self.peer)} "
            f"spi:{self.index()}",
        )
        self.out.report(OutcomeKind.PHASE1_ESTABLISHED, self, now)


def random_message_id() -> int:
    """A fresh non-zero M-ID (RFC 2408 3.1)."""
    while True:
        mid = int.from_bytes(os.urandom(4), "big")
        if mid:
            return mid
