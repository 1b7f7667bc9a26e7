"""The errors of the admin socket, each saying which field or argument was wrong.

Three sides can be at fault, and each has its own type so callers never parse messages:

* ``AdminDecodeError``: bytes on the socket do not follow racoon's admin wire format
  (``field`` names the struct member, ``offset`` is where it starts in the message);
* ``SaoptsError``: the user wrote a racoonctl argument (SAOPTS, protocol, family...) wrongly;
* ``AdminCommandError``: the daemon understood the request and refuses or fails it, with an errno
  that travels in the reply's ``ac_errno`` field, as racoon's replies carry it.
"""

from __future__ import annotations

import errno as errno_mod
import os


class AdminError(Exception):
    """Base of every admin-socket error."""


class AdminDecodeError(AdminError):
    """A malformed admin message: ``field`` (racoon's member name) at byte ``offset``."""

    def __init__(self, field: str, offset: int, message: str) -> None:
        self.field = field
        self.offset = offset
        self.message = message
        super().__init__(f"{field} at offset {offset}: {message}")


class AdminEncodeError(AdminError):
    """A value that does not fit racoon's wire format (a port above 65535, a 5 GB reply...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class SaoptsError(AdminError):
    """A racoonctl argument the user got wrong; ``argument`` is the offending word (or None)."""

    def __init__(self, message: str, argument: str | None = None) -> None:
        self.message = message
        self.argument = argument
        super().__init__(message)


class AdminCommandError(AdminError):
    """The daemon's refusal of a command: sent back as an errno reply.

    ``errno`` is what racoon would put in ``ac_errno`` (``ENOENT`` for "no such SA",
    ``ENOTSUP`` for "not supported"...). ``message`` is pyracoon's own explanation; it travels as
    the body of the errno reply, which racoonctl ignores and pyracoonctl prints.
    """

    def __init__(self, errno: int, message: str | None = None) -> None:
        if errno == 0:
            # ac_errno 0 is success: the client would take the refusal for an answer
            raise ValueError("AdminCommandError needs a non-zero errno")
        self.errno = errno
        self.message = message or ""  # empty: the errno says it all, the reply has no body
        super().__init__(message or errno_text(errno))


class AdminSocketError(AdminError):
    """The admin socket could not be created, or a client could not reach it."""


def errno_text(code: int) -> str:
    """``strerror`` with the symbolic name, e.g. ``No such file or directory (ENOENT)``.

    racoon's own "failed" answer is ``ac_errno = -1`` (establish-sa with no matching remote),
    which ``strerror`` calls "Unknown error -1"; say instead where the reason is to be found.
    """
    if code == -1:
        return "the daemon could not do it (its log says why)"
    name = errno_mod.errorcode.get(code)
    text = os.strerror(code)
    return f"{text} ({name})" if name else text
