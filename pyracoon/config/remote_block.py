"""The ``remote`` block and its ``proposal`` blocks (racoon.conf(5): remote, proposal).

racoon's cfparse.y reads a remote statement by statement into a struct remoteconf
(remoteconf.c newrmconf() supplies the defaults, :class:`pyracoon.config.model.Remote` holds
them) and checks the whole at the closing ``}`` (process_rmconf(), set_isakmp_proposal()).  This
module does the same: :data:`REMOTE_STATEMENTS` and :data:`PROPOSAL_STATEMENTS` map each keyword
to the handler that reads its values, and :func:`finish_remote` makes racoon's closing checks at
the ``}``.  Which statements the engine acts on and which are reported is docs/config.md
("The support table"); racoon's defaults and the quirks kept or refused are docs/racoon.md
("remote", "Bugs not copied").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyracoon.config.lexer import Kind, Token
from pyracoon.config.model import (
    CertificateType,
    GeneratePolicy,
    IkeFrag,
    IPAddress,
    NatTraversal,
    PeersCertfile,
    Phase1Proposal,
    ProposalCheck,
    Rekey,
    Remote,
    ScriptEvent,
)
from pyracoon.config.reader import AUTH_METHODS, UNSUPPORTED_AUTH, Handler, Reader, Stream
from pyracoon.crypto.algorithms import CIPHERS, HASHES, Cipher, HashAlgorithm
from pyracoon.pki.identity import IdentifierKind
from pyracoon.wire.constants import ExchangeType

__all__ = ["PROPOSAL_STATEMENTS", "REMOTE_STATEMENTS", "remote"]


@dataclass
class _RemoteState:
    """What the checks at a remote's ``}`` need beyond the Remote itself."""

    remote: Remote
    header: Token
    address_set: bool = False
    certificate_set: bool = False
    peers_certfile_set: bool = False
    ca_set: bool = False
    own_peers_ids: bool = False
    own_proposals: list[Phase1Proposal] = field(default_factory=list)


@dataclass
class _ProposalDraft:
    """A ``proposal {}`` block being read; the lines may come in any order."""

    remote: Remote
    encryption: Cipher | None = None
    key_length: int | None = None
    hash: HashAlgorithm | None = None
    method: str | None = None
    dh_group: int | None = None
    lifetime: int | None = None
    gss_id: str | None = None
    gss_token: Token | None = None


# ---------------------------------------------------------------------- the header
def _remote_index(p: Reader, s: Stream) -> tuple[IPAddress | None, int | None, Token]:
    """``anonymous [port]`` or ``ADDR [port]``: (address or None, port or None, token)."""
    token = s.peek()
    if s.at_word("anonymous"):
        s.next()
        return None, p.port(s), token
    address, _ = p.address(s)
    return address, p.port(s), token


def _named_header(p: Reader, s: Stream, head: Token) -> tuple[_RemoteState, bool]:
    """``remote "NAME" [inherit "PARENT"]``: (state, whether ``;`` may end the statement)."""
    config = p.config
    s.next()
    name = str(head.value)
    if config.remote_by_name(name) is not None:
        raise head.error(f'named remoteconf "{name}" already exists.')
    inherits = False
    if s.at_word("inherit"):
        s.next()
        parent_token = s.expect(Kind.STRING, 'a parent remote name "..."')
        parent = config.remote_by_name(str(parent_token.value))
        if parent is None:
            raise parent_token.error(
                f'named parent remoteconf "{parent_token.value}" does not exist.'
            )
        remote = parent.copy()
        remote.inherit = parent.name
        inherits = True
    else:
        remote = Remote()
    remote.name = name
    return _RemoteState(remote, head), inherits


def _address_header(p: Reader, s: Stream) -> tuple[_RemoteState, bool]:
    """``remote ADDR|anonymous [port] [inherit ADDR|anonymous [port]]``."""
    address, port, token = _remote_index(p, s)
    inherits = False
    if s.at_word("inherit"):
        s.next()
        p_address, p_port, p_token = _remote_index(p, s)
        parent = None
        if p_address is not None:
            parent = next(
                (
                    r
                    for r in p.config.remotes
                    if r.address == p_address and (p_port is None or r.port in (None, p_port))
                ),
                None,
            )
        if parent is None:
            raise p_token.error(f"failed to get remoteconf for {p_token.text}.")
        remote = parent.copy()
        remote.inherit = parent.describe()
        remote.name = None
        inherits = True
    else:
        remote = Remote()
    remote.address, remote.port = address, port
    remote.anonymous = address is None
    return _RemoteState(remote, token, address_set=True), inherits


def remote(p: Reader, s: Stream, keyword: Token) -> None:
    """The top-level ``remote`` statement: header, body (or ``;`` after ``inherit``), checks."""
    config = p.config
    head = s.peek()
    if head.kind is Kind.STRING:
        state, allow_semicolon = _named_header(p, s, head)
    else:
        state, allow_semicolon = _address_header(p, s)
    remote = state.remote
    remote.file, remote.line = keyword.file, keyword.line
    if allow_semicolon and s.at(Kind.SEMI):
        close = s.next()
    else:
        close = p.table_block(
            s, "remote", REMOTE_STATEMENTS, state, report="remote", nested=frozenset({"proposal"})
        )
    finish_remote(p, state, close)
    for other in config.remotes:
        if other.address == remote.address and other.port == remote.port:
            what = "any peer" if remote.address is None else f"peer {remote.address}"
            p.warn(
                keyword,
                f"remote {remote.describe()} and remote {other.describe()} "
                f"({other.file}:{other.line}) both match {what}; neither "
                "will be chosen for it",
            )
            break
    config.remotes.append(remote)


# ---------------------------------------------------------------------- remote statements
def _remote_address(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    if state.address_set:
        raise token.error("remote_address already specified")
    remote = state.remote
    remote.address, _ = p.address(s)
    remote.port = p.port(s)
    remote.anonymous = False
    state.address_set = True


_EXCHANGE_MODES = {
    "main": ExchangeType.IDENTITY_PROTECTION,
    "aggressive": ExchangeType.AGGRESSIVE,
    "base": ExchangeType.BASE,
}


def _exchange_mode(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    modes = state.remote.exchange_modes = []
    while not s.at(Kind.SEMI):
        if s.accept(Kind.COMMA):  # racoon ignores commas here
            continue
        mode = s.expect_word(_EXCHANGE_MODES, "main, aggressive or base")
        modes.append(_EXCHANGE_MODES[str(mode.value)])


def _doi(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    # cftoken.l knows one DOITYPE, ipsec_doi (RFC 2407 2.1): anything else is a syntax error.
    s.expect_word(("ipsec_doi",), "ipsec_doi")
    state.remote.doi = 1


#: cftoken.l's SITUATIONTYPE words and their RFC 2407 4.2 bits.
_SITUATIONS = {"identity_only": 1, "secrecy": 2, "integrity": 4}


def _situation(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    value = s.expect_word(_SITUATIONS, "identity_only, secrecy or integrity")
    state.remote.situation = _SITUATIONS[str(value.value)]
    p.warn_unacted(f"remote.situation {value.value}", value)


def _certificate_type(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    if state.certificate_set:
        raise token.error("certificate_type already defined")
    remote = state.remote
    kind = s.expect_word(("x509", "plain_rsa"), "x509 or plain_rsa")
    p.warn_unacted(f"remote.certificate_type {kind.value}", kind)
    if kind.value == "x509":
        cert = p.string(s, 'a certificate file "..."')
        remote.certificate_type = CertificateType("x509", cert, p.string(s, 'a key file "..."'))
    else:
        remote.certificate_type = CertificateType(
            "plain_rsa", None, p.string(s, 'a key file "..."')
        )
        # racoon.conf(5): remote: plain RSA keys have no certificates to send or verify.
        remote.send_cert = remote.send_cr = remote.verify_cert = False
    state.certificate_set = True


def _peers_certfile(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    if state.peers_certfile_set:
        raise token.error("peers_certfile already defined")
    remote = state.remote
    if s.at(Kind.STRING):
        p.warn(
            token,
            "This directive without certtype will be removed! "
            f"Please use 'peers_certfile x509 \"{s.peek().value}\";' instead",
        )
        remote.peers_certfile = PeersCertfile("x509", p.string(s))
    else:
        kind = s.expect_word(("x509", "plain_rsa", "dnssec"), "x509, plain_rsa or dnssec")
        p.warn_unacted(f"remote.peers_certfile {kind.value}", kind)
        path = None if kind.value == "dnssec" else p.string(s)
        remote.peers_certfile = PeersCertfile(str(kind.value), path)
    state.peers_certfile_set = True


def _ca_type(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    if state.ca_set:
        raise token.error("ca_type already defined")
    s.expect_word(("x509",), "x509")
    state.remote.ca_type = p.string(s, 'a CA certificate file "..."')
    state.ca_set = True


def _switch(attribute: str) -> Handler:
    """``KEYWORD on|off;`` into ``Remote.attribute``; ``remote.KEYWORD on|off`` is reported if
    :mod:`.support` lists that value."""

    def handler(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
        on = p.switch(s)
        setattr(state.remote, attribute, on)
        p.warn_unacted(f"remote.{token.value} {'on' if on else 'off'}", token)

    return handler


def _number(attribute: str) -> Handler:
    def handler(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
        setattr(state.remote, attribute, p.number(s))

    return handler


def _my_identifier(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    state.remote.my_identifier = p.identifier(s, token)


def _peers_identifier(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    remote = state.remote
    if not state.own_peers_ids:
        remote.peers_identifiers = list(remote.peers_identifiers)
        state.own_peers_ids = True
    remote.peers_identifiers.append(p.identifier(s, token))


def _xauth_login(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    state.remote.xauth_login = p.string(s, 'a login "..."')


def _dh_group(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    raise token.error("dh_group cannot be defined here.")


def _on_off_force(
    attribute: str, enum: type[IkeFrag] | type[NatTraversal] | type[Rekey]
) -> Handler:
    """``KEYWORD on|off|force;``; ``remote.KEYWORD VALUE`` is reported if listed."""

    def handler(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
        value = s.expect_word(("on", "off", "force"), "on, off or force")
        setattr(state.remote, attribute, enum(str(value.value)))
        p.warn_unacted(f"remote.{token.value} {value.value}", token)

    return handler


_GENERATE_POLICY = {
    "on": GeneratePolicy.REQUIRE,
    "off": GeneratePolicy.OFF,
    "require": GeneratePolicy.REQUIRE,
    "unique": GeneratePolicy.UNIQUE,
}


def _generate_policy(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    value = s.expect_word(_GENERATE_POLICY, "on, off, require or unique")
    state.remote.generate_policy = _GENERATE_POLICY[str(value.value)]


def _proposal_check(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    value = s.expect_word([c.value for c in ProposalCheck], "obey, strict, claim or exact")
    state.remote.proposal_check = ProposalCheck(str(value.value))


def _lifetime(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    state.remote.lifetime = p.lifetime(s, "byte lifetime support is deprecated in Phase1")


def _script(p: Reader, s: Stream, token: Token, state: _RemoteState) -> None:
    remote = state.remote
    path = p.string(s, 'a script path "..."')
    event = s.expect_word([e.value for e in ScriptEvent], "phase1_up, phase1_down or phase1_dead")
    remote.scripts = dict(remote.scripts)
    remote.scripts[ScriptEvent(str(event.value))] = p.config.paths.resolve("script", path)


#: Every statement of a remote body (cfparse.y remote_spec), keyword -> handler.
REMOTE_STATEMENTS: dict[str, Handler] = {
    "remote_address": _remote_address,
    "exchange_mode": _exchange_mode,
    "doi": _doi,
    "situation": _situation,
    "certificate_type": _certificate_type,
    "peers_certfile": _peers_certfile,
    "ca_type": _ca_type,
    "verify_cert": _switch("verify_cert"),
    "send_cert": _switch("send_cert"),
    "send_cr": _switch("send_cr"),
    "match_empty_cr": _switch("match_empty_cr"),
    "verify_identifier": _switch("verify_identifier"),
    "passive": _switch("passive"),
    "support_proxy": _switch("support_proxy"),
    "initial_contact": _switch("initial_contact"),
    "mode_cfg": _switch("mode_cfg"),
    "weak_phase1_check": _switch("weak_phase1_check"),
    "dpd": _switch("dpd"),
    "nonce_size": _number("nonce_size"),
    "dpd_delay": _number("dpd_delay"),
    "dpd_retry": _number("dpd_retry"),
    "dpd_maxfail": _number("dpd_maxfail"),
    "ph1id": _number("ph1id"),
    "esp_frag": _number("esp_frag"),
    "my_identifier": _my_identifier,
    "peers_identifier": _peers_identifier,
    "xauth_login": _xauth_login,
    "dh_group": _dh_group,
    "ike_frag": _on_off_force("ike_frag", IkeFrag),
    "nat_traversal": _on_off_force("nat_traversal", NatTraversal),
    "rekey": _on_off_force("rekey", Rekey),
    "generate_policy": _generate_policy,
    "proposal_check": _proposal_check,
    "lifetime": _lifetime,
    "script": _script,
    "proposal": lambda p, s, token, state: proposal(p, s, token, state),
}


# ---------------------------------------------------------------------- closing checks
def finish_remote(p: Reader, state: _RemoteState, close: Token) -> None:
    """racoon's process_rmconf() and set_isakmp_proposal() checks."""
    remote = state.remote
    if not remote.exchange_modes:
        raise close.error("no exchange mode specified.")
    if remote.my_identifier.kind is IdentifierKind.ASN1DN:
        has_cert = remote.certificate_type is not None and remote.certificate_type.kind == "x509"
        if has_cert and remote.my_identifier.value is not None:
            p.warn(close, "Both CERT and ASN1 ID are set. Hope this is OK.")
        elif not has_cert and remote.my_identifier.value is None:
            raise close.error("ASN1 ID not specified and no CERT defined!")
    if state.own_proposals:
        remote.proposals = list(state.own_proposals)
    if not remote.proposals:
        raise close.error(f"no remote specification found: {remote.describe()}.")
    if ExchangeType.AGGRESSIVE in remote.exchange_modes:
        groups = {proposal.dh_group for proposal in remote.proposals}
        if len(groups) > 1:
            raise close.error(
                "DH group must be equal in all proposals when aggressive mode is used."
            )
        remote.dh_group = groups.pop()
    else:
        remote.dh_group = None


# ---------------------------------------------------------------------- proposal
def _phase1_cipher(p: Reader, token: Token) -> Cipher:
    row = CIPHERS.get("conf_names", str(token.value)) if token.kind is Kind.WORD else None
    if row is None or row.ike_id is None:
        raise p.bad_algorithm(token, "a phase-1 encryption algorithm")
    if row.implementation is None:
        raise token.error(f"algorithm {token.value} not supported")
    return row


def _encryption_algorithm(p: Reader, s: Stream, token: Token, draft: _ProposalDraft) -> None:
    alg_token = s.next()
    draft.encryption = _phase1_cipher(p, alg_token)
    draft.key_length = p.key_length(s, draft.encryption, alg_token)


def _hash_algorithm(p: Reader, s: Stream, token: Token, draft: _ProposalDraft) -> None:
    alg_token = s.next()
    alg_name = str(alg_token.value)
    row = HASHES.get("conf_names", alg_name) if alg_token.kind is Kind.WORD else None
    if alg_name == "tiger":
        raise alg_token.error("algorithm tiger not supported")
    if row is None:
        raise p.bad_algorithm(alg_token, "a hash algorithm")
    draft.hash = row


def _authentication_method(p: Reader, s: Stream, token: Token, draft: _ProposalDraft) -> None:
    alg_token = s.next()
    method = str(alg_token.value)
    if alg_token.kind is not Kind.WORD or method not in AUTH_METHODS:
        raise p.bad_algorithm(alg_token, "an authentication method")
    if method in UNSUPPORTED_AUTH:
        raise alg_token.error(f"authentication method {method} is not supported")
    p.warn_unacted(f"authentication_method {method}", alg_token)
    remote = draft.remote
    if (
        method == "rsasig"
        and remote.peers_certfile is not None
        and remote.peers_certfile.kind == "plain_rsa"
        and (remote.certificate_type is None or remote.certificate_type.kind != "plain_rsa")
    ):
        raise alg_token.error(
            "Private PlainRSA key not set. Use directive 'certificate_type plain_rsa ...'"
        )
    draft.method = method


def _proposal_dh_group(p: Reader, s: Stream, token: Token, draft: _ProposalDraft) -> None:
    draft.dh_group = p.dh_group(s)


def _proposal_lifetime(p: Reader, s: Stream, token: Token, draft: _ProposalDraft) -> None:
    draft.lifetime = p.lifetime(s, "byte lifetime support is deprecated")


def _gss_id(p: Reader, s: Stream, token: Token, draft: _ProposalDraft) -> None:
    p.warn_unacted("proposal.gss_id", token)
    draft.gss_id = p.string(s)
    draft.gss_token = token


#: Every statement of a proposal body (cfparse.y isakmpproposal_spec), keyword -> handler.
PROPOSAL_STATEMENTS: dict[str, Handler] = {
    "encryption_algorithm": _encryption_algorithm,
    "hash_algorithm": _hash_algorithm,
    "authentication_method": _authentication_method,
    "dh_group": _proposal_dh_group,
    "lifetime": _proposal_lifetime,
    "gss_id": _gss_id,
    "gssapi_id": _gss_id,
}


def proposal(p: Reader, s: Stream, keyword: Token, state: _RemoteState) -> None:
    """``proposal { ... }``: one transform; racoon's set_isakmp_proposal() checks at ``}``."""
    draft = _ProposalDraft(remote=state.remote)
    close = p.table_block(s, "proposal", PROPOSAL_STATEMENTS, draft)
    # racoon's set_isakmp_proposal(): all four lines are mandatory.
    if draft.encryption is None:
        raise close.error("encryption algorithm required.")
    if draft.hash is None:
        raise close.error("hash algorithm required.")
    if draft.dh_group is None:
        raise close.error("DH group required.")
    if draft.method is None:
        raise close.error("authentication method required.")
    if draft.gss_token is not None and draft.method != "gssapi_krb":
        raise draft.gss_token.error("wrong Vendor ID for gssapi_id")
    state.own_proposals.append(
        Phase1Proposal(
            encryption=draft.encryption,
            key_length=draft.key_length,
            hash=draft.hash,
            authentication_method=AUTH_METHODS[draft.method],
            authentication_method_name=draft.method,
            dh_group=draft.dh_group,
            lifetime=draft.lifetime,
            gss_id=draft.gss_id,
            file=keyword.file,
            line=keyword.line,
        )
    )
