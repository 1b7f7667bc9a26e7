"""The XFRM backend on a real Linux kernel: pysetkey and pyracoon with ``--kernel xfrm``.

Three independent views of one kernel are compared. ``ip xfrm`` (iproute2, C, XFRM netlink)
shows what the kernel holds; ``pysetkey --kernel pfkey`` reads it through the kernel's own
af_key translation; ``pysetkey --kernel xfrm`` through ours. What ours loads must be what
``ip xfrm`` shows, what ``ip xfrm`` adds must print as af_key prints it, and the traffic must
flow as ESP.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from pyracoon.kernellab import Host, KernelLab
from pyracoon.memolab import (
    MEMO_HOST1,
    MEMO_HOST2,
    V4_HOST1,
    Outcome,
    automatic_keying,
    conf_file,
    manual_keying,
    ping,
    require_policies,
    start_daemons,
    stop_daemons,
    xfrm_states,
)

K16 = "0x00112233445566778899aabbccddeeff"
K32 = K16 + K16[2:]
K48 = K32 + K16[2:]
K64 = K32 + K32[2:]

SAD = f"""flush;
add 10.1.0.1 10.1.0.2 esp 0x111 -m transport
    -E 3des-cbc "This is a Secret Key !!!" -A hmac-sha1 "This is a Secret Key";
add 10.1.0.2 10.1.0.1 esp 0x112 -m tunnel -u 7 -lh 100 -ls 80 -bh 100000 -bs 50000
    -E aes-cbc {K16} -A hmac-sha256 {K32};
add 10.1.0.2 10.1.0.1 ipcomp 0x1000 -m transport -C deflate;
add 10.1.0.2 10.1.0.3 ah 0x300 -A hmac-md5 {K16};
add fd00::1 fd00::2 esp 0x400 -E null -A aes-xcbc-mac {K16};
add fd00::2 fd00::1 esp 0x401 -E blowfish-cbc {K16} -A hmac-sha512 {K64};
add 10.1.0.1 10.1.0.2 esp 0x402 -E cast128-cbc {K16} -A hmac-sha384 {K48};
"""
SPD = """spdflush;
spdadd 10.1.0.1 10.1.0.2 any -P out ipsec esp/transport//require;
spdadd 10.1.0.2 10.1.0.1 any -P in ipsec esp/transport//use;
spdadd 10.0.0.0/24[any] 10.0.1.0/24[80] tcp -P out prio 10
    ipsec esp/tunnel/10.1.0.1-10.1.0.2/unique:5 ah/transport//require;
spdadd fd00::1 fd00::2 icmp6 -P out discard;
spdadd fd00::1 fd00::3 any -P out none;
"""

# times, message numbers, and a policy's kernel reference count (af_key reports it in
# sadb_msg_reserved; XFRM does not expose it, so the xfrm backend says 0)
VARYING = re.compile(
    r"created: .*|last: .*|diff: \d+|sadb_seq=\d+ pid=\d+|seq=\d+ pid=\d+|"
    r"current: \w{3} .*\d{4}|\trefcnt=\d+$",
    re.MULTILINE,
)


def setkey(h: Host, kernel: str, *args: str, stdin: str | None = None) -> str:
    r = h.run(["pysetkey", "--kernel", kernel, *args], input=stdin)
    return r.stdout + r.stderr


def entries(text: str) -> list[str]:
    """The entries of a -D/-DP listing, times and message numbers masked, in a fixed order."""
    blocks = re.split(r"\n(?=\S)", text.strip())
    return sorted(VARYING.sub("<>", b) for b in blocks)


def ip_blocks(text: str) -> dict[str, str]:
    """``ip xfrm state`` blocks by SPI."""
    out = {}
    for block in re.split(r"\n(?=src )", text.strip()):
        m = re.search(r"spi (0x[0-9a-f]+)", block)
        if m:
            out[m[1]] = block
    return out


def test_what_pysetkey_xfrm_loads_is_what_ip_xfrm_shows(lab: KernelLab, tmp_path):
    a = lab.add_host("a", "10.1.0.1/24", "fd00::1/64")
    f = lab.dir / "ipsec.conf"
    f.write_text(SAD + SPD)
    r = a.run(["pysetkey", "--kernel", "xfrm", "-f", str(f)])
    assert (r.rc, r.stdout, r.stderr) == (0, "", ""), r
    states = ip_blocks(a.run("ip -s xfrm state").stdout)
    assert set(states) == {
        "0x00000111", "0x00000112", "0x00001000", "0x00000300", "0x00000400", "0x00000401",
        "0x00000402",
    }  # fmt: skip
    s = states["0x00000111"]
    assert "src 10.1.0.1 dst 10.1.0.2" in s and "proto esp" in s and "mode transport" in s
    assert "auth-trunc hmac(sha1) 0x54686973206973206120536563726574204b6579 (160 bits) 96" in s
    assert "enc cbc(des3_ede) 0x54686973206973206120536563726574204b657920212121" in s
    assert "sel src 0.0.0.0/0 dst 0.0.0.0/0" in s  # af_key leaves an SA's selector open too
    s = states["0x00000112"]
    assert "mode tunnel" in s and "reqid 7(0x00000007)" in s
    assert f"auth-trunc hmac(sha256) {K32} (256 bits) 128" in s  # RFC 4868 truncation
    assert f"enc cbc(aes) {K16} (128 bits)" in s
    assert "limit: soft 50000(bytes), hard 100000(bytes)" in s
    assert "expire add: soft 80(sec), hard 100(sec)" in s
    assert "proto comp" in states["0x00001000"] and "comp deflate" in states["0x00001000"]
    assert f"auth-trunc hmac(md5) {K16} (128 bits) 96" in states["0x00000300"]
    s = states["0x00000400"]
    assert "enc ecb(cipher_null)" in s and f"auth-trunc xcbc(aes) {K16} (128 bits) 96" in s
    assert "src fd00::1 dst fd00::2" in s
    assert "enc cbc(blowfish)" in states["0x00000401"]
    assert "auth-trunc hmac(sha512)" in states["0x00000401"] and ") 256" in states["0x00000401"]
    assert "enc cbc(cast5)" in states["0x00000402"]
    assert "auth-trunc hmac(sha384)" in states["0x00000402"] and ") 192" in states["0x00000402"]

    pol = a.run("ip xfrm policy").stdout
    assert re.search(
        r"src 10\.1\.0\.1/32 dst 10\.1\.0\.2/32 \n\tdir out priority 2147483648 ptype main \n"
        r"\ttmpl src 0\.0\.0\.0 dst 0\.0\.0\.0\n\t\tproto esp reqid 0 mode transport\n",
        pol,
    ), pol
    # in ... use: an optional template, and Linux setkey's fwd twin
    for d in ("in", "fwd"):
        assert re.search(
            rf"src 10\.1\.0\.2/32 dst 10\.1\.0\.1/32 \n\tdir {d} priority \d+ ptype main \n"
            r"\ttmpl src 0\.0\.0\.0 dst 0\.0\.0\.0\n\t\tproto esp reqid 0 mode transport\n"
            r"\t\tlevel use",
            pol,
        ), (d, pol)
    assert re.search(
        r"src 10\.0\.0\.0/24 dst 10\.0\.1\.0/24 proto tcp dport 80 \n\tdir out priority \d+ "
        r"ptype main \n\ttmpl src 10\.1\.0\.1 dst 10\.1\.0\.2\n\t\tproto esp reqid 5 mode tunnel\n"
        r"\ttmpl src 0\.0\.0\.0 dst 0\.0\.0\.0\n\t\tproto ah reqid 0 mode transport",
        pol,
    ), pol
    assert "src fd00::1/128 dst fd00::2/128 proto ipv6-icmp \n\tdir out action block" in pol
    assert re.search(r"src fd00::1/128 dst fd00::3/128 \n\tdir out priority \d+ ptype main \n", pol)

    # and the kernel's own af_key translation of the same state prints what ours prints
    for args in (("-D",), ("-DP",)):
        ours, kernels = setkey(a, "xfrm", *args), setkey(a, "pfkey", *args)
        assert entries(ours) == entries(kernels), (args, ours, kernels)
        assert len(entries(ours)) == (7 if args == ("-D",) else 6)


def test_what_ip_xfrm_adds_pysetkey_xfrm_prints_as_af_key_does(lab: KernelLab):
    a = lab.add_host("a", "10.1.0.1/24")
    gcm = "0x" + "11" * 20
    for cmd in (
        f"ip xfrm state add src 10.1.0.1 dst 10.1.0.2 proto esp spi 0x500 reqid 9 mode tunnel "
        f"aead 'rfc4106(gcm(aes))' {gcm} 128",
        f"ip xfrm state add src 10.1.0.2 dst 10.1.0.1 proto esp spi 0x501 mode transport "
        f"replay-window 16 auth-trunc 'hmac(sha256)' {K32} 128 enc 'cbc(aes)' {K16} "
        f"limit time-hard 300 limit time-soft 200 limit byte-hard 9000",
        # (Linux 6.1 refuses an optional tunnel template in an outbound policy)
        "ip xfrm policy add src 10.2.0.0/24 dst 10.1.0.0/24 proto udp dport 4500 dir in "
        "priority 100 tmpl src 10.1.0.2 dst 10.1.0.1 proto esp reqid 9 mode tunnel level use",
        "ip xfrm policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir fwd "
        "tmpl src 10.1.0.2 dst 10.1.0.1 proto esp mode tunnel",
        "ip xfrm policy add src 10.1.0.5 dst 10.1.0.6 dir in action block",
    ):
        assert a.run(cmd).ok, cmd
    d = setkey(a, "xfrm", "-D")
    assert "esp mode=tunnel spi=1280(0x00000500) reqid=9(0x00000009)" in d, d
    # (setkey has no name for AES-GCM: it prints the SADB number, 20, over af_key too)
    assert "E: 20  11111111 11111111 11111111 11111111 11111111" in d, d
    assert "esp mode=transport spi=1281(0x00000501) reqid=0(0x00000000)" in d
    assert "A: hmac-sha256  00112233 44556677 8899aabb ccddeeff 00112233" in d
    assert "E: aes-cbc  00112233 44556677 8899aabb ccddeeff" in d
    assert "hard: 300(s)\tsoft: 200(s)" in d and "hard: 9000(bytes)" in d
    assert "replay=16" in d
    dp = setkey(a, "xfrm", "-DP")
    assert "10.2.0.0/24[any] 10.1.0.0/24[4500] udp\n\tin prio" in dp, dp
    assert "esp/tunnel/10.1.0.2-10.1.0.1/use:9" in dp, dp
    # ip's default priority is 0, which setkey prints as no priority at all
    assert "10.2.0.0/24[any] 10.1.0.0/24[any] 255\n\tfwd ipsec\n" in dp, dp
    assert "esp/tunnel/10.1.0.2-10.1.0.1/require" in dp, dp
    assert "10.1.0.5[any] 10.1.0.6[any] 255\n\tin discard" in dp, dp
    for args in (("-D",), ("-DP",)):
        ours, kernels = setkey(a, "xfrm", *args), setkey(a, "pfkey", *args)
        # af_key leaves out a combined-mode (AEAD) SA's key; that one line is all that differs
        aead_line = "\tE: 20  11111111 11111111 11111111 11111111 11111111\n"
        assert aead_line not in kernels
        assert entries(ours.replace(aead_line, "")) == entries(kernels), (args, ours, kernels)


def test_get_delete_errors_and_flushes_answer_as_over_pfkey(lab: KernelLab):
    a = lab.add_host("a", "10.1.0.1/24", "fd00::1/64")
    assert setkey(a, "xfrm", "-c", stdin=SAD + SPD) == ""
    script = (
        "get 10.1.0.1 10.1.0.2 esp 0x111;\n"
        "get 10.1.0.1 10.1.0.2 esp 0x999;\n"
        "delete 10.1.0.2 10.1.0.3 ah 0x300;\n"
        "delete 10.1.0.2 10.1.0.3 ah 0x300;\n"
        'add 10.1.0.1 10.1.0.2 esp 0x111 -E 3des-cbc "This is a Secret Key !!!";\n'
        "spdadd 10.1.0.1 10.1.0.2 any -P out ipsec esp/transport//require;\n"
        "spddelete fd00::1 fd00::3 any -P out;\n"
        "spddelete fd00::1 fd00::3 any -P out;\n"
    )
    ours = setkey(a, "xfrm", "-c", stdin=script)
    assert "E: 3des-cbc  54686973 20697320 61205365 63726574 204b6579 20212121" in ours
    assert "No such process" in ours and "File exists" in ours and "No entry" in ours, ours
    assert "spi 0x00000300" not in a.run("ip xfrm state").stdout
    assert "dst fd00::3/128" not in a.run("ip xfrm policy").stdout
    # the same script's errors over af_key, against a kernel put back the same way
    assert setkey(a, "pfkey", "-c", stdin="flush;\nspdflush;\n" + SAD + SPD) == ""
    kernels = setkey(a, "pfkey", "-c", stdin=script)
    assert VARYING.sub("<>", ours) == VARYING.sub("<>", kernels), (ours, kernels)
    assert setkey(a, "xfrm", "-F") == "" and a.run("ip xfrm state").stdout == ""
    assert setkey(a, "xfrm", "-FP") == "" and a.run("ip xfrm policy").stdout == ""
    assert setkey(a, "xfrm", "-D") == "No SAD entries.\n"
    assert setkey(a, "xfrm", "-DP") == "No SPD entries.\n"


def test_monitor_shows_what_others_do_and_the_kernels_acquire_and_expire(lab: KernelLab):
    a = lab.add_host("a", "10.1.0.1/24")
    mon = a.spawn("exec pysetkey --kernel xfrm -x", name="monitor")
    time.sleep(1.5)
    for cmd in (
        f"ip xfrm state add src 10.1.0.1 dst 10.1.0.2 proto esp spi 0x600 "
        f"auth-trunc 'hmac(sha1)' 0x{'22' * 20} 96 enc 'cbc(aes)' {K16}",
        "ip xfrm state delete src 10.1.0.1 dst 10.1.0.2 proto esp spi 0x600",
        "ip xfrm policy add src 10.1.0.1 dst 10.1.0.9 dir out tmpl proto esp mode transport",
        "ping -c 1 -W 1 10.1.0.9",  # no SA: the kernel asks for one
        "ip xfrm policy flush",
        "ip xfrm state flush",
    ):
        a.run(cmd)
    setkey(
        a,
        "pfkey",
        "-c",
        stdin=f"add 10.1.0.1 10.1.0.2 esp 0x700 -lh 3 -ls 1 -E aes-cbc {K16};\n",
    )
    time.sleep(5)  # the soft expiry at 1 s, the hard one at 3 s
    mon.stop()
    text = mon.output()
    kinds = re.findall(r"sadb_msg\{ version=2 type=(\d+) errno=0 satype=(\d+)", text)
    assert ("3", "3") in kinds, text  # ADD ESP, by ip
    assert ("4", "3") in kinds  # DELETE
    assert ("14", "0") in kinds  # X_SPDADD
    assert ("6", "3") in kinds  # ACQUIRE
    assert ("19", "0") in kinds  # X_SPDFLUSH
    assert ("9", "0") in kinds  # FLUSH
    assert kinds.count(("8", "3")) == 2, text  # EXPIRE soft, then hard
    assert "sadb_sa{ spi=1536 " in text and "sadb_sa{ spi=1792 " in text


def explain(o: Outcome) -> str:
    logs = "\n".join(f"--- {k}\n{v[-4000:]}" for k, v in o.logs.items())
    return "\n".join(o.steps) + "\n" + "\n".join(o.tcpdump[-30:]) + "\n" + logs


def test_memo_manual_keying_over_xfrm(lab: KernelLab):
    o = manual_keying(lab, kernel="xfrm")
    assert o.ok, explain(o)
    assert "with only host1 configured: fails" in o.steps[1]
    assert any(f"{MEMO_HOST1} > {MEMO_HOST2}: ESP(spi=0x00000111,seq=" in x for x in o.tcpdump)
    for host in ("host1", "host2"):
        d = o.setkey_d[host]
        assert "spi=273(0x00000111)" in d and "spi=274(0x00000112)" in d
        assert "E: 3des-cbc  54686973 20697320 61205365 63726574 204b6579 20212121" in d
        assert "A: hmac-sha1  54686973 20697320 61205365 63726574 204b6579" in d
        dp = o.setkey_dp[host]
        assert dp.count("esp/transport//require") >= 2, dp
        assert "out prio def ipsec" in dp and "in prio def ipsec" in dp, dp


@pytest.mark.parametrize(
    ("family", "kernel"),
    [(6, "xfrm"), (4, "xfrm"), (6, ("xfrm", "pfkey")), (4, ("pfkey", "xfrm"))],
    ids=["v6-xfrm", "v4-xfrm", "v6-xfrm-to-pfkey", "v4-pfkey-to-xfrm"],
)
def test_memo_automatic_keying_over_xfrm(lab: KernelLab, family: int, kernel):
    o = automatic_keying(lab, family=family, kernel=kernel)
    assert o.ok, explain(o)
    kinds = [
        "esp" if "ESP(spi=" in line else "clear"
        for line in o.tcpdump
        if "echo" in line or "ESP(" in line
    ]
    assert kinds and kinds[0] == "clear" and kinds[-1] == "esp", explain(o)
    h1 = o.states["host1"]
    assert len(h1) >= 2
    for sa in h1:
        assert sa.hard_add == 180, sa
        assert sa.soft_add is not None and 0 < sa.soft_add < 180
    kernels = (kernel, kernel) if isinstance(kernel, str) else kernel
    for host, k in zip(("host1", "host2"), kernels, strict=True):
        assert f"kernel: {k} (--kernel {k})" in o.logs[host], o.logs[host][:600]
        d = o.setkey_d[host]
        for sa in h1:
            assert f"({sa.spi})" in d, d
        assert "E: 3des-cbc" in d and "A: hmac-sha1" in d
        assert "ERROR" not in o.logs[host], explain(o)


def test_ten_thousand_sas_and_policies_load_and_dump_through_xfrm(lab: KernelLab):
    a = lab.add_host("a", "10.1.0.1/24")
    n = 10_000
    lines = []
    for i in range(n):
        dst = f"10.200.{i // 250}.{i % 250 + 1}"
        lines.append(
            f"add 10.1.0.1 {dst} esp {0x10000 + i} -m transport "
            f'-E 3des-cbc "This is a Secret Key !!!" -A hmac-sha1 "This is a Secret Key";'
        )
        lines.append(f"spdadd 10.1.0.1 {dst} any -P out ipsec esp/transport//require;")
    f = lab.dir / "big.conf"
    f.write_text("\n".join(lines) + "\n")
    timings = {}

    def timed(name: str, cmd: str) -> str:
        t0 = time.monotonic()
        r = a.run(cmd, timeout=600)
        timings[name] = time.monotonic() - t0
        assert r.rc == 0, (name, r.stderr[-2000:])
        return r.stdout

    timed("load", f"pysetkey --kernel xfrm -f {f}")
    assert a.run("ip xfrm state count").stdout.split()[-1] == str(n)
    assert a.run("ip xfrm policy | grep -c '^\tdir out'", timeout=120).stdout.strip() == str(n)
    sad = timed("-D", "pysetkey --kernel xfrm -D | grep -c 'esp mode=transport'")
    spd = timed("-DP", "pysetkey --kernel xfrm -DP | grep -c 'esp/transport//require'")
    assert (int(sad), int(spd)) == (n, n)
    # the same two dumps through the kernel's af_key, for scale
    timed("-D pfkey", "pysetkey --kernel pfkey -D | grep -c 'esp mode=transport'")
    timed("-DP pfkey", "pysetkey --kernel pfkey -DP | grep -c 'esp/transport//require'")
    print(" ".join(f"{k}={v:.1f}s" for k, v in timings.items()))
    timed("-F", "pysetkey --kernel xfrm -F")
    timed("-FP", "pysetkey --kernel xfrm -FP")
    assert a.run("ip xfrm state count").stdout.split()[-1] == "0"


def _established(hosts, pairs: int = 1) -> bool:
    return all(h.wait_log("IPsec-SA established", 30, count=2 * pairs) for h in hosts)


def test_daemon_over_xfrm_removes_only_its_own_sas_then_restores_them_from_backupsa(
    lab: KernelLab,
):
    o = Outcome()
    hosts = start_daemons(lab, o, family=4, setkey_file=require_policies, kernel="xfrm")
    assert hosts is not None, explain(o)
    h1, h2 = hosts
    manual = (
        "add 10.1.0.1 10.1.0.9 esp 0x9999 "
        '-E 3des-cbc "123456789012345678901234" -A hmac-sha1 "12345678901234567890";\n'
    )
    try:
        established = _negotiate(h1, h2)
        loaded = h1.setkey("-c", stdin=manual, kernel="xfrm")
        negotiated = {s.spi for s in xfrm_states(h1)} - {"0x00009999"}
    finally:
        stop_daemons(hosts, o)
    assert established and loaded == "" and len(negotiated) >= 2, explain(o)
    # SIGTERM: each daemon deleted what it installed, and nothing else
    assert [s.spi for s in xfrm_states(h1)] == ["0x00009999"], explain(o)
    assert xfrm_states(h2) == [], explain(o)

    # -B is for a daemon that died (a clean stop empties backupsa): negotiate again, kill
    # host1's daemon, lose its SAD as a reboot would, and restore
    for h in hosts:
        h.log.unlink()
        h.start_daemon(kernel="xfrm")
    try:
        assert all(h.wait_log("used as isakmp port", 30) for h in hosts)
        assert _negotiate(h1, h2), h1.log_text() + h2.log_text()
        negotiated = {s.spi for s in xfrm_states(h1)} - {"0x00009999"}
        assert h1.daemon is not None
        h1.daemon.signal(signal.SIGKILL)
        h1.daemon.wait(10)
        assert h1.setkey("-F", kernel="xfrm") == "" and xfrm_states(h1) == []
        h1.log.unlink()
        h1.start_daemon("-B", kernel="xfrm")
        assert h1.wait_log("used as isakmp port", 30), h1.log_text()
        restored = xfrm_states(h1)
        assert negotiated <= {s.spi for s in restored}, (negotiated, restored, h1.log_text())
        assert h1.log_text().count(": restored") >= len(negotiated), h1.log_text()
        # with what was left of their 180 s
        assert all(0 < s.hard_add <= 180 for s in restored), restored
    finally:
        for h in hosts:
            if h.daemon is not None:
                h.daemon.stop()


def _negotiate(h1, h2) -> bool:
    """``require``: the first packets only start the negotiation; ping until one passes."""
    for _ in range(20):
        if ping(h1, h2.address, count=1, wait=1):
            break
    return _established((h1, h2))


def test_generate_policy_over_xfrm_installs_the_responders_spd(lab: KernelLab):
    conf = conf_file("racoon.conf").read_text()
    conf = conf.replace("remote anonymous {", "remote anonymous {\n  generate_policy on;", 1)

    def spd(me: str, peer: str) -> str:
        # host1 asks for ESP; host2 has no SPD at all, generate_policy makes it
        return require_policies(me, peer) if me == V4_HOST1 else "spdflush;\nflush;\n"

    o = Outcome()
    hosts = start_daemons(lab, o, family=4, racoon_conf=conf, setkey_file=spd, kernel="xfrm")
    assert hosts is not None, explain(o)
    h1, h2 = hosts
    try:
        for _ in range(20):
            if ping(h1, h2.address, count=1, wait=1):
                break
        established = _established(hosts)
        flows = ping(h1, h2.address, count=3)
        pol = h2.host.run("ip -s xfrm policy").stdout
        dp = h2.setkey("-DP", kernel="xfrm")
    finally:
        stop_daemons(hosts, o)
    assert established and flows, explain(o)
    for d in ("in", "out"):
        assert f"dir {d} " in pol, pol
    assert "expire add: soft 0(sec), hard 180(sec)" in pol, pol  # as long as the SA
    assert dp.count("esp/transport//require") >= 2, dp
    assert "generate policy" in o.logs["host2"], explain(o)
