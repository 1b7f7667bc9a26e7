"""The README's shell examples, run as a newcomer would paste them.

Each block marked ``<!-- readme-example: NAME -->`` is extracted from README.md itself, so the
README and this test cannot drift apart. The only changes made to the text are the ones a
shared test machine needs: the fixed /tmp paths become a private directory, the loopback
example's port 15000 a free one, and ``.venv/bin`` the environment running the tests (when that
is not the checkout's ``.venv``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyracoon.lab import free_port

TOP = Path(__file__).resolve().parents[2]
README = TOP / "README.md"
BIN = Path(sys.executable).parent


def example(name: str) -> str:
    """The fenced block that follows ``<!-- readme-example: NAME -->``."""
    text = README.read_text()
    m = re.search(
        rf"<!-- readme-example: {re.escape(name)} -->\n```(?:sh)?\n(.*?)\n```", text, re.S
    )
    assert m, f"README.md has no example {name!r}"
    return m.group(1) + "\n"


def localise(script: str, tmp: Path, port: int | None = None) -> str:
    script = script.replace("/tmp/", f"{tmp}/")
    if port is not None:
        script = script.replace("15000", str(port))
    if (TOP / ".venv" / "bin").resolve() != BIN.resolve():
        script = script.replace("$PWD/.venv/bin", str(BIN)).replace(".venv/bin/", f"{BIN}/")
    return script


def run_sh(script: str, tmp: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYRACOON_", "racoon_"))}
    try:
        return subprocess.run(
            ["sh", "-ex", "-c", script], cwd=TOP, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
    finally:
        stop_leftovers(tmp)


def stop_leftovers(tmp: Path) -> None:
    """After a failure: stop whatever the example started (by the pids it recorded)."""
    for pidfile in sorted(tmp.rglob("*.pid"), key=lambda p: "kernel" in p.name):
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (ValueError, OSError):
            pass


def test_the_loopback_example_and_the_commands_it_leads_to(short_tmp: Path) -> None:
    port = free_port(["127.0.0.1", "127.0.0.2"])
    names = ["loopback-start", "loopback-commands", "rc-racoon", "rc-pyipsec", "loopback-stop"]
    script = "".join(localise(example(n), short_tmp, port) for n in names)
    out = run_sh(script, short_tmp)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert out.stdout.count("\tesp mode=transport spi=") == 2, log  # host 1's SAD
    assert re.search(r"^protected spi=0x[0-9a-f]+$", out.stdout, re.M), log
    assert f"127.0.0.2.{port} " in out.stdout, log  # show-sa isakmp
    assert "IPsec-SA established: ESP/Transport" in out.stdout, log
    assert re.search(r"^racoon is running as pid \d+\.$", out.stdout, re.M), log
    assert "\tesp/transport//use\n" in out.stdout, log  # pyipsec.sh status
    assert not (short_tmp / "pyracoon-loopback").exists()  # the last block removed it all
    assert not (short_tmp / "pyipsec.sock").exists()


def test_the_manual_keying_block_does_not_race_the_kernel(short_tmp: Path) -> None:
    """The by-hand block as written; several times, since the race it had was 4 runs in 10."""
    block = localise(example("manual-keying"), short_tmp)
    for _ in range(5):
        out = run_sh(block, short_tmp)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "\tE: 3des-cbc  54686973 20697320 61205365 63726574 204b6579 20212121\n" in (
            out.stdout
        )
        assert "\tesp/transport//require\n" in out.stdout
        deadline = time.monotonic() + 10  # kill only sends SIGTERM: the kernel then cleans up
        while (short_tmp / "kernel.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (short_tmp / "kernel.sock").exists()


def apt_packages(text: str) -> set[str]:
    """The package names of the first ``apt-get install`` command in ``text``."""
    joined = text.replace("\\\n", " ")
    line = next(ln for ln in joined.splitlines() if "apt-get install" in ln)
    words = line.split("apt-get install", 1)[1].split("#")[0].split()
    return {w for w in words if not w.startswith("-")}


def test_the_readme_apt_line_is_what_ci_installs() -> None:
    readme = apt_packages(example("apt"))
    ci = apt_packages((TOP / ".ci" / "run").read_text())
    assert readme == ci
    assert "libstrongswan-standard-plugins" in ci  # charon's openssl plugin: 3DES, AES
    assert "--no-install-recommends" in example("apt")


def ci_section(title: str) -> list[str]:
    """The commands under ``# README: TITLE`` in .ci/run, up to the next blank line."""
    lines = (TOP / ".ci" / "run").read_text().splitlines()
    start = lines.index(f"# README: {title}") + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return [ln.strip() for ln in lines[start:end] if ln.strip()]


def test_the_readme_test_commands_are_what_ci_runs() -> None:
    """README's one-line test command is .ci/run's test steps joined by ``&&``, in order."""
    readme = [c.strip() for c in example("tests").strip().split("&&")]
    assert readme == ci_section("tests")
    assert ".venv/bin/mypy pyracoon" in readme  # the type check is a step, not an aside


@pytest.mark.parametrize("name", ["loopback-start", "loopback-commands", "loopback-stop"])
def test_examples_use_only_documented_programs(name: str) -> None:
    """Every program the loopback blocks run is one this project installs, or POSIX."""
    ours = {"pyracoon", "pyracoonctl", "pysetkey", "pyracoon-kernel"}
    posix = {"export", "for", "do", "done", "mkdir", "printf", "chmod", "cat", "grep", "sh",
             "kill", "rm", "spdadd", "path", "listen", "remote", "exchange_mode",
             "my_identifier", "proposal", "authentication_method", "sainfo",
             "compression_algorithm", "encryption_algorithm", "}", "EOF", "h=$d/h$n",
             "racoon_pidfile=$d/h$n/racoon.pid"}  # fmt: skip
    for line in example(name).splitlines():
        word = line.split("#")[0].split()[:1]
        if word:
            assert word[0] in ours | posix, line
