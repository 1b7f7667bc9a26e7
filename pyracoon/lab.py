"""Simulated hosts on one machine, and ``pyracoon-demo``: the seed memo's setup, end to end.

A "host" here is a directory, an address on loopback (127.0.0.1, 127.0.0.2, ...), its own
``pyracoon-kernel`` and its own ``pyracoon``. Two of them negotiate over real UDP exactly as two
machines would, and each keeps its SAs in its own simulated kernel. The test suite builds its
daemon scenarios from these parts, and ``pyracoon-demo`` runs the memo's automatic-keying setup:
a CA and host certificates made on the spot (with the hashed CA directory of section 4), the
memo's racoon.conf (section 5) and its ``use`` policies (section 7) for the two addresses. A
packet from host 1 to host 2 then starts the negotiation (section 9), and both hosts'
``pysetkey -D`` show matching ESP SAs.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pyracoon.pki import CaDirectory

BIN = Path(sys.executable).parent


def program(name: str) -> str:
    """One of our console scripts, next to the running interpreter if it is there."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


# ---------------------------------------------------------------------------------------------
# a CA on the spot


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pyracoon lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue(cn: str, ca: Issued | None = None, *, san: Sequence[str] = (), days: int = 365) -> Issued:
    """A 2048-bit RSA certificate for ``cn``, self-signed when ``ca`` is None."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC) - timedelta(minutes=5)
    issuer, signer = (ca.cert.subject, ca.key) if ca else (_name(cn), key)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if san:
        names: list[x509.GeneralName] = []
        for s in san:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(b.sign(signer, hashes.SHA256()), key)


def write_pem(path: Path, issued: Issued, key_path: Path | None = None) -> None:
    path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    if key_path is not None:
        data = issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def install_certificates(cert_dir: Path, ca: Issued, host: Issued) -> None:
    """The memo's section 4 layout: host_cert.pem, host_priv.pem, cacert.pem and its hash link."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    write_pem(cert_dir / "host_cert.pem", host, cert_dir / "host_priv.pem")
    write_pem(cert_dir / "cacert.pem", ca)
    CaDirectory(cert_dir).link(cert_dir / "cacert.pem")


# ---------------------------------------------------------------------------------------------
# hosts


def free_port(addresses: list[str], start: int | None = None) -> int:
    """A UDP port free on every one of ``addresses``.

    The search starts at a random port (unless ``start`` is given): pyracoon binds its ports
    exclusively, so several test runs or demos on one machine that all tried 20500 first would
    keep taking each other's port in the moment between this check and the daemon's bind.
    """
    if start is None:
        start = random.randrange(20500, 30500)
    for port in range(start, start + 2000):
        socks = []
        try:
            for a in addresses:
                fam = socket.AF_INET6 if ":" in a else socket.AF_INET
                s = socket.socket(fam, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port")


def kernel_accepts(path: str) -> bool:
    """Does a ``pyracoon-kernel`` answer at ``path`` (not merely: does the file exist)?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        try:
            s.connect(path)
        except OSError:
            return False
        return True


def wait_serving(path: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> bool:
    """Wait until the kernel ``proc`` started serves ``path``; False if it died or timed out.

    A stale socket file of a killed server is already there, so only a connection counts.
    """
    deadline = time.monotonic() + timeout
    while not kernel_accepts(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@dataclass
class SimHost:
    """One simulated host: a directory, an address, a kernel process and a daemon process."""

    name: str
    address: str
    dir: Path
    kernel: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[str] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def kernel_spec(self) -> str:
        return f"unix:{self.dir / 'kernel.sock'}"

    @property
    def log_path(self) -> Path:
        return self.dir / "racoon.log"

    def start_kernel(self, *extra: str) -> None:
        sock = self.dir / "kernel.sock"
        self.kernel = subprocess.Popen(
            [program("pyracoon-kernel"), "--listen", str(sock), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_serving(str(sock), self.kernel):
            raise RuntimeError(f"{self.name}: pyracoon-kernel did not start")

    def run(
        self, prog: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYRACOON_KERNEL=self.kernel_spec, **self.env)
        return subprocess.run(
            [program(prog), *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    def setkey(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("pysetkey", *args, stdin=stdin)

    def start_daemon(self, config: Path, *extra: str) -> None:
        """``pyracoon -F`` with its log in the host's directory."""
        args = [program("pyracoon"), "-F", "-f", str(config), "-l", str(self.log_path)]
        args += ["--kernel", self.kernel_spec, *extra]
        self.daemon = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def wait_log(self, needle: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.exists() and needle in self.log_path.read_text():
                return True
            if self.daemon is not None and self.daemon.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def log_lines(self, needle: str) -> list[str]:
        if not self.log_path.exists():
            return []
        return [line for line in self.log_path.read_text().splitlines() if needle in line]

    def stop(self) -> None:
        for proc in (self.daemon, self.kernel):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# ---------------------------------------------------------------------------------------------
# the demo

MEMO_RACOON_CONF = """\
remote anonymous {
  exchange_mode main,aggressive;
  certificate_type x509 "host_cert.pem" "host_priv.pem";
  my_identifier asn1dn;
  proposal {
    authentication_method rsasig;
    encryption_algorithm 3des;
    hash_algorithm sha1;
    dh_group 2 ;
  }
}
sainfo anonymous {
  lifetime time 3 min;
  encryption_algorithm 3des ;
  authentication_algorithm hmac_sha1;
  compression_algorithm deflate ;
}
"""


def memo_host_config(host: SimHost) -> Path:
    """The memo's racoon.conf with the paths of this host and a listen line for its address."""
    d = host.dir
    text = (
        f'path include "{d}";\n'
        f'path certificate "{d / "cert"}";\n'
        f'path backupsa "{d / "backupsa"}";\n'
        f'path pidfile "{d / "racoon.pid"}";\n'
        f"listen {{ isakmp {host.address}; adminsock disabled; }}\n" + MEMO_RACOON_CONF
    )
    path = d / "racoon.conf"
    path.write_text(text)
    return path


def memo_policies(me: str, peer: str) -> str:
    """Section 7's ``use`` policies, for these two hosts."""
    return (
        "spdflush;\n"
        f"spdadd {me} {peer} any -P out ipsec esp/transport//use;\n"
        f"spdadd {peer} {me} any -P in ipsec esp/transport//use;\n"
        "flush;\n"
    )


RERUN = """\
#!/bin/sh
# pyracoon-demo's run, by hand, with the files it kept here: start both simulated kernels,
# load each host's SPD (spd.conf), start both daemons (detached, logging to racoon.log, on the
# demo's port), send the packet that starts the negotiation, show both SADs, stop everything.
#   sh {top}/rerun.sh
set -eu
bin={bin}
h1={h1}
h2={h2}
for h in "$h1" "$h2"; do
    "$bin/pyracoon-kernel" --listen "$h/kernel.sock" --background --pidfile "$h/kernel.pid"
done
stop() {{
    for h in "$h1" "$h2"; do
        [ -r "$h/racoon.pid" ] && kill "$(cat "$h/racoon.pid")" 2>/dev/null || true
    done
    sleep 1  # each daemon removes its SAs from its kernel before the kernel goes
    for h in "$h1" "$h2"; do
        [ -r "$h/kernel.pid" ] && kill "$(cat "$h/kernel.pid")" 2>/dev/null || true
    done
}}
trap stop EXIT
PYRACOON_KERNEL="unix:$h1/kernel.sock" "$bin/pysetkey" -f "$h1/spd.conf"
PYRACOON_KERNEL="unix:$h2/kernel.sock" "$bin/pysetkey" -f "$h2/spd.conf"
for h in "$h1" "$h2"; do
    "$bin/pyracoon" -f "$h/racoon.conf" -l "$h/racoon.log" -p {port} --kernel "unix:$h/kernel.sock"
done
export PYRACOON_KERNEL="unix:$h1/kernel.sock"
"$bin/pyracoon-kernel" packet {a1} {a2} tcp 1022 22
i=0
until "$bin/pyracoon-kernel" packet {a1} {a2} tcp 1022 22 | grep -q '^protected'; do
    i=$((i + 1)); [ "$i" -lt 150 ] || {{ echo "no SA after 30 s; see $h1/racoon.log" >&2; exit 1; }}
    sleep 0.2
done
sleep 0.5  # both SAs of each side
for h in "$h1" "$h2"; do
    echo "# $h: pysetkey -D"
    PYRACOON_KERNEL="unix:$h/kernel.sock" "$bin/pysetkey" -D
done
"$bin/pyracoon-kernel" packet {a1} {a2} tcp 1022 22
"""


def write_rerun(workdir: Path, hosts: list[SimHost], port: int) -> Path:
    """``--keep``: the SPD each host loaded and a script with the exact commands and flags, so
    a kept demo can be run again by hand (or read as a recipe)."""
    for h in hosts:
        peer = next(o for o in hosts if o is not h)
        (h.dir / "spd.conf").write_text(memo_policies(h.address, peer.address))
    script = workdir / "rerun.sh"
    script.write_text(
        RERUN.format(
            top=workdir.resolve(), bin=BIN, h1=hosts[0].dir.resolve(), h2=hosts[1].dir.resolve(),
            port=port, a1=hosts[0].address, a2=hosts[1].address,
        )
    )
    script.chmod(0o755)
    return script


def run_demo(workdir: Path, out: TextIO = sys.stdout, *, keep: bool = False) -> int:
    ca = issue("pyracoon lab CA")
    hosts = [
        SimHost("host1", "127.0.0.1", workdir / "host1"),
        SimHost("host2", "127.0.0.2", workdir / "host2"),
    ]
    port = free_port([h.address for h in hosts])
    try:
        for h in hosts:
            h.dir.mkdir(parents=True)
            install_certificates(h.dir / "cert", ca, issue(h.name, ca, san=[h.address]))
            h.start_kernel()
            peer = next(o for o in hosts if o is not h)
            loaded = h.setkey("-c", stdin=memo_policies(h.address, peer.address))
            if loaded.returncode:
                why = loaded.stdout + loaded.stderr
                print(f"{h.name}: loading the SPD failed:\n{why}", file=out)
                return 1
            h.start_daemon(memo_host_config(h), "-p", str(port))
        for h in hosts:
            if not h.wait_log("used as isakmp port"):
                err = h.daemon.stderr.read() if h.daemon and h.daemon.stderr else ""
                print(f"{h.name}: pyracoon did not start: {err}", file=out)
                return 1
        h1, h2 = hosts
        if keep:
            rerun = write_rerun(workdir, hosts, port)
            print(f"# kept in {workdir}; to run it again by hand: sh {rerun}", file=out)
        sent = h1.run("pyracoon-kernel", "packet", h1.address, h2.address, "tcp", "1022", "22")
        print(f"# a packet {h1.address} -> {h2.address}: {sent.stdout.strip()}", file=out)
        ok = all(h.wait_log("IPsec-SA established", 30) for h in hosts)
        time.sleep(0.3)  # both SAs of each side
        for h in hosts:
            print(f"\n# {h.name} ({h.address}): pysetkey -D", file=out)
            print(h.setkey("-D").stdout, end="", file=out)
        for h in hosts:
            print(f"\n# {h.name}: established lines of {h.log_path.name}", file=out)
            for line in h.log_lines("established"):
                print(line, file=out)
        again = h1.run("pyracoon-kernel", "packet", h1.address, h2.address, "tcp", "1022", "22")
        print(f"\n# the next packet {h1.address} -> {h2.address}: {again.stdout.strip()}", file=out)
        return 0 if ok and again.stdout.startswith("protected") else 1
    finally:
        for h in hosts:
            h.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="pyracoon-demo",
        description="Two simulated hosts on 127.0.0.1 and 127.0.0.2 key ESP with the memo's "
        "racoon.conf and X.509 certificates; prints both SADs and the established lines.",
    )
    p.add_argument(
        "--keep",
        metavar="DIR",
        help="work in DIR and keep it, with each host's spd.conf and a rerun.sh that runs the "
        "demo again by hand (default: a temp dir, removed)",
    )
    real = p.add_argument_group(
        "real kernel",
        "--real-kernel runs the memo between two hosts of a real Linux kernel (user-mode-linux, "
        "as root): PF_KEY or XFRM, real ESP on the wire, tcpdump and both hosts' pysetkey -D",
    )
    real.add_argument("--real-kernel", action="store_true", help="use the kernel lab")
    real.add_argument("--conf", type=Path, help="racoon.conf for both hosts (default: the memo's)")
    real.add_argument(
        "--setkey", type=Path, help="setkey file for both hosts (default: the memo's)"
    )
    real.add_argument("--ipv4", action="store_true", help="10.1.0.1/.2 instead of the memo's IPv6")
    real.add_argument(
        "--kernel",
        choices=("pfkey", "xfrm"),
        help="the backend of both hosts' pysetkey and pyracoon (default: pfkey)",
    )
    args = p.parse_args(argv)
    if args.real_kernel:
        from pyracoon.memolab import run_real_demo

        keep = Path(args.keep) if args.keep else None
        return run_real_demo(
            sys.stdout,
            family=4 if args.ipv4 else 6,
            racoon_conf=args.conf,
            setkey_file=args.setkey,
            kernel=args.kernel or "pfkey",
            keep=keep,
        )
    if args.conf or args.setkey or args.ipv4 or args.kernel:
        p.error("--conf, --setkey, --ipv4 and --kernel go with --real-kernel")
    if args.keep:
        work = Path(args.keep)
        if work.exists() and any(work.iterdir()):
            print(f"pyracoon-demo: {work} is not empty", file=sys.stderr)
            return 2
        work.mkdir(parents=True, exist_ok=True)
        return run_demo(work, keep=True)
    with tempfile.TemporaryDirectory(prefix="pyracoon-demo.") as d:
        status = run_demo(Path(d))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
