"""The informational exchange (RFC 2409 5.7): notifies, Delete, INITIAL-CONTACT, DPD, purge.

What comes in: an informational datagram is opened (decrypted under its own M-ID, HASH(1)
checked, racoon's isakmp_inf.c), then each payload is acted upon -- an INITIAL-CONTACT purges the
peer's other SAs, R-U-THERE is answered and R-U-THERE-ACK counted (RFC 3706), a Delete removes
the ISAKMP SA or the IPsec SAs it names, error notifies are logged and nothing more (an
unprotected one is trivially forged, a protected one may answer a corrupted copy).  What goes
out: notifies after a failure, Delete when an SA ends, the DELETE of kernel SAs.

A purge is racoon's purge_remote(): the SAD is dumped and every mature or dying SA to or from
the peer is deleted, except those of the ISAKMP SA the notify came in -- so SAs of an earlier
run, which this engine never knew, go too.

This module does not import the dispatcher: it works on the SA tables through the
:class:`SaBook` protocol, which :class:`~pyracoon.engine.engine.Engine` implements.  What it
asks of the kernel is ``ops.DumpSa`` and ``ops.DeleteSa`` (:mod:`pyracoon.kernel.ops`).
"""

from __future__ import annotations

from typing import Any, Protocol

from pyracoon.crypto.cbc import CbcState
from pyracoon.crypto.errors import CryptoError
from pyracoon.crypto.hashes import digests_equal, informational_hash
from pyracoon.kernel import ops
from pyracoon.wire import (
    Delete,
    Hash,
    Message,
    Notification,
    Payload,
    WireError,
    decode_payloads,
    encode_payloads,
)
from pyracoon.wire.constants import NotifyType, ProtocolID, display_name, is_error_notify

from .context import Output, Settings
from .events import Endpoint, Level, fmt_endpoint
from .phase1 import Phase1, Role
from .proposals import PROTOCOL_NAMES, phase1_params_of
from .quick import Installed, QState, Quick
from .tables import Phase1Table, QuickTable
from .traffic import KERNEL_PROTO, Request


class SaBook(Protocol):
    """The dispatcher's SA tables and the two cross-SA removals, as informational needs them."""

    ph1s: Phase1Table
    quicks: QuickTable
    established: list[Quick]

    def remove_phase1(self, ph1: Phase1, *, announce: bool) -> None: ...

    def drop_phase2(self, q: Quick) -> None: ...

    def phase1_for(self, peer: Endpoint) -> Phase1 | None: ...


#: How many informational message ids an ISAKMP SA remembers to recognise replays (a DPD every
#: few seconds for a phase-1 lifetime of hours is well within: older ids are replays too old to
#: matter, since each purge or Delete they could repeat was acted upon long ago).
SEEN_INFORMATIONALS = 4096


class Informational:
    """Notifies, Delete, INITIAL-CONTACT, DPD and purges for one host's SAs."""

    def __init__(self, out: Output, settings: Settings, book: SaBook) -> None:
        self.out = out
        self.settings = settings
        self.book = book
        #: Outstanding SAD dumps for purges: (peer address, ISAKMP SA whose SAs are kept).
        self.dumps: list[tuple[Any, Phase1 | None]] = []

    # ------------------------------------------------------------------ sending
    def send_notify(
        self, ph1: Phase1, notify: int, *, data: bytes = b"", base_iv: bytes | None = None
    ) -> None:
        """Send one notify about ``ph1`` (HASH-protected once keys exist)."""
        n = Notification(notify, ProtocolID.ISAKMP, ph1.cookies, data)
        ph1.send_info([n], base_iv=base_iv)
        self.out.log(Level.DEBUG, f"sending notify {display_name(NotifyType, notify)}", ph1.peer[0])

    def send_initial_contact(self, ph1: Phase1) -> None:
        """INITIAL-CONTACT (RFC 2407 4.6.3.3) after our first ISAKMP SA with a peer."""
        ph1.send_info([Notification(NotifyType.INITIAL_CONTACT, ProtocolID.ISAKMP, ph1.cookies)])
        self.out.log(Level.DEBUG, "sendto Information notify INITIAL-CONTACT", ph1.peer[0])

    def initial_contact(self, ph1: Phase1, contacted: set[Any]) -> None:
        """``ph1`` is established: our INITIAL-CONTACT after the first ISAKMP SA with a peer
        (``contacted`` remembers them), and the peer's, if it sent one inside phase 1 (charon
        does, in MM5/MM6), honoured as an informational one is: its old SAs are purged."""
        if ph1.remote.initial_contact and ph1.peer[0] not in contacted:
            self.send_initial_contact(ph1)
        contacted.add(ph1.peer[0])
        if ph1.peer_initial_contact:
            self.out.log(Level.INFO, "received INITIAL-CONTACT (in phase 1)", ph1.peer[0])
            self.purge_peer(ph1.peer[0], keep=ph1)

    def send_delete_isakmp(self, ph1: Phase1) -> None:
        """Delete of the ISAKMP SA itself, when it ends on our side."""
        ph1.send_info([Delete(ProtocolID.ISAKMP, (ph1.cookies,))])

    # ------------------------------------------------------------------ receiving
    def _open(
        self, ph1: Phase1 | None, msg: Message, remote: Endpoint
    ) -> tuple[list[Payload], bool] | None:
        """The payloads of an informational message and whether HASH(1) protected them."""
        if msg.encrypted is None:
            return [p for p in msg.payloads if isinstance(p, Payload)], False
        if ph1 is None or ph1.keys is None or ph1.cbc is None or ph1.prf is None:
            self.out.log(Level.DEBUG, "encrypted informational for an unknown ISAKMP-SA", remote[0])
            return None
        cbc: CbcState = ph1.cbc.for_message_id(ph1.prf, msg.message_id)
        try:
            dec = cbc.decrypt(bytes(msg.encrypted.ciphertext), self.settings.padding)
            payloads = list(decode_payloads(msg.encrypted.next_payload, dec.plaintext).payloads)
        except (CryptoError, WireError) as exc:
            self.out.log(
                Level.ERROR, f"failed to decrypt the informational message: {exc}", remote[0]
            )
            if not ph1.established and ph1.psk_entry is not None:
                self.out.log(
                    Level.ERROR,
                    "the peer's notify cannot be read with our keys: most likely the "
                    f"pre-shared keys differ (we used the psk.txt entry '{ph1.psk_entry}')",
                    remote[0],
                )
            return None
        if not payloads or not isinstance(payloads[0], Hash):
            self.out.log(
                Level.ERROR,
                "ignore information because the message has no hash payload.",
                remote[0],
            )
            return None
        _, rest = encode_payloads(payloads[1:])
        expected = informational_hash(ph1.prf, ph1.keys.skeyid_a, msg.message_id, rest)
        if not digests_equal(payloads[0].data, expected):
            self.out.log(Level.ERROR, "ignore information because the hash mismatched.", remote[0])
            return None
        if not self._first_time(ph1, msg.message_id):
            # Informational exchanges are never resent (RFC 2408 4.8): a second copy is a
            # replay, and acting on it again (an old INITIAL-CONTACT purging the SAs of a newer
            # ISAKMP SA, a Delete of a rekeyed SA) is what a replay is for.
            self.out.log(
                Level.WARNING,
                f"informational exchange {msg.message_id:#010x} seen before: a replay, ignored",
                remote[0],
            )
            return None
        return payloads[1:], True

    def _first_time(self, ph1: Phase1, message_id: int) -> bool:
        """Remember ``message_id`` of a protected informational of ``ph1``; False if seen."""
        seen = ph1.informationals_seen
        if message_id in seen:
            return False
        if len(seen) >= SEEN_INFORMATIONALS:
            del seen[next(iter(seen))]
        seen[message_id] = None
        return True

    def receive(self, ph1: Phase1 | None, msg: Message, remote: Endpoint, now: float) -> None:
        """One informational datagram from ``remote`` (``ph1``: the SA its cookies name)."""
        opened = self._open(ph1, msg, remote)
        if opened is None:
            return
        payloads, protected = opened
        for p in payloads:
            if isinstance(p, Notification):
                self._receive_notify(ph1, p, protected, remote, now)
            elif isinstance(p, Delete) and protected and ph1 is not None:
                self._receive_delete(ph1, p)
            elif isinstance(p, Delete):
                self.out.log(Level.WARNING, "unprotected Delete ignored", remote[0])

    def _receive_notify(
        self, ph1: Phase1 | None, n: Notification, protected: bool, remote: Endpoint, now: float
    ) -> None:
        name = display_name(NotifyType, n.notify_type)
        if n.notify_type == NotifyType.INITIAL_CONTACT and protected and ph1 is not None:
            self.out.log(Level.INFO, "received INITIAL-CONTACT", remote[0])
            # The peer restarted (racoon's isakmp_inf.c, isakmp_info_recv_initialcontact()):
            # purge every SA with it except this ISAKMP SA's.
            self.purge_peer(ph1.peer[0], keep=ph1)
            return
        if n.notify_type in (NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK):
            if not protected or ph1 is None or not ph1.established or len(n.data) != 4:
                self.out.log(Level.DEBUG, f"{name} ignored (unprotected or malformed)", remote[0])
                return
            seq = int.from_bytes(n.data, "big")
            if n.notify_type == NotifyType.R_U_THERE:
                ack = Notification(NotifyType.R_U_THERE_ACK, ProtocolID.ISAKMP, ph1.cookies,
                                   n.data)  # fmt: skip
                ph1.send_info([ack])
                self.out.log(
                    Level.DEBUG, f"DPD R-U-THERE received (seq={seq}), ACK sent", remote[0]
                )
            else:
                ph1.dpd_ack(seq, now)
            return
        # Error notifies are logged, never acted upon: an unprotected notify is trivially
        # forged, and a protected one may answer a corrupted copy of a message whose real
        # version succeeded.  The negotiation ends by success or by its timer (as in racoon).
        level = Level.ERROR if is_error_notify(n.notify_type) else Level.INFO
        self.out.log(level, f"notification {name} received from {fmt_endpoint(remote)}", remote[0])
        if n.notify_type == NotifyType.NO_PROPOSAL_CHOSEN and ph1 is not None:
            for line in self._what_we_offered(ph1):
                self.out.log(Level.ERROR, line, remote[0])

    def _what_we_offered(self, ph1: Phase1) -> list[str]:
        """Our side of a refused offer, each proposal with each attribute, so that a person
        can hold it against the peer's configuration: the phase-1 proposals while we initiate
        phase 1, else the transforms of our quick modes still waiting for QM2 under it."""
        if ph1.role is Role.INITIATOR and not ph1.established:
            props = ph1.remote.proposals
            return [f"we offered {len(props)} phase-1 proposal(s):"] + [
                f"  #{i}: {phase1_params_of(ph1.remote, p).describe()}"
                for i, p in enumerate(props, 1)
            ]
        lines = []
        for q in self.book.quicks.values():
            if q.ph1 is ph1 and q.initiator and q.state is QState.QM1_SENT:
                lines.append(f"we offered for {q.request.local} -> {q.request.remote}:")
                lines += [
                    f"  {PROTOCOL_NAMES.get(o.protocol, o.protocol)} #{i}: {t.describe()}"
                    for o in q.request.offers
                    for i, t in enumerate(o.transforms, 1)
                ]
        return lines

    def _receive_delete(self, ph1: Phase1, d: Delete) -> None:
        book = self.book
        if d.protocol_id == ProtocolID.ISAKMP:
            for spi in d.spis:
                target = book.ph1s.get(bytes(spi[:8]))
                if target is not None and target.peer[0] == ph1.peer[0]:
                    self.out.log(
                        Level.INFO, f"purging ISAKMP-SA spi={target.index()}.", ph1.peer[0]
                    )
                    book.remove_phase1(target, announce=False)
            return
        # A quick mode whose UPDATE/ADD are still on their way to the kernel counts too: a peer
        # that cannot install its side (strongSwan on a kernel without ESP) sends its Delete
        # right after QM3, and that datagram can overtake the kernel's replies.  Our DELETEs
        # queue behind the UPDATE/ADD on the same kernel socket, so they still remove the SAs.
        installing = [q for q in book.quicks.values() if q.installed and q not in book.established]
        for spi in d.spis:
            value = int.from_bytes(spi, "big")
            for q in [*book.established, *installing]:
                for rec in list(q.installed):
                    # racoon expects the peer's inbound SPI (our outbound one); strongSwan
                    # has been seen to send the other one of the pair: accept both.
                    if (
                        rec.protocol == d.protocol_id
                        and value in (rec.outbound_spi, rec.inbound_spi)
                        and q.peer[0] == ph1.peer[0]
                    ):
                        self.out.log(
                            Level.INFO,
                            f"purged IPsec-SA proto_id="
                            f"{PROTOCOL_NAMES.get(rec.protocol)} spi={value}.",
                            q.peer[0],
                        )
                        self.delete_kernel_sas(q, rec)
                        q.installed.remove(rec)
                if not q.installed:
                    self.out.forget_pending(q)  # its install replies no longer concern anyone
                    book.drop_phase2(q)

    def retire(self, request: Request) -> None:
        """A rekey's new SAs have been in for REKEY_DELETE_DELAY: delete the SAs the request
        replaced, on our side and -- with a Delete -- on the peer's, so that rekeyed SAs do not
        pile up until their hard lifetimes (charon keeps each one otherwise)."""
        old, request.replaces = request.replaces, None
        if not isinstance(old, Quick) or not old.installed or old in self.book.established:
            return
        current = self.book.phase1_for(old.peer)
        for rec in old.installed:
            if current is not None and current.established:
                current.send_info([_delete_of(rec)])
            self.delete_kernel_sas(old, rec)
            text = old.sa_text(rec, "in")
            self.out.log(Level.INFO, f"rekeyed IPsec-SA deleted: {text}", old.peer[0])
        old.installed.clear()

    def shortened_expired(self, q: Quick) -> None:
        """``q``'s SAs end now and we had shortened the peer's lifetime (``proposal_check
        claim``, RESPONDER-LIFETIME sent): peers that ignore RESPONDER-LIFETIME (charon) would
        keep sending into SAs we no longer have, so tell them with a Delete, as at shutdown."""
        shortened = [c for c in q.choices if c.responder_lifetime is not None]
        if not shortened or q not in self.book.established:
            return
        current = self.book.phase1_for(q.peer)
        if current is None or not current.established:
            return
        for rec in q.installed:
            current.send_info([_delete_of(rec)])
        self.out.log(
            Level.INFO,
            f"IPsec-SA of lifetime {shortened[0].responder_lifetime} s ended: Delete sent, since "
            "we had shortened the peer's lifetime (proposal_check claim)",
            q.peer[0],
        )

    def farewell(self) -> int:
        """Shutdown, as racoon's flushph2() and flushph1(): a Delete for each protocol of each
        established phase 2, under its peer's current ISAKMP SA, then a Delete for each
        established ISAKMP SA -- so that peers stop sending into SAs that are about to go
        instead of black-holing traffic until they notice -- and generated policies removed.
        Returns how many informational messages were sent."""
        sent = 0
        for q in list(self.book.established):
            current = self.book.phase1_for(q.peer)
            if current is not None and current.established:
                for rec in q.installed:
                    current.send_info([_delete_of(rec)])
                    sent += 1
            self.book.drop_phase2(q)
        for ph1 in [p for p in self.book.ph1s.values() if p.established]:
            self.send_delete_isakmp(ph1)
            sent += 1
        return sent

    # ------------------------------------------------------------------ kernel side
    def delete_kernel_sas(self, q: Quick, rec: Installed) -> None:
        """DELETE both directions of one protocol of ``q`` (racoon removes only the outbound
        one, a known racoon annoyance)."""
        proto = KERNEL_PROTO[rec.protocol]
        for src, dst, spi in (
            (q.peer[0], q.local[0], rec.inbound_spi),
            (q.local[0], q.peer[0], rec.outbound_spi),
        ):
            self.out.kernel_request(
                ops.DeleteSa(self.out.next_seq(), ops.SaId(proto, spi, src, dst))
            )

    def kernel_deleted(self, event: ops.SaEvent) -> None:
        """Someone else deleted one of our inbound SAs: tell the peer with a Delete."""
        if event.sa is None:
            return
        sa = event.sa.id
        for q in list(self.book.established):
            for rec in q.installed:
                if (
                    KERNEL_PROTO[rec.protocol] is sa.proto
                    and rec.inbound_spi == sa.spi
                    and sa.dst == q.local[0]
                ):
                    self.out.log(
                        Level.ERROR, f"pfkey DELETE received: {q.sa_text(rec, 'in')}", q.peer[0]
                    )
                    current = self.book.phase1_for(q.peer)
                    if current is not None and current.established:
                        current.send_info([_delete_of(rec)])
                    q.installed.remove(rec)
                    if not q.installed:
                        self.book.drop_phase2(q)
                    return

    # ------------------------------------------------------------------ purge
    def purge_peer(self, peer: Any, *, keep: Phase1 | None) -> None:
        """Dump the SAD and delete each mature SA to or from ``peer`` -- racoon's
        purge_remote(), so that SAs this engine never knew (an earlier run's) go too."""
        self.dumps.append((peer, keep))
        self.out.kernel_request(ops.DumpSa(self.out.next_seq()))

    def receive_dump(self, event: ops.SaEvent) -> None:
        """One reply to our DUMP: purge it if it is the peer's."""
        if not self.dumps:
            return
        peer, keep = self.dumps[0]
        if event.errno == 0 and event.sa is not None:
            self._purge_entry(event.sa, peer, keep)
        if event.last:  # ENOENT (empty SAD) or the last entry
            self.dumps.pop(0)

    def _purge_entry(self, entry: ops.KernelSa, peer: Any, keep: Phase1 | None) -> None:
        sa = entry.id
        if peer not in (sa.src, sa.dst):
            return
        if entry.state not in (ops.SaState.MATURE, ops.SaState.DYING):
            return  # larval SAs belong to negotiations in progress
        kept: set[int] = set()
        for q in self.book.quicks.values():
            if q.ph1 is keep:
                kept |= {int.from_bytes(o.spi, "big") for o in q.request.offers if o.spi}
                kept |= {int.from_bytes(c.peer_spi, "big") for c in q.choices}
        if sa.spi in kept:
            return
        name = sa.proto.name  # racoon's s_ipsecdoi_proto(): ESP, AH, IPCOMP
        self.out.kernel_request(ops.DeleteSa(self.out.next_seq(), sa))
        self.out.log(Level.INFO, f"purged IPsec-SA proto_id={name} spi={sa.spi}.", peer)
        for q in list(self.book.established):
            for rec in list(q.installed):
                if KERNEL_PROTO[rec.protocol] is sa.proto and sa.spi in (
                    rec.inbound_spi,
                    rec.outbound_spi,
                ):
                    q.installed.remove(rec)
            if not q.installed:
                self.book.drop_phase2(q)


def _delete_of(rec: Installed) -> Delete:
    """The Delete payload naming our inbound SA of one protocol (the SPI the peer sends to;
    IPComp's CPI is two bytes, RFC 2407 4.4.5)."""
    size = 2 if rec.protocol == ProtocolID.IPCOMP else 4
    return Delete(rec.protocol, (rec.inbound_spi.to_bytes(size, "big"),))


__all__ = ["Informational", "SaBook"]
