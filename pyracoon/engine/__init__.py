"""pyracoon.engine: the sans-I/O IKEv1 negotiation engine (phase 1, quick mode, informational).

Datagrams, PF_KEY messages and the current time go in; datagrams to send, PF_KEY requests and
log lines come out (:mod:`.events`).  See ``docs/engine.md`` for the design.

* :class:`Engine` -- all SAs of one host (:mod:`.engine`);
* :mod:`.phase1` -- main and aggressive mode, PSK and RSA signatures, with its state table;
* :mod:`.quick` -- quick mode and the kernel SAs it installs;
* :mod:`.proposals` -- our SA payloads and proposal selection (``proposal_check``);
* :mod:`.psk` -- psk.txt; :mod:`.errors` -- exceptions named after notifies.
"""

from .engine import Engine
from .errors import (
    AttributesNotSupported,
    AuthenticationFailed,
    EngineError,
    InvalidCertAuthority,
    InvalidHashInformation,
    InvalidIdInformation,
    LocalError,
    NoPreSharedKey,
    NoProposalChosen,
    PayloadMalformed,
    PeerError,
)
from .events import (
    DatagramOut,
    IkeKeys,
    IsakmpSaStatus,
    KernelRequest,
    Level,
    LogEvent,
    NegotiationFailed,
    Phase1Established,
    Phase2Established,
    endpoint,
    fmt_endpoint,
)
from .psk import PskFile, PskTable

__all__ = [
    "AttributesNotSupported", "AuthenticationFailed", "DatagramOut", "Engine", "EngineError",
    "InvalidCertAuthority", "InvalidHashInformation", "InvalidIdInformation", "IsakmpSaStatus",
    "IkeKeys", "KernelRequest",
    "Level", "LocalError", "LogEvent", "NegotiationFailed", "NoPreSharedKey", "NoProposalChosen",
    "PayloadMalformed", "PeerError", "Phase1Established", "Phase2Established", "PskFile",
    "PskTable", "endpoint", "fmt_endpoint",
]  # fmt: skip
