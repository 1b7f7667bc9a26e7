"""Which racoon.conf directives pyracoon parses but does not act upon yet.

This is the one place to edit when the engine or daemon starts honouring a directive: remove it
from :data:`NOT_ACTED_UPON` and the parser stops warning about it.  The parser reports every
occurrence of a listed directive as ``FILE:LINE: directive 'X' is parsed but not acted upon
yet`` (see :class:`pyracoon.config.errors.ConfigWarning`), so nothing in a configuration is
dropped in silence.

Keys are the directive as a person would grep for it: a top-level keyword (``privsep``), a
qualified one (``path script``), or ``block.keyword`` for directives inside ``remote``,
``proposal`` and ``sainfo`` blocks; authentication methods that need hybrid/xauth/GSS-API
support are listed by their racoon.conf name under ``authentication_method NAME``.
"""

from __future__ import annotations

__all__ = ["NOT_ACTED_UPON", "is_acted_upon"]

NOT_ACTED_UPON: frozenset[str] = frozenset(
    {
        # top level
        "privsep",
        "path script",
        "gss_id_enc",
        "complex_bundle off",  # the engine keeps each SPD request's own mode (racoon's default)
        "mode_cfg",
        "ldapcfg",
        "radiuscfg",
        # remote
        "remote.mode_cfg",
        "remote.xauth_login",
        "remote.ike_frag",
        "remote.nat_traversal on",  # no NAT-T (port 4500, NAT-D, UDP encapsulation) yet
        "remote.nat_traversal force",
        "remote.match_empty_cr on",
        "remote.esp_frag",
        "remote.script",
        "remote.weak_phase1_check",
        "remote.certificate_type plain_rsa",
        "remote.peers_certfile plain_rsa",
        "remote.peers_certfile dnssec",
        # proposal
        "proposal.gss_id",
        "authentication_method gssapi_krb",
        "authentication_method hybrid_rsa_server",
        "authentication_method hybrid_rsa_client",
        "authentication_method hybrid_dss_server",
        "authentication_method hybrid_dss_client",
        "authentication_method xauth_psk_server",
        "authentication_method xauth_psk_client",
        "authentication_method xauth_rsa_server",
        "authentication_method xauth_rsa_client",
        "authentication_method dsssig",
        # sainfo
        "sainfo.group",
    }
)


def is_acted_upon(directive: str) -> bool:
    """True unless ``directive`` is listed in :data:`NOT_ACTED_UPON`."""
    return directive not in NOT_ACTED_UPON
