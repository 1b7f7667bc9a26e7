"""End to end: the ``pysetkey`` program against ``pyracoon-kernel`` over its Unix socket.

Every seed configuration file of ``conf/`` is loaded with ``pysetkey -f`` into a simulated
kernel running in its own process, and ``-D``/``-DP`` must print the memo's lines as setkey
prints them on Linux, the kernel simulated: the memo's dumps were taken on KAME, where an SA
added without ``-m`` stays mode "any", setkey's CYCSEQ flag (0x40) stays set and dumps list the
oldest entry first with seq counting down; Linux's af_key keeps mode any as transport, drops
KAME's flags and lists the newest first, seq 1, 2, ... and 0 on the last (all seen on a real
Linux 6.1 in tests/lab/test_lab_pfkey_diff.py). Times run on the kernel's real clock, so the
``created:``/``current:`` values are masked; TZ is fixed so that the masking sees the layout
setkey prints.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pyracoon_testing import KernelProcess, tool

CONF = Path(__file__).resolve().parents[2] / "conf"
H1 = "2001:240:7:101:260:1dff:fef2:7648"
H2 = "2001:240:7:100::1:6"
# Section 10 of the memo dumps on canbe (A, ...:5450): 0x111 goes A->B, 0x112 na12 -> canbe.
A = "2001:240:7:101:280:4cff:fe20:5450"
B = "2001:240:7:101:290:99ff:fe2a:1139"

TIME = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"


def setkey(kernel: KernelProcess, *args: str, stdin: str | None = None):
    env = dict(os.environ, TZ="UTC")
    env.pop("PYRACOON_KERNEL", None)
    return subprocess.run(
        [tool("pysetkey"), "--kernel", kernel.spec, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def mask(text: str) -> str:
    """Replace what depends on the wall clock and on process ids."""
    text = re.sub(TIME, "<TIME>", text)
    text = re.sub(r"\tdiff: \d+\(s\)", "\tdiff: <N>(s)", text)
    text = re.sub(r" pid=\d+", " pid=<PID>", text)
    return re.sub(r"spid=\d+", "spid=<ID>", text)


def sa_block(src: str, dst: str, spi: int, e: str, a: str, seq: int) -> str:
    return (
        f"{src} {dst} \n"
        f"\tesp mode=transport spi={spi}(0x{spi:08x}) reqid=0(0x00000000)\n"
        f"\tE: {e}\n"
        f"\tA: {a}\n"
        "\tseq=0x00000000 replay=0 flags=0x00000000 state=mature \n"
        "\tcreated: <TIME>\tcurrent: <TIME>\n"
        "\tdiff: <N>(s)\thard: 0(s)\tsoft: 0(s)\n"
        "\tlast:                     \thard: 0(s)\tsoft: 0(s)\n"
        "\tcurrent: 0(bytes)\thard: 0(bytes)\tsoft: 0(bytes)\n"
        "\tallocated: 0\thard: 0\tsoft: 0\n"
        f"\tsadb_seq={seq} pid=<PID> refcnt=0\n"
    )


def sp_block(src: str, dst: str, direction: str, level: str, seq: int) -> str:
    return (
        f"{src}[any] {dst}[any] 255\n"
        f"\t{direction} prio def ipsec\n"
        f"\tesp/transport//{level}\n"
        "\tcreated: <TIME>  lastused:                     \n"
        "\tlifetime: 0(s) validtime: 0(s)\n"  # Linux always sends both limits
        f"\tspid=<ID> seq={seq} pid=<PID>\n"
        "\trefcnt=0\n"
    )


def transport_spd(out_src: str, out_dst: str, level: str = "require") -> str:
    """out, in and in's fwd twin, added in that order: Linux dumps the newest first."""
    return (
        sp_block(out_dst, out_src, "fwd", level, 1)
        + sp_block(out_dst, out_src, "in", level, 2)
        + sp_block(out_src, out_dst, "out", level, 0)
    )


def sa_pair(src: str, dst: str, e: str, a: str) -> str:
    """0x111 src->dst, then 0x112 back, as the seed files add them: the newest first."""
    return sa_block(dst, src, 0x112, e, a, 1) + sa_block(src, dst, 0x111, e, a, 0)


TRIPLE = "54686973 20697320 61205365 63726574 204b6579 20212121"
SHA1KEY = "54686973 20697320 61205365 63726574 204b6579"

CASES = {
    "host1": (
        sa_pair(H1, H2, f"3des-cbc  {TRIPLE}", f"hmac-sha1  {SHA1KEY}"),
        transport_spd(H1, H2),
    ),
    "host2": (
        sa_pair(H1, H2, f"3des-cbc  {TRIPLE}", f"hmac-sha1  {SHA1KEY}"),
        transport_spd(H2, H1),
    ),
    "des-md5": (
        sa_pair(
            A,
            B,
            "des-cbc  6b772c73 2e716c33",
            "hmac-md5  6b732c64 6c77336b 35323961 30636b73",
        ),
        transport_spd(A, B),
    ),
    "null-keyedmd5": (
        sa_pair(
            A,
            B,
            "null  6173613b 33327169 716a3571 32703938 3373646b 666a7863 6a76",
            "md5  6b732c64 6c77336b 35323961 30636b73",
        ),
        transport_spd(A, B),
    ),
    "blowfish-keyedsha1": (
        sa_pair(
            A,
            B,
            "blowfish-cbc  2e772c65 6d736c6b 3369",
            "sha  6b732c64 6c77336b 35323961 30636b73 326b336a",
        ),
        transport_spd(A, B),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_file_loads_and_dumps(kernel_server: KernelProcess, name: str) -> None:
    loaded = setkey(kernel_server, "-f", str(CONF / f"ipsec.conf.{name}"))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    obsolete = "WARNING: obsolete algorithm at `simple'"
    conf = CONF / f"ipsec.conf.{name}"
    warned = f"pysetkey: {conf},5: {obsolete}\npysetkey: {conf},6: {obsolete}\n"
    assert loaded.stderr == (warned if name == "null-keyedmd5" else "")
    sad, spd = CASES[name]
    dump = setkey(kernel_server, "-D")
    assert (dump.returncode, dump.stderr) == (0, "")
    assert mask(dump.stdout) == sad
    policies = setkey(kernel_server, "-DP")
    assert (policies.returncode, policies.stderr) == (0, "")
    assert mask(policies.stdout) == spd


def test_section_7_file_and_flushes(kernel_server: KernelProcess) -> None:
    assert setkey(kernel_server, "-f", str(CONF / "ipsec.conf.host1")).returncode == 0
    assert setkey(kernel_server, "-f", str(CONF / "ipsec.conf")).returncode == 0
    assert setkey(kernel_server, "-D").stdout == "No SAD entries.\n"
    spd = setkey(kernel_server, "-DP").stdout
    assert mask(spd) == transport_spd("::/0", "::/0", "use")
    flushed = setkey(kernel_server, "-FP")
    assert (flushed.returncode, flushed.stdout, flushed.stderr) == (0, "", "")
    assert setkey(kernel_server, "-DP").stdout == "No SPD entries.\n"
    assert setkey(kernel_server, "-f", str(CONF / "ipsec.conf.des-md5")).returncode == 0
    assert setkey(kernel_server, "-F").returncode == 0
    assert setkey(kernel_server, "-D").stdout == "No SAD entries.\n"
    assert "spid=" in setkey(kernel_server, "-DP").stdout


def test_a_file_with_a_syntax_error_stops_there(
    kernel_server: KernelProcess, tmp_path: Path
) -> None:
    """ipsec-tools' setkey runs each command as it parses it: the lines before the error stay."""
    assert setkey(kernel_server, "-f", str(CONF / "ipsec.conf.host1")).returncode == 0
    bad = tmp_path / "bad.conf"
    bad.write_text(
        "spdflush;\nflush;\n"
        f'add {A} {B} esp 0x111 -E des-cbc "kw,s.ql3" -A hmac-md5 "ks,dlw3k529a0cks";\n'
        f'add {B} {A} esp 0x112 -E des-cbc "kw,s.ql3" -A hmac-md5 "ks,dlw3k529a0cks"\n'
        f"spdadd {A} {B} any -P out ipsec esp/transport//require;\n"
    )
    result = setkey(kernel_server, "-f", str(bad))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"pysetkey: {bad},5: syntax error at `spdadd'\npysetkey: {bad},5: parse failed\n"
    )
    sad = setkey(kernel_server, "-D").stdout
    assert "spi=273(0x00000111)" in sad and "0x00000112" not in sad
    assert setkey(kernel_server, "-DP").stdout == "No SPD entries.\n"


def test_duplicate_add_is_refused_with_a_status(kernel_server: KernelProcess) -> None:
    assert setkey(kernel_server, "-f", str(CONF / "ipsec.conf.host1")).returncode == 0
    again = setkey(kernel_server, "-f", str(CONF / "ipsec.conf.host1"))
    # spdflush/flush at the top clear the tables, so loading twice succeeds...
    assert again.returncode == 0
    dup = CONF / "ipsec.conf.host1"
    lines = dup.read_text().splitlines()
    adds = "\n".join(line for line in lines if line.startswith("add")) + "\n"
    result = setkey(kernel_server, "-c", stdin=adds)
    # ...but adding the same SAs again is not
    assert result.returncode == 1
    assert result.stdout == (
        "The result of line 1: File exists.\nThe result of line 2: File exists.\n"
    )


def test_kernel_unavailable(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("PYRACOON_KERNEL", None)
    result = subprocess.run(
        [tool("pysetkey"), "--kernel", f"unix:{tmp_path}/none.sock", "-D"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"pysetkey: no simulated kernel at {tmp_path}/none.sock")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_environment_selects_the_kernel(kernel_server: KernelProcess) -> None:
    env = dict(os.environ, PYRACOON_KERNEL=kernel_server.spec)
    result = subprocess.run(
        [tool("pysetkey"), "-D"], capture_output=True, text=True, env=env, timeout=30
    )
    assert (result.returncode, result.stdout) == (0, "No SAD entries.\n")


def test_promiscuous_monitor_sees_another_process_at_work(kernel_server: KernelProcess) -> None:
    env = dict(os.environ, TZ="UTC")
    env.pop("PYRACOON_KERNEL", None)
    monitor = subprocess.Popen(
        [tool("pysetkey"), "--kernel", kernel_server.spec, "-x"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        seen = b""
        deadline = time.monotonic() + 15
        # the first lines are timestamps of the kernel's X_PROMISC acknowledgement, which
        # Linux echoes to every socket -- twice to this one, now promiscuous
        while seen.count(b"\n") < 2 and time.monotonic() < deadline:
            if select.select([monitor.stdout], [], [], 0.1)[0]:
                seen += os.read(monitor.stdout.fileno(), 65536)
        assert re.fullmatch(rb"(\d\d:\d\d:\d\d\.\d{6} \n){2}", seen), seen
        loaded = setkey(kernel_server, "-f", str(CONF / "ipsec.conf.des-md5"))
        assert loaded.returncode == 0
        while seen.count(b"type=3 ") < 6 and time.monotonic() < deadline:
            if select.select([monitor.stdout], [], [], 0.1)[0]:
                seen += os.read(monitor.stdout.fileno(), 65536)
    finally:
        monitor.send_signal(signal.SIGINT)
        rest, err = monitor.communicate(timeout=15)
    text = (seen + rest).decode()
    assert monitor.returncode == 0 and err == b""
    # each ADD three times: the request as sent, then the kernel's broadcast, which a
    # promiscuous socket gets twice on Linux ("you receive it twice", says af_key)
    assert text.count("sadb_msg{ version=2 type=3 errno=0 satype=3\n") == 6
    assert "sadb_sa{ spi=273 replay=0 state=0\n" in text
    assert "sadb_x_policy{ type=2 dir=2 " in text  # the spdadd of the out policy
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{6} $", text, re.M)
