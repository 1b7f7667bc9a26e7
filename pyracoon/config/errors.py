"""Typed errors and warnings of the racoon.conf parser.

racoon reports a configuration error as ``FILE:LINE: "token" message`` and stops.  We keep the
same three facts -- which file, which line, which token -- as attributes of :class:`ConfigError`
so that the daemon can log them and tests can check them, and print them in one fixed shape:
``FILE:LINE: message near 'token'``.

Warnings do not stop parsing.  The most important kind says that a directive was understood but
pyracoon does not act on it yet: silently dropping a line of somebody's configuration is how
security settings get lost, so every such line is named (see :mod:`pyracoon.config.support`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigWarning"]


class ConfigError(Exception):
    """A racoon.conf that racoon would refuse (or that pyracoon cannot honour safely).

    ``file`` and ``line`` locate the offending token; ``token`` is its text as written
    (``<EOF>`` at the end of a file).  ``message`` is the bare explanation.  Line 0 means the
    file itself (it could not be read): the message then names it and stands alone.
    """

    def __init__(self, message: str, *, file: str, line: int, token: str) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.token = token
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line == 0:
            return self.message
        near = f" near '{self.token}'" if self.token else ""
        return f"{self.file}:{self.line}: {self.message}{near}"


@dataclass(frozen=True)
class ConfigWarning:
    """Something worth a log line that does not make the file invalid.

    ``directive`` is set when the warning is "parsed but not acted upon yet", and ``racoon``
    then says what racoon would do with the line (:data:`pyracoon.config.support.REPORTED`), so
    that whoever reads the log knows what they are missing.  ``str()`` is ``FILE:LINE: message``;
    :meth:`log_line` adds racoon's behaviour and is what the daemon logs.
    """

    file: str
    line: int
    message: str
    directive: str | None = None
    racoon: str | None = None

    @classmethod
    def not_acted_upon(cls, directive: str, *, file: str, line: int,
                       racoon: str | None = None) -> ConfigWarning:
        return cls(file, line, f"directive '{directive}' is parsed but not acted upon yet",
                   directive, racoon)

    def log_line(self) -> str:
        """The line to log: ``FILE:LINE: message (racoon: what racoon would do)``."""
        return f"{self} (racoon: {self.racoon})" if self.racoon else str(self)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"
