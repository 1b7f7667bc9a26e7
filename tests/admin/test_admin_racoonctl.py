"""The real racoonctl (ipsec-tools 0.9.1) against real pyracoon daemons on the simulated kernel.

racoonctl only needs the admin socket, so it runs on this host: two pyracoon daemons negotiate
over loopback (each with its own ``pyracoon-kernel``), and racoonctl is pointed at the first
one's socket. What racoonctl prints is compared with what it must print for the SAs the
daemons made, and with pyracoonctl's output for the same replies.

racoonctl comes from ``tests/interop/build-racoon.sh`` (``.ci/run`` calls it); these tests are
skipped when it has not been built, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyracoon.kernel.base import open_kernel
from pyracoon.kernel.sadb import SaState
from pyracoon.lab import SimHost, free_port, memo_policies, program

RACOON_PREFIX = Path(os.environ.get("RACOON_PREFIX", "/var/tmp/racoon-0.9.1"))
RACOONCTL = RACOON_PREFIX / "bin" / "racoonctl"
H1, H2 = "127.0.0.1", "127.0.0.2"


def need_racoonctl() -> str:
    if os.access(RACOONCTL, os.X_OK):
        return str(RACOONCTL)
    why = f"{RACOONCTL} is not built (tests/interop/build-racoon.sh builds it)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


CONF = """\
path pre_shared_key "{dir}/psk.txt";
path pidfile "{dir}/racoon.pid";
listen {{ isakmp {me}; adminsock "{dir}/admin.sock"; }}
remote anonymous {{
  exchange_mode main;
  my_identifier address {me};
  proposal {{
    authentication_method pre_shared_key;
    encryption_algorithm aes 256;
    hash_algorithm sha256;
    dh_group 14;
  }}
}}
sainfo anonymous {{
  lifetime time 600 sec;
  encryption_algorithm aes 128;
  authentication_algorithm hmac_sha1;
  compression_algorithm deflate;
}}
"""


class Pair:
    """Two pyracoon daemons, each on its own simulated kernel, with ``use`` ESP policies."""

    def __init__(self, root: Path, extra_conf: str = "") -> None:
        self.hosts = [SimHost("host1", H1, root / "host1"), SimHost("host2", H2, root / "host2")]
        self.port = free_port([H1, H2])
        for h, peer in ((self.hosts[0], self.hosts[1]), (self.hosts[1], self.hosts[0])):
            h.dir.mkdir(parents=True)
            psk = h.dir / "psk.txt"
            psk.write_text(f"{peer.address}\tsecret shared by both\n")
            psk.chmod(0o600)
            (h.dir / "racoon.conf").write_text(CONF.format(dir=h.dir, me=h.address) + extra_conf)
            h.start_kernel()
            assert h.setkey("-c", stdin=memo_policies(h.address, peer.address)).returncode == 0
        for h in self.hosts:
            h.start_daemon(h.dir / "racoon.conf", "-p", str(self.port))
        for h in self.hosts:
            assert h.wait_log("admin socket"), self.why(h)

    def why(self, h: SimHost) -> str:
        log = h.log_path.read_text() if h.log_path.exists() else ""
        return f"{h.name} log:\n{log}"

    def sas(self, h: SimHost) -> list:
        with open_kernel(h.kernel_spec) as k:
            return [m for m in k.dump(timeout=5) if m.sa.state == SaState.MATURE]

    def wait(self, what, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError("timed out:\n" + "\n".join(self.why(h) for h in self.hosts))
            time.sleep(0.1)

    def stop(self) -> None:
        for h in self.hosts:
            h.stop()


@pytest.fixture
def pair(short_tmp: Path) -> Iterator[Pair]:
    need_racoonctl()
    p = Pair(short_tmp)
    yield p
    p.stop()


def racoonctl(h: SimHost, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RACOONCTL), "-s", str(h.dir / "admin.sock"), *args],
                          capture_output=True, text=True, timeout=30)


def pyracoonctl(h: SimHost, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([program("pyracoonctl"), "-s", str(h.dir / "admin.sock"), *args],
                          capture_output=True, text=True, timeout=30)


class RacoonctlEvents:
    """``racoonctl show-event`` in the background, its stdout line-buffered with stdbuf (a
    pipe would keep racoonctl's printf output until it exits)."""

    def __init__(self, h: SimHost) -> None:
        stdbuf = shutil.which("stdbuf")
        if stdbuf is None:
            pytest.skip("stdbuf (coreutils) is needed to read racoonctl show-event as it runs")
        self.proc = subprocess.Popen(
            [stdbuf, "-oL", str(RACOONCTL), "-s", str(h.dir / "admin.sock"), "show-event"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_connected(self, timeout: float = 10) -> bool:
        """Whether racoonctl has connected to the daemon (it sends its request right after):
        one of its descriptors is a Unix socket in state SS_CONNECTED in /proc/net/unix."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inodes = set()
            fds = Path(f"/proc/{self.proc.pid}/fd")
            for fd in fds.iterdir() if fds.exists() else ():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            with open("/proc/net/unix") as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[6] in inodes and fields[5] == "03":
                        return True
            time.sleep(0.05)
        return False

    def wait_for(self, text: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> str:
        self.proc.kill()
        self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def test_racoonctl_shows_establishes_and_deletes(pair: Pair) -> None:
    a, b = pair.hosts
    port = pair.port

    # nothing yet: the headers alone, and the kernel's ENOENT as racoonctl words it
    out = racoonctl(a, "show-sa", "isakmp")
    assert (out.returncode, out.stdout, out.stderr) == (
        0, "Destination            Cookies                           Created\n", "")
    out = racoonctl(a, "show-sa", "esp")
    assert (out.returncode, out.stdout) == (0, "No SAD entries.\n")

    events = RacoonctlEvents(a)
    try:
        assert events.wait_connected(), "racoonctl show-event did not connect"
        time.sleep(0.3)  # for the daemon to read its request and subscribe it

        # phase 1 only
        out = racoonctl(a, "establish-sa", "isakmp", "inet", a.address, b.address)
        assert (out.returncode, out.stderr) == (0, ""), out
        pair.wait(lambda: a.log_lines("ISAKMP-SA established"))

        out = racoonctl(a, "show-sa", "isakmp")
        assert out.returncode == 0, out
        header, row, *rest = out.stdout.split("\n")
        assert header == "Destination            Cookies                           Created"
        assert rest == [""]
        dest = f"{b.address}.{port}".ljust(22)
        assert re.fullmatch(rf"{re.escape(dest)} [0-9a-f]{{16}}:[0-9a-f]{{16}} {STAMP} ", row), row
        assert pyracoonctl(a, "show-sa", "isakmp").stdout == out.stdout

        out = racoonctl(a, "-l", "show-sa", "isakmp")
        row = out.stdout.split("\n")[1]
        assert re.fullmatch(
            rf"{re.escape(dest)} [0-9a-f]{{16}}:[0-9a-f]{{16}}  9 I 10 M {STAMP}      0 ",
            row), row
        out = racoonctl(a, "-l", "-l", "show-sa", "isakmp")
        row = out.stdout.split("\n")[1]
        assert row.startswith(f"{a.address}.{port}".ljust(45) + " "
                              + f"{b.address}.{port}".ljust(45) + " "), row
        assert pyracoonctl(a, "-l", "-l", "show-sa", "isakmp").stdout == out.stdout

        # a quick mode for the ESP policy
        out = racoonctl(a, "establish-sa", "esp", "inet", a.address, b.address, "any")
        assert (out.returncode, out.stderr) == (0, ""), out
        pair.wait(lambda: all(len(pair.sas(h)) >= 2 for h in pair.hosts))
        out = racoonctl(a, "show-sa", "esp")
        assert out.returncode == 0, out
        assert out.stdout.count("\tesp mode=transport spi=") == 2, out.stdout
        assert out.stdout.count("\tE: aes-cbc ") == 2 and out.stdout.count("\tA: hmac-sha1 ") == 2
        assert out.stdout.count(f"{a.address} {b.address} \n") == 1
        assert out.stdout.count(f"{b.address} {a.address} \n") == 1
        spis = {f"spi={m.sa.spi}(0x{m.sa.spi:08x})" for m in pair.sas(a)}
        assert {s for s in spis if s in out.stdout} == spis
        out_ipsec = racoonctl(a, "show-sa", "ipsec")
        assert out_ipsec.stdout.count("\tesp mode=transport spi=") == 2
        # pyracoonctl prints the same records the same way (but for the clock's second)
        ours = pyracoonctl(a, "show-sa", "esp").stdout
        assert _timeless(ours) == _timeless(out.stdout)
        out = racoonctl(a, "-l", "show-sa", "isakmp")
        assert out.stdout.split("\n")[1].endswith("      1 "), out.stdout  # one phase 2

        # the timers: racoonctl's table, one row per pending timer
        out = racoonctl(a, "show-schedule")
        assert out.returncode == 0, out
        lines = out.stdout.split("\n")
        assert lines[0] == "index    tick     xtime    created" and lines[-1] == ""
        assert len(lines) > 2
        for line in lines[1:-1]:
            assert re.fullmatch(rf"\d+ +\d+ +\d+ +{STAMP}", line), line
        assert pyracoonctl(a, "show-schedule").stdout.split("\n")[0] == lines[0]

        # delete the phase 1, flush the ESP SAs
        out = racoonctl(a, "delete-sa", "isakmp", "inet", a.address, b.address)
        assert (out.returncode, out.stderr) == (0, ""), out
        pair.wait(lambda: a.log_lines("ISAKMP-SA deleted"))
        out = racoonctl(a, "show-sa", "isakmp")
        assert out.stdout == "Destination            Cookies                           Created\n"
        out = racoonctl(a, "flush-sa", "esp")
        assert (out.returncode, out.stderr) == (0, ""), out
        pair.wait(lambda: not pair.sas(a))
        assert racoonctl(a, "show-sa", "esp").stdout == "No SAD entries.\n"

        route = f"{a.address}[{port}] -> {b.address}[{port}]"
        assert events.wait_for("Phase 2 deleted"), events.lines
        assert events.lines == [
            f"Phase 1 established : {route}",
            f"Phase 2 established : {route}",
            f"Phase 1 deleted : {route}",
            f"Phase 2 deleted : {route}",
        ]
    finally:
        err = events.stop()
    assert err == ""


def test_racoonctl_errors_and_flush(pair: Pair) -> None:
    a, b = pair.hosts
    # establish-sa with no policy for it: the daemon refuses, racoonctl exits 1 (silently, as
    # it does for any errno reply)
    out = racoonctl(a, "establish-sa", "esp", "inet", "10.9.9.1", "10.9.9.2", "any")
    assert out.returncode == 1
    # delete-sa of an SA that does not exist: ENOENT
    out = racoonctl(a, "delete-sa", "isakmp", "inet", a.address, b.address)
    assert out.returncode == 1
    # an established phase 1, then flush-sa isakmp
    assert racoonctl(a, "establish-sa", "isakmp", "inet", a.address, b.address).returncode == 0
    pair.wait(lambda: a.log_lines("ISAKMP-SA established"))
    # establish-sa of an SA that is up succeeds, as with racoon
    out = racoonctl(a, "establish-sa", "isakmp", "inet", a.address, b.address)
    assert out.returncode == 0, out
    assert racoonctl(a, "show-sa", "isakmp").stdout.count("\n") == 2
    out = racoonctl(a, "flush-sa", "isakmp")
    assert (out.returncode, out.stderr) == (0, ""), out
    pair.wait(lambda: racoonctl(a, "show-sa", "isakmp").stdout.count("\n") == 1)
    # the daemon is still fine after all of it
    assert pyracoonctl(a, "show-sa", "isakmp").returncode == 0


EOF_LINE = "racoonctl: racoon closed the admin connection before sending a reply header (EOF)\n"
"""What racoonctl says when the daemon ends a wait: racoon closes the listeners of an SA that
failed (evt.c ``evt_list_cleanup``), and racoonctl, still waiting, reads end of file."""


def test_racoonctl_waits_for_the_outcome(pair: Pair) -> None:
    """``-w``, ``vpn-connect`` and ``vpn-disconnect`` read the SA's events after the reply, as
    with racoon, and exit 0 on the event they wait for."""
    a, b = pair.hosts
    route = f"{a.address}[{pair.port}] -> {b.address}[{pair.port}]"

    # phase 1: racoonctl waits for "mode configuration done", which racoon sends right after
    # "Phase 1 established" for a remote without mode_cfg, and prints print_cfg's line
    out = racoonctl(a, "establish-sa", "-w", "isakmp", "inet", a.address, b.address)
    assert (out.returncode, out.stdout, out.stderr) == (0, "VPN connexion established\n", ""), out
    assert a.log_lines("ISAKMP-SA established")
    # up already: EEXIST, which racoonctl counts as success, silently
    out = racoonctl(a, "establish-sa", "-w", "isakmp", "inet", a.address, b.address)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", ""), out

    # phase 2: racoonctl prints the "Phase 2 established" event it waited for
    out = racoonctl(a, "establish-sa", "-w", "esp", "inet", a.address, b.address, "any")
    assert (out.returncode, out.stdout, out.stderr) == (
        0, f"Phase 2 established : {route}\n", ""), out
    assert len(pair.sas(a)) >= 2

    # vpn-disconnect: the reply, then every event until "Phase 1 deleted"
    out = racoonctl(a, "vpn-disconnect", b.address)
    assert (out.returncode, out.stdout, out.stderr) == (
        0, f"Phase 1 deleted : {route}\n", ""), out
    assert racoonctl(a, "show-sa", "isakmp").stdout.count("\n") == 1
    # nothing to delete: racoon answers and closes, racoonctl still waits and fails
    out = racoonctl(a, "vpn-disconnect", b.address)
    assert (out.returncode, out.stdout, out.stderr) == (1, "", EOF_LINE), out

    # vpn-connect: establish-sa -w isakmp from the address that routes to the gateway
    out = racoonctl(a, "vpn-connect", b.address)
    assert (out.returncode, out.stdout, out.stderr) == (0, "VPN connexion established\n", ""), out
    assert racoonctl(a, "show-sa", "isakmp").stdout.count("\n") == 2
    out = racoonctl(a, "vc", b.address)  # up already
    assert (out.returncode, out.stderr) == (0, ""), out
    out = racoonctl(a, "vd", b.address)
    assert (out.returncode, out.stdout) == (0, f"Phase 1 deleted : {route}\n"), out

    # pyracoonctl's own -w still answers with its reply alone; the daemon is fine
    out = pyracoonctl(a, "establish-sa", "-w", "isakmp", "inet", a.address, b.address)
    assert (out.returncode, out.stderr) == (0, ""), out
    assert pyracoonctl(a, "show-sa", "isakmp").stdout.count("\n") == 2


def test_racoonctl_wait_fails_when_the_peer_is_down(short_tmp: Path) -> None:
    """With the peer gone the negotiation fails after the resends, the daemon ends the stream
    and racoonctl exits 1 with its end-of-file line, as against racoon."""
    need_racoonctl()
    pair = Pair(short_tmp, "timer { counter 2; interval 1 sec; phase1 10 sec; }\n")
    try:
        a, b = pair.hosts
        b.stop()
        for args in (("establish-sa", "-w", "isakmp", "inet", a.address, b.address),
                     ("establish-sa", "-w", "esp", "inet", a.address, b.address, "any"),
                     ("vpn-connect", b.address)):
            start = time.monotonic()
            out = racoonctl(a, *args)
            assert (out.returncode, out.stdout, out.stderr) == (1, "", EOF_LINE), (args, out)
            assert time.monotonic() - start < 20, args
        assert a.log_lines("phase1 negotiation failed"), pair.why(a)
        # pyracoonctl's -w says why
        out = pyracoonctl(a, "establish-sa", "-w", "isakmp", "inet", a.address, b.address)
        assert out.returncode == 1 and "failed" in out.stderr, out
        assert racoonctl(a, "show-sa", "isakmp").returncode == 0
    finally:
        pair.stop()


def _timeless(text: str) -> str:
    """``setkey -D`` output without the lines that print the current time or an age."""
    return "\n".join(line for line in text.split("\n")
                     if not line.lstrip().startswith(("created:", "diff:", "current:")))
