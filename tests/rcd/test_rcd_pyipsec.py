"""rc.d/pyipsec.sh loads the SPD at boot the way the memo's ipsec_enable/ipsec_file do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pyracoon_testing import tool

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "rc.d" / "pyipsec.sh"


def rc(kernel, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYRACOON_KERNEL=kernel.spec, pysetkey=tool("pysetkey"))
    env.setdefault("RC_CONF", "/nonexistent/rc.conf")
    env.update(settings)
    return subprocess.run(
        ["sh", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def spd(kernel) -> str:
    env = dict(os.environ, PYRACOON_KERNEL=kernel.spec)
    return subprocess.run(
        [tool("pysetkey"), "-DP"], capture_output=True, text=True, env=env, timeout=30
    ).stdout


def test_start_loads_the_memo_spd_and_stop_flushes_it(kernel_server):
    conf = str(TOP / "conf" / "ipsec.conf")
    started = rc(kernel_server, "start", ipsec_enable="YES", ipsec_file=conf)
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout == " ipsec\n"
    policies = spd(kernel_server)
    assert policies.count("::/0[any] ::/0[any] 255\n") == 3  # out, in, and Linux's fwd copy
    assert "\tout prio def ipsec\n\tesp/transport//use\n" in policies
    status = rc(kernel_server, "status")
    assert status.returncode == 0 and "esp/transport//use" in status.stdout
    stopped = rc(kernel_server, "stop")
    assert stopped.returncode == 0 and stopped.stdout == " ipsec\n"
    assert spd(kernel_server) == "No SPD entries.\n"


def test_settings_come_from_rc_conf(kernel_server, tmp_path):
    rc_conf = tmp_path / "rc.conf"
    rc_conf.write_text(f'ipsec_enable="YES"\nipsec_file="{TOP / "conf" / "ipsec.conf.host1"}"\n')
    assert rc(kernel_server, "start", RC_CONF=str(rc_conf)).returncode == 0
    assert "esp/transport//require" in spd(kernel_server)


def test_start_does_nothing_unless_enabled(kernel_server):
    out = rc(kernel_server, "start", ipsec_file=str(TOP / "conf" / "ipsec.conf"))
    assert out.returncode == 0 and "ipsec_enable is not YES" in out.stderr
    assert spd(kernel_server) == "No SPD entries.\n"


def test_a_broken_file_fails_start(kernel_server, tmp_path):
    bad = tmp_path / "ipsec.conf"
    bad.write_text("spdadd ::/0 ::/0 any -P sideways ipsec esp/transport//use;\n")
    out = rc(kernel_server, "start", ipsec_enable="YES", ipsec_file=str(bad))
    assert out.returncode == 1
    assert f"pysetkey: {bad},1: parse failed" in out.stderr
    missing = rc(kernel_server, "start", ipsec_enable="YES", ipsec_file=str(tmp_path / "none"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_unknown_verb_prints_usage_and_exits_64(kernel_server):
    out = rc(kernel_server, "restartt")
    assert out.returncode == 64
    assert out.stdout == "Usage: pyipsec.sh { start | stop | reload | status }\n"


def test_manual_keying_example_runs_and_cleans_up():
    env = dict(os.environ, PYRACOON_BIN=str(Path(tool("pysetkey")).parent))
    env.pop("PYRACOON_KERNEL", None)
    out = subprocess.run(
        ["sh", str(TOP / "docs" / "examples" / "manual-keying.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "\tE: 3des-cbc  54686973 20697320 61205365 63726574 204b6579 20212121\n" in out.stdout
    assert "\tA: hmac-sha1  54686973 20697320 61205365 63726574 204b6579\n" in out.stdout
    assert out.stdout.endswith("protected spi=0x111\n")
    assert "pyracoon-kernel: serving a simulated kernel on /tmp/pyracoon-demo." in out.stderr


def test_status_as_typed_finds_the_checkouts_pysetkey(kernel_server, tmp_path):
    """No pysetkey setting, no venv on PATH: the README's 'sh rc.d/pyipsec.sh ...' works."""
    co = tmp_path / "co"
    (co / "rc.d").mkdir(parents=True)
    (co / ".venv").mkdir()
    (co / ".venv" / "bin").symlink_to(Path(tool("pysetkey")).parent)
    (co / "rc.d" / "pyipsec.sh").write_text(SCRIPT.read_text())
    env = {"PATH": "/usr/bin:/bin", "RC_CONF": "/nonexistent/rc.conf",
           "PYRACOON_KERNEL": kernel_server.spec, "ipsec_enable": "YES",
           "ipsec_file": str(TOP / "conf" / "ipsec.conf")}  # fmt: skip
    for verb in ("start", "status", "reload", "stop"):
        out = subprocess.run(["sh", "rc.d/pyipsec.sh", verb], cwd=co, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, (verb, out.stdout, out.stderr)
    assert spd(kernel_server) == "No SPD entries.\n"
