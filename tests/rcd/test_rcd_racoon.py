"""rc.d/racoon.sh: the memo's start/stop script, for pyracoon, with restart/reload/status."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyracoon.lab import SimHost, free_port, program

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "rc.d" / "racoon.sh"

CONF = """\
path pidfile "{dir}/racoon.pid";
path pre_shared_key "{dir}/psk.txt";
listen {{ isakmp 127.0.0.1; adminsock disabled; }}
remote anonymous {{
  exchange_mode main;
  proposal {{ encryption_algorithm 3des; hash_algorithm sha1;
             authentication_method pre_shared_key; dh_group 2; }}
}}
sainfo anonymous {{
  encryption_algorithm 3des; authentication_algorithm hmac_sha1;
  compression_algorithm deflate;
}}
"""


@pytest.fixture
def host(short_tmp: Path) -> Iterator[SimHost]:
    h = SimHost("host1", "127.0.0.1", short_tmp / "host1")
    h.dir.mkdir()
    (h.dir / "psk.txt").write_text("127.0.0.2 secret\n")
    (h.dir / "psk.txt").chmod(0o600)
    (h.dir / "racoon.conf").write_text(CONF.format(dir=h.dir))
    h.start_kernel()
    yield h
    pid_file = h.dir / "racoon.pid"
    if pid_file.exists():
        subprocess.run(["kill", pid_file.read_text().strip()], check=False)
    h.stop()


def rc(host: SimHost, verb: str) -> subprocess.CompletedProcess:
    port = free_port([host.address])
    env = dict(
        os.environ,
        RC_CONF="/nonexistent/rc.conf",
        pyracoon=program("pyracoon"),
        racoon_conf=str(host.dir / "racoon.conf"),
        racoon_pidfile=str(host.dir / "racoon.pid"),
        racoon_flags=f"-p {port} -l {host.log_path} --kernel {host.kernel_spec}",
    )
    return subprocess.run(
        ["sh", str(SCRIPT), verb], capture_output=True, text=True, env=env, timeout=60
    )


def test_start_status_reload_restart_stop(host):
    started = rc(host, "start")
    assert started.returncode == 0, started.stderr
    assert started.stdout == " racoon\n"
    pid = int((host.dir / "racoon.pid").read_text())
    status = rc(host, "status")
    assert status.returncode == 0 and status.stdout == f"racoon is running as pid {pid}.\n"
    again = rc(host, "start")
    assert again.returncode == 1 and f"already running (pid {pid})" in again.stderr

    assert rc(host, "reload").returncode == 0
    deadline = time.monotonic() + 10
    while len(host.log_lines("Reading configuration")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(host.log_lines("Reading configuration")) == 2

    restarted = rc(host, "restart")
    assert restarted.returncode == 0 and restarted.stdout == " racoon\n racoon\n"
    new_pid = int((host.dir / "racoon.pid").read_text())
    assert new_pid != pid
    assert host.log_lines(f"pyracoon process {pid} shutdown")

    stopped = rc(host, "stop")
    assert stopped.returncode == 0 and stopped.stdout == " racoon\n"
    assert not (host.dir / "racoon.pid").exists()
    gone = rc(host, "status")
    assert gone.returncode == 1 and gone.stdout == "racoon is not running.\n"
    assert rc(host, "stop").returncode == 1


def test_a_failed_start_says_why_and_fails(host):
    (host.dir / "racoon.conf").write_text("remote anonymous { }\n")
    out = rc(host, "start")
    assert out.returncode == 1
    assert "racoon.conf:1: no exchange mode specified." in out.stderr and out.stdout == ""


def test_bad_verb_prints_usage_and_exits_64(host):
    out = rc(host, "bogus")
    assert out.returncode == 64
    assert out.stdout == "Usage: racoon.sh { start | stop | restart | reload | status }\n"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_is_valid(tmp_path):
    unit = tmp_path / "pyracoon.service"
    text = (TOP / "rc.d" / "pyracoon.service").read_text()
    unit.write_text(text.replace("/usr/local/bin/pyracoon", program("pyracoon")))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "pyracoon.service" not in out.stderr or out.returncode == 0, out.stderr


def test_systemd_unit_matches_the_daemon():
    text = (TOP / "rc.d" / "pyracoon.service").read_text()
    assert "Type=forking" in text and "PIDFile=/run/racoon.pid" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text


def checkout_copy(tmp: Path, script: str) -> Path:
    """rc.d/SCRIPT in a checkout-shaped directory whose .venv/bin holds our programs."""
    (tmp / "rc.d").mkdir(parents=True)
    (tmp / ".venv").mkdir()
    (tmp / ".venv" / "bin").symlink_to(Path(program("pyracoon")).parent)
    copy = tmp / "rc.d" / script
    copy.write_text((TOP / "rc.d" / script).read_text())
    return copy


def test_start_as_typed_finds_the_checkouts_pyracoon(host, short_tmp):
    """No pyracoon setting, no venv on PATH: the README's 'sh rc.d/racoon.sh start' works."""
    script = checkout_copy(short_tmp / "co", "racoon.sh")
    port = free_port([host.address])
    env = {
        "PATH": "/usr/bin:/bin",
        "RC_CONF": "/nonexistent/rc.conf",
        "racoon_conf": str(host.dir / "racoon.conf"),
        "racoon_pidfile": str(host.dir / "racoon.pid"),
        "racoon_flags": f"-p {port} -l {host.log_path} --kernel {host.kernel_spec}",
    }
    run = subprocess.run(["sh", "rc.d/racoon.sh", "start"], cwd=script.parent.parent, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    stop = subprocess.run(["sh", str(script), "stop"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert stop.returncode == 0, stop.stderr


def test_no_program_found_says_what_to_set(short_tmp):
    (short_tmp / "rc.d").mkdir()
    script = short_tmp / "rc.d" / "racoon.sh"
    script.write_text((TOP / "rc.d" / "racoon.sh").read_text())
    env = {"PATH": "/nonexistent", "RC_CONF": "/nonexistent/rc.conf",
           "racoon_pidfile": str(short_tmp / "racoon.pid")}  # fmt: skip
    run = subprocess.run(["/bin/sh", str(script), "start"], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    if Path("/usr/local/sbin/pyracoon").exists() or Path("/usr/local/bin/pyracoon").exists():
        pytest.skip("pyracoon is installed in /usr/local on this machine")
    assert run.returncode == 1
    assert "cannot find pyracoon" in run.stderr and "set pyracoon=PATH" in run.stderr


def test_without_racoon_conf_the_daemon_chooses_its_default(short_tmp):
    """One default configuration path per platform, the daemon's: the script passes no -f."""
    stub = short_tmp / "pyracoon"
    stub.write_text(f'#!/bin/sh\necho "$@" > {short_tmp / "args"}\n')
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "RC_CONF": "/nonexistent/rc.conf", "pyracoon": str(stub),
           "racoon_pidfile": str(short_tmp / "racoon.pid"), "racoon_flags": "-l /dev/null"}
    run = subprocess.run(["sh", str(SCRIPT), "start"], env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (short_tmp / "args").read_text() == "-l /dev/null\n"
    env["racoon_conf"] = "/etc/racoon/other.conf"
    subprocess.run(["sh", str(SCRIPT), "start"], env=env, timeout=60)
    assert (short_tmp / "args").read_text() == "-f /etc/racoon/other.conf -l /dev/null\n"
