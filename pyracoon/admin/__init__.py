"""The admin socket: racoon's racoonctl protocol, the daemon's server end, and ``pyracoonctl``.

* ``protocol``: the wire format (``struct admin_com`` and its bodies), both directions;
* ``saopts``: racoonctl's SAOPTS arguments → an ``AdminIndex``;
* ``server``: ``AdminServer`` (asyncio, Unix socket) calling the daemon's ``AdminHandler``;
* ``clayout`` and ``records``: racoon's binary reply records (``struct ph1dump``, ``struct
  scheddump``, ``struct evt_async``, PF_KEY dumps) in the native C layout, both ways;
* ``render``: racoonctl's text layouts (ISAKMP SA table, schedule, events) for pyracoonctl;
* ``client`` and ``cli``: ``pyracoonctl``.

This package sits beside ``daemon``: the daemon imports it; it imports only the standard
library and ``pyracoon.kernel`` (PF_KEY messages and their ``setkey -D`` printer). See
docs/admin.md for the user's view.
"""

from .errors import (
    AdminCommandError,
    AdminDecodeError,
    AdminEncodeError,
    AdminError,
    AdminSocketError,
    SaoptsError,
)
from .protocol import (
    AdminCommand,
    AdminIndex,
    AdminProto,
    Reply,
    Request,
    SockAddr,
    XauthCredentials,
)
from .server import AdminHandler, AdminLog, AdminServer, Answer

__all__ = [
    "AdminCommand",
    "AdminCommandError",
    "AdminDecodeError",
    "AdminEncodeError",
    "AdminError",
    "AdminHandler",
    "AdminIndex",
    "AdminLog",
    "AdminProto",
    "AdminServer",
    "AdminSocketError",
    "Answer",
    "Reply",
    "Request",
    "SaoptsError",
    "SockAddr",
    "XauthCredentials",
]
