"""The errors of pysetkey, each carrying what setkey's own message shows."""

from __future__ import annotations


class SetkeyError(Exception):
    """Base of pysetkey's errors."""


class SetkeySyntaxError(SetkeyError):
    """Input setkey would reject while parsing: ``line N: MESSAGE at [TOKEN]``.

    ``token`` is the text setkey's ``yytext`` holds at that moment (the offending word, the
    contents of a quoted key, the policy text, or ``;`` when the check runs at the end of a
    command).
    """

    def __init__(self, line: int, message: str, token: str) -> None:
        self.line = line
        self.message = message
        self.token = token
        #: the warnings setkey printed before the error (``parse`` fills them in)
        self.warnings: list[str] = []
        super().__init__(f"line {line}: {message} at [{token}]")

    def render(self) -> str:
        return f"line {self.line}: {self.message} at [{self.token}]"


class PolicySyntaxError(SetkeyError):
    """A policy string ``ipsec_set_policy`` rejects; ``message`` is libipsec's strerror text.

    ``detail`` is the extra line libipsec's own yacc parser prints to stderr for a plain syntax
    error (``libipsec: syntax error while parsing "..."``), or None.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        self.message = message
        self.detail = detail
        super().__init__(message)
