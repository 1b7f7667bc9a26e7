"""The ``mode_cfg``, ``ldapcfg`` and ``radiuscfg`` blocks (racoon.conf(5): mode_cfg, ldapcfg,
radiuscfg).

They configure ISAKMP mode-config and XAUTH (racoon's isakmp_cfg.c, isakmp_xauth.c), which
pyracoon does not implement: each block is parsed with racoon's checks and limits (isakmp_cfg.h
MAXNS, MAXWINS; racoon's radius server limit) so that a file racoon accepts is accepted and one it
refuses is refused, and the block as a whole is reported as not acted upon (docs/config.md,
"The support table").  The statements dispatch by :data:`MODE_CFG_STATEMENTS`,
:data:`LDAPCFG_STATEMENTS` and :data:`RADIUSCFG_STATEMENTS`.
"""

from __future__ import annotations

import ipaddress

from pyracoon.config.lexer import Kind, Token
from pyracoon.config.model import LdapCfg, ModeCfg, RadiusCfg, RadiusServer
from pyracoon.config.reader import Handler, Reader, Stream

__all__ = [
    "LDAPCFG_STATEMENTS",
    "MODE_CFG_STATEMENTS",
    "RADIUSCFG_STATEMENTS",
    "ldapcfg",
    "mode_cfg",
    "radiuscfg",
]

# mode_cfg limits (racoon isakmp_cfg.h MAXNS, MAXWINS; cfparse.y's RADIUS_MAX_SERVERS).
_MAXNS, _MAXWINS, _RADIUS_MAX_SERVERS = 3, 4, 5


# ---------------------------------------------------------------------- mode_cfg
def _choice(*choices: str) -> Handler:
    def handler(p: Reader, s: Stream, token: Token, cfg: ModeCfg) -> None:
        value = s.expect_word(choices, " or ".join(choices))
        setattr(cfg, str(token.value), str(value.value))

    return handler


def _network4(p: Reader, s: Stream, token: Token, cfg: ModeCfg) -> None:
    cfg.network4 = p.ipv4(s, "network")


def _netmask4(p: Reader, s: Stream, token: Token, cfg: ModeCfg) -> None:
    cfg.netmask4 = p.ipv4(s, "netmask")


def _name_servers(p: Reader, s: Stream, token: Token, cfg: ModeCfg) -> None:
    """``dns4`` (at most MAXNS) or ``nbns4``/``wins4`` (at most MAXWINS), comma-separated."""
    if token.value == "dns4":
        target, limit, label = cfg.dns4, _MAXNS, "DNS"
    else:
        target, limit, label = cfg.wins4, _MAXWINS, "WINS"

    def one() -> None:
        token = s.peek()
        if len(target) >= limit:
            raise token.error(f"No more than {limit} {label}")
        target.append(p.ipv4(s, label))

    p.comma_list(s, one)


def _split_network(p: Reader, s: Stream, token: Token, cfg: ModeCfg) -> None:
    kind = s.expect_word(("include", "local_lan"), "include or local_lan")
    cfg.split_network_type = str(kind.value)

    def net() -> None:
        address = p.ipv4(s, "SPLIT")
        prefix = s.expect(Kind.PREFIX, "a /prefix")
        if int(prefix.value) > 32:
            raise prefix.error("prefix length out of range")
        cfg.split_network.append(ipaddress.IPv4Network(f"{address}/{prefix.value}", strict=False))

    p.comma_list(s, net)


def _string_list(p: Reader, s: Stream, token: Token, cfg: ModeCfg) -> None:
    target: list[str] = getattr(cfg, str(token.value))
    p.comma_list(s, lambda: target.append(p.string(s)))


def _string(p: Reader, s: Stream, token: Token, cfg: object) -> None:
    setattr(cfg, str(token.value), p.string(s))


def _number(p: Reader, s: Stream, token: Token, cfg: object) -> None:
    setattr(cfg, str(token.value), p.number(s))


def _switch(p: Reader, s: Stream, token: Token, cfg: object) -> None:
    setattr(cfg, str(token.value), p.switch(s))


#: Every statement of a mode_cfg body (cfparse.y modecfg_stmt), keyword -> handler.
MODE_CFG_STATEMENTS: dict[str, Handler] = {
    "auth_source": _choice("system", "radius", "pam", "ldap"),
    "group_source": _choice("system", "ldap"),
    "conf_source": _choice("local", "radius", "ldap"),
    "accounting": _choice("none", "system", "radius", "pam"),
    "network4": _network4,
    "netmask4": _netmask4,
    "dns4": _name_servers,
    "nbns4": _name_servers,
    "wins4": _name_servers,
    "split_network": _split_network,
    "split_dns": _string_list,
    "auth_groups": _string_list,
    "default_domain": _string,
    "banner": _string,
    "pool_size": _number,
    "pfs_group": _number,
    "auth_throttle": _number,
    "save_passwd": _switch,
}


def mode_cfg(p: Reader, s: Stream, keyword: Token) -> None:
    p.section_block(s, keyword, MODE_CFG_STATEMENTS, ModeCfg)


# ---------------------------------------------------------------------- ldapcfg
def _ldap_version(p: Reader, s: Stream, token: Token, cfg: LdapCfg) -> None:
    value_token = s.peek()
    cfg.version = p.number(s)
    if cfg.version not in (2, 3):
        raise value_token.error("invalid ldap protocol version (2|3)")


#: Every statement of an ldapcfg body (cfparse.y ldapcfg_stmt), keyword -> handler.
LDAPCFG_STATEMENTS: dict[str, Handler] = {
    "version": _ldap_version,
    "debug": _number,
    "timeout": _number,
    "port": _number,
    **{
        name: _string
        for name in (
            "uri",
            "host",
            "base",
            "bind_dn",
            "bind_pw",
            "attr_user",
            "attr_addr",
            "attr_mask",
            "attr_group",
            "attr_member",
            "attr_device",
        )
    },
    "subtree": _switch,
}


def ldapcfg(p: Reader, s: Stream, keyword: Token) -> None:
    p.section_block(s, keyword, LDAPCFG_STATEMENTS, LdapCfg)


# ---------------------------------------------------------------------- radiuscfg
def _radius_server(p: Reader, s: Stream, token: Token, cfg: RadiusCfg) -> None:
    """``auth|acct "host" [port] "secret"``: at most five of each."""
    servers = cfg.auth if token.value == "auth" else cfg.acct
    if len(servers) >= _RADIUS_MAX_SERVERS:
        label = "auth" if token.value == "auth" else "account"
        raise token.error(f"maximum radius {label} servers exceeded")
    host = p.string(s, 'a host "..."')
    port = p.number(s) if s.at(Kind.NUMBER) else 0
    secret = p.string(s, 'a secret "..."')
    servers.append(RadiusServer(host, port, secret))


#: Every statement of a radiuscfg body (cfparse.y radcfg_stmt), keyword -> handler.
RADIUSCFG_STATEMENTS: dict[str, Handler] = {
    "auth": _radius_server,
    "acct": _radius_server,
    "timeout": _number,
    "retries": _number,
}


def radiuscfg(p: Reader, s: Stream, keyword: Token) -> None:
    p.section_block(s, keyword, RADIUSCFG_STATEMENTS, RadiusCfg)
