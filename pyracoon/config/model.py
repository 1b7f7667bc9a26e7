"""The typed model of a racoon.conf, with racoon's *real* defaults.

Every default below is the one the ipsec-tools 0.8.2 code uses, not racoon.conf(5)'s: phase1/phase2
timers 30 s, ``complex_bundle on``, ``match_empty_cr off``, a lifetime of 28800 s that is therefore
always proposed, ``proposal_check strict``... Where the two disagree the comment says so, because
people will compare a pyracoon log with the man page.

The model is plain dataclasses so that the engine can read it without knowing the grammar, and
so that tests can build one by hand.  Algorithms are rows of the one table in
:mod:`pyracoon.crypto.algorithms`; identifiers are :class:`pyracoon.pki.identity.IdentifierSpec`
(re-exported here as :data:`Identifier`) so that config and pki cannot disagree on their forms.
"""

from __future__ import annotations

import ipaddress
import posixpath
import sys
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import TYPE_CHECKING

from pyracoon.config.errors import ConfigWarning
from pyracoon.crypto.algorithms import AuthAlgorithm, Cipher, CompressionAlgorithm, HashAlgorithm
from pyracoon.pki.identity import IdentifierKind, IdentifierSpec
from pyracoon.wire.constants import ExchangeType, IDType

if TYPE_CHECKING:
    from pyracoon.config.sainfo import IdPayloadLike, SaInfoCandidate

__all__ = [
    "DEFAULT_LIFETIME",
    "AdminSock",
    "CertificateType",
    "Config",
    "GeneratePolicy",
    "Identifier",
    "IdentifierKind",
    "IkeFrag",
    "IPAddress",
    "LdapCfg",
    "Listen",
    "ListenAddress",
    "LogLevel",
    "ModeCfg",
    "NatTraversal",
    "Padding",
    "ParsedConfig",
    "Paths",
    "PeersCertfile",
    "Phase1Proposal",
    "Privsep",
    "ProposalCheck",
    "RadiusCfg",
    "RadiusServer",
    "Rekey",
    "Remote",
    "SaInfo",
    "SaInfoAlgorithm",
    "SaInfoId",
    "ScriptEvent",
    "Timer",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Identifier forms of ``my_identifier`` / ``peers_identifier`` / sainfo ``from``.
Identifier = IdentifierSpec

#: racoon's oakley_get_defaultlifetime(): 8 hours, for phase 1 and phase 2 (racoon.conf(5)).
DEFAULT_LIFETIME = 28800

#: IKE ports (racoon(8): ``-p`` / ``-P``).
PORT_ISAKMP = 500
PORT_ISAKMP_NATT = 4500

#: VARRUN: where a relative ``path pidfile`` lands and where the default pid file lives.
VARRUN = "/var/run"


def default_config_path(platform: str = sys.platform) -> str:
    """Where racoon.conf is when ``-f`` is not given: where this platform's racoon package puts
    it, so that pyracoon finds an existing setup. FreeBSD's port installs under /usr/local (the
    memo's /usr/local/etc/racoon); Debian's ipsec-tools and the BSDs' base systems use
    /etc/racoon. ``pyracoon`` and ``rc.d/racoon.sh`` both take it from here."""
    if platform.startswith(("freebsd", "dragonfly")):
        return "/usr/local/etc/racoon/racoon.conf"
    return "/etc/racoon/racoon.conf"


class LogLevel(IntEnum):
    """racoon's log levels (racoon's plog.c); a message prints when its level <= the current one."""

    ERROR = 1
    WARNING = 2
    NOTIFY = 3
    INFO = 4
    DEBUG = 5
    DEBUG2 = 6


class ProposalCheck(Enum):
    """``proposal_check``: how a responder compares the peer's lifetime/keylen/PFS
    (docs/racoon.md, "proposal_check")."""

    OBEY = "obey"
    STRICT = "strict"
    CLAIM = "claim"
    EXACT = "exact"


class GeneratePolicy(Enum):
    """``generate_policy``; ``on`` is the same as ``require`` (racoon.conf(5): remote)."""

    OFF = "off"
    REQUIRE = "require"
    UNIQUE = "unique"


class NatTraversal(Enum):
    OFF = "off"
    ON = "on"
    FORCE = "force"


class IkeFrag(Enum):
    OFF = "off"
    ON = "on"
    FORCE = "force"


class Rekey(Enum):
    """``rekey``: ``on`` rekeys phase 1 only while DPD is active; ``force`` always."""

    OFF = "off"
    ON = "on"
    FORCE = "force"


class ScriptEvent(Enum):
    PHASE1_UP = "phase1_up"
    PHASE1_DOWN = "phase1_down"
    PHASE1_DEAD = "phase1_dead"


@dataclass
class Paths:
    """``path include|pre_shared_key|certificate|script|backupsa|pidfile``.

    None means "not configured": racoon then uses a relative file name as it stands.
    """

    include: str | None = None
    pre_shared_key: str | None = None
    certificate: str | None = None
    script: str | None = None
    backupsa: str | None = None
    pidfile: str | None = None

    def resolve(self, kind: str, name: str) -> str:
        """racoon's getpathname(): an absolute ``name`` stands; a relative one is joined to the
        configured directory of ``kind`` (``include``, ``certificate``, ``script``...)."""
        base = getattr(self, kind)
        if posixpath.isabs(name) or not base:
            return name
        return posixpath.join(base, name)

    def pidfile_path(self) -> str:
        """The pid file: ``VARRUN/racoon.pid`` by default; a relative ``path pidfile`` lands
        under VARRUN (racoon.conf(5))."""
        if self.pidfile is None:
            return posixpath.join(VARRUN, "racoon.pid")
        if posixpath.isabs(self.pidfile):
            return self.pidfile
        return posixpath.join(VARRUN, self.pidfile)


@dataclass
class Privsep:
    """``privsep { user; group; chroot; }``: user and group as written (name or number)."""

    user: str | int | None = None
    group: str | int | None = None
    chroot: str | None = None


@dataclass
class Padding:
    """``padding {}``; the values are racoon's defaults (racoon.conf(5): padding)."""

    randomize: bool = True
    randomize_length: bool = False
    maximum_length: int = 20
    exclusive_tail: bool = True
    strict_check: bool = False


@dataclass(frozen=True)
class ListenAddress:
    """One ``isakmp`` / ``isakmp_natt`` line.  ``port`` is None when not written: it then
    follows the ``-p`` command-line port (500 by default)."""

    address: IPAddress
    port: int | None
    natt: bool = False
    scope: str | None = None

    def effective_port(self, isakmp_port: int = PORT_ISAKMP) -> int:
        return self.port if self.port is not None else isakmp_port


@dataclass
class AdminSock:
    """``adminsock``.  Defaults: racoonctl(8) -- root:root, 0600, and Debian's path
    ``/var/run/racoon/racoon.sock`` (upstream's is ``/var/racoon/racoon.sock``), the one
    ``pyracoonctl`` looks for by default.

    ``mode`` is the real permission bits.  racoon reads the written digits as octal but maps
    each x bit (1) to w (2) -- ``adminsock ... 0770`` gives 0660 -- a bug we do not reproduce:
    ``mode`` here is exactly the octal number written.
    """

    path: str | None = "/var/run/racoon/racoon.sock"
    owner: str = "root"
    group: str = "root"
    mode: int = 0o600
    disabled: bool = False


@dataclass
class Listen:
    """``listen {}``.  With no block (``present`` False) racoon binds every local address."""

    present: bool = False
    addresses: list[ListenAddress] = field(default_factory=list)
    strict_address: bool = False
    adminsock: AdminSock = field(default_factory=AdminSock)


@dataclass
class Timer:
    """``timer {}`` with the code's defaults, in seconds (racoon.conf(5)).

    ``phase1``: how long a phase-2 request waits for a phase-1 SA (man page says 15).
    ``phase2``: the whole quick-mode deadline (man page says 10).
    """

    counter: int = 5
    interval: int = 10
    persend: int = 1
    phase1: int = 30
    phase2: int = 30
    natt_keepalive: int = 20


@dataclass(frozen=True)
class CertificateType:
    """``certificate_type x509 "cert" "key"`` or ``certificate_type plain_rsa "key"``."""

    kind: str  # "x509" or "plain_rsa"
    certificate: str | None
    private_key: str


@dataclass(frozen=True)
class PeersCertfile:
    """``peers_certfile x509 "f" | plain_rsa "pub" | dnssec``: use this instead of the peer's
    CERT payload."""

    kind: str  # "x509", "plain_rsa" or "dnssec"
    path: str | None


@dataclass(frozen=True)
class Phase1Proposal:
    """One ``proposal {}`` block = one transform of the single ISAKMP proposal #1.

    ``key_length`` is None for fixed-key ciphers; variable-key ciphers default to 128 and always
    send the Key-Length attribute (racoon.conf(5), proposal).  ``lifetime`` is None when the
    block does not set one: the remote's lifetime applies (see :meth:`Remote.proposal_lifetime`).
    """

    encryption: Cipher
    key_length: int | None
    hash: HashAlgorithm
    #: Oakley value (RFC 2409 app. A, hybrid/xauth drafts); gssapi_krb is racoon's private 65001.
    authentication_method: int
    authentication_method_name: str
    dh_group: int
    lifetime: int | None = None
    gss_id: str | None = None
    file: str = "<string>"
    line: int = 0


@dataclass
class Remote:
    """A ``remote`` block with the code's defaults (racoon.conf(5): remote, remoteconf.c newrmconf).

    ``name`` is the quoted name of the new-style header, None for the old form
    (``remote ADDR|anonymous``).  ``address`` None with ``anonymous`` True matches any peer;
    ``address`` None and ``anonymous`` False (a named remote without ``remote_address``) is
    also a wildcard in lookups, as racoon stores it so.  ``port`` None means "not written":
    500, but any port matches.
    """

    name: str | None = None
    address: IPAddress | None = None
    port: int | None = None
    anonymous: bool = False
    inherit: str | None = None
    exchange_modes: list[ExchangeType] = field(default_factory=list)
    doi: int = 1  # ipsec_doi
    situation: int = 1  # identity_only
    my_identifier: IdentifierSpec = field(
        default_factory=lambda: IdentifierSpec(IdentifierKind.ADDRESS))
    peers_identifiers: list[IdentifierSpec] = field(default_factory=list)
    verify_identifier: bool = False
    certificate_type: CertificateType | None = None
    ca_type: str | None = None
    peers_certfile: PeersCertfile | None = None
    send_cert: bool = True
    send_cr: bool = True
    verify_cert: bool = True
    match_empty_cr: bool = False  # man page says on; the code says off
    lifetime: int = DEFAULT_LIFETIME
    nonce_size: int = 16
    passive: bool = False
    initial_contact: bool = True
    support_proxy: bool = False
    mode_cfg: bool = False
    weak_phase1_check: bool = False
    ike_frag: IkeFrag = IkeFrag.OFF
    esp_frag: int = 65535  # IP_MAXPACKET
    ph1id: int = 0
    proposal_check: ProposalCheck = ProposalCheck.STRICT
    generate_policy: GeneratePolicy = GeneratePolicy.OFF
    nat_traversal: NatTraversal = NatTraversal.OFF
    dpd: bool = True
    dpd_delay: int = 0
    dpd_retry: int = 5
    dpd_maxfail: int = 5
    rekey: Rekey = Rekey.ON
    scripts: dict[ScriptEvent, str] = field(default_factory=dict)
    xauth_login: str | None = None
    proposals: list[Phase1Proposal] = field(default_factory=list)
    #: The DH group all proposals share, set when aggressive mode is allowed (docs/racoon.md,
    #: "remote").
    dh_group: int | None = None
    file: str = "<string>"
    line: int = 0

    @property
    def initiator_exchange(self) -> ExchangeType:
        """The first listed exchange mode: the one used when we initiate."""
        return self.exchange_modes[0]

    def proposal_lifetime(self, proposal: Phase1Proposal) -> int:
        """The Life Duration proposed for ``proposal``: its own, else the remote's."""
        return proposal.lifetime if proposal.lifetime is not None else self.lifetime

    def describe(self) -> str:
        if self.name is not None:
            return f'"{self.name}"'
        if self.anonymous:
            return "anonymous"
        return f"{self.address}[{self.port if self.port is not None else PORT_ISAKMP}]"

    def copy(self) -> Remote:
        """The shallow copy racoon makes for ``inherit``, with lists and dicts duplicated so that
        the child's additions never leak into the parent."""
        return replace(self, exchange_modes=list(self.exchange_modes),
                       peers_identifiers=list(self.peers_identifiers),
                       scripts=dict(self.scripts), proposals=list(self.proposals))


@dataclass(frozen=True)
class SaInfoId:
    """A sainfo local/remote ID, kept as the ID payload it must equal (RFC 2407 4.6.2).

    ``kind`` is the racoon.conf form (``address``, ``subnet``, ``fqdn``, ``user_fqdn``,
    ``keyid``); ``id_type``/``protocol_id``/``port``/``data`` are the ID payload fields, compared
    exactly (racoon.conf(5): sainfo).  ``protocol_id`` 0 and ``port`` 0 mean "any", as on the wire.
    """

    kind: str
    id_type: IDType
    data: bytes
    protocol_id: int = 0
    port: int = 0
    text: str = ""

    @property
    def payload_key(self) -> tuple[int, int, int, bytes]:
        """What an ID payload is compared on: (type, protocol, port, data)."""
        return (int(self.id_type), self.protocol_id, self.port, self.data)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class SaInfoAlgorithm:
    """One item of a sainfo algorithm list: the table row, the name as written, and the key
    length (None when the algorithm takes none)."""

    name: str
    algorithm: Cipher | AuthAlgorithm | CompressionAlgorithm
    key_length: int | None
    file: str = "<string>"
    line: int = 0


@dataclass
class SaInfo:
    """A ``sainfo`` block.  ``local_id``/``remote_id`` None means ``anonymous``;
    ``remote_clientaddr`` is the ``clientaddr`` form.  ``pfs_group`` None: PFS neither proposed
    nor required."""

    local_id: SaInfoId | None = None
    remote_id: SaInfoId | None = None
    remote_clientaddr: bool = False
    from_id: IdentifierSpec | None = None
    group: str | None = None
    pfs_group: int | None = None
    lifetime: int = DEFAULT_LIFETIME
    remoteid: int = 0
    encryption: list[SaInfoAlgorithm] = field(default_factory=list)
    authentication: list[SaInfoAlgorithm] = field(default_factory=list)
    compression: list[SaInfoAlgorithm] = field(default_factory=list)
    file: str = "<string>"
    line: int = 0

    @property
    def score(self) -> int:
        """racoon's inssainfo() order: +3 remoteid, +3 ``from``, +1 per non-anonymous ID."""
        return ((3 if self.remoteid != 0 else 0) + (3 if self.from_id is not None else 0)
                + (1 if self.local_id is not None else 0)
                + (1 if self.remote_id is not None or self.remote_clientaddr else 0))

    def describe(self) -> str:
        local = str(self.local_id) if self.local_id is not None else "anonymous"
        if self.remote_clientaddr:
            remote = "clientaddr"
        else:
            remote = str(self.remote_id) if self.remote_id is not None else "anonymous"
        text = f"{local} {remote}"
        if self.from_id is not None:
            text += f" from {self.from_id}"
        if self.group is not None:
            text += f' group "{self.group}"'
        if self.remoteid:
            text += f" remoteid {self.remoteid}"
        return text


@dataclass
class ModeCfg:
    """Top-level ``mode_cfg {}`` (racoon.conf(5): mode_cfg), with racoon's defaults."""

    auth_source: str = "system"
    auth_groups: list[str] = field(default_factory=list)
    group_source: str = "system"
    conf_source: str = "local"
    accounting: str = "none"
    pool_size: int = 255
    network4: ipaddress.IPv4Address = ipaddress.IPv4Address("0.0.0.0")
    netmask4: ipaddress.IPv4Address = ipaddress.IPv4Address("0.0.0.0")
    dns4: list[ipaddress.IPv4Address] = field(default_factory=list)
    wins4: list[ipaddress.IPv4Address] = field(default_factory=list)
    split_network_type: str | None = None  # "include" or "local_lan"
    split_network: list[ipaddress.IPv4Network] = field(default_factory=list)
    split_dns: list[str] = field(default_factory=list)
    default_domain: str | None = None
    banner: str = "/etc/motd"
    auth_throttle: int = 1
    pfs_group: int = 0
    save_passwd: bool = False


@dataclass
class LdapCfg:
    """``ldapcfg {}``: the settings as written (racoon.conf(5): mode_cfg)."""

    version: int = 3
    debug: int = 0
    timeout: int = 10
    uri: str | None = None
    host: str = "localhost"
    port: int = 389
    base: str | None = None
    subtree: bool = False
    bind_dn: str | None = None
    bind_pw: str | None = None
    attr_user: str = "cn"
    attr_addr: str = "racoon-address"
    attr_mask: str = "racoon-netmask"
    attr_group: str = "cn"
    attr_member: str = "member"
    attr_device: str | None = None


@dataclass(frozen=True)
class RadiusServer:
    host: str
    port: int  # 0 = the library default
    secret: str


@dataclass
class RadiusCfg:
    """``radiuscfg {}``: up to 5 auth and 5 acct servers, timeout and retries default 3."""

    auth: list[RadiusServer] = field(default_factory=list)
    acct: list[RadiusServer] = field(default_factory=list)
    timeout: int = 3
    retries: int = 3


@dataclass
class Config:
    """A parsed racoon.conf.

    ``sainfos`` is kept in racoon's search order (score, then file order); ``remotes`` in file
    order.  ``warnings`` lists everything worth logging, notably each directive that is parsed
    but not acted upon yet.
    """

    source: str = "<string>"
    files: list[str] = field(default_factory=list)
    paths: Paths = field(default_factory=Paths)
    privsep: Privsep | None = None
    pfkey_buffer: int = 0  # KB; 0 = OS default
    gss_id_enc: str = "utf-16le"
    #: The level written in ``log``; None when absent (racoon's default, info).
    log_level: LogLevel | None = None
    padding: Padding = field(default_factory=Padding)
    listen: Listen = field(default_factory=Listen)
    timer: Timer = field(default_factory=Timer)
    complex_bundle: bool = True  # man page says off; the code says on
    remotes: list[Remote] = field(default_factory=list)
    sainfos: list[SaInfo] = field(default_factory=list)
    mode_cfg: ModeCfg | None = None
    ldapcfg: LdapCfg | None = None
    radiuscfg: RadiusCfg | None = None
    warnings: list[ConfigWarning] = field(default_factory=list)
    #: ``-p`` / ``-P``: the ports for listen lines and remotes that do not write one.
    isakmp_port: int = PORT_ISAKMP
    natt_port: int = PORT_ISAKMP_NATT

    # ------------------------------------------------------------------ command line
    def effective_log_level(self, debug_count: int = 0) -> LogLevel:
        """racoon's rule: the configured level (default info) plus one per ``-d``, capped."""
        base = self.log_level if self.log_level is not None else LogLevel.INFO
        return LogLevel(min(int(base) + debug_count, int(LogLevel.DEBUG2)))

    def with_command_line(self, *, isakmp_port: int | None = None,
                          natt_port: int | None = None) -> Config:
        """A copy with ``-p``/``-P`` applied: command-line ports win over the defaults used for
        listen lines and remotes that write no port (racoon(8))."""
        return replace(self,
                       isakmp_port=self.isakmp_port if isakmp_port is None else isakmp_port,
                       natt_port=self.natt_port if natt_port is None else natt_port)

    # ------------------------------------------------------------------ lookups
    def local_port(self, address: str | IPAddress) -> int:
        """The ISAKMP port we use on ``address``: its ``listen { isakmp ADDR [PORT]; }`` line if
        it has one, else the daemon's port (``-p``, default 500)."""
        for line in self.listen.addresses:
            if not line.natt and line.address == address:
                return line.effective_port(self.isakmp_port)
        return self.isakmp_port

    def remote_by_name(self, name: str) -> Remote | None:
        for remote in self.remotes:
            if remote.name == name:
                return remote
        return None

    def remote_for(self, address: str | IPAddress, port: int | None = None, *,
                   initiating: bool = False) -> Remote | None:
        """The remote for a peer, as racoon's getrmconf() (remoteconf.c rmconf_match_type).

        A remote whose address equals the peer's is an *address* match; a remote without an
        address -- ``anonymous``, and also a named remote without ``remote_address``, which
        racoon stores as a wildcard -- is an *anonymous* match.  The best level wins; two
        remotes on the best level are ambiguous and racoon refuses to choose ("multiple
        non-exact configurations found"), so this returns None (the parser warns about such
        duplicates).  A written port must equal ``port``; an unwritten one matches any port,
        since NAT-T floats the peer to 4500.  ``initiating`` skips ``passive on`` remotes.
        """
        peer = ipaddress.ip_address(str(address).split("%")[0])
        best_level = 0
        found: list[Remote] = []
        for remote in self.remotes:
            if initiating and remote.passive:
                continue
            if remote.port is not None and port is not None and remote.port != port:
                continue
            if remote.address is None:
                level = 1
            elif remote.address == peer:
                level = 2
            else:
                continue
            if level > best_level:
                best_level, found = level, [remote]
            elif level == best_level:
                found.append(remote)
        return found[0] if len(found) == 1 else None

    def sainfo_candidates(self, local_id: IdPayloadLike | None,
                          remote_id: IdPayloadLike | None,
                          peer_id: IdPayloadLike | None = None,
                          remoteid: int = 0,
                          client: IdPayloadLike | None = None) -> list[SaInfoCandidate]:
        """Every sainfo in search order with whether it matches and why (for logs); the first
        match is racoon's choice.  See :func:`pyracoon.config.sainfo.sainfo_candidates`."""
        from pyracoon.config.sainfo import sainfo_candidates

        return sainfo_candidates(self.sainfos, local_id, remote_id, peer_id, remoteid, client)

    def sainfo_for(self, local_id: IdPayloadLike | None, remote_id: IdPayloadLike | None,
                   peer_id: IdPayloadLike | None = None, remoteid: int = 0,
                   client: IdPayloadLike | None = None) -> SaInfo | None:
        """The sainfo racoon would use, or None."""
        for candidate in self.sainfo_candidates(local_id, remote_id, peer_id, remoteid, client):
            if candidate.matched:
                return candidate.sainfo
        return None


#: The brief's name for the parse result: a :class:`Config` carries its warnings itself.
ParsedConfig = Config
