"""pyracoon-kernel as a real process: shared state across clients, signals, refusals, backends."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess

import pytest
from pyracoon_testing import start_kernel, tool

from pyracoon.kernel.base import BACKENDS, KernelUnavailable, open_kernel
from pyracoon.kernel.pfkey import (
    SA,
    SA2,
    Address,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    Policy,
    encode,
)
from pyracoon.kernel.sadb import AuthAlg, EncAlg, ExtType, Mode, MsgType, SaType

ip = ipaddress.ip_address


def esp_add(spi: int, hard: int = 0, soft: int = 0) -> Message:
    m = Message(MsgType.ADD, SaType.ESP)
    m.add(Key(ExtType.KEY_ENCRYPT, b"This is a Secret Key !!!"))
    m.add(Key(ExtType.KEY_AUTH, b"This is a Secret Key"))
    if hard:
        m.add(Lifetime(ExtType.LIFETIME_HARD, addtime=hard))
    if soft:
        m.add(Lifetime(ExtType.LIFETIME_SOFT, addtime=soft))
    m.add(SA(spi, 0, 0, AuthAlg.SHA1HMAC, EncAlg.THREEDESCBC, 0x40)).add(SA2(Mode.ANY, 0, 0))
    m.add(Address(ExtType.ADDRESS_SRC, ip("::1"))).add(Address(ExtType.ADDRESS_DST, ip("::2")))
    return m


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("pyracoon-kernel"), *args], capture_output=True, text=True, timeout=30, env=env
    )


def test_two_processes_share_one_kernel(kernel_server):
    with open_kernel(kernel_server.spec) as a, open_kernel(kernel_server.spec) as b:
        b.request(Message(MsgType.REGISTER, SaType.ESP))
        assert a.request(esp_add(0x111)).errno == 0
        broadcast = b.recv(2)
        assert broadcast.type == MsgType.ADD and broadcast.sa.spi == 0x111
        # Linux's af_key broadcasts an ADD with its keys (pfkey_xfrm_state2msg, add_keys=1)
        assert broadcast.key(ExtType.KEY_ENCRYPT).key == b"This is a Secret Key !!!"
        b.send(Message(MsgType.DUMP, seq=1, pid=b.pid))
        dumped = b.recv(2)
        assert dumped.type == MsgType.DUMP and dumped.seq == 0
        assert dumped.key(ExtType.KEY_ENCRYPT).key == b"This is a Secret Key !!!"


def test_environment_variable_selects_the_kernel(kernel_server, monkeypatch):
    monkeypatch.setenv("PYRACOON_KERNEL", kernel_server.spec)
    with open_kernel() as k:
        assert k.request(Message(MsgType.X_SPDFLUSH)).errno == 0


def test_packet_command_provokes_an_acquire(kernel_server):
    with open_kernel(kernel_server.spec) as racoon:
        racoon.request(Message(MsgType.REGISTER, SaType.ESP))
        req = IpsecRequest(50, Mode.TRANSPORT, 1, 0)
        pol = Message(MsgType.X_SPDADD).add(Policy(2, 2, 0, 0x80000000, [req]))
        pol.add(Address(ExtType.ADDRESS_SRC, ip("::"), 0, 0, 255))
        pol.add(Address(ExtType.ADDRESS_DST, ip("::"), 0, 0, 255))
        assert racoon.request(pol).errno == 0
        out = run("--kernel", kernel_server.spec, "packet", "::1", "::2", "udp", "1000", "53")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "clear (ACQUIRE sent) (no SA yet, level use)"
        acq = racoon.recv(2)
        assert acq.type == MsgType.ACQUIRE and acq.dst.addr == ip("::2")


def test_manual_clock_fires_lifetimes(manual_kernel_server):
    spec = manual_kernel_server.spec
    with open_kernel(spec) as racoon:
        racoon.request(Message(MsgType.REGISTER, SaType.ESP))
        assert racoon.request(esp_add(0x200, hard=180, soft=144)).errno == 0
        assert run("--kernel", spec, "advance", "150").returncode == 0
        soft = racoon.recv(2)
        assert soft.type == MsgType.EXPIRE and soft.get(ExtType.LIFETIME_SOFT) is not None
        run("--kernel", spec, "advance", "30")
        hard = racoon.recv(2)
        assert hard.type == MsgType.EXPIRE and hard.get(ExtType.LIFETIME_HARD) is not None


def test_advance_on_the_real_clock_is_refused(kernel_server):
    out = run("--kernel", kernel_server.spec, "advance", "5")
    assert out.returncode == 1
    assert "--manual-clock" in out.stderr and "Traceback" not in out.stderr


def test_second_server_on_the_same_path_is_refused(kernel_server):
    out = run("--listen", kernel_server.path)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"pyracoon-kernel: another pyracoon-kernel is already serving {kernel_server.path}; "
        "stop it first or choose another path"
    )
    with open_kernel(kernel_server.spec) as k:  # the first one is unharmed
        assert k.request(Message(MsgType.X_SPDFLUSH)).errno == 0


def test_sigterm_stops_cleanly_and_removes_the_socket(short_tmp):
    k = start_kernel(str(short_tmp / "k.sock"))
    with open_kernel(k.spec) as c:
        c.request(Message(MsgType.FLUSH))
        assert k.stop() == 0
    assert not os.path.exists(k.path)
    assert "Traceback" not in k.proc.stderr.read()


def test_stale_socket_of_a_killed_server_is_replaced(short_tmp):
    path = str(short_tmp / "k.sock")
    first = start_kernel(path)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    assert os.path.exists(path)
    second = start_kernel(path)
    try:
        with open_kernel(second.spec) as c:
            assert c.request(Message(MsgType.FLUSH)).errno == 0
    finally:
        second.stop()


def test_refuses_to_replace_a_regular_file(short_tmp):
    path = short_tmp / "not-a-socket"
    path.write_text("keep me")
    out = run("--listen", str(path))
    assert out.returncode == 1 and "is not a socket" in out.stderr
    assert path.read_text() == "keep me"


def test_malformed_bytes_on_the_socket_get_einval(kernel_server):
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(kernel_server.path)
        s.settimeout(5)
        s.send(bytes([2, 3, 0, 3, 9, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0]))
        reply = s.recv(4096)
    assert reply[2] == 22 and reply[8] == 7  # errno EINVAL, seq echoed


def test_pfkey_backend_missing_is_one_sentence():
    try:
        s = socket.socket(15, socket.SOCK_RAW, 2)
    except OSError:
        pass
    else:
        s.close()
        pytest.skip("this machine has AF_KEY")
    with pytest.raises(KernelUnavailable) as exc:
        open_kernel("pfkey")
    text = str(exc.value)
    assert "no PF_KEY socket" in text and "--kernel unix:PATH" in text and "\n" not in text


def test_unknown_and_missing_kernels_are_explained(short_tmp):
    with pytest.raises(KernelUnavailable, match="unknown kernel 'bogus'") as exc:
        open_kernel("bogus")
    # only what works in this version is offered, and from the one list of backends
    assert str(exc.value).endswith(f"choose one of {', '.join(BACKENDS)}")
    for name in BACKENDS:  # every backend offered is one open_kernel knows
        if name != "unix:PATH":
            try:
                open_kernel(name).close()
            except KernelUnavailable as e:
                assert "unknown kernel" not in str(e)
    with pytest.raises(KernelUnavailable, match="no simulated kernel at"):
        open_kernel(f"unix:{short_tmp}/nothing.sock")


def test_requests_sent_just_before_closing_are_still_carried_out(kernel_server):
    with open_kernel(kernel_server.spec) as k:
        k.request(esp_add(0x301))
        k.request(esp_add(0x302))
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(kernel_server.path)
        for spi in (0x301, 0x302):
            m = Message(MsgType.DELETE, SaType.ESP, seq=spi, pid=1).add(SA(spi))
            m.add(Address(ExtType.ADDRESS_SRC, ip("::1"))).add(
                Address(ExtType.ADDRESS_DST, ip("::2"))
            )
            s.send(encode(m))
    with open_kernel(kernel_server.spec) as k:
        assert k.request(Message(MsgType.DUMP)).errno == errno.ENOENT


def inject(path: str, data: bytes) -> dict:
    """The test hook: have pyracoon-kernel pass ``data`` to every other client, as is."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(path)
        s.settimeout(5)
        s.send(json.dumps({"op": "inject", "hex": data.hex()}).encode())
        return json.loads(s.recv(4096))


def test_inject_is_refused_without_test_hooks(kernel_server):
    answer = inject(kernel_server.path, b"\x02" * 16)
    assert answer == {"error": "inject is a test hook; start the kernel --test-hooks"}


def test_a_client_reads_past_an_injected_undecodable_message(short_tmp):
    from pyracoon.kernel.base import KernelMessageUndecodable

    k = start_kernel(str(short_tmp / "k.sock"), "--test-hooks")
    try:
        with open_kernel(k.spec) as c:
            c.request(Message(MsgType.FLUSH))  # connected and served
            bad = bytes([2, 99, 0, 0, 3, 0, 0, 0]) + bytes(8) + struct.pack("=HH", 9, 1) + bytes(4)
            assert inject(k.path, bad) == {"delivered": 1}
            with pytest.raises(KernelMessageUndecodable) as exc:
                c.recv(5)
            assert exc.value.msg_type == 99 and exc.value.error.field == "sadb_ext_len"
            assert c.request(Message(MsgType.FLUSH)).errno == 0
    finally:
        assert k.stop() == 0


def test_dump_times_come_from_the_kernels_clock(manual_kernel_server):
    """After ``advance 180`` the SA is 180 s old by the kernel's clock, whatever the wall says."""
    env = dict(os.environ, PYRACOON_KERNEL=manual_kernel_server.spec)
    with open_kernel(manual_kernel_server.spec) as k:
        assert k.request(esp_add(0x111)).errno == 0
        before = k.now()
    adv = subprocess.run(
        [tool("pyracoon-kernel"), "advance", "180"], env=env, capture_output=True, text=True
    )
    assert adv.returncode == 0, adv.stderr
    with open_kernel(manual_kernel_server.spec) as k:
        assert k.now() == before + 180
    out = subprocess.run([tool("pysetkey"), "-D"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "\tdiff: 180(s)\thard: 0(s)\tsoft: 0(s)\n" in out.stdout, out.stdout


def test_background_returns_once_the_kernel_serves(short_tmp):
    """A script may use the kernel on the very next line: no sleep, no start-up race."""
    import time

    for n in range(5):
        sock, pidfile = short_tmp / f"k{n}.sock", short_tmp / f"k{n}.pid"
        started = subprocess.run(
            [tool("pyracoon-kernel"), "--listen", str(sock), "--background",
             "--pidfile", str(pidfile)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        pid = int(pidfile.read_text())
        assert started.stderr == (
            f"pyracoon-kernel: serving a simulated kernel on {sock} (pid {pid})\n"
        )
        env = dict(os.environ, PYRACOON_KERNEL=f"unix:{sock}")
        dumped = subprocess.run([tool("pysetkey"), "-D"], env=env, capture_output=True, text=True)
        assert (dumped.returncode, dumped.stdout) == (0, "No SAD entries.\n"), dumped.stderr
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (sock.exists() or pidfile.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not sock.exists() and not pidfile.exists()


def test_dump_fails_when_the_kernel_cannot_be_reached(short_tmp):
    """Whatever the reason the kernel is not there, -D says so and does not exit 0."""
    stale = short_tmp / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(str(stale))  # a socket file nobody listens on (a killed server's)
    for spec in (f"unix:{short_tmp}/none.sock", f"unix:{stale}"):
        out = subprocess.run(
            [tool("pysetkey"), "-D", "--kernel", spec], capture_output=True, text=True
        )
        assert out.returncode == 1 and out.stdout == "", out
        assert out.stderr.startswith("pysetkey: no simulated kernel at "), out.stderr
