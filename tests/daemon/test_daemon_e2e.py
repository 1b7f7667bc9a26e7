"""Real pyracoon processes on loopback, each host with its own pyracoon-kernel."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyracoon.kernel.base import open_kernel
from pyracoon.kernel.pfkey import Message
from pyracoon.kernel.sadb import ExtType, SaState
from pyracoon.lab import (
    SimHost,
    free_port,
    install_certificates,
    issue,
    memo_policies,
    program,
    run_demo,
)

H1, H2 = "127.0.0.1", "127.0.0.2"


def dump(host: SimHost) -> list[Message]:
    """Every SA in the host's kernel, as DUMP replies."""
    with open_kernel(host.kernel_spec) as k:
        return k.dump(timeout=5)


def sa_view(m: Message) -> tuple:
    ekey, akey = m.key(ExtType.KEY_ENCRYPT), m.key(ExtType.KEY_AUTH)
    return (
        str(m.src.addr),
        str(m.dst.addr),
        m.satype,
        m.sa.spi,
        m.sa.encrypt,
        m.sa.auth,
        ekey.key if ekey else b"",
        akey.key if akey else b"",
        m.lifetime(ExtType.LIFETIME_HARD).addtime,
    )


def config_text(host: SimHost, peer: SimHost, mode: str, auth: str) -> str:
    d = host.dir
    lines = [
        f'path certificate "{d / "cert"}";',
        f'path pre_shared_key "{d / "psk.txt"}";',
        f'path backupsa "{d / "backupsa"}";',
        f'path pidfile "{d / "racoon.pid"}";',
        f'listen {{ isakmp {host.address}; adminsock "{d / "admin.sock"}"; }}',
        "remote anonymous {",
        f"  exchange_mode {mode};",
    ]
    if auth == "rsasig":
        lines += [
            '  certificate_type x509 "host_cert.pem" "host_priv.pem";',
            "  my_identifier asn1dn;",
        ]
    else:
        lines += [f"  my_identifier address {host.address};"]
    method = "rsasig" if auth == "rsasig" else "pre_shared_key"
    lines += [
        "  proposal {",
        f"    authentication_method {method};",
        "    encryption_algorithm aes 256;",
        "    hash_algorithm sha256;",
        "    dh_group 14;",
        "  }",
        "}",
        "sainfo anonymous {",
        "  pfs_group 2;",
        "  lifetime time 600 sec;",
        "  encryption_algorithm aes 128, 3des;",
        "  authentication_algorithm hmac_sha1;",
        "  compression_algorithm deflate;",
        "}",
    ]
    return "\n".join(lines) + "\n"


class Pair:
    """Two simulated hosts with kernels, SPDs, certificates and PSKs; daemons on demand."""

    def __init__(
        self,
        root: Path,
        a: str = H1,
        b: str = H2,
        netns: str | None = None,
        kernel_args: tuple[str, ...] = (),
    ) -> None:
        self.hosts = [SimHost("host1", a, root / "host1"), SimHost("host2", b, root / "host2")]
        self.port = free_port([a, b]) if netns is None else 500
        ca = issue("test CA")
        for h in self.hosts:
            h.dir.mkdir(parents=True)
            install_certificates(h.dir / "cert", ca, issue(h.name, ca, san=[h.address]))
            other = self.peer(h)
            psk = h.dir / "psk.txt"
            psk.write_text(f"{other.address}\tsecret shared by both\n")
            psk.chmod(0o600)
            h.start_kernel(*kernel_args)
            assert h.setkey("-c", stdin=memo_policies(h.address, other.address)).returncode == 0

    def peer(self, h: SimHost) -> SimHost:
        return self.hosts[1] if h is self.hosts[0] else self.hosts[0]

    def configure(self, mode: str = "main", auth: str = "psk") -> None:
        for h in self.hosts:
            (h.dir / "racoon.conf").write_text(config_text(h, self.peer(h), mode, auth))

    def start(self, *extra: str) -> None:
        for h in self.hosts:
            h.start_daemon(h.dir / "racoon.conf", "-p", str(self.port), *extra)
        for h in self.hosts:
            assert h.wait_log("used as isakmp port"), self.why(h)
            assert h.wait_log("admin socket"), self.why(h)  # the last step of start-up

    def why(self, h: SimHost) -> str:
        log = h.log_path.read_text() if h.log_path.exists() else ""
        err = ""
        if h.daemon is not None and h.daemon.poll() is not None and h.daemon.stderr:
            err = h.daemon.stderr.read()
        return f"{h.name} log:\n{log}\nstderr: {err}"

    def packet(self) -> str:
        a, b = self.hosts
        return a.run("pyracoon-kernel", "packet", a.address, b.address, "udp", "5000", "53").stdout

    def wait_established(self, count: int = 2, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(
                len([m for m in dump(h) if m.sa.state == SaState.MATURE]) >= count
                for h in self.hosts
            ):
                return
            time.sleep(0.1)
        raise AssertionError("no SAs:\n" + "\n".join(self.why(h) for h in self.hosts))

    def stop(self) -> None:
        for h in self.hosts:
            h.stop()


@pytest.fixture
def pair(short_tmp: Path) -> Iterator[Pair]:
    p = Pair(short_tmp)
    yield p
    p.stop()


def assert_crosswise_equal(p: Pair) -> None:
    a, b = (sorted(sa_view(m) for m in dump(h)) for h in p.hosts)
    assert a == b and len(a) == 2
    srcs = {(v[0], v[1]) for v in a}
    assert srcs == {
        (p.hosts[0].address, p.hosts[1].address),
        (p.hosts[1].address, p.hosts[0].address),
    }


def test_the_main_job_demo(short_tmp):
    import io

    out = io.StringIO()
    assert run_demo(short_tmp / "demo", out) == 0, out.getvalue()
    text = out.getvalue()
    assert text.count("\tE: 3des-cbc ") == 4 and text.count("\tA: hmac-sha1 ") == 4
    assert text.count("ISAKMP-SA established 127.0.0.") == 2
    assert text.count("IPsec-SA established: ESP/Transport") == 4
    assert "# the next packet 127.0.0.1 -> 127.0.0.2: protected spi=0x" in text


def test_a_kept_demo_can_be_run_again_by_hand(short_tmp):
    import io

    work = short_tmp / "demo"
    work.mkdir()
    out = io.StringIO()
    assert run_demo(work, out, keep=True) == 0, out.getvalue()
    assert f"to run it again by hand: sh {work.resolve() / 'rerun.sh'}" in out.getvalue()
    for h in ("host1", "host2"):
        assert "esp/transport//use" in (work / h / "spd.conf").read_text()
    again = subprocess.run(["sh", str(work / "rerun.sh")], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("\tE: 3des-cbc ") == 4, again.stdout
    assert again.stdout.rstrip().splitlines()[-1].startswith("protected spi=0x")
    deadline = time.monotonic() + 10
    while any((work / h / "kernel.sock").exists() for h in ("host1", "host2")):
        assert time.monotonic() < deadline, "the rerun left a kernel running"
        time.sleep(0.1)
    assert not any((work / h / "racoon.pid").exists() for h in ("host1", "host2"))


@pytest.mark.parametrize("auth", ["psk", "rsasig"])
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_acquire_negotiates_matching_sas(pair, mode, auth):
    pair.configure(mode, auth)
    pair.start()
    assert "ACQUIRE sent" in pair.packet()
    pair.wait_established()
    assert_crosswise_equal(pair)
    a, b = pair.hosts
    assert a.log_lines("ISAKMP-SA established") and b.log_lines("ISAKMP-SA established")
    word = "Identity Protection" if mode == "main" else "Aggressive"
    assert a.log_lines(f"begin {word} mode.")
    assert pair.packet().startswith("protected spi=")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 for a netns"
)
@pytest.mark.parametrize("auth", ["psk", "rsasig"])
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_ipv6_in_a_network_namespace(short_tmp, mode, auth):
    """IPv6 has one loopback address, so the two hosts get fd77::1 and fd77::2 on the lo of a
    namespace made for this test; both kernels and daemons run inside it."""
    ns = f"pyr6-{os.getpid()}-{mode[0]}{auth[0]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", "fd77::1/128", "dev", "lo", "nodad"],
            ["ip", "addr", "add", "fd77::2/128", "dev", "lo", "nodad"],
        ):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        script = f"""
import io, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_daemon_e2e import Pair, assert_crosswise_equal
p = Pair(Path({str(short_tmp)!r}), "fd77::1", "fd77::2")
try:
    p.configure({mode!r}, {auth!r})
    p.start()
    p.packet()
    p.wait_established()
    assert_crosswise_equal(p)
    print("OK", p.hosts[0].log_lines("IPsec-SA established")[0])
finally:
    p.stop()
"""
        run = subprocess.run(
            ["ip", "netns", "exec", ns, program("python"), "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(Path(__file__).parents[2]),
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "OK" in run.stdout and "fd77::" in run.stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


# ---- start-up -------------------------------------------------------------------------------


def start_fails(*args: str) -> subprocess.CompletedProcess:
    """Without -F the log goes to syslog, so stderr holds exactly the one start-up line."""
    run = subprocess.run([program("pyracoon"), *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    return run


def test_a_broken_config_reaches_the_terminal(pair):
    conf = pair.hosts[0].dir / "racoon.conf"
    conf.write_text("remote anonymous {\n  exchange_mode sideways;\n}\n")
    run = start_fails("-f", str(conf), "--kernel", pair.hosts[0].kernel_spec)
    assert run.stderr.startswith(f"pyracoon: {conf}:2: ")


def test_port_in_use_is_refused(pair):
    pair.configure()
    a = pair.hosts[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((a.address, pair.port))
        run = start_fails(
            "-f", str(a.dir / "racoon.conf"), "-p", str(pair.port), "--kernel", a.kernel_spec
        )
    assert run.stderr.strip() == (
        f"pyracoon: cannot listen on {a.address}[{pair.port}]: Address already in use"
    )


def test_weak_key_file_is_refused(pair):
    pair.configure(auth="rsasig")
    a = pair.hosts[0]
    (a.dir / "cert" / "host_priv.pem").chmod(0o644)
    run = start_fails("-f", str(a.dir / "racoon.conf"), "--kernel", a.kernel_spec)
    assert "host_priv.pem" in run.stderr and "weak file permission" in run.stderr


def test_weak_psk_file_is_refused(pair):
    pair.configure(auth="psk")
    a = pair.hosts[0]
    (a.dir / "psk.txt").chmod(0o640)
    run = start_fails("-f", str(a.dir / "racoon.conf"), "--kernel", a.kernel_spec)
    assert "psk.txt" in run.stderr and "weak file permission" in run.stderr


def test_missing_kernel_is_refused(pair, short_tmp):
    pair.configure()
    a = pair.hosts[0]
    run = start_fails("-f", str(a.dir / "racoon.conf"), "--kernel", f"unix:{short_tmp}/none.sock")
    assert "no simulated kernel at" in run.stderr


# ---- daemon life ----------------------------------------------------------------------------


def test_detaches_writes_the_pid_file_and_stops_on_sigterm(pair):
    pair.configure()
    a = pair.hosts[0]
    run = subprocess.run(
        [program("pyracoon"), "-f", str(a.dir / "racoon.conf"), "-p", str(pair.port),
         "-l", str(a.log_path), "--kernel", a.kernel_spec],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    pidfile = a.dir / "racoon.pid"
    pid = int(pidfile.read_text())
    assert a.wait_log("used as isakmp port")
    # one line at start-up names the kernel backend, as --kernel spelled it
    assert f"kernel: unix (--kernel {a.kernel_spec})" in a.log_path.read_text()
    os.kill(pid, 0)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pidfile.exists(), a.log_path.read_text()
    assert a.wait_log(f"pyracoon process {pid} shutdown")


def test_sigterm_removes_only_the_sas_it_installed(pair):
    pair.configure()
    pair.start()
    a = pair.hosts[0]
    manual = 'add 127.0.0.1 127.0.0.3 esp 0x9999 -E 3des-cbc "123456789012345678901234";\n'
    assert a.setkey("-c", stdin=manual).returncode == 0
    pair.packet()
    pair.wait_established()
    a.daemon.send_signal(signal.SIGTERM)
    assert a.daemon.wait(10) == 0
    left = [m.sa.spi for m in dump(a)]
    assert left == [0x9999]
    assert a.log_lines("caught signal 15")
    # racoon's flushph2()/flushph1(): the peer heard a Delete and dropped its SAs at once
    assert a.log_lines("sent 2 Delete message(s) to peers before shutting down")
    b = pair.hosts[1]
    assert b.wait_log("purged IPsec-SA proto_id=ESP"), b.log_path.read_text()
    assert b.wait_log("ISAKMP-SA deleted"), b.log_path.read_text()


def test_backupsa_restores_after_a_crash(pair):
    pair.configure()
    pair.start()
    pair.packet()
    pair.wait_established()
    a = pair.hosts[0]
    before = sorted(sa_view(m)[:8] for m in dump(a))
    assert len((a.dir / "backupsa").read_text().splitlines()) == 2
    assert (a.dir / "backupsa").stat().st_mode & 0o777 == 0o600
    a.daemon.send_signal(signal.SIGKILL)
    a.daemon.wait()
    assert a.setkey("-F").returncode == 0  # the host lost its SAs with the crash
    assert dump(a) == []
    a.start_daemon(a.dir / "racoon.conf", "-p", str(pair.port), "-B")
    assert a.wait_log("restored"), pair.why(a)
    after = dump(a)
    assert sorted(sa_view(m)[:8] for m in after) == before
    assert all(m.lifetime(ExtType.LIFETIME_HARD).addtime <= 600 for m in after)


def test_backupsa_does_not_restore_an_sa_deleted_before_the_crash(pair):
    """The kernel's DELETE of one of our SAs leaves a tombstone; -B then restores the other."""
    pair.configure()
    pair.start()
    pair.packet()
    pair.wait_established()
    a = pair.hosts[0]
    sas = dump(a)
    assert len(sas) == 2
    gone, kept = sas
    cmd = f"delete {gone.src.addr} {gone.dst.addr} esp {gone.sa.spi:#x};\n"
    assert a.setkey("-c", stdin=cmd).returncode == 0
    backup = a.dir / "backupsa"
    deadline = time.monotonic() + 10
    while "#deleted" not in backup.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backup.read_text().splitlines()[-1] == f"#deleted 3 {gone.dst.addr} {gone.sa.spi}"
    a.daemon.send_signal(signal.SIGKILL)
    a.daemon.wait()
    assert a.setkey("-F").returncode == 0
    a.start_daemon(a.dir / "racoon.conf", "-p", str(pair.port), "-B")
    assert a.wait_log("restored"), pair.why(a)
    assert [m.sa.spi for m in dump(a)] == [kept.sa.spi]
    assert a.log_lines("was deleted later, skipped")


def wait_lines(h: SimHost, needle: str, count: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(h.log_lines(needle)) >= count:
            return True
        time.sleep(0.05)
    return False


def test_sighup_refuses_a_broken_config_and_keeps_serving(pair):
    pair.configure()
    pair.start()
    a = pair.hosts[0]
    conf = a.dir / "racoon.conf"
    good = conf.read_text()
    conf.write_text(good + "sainfo anonymous { lifetime time 1 min; }\n")
    a.daemon.send_signal(signal.SIGHUP)
    assert wait_lines(a, "configuration reload refused", 1), pair.why(a)
    assert a.log_lines(f"{conf}:")  # the line that is wrong, with file and line number
    assert a.daemon.poll() is None
    pair.packet()
    pair.wait_established()  # the previous configuration still negotiates
    assert {sa_view(m)[8] for m in dump(a)} == {600}


def test_sighup_loads_a_good_config(pair):
    pair.configure()
    pair.start()
    a, b = pair.hosts
    for h in pair.hosts:
        conf = h.dir / "racoon.conf"
        conf.write_text(conf.read_text().replace("lifetime time 600 sec;", "lifetime time 5 min;"))
        h.daemon.send_signal(signal.SIGHUP)
    for h in pair.hosts:
        assert wait_lines(h, "Reading configuration from", 2), pair.why(h)
    pair.packet()
    pair.wait_established()
    assert {sa_view(m)[8] for m in dump(a)} == {300}
    assert_crosswise_equal(pair)


def ctl(h: SimHost, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [program("pyracoonctl"), "-s", str(h.dir / "admin.sock"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


class EventWatcher:
    """``pyracoonctl show-event`` in the background; ``lines`` fills as events arrive.

    ``-d`` hexdumps the daemon's first (empty) reply on stderr: once it is there the daemon
    has subscribed this client, so nothing that happens afterwards can be missed.
    """

    def __init__(self, h: SimHost) -> None:
        import threading

        self.proc = subprocess.Popen(
            [program("pyracoonctl"), "-d", "-s", str(h.dir / "admin.sock"), "show-event"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        assert self.subscribed.wait(20), "show-event got no first reply"

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("reply ("):
                self.subscribed.set()

    def wait_for(self, text: str, count: int = 1, timeout: float = 20) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in self.lines) >= count:
                break
            time.sleep(0.05)
        return list(self.lines)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_pyracoonctl_establishes_shows_and_deletes(pair):
    pair.configure(auth="rsasig")
    pair.start()
    a, b = pair.hosts
    assert (a.dir / "admin.sock").stat().st_mode & 0o777 == 0o600
    watcher = EventWatcher(a)
    try:
        out = ctl(a, "establish-sa", "esp", "inet", a.address, b.address, "any")
        assert out.returncode == 0, out.stderr
        pair.wait_established()
        assert_crosswise_equal(pair)

        isakmp = ctl(a, "show-sa", "isakmp")
        assert isakmp.returncode == 0
        assert isakmp.stdout.startswith("Destination ")
        assert f"{b.address}.{pair.port} " in isakmp.stdout
        esp = ctl(a, "show-sa", "esp")
        assert esp.stdout.count("\tesp mode=transport spi=") == 2
        assert esp.stdout.count("\tE: aes-cbc ") == 2

        route = f"{a.address}[{pair.port}] -> {b.address}[{pair.port}]"
        seen = watcher.wait_for("Phase 2 established")
        time.sleep(0.5)  # a second line for the same quick mode would have come by now
        assert watcher.lines == [
            f"Phase 1 established : {route}",
            f"Phase 2 established : {route}",
        ], seen
        # a watcher that connects now hears nothing of SAs made before it came
        late = EventWatcher(a)
        try:
            assert ctl(a, "delete-sa", "isakmp", "inet", a.address, b.address).returncode == 0
            assert wait_lines(a, "ISAKMP-SA deleted", 1)
            assert ctl(a, "show-sa", "isakmp").stdout.count("\n") == 1  # the header only
            assert ctl(a, "flush-sa", "esp").returncode == 0
            deadline = time.monotonic() + 5
            while dump(a) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert dump(a) == []
            watcher.wait_for("Phase 2 deleted")
            late.wait_for("Phase 2 deleted")
            assert late.lines == [f"Phase 1 deleted : {route}", f"Phase 2 deleted : {route}"]
            assert watcher.lines[2:] == late.lines
        finally:
            late.stop()
    finally:
        watcher.stop()
    # the SAs are gone already: a clean stop has nothing to remove and nothing to warn about
    a.daemon.send_signal(signal.SIGTERM)
    assert a.daemon.wait(10) == 0
    assert not a.log_lines("WARNING"), a.log_path.read_text()


def test_establish_sa_wait_returns_with_the_sas_up(pair):
    pair.configure()
    pair.start()
    a, b = pair.hosts
    out = ctl(a, "establish-sa", "-w", "esp", "inet", a.address, b.address, "any")
    assert out.returncode == 0, out.stderr
    # -w answered after the outcome: the SAs are in the kernel already, no waiting here
    assert len([m for m in dump(a) if m.sa.state == SaState.MATURE]) == 2
    again = ctl(a, "establish-sa", "-w", "isakmp", "inet", a.address, b.address)
    assert again.returncode == 0, again.stderr


def test_establish_sa_wait_fails_when_the_peer_is_down(pair):
    pair.configure()
    a, b = pair.hosts
    conf = a.dir / "racoon.conf"
    conf.write_text(conf.read_text() + "timer { counter 2; interval 1 sec; phase1 10 sec; }\n")
    a.start_daemon(conf, "-p", str(pair.port))  # host 2's daemon is never started
    assert a.wait_log("admin socket"), pair.why(a)
    began = time.monotonic()
    out = ctl(a, "establish-sa", "-w", "isakmp", "inet", a.address, b.address)
    took = time.monotonic() - began
    assert out.returncode == 1, out
    assert out.stderr.startswith(f"pyracoonctl: establish-sa: phase 1 with {b.address} failed: ")
    assert "time up" in out.stderr and took >= 1.5, (took, out.stderr)
    out = ctl(a, "establish-sa", "-w", "esp", "inet", a.address, b.address, "any")
    assert out.returncode == 1 and f"with {b.address} failed" in out.stderr, out
    assert dump(a) == []


def test_reload_config_fails_with_file_and_line(pair):
    pair.configure()
    pair.start()
    a = pair.hosts[0]
    conf = a.dir / "racoon.conf"
    good = conf.read_text()
    conf.write_text(good + "sainfo anonymous { lifetime time 1 min; }\n")
    out = ctl(a, "reload-config")
    assert out.returncode == 1
    lines = len(good.splitlines())
    assert out.stderr.startswith(f"pyracoonctl: reload-config: {conf}:{lines + 1}: "), out.stderr
    assert "the previous configuration is still running" in out.stderr
    conf.write_text(good)
    assert ctl(a, "reload-config").returncode == 0


def test_pyracoonctl_establishes_phase1_only_and_reports_errors(pair):
    pair.configure()
    pair.start()
    a, b = pair.hosts
    assert ctl(a, "establish-sa", "isakmp", "inet", a.address, b.address).returncode == 0
    assert wait_lines(a, "ISAKMP-SA established", 1), pair.why(a)
    assert dump(a) == []  # no quick mode without a reason for one
    schedule = ctl(a, "show-schedule").stdout.splitlines()
    assert schedule[0] == "index    tick     xtime    created"
    assert len(schedule) >= 2  # the ISAKMP SA's lifetime timer
    missing = ctl(a, "establish-sa", "esp", "inet", a.address, "127.0.0.9", "any")
    assert missing.returncode == 1 and "no matching" in missing.stderr
    reload = ctl(a, "reload-config")
    assert reload.returncode == 0, reload.stderr
    assert wait_lines(a, "Reading configuration from", 2)


def test_hostile_datagrams_do_not_stop_the_daemon(pair):
    """Garbage, truncated headers and mutated real messages, then a normal negotiation."""
    import random

    pair.configure()
    pair.start()
    a, b = pair.hosts
    rng = random.Random(1234)
    header = bytes(8) + bytes(8) + bytes([1, 0x10, 2, 0]) + bytes(4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.3", 0))
        for i in range(300):
            kind = i % 3
            if kind == 0:
                data = rng.randbytes(rng.randrange(0, 600))
            elif kind == 1:
                data = rng.randbytes(8) + header[8:] + (28 + 40).to_bytes(4, "big") + bytes(40)
            else:
                body = bytearray(rng.randbytes(8) + header[8:] + (28 + 60).to_bytes(4, "big"))
                body += bytes([0, 0, 0, 60]) + rng.randbytes(56)
                data = bytes(body)
            s.sendto(data, (b.address, pair.port))
    time.sleep(1)
    assert b.daemon.poll() is None
    assert not b.log_lines("internal error"), b.log_path.read_text()
    pair.packet()
    pair.wait_established()
    assert_crosswise_equal(pair)


def inject(h: SimHost, data: bytes) -> None:
    """pyracoon-kernel's test hook: show the host's other clients (its daemon) ``data``."""
    import json

    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(str(h.dir / "kernel.sock"))
        s.settimeout(5)
        s.send(json.dumps({"op": "inject", "hex": data.hex()}).encode())
        answer = json.loads(s.recv(4096))
    assert answer.get("delivered", 0) >= 1, answer


def test_undecodable_kernel_messages_do_not_stop_the_daemon(short_tmp):
    """Issue 9's daemon died with "lost the kernel" on the first request it could not parse.
    Now each kind of undecodable message is logged once and skipped, and it still negotiates."""
    import struct

    p = Pair(short_tmp, kernel_args=("--test-hooks",))
    try:
        p.configure()
        p.start()
        a, b = p.hosts
        # an SPDDUMP reply whose request is 12 bytes long (Linux's fixed part is 16), twice
        request = struct.pack("=HHBBHII", 12, 50, 1, 2, 0, 0, 0)
        policy = struct.pack("=HHHBBII", 4, 18, 2, 2, 0, 9, 0) + request
        spddump = struct.pack("=BBBBHHII", 2, 18, 0, 0, 6, 0, 0, 1) + policy
        # a message type no kernel we know sends, with an extension longer than the message
        unknown = struct.pack("=BBBBHHII", 2, 99, 0, 0, 3, 0, 0, 0) + struct.pack("=HHI", 9, 1, 0)
        for data in (spddump, spddump, unknown, b"\x02\x01\x00"):
            inject(b, data)
        assert wait_lines(b, "cannot decode a PF_KEY message from the kernel", 3)
        time.sleep(0.5)
        assert b.daemon.poll() is None, p.why(b)
        assert not b.log_lines("lost the kernel")
        lines = [
            line.split("cannot decode a PF_KEY message from the kernel: ")[1]
            for line in b.log_lines("cannot decode")
        ]
        assert lines == [
            "SADB_X_SPDDUMP sadb_x_ipsecrequest.sadb_x_ipsecrequest_len at offset 32: "
            "12 bytes does not fit the policy; skipped",
            "SADB_99 sadb_ext[SA].sadb_ext_len at offset 16: 72 bytes, 8 left; skipped",
            "(no header) sadb_msg.header at offset 0: 3 bytes, need 16; skipped",
        ]
        assert "ACQUIRE sent" in p.packet()
        p.wait_established()
        assert_crosswise_equal(p)
    finally:
        p.stop()


def test_missing_certificate_is_refused(pair):
    pair.configure(auth="rsasig")
    a = pair.hosts[0]
    (a.dir / "cert" / "host_cert.pem").unlink()
    run = start_fails("-f", str(a.dir / "racoon.conf"), "--kernel", a.kernel_spec)
    assert "host_cert.pem" in run.stderr


def test_missing_private_key_is_one_line_not_a_traceback(pair):
    pair.configure(auth="rsasig")
    a = pair.hosts[0]
    (a.dir / "cert" / "host_priv.pem").unlink()
    run = start_fails("-f", str(a.dir / "racoon.conf"), "--kernel", a.kernel_spec)
    assert run.stderr == (
        "pyracoon: remote anonymous: cannot read private key "
        f"{a.dir / 'cert' / 'host_priv.pem'}: No such file or directory\n"
    )


def test_garbage_certificate_names_the_file_in_plain_words(pair):
    pair.configure(auth="rsasig")
    a = pair.hosts[0]
    (a.dir / "cert" / "host_cert.pem").write_text("garbage\n")
    run = start_fails("-f", str(a.dir / "racoon.conf"), "--kernel", a.kernel_spec)
    assert run.stderr == (
        f"pyracoon: remote anonymous: {a.dir / 'cert' / 'host_cert.pem'} is neither a PEM nor a "
        "DER certificate\n"
    )


def test_psk_path_naming_a_directory_gets_no_chmod_advice(pair):
    pair.configure(auth="psk")
    a = pair.hosts[0]
    conf = a.dir / "racoon.conf"
    conf.write_text(conf.read_text().replace(str(a.dir / "psk.txt"), str(a.dir / "cert")))
    run = start_fails("-f", str(conf), "--kernel", a.kernel_spec)
    assert run.stderr == (
        f"pyracoon: cannot read the pre-shared key file {a.dir / 'cert'} (path pre_shared_key): "
        "Is a directory\n"
    )


def test_missing_config_file_is_said_plainly(short_tmp):
    run = start_fails("-f", str(short_tmp / "nonexistent.conf"))
    assert run.stderr == (
        f"pyracoon: cannot read the configuration file {short_tmp / 'nonexistent.conf'}: "
        "No such file or directory\n"
    )


def test_unopenable_log_file_is_said_plainly(pair):
    pair.configure()
    a = pair.hosts[0]
    logfile = a.dir / "no-such-dir" / "racoon.log"
    run = start_fails("-f", str(a.dir / "racoon.conf"), "-l", str(logfile), "--kernel",
                      a.kernel_spec)
    assert run.stderr == (
        f"pyracoon: cannot open the log file {logfile}: No such file or directory\n"
    )


def test_default_config_path_is_the_platforms():
    from pyracoon.config.model import default_config_path

    run = subprocess.run([program("pyracoon"), "-h"], capture_output=True, text=True, timeout=30)
    assert f"configuration file ({default_config_path()})" in " ".join(run.stdout.split())


def test_a_second_daemon_on_the_same_address_and_port_is_refused(pair):
    pair.configure()
    a = pair.hosts[0]
    conf = a.dir / "racoon.conf"
    first = subprocess.run(
        [program("pyracoon"), "-f", str(conf), "-p", str(pair.port), "-l", str(a.log_path),
         "--kernel", a.kernel_spec],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    pidfile = a.dir / "racoon.pid"
    pid = int(pidfile.read_text())
    try:
        assert a.wait_log("admin socket")
        run = start_fails("-f", str(conf), "-p", str(pair.port), "-l", str(a.dir / "second.log"),
                          "--kernel", a.kernel_spec)  # fmt: skip
        assert run.stderr == (
            f"pyracoon: cannot listen on {a.address}[{pair.port}]: Address already in use\n"
        )
        assert int(pidfile.read_text()) == pid  # the first one's pid file is untouched
        os.kill(pid, 0)
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def test_relative_config_and_log_paths_survive_detaching(pair):
    """The detached daemon runs in /; SIGHUP must still re-read the same file and log there."""
    pair.configure()
    a = pair.hosts[0]
    run = subprocess.run(
        [program("pyracoon"), "-f", "racoon.conf", "-p", str(pair.port), "-l", "racoon.log",
         "--kernel", a.kernel_spec],
        capture_output=True, text=True, timeout=60, cwd=a.dir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    pidfile = a.dir / "racoon.pid"
    pid = int(pidfile.read_text())
    try:
        assert a.wait_log("admin socket")
        assert ctl(a, "reload-config").returncode == 0
        os.kill(pid, signal.SIGHUP)
        assert wait_lines(a, f'Reading configuration from "{a.dir / "racoon.conf"}"', 3)
        assert not a.log_lines("ERROR"), a.log_path.read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def test_detaching_without_syslog_or_log_file_says_so(pair):
    from pyracoon.daemon.log import syslog_socket

    pair.configure()
    a = pair.hosts[0]
    run = subprocess.run(
        [program("pyracoon"), "-f", str(a.dir / "racoon.conf"), "-p", str(pair.port),
         "--kernel", a.kernel_spec],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    pidfile = a.dir / "racoon.pid"
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    warned = "no syslog socket on this machine" in run.stderr
    assert warned == (syslog_socket() is None), run.stderr
    if warned:
        assert run.stderr.strip().endswith("give -l FILE to log to a file")


def test_syslog_socket_is_found_where_it_is(tmp_path):
    from pyracoon.daemon.log import syslog_socket

    there = tmp_path / "log"
    there.touch()
    assert syslog_socket((str(tmp_path / "none"), str(there))) == str(there)
    assert syslog_socket((str(tmp_path / "none"),)) is None
