"""AdminServer over a real Unix socket with a fake handler: creation, replies, bad clients."""

from __future__ import annotations

import asyncio
import errno
import grp
import os
import pwd
import socket
import stat
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from admin_fakes import V4, FakeHandler, ListLog, raw_exchange

from pyracoon.admin.clayout import CAdminComIndexes
from pyracoon.admin.client import AdminClient
from pyracoon.admin.errors import AdminCommandError, AdminSocketError
from pyracoon.admin.protocol import (
    AdminCommand,
    AdminIndex,
    AdminProto,
    Reply,
    Request,
    SockAddr,
    XauthCredentials,
)
from pyracoon.admin.server import AdminServer


@pytest.fixture
def sock_path(short_tmp: Path) -> Iterator[str]:
    yield str(short_tmp / "racoon.sock")


async def _exchange(path: str, request: Request, stream: bool = False) -> list[Reply]:
    client = AdminClient(path, timeout=10)
    return await asyncio.to_thread(lambda: list(client.exchange(request, stream=stream)))


INDEX = AdminIndex(SockAddr(V4("192.0.2.1")), SockAddr(V4("192.0.2.2"), 500), 24, 32, 6)


# ------------------------------------------------------------------ the socket file


async def test_socket_is_0600_by_default_and_removed_on_close(sock_path: str) -> None:
    server = AdminServer(sock_path, FakeHandler(), log=ListLog())
    await server.start()
    st = os.lstat(sock_path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    await server.close()
    assert not os.path.exists(sock_path)


async def test_configured_mode(sock_path: str) -> None:
    async with AdminServer(sock_path, FakeHandler(), mode=0o660, log=ListLog()):
        assert stat.S_IMODE(os.lstat(sock_path).st_mode) == 0o660


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
async def test_configured_owner_and_group(sock_path: str) -> None:
    user = pwd.getpwnam("nobody")
    group = grp.getgrgid(user.pw_gid)
    async with AdminServer(sock_path, FakeHandler(), owner="nobody", group=group.gr_name,
                           mode=0o640, log=ListLog()):
        st = os.lstat(sock_path)
        assert (st.st_uid, st.st_gid) == (user.pw_uid, group.gr_gid)
        assert stat.S_IMODE(st.st_mode) == 0o640


async def test_unknown_owner_is_an_error(sock_path: str) -> None:
    with pytest.raises(AdminSocketError, match="owner 'no-such-user-x' is not a user"):
        await AdminServer(sock_path, FakeHandler(), owner="no-such-user-x").start()
    with pytest.raises(AdminSocketError, match="group 'no-such-group-x' is not a group"):
        await AdminServer(sock_path, FakeHandler(), group="no-such-group-x").start()
    assert not os.path.exists(sock_path)


async def test_refuses_to_replace_a_regular_file(sock_path: str) -> None:
    Path(sock_path).write_text("precious")
    with pytest.raises(AdminSocketError, match="exists and is not a socket"):
        await AdminServer(sock_path, FakeHandler()).start()
    assert Path(sock_path).read_text() == "precious"


async def test_refuses_a_live_socket_but_replaces_a_stale_one(sock_path: str) -> None:
    async with AdminServer(sock_path, FakeHandler(), log=ListLog()):
        with pytest.raises(AdminSocketError, match="another process is listening"):
            await AdminServer(sock_path, FakeHandler()).start()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)
    stale.close()  # the file stays, nobody listens: what a crashed daemon leaves
    async with AdminServer(sock_path, FakeHandler(), log=ListLog()):
        replies = await _exchange(sock_path, Request(AdminCommand.ADMIN_RELOAD_CONF))
        assert replies[0].errno == 0


async def test_creates_a_missing_directory(short_tmp: Path) -> None:
    path = str(short_tmp / "run" / "racoon" / "racoon.sock")
    async with AdminServer(path, FakeHandler(), log=ListLog()):
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


async def test_path_too_long(short_tmp: Path) -> None:
    with pytest.raises(AdminSocketError, match="at most 107"):
        await AdminServer(str(short_tmp / ("x" * 120)), FakeHandler()).start()


async def test_close_leaves_a_replacement_alone(sock_path: str) -> None:
    server = AdminServer(sock_path, FakeHandler(), log=ListLog())
    await server.start()
    os.unlink(sock_path)
    Path(sock_path).write_text("someone else's")
    await server.close()
    assert Path(sock_path).read_text() == "someone else's"


# ------------------------------------------------------------------ commands


async def test_every_command_reaches_the_handler(sock_path: str) -> None:
    handler = FakeHandler()
    creds = XauthCredentials("alice", "pw")
    async with AdminServer(sock_path, handler, log=ListLog()):
        cases = [
            (Request(AdminCommand.ADMIN_RELOAD_CONF), ("reload_config",)),
            (Request(AdminCommand.ADMIN_SHOW_SCHED), ("show_schedule",)),
            (Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF), ("show_sa", 0x01FF, 0)),
            (Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF, b"\x02"), ("show_sa", 0x01FF, 2)),
            (Request(AdminCommand.ADMIN_FLUSH_SA, 0x02FF), ("flush_sa", 0x02FF)),
            (Request(AdminCommand.ADMIN_DELETE_SA, 0x0202, INDEX.encode()),
             ("delete_sa", 0x0202, INDEX)),
            (Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x0202, INDEX.encode()),
             ("establish_sa", 0x0202, INDEX, False, None, None)),
            (Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x01FF, INDEX.encode() + b"gw\0", 2),
             ("establish_sa", 0x01FF, INDEX, True, "gw", None)),
            (Request(AdminCommand.ADMIN_ESTABLISH_SA_PSK, 0x01FF,
                     INDEX.encode() + creds.encode()),
             ("establish_sa", 0x01FF, INDEX, False, None, creds)),
            (Request(AdminCommand.ADMIN_DELETE_ALL_SA_DST, 0x01FF, INDEX.encode()),
             ("delete_all_sa_dst", 0x01FF, INDEX)),
            (Request(AdminCommand.ADMIN_LOGOUT_USER, 0, b"alice"), ("logout_user", "alice")),
            (Request(AdminCommand.ADMIN_GET_SA_CERT, 0x01FF, INDEX.encode()),
             ("get_sa_cert", INDEX)),
        ]
        for request, call in cases:
            replies = await _exchange(sock_path, request)
            assert len(replies) == 1
            reply = replies[0]
            assert (reply.command, reply.proto, reply.errno) == (
                request.command, request.proto, 0)
            assert handler.calls[-1] == call
            assert reply.text() == f"{call[0]} done\n"


async def test_long_reply(sock_path: str) -> None:
    body = "".join(f"line {i:06d}\n" for i in range(20000))  # 240000 bytes
    handler = FakeHandler(answers={"show_sa": body})
    async with AdminServer(sock_path, handler, log=ListLog()):
        raw = await raw_exchange(
            sock_path, Request(AdminCommand.ADMIN_SHOW_SA, 0x02FF).encode())
        length, cmd, high, proto = struct.unpack_from("=HHHH", raw)
        assert cmd == 0x8101 and proto == 0x02FF
        assert length | high << 16 == len(raw) == 8 + len(body)
        assert Reply.decode(raw).text() == body


async def test_errno_reply_carries_the_message(sock_path: str) -> None:
    handler = FakeHandler(errors={"get_sa_cert": AdminCommandError(
        errno.ENOTSUP, "not supported by pyracoon yet")})
    async with AdminServer(sock_path, handler, log=ListLog()):
        (reply,) = await _exchange(
            sock_path, Request(AdminCommand.ADMIN_GET_SA_CERT, 0x01FF, INDEX.encode()))
        assert reply.errno == errno.ENOTSUP
        assert reply.text() == "not supported by pyracoon yet"


async def test_protocol_checks_answer_enotsup(sock_path: str) -> None:
    log = ListLog()
    handler = FakeHandler()
    async with AdminServer(sock_path, handler, log=log):
        for request in (Request(AdminCommand.ADMIN_SHOW_SA, 0x0999),
                        Request(AdminCommand.ADMIN_ESTABLISH_SA, 0x02FF, INDEX.encode()),
                        Request(AdminCommand.ADMIN_GET_SA_CERT, 0x0202, INDEX.encode()),
                        Request(0x0777)):
            (reply,) = await _exchange(sock_path, request)
            assert reply.errno == errno.ENOTSUP, request
        assert handler.calls == []
        assert "invalid command: 1911" in log.errors


# ------------------------------------------------------------------ bad clients


async def test_malformed_body_gets_einval_and_a_log_line(sock_path: str) -> None:
    log = ListLog()
    handler = FakeHandler()
    raw = bytearray(INDEX.encode())
    src = CAdminComIndexes.src.offset
    struct.pack_into("=H", raw, src, 99)
    async with AdminServer(sock_path, handler, log=log):
        (reply,) = await _exchange(
            sock_path, Request(AdminCommand.ADMIN_DELETE_SA, 0x0202, bytes(raw)))
        assert reply.errno == errno.EINVAL
        assert f"src.ss_family at offset {8 + src}" in reply.text()
        assert any("src.ss_family" in line for line in log.errors)
        assert handler.calls == []
        # and the server still serves
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_RELOAD_CONF))
        assert reply.errno == 0


async def test_short_ac_len_gets_einval(sock_path: str) -> None:
    log = ListLog()
    async with AdminServer(sock_path, FakeHandler(), log=log):
        raw = await raw_exchange(sock_path, struct.pack("=HHHH", 4, 0x8001, 1, 0))
        reply = Reply.decode(raw)
        assert reply.errno == errno.EINVAL and "ac_len" in reply.text()
        assert log.errors


async def test_truncated_request_gets_einval(sock_path: str) -> None:
    log = ListLog()
    async with AdminServer(sock_path, FakeHandler(), log=log):
        # announces 268 bytes, sends 20, then shuts its sending side
        raw = await raw_exchange(sock_path, struct.pack("=HHHH", 268, 0x8201, 1, 0x202)
                                 + bytes(12))
        reply = Reply.decode(raw)
        assert reply.errno == errno.EINVAL
        assert "says 268 bytes but the client sent 8 + 12" in reply.text()


async def test_half_header_is_logged_and_dropped(sock_path: str) -> None:
    log = ListLog()
    async with AdminServer(sock_path, FakeHandler(), log=log):
        assert await raw_exchange(sock_path, b"\x08\x00\x01") == b""
        assert any("invalid header length" in line for line in log.errors)
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_RELOAD_CONF))
        assert reply.errno == 0


async def test_silent_client_times_out(sock_path: str) -> None:
    log = ListLog()
    async with AdminServer(sock_path, FakeHandler(), log=log, read_timeout=0.2):
        reader, writer = await asyncio.open_unix_connection(sock_path)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert any("no command within" in line for line in log.errors)


async def test_handler_crash_is_eio_not_death(sock_path: str) -> None:
    log = ListLog()
    handler = FakeHandler(errors={"show_schedule": RuntimeError("boom")})
    async with AdminServer(sock_path, handler, log=log):
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_SHOW_SCHED))
        assert reply.errno == errno.EIO and "RuntimeError: boom" in reply.text()
        assert any("boom" in line for line in log.errors)
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_RELOAD_CONF))
        assert reply.errno == 0


async def test_unsendable_answer_is_efbig(sock_path: str) -> None:
    handler = FakeHandler(answers={"show_sa": _Huge()})
    async with AdminServer(sock_path, handler, log=ListLog()):
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF))
        assert reply.errno == errno.EFBIG


class _Huge(bytes):
    """Pretends to be longer than a reply can be, without allocating 4 GiB."""

    def __len__(self) -> int:
        return 0x1_0000_0000


# ------------------------------------------------------------------ pushed events


async def test_show_event_stream(sock_path: str) -> None:
    async def events() -> AsyncIterator[str]:
        yield "Phase 1 established : 192.0.2.1[500] -> 192.0.2.2[500]\n"
        yield "Phase 2 established : 192.0.2.1[500] -> 192.0.2.2[500]\n"

    handler = FakeHandler(answers={"show_event": events()})
    async with AdminServer(sock_path, handler, log=ListLog()):
        replies = await _exchange(sock_path, Request(AdminCommand.ADMIN_SHOW_EVT), stream=True)
        assert [r.text() for r in replies] == [
            "", "Phase 1 established : 192.0.2.1[500] -> 192.0.2.2[500]\n",
            "Phase 2 established : 192.0.2.1[500] -> 192.0.2.2[500]\n"]
        assert all(r.command == AdminCommand.ADMIN_SHOW_EVT for r in replies)


async def test_stream_ends_when_the_client_leaves(sock_path: str) -> None:
    finished = asyncio.Event()
    never = asyncio.Event()

    async def events() -> AsyncIterator[str]:
        try:
            yield "first\n"
            await never.wait()
            yield "never sent\n"
        finally:
            finished.set()

    handler = FakeHandler(answers={"show_event": events()})
    async with AdminServer(sock_path, handler, log=ListLog()):
        reader, writer = await asyncio.open_unix_connection(sock_path)
        writer.write(Request(AdminCommand.ADMIN_SHOW_EVT).encode())
        await reader.readexactly(8)  # the empty reply
        head = await reader.readexactly(8)
        assert await reader.readexactly(struct.unpack_from("=H", head)[0] - 8) == b"first\n"
        writer.close()
        await asyncio.wait_for(finished.wait(), 5)


async def _establish_raw(path: str, version: int | None) -> list[tuple[int, int, bytes]]:
    """An establish-sa request, then every message until the daemon closes: (ac_cmd,
    ac_proto, body) each, read as racoonctl reads them."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(Request(AdminCommand.ADMIN_ESTABLISH_SA, AdminProto.ADMIN_PROTO_ISAKMP,
                         INDEX.encode(), version).encode())
    got = []
    try:
        while head := await asyncio.wait_for(reader.read(8), 5):
            length, cmd, third, proto = struct.unpack("=HHHH", head)
            assert third == 0
            got.append((cmd, proto, await reader.readexactly(length - 8)))
    finally:
        writer.close()
    return got


async def test_establish_stream_is_pushed_as_events_then_closed(sock_path: str) -> None:
    """racoon's evt.c sends every pushed message as ADMIN_SHOW_EVT with protocol 0, also after
    an establish-sa (racoonctl -w tells events by that), and closes when the SA's list ends."""
    async def events() -> AsyncIterator[bytes]:
        yield b"up"
        yield b"cfg"

    handler = FakeHandler(answers={"establish_sa": events()})
    async with AdminServer(sock_path, handler, log=ListLog()):
        got = await _establish_raw(sock_path, 1)
    assert got == [(AdminCommand.ADMIN_ESTABLISH_SA, AdminProto.ADMIN_PROTO_ISAKMP, b""),
                   (AdminCommand.ADMIN_SHOW_EVT, 0, b"up"),
                   (AdminCommand.ADMIN_SHOW_EVT, 0, b"cfg")]


async def test_establish_stream_not_pushed_to_version_0(sock_path: str) -> None:
    """A client without ADMIN_FLAG_VERSION reads one reply (racoon's admin.c subscribes only
    version >= 1): the stream is not sent, and it is closed so its subscription goes."""
    closed = asyncio.Event()

    class Stream:
        def __aiter__(self) -> Stream:
            return self

        async def __anext__(self) -> bytes:
            return b"never sent"

        async def aclose(self) -> None:
            closed.set()

    handler = FakeHandler(answers={"establish_sa": Stream()})
    async with AdminServer(sock_path, handler, log=ListLog()):
        got = await _establish_raw(sock_path, None)
        await asyncio.wait_for(closed.wait(), 5)
    assert got == [(AdminCommand.ADMIN_ESTABLISH_SA, AdminProto.ADMIN_PROTO_ISAKMP, b"")]


async def test_close_ends_running_connections(sock_path: str) -> None:
    never = asyncio.Event()

    async def events() -> AsyncIterator[str]:
        yield "first\n"
        await never.wait()

    server = AdminServer(sock_path, FakeHandler(answers={"show_event": events()}), log=ListLog())
    await server.start()
    reader, writer = await asyncio.open_unix_connection(sock_path)
    writer.write(Request(AdminCommand.ADMIN_SHOW_EVT).encode())
    await reader.readexactly(8 + 8 + 6)
    await asyncio.wait_for(server.close(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()



async def test_from_config(short_tmp: Path) -> None:
    from pyracoon.config import parse_string

    path = str(short_tmp / "ctl.sock")
    conf = parse_string(f'listen {{ adminsock "{path}" "root" "root" 660; }}')
    server = AdminServer.from_config(conf.listen.adminsock, FakeHandler(), log=ListLog())
    assert server is not None and server.mode == 0o660
    async with server:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
        (reply,) = await _exchange(path, Request(AdminCommand.ADMIN_RELOAD_CONF))
        assert reply.errno == 0
    conf = parse_string("listen { adminsock disabled; }")
    assert AdminServer.from_config(conf.listen.adminsock, FakeHandler()) is None


async def test_odd_handler_answers(sock_path: str) -> None:
    log = ListLog()
    handler = FakeHandler(answers={"reload_config": None, "show_schedule": 42,
                                   "show_sa": bytearray(b"ba\n")})
    async with AdminServer(sock_path, handler, log=log):
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_RELOAD_CONF))
        assert (reply.errno, reply.body) == (0, b"")
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_SHOW_SCHED))
        assert reply.errno == errno.EIO and "answered a int" in reply.text()
        (reply,) = await _exchange(sock_path, Request(AdminCommand.ADMIN_SHOW_SA, 0x01FF))
        assert (reply.errno, reply.body) == (0, b"ba\n")


def test_command_error_needs_an_errno() -> None:
    with pytest.raises(ValueError):
        AdminCommandError(0, "fine")
    assert str(AdminCommandError(errno.ENOENT)) == "No such file or directory (ENOENT)"
    assert str(AdminCommandError(-1)) == "the daemon could not do it (its log says why)"
