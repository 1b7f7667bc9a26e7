"""pyracoonctl against a real AdminServer with a fake handler: output, errors, exit status."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import pwd
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from admin_fakes import V4, FakeHandler, ListLog

from pyracoon.admin.cli import COMMANDS, UsageError, build, run
from pyracoon.admin.errors import AdminCommandError
from pyracoon.admin.protocol import (
    INDEX_LEN,
    PYRACOON_VERSION_WAIT,
    AdminCommand,
    AdminIndex,
    AdminProto,
    Reply,
    SockAddr,
    XauthCredentials,
)
from pyracoon.admin.records import (
    EventRecord,
    encode_event,
    encode_ph1dump,
    encode_sadb_dump,
    encode_schedule,
)
from pyracoon.admin.render import (
    Endpoint,
    Phase1Row,
    ScheduleRow,
    format_isakmp_sa,
    format_schedule,
)
from pyracoon.admin.server import AdminServer


class Result:
    def __init__(self, code: int, out: str, err: str, raw: bytes) -> None:
        self.code, self.out, self.err, self.raw = code, out, err, raw


async def ctl(*args: str, environ: dict[str, str] | None = None,
              password: str = "pw") -> Result:
    """Run pyracoonctl in a thread, so the server on this loop can answer it."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    err = io.StringIO()
    code = await asyncio.to_thread(run, list(args), stdout=out, stderr=err,
                                   environ=environ or {}, ask_password=lambda _: password,
                                   timeout=10)
    out.flush()
    return Result(code, raw.getvalue().decode(errors="replace"), err.getvalue(),
                  raw.getvalue())


Served = Callable[..., Awaitable[Result]]


@pytest.fixture
async def served(short_tmp: Path) -> AsyncIterator[tuple[FakeHandler, Served]]:
    """A server with a FakeHandler, and a ``ctl`` that talks to it with ``-s``."""
    handler = FakeHandler()
    path = str(short_tmp / "racoon.sock")
    async with AdminServer(path, handler, log=ListLog()):
        async def call(*args: str, **kw: object) -> Result:
            return await ctl("-s", path, *args, **kw)  # type: ignore[arg-type]
        yield handler, call


# ------------------------------------------------------------------ building requests


@pytest.mark.parametrize(("short", "long"), [
    ("rc", "reload-config"), ("sc", "show-schedule"), ("ss", "show-sa"), ("fs", "flush-sa"),
    ("ds", "delete-sa"), ("es", "establish-sa"), ("vc", "vpn-connect"),
    ("vd", "vpn-disconnect"), ("se", "show-event"), ("lu", "logout-user"), ("gc", "get-cert"),
    ("get-sa-cert", "get-cert")])
def test_short_forms(short: str, long: str) -> None:
    assert COMMANDS[short] == long


def test_requests_match_racoonctl() -> None:
    def req(*words: str) -> tuple[int, int, int | None, int]:
        r = build(list(words), 0, lambda _: "pw").request
        return r.command, r.proto, r.version, len(r.body)

    assert req("rc") == (0x0001, 0, 1, 0)
    assert req("ss", "esp") == (0x0101, 0x0202, 1, 0)
    assert req("fs", "ipsec") == (0x0102, 0x02FF, 1, 0)
    assert req("ds", "isakmp", "inet", "1.1.1.1", "2.2.2.2") == (0x0201, 0x01FF, 1, INDEX_LEN)
    assert req("es", "esp", "inet", "1.1.1.1", "2.2.2.2", "any") == (0x0202, 0x0202, 1, INDEX_LEN)
    assert req("es", "-n", "gw", "isakmp", "inet", "1.1.1.1", "2.2.2.2") == (
        0x0202, 0x01FF, 1, INDEX_LEN + 3)
    assert req("es", "-w", "ah", "inet", "1.1.1.1", "2.2.2.2") == (
        0x0202, 0x0201, PYRACOON_VERSION_WAIT, INDEX_LEN)
    assert req("es", "-u", "me", "isakmp", "inet", "1.1.1.1", "2.2.2.2")[0] == 0x0203
    assert req("lu", "alice") == (0x0205, 0, 1, 5)
    assert req("gc", "inet", "1.1.1.1", "2.2.2.2") == (0x0206, 0x01FF, 1, INDEX_LEN)
    assert req("se") == (0x0003, 0, 1, 0)
    # -l is applied to the records by pyracoonctl, as by racoonctl: the request has no body
    assert build(["ss", "isakmp"], 2, lambda _: "").request.body == b""


@pytest.mark.parametrize(("words", "message"), [
    (["frobnicate"], "invalid command 'frobnicate'"),
    (["show-sa"], "show-sa: insufficient arguments: which protocol"),
    (["show-sa", "bogus"], "show-sa: unknown protocol 'bogus'"),
    (["flush-sa", "internal"], "flush-sa: protocol 'internal' cannot be used here"),
    (["reload-config", "now"], "reload-config: too many arguments: 'now'"),
    (["es", "-n"], "establish-sa: -n needs an argument"),
    (["es", "-n", "gw", "esp", "inet", "1.1.1.1", "2.2.2.2"], "-n REMOTE applies to isakmp"),
    (["es", "-u", "me", "-n", "gw", "isakmp", "inet", "1.1.1.1", "2.2.2.2"],
     "-u and -n cannot be combined"),
    (["ds", "esp", "inet", "10.0.0.x", "10.0.0.2"], "delete-sa: bad address '10.0.0.x'"),
    (["lu", "a" * 32], "logout-user: bad login"),
    (["vd"], "vpn-disconnect: expected one VPN gateway"),
    (["gc", "1.1.1.1"], "get-cert: expected [inet|inet6] SRC DST"),
])
def test_usage_errors(words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        build(words, 0, lambda _: "")
    assert message in str(e.value)


# ------------------------------------------------------------------ against a server


ROWS = [
    Phase1Row(Endpoint(V4("192.0.2.1"), 500), Endpoint(V4("192.0.2.2"), 4500),
              bytes.fromhex("0011223344556677"), bytes.fromhex("8899aabbccddeeff"), 9, True,
              0x10, 2, 1_700_000_000, 2),
    Phase1Row(Endpoint(V4("192.0.2.1"), 500), Endpoint(V4("198.51.100.7"), 500),
              bytes.fromhex("0102030405060708"), bytes(8), 3, False, 0x10, 4, None, 0),
]


@pytest.mark.parametrize("longs", [0, 1, 2, 3])
async def test_show_sa_isakmp_formats_racoons_records(served: tuple[FakeHandler, Served],
                                                      longs: int) -> None:
    """The daemon sends struct ph1dump records; -l is applied here, as racoonctl does."""
    handler, call = served
    handler.answers["show_sa"] = encode_ph1dump(ROWS)
    r = await call(*["-l"] * longs, "show-sa", "isakmp")
    assert (r.code, r.err) == (0, "")
    assert r.out == format_isakmp_sa(ROWS, min(longs, 2))
    assert r.out.count("\n") == 3
    assert handler.calls == [("show_sa", AdminProto.ADMIN_PROTO_ISAKMP, 0)]  # no -l on the wire


async def test_show_sa_isakmp_with_a_partial_record_is_an_error(
        served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.answers["show_sa"] = encode_ph1dump(ROWS)[:-1]
    r = await call("show-sa", "isakmp")
    assert r.code == 1
    assert "not a whole number of" in r.err and r.err.startswith("pyracoonctl: show-sa: ph1dump")


async def test_show_sa_esp_of_an_old_text_reply_is_a_clear_error(
        served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.answers["show_sa"] = "No SAD entries.\n"
    r = await call("show-sa", "esp")
    assert r.code == 1 and "not a PF_KEY dump" in r.err


async def test_show_schedule_formats_scheddump(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    rows = [ScheduleRow(0, 30, 1_700_000_030, 1_700_000_000),
            ScheduleRow(1, 600, 1_700_000_600, 1_700_000_000)]
    handler.answers["show_schedule"] = encode_schedule(rows)
    r = await call("sc")
    assert r.out == format_schedule(rows) and r.out.count("\n") == 3


async def test_show_schedule_of_racoon_with_no_timer(served: tuple[FakeHandler, Served]) -> None:
    """racoon's sched_dump fails an empty schedule and racoon answers ENOMEM: the header."""
    handler, call = served
    handler.errors["show_schedule"] = AdminCommandError(errno.ENOMEM)
    r = await call("sc")
    assert (r.code, r.out, r.err) == (0, "index    tick     xtime    created\n", "")


async def test_output_gets_a_final_newline(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.answers["reload_config"] = "reloaded"
    r = await call("rc")
    assert r.out == "reloaded\n"


async def test_empty_answer_prints_nothing(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.answers["flush_sa"] = ""
    r = await call("fs", "esp")
    assert (r.code, r.out, r.err) == (0, "", "")
    assert handler.calls == [("flush_sa", AdminProto.ADMIN_PROTO_ESP)]


async def test_errno_reply_is_exit_1_with_the_reason(
        served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.errors["logout_user"] = AdminCommandError(errno.ENOTSUP,
                                                      "not supported by pyracoon yet")
    r = await call("lu", "alice")
    assert r.code == 1 and r.out == ""
    assert r.err.startswith("pyracoonctl: logout-user: not supported by pyracoon yet "
                            "(Operation not supported (")


async def test_errno_reply_without_message(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.errors["delete_sa"] = AdminCommandError(errno.ENOENT, "")
    r = await call("ds", "isakmp", "inet", "192.0.2.1", "192.0.2.2")
    assert r.code == 1
    assert "pyracoonctl: delete-sa: No such file or directory (ENOENT)" in r.err


async def test_establish_sa_already_up_is_success(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.errors["establish_sa"] = AdminCommandError(errno.EEXIST, "")
    r = await call("es", "isakmp", "inet", "192.0.2.1", "192.0.2.2")
    assert r.code == 0 and r.out == ""  # racoonctl prints nothing either
    assert r.err == "pyracoonctl: establish-sa: the SA is already established\n"


async def test_establish_sa_arguments(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    r = await call("es", "-w", "esp", "inet", "10.0.1.0/24", "10.0.2.0/24[80]", "tcp")
    assert r.code == 0 and r.out == "establish_sa done\n"
    index = AdminIndex(SockAddr(V4("10.0.1.0")), SockAddr(V4("10.0.2.0"), 80), 24, 24, 6)
    assert handler.calls[-1] == ("establish_sa", AdminProto.ADMIN_PROTO_ESP, index, True, None,
                                 None)
    r = await call("es", "-u", "alice@example.org", "isakmp", "inet", "192.0.2.1",
                   "192.0.2.2", password="s3cret")
    assert r.code == 0
    assert handler.calls[-1][-1] == XauthCredentials("alice@example.org", "s3cret")


async def test_vpn_connect_and_disconnect(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    r = await call("vc", "127.0.0.2")
    assert r.code == 0
    name, proto, index, wait, remote, user = handler.calls[-1]
    assert (name, proto, wait, remote, user) == (
        "establish_sa", AdminProto.ADMIN_PROTO_ISAKMP, True, None, None)
    assert index.dst.address == V4("127.0.0.2") and index.src.address.is_loopback
    r = await call("vd", "127.0.0.2")
    assert r.code == 0
    name, proto, index = handler.calls[-1]
    assert name == "delete_all_sa_dst" and str(index.src.address) == "0.0.0.0"
    assert index.dst.address == V4("127.0.0.2")


async def test_get_cert_writes_bytes(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    der = bytes([0x30, 0x82, 0x01, 0x0A, 0xFF, 0x00, 0x80])
    handler.answers["get_sa_cert"] = der
    r = await call("gc", "192.0.2.1", "192.0.2.2")
    assert r.code == 0 and r.raw == der


async def test_show_event_prints_each_event(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served

    src, dst = Endpoint(V4("192.0.2.1"), 500), Endpoint(V4("192.0.2.2"), 500)

    async def events() -> AsyncIterator[bytes]:
        yield encode_event(EventRecord(0x0100, 1_700_000_000, src, dst))
        yield encode_event(EventRecord(0x0101, 1_700_000_001, src, dst))
        yield encode_event(EventRecord(0x0102, 1_700_000_002, None, dst))
        yield encode_event(EventRecord(0x0201, 1_700_000_003, src, dst, 0x1234)) + b"attrs"

    handler.answers["show_event"] = events()
    r = await call("se")
    assert r.code == 0
    assert r.out.splitlines() == ["Phase 1 established : 192.0.2.1[500] -> 192.0.2.2[500]",
                                  "Phase 1 deleted : 192.0.2.1[500] -> 192.0.2.2[500]",
                                  "Phase 1 error: peer not responding : anonymous -> "
                                  "192.0.2.2[500]",
                                  "Phase 2 established : 192.0.2.1[500] -> 192.0.2.2[500]"]


async def test_hexdump(served: tuple[FakeHandler, Served]) -> None:
    handler, call = served
    handler.answers["reload_config"] = ""
    r = await call("-d", "rc")
    assert r.code == 0 and r.out == ""
    # racoon_hexdump layout, host order: ac_len 8, ac_cmd 0x8001, version 1, proto 0
    assert r.err == "request (8 bytes):\n 08000180 01000000\n" \
                    "reply (8 bytes):\n 08000100 00000000\n"


def test_hexdump_wraps_at_32_bytes() -> None:
    from pyracoon.admin.client import hexdump

    assert hexdump(bytes(range(40))) == (
        " 00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f\n"
        " 20212223 24252627\n")


# ------------------------------------------------------------------ failures before a reply


async def test_no_socket(short_tmp: Path) -> None:
    path = str(short_tmp / "missing.sock")
    r = await ctl("-s", path, "show-sa", "isakmp")
    assert r.code == 1
    assert r.err.startswith(f"pyracoonctl: show-sa: cannot connect to the admin socket {path} "
                            f"(No such file or directory): is pyracoon running, and is {path} "
                            "its `listen { adminsock }`?")


async def test_env_and_s_choose_the_socket(short_tmp: Path) -> None:
    env_path = str(short_tmp / "env.sock")
    r = await ctl("rc", environ={"PYRACOON_ADMINSOCK": env_path})
    assert env_path in r.err
    r = await ctl("-s", str(short_tmp / "opt.sock"), "rc",
                  environ={"PYRACOON_ADMINSOCK": env_path})
    assert "opt.sock" in r.err and env_path not in r.err


@pytest.mark.skipif(os.geteuid() == 0, reason="root is not refused by socket permissions")
async def test_permission_denied_hint(short_tmp: Path) -> None:
    path = str(short_tmp / "racoon.sock")
    async with AdminServer(path, FakeHandler(), mode=0o000, log=ListLog()):
        r = await ctl("-s", path, "rc")
    assert r.code == 1 and "(Permission denied)" in r.err and "run as root" in r.err


async def _bad_daemon(path: str, answer: bytes) -> asyncio.AbstractServer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, path)


@pytest.mark.parametrize(("answer", "message"), [
    (b"", "closed the connection after 0 bytes of the reply header"),
    (struct.pack("=HHHH", 100, 1, 0, 0) + b"abc", "after 11 of the 100 bytes"),
    (Reply(AdminCommand.ADMIN_SHOW_SCHED).encode(), "a reply to ADMIN_SHOW_SCHED"),
    (struct.pack("=HHHH", 2, 1, 0, 0), "shorter than its 8-byte header"),
])
async def test_broken_daemon(short_tmp: Path, answer: bytes, message: str) -> None:
    path = str(short_tmp / "bad.sock")
    server = await _bad_daemon(path, answer)
    try:
        r = await ctl("-s", path, "rc")
    finally:
        server.close()
    assert r.code == 1 and message in r.err and "Traceback" not in r.err


async def test_usage_exit_codes() -> None:
    r = await ctl("-h")
    assert r.code == 0 and r.out.startswith("Usage:")
    r = await ctl()
    assert r.code == 1 and "no command given" in r.err
    r = await ctl("-x", "rc")
    assert r.code == 1 and "option -x not recognized" in r.err


# ------------------------------------------------------------------ as a program


async def test_as_a_subprocess(served: tuple[FakeHandler, Served], short_tmp: Path) -> None:
    handler, _ = served
    handler.answers["show_sa"] = encode_sadb_dump([])
    env = {**os.environ, "PYRACOON_ADMINSOCK": str(short_tmp / "racoon.sock")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pyracoon.admin.cli", "ss", "esp", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert (proc.returncode, out, err) == (0, b"No SAD entries.\n", b"")

    env["PYRACOON_ADMINSOCK"] = str(short_tmp / "absent.sock")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pyracoon.admin.cli", "ss", "esp", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and out == b""
    assert b"cannot connect to the admin socket" in err and b"Traceback" not in err


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """Run ``run(argv)`` in a forked child that became ``nobody``: (exit code, stderr)."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no asyncio, just the client
        code = 99
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            err = io.StringIO()
            code = run(argv, stdout=io.StringIO(), stderr=err, environ={}, timeout=10)
            os.write(write_end, err.getvalue().encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        err_text = f.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err_text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
async def test_socket_mode_decides_who_may_connect(short_tmp: Path) -> None:
    os.chmod(short_tmp, 0o755)
    path = str(short_tmp / "racoon.sock")
    async with AdminServer(path, FakeHandler(), log=ListLog()):  # 0600 root
        code, err = await asyncio.to_thread(_as_nobody, ["-s", path, "rc"])
    assert code == 1
    assert "(Permission denied)" in err and "run as root or as that owner or group" in err
    async with AdminServer(path, FakeHandler(), mode=0o666, log=ListLog()):
        code, err = await asyncio.to_thread(_as_nobody, ["-s", path, "rc"])
    assert (code, err) == (0, "")


def test_general_options_after_the_command() -> None:
    from pyracoon.admin.cli import parse_options

    opts = parse_options(["show-sa", "isakmp", "-l", "-l", "-s", "/x.sock", "-d"], {})
    assert (opts.words, opts.long_format, opts.socket_path, opts.hexdump) == (
        ["show-sa", "isakmp"], 2, "/x.sock", True)
    opts = parse_options(["-l", "es", "-w", "-n", "gw", "isakmp", "inet", "1.1.1.1", "2.2.2.2"],
                         {"PYRACOON_ADMINSOCK": "/env.sock"})
    assert opts.words[:4] == ["es", "-w", "-n", "gw"] and opts.socket_path == "/env.sock"
    assert parse_options(["rc"], {}).socket_path == "/var/run/racoon/racoon.sock"
    with pytest.raises(UsageError, match="-s requires argument"):
        parse_options(["rc", "-s"], {})


def test_main_in_process(short_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pyracoon.admin.cli import main

    assert main(["-s", str(short_tmp / "none.sock"), "rc"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot connect to the admin socket" in captured.err
    assert main(["-h"]) == 0 and capsys.readouterr().out.startswith("Usage:")


def test_main_never_shows_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import pyracoon.admin.cli as cli

    def broken(*args: object, **kw: object) -> int:
        raise KeyError("bug")

    monkeypatch.setattr(cli, "run", broken)
    assert cli.main(["rc"]) == 1
    assert capsys.readouterr().err == "pyracoonctl: internal error: KeyError: 'bug'\n"


def test_password_that_cannot_be_read() -> None:
    def no_tty(prompt: str) -> str:
        raise EOFError

    with pytest.raises(UsageError, match="no password could be read"):
        build(["es", "-u", "me", "isakmp", "inet", "1.1.1.1", "2.2.2.2"], 0, no_tty)
