"""The dispatcher: every phase-1 and phase-2 SA of one host, sans I/O.

Theory of operation
-------------------
Three things come in -- :meth:`Engine.receive_datagram` (an ISAKMP datagram with its local and
remote endpoints), :meth:`Engine.receive_kernel` (a PF_KEY message: ACQUIRE, GETSPI/UPDATE/ADD
replies, EXPIRE, DELETE, SPD dumps and changes) and :meth:`Engine.handle_timer` -- each with the
current time ``now`` (seconds; the engine never reads a clock).  What the engine decided comes
out of :meth:`Engine.events` as :mod:`~pyracoon.engine.events` values, and
:meth:`Engine.next_timer` says when it wants to be called again.

The engine owns what crosses SAs (the OCaml isakmp "Dispatcher" split): finding the SA a
datagram belongs to, the SPD cache that ACQUIREs and responders need (filled by X_SPDDUMP and
kept current by SPD broadcasts, as racoon does), routing kernel replies by ``(seq, type,
satype)``, queueing phase-2 requests until their phase 1 is up, INITIAL-CONTACT, Delete and the
notify that answers each failure.  The per-SA protocol lives in :mod:`.phase1` and :mod:`.quick`.

Failures are :mod:`~pyracoon.engine.errors` exceptions named after the notify to send; this
module turns them into the notify, the log lines and the end of the SA.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyracoon.config.model import Config, GeneratePolicy, Rekey, Remote
from pyracoon.crypto.cbc import CbcState
from pyracoon.crypto.errors import CryptoError
from pyracoon.crypto.hashes import informational_hash, quick_mode_hash1
from pyracoon.crypto.iv import phase2_iv
from pyracoon.crypto.padding import PaddingPolicy
from pyracoon.kernel import pfkey
from pyracoon.kernel.sadb import (
    MANUAL_REQID_MAX,
    Direction,
    ExtType,
    Mode,
    MsgType,
    SaState,
    SaType,
)
from pyracoon.kernel.sadb import Level as SpLevel
from pyracoon.pki import (
    PkiError,
    TrustStore,
    build_my_identity,
    certificate_issuer,
    certificate_subject,
    load_certificate,
    load_private_key,
)
from pyracoon.wire import (
    SA,
    Delete,
    Encrypted,
    Hash,
    Identification,
    Message,
    Nonce,
    Notification,
    Payload,
    WireError,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from pyracoon.wire.constants import (
    EncapsulationMode,
    ExchangeType,
    Flag,
    NotifyType,
    ProtocolID,
    display_name,
    is_error_notify,
)

from . import events as ev
from .errors import (
    EngineError,
    InvalidIdInformation,
    LocalError,
    NoProposalChosen,
    PayloadMalformed,
    UnexpectedMessage,
)
from .events import Endpoint, Level, fmt_endpoint
from .phase1 import AGGRESSIVE, MAIN, P1State, Phase1, Role, random_message_id
from .proposals import (
    PROTOCOL_NAMES,
    ProtocolOffer,
    parse_phase2_transform,
    sainfo_transforms,
    select_phase2,
)
from .psk import PskFile
from .quick import SATYPE_OF, QState, Quick, Request, Selector

PROTOCOL_OF_IPPROTO = {50: ProtocolID.IPSEC_ESP, 51: ProtocolID.IPSEC_AH, 108: ProtocolID.IPCOMP}
IPPROTO_OF_PROTOCOL = {v: k for k, v in PROTOCOL_OF_IPPROTO.items()}
ENCAP_OF_SADB_MODE: dict[int, EncapsulationMode] = {
    Mode.TUNNEL: EncapsulationMode.TUNNEL,
    Mode.TRANSPORT: EncapsulationMode.TRANSPORT,
}


def _selector_address(ext_type: ExtType, sel: Selector) -> pfkey.Address:
    """An SPD selector as an ADDRESS_SRC/DST extension (prefix, port, upper-layer protocol)."""
    net = sel.network
    return pfkey.Address(ext_type, net.network_address, sel.port, net.prefixlen, sel.proto)


def _contains(outer: Selector, inner: Selector) -> bool:
    """Does SP selector ``outer`` cover ID selector ``inner`` (address, protocol, port)?"""
    if outer.network.version != inner.network.version:
        return False
    if not inner.network.subnet_of(outer.network):  # type: ignore[arg-type]
        return False
    if outer.proto != 255 and outer.proto != inner.proto:
        return False
    return outer.port in (0, inner.port)


@dataclass
class SpdEntry:
    """One cached SPD entry (racoon's SPD cache, racoon-facts 5.2)."""

    policy_id: int
    direction: int
    src: Selector
    dst: Selector
    requests: list[pfkey.IpsecRequest]
    policy_type: int = 2


def padding_policy(config: Config) -> PaddingPolicy:
    """racoon.conf's ``padding {}`` block as the CBC layer applies it (racoon-facts 8.13)."""
    pad = config.padding
    return PaddingPolicy(
        pad.randomize, pad.randomize_length, pad.maximum_length, pad.strict_check,
        pad.exclusive_tail,
    )  # fmt: skip


def policy_offers(
    sp: SpdEntry, twin: SpdEntry | None, *, inbound_first: bool
) -> list[ProtocolOffer]:
    """One protocol offer per ipsecrequest of ``sp``, in reverse SPD order as racoon proposes
    them (racoon-facts 1.5), each with the reqids of both directions: ``sp``'s own for its
    direction, ``twin``'s (the SP of the other direction) for the other one when it has a request
    for the same protocol. ``inbound_first`` says that ``sp`` is the inbound SP (responder)."""
    offers = []
    for req in reversed(sp.requests):
        protocol = PROTOCOL_OF_IPPROTO.get(req.proto)
        if protocol is None:
            continue
        other = req.reqid
        for r in twin.requests if twin is not None else ():
            if r.proto == req.proto:
                other = r.reqid
        mode = ENCAP_OF_SADB_MODE.get(req.mode, EncapsulationMode.TRANSPORT)
        reqid_in, reqid_out = (req.reqid, other) if inbound_first else (other, req.reqid)
        offers.append(ProtocolOffer(protocol, mode, reqid_in, reqid_out))
    return offers


#: Destinations no IKE peer can have, and how the log names them. An SPD entry as wide as
#: ``spdadd ::/0 ::/0 any`` also covers multicast (neighbour and router discovery, mDNS),
#: broadcasts, link-local neighbours (whose address means nothing without an interface, which
#: a remote block cannot name) and the unspecified address; an ACQUIRE for them must not start
#: a phase 1 that would retransmit to them for nothing. IPv4 169.254/16 is not here: those are
#: unicast addresses a peer can have.
_NOT_A_PEER: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/32"), "the unspecified address"),
    (ipaddress.ip_network("::/128"), "the unspecified address"),
    (ipaddress.ip_network("255.255.255.255/32"), "the broadcast address"),
    (ipaddress.ip_network("224.0.0.0/4"), "a multicast address"),
    (ipaddress.ip_network("ff00::/8"), "a multicast address"),
    (ipaddress.ip_network("fe80::/10"), "an IPv6 link-local address"),
)
#: How many such destinations are remembered, to log each at INFO only once.
_NOT_A_PEER_MEMORY = 1024


def not_a_peer(addr: Any) -> str | None:
    """Why ``addr`` cannot be an IKE peer (a phrase for the log), or None when it can."""
    for net, what in _NOT_A_PEER:
        if addr.version == net.version and addr in net:
            return what
    return None


def _tunnel_request(sp: SpdEntry) -> pfkey.IpsecRequest | None:
    """The tunnel-mode request of ``sp`` with its endpoints: its ``dst`` is the IKE peer."""
    return next((r for r in sp.requests if r.mode == Mode.TUNNEL and r.dst), None)


@dataclass
class Waiting:
    """A phase-2 request queued until its phase 1 is up (timer phase1)."""

    remote: Remote
    local: Endpoint
    peer: Endpoint
    request: Request
    deadline: float


@dataclass
class Engine:
    """All negotiations of one host.  ``pid`` is what our PF_KEY messages carry."""

    config: Config
    pid: int = field(default_factory=os.getpid)
    #: Overrides ``path pre_shared_key`` (tests, or a daemon that reads the file itself).
    psk: Any = None
    #: How to turn ``now`` into a date for certificate validity; default: ``now`` is Unix time.
    wall_clock: Callable[[float], datetime] | None = None
    #: Set the commit bit in QM1.  racoon never does; this exists to test the other side of
    #: racoon-facts 8.8 (a peer that sets it) against ourselves.
    commit_bit: bool = False
    #: Emit :class:`~pyracoon.engine.events.IkeKeys` for every ISAKMP SA whose keys are derived
    #: (``pyracoon --ike-keylog``).  Off by default: the event carries a secret.
    export_ike_keys: bool = False

    def __post_init__(self) -> None:
        self._events: list[ev.Event] = []
        self.ph1s: dict[bytes, Phase1] = {}
        self.quicks: dict[tuple[bytes, int], Quick] = {}
        self.spd: dict[int, SpdEntry] = {}
        self._spd_dumping = False
        """Our X_SPDDUMP is unanswered: the SPD cache is not complete yet."""
        self._early_acquires: list[pfkey.Message] = []
        """ACQUIREs that came before the dump's end; served when it ends."""
        self.waiting: list[Waiting] = []
        self.pending: dict[tuple[int, int, int], Quick] = {}
        self.contacted: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        #: Destinations whose ACQUIREs were ignored (not_a_peer) and already logged at INFO.
        self.not_peers: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        self.established: list[Quick] = []
        self._seq = 0
        self._next_generated_reqid = 0
        #: Outstanding SAD dumps for purges: (peer address, ISAKMP SA whose SAs are kept).
        self._dumps: list[tuple[Any, Phase1 | None]] = []
        self.now = 0.0
        self._certs: dict[str, Any] = {}
        self.padding = padding_policy(self.config)

    # ================================================================== outputs
    def events(self) -> list[ev.Event]:
        """Everything decided since the last call, in order."""
        out, self._events = self._events, []
        return out

    def log(self, level: Level, text: str, peer: Any = None) -> None:
        """Queue a log line (racoon's wording where racoon has one)."""
        self._events.append(ev.LogEvent(level, text, peer))

    def send(self, data: bytes, local: Endpoint, remote: Endpoint) -> None:
        """Queue a datagram for the daemon to send."""
        self._events.append(ev.DatagramOut(data, local, remote))

    def next_seq(self) -> int:
        """A fresh PF_KEY sequence number for requests not tied to an ACQUIRE."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def kernel_request(self, msg: pfkey.Message, owner: Quick | None = None) -> None:
        """Queue a PF_KEY request; replies come back to ``owner`` by (seq, type, satype)."""
        if owner is not None:
            self.pending[(msg.seq, msg.type, msg.satype)] = owner
        self._events.append(ev.KernelRequest(msg))

    # ================================================================== start
    def start(self, now: float) -> None:
        """REGISTER for AH/ESP/IPComp, then X_SPDDUMP to fill the SPD cache (5.2)."""
        self.now = now
        for satype in (SaType.AH, SaType.ESP, SaType.IPCOMP):
            self.kernel_request(
                pfkey.Message(MsgType.REGISTER, satype, seq=self.next_seq(), pid=self.pid)
            )
        self._dump_spd()

    def _dump_spd(self) -> None:
        """X_SPDDUMP into the SPD cache. A kernel may answer it late -- af_key answers each
        REGISTER only after probing every algorithm, which can load modules for seconds -- and
        an ACQUIRE meanwhile names a policy not cached yet; the kernel asks again for that
        traffic only after its larval SA dies (30 s on Linux). So ACQUIREs wait for the dump."""
        self._spd_dumping = True
        self.kernel_request(pfkey.Message(MsgType.X_SPDDUMP, 0, seq=self.next_seq(), pid=self.pid))

    def _spd_dump_done(self, now: float) -> None:
        self._spd_dumping = False
        waiting, self._early_acquires = self._early_acquires, []
        for msg in waiting:
            self._acquire(msg, now)

    def reload(self, config: Config, now: float) -> None:
        """SIGHUP: take the new configuration and re-read the SPD (racoon-facts 2).

        Existing SAs stay; each ISAKMP SA is re-bound to the remote the new file gives for its
        peer (racoon's revalidation), or keeps its old settings, with a warning, when the new
        file has none.  Certificates, keys and the CA directory are read again when next used.
        """
        self.now = now
        self.config = config
        self.padding = padding_policy(config)
        self._certs.clear()
        for ph1 in self.ph1s.values():
            remote = config.remote_for(ph1.peer[0], ph1.peer[1])
            if remote is None:
                self.log(
                    Level.WARNING,
                    f"no remote for {fmt_endpoint(ph1.peer)} after the reload: ISAKMP-SA "
                    f"{ph1.index()} keeps its old settings until it ends",
                    ph1.peer[0],
                )
            else:
                ph1.remote = remote
        self.spd.clear()
        self._dump_spd()

    # ================================================================== racoonctl
    def isakmp_sas(self) -> list[ev.IsakmpSaStatus]:
        """Every ISAKMP SA, negotiating or established (``show-sa isakmp``)."""
        return [
            ev.IsakmpSaStatus(
                ph1.local,
                ph1.peer,
                ph1.icky,
                ph1.rcky,
                ph1.created,
                ph1.state.value,
                display_name(ExchangeType, ph1.exchange),
                ph1.role is Role.INITIATOR,
                sum(1 for q in self.established if q.ph1 is ph1),
            )
            for ph1 in self.ph1s.values()
        ]

    def establish(self, peer: Endpoint, now: float, local: Endpoint | None = None) -> bool:
        """``establish-sa isakmp``: start a phase 1 with ``peer`` unless one exists."""
        self.now = now
        peer = ev.endpoint(*peer)
        if self._phase1_for(peer) is not None:
            return True
        remote = self.config.remote_for(peer[0], peer[1])
        if remote is None:
            self.log(Level.ERROR, f"no configuration found for {peer[0]}", peer[0])
            return False
        if local is None:
            wildcard = ipaddress.ip_address("::" if peer[0].version == 6 else "0.0.0.0")
            local = (wildcard, self.config.isakmp_port)
        return self.initiate(remote, local, peer, now) is not None

    def delete_isakmp(self, peer_address: Any, now: float) -> int:
        """``delete-sa isakmp``: announce and drop every ISAKMP SA with that peer."""
        self.now = now
        address = ipaddress.ip_address(str(peer_address).split("%")[0])
        gone = [ph1 for ph1 in self.ph1s.values() if ph1.peer[0] == address]
        for ph1 in gone:
            self.log(Level.INFO, f"purging ISAKMP-SA spi={ph1.index()}.", address)
            self._remove_phase1(ph1, announce=True)
        return len(gone)

    def local_port(self, address: Any) -> int:
        """The ISAKMP port we use on ``address``: its ``listen { isakmp ADDR [PORT]; }`` line if
        it has one, else the daemon's port (``-p``, default 500)."""
        for line in self.config.listen.addresses:
            if not line.natt and line.address == address:
                return line.effective_port(self.config.isakmp_port)
        return self.config.isakmp_port

    # ================================================================== timers
    def next_timer(self) -> float | None:
        """When the engine next wants :meth:`handle_timer` (None: no timer)."""
        times = [t for t in (sa.next_timer() for sa in self.ph1s.values()) if t is not None]
        times += [t for t in (q.next_timer() for q in self.quicks.values()) if t is not None]
        times += [w.deadline for w in self.waiting]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now``: resends, deadlines, lifetimes, DPD."""
        self.now = now
        for ph1 in list(self.ph1s.values()):
            t = ph1.next_timer()
            if t is not None and now >= t:
                ph1.handle_timer(now)
        for q in list(self.quicks.values()):
            t = q.next_timer()
            if t is not None and now >= t:
                q.handle_timer(now)
        for w in list(self.waiting):
            if now >= w.deadline:
                self.waiting.remove(w)
                offer = w.request.offers[-1] if w.request.offers else None
                proto = PROTOCOL_NAMES.get(offer.protocol, "?") if offer else "?"
                self.log(
                    Level.ERROR,
                    "phase2 negotiation failed due to time up waiting for phase1. "
                    f"{proto} {fmt_endpoint(w.peer)}->{fmt_endpoint(w.local)}",
                    w.peer[0],
                )
                self.log(
                    Level.INFO,
                    f"{w.peer[0]} give up to get IPsec-SA due to time up to wait.",
                    w.peer[0],
                )
                self._acquire_error(w.request)

    # ================================================================== config helpers
    def psk_source(self) -> Any:
        """Where pre-shared keys come from: the injected source, else ``path pre_shared_key``."""
        if self.psk is not None:
            return self.psk
        if self.config.paths.pre_shared_key:
            return PskFile(self.config.paths.pre_shared_key)
        return None

    def _cert_path(self, name: str) -> str:
        return self.config.paths.resolve("certificate", name)

    def my_certificate(self, remote: Remote) -> tuple[Any, Any]:
        """Our certificate and private key (``certificate_type x509``), loaded once."""
        ct = remote.certificate_type
        if ct is None or ct.kind != "x509" or ct.certificate is None:
            raise LocalError(
                "no certificate configured: rsasig needs "
                'certificate_type x509 "cert" "key" in the remote block'
            )
        key = (ct.certificate, ct.private_key)
        if key not in self._certs:
            try:
                cert = load_certificate(self._cert_path(ct.certificate))
                priv = load_private_key(self._cert_path(ct.private_key))
            except Exception as exc:  # PkiError and OSError: both mean the same to a person
                raise LocalError(f"failed to load our certificate or key: {exc}") from None
            self._certs[key] = (cert, priv)
        return self._certs[key]  # type: ignore[no-any-return]

    def my_identity(self, remote: Remote, local: Endpoint) -> Any:
        """Our phase-1 identity from ``my_identifier`` (address, fqdn, asn1dn ...)."""
        cert = None
        if remote.certificate_type is not None and remote.certificate_type.kind == "x509":
            cert = self.my_certificate(remote)[0]
        try:
            return build_my_identity(
                remote.my_identifier,
                certificate=cert,
                local_address=str(local[0]),
                base_dir=self.config.paths.certificate,
            )
        except Exception as exc:
            raise LocalError(f"failed to set my identifier: {exc}") from None

    def trust_store(self, remote: Remote) -> TrustStore:
        """The CAs we trust for this remote: ``ca_type`` first, then the hashed directory."""
        ca_files = [self._cert_path(remote.ca_type)] if remote.ca_type else []
        try:
            return TrustStore.from_paths(self.config.paths.certificate, ca_files)
        except (PkiError, OSError) as exc:
            raise LocalError(f"failed to load the CA certificate of ca_type: {exc}") from None

    def peers_certfile(self, remote: Remote) -> Any:
        """The pinned ``peers_certfile x509`` certificate of the peer."""
        pc = remote.peers_certfile
        assert pc is not None
        if pc.kind != "x509" or pc.path is None:
            raise LocalError(f"peers_certfile {pc.kind} is not supported")
        try:
            return load_certificate(self._cert_path(pc.path))
        except (PkiError, OSError) as exc:
            raise LocalError(f"failed to load peers_certfile: {exc}") from None

    def cr_authority(self, remote: Remote) -> bytes:
        """CR data: issuer of peers_certfile, else subject of ca_type, else empty (8.12)."""
        try:
            if remote.peers_certfile is not None and remote.peers_certfile.path:
                return certificate_issuer(self.peers_certfile(remote)).der
            if remote.ca_type:
                return certificate_subject(load_certificate(self._cert_path(remote.ca_type))).der
        except Exception:
            return b""
        return b""

    def wall_clock_datetime(self) -> datetime:
        """``now`` as a date, for certificate validity."""
        if self.wall_clock is not None:
            return self.wall_clock(self.now)
        return datetime.fromtimestamp(self.now, UTC)

    # ================================================================== datagrams
    def receive_datagram(self, data: bytes, local: Endpoint, remote: Endpoint, now: float) -> None:
        """One ISAKMP datagram (without NAT-T marker) from ``remote`` to ``local``."""
        self.now = now
        local, remote = ev.endpoint(*local), ev.endpoint(*remote)
        try:
            msg = decode_message(data)
        except WireError as exc:
            self.log(Level.ERROR, f"invalid packet from {fmt_endpoint(remote)}: {exc}", remote[0])
            return
        ph1 = self.ph1s.get(bytes(msg.initiator_cookie))
        if (
            ph1 is not None
            and any(ph1.rcky)
            and any(msg.responder_cookie)
            and bytes(msg.responder_cookie) != ph1.rcky
        ):
            self.log(Level.DEBUG, "responder cookie mismatch: dropped", remote[0])
            return
        try:
            if msg.exchange_type in (MAIN, AGGRESSIVE):
                if ph1 is None:
                    if any(msg.responder_cookie):
                        self.log(Level.DEBUG, "unknown ISAKMP-SA: dropped", remote[0])
                        return
                    ph1 = self._new_responder(msg, local, remote, now)
                    if ph1 is None:
                        return
                if msg.exchange_type != ph1.exchange:
                    raise UnexpectedMessage("exchange type changed in the middle of phase 1")
                ph1.receive(msg, data, now)
            elif msg.exchange_type == ExchangeType.QUICK:
                if ph1 is None or not ph1.established:
                    self.log(
                        Level.DEBUG,
                        "quick mode for an unknown or unestablished ISAKMP-SA: dropped",
                        remote[0],
                    )
                    return
                self._receive_quick(ph1, msg, data, now)
            elif msg.exchange_type == ExchangeType.INFORMATIONAL:
                self._receive_info(ph1, msg, remote, now)
            else:
                self.log(
                    Level.WARNING,
                    "unsupported exchange "
                    f"{display_name(ExchangeType, msg.exchange_type)} from "
                    f"{fmt_endpoint(remote)}: dropped",
                    remote[0],
                )
        except UnexpectedMessage as exc:
            self.log(Level.DEBUG, f"{exc}: dropped", remote[0])
        except EngineError as exc:
            self._fail(exc, ph1, msg, now)

    def _fail(self, exc: EngineError, ph1: Phase1 | None, msg: Message, now: float) -> None:
        peer = ph1.peer[0] if ph1 is not None else None
        self.log(Level.ERROR, exc.log_text, peer)
        for line in exc.details:
            if line:
                self.log(Level.ERROR, line, peer)
        if ph1 is None:
            return
        if msg.exchange_type in (MAIN, AGGRESSIVE):
            # The failed message is not committed (a forged or corrupted datagram must not move
            # the CBC chain), but the notify's IV is made from its last block, as racoon's
            # "ive" is, so that the peer that really sent it can read the notify.
            base_iv = ph1.pending_iv()
            ph1.abandon_message()
            if exc.notify is not None:
                self.send_notify(ph1, exc.notify, now, data=exc.data, base_iv=base_iv)
            if isinstance(exc, NoProposalChosen) and ph1.state is P1State.START:
                self.log(Level.ERROR, "failed to get valid proposal.", peer)
            if ph1.state is P1State.START or isinstance(exc, LocalError):
                self.phase1_failed(ph1, f"phase1 negotiation failed. {ph1.index()}", now)
            # Otherwise the SA stays where it was, as in racoon: the negotiation ends by a
            # valid retransmission or by its timer, never because of one bad datagram.
        elif msg.exchange_type == ExchangeType.QUICK:
            if exc.notify is not None:
                self.send_notify(ph1, exc.notify, now, data=exc.data)
            q = self.quicks.get((ph1.icky, msg.message_id))
            if q is None or q.state is QState.ESTABLISHED:
                return
            q.abandon_message()
            if not q.initiator and q.state is QState.GETSPI_SENT and not q.spis_wanted:
                # the responder's first message failed: there is nothing to keep
                self.phase2_failed(q, f"phase2 negotiation failed. {q.index()}", now)
            elif isinstance(exc, LocalError):
                self.phase2_failed(q, f"phase2 negotiation failed. {q.index()}", now)

    def _new_responder(
        self, msg: Message, local: Endpoint, remote: Endpoint, now: float
    ) -> Phase1 | None:
        rmconf = self.config.remote_for(remote[0], remote[1])
        if rmconf is None:
            self.log(
                Level.ERROR,
                f"couldn't find configuration for {fmt_endpoint(remote)}: "
                "add a 'remote' block for this address (or 'remote anonymous')",
                remote[0],
            )
            return None
        if msg.exchange_type not in [int(m) for m in rmconf.exchange_modes]:
            self.log(
                Level.ERROR,
                f"not acceptable {display_name(ExchangeType, msg.exchange_type)} mode: "
                f"remote {rmconf.describe()} allows exchange_mode "
                + ", ".join(str(m) for m in rmconf.exchange_modes),
                remote[0],
            )
            return None
        ph1 = Phase1(
            self,
            rmconf,
            local,
            remote,
            Role.RESPONDER,
            msg.exchange_type,
            now,
            initiator_cookie=bytes(msg.initiator_cookie),
        )
        self.ph1s[ph1.icky] = ph1
        self.log(Level.INFO, f"respond new phase 1 negotiation: {ph1.describe()}", remote[0])
        self.log(
            Level.INFO,
            "begin Identity Protection mode." if ph1.exchange == MAIN else "begin Aggressive mode.",
            remote[0],
        )
        return ph1

    # ------------------------------------------------------------------ informational
    def send_notify(
        self,
        ph1: Phase1,
        notify: int,
        now: float,
        *,
        data: bytes = b"",
        base_iv: bytes | None = None,
    ) -> None:
        """Send one notify about ``ph1`` (HASH-protected once keys exist)."""
        n = Notification(notify, ProtocolID.ISAKMP, ph1.cookies, data)
        self.send_info(ph1, [n], base_iv=base_iv)
        self.log(Level.DEBUG, f"sending notify {display_name(NotifyType, notify)}", ph1.peer[0])

    def send_info(
        self, ph1: Phase1, payloads: list[Payload], *, base_iv: bytes | None = None
    ) -> None:
        """An informational exchange: HASH(1)-protected once the ISAKMP SA has keys (8.6)."""
        if ph1.keys is None or ph1.cbc is None or ph1.prf is None:
            msg = Message(ph1.icky, ph1.rcky, ExchangeType.INFORMATIONAL, 0, tuple(payloads))
            self.send(encode_message(msg), ph1.local, ph1.peer)
            return
        mid = random_message_id()
        _, rest = encode_payloads(payloads)
        h = informational_hash(ph1.prf, ph1.keys.skeyid_a, mid, rest)
        np, body = encode_payloads([Hash(h), *payloads])
        if base_iv is None:
            base_iv = ph1.cbc.iv
        iv = phase2_iv(ph1.prf, base_iv, mid, ph1.cbc.cipher.block_size)
        ciphertext = CbcState(ph1.cbc.cipher, iv).encrypt(body, self.padding)
        msg = Message(
            ph1.icky,
            ph1.rcky,
            ExchangeType.INFORMATIONAL,
            mid,
            (Encrypted(np, ciphertext),),
            Flag.ENCRYPTION,
        )
        self.send(encode_message(msg), ph1.local, ph1.peer)

    def _receive_info(self, ph1: Phase1 | None, msg: Message, remote: Endpoint, now: float) -> None:
        if msg.encrypted is not None:
            if ph1 is None or ph1.keys is None or ph1.cbc is None or ph1.prf is None:
                self.log(Level.DEBUG, "encrypted informational for an unknown ISAKMP-SA", remote[0])
                return
            cbc: CbcState = ph1.cbc.for_message_id(ph1.prf, msg.message_id)
            try:
                dec = cbc.decrypt(bytes(msg.encrypted.ciphertext), self.padding)
                payloads = list(decode_payloads(msg.encrypted.next_payload, dec.plaintext).payloads)
            except (CryptoError, WireError) as exc:
                self.log(
                    Level.ERROR, f"failed to decrypt the informational message: {exc}", remote[0]
                )
                if not ph1.established and ph1.psk_entry is not None:
                    self.log(
                        Level.ERROR,
                        "the peer's notify cannot be read with our keys: most likely the "
                        f"pre-shared keys differ (we used the psk.txt entry '{ph1.psk_entry}')",
                        remote[0],
                    )
                return
            if not payloads or not isinstance(payloads[0], Hash):
                self.log(
                    Level.ERROR,
                    "ignore information because the message has no hash payload.",
                    remote[0],
                )
                return
            _, rest = encode_payloads(payloads[1:])
            expected = informational_hash(ph1.prf, ph1.keys.skeyid_a, msg.message_id, rest)
            if bytes(payloads[0].data) != expected:
                self.log(Level.ERROR, "ignore information because the hash mismatched.", remote[0])
                return
            payloads = payloads[1:]
            protected = True
        else:
            payloads = [p for p in msg.payloads if isinstance(p, Payload)]
            protected = False
        for p in payloads:
            if isinstance(p, Notification):
                self._receive_notify(ph1, p, protected, remote, now)
            elif isinstance(p, Delete) and protected and ph1 is not None:
                self._receive_delete(ph1, p, now)
            elif isinstance(p, Delete):
                self.log(Level.WARNING, "unprotected Delete ignored", remote[0])

    def _receive_notify(
        self, ph1: Phase1 | None, n: Notification, protected: bool, remote: Endpoint, now: float
    ) -> None:
        name = display_name(NotifyType, n.notify_type)
        if n.notify_type == NotifyType.INITIAL_CONTACT and protected and ph1 is not None:
            self.log(Level.INFO, "received INITIAL-CONTACT", remote[0])
            self._initial_contact(ph1, now)
            return
        if n.notify_type in (NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK):
            if not protected or ph1 is None or not ph1.established or len(n.data) != 4:
                self.log(Level.DEBUG, f"{name} ignored (unprotected or malformed)", remote[0])
                return
            seq = int.from_bytes(n.data, "big")
            if n.notify_type == NotifyType.R_U_THERE:
                ack = Notification(NotifyType.R_U_THERE_ACK, ProtocolID.ISAKMP, ph1.cookies,
                                   n.data)  # fmt: skip
                self.send_info(ph1, [ack])
                self.log(Level.DEBUG, f"DPD R-U-THERE received (seq={seq}), ACK sent", remote[0])
            else:
                ph1.dpd_ack(seq, now)
            return
        if is_error_notify(n.notify_type):
            # Logged, never acted upon: an unprotected notify is trivially forged, and a
            # protected one may answer a corrupted copy of a message whose real version
            # succeeded.  The negotiation ends by success or by its timer (as in racoon).
            self.log(
                Level.ERROR, f"notification {name} received from {fmt_endpoint(remote)}", remote[0]
            )
        else:
            self.log(
                Level.INFO, f"notification {name} received from {fmt_endpoint(remote)}", remote[0]
            )

    def _receive_delete(self, ph1: Phase1, d: Delete, now: float) -> None:
        if d.protocol_id == ProtocolID.ISAKMP:
            for spi in d.spis:
                target = self.ph1s.get(bytes(spi[:8]))
                if target is not None and target.peer[0] == ph1.peer[0]:
                    self.log(Level.INFO, f"purging ISAKMP-SA spi={target.index()}.", ph1.peer[0])
                    self._remove_phase1(target, announce=False)
            return
        # A quick mode whose UPDATE/ADD are still on their way to the kernel counts too: a peer
        # that cannot install its side (strongSwan on a kernel without ESP) sends its Delete
        # right after QM3, and that datagram can overtake the kernel's replies.  Our DELETEs
        # queue behind the UPDATE/ADD on the same kernel socket, so they still remove the SAs.
        installing = [q for q in self.quicks.values() if q.installed and q not in self.established]
        for spi in d.spis:
            value = int.from_bytes(spi, "big")
            for q in [*self.established, *installing]:
                for rec in list(q.installed):
                    # racoon expects the peer's inbound SPI (our outbound one); strongSwan
                    # has been seen to send the other one of the pair: accept both.
                    if (
                        rec.protocol == d.protocol_id
                        and value in (rec.outbound_spi, rec.inbound_spi)
                        and q.peer[0] == ph1.peer[0]
                    ):
                        self.log(
                            Level.INFO,
                            f"purged IPsec-SA proto_id="
                            f"{PROTOCOL_NAMES.get(rec.protocol)} spi={value}.",
                            q.peer[0],
                        )
                        self._delete_kernel_sas(q, rec)
                        q.installed.remove(rec)
                if not q.installed:
                    self._forget_pending(q)  # its install replies no longer concern anyone
                    self._drop_phase2(q)

    def _initial_contact(self, ph1: Phase1, now: float) -> None:
        """The peer restarted (8.10): purge every SA with it except this ISAKMP SA's."""
        self._purge_peer(ph1.peer[0], keep=ph1)

    def _purge_peer(self, peer: Any, *, keep: Phase1 | None) -> None:
        """Dump the SAD and delete each mature SA to or from ``peer`` -- racoon's
        purge_remote(), so that SAs this engine never knew (an earlier run's) go too."""
        self._dumps.append((peer, keep))
        self.kernel_request(
            pfkey.Message(MsgType.DUMP, SaType.UNSPEC, seq=self.next_seq(), pid=self.pid)
        )

    def _purge_entry(self, msg: pfkey.Message, peer: Any, keep: Phase1 | None) -> None:
        sa, src, dst = msg.sa, msg.src, msg.dst
        if sa is None or src is None or dst is None or peer not in (src.addr, dst.addr):
            return
        if sa.state not in (SaState.MATURE, SaState.DYING):
            return  # larval SAs belong to negotiations in progress
        kept: set[int] = set()
        for q in self.quicks.values():
            if q.ph1 is keep:
                kept |= {int.from_bytes(o.spi, "big") for o in q.request.offers if o.spi}
                kept |= {int.from_bytes(c.peer_spi, "big") for c in q.choices}
        if sa.spi in kept:
            return
        name = {SaType.ESP: "ESP", SaType.AH: "AH", SaType.IPCOMP: "IPCOMP"}.get(
            SaType(msg.satype) if msg.satype in SaType._value2member_map_ else SaType.UNSPEC,
            str(msg.satype),
        )
        delete = pfkey.Message(MsgType.DELETE, msg.satype, seq=self.next_seq(), pid=self.pid)
        delete.add(pfkey.SA(spi=sa.spi))
        delete.add(pfkey.Address(ExtType.ADDRESS_SRC, src.addr))
        delete.add(pfkey.Address(ExtType.ADDRESS_DST, dst.addr))
        self.kernel_request(delete)
        self.log(Level.INFO, f"purged IPsec-SA proto_id={name} spi={sa.spi}.", peer)
        for q in list(self.established):
            for rec in list(q.installed):
                if SATYPE_OF[rec.protocol] == msg.satype and sa.spi in (
                    rec.inbound_spi,
                    rec.outbound_spi,
                ):
                    q.installed.remove(rec)
            if not q.installed:
                self._drop_phase2(q)

    def _delete_kernel_sas(self, q: Quick, rec: Any) -> None:
        satype = SATYPE_OF[rec.protocol]
        for src, dst, spi in (
            (q.peer[0], q.local[0], rec.inbound_spi),
            (q.local[0], q.peer[0], rec.outbound_spi),
        ):
            msg = pfkey.Message(MsgType.DELETE, satype, seq=self.next_seq(), pid=self.pid)
            msg.add(pfkey.SA(spi=spi))
            msg.add(pfkey.Address(ExtType.ADDRESS_SRC, src))
            msg.add(pfkey.Address(ExtType.ADDRESS_DST, dst))
            self.kernel_request(msg)

    # ------------------------------------------------------------------ quick mode
    def _receive_quick(self, ph1: Phase1, msg: Message, data: bytes, now: float) -> None:
        key = (ph1.icky, msg.message_id)
        q = self.quicks.get(key)
        if q is not None:
            q.receive(msg, data, now)
            return
        placeholder = Request(
            Selector(ipaddress.ip_network(ph1.local[0])),
            Selector(ipaddress.ip_network(ph1.peer[0])),
            [],
        )
        q = Quick(self, ph1, False, msg.message_id, placeholder, now)
        self.quicks[key] = q
        q.commit = bool(msg.flags & Flag.COMMIT)  # copied into QM2 (racoon-facts 8.8)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        q.replies[digest] = None
        q._answering = digest  # QM2 goes out once the kernel gave us SPIs
        try:
            dec, payloads = q.decrypt(msg)
            _, rest = encode_payloads(payloads[1:])
            assert ph1.prf is not None and ph1.keys is not None
            q._check_hash(
                "HASH(1)",
                payloads[0],
                quick_mode_hash1(ph1.prf, ph1.keys.skeyid_a, msg.message_id, rest),
            )
            self._accept_qm1(q, payloads, now)
            q.cbc.commit(dec)
        except EngineError:
            # The message decrypted and its HASH(1) held (or not): either way racoon derives
            # the notify's IV from the chain as it stands; _fail() ends this exchange.
            raise

    def _accept_qm1(self, q: Quick, payloads: list[Payload], now: float) -> None:
        ph1 = q.ph1
        sa = next((p for p in payloads if isinstance(p, SA)), None)
        if sa is None or not any(isinstance(p, Nonce) for p in payloads):
            raise PayloadMalformed("QM1 lacks SA or Nonce")
        ids = [p for p in payloads if isinstance(p, Identification)]
        if len(ids) not in (0, 2):
            raise InvalidIdInformation(f"QM1 carries {len(ids)} ID payloads (0 or 2 allowed)")
        if ids:
            idci, idcr = ids
            remote_sel, local_sel = Selector.from_id(idci), Selector.from_id(idcr)
        else:
            idci = Selector(ipaddress.ip_network(ph1.peer[0])).id_payload()
            idcr = Selector(ipaddress.ip_network(ph1.local[0])).id_payload()
            remote_sel, local_sel = Selector.from_id(idci), Selector.from_id(idcr)
        candidates = self.config.sainfo_candidates(idcr, idci, ph1.peer_id, ph1.remote.ph1id)
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
        offers = self._responder_offers(q, sa, local_sel, remote_sel, sainfo)
        choices = select_phase2(ph1.remote.proposal_check, sa, offers)
        q.request = Request(local_sel, remote_sel, offers)
        q.responder_qm1(payloads, (idci, idcr) if ids else None, choices, sainfo, now)

    def _find_policy(
        self, direction: int, src: Selector, dst: Selector, *, wild: bool = False
    ) -> SpdEntry | None:
        """The SP with exactly these selectors; with ``wild``, else the first whose selectors
        contain them (racoon's getsp_r() falls back to cmpspidxwild() the same way)."""
        for sp in self.spd.values():
            if sp.direction == direction and sp.src == src and sp.dst == dst:
                return sp
        if not wild:
            return None
        for sp in self.spd.values():
            if sp.direction == direction and _contains(sp.src, src) and _contains(sp.dst, dst):
                return sp
        return None

    def _responder_offers(
        self, q: Quick, sa: SA, local: Selector, remote: Selector, sainfo: Any
    ) -> list[ProtocolOffer]:
        sp_in = self._find_policy(Direction.INBOUND, remote, local, wild=True)
        sp_out = self._find_policy(Direction.OUTBOUND, local, remote, wild=True)
        if sp_in is None:
            if q.ph1.remote.generate_policy is GeneratePolicy.OFF:
                raise NoProposalChosen(
                    f"no policy found: {remote} -> {local} (in)",
                    details=(
                        "add an SPD entry for this traffic (setkey spdadd ... -P in "
                        "ipsec ...) or set generate_policy on in the remote block",
                    ),
                )
            return self._generated_offers(q, sa, local, remote, sainfo)
        offers = policy_offers(sp_in, sp_out, inbound_first=True)
        for offer in offers:
            offer.transforms = sainfo_transforms(
                sainfo, offer.protocol, offer.mode, sainfo.pfs_group
            )
        return offers

    def _generated_offers(
        self, q: Quick, sa: SA, local: Selector, remote: Selector, sainfo: Any
    ) -> list[ProtocolOffer]:
        """generate_policy (racoon-facts 5.2): the responder has no SP, so it takes the
        protocols and modes of the peer's first proposal and installs X_SPDUPDATE in, fwd
        (tunnel mode, as Linux needs) and out, level require -- or unique with a reqid counted
        from 1 under ``generate_policy unique`` -- living as long as the SA."""
        group = sa.proposal_groups()[0]
        unique = q.ph1.remote.generate_policy is GeneratePolicy.UNIQUE
        reqid = 0
        if unique:
            self._next_generated_reqid = self._next_generated_reqid % MANUAL_REQID_MAX + 1
            reqid = self._next_generated_reqid
        offers = []
        for p in group:
            if p.protocol_id not in IPPROTO_OF_PROTOCOL or not p.transforms:
                continue
            mode = parse_phase2_transform(p.protocol_id, p.transforms[0]).mode
            offer = ProtocolOffer(p.protocol_id, mode, reqid, reqid)
            offer.transforms = sainfo_transforms(sainfo, p.protocol_id, mode, sainfo.pfs_group)
            offers.append(offer)
        self.log(Level.INFO, f"generate policy: {remote} <-> {local}", q.peer[0])
        tunnel = any(o.mode == EncapsulationMode.TUNNEL for o in offers)
        level = SpLevel.UNIQUE if unique else SpLevel.REQUIRE
        directions = [(Direction.INBOUND, remote, local)]
        if tunnel:
            directions.append((Direction.FWD, remote, local))
        directions.append((Direction.OUTBOUND, local, remote))
        for direction, src, dst in directions:
            outbound = direction == Direction.OUTBOUND
            ends = (q.local[0], q.peer[0]) if outbound else (q.peer[0], q.local[0])
            reqs = [
                pfkey.IpsecRequest(
                    IPPROTO_OF_PROTOCOL[o.protocol],
                    Mode.TUNNEL if tunnel else Mode.TRANSPORT,
                    level,
                    reqid,
                    *(ends if tunnel else (None, None)),
                )
                for o in reversed(offers)
            ]
            msg = pfkey.Message(MsgType.X_SPDUPDATE, 0, seq=self.next_seq(), pid=self.pid)
            msg.add(pfkey.Policy(2, direction, 0, 0, reqs))
            msg.add(_selector_address(ExtType.ADDRESS_SRC, src))
            msg.add(_selector_address(ExtType.ADDRESS_DST, dst))
            msg.add(pfkey.Lifetime(ExtType.LIFETIME_HARD, addtime=sainfo.lifetime))
            self.kernel_request(msg)
            q.generated_policies.append((direction, src, dst))
        return offers

    def _remove_generated_policies(self, q: Quick) -> None:
        """X_SPDDELETE of what generate_policy installed for ``q`` (racoon-facts 5.2)."""
        for direction, src, dst in q.generated_policies:
            msg = pfkey.Message(MsgType.X_SPDDELETE, 0, seq=self.next_seq(), pid=self.pid)
            msg.add(pfkey.Policy(2, direction, 0, 0, []))
            msg.add(_selector_address(ExtType.ADDRESS_SRC, src))
            msg.add(_selector_address(ExtType.ADDRESS_DST, dst))
            self.kernel_request(msg)
        q.generated_policies.clear()

    # ================================================================== kernel
    def receive_kernel(self, msg: pfkey.Message, now: float) -> None:
        """One PF_KEY message from the kernel (reply, broadcast, ACQUIRE, EXPIRE)."""
        self.now = now
        mtype = msg.type
        if mtype in (MsgType.GETSPI, MsgType.UPDATE, MsgType.ADD):
            if msg.pid != self.pid:
                return
            owner = self.pending.pop((msg.seq, mtype, msg.satype), None)
            if mtype != MsgType.GETSPI and owner is not None:
                # UPDATE and ADD replies share a key per protocol: keep it for the twin.
                if any(r.pending for r in owner.installed):
                    self.pending[(msg.seq, mtype, msg.satype)] = owner
            if owner is not None:
                owner.kernel_reply(msg, now)
                if owner.state in (QState.ESTABLISHED, QState.FAILED):
                    self._forget_pending(owner)
            return
        if mtype in (MsgType.X_SPDDUMP, MsgType.X_SPDADD, MsgType.X_SPDUPDATE):
            if msg.errno == 0:
                self._cache_policy(msg)
            if mtype == MsgType.X_SPDDUMP and msg.pid == self.pid and (msg.errno or msg.seq == 0):
                self._spd_dump_done(now)  # the last entry, or ENOENT for an empty SPD
            return
        if mtype in (MsgType.X_SPDDELETE, MsgType.X_SPDDELETE2, MsgType.X_SPDEXPIRE):
            pol = msg.policy
            if pol is not None:
                self.spd.pop(pol.id, None)
            return
        if mtype == MsgType.X_SPDFLUSH:
            self.spd.clear()
            return
        if mtype == MsgType.ACQUIRE:
            if msg.errno == 0 and msg.pid == 0:
                self._acquire(msg, now)
            return
        if mtype == MsgType.EXPIRE:
            self._expire(msg, now)
            return
        if mtype == MsgType.DELETE and msg.pid != self.pid and msg.errno == 0:
            self._kernel_delete(msg, now)
            return
        if mtype == MsgType.DUMP and msg.pid == self.pid:
            if not self._dumps:
                return
            peer, keep = self._dumps[0]
            if msg.errno == 0:
                self._purge_entry(msg, peer, keep)
            if msg.errno or msg.seq == 0:  # ENOENT (empty SAD) or the last entry
                self._dumps.pop(0)
            return
        if mtype == MsgType.FLUSH and msg.pid != self.pid:
            self.established.clear()

    def _forget_pending(self, q: Quick) -> None:
        for key in [k for k, v in self.pending.items() if v is q]:
            del self.pending[key]

    def _cache_policy(self, msg: pfkey.Message) -> None:
        pol, src, dst = msg.policy, msg.src, msg.dst
        if pol is None or src is None or dst is None:
            return
        self.spd[pol.id] = SpdEntry(
            pol.id,
            pol.dir,
            Selector(
                ipaddress.ip_network(f"{src.addr}/{src.prefixlen}", strict=False),
                src.proto,
                src.port,
            ),
            Selector(
                ipaddress.ip_network(f"{dst.addr}/{dst.prefixlen}", strict=False),
                dst.proto,
                dst.port,
            ),
            list(pol.requests),
            pol.policy_type,
        )

    def _acquire(self, msg: pfkey.Message, now: float) -> None:
        pol = msg.policy
        if pol is None or msg.src is None or msg.dst is None:
            self.log(Level.ERROR, "ACQUIRE without X_POLICY or addresses: ignored")
            return
        sp = self.spd.get(pol.id)
        if sp is None and self._spd_dumping:
            self._early_acquires.append(msg)
            return
        if sp is None:
            self.log(Level.ERROR, f"no policy found: id:{pol.id}")
            return
        if sp.policy_type != 2:
            return
        tunnel = _tunnel_request(sp)
        peer_addr = tunnel.dst if tunnel is not None else msg.dst.addr
        why = not_a_peer(peer_addr)
        if why is not None:
            self._ignore_acquire(peer_addr, why, pol.id)
            return
        if any(
            q.request.policy_id == pol.id and q.state not in (QState.ESTABLISHED, QState.FAILED)
            for q in self.quicks.values()
        ) or any(w.request.policy_id == pol.id for w in self.waiting):
            self.log(Level.DEBUG, f"ignore the acquire because ph2 found for policy {pol.id}")
            return
        self._phase2_for_policy(sp, msg.src.addr, msg.dst.addr, msg.seq, now)

    def _ignore_acquire(self, peer_addr: Any, why: str, policy_id: int) -> None:
        """Say once per destination, at INFO, why its ACQUIREs lead to nothing; then DEBUG.

        Nothing goes back to the kernel either, as racoon ignores an ACQUIRE for a multicast
        destination: there is no negotiation whose failure could be reported.
        """
        if peer_addr in self.not_peers:
            self.log(Level.DEBUG, f"ignore the acquire for {peer_addr}: {why}", peer_addr)
            return
        if len(self.not_peers) >= _NOT_A_PEER_MEMORY:
            self.not_peers.clear()
        self.not_peers.add(peer_addr)
        self.log(
            Level.INFO,
            f"ACQUIRE for {peer_addr} ignored: {why} cannot be an IKE peer, so nothing is "
            f"negotiated for it (policy id:{policy_id}; a '-P out none' policy for it stops "
            "these ACQUIREs)",
            peer_addr,
        )

    def establish_ipsec(self, src: str, dst: str, now: float, ul_proto: int = 255) -> bool:
        """``establish-sa esp|ah SRC DST``: negotiate the SAs the outbound SP covering that
        traffic asks for, as an ACQUIRE would (without a kernel seq)."""
        self.now = now
        local_sel = Selector(ipaddress.ip_network(src, strict=False), ul_proto)
        remote_sel = Selector(ipaddress.ip_network(dst, strict=False), ul_proto)
        sp = self._find_policy(Direction.OUTBOUND, local_sel, remote_sel, wild=True)
        if sp is None or sp.policy_type != 2:
            self.log(Level.ERROR, f"no policy found: {local_sel} -> {remote_sel} (out)")
            return False
        self._phase2_for_policy(
            sp, local_sel.network.network_address, remote_sel.network.network_address, 0, now
        )
        return True

    def _phase2_for_policy(
        self, sp: SpdEntry, src_addr: Any, dst_addr: Any, seq: int, now: float
    ) -> None:
        """A phase 2 for outbound SP ``sp``, triggered by traffic ``src_addr -> dst_addr``."""
        pol_id = sp.policy_id
        tunnel = _tunnel_request(sp)
        me = tunnel.src if tunnel is not None else src_addr
        peer_addr = tunnel.dst if tunnel is not None else dst_addr
        assert me is not None and peer_addr is not None
        sp_in = self._find_policy(Direction.INBOUND, sp.dst, sp.src)
        offers = policy_offers(sp, sp_in, inbound_first=False)
        local_sel, remote_sel = sp.src, sp.dst
        if tunnel is None:
            # Transport mode protects exactly the two hosts, whatever the SP's prefixes say
            # (the seed's "spdadd ::/0 ::/0 any"): the IDs are the SA endpoints, so that a
            # per-peer "sainfo address A any address B any" applies, as the memo shows.
            local_sel = Selector(ipaddress.ip_network(src_addr), sp.src.proto, sp.src.port)
            remote_sel = Selector(ipaddress.ip_network(dst_addr), sp.dst.proto, sp.dst.port)
        request = Request(local_sel, remote_sel, offers, pol_id, seq, tunnel is not None)
        remote = self.config.remote_for(peer_addr)
        if remote is None:
            self.log(
                Level.ERROR,
                f"no configuration found for {peer_addr}: add a 'remote {peer_addr}' block",
                peer_addr,
            )
            self._acquire_error(request)
            return
        local = (me, self.local_port(me))
        peer = (peer_addr, remote.port or self.config.isakmp_port)
        self._request_phase2(remote, local, peer, request, now)

    def _request_phase2(
        self, remote: Remote, local: Endpoint, peer: Endpoint, request: Request, now: float
    ) -> None:
        ph1 = self._phase1_for(peer)
        if ph1 is not None and ph1.established:
            self._start_quick(ph1, request, now)
            return
        if ph1 is None and remote.passive:
            self.log(
                Level.ERROR,
                f"phase1 negotiation with {peer[0]} not initiated: remote "
                f"{remote.describe()} is passive (remove 'passive on' to let us initiate)",
                peer[0],
            )
            self._acquire_error(request)
            return
        self.waiting.append(Waiting(remote, local, peer, request, now + self.config.timer.phase1))
        if ph1 is None:
            self.log(
                Level.INFO,
                f"IPsec-SA request for {peer[0]} queued due to no phase1 found.",
                peer[0],
            )
            if self.initiate(remote, local, peer, now) is None:
                self.waiting = [w for w in self.waiting if w.request is not request]
                self._acquire_error(request)

    def initiate(
        self, remote: Remote, local: Endpoint, peer: Endpoint, now: float
    ) -> Phase1 | None:
        """Start a phase 1 with ``peer`` (ACQUIRE, or racoonctl establish-sa isakmp)."""
        self.now = now
        exchange = int(remote.initiator_exchange)
        if exchange not in (MAIN, AGGRESSIVE):
            self.log(
                Level.ERROR,
                f"{display_name(ExchangeType, exchange)} mode is not supported: list main or "
                f"aggressive first in exchange_mode of remote {remote.describe()}",
                peer[0],
            )
            return None
        ph1 = Phase1(self, remote, local, peer, Role.INITIATOR, exchange, now)
        self.ph1s[ph1.icky] = ph1
        self.log(Level.INFO, f"initiate new phase 1 negotiation: {ph1.describe()}", peer[0])
        try:
            ph1.start(now)
        except EngineError as exc:
            self.log(Level.ERROR, exc.log_text, peer[0])
            for line in exc.details:
                self.log(Level.ERROR, line, peer[0])
            self.phase1_failed(ph1, f"phase1 negotiation failed. {ph1.index()}", now)
            return None
        return ph1

    def _phase1_for(self, peer: Endpoint) -> Phase1 | None:
        """The ISAKMP SA to use with ``peer``: an established one that is not dying, else a
        dying one, else one still negotiating."""
        ranked = sorted(
            (
                ph1
                for ph1 in self.ph1s.values()
                if ph1.peer[0] == peer[0] and ph1.state not in (P1State.FAILED, P1State.EXPIRED)
            ),
            key=lambda ph1: (not ph1.established, ph1.dying, -(ph1.established_at or 0.0)),
        )
        return ranked[0] if ranked else None

    def _start_quick(self, ph1: Phase1, request: Request, now: float) -> None:
        mid = random_message_id()
        q = Quick(self, ph1, True, mid, request, now)
        sainfo = self.config.sainfo_for(
            request.local.id_payload(), request.remote.id_payload(), ph1.peer_id, ph1.remote.ph1id
        )
        if sainfo is None:
            cands = self.config.sainfo_candidates(
                request.local.id_payload(),
                request.remote.id_payload(),
                ph1.peer_id,
                ph1.remote.ph1id,
            )
            self.log(Level.ERROR, "failed to get sainfo.", ph1.peer[0])
            for c in cands:
                self.log(Level.ERROR, str(c), ph1.peer[0])
            if not cands:
                self.log(
                    Level.ERROR,
                    f"no sainfo for {request.local} {request.remote}: add a sainfo block",
                    ph1.peer[0],
                )
            self._acquire_error(request)
            return
        self.quicks[(ph1.icky, mid)] = q
        q.start(sainfo, self._send_ids(ph1, request))

    def _send_ids(self, ph1: Phase1, request: Request) -> bool:
        """IDs are omitted when nothing they say is new (racoon-facts 8.11)."""
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

    def _acquire_error(self, request: Request) -> None:
        """Tell the kernel the negotiation failed: ACQUIRE with errno EINVAL (5.2)."""
        if not request.acquire_seq or not request.offers:
            return
        satype = SATYPE_OF[request.offers[-1].protocol]
        self.kernel_request(
            pfkey.Message(MsgType.ACQUIRE, satype, errno=22, seq=request.acquire_seq, pid=self.pid)
        )

    def _expire(self, msg: pfkey.Message, now: float) -> None:
        sa, src, dst = msg.sa, msg.src, msg.dst
        if sa is None or src is None or dst is None:
            return
        hard = ExtType.LIFETIME_HARD in msg
        if hard:
            for q in list(self.quicks.values()):
                if q.state in (QState.ESTABLISHED, QState.ADDING, QState.FAILED):
                    continue
                if any(
                    SATYPE_OF[o.protocol] == msg.satype
                    and o.spi
                    and int.from_bytes(o.spi, "big") == sa.spi
                    for o in q.request.offers
                ):
                    # Linux drops a larval SA (GETSPI never followed by UPDATE): give up now.
                    self.phase2_failed(
                        q,
                        f"phase2 negotiation failed: the kernel expired the larval SA "
                        f"spi={sa.spi}(0x{sa.spi:x}). {q.index()}",
                        now,
                    )
                    return
        for q in list(self.established):
            for rec in q.installed:
                inbound = rec.inbound_spi == sa.spi and dst.addr == q.local[0]
                outbound = rec.outbound_spi == sa.spi and dst.addr == q.peer[0]
                if SATYPE_OF[rec.protocol] != msg.satype or not (inbound or outbound):
                    continue
                text = q.sa_text(rec, "in" if inbound else "out")
                self.log(Level.INFO, f"IPsec-SA expired: {text}", q.peer[0])
                if not hard and q.initiator and q in self.established:
                    self._drop_phase2(q)
                    fresh = Request(
                        q.request.local,
                        q.request.remote,
                        [
                            ProtocolOffer(o.protocol, o.mode, o.reqid_in, o.reqid_out)
                            for o in q.request.offers
                        ],
                        q.request.policy_id,
                        0,
                        q.request.tunnel,
                    )
                    # rekey under whichever ISAKMP SA is current (a new phase 1 if none)
                    self._request_phase2(q.ph1.remote, q.local, q.peer, fresh, now)
                    return
                if hard and q in self.established:
                    self._drop_phase2(q)
                return

    def _kernel_delete(self, msg: pfkey.Message, now: float) -> None:
        sa, src, dst = msg.sa, msg.src, msg.dst
        if sa is None or src is None or dst is None:
            return
        for q in list(self.established):
            for rec in q.installed:
                if rec.inbound_spi == sa.spi and dst.addr == q.local[0]:
                    self.log(
                        Level.ERROR, f"pfkey DELETE received: {q.sa_text(rec, 'in')}", q.peer[0]
                    )
                    current = self._phase1_for(q.peer)
                    if current is not None and current.established:
                        spi = rec.inbound_spi.to_bytes(
                            2 if rec.protocol == ProtocolID.IPCOMP else 4, "big"
                        )
                        self.send_info(current, [Delete(rec.protocol, (spi,))])
                    q.installed.remove(rec)
                    if not q.installed:
                        self._drop_phase2(q)
                    return

    # ================================================================== SA life
    def ike_keys_derived(self, initiator_cookie: bytes, encryption_key: bytes) -> None:
        """Hand the phase-1 cipher key out, only when a key log was asked for."""
        if self.export_ike_keys:
            self._events.append(ev.IkeKeys(initiator_cookie, encryption_key))

    def phase1_established(self, ph1: Phase1, now: float) -> None:
        """Announce the SA, send INITIAL-CONTACT once per peer, start queued phase 2s."""
        self._events.append(
            ev.Phase1Established(ph1.local, ph1.peer, ph1.cookies, ph1.role is Role.INITIATOR)
        )
        if ph1.remote.initial_contact and ph1.peer[0] not in self.contacted:
            self.send_info(
                ph1, [Notification(NotifyType.INITIAL_CONTACT, ProtocolID.ISAKMP, ph1.cookies)]
            )
            self.log(Level.DEBUG, "sendto Information notify INITIAL-CONTACT", ph1.peer[0])
        self.contacted.add(ph1.peer[0])
        for w in [w for w in self.waiting if w.peer[0] == ph1.peer[0]]:
            self.waiting.remove(w)
            self._start_quick(ph1, w.request, now)

    def phase1_dead(self, ph1: Phase1, now: float) -> None:
        """DPD gave up (racoon-facts 8.16): purge the peer's SAs and its ISAKMP SAs."""
        self.log(
            Level.INFO, f"DPD: remote (ISAKMP-SA spi={ph1.index()}) seems to be dead.", ph1.peer[0]
        )
        self._events.append(ev.PeerDead(ph1.local, ph1.peer, ph1.cookies))
        self._purge_peer(ph1.peer[0], keep=None)
        for other in [p for p in self.ph1s.values() if p.peer[0] == ph1.peer[0]]:
            self.log(Level.INFO, f"purging ISAKMP-SA spi={other.index()}.", other.peer[0])
            self._remove_phase1(other, announce=False)

    def phase1_dying(self, ph1: Phase1, now: float) -> None:
        """80 % of the lifetime: an initiator with phase-2 SAs under it renegotiates phase 1
        (``rekey force``, or ``rekey on`` while DPD is active, racoon-facts 1.3)."""
        remote = ph1.remote
        wanted = remote.rekey is Rekey.FORCE or (remote.rekey is Rekey.ON and ph1.dpd_active)
        if ph1.role is not Role.INITIATOR or not wanted:
            return
        if not any(q.ph1 is ph1 for q in self.established):
            return
        self.log(
            Level.INFO, f"renegotiating phase1 to {ph1.peer[0]} due to active phase2", ph1.peer[0]
        )
        self.initiate(remote, ph1.local, ph1.peer, now)

    def phase1_failed(self, ph1: Phase1, text: str, now: float) -> None:
        """End a phase-1 negotiation with a log line and a NegotiationFailed event."""
        self.log(Level.ERROR, text, ph1.peer[0])
        ph1.state = P1State.FAILED
        self.ph1s.pop(ph1.icky, None)
        self._events.append(ev.NegotiationFailed(1, ph1.peer, text))

    def phase1_expired(self, ph1: Phase1, now: float) -> None:
        """Lifetime over: log racoon's line and delete the ISAKMP SA (with a Delete)."""
        self.log(
            Level.INFO,
            f"ISAKMP-SA expired {fmt_endpoint(ph1.local)}-"
            f"{fmt_endpoint(ph1.peer)} spi:{ph1.index()}",
            ph1.peer[0],
        )
        self._remove_phase1(ph1, announce=True)

    def _remove_phase1(self, ph1: Phase1, *, announce: bool) -> None:
        if announce and ph1.established:
            self.send_info(ph1, [Delete(ProtocolID.ISAKMP, (ph1.cookies,))])
        ph1.state = P1State.EXPIRED
        self.ph1s.pop(ph1.icky, None)
        for key in [k for k in self.quicks if k[0] == ph1.icky]:
            q = self.quicks.pop(key)
            self._forget_pending(q)
        self.log(
            Level.INFO,
            f"ISAKMP-SA deleted {fmt_endpoint(ph1.local)}-"
            f"{fmt_endpoint(ph1.peer)} spi:{ph1.index()}",
            ph1.peer[0],
        )

    def phase2_established(self, q: Quick, now: float) -> None:
        # It stays in self.quicks too: a late QM2 retransmission must still find it and get
        # QM3 again (the lost-QM3 case of racoon-facts 8.14).
        """Every kernel SA of ``q`` is in: announce it."""
        self.established.append(q)
        self._events.append(
            ev.Phase2Established(
                q.local,
                q.peer,
                q.message_id,
                tuple(PROTOCOL_NAMES.get(r.protocol, "?") for r in q.installed),
                tuple(r.inbound_spi for r in q.installed),
                tuple(r.outbound_spi for r in q.installed),
            )
        )

    def _drop_phase2(self, q: Quick) -> None:
        if q in self.established:
            self.established.remove(q)
        self._remove_generated_policies(q)
        self.quicks.pop((q.ph1.icky, q.message_id), None)

    def phase2_failed(self, q: Quick, text: str, now: float) -> None:
        """End a quick mode; an initiator tells the kernel with an errno ACQUIRE."""
        self.log(Level.ERROR, text, q.peer[0])
        q.state = QState.FAILED
        self.quicks.pop((q.ph1.icky, q.message_id), None)
        self._remove_generated_policies(q)
        self._forget_pending(q)
        if q.initiator:
            self._acquire_error(q.request)
        self._events.append(ev.NegotiationFailed(2, q.peer, text))

    def phase2_expired(self, q: Quick, now: float) -> None:
        """Our own full-lifetime timer of an IPsec SA pair ran out."""
        self.log(
            Level.INFO,
            f"phase2 sa expired {fmt_endpoint(q.local)}-{fmt_endpoint(q.peer)}",
            q.peer[0],
        )
        if q in self.established:
            self._drop_phase2(q)


__all__ = ["Engine", "SpdEntry", "Waiting"]
