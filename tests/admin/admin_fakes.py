"""A fake AdminHandler that records its calls, a list log, and a raw-bytes client."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

from pyracoon.admin.protocol import AdminIndex, AdminProto, XauthCredentials
from pyracoon.admin.server import Answer

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


class ListLog:
    """AdminLog that keeps the lines, per level."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.infos: list[str] = []
        self.debugs: list[str] = []

    def error(self, text: str) -> None:
        self.errors.append(text)

    def info(self, text: str) -> None:
        self.infos.append(text)

    def debug(self, text: str) -> None:
        self.debugs.append(text)


class FakeHandler:
    """Answers ``"<method> done\\n"`` unless told otherwise; ``calls`` records the arguments."""

    def __init__(self, answers: dict[str, Any] | None = None,
                 errors: dict[str, Exception] | None = None) -> None:
        self.answers = answers or {}
        self.errors = errors or {}
        self.calls: list[tuple[Any, ...]] = []

    def _answer(self, name: str, *args: Any) -> Any:
        self.calls.append((name, *args))
        if name in self.errors:
            raise self.errors[name]
        return self.answers.get(name, f"{name} done\n")

    async def reload_config(self) -> Answer:
        return self._answer("reload_config")

    async def show_schedule(self) -> Answer:
        return self._answer("show_schedule")

    async def show_event(self) -> Answer | AsyncIterator[Answer]:
        return self._answer("show_event")

    async def show_sa(self, proto: AdminProto, verbose: int) -> Answer:
        return self._answer("show_sa", proto, verbose)

    async def flush_sa(self, proto: AdminProto) -> Answer:
        return self._answer("flush_sa", proto)

    async def delete_sa(self, proto: AdminProto, index: AdminIndex) -> Answer:
        return self._answer("delete_sa", proto, index)

    async def establish_sa(self, proto: AdminProto, index: AdminIndex, wait: bool,
                           remote_name: str | None,
                           user: XauthCredentials | None) -> Answer:
        return self._answer("establish_sa", proto, index, wait, remote_name, user)

    async def delete_all_sa_dst(self, proto: AdminProto, index: AdminIndex) -> Answer:
        return self._answer("delete_all_sa_dst", proto, index)

    async def logout_user(self, login: str) -> Answer:
        return self._answer("logout_user", login)

    async def get_sa_cert(self, index: AdminIndex) -> Answer:
        return self._answer("get_sa_cert", index)


async def raw_exchange(path: str, data: bytes) -> bytes:
    """Send ``data``, shut the sending side, and return everything the server sends back."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
