"""racoon.conf: the parser and the typed model the engine and daemon read.

``parse_file(path)`` / ``parse_string(text)`` return a :class:`Config` whose ``warnings`` name
every directive parsed but not acted upon yet; errors are :class:`ConfigError`
(``FILE:LINE: message near 'token'``).  See :mod:`pyracoon.config.parser` for the grammar notes
and :mod:`pyracoon.config.model` for racoon's real defaults.
"""

from pyracoon.config.errors import ConfigError, ConfigWarning
from pyracoon.config.model import (
    DEFAULT_LIFETIME,
    AdminSock,
    CertificateType,
    Config,
    GeneratePolicy,
    Identifier,
    IdentifierKind,
    IkeFrag,
    LdapCfg,
    Listen,
    ListenAddress,
    LogLevel,
    ModeCfg,
    NatTraversal,
    Padding,
    ParsedConfig,
    Paths,
    PeersCertfile,
    Phase1Proposal,
    Privsep,
    ProposalCheck,
    RadiusCfg,
    RadiusServer,
    Rekey,
    Remote,
    SaInfo,
    SaInfoAlgorithm,
    SaInfoId,
    ScriptEvent,
    Timer,
)
from pyracoon.config.parser import (
    MAX_INCLUDE_DEPTH,
    check_kernel_algorithms,
    parse_file,
    parse_string,
)
from pyracoon.config.sainfo import SaInfoCandidate, describe_id, id_equal, sainfo_candidates
from pyracoon.config.support import NOT_ACTED_UPON, is_acted_upon

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_INCLUDE_DEPTH",
    "NOT_ACTED_UPON",
    "AdminSock",
    "CertificateType",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "GeneratePolicy",
    "Identifier",
    "IdentifierKind",
    "IkeFrag",
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
    "SaInfoCandidate",
    "SaInfoId",
    "ScriptEvent",
    "Timer",
    "check_kernel_algorithms",
    "describe_id",
    "id_equal",
    "is_acted_upon",
    "parse_file",
    "parse_string",
    "sainfo_candidates",
]
