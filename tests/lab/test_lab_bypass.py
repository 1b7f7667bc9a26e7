"""On a real kernel: a socket with our bypass passes where IPsec policy blocks all other traffic.

Two hosts whose SPDs (``ip xfrm policy``, level required, no SAs) cover every packet between
them, both ways, IPv4 and IPv6: a plain UDP probe does not get through. A probe whose sockets
carry :func:`pyracoon.kernel.bypass.set_bypass` does, and its echo comes back. Once with
``af_key`` loaded (the KAME option, racoon's way) and once without it (Linux's XFRM option).
Then two real ``pyracoon --kernel pfkey`` daemons, whose hosts block all traffic between them,
establish phase 1 over IPv4 and IPv6.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pyracoon.kernellab import Host, KernelLab

A4, B4 = "10.1.0.1", "10.1.0.2"
A6, B6 = "fd00::1", "fd00::2"
PORT = 500

#: One UDP probe end. ``listen``: bind, say ready, echo one datagram back; ``send``: send one
#: datagram and wait for the echo. Each prints one JSON line of what happened.
PROBE = r"""
import json, socket, sys
from pyracoon.kernel.bypass import BypassError, set_bypass
role, addr, peer, port, bypass = sys.argv[1:6]
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
option = None
if bypass == "bypass":
    try:
        option = set_bypass(s)
    except BypassError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(2)
s.settimeout(3)
if role == "listen":
    s.settimeout(6)  # from "ready" until the sender, a python starting in the lab, has sent
    s.bind((addr, int(port)))
    print("ready", flush=True)
    try:
        data, src = s.recvfrom(100)
    except TimeoutError:
        print(json.dumps({"option": option, "got": None}), flush=True)
        sys.exit(0)
    s.sendto(b"echo " + data, src)
    print(json.dumps({"option": option, "got": data.decode(), "src": src[0]}), flush=True)
else:
    s.bind((addr, 0))
    try:
        s.sendto(b"probe", (peer, int(port)))
    except OSError as e:  # a "block" policy refuses at once (EPERM); "required" drops silently
        print(json.dumps({"option": option, "got": None, "refused": e.strerror}), flush=True)
        sys.exit(0)
    try:
        data = s.recv(100).decode()
    except TimeoutError:
        data = None
    print(json.dumps({"option": option, "got": data}), flush=True)
"""


def block_everything_between(host: Host, me: str, peer: str) -> None:
    """Out and in policies, ESP transport level required, for all traffic to and from ``peer``.

    Without SAs (there is no IKE daemon) they let nothing through.
    """
    plen = 128 if ":" in me else 32
    for src, dst, direction in ((me, peer, "out"), (peer, me, "in")):
        host.run(
            f"ip xfrm policy add src {src}/{plen} dst {dst}/{plen} dir {direction} "
            "tmpl proto esp mode transport level required",
            check=True,
        )


def pin_neighbours(a: Host, b: Host) -> None:
    """Permanent neighbour entries on both hosts, for both families.

    Neighbour discovery between the two global addresses (a unicast advertisement) is itself
    caught by the policies, and would fail every IPv6 probe for the wrong reason. ARP is not IP,
    but pinning both families keeps them alike.
    """
    mac = {
        h.name: h.run("cat /sys/class/net/eth0/address", check=True).stdout.strip() for h in (a, b)
    }
    for me, other, addrs in ((a, b, (B4, B6)), (b, a, (A4, A6))):
        for addr in addrs:
            me.run(
                f"ip neigh replace {addr} lladdr {mac[other.name]} dev eth0 nud permanent",
                check=True,
            )


def probe(listener: Host, sender: Host, lst_addr: str, snd_addr: str, mode: tuple[str, str]):
    """Listener and sender, each with or without bypass; (listener's, sender's) reports."""
    lst_mode, snd_mode = mode
    p = listener.spawn(
        ["python", "-c", PROBE, "listen", lst_addr, "-", str(PORT), lst_mode], name="listen"
    )
    assert p.wait_output("ready", 20), p.output()
    r = sender.run(["python", "-c", PROBE, "send", snd_addr, lst_addr, str(PORT), snd_mode])
    assert r.ok, r.stdout + r.stderr
    assert p.wait(20) == 0, p.output()
    heard = json.loads(p.output().splitlines()[-1])
    answered = json.loads(r.stdout.splitlines()[-1])
    return heard, answered


@pytest.fixture(params=["af_key", "xfrm_user"])
def hosts(request: pytest.FixtureRequest, lab: KernelLab) -> tuple[Host, Host, str]:
    """Two hosts blocked from each other; the kernel has af_key, or only xfrm_user."""
    if request.param == "xfrm_user":
        lab.run("rmmod af_key", check=True)
        assert "af_key" not in lab.run("cut -d' ' -f1 /proc/modules", check=True).stdout.split()
    a = lab.add_host("a", f"{A4}/24", f"{A6}/64")
    b = lab.add_host("b", f"{B4}/24", f"{B6}/64")
    pin_neighbours(a, b)
    # Before the policies the plain probe gets through: the blocking below is the policies'.
    for a_addr, b_addr in ((A4, B4), (A6, B6)):
        heard, answered = probe(b, a, b_addr, a_addr, ("plain", "plain"))
        assert heard["got"] == "probe" and answered["got"] == "echo probe"
    for h, (m4, p4), (m6, p6) in ((a, (A4, B4), (A6, B6)), (b, (B4, A4), (B6, A6))):
        block_everything_between(h, m4, p4)
        block_everything_between(h, m6, p6)
    return a, b, request.param


@pytest.mark.parametrize("family", [4, 6])
def test_plain_udp_is_blocked_and_bypassed_sockets_pass_both_ways(
    hosts: tuple[Host, Host, str], family: int
) -> None:
    a, b, manager = hosts
    a_addr, b_addr = (A4, B4) if family == 4 else (A6, B6)
    option = {
        ("af_key", 4): "IP_IPSEC_POLICY",
        ("af_key", 6): "IPV6_IPSEC_POLICY",
        ("xfrm_user", 4): "IP_XFRM_POLICY",
        ("xfrm_user", 6): "IPV6_XFRM_POLICY",
    }[(manager, family)]

    heard, answered = probe(b, a, b_addr, a_addr, ("plain", "plain"))
    assert heard["got"] is None and answered["got"] is None, "the policies do not block"

    # The bypass is per socket and per direction: a bypassed sender still meets the listener's
    # "in" policy, and its datagram is dropped there.
    heard, answered = probe(b, a, b_addr, a_addr, ("plain", "bypass"))
    assert answered["option"] == option
    assert heard["got"] is None and answered["got"] is None

    # Both ends bypassed: a -> b and the echo b -> a pass, in the clear.
    heard, answered = probe(b, a, b_addr, a_addr, ("bypass", "bypass"))
    assert heard == {"option": option, "got": "probe", "src": a_addr}
    assert answered == {"option": option, "got": "echo probe"}

    # And the other way round, b sending first.
    heard, answered = probe(a, b, a_addr, b_addr, ("bypass", "bypass"))
    assert heard == {"option": option, "got": "probe", "src": b_addr}
    assert answered == {"option": option, "got": "echo probe"}

    # The policies are still there and still block everything else.
    heard, answered = probe(a, b, a_addr, b_addr, ("plain", "plain"))
    assert heard["got"] is None and answered["got"] is None


def daemon_config(d: Path, name: str, me: tuple[str, str], peer: tuple[str, str]) -> Path:
    """A pre-shared-key racoon.conf listening on both of ``me``'s addresses."""
    d.mkdir(parents=True)
    psk = d / "psk.txt"
    psk.write_text("".join(f"{p}\tsecret of the lab\n" for p in peer))
    psk.chmod(0o600)
    conf = d / "racoon.conf"
    conf.write_text(
        f'path pre_shared_key "{psk}";\n'
        f'path pidfile "/run/racoon/{name}.pid";\n'
        f'listen {{ isakmp {me[0]}; isakmp {me[1]}; adminsock "/run/racoon/{name}.sock"; }}\n'
        "remote anonymous {\n"
        "  exchange_mode main;\n"
        "  my_identifier address;\n"
        "  proposal { authentication_method pre_shared_key; encryption_algorithm aes 128;\n"
        "             hash_algorithm sha1; dh_group 14; }\n"
        "}\n"
        "sainfo anonymous { encryption_algorithm aes 128; authentication_algorithm hmac_sha1;\n"
        "                   compression_algorithm deflate; }\n"
    )
    return conf


def test_two_daemons_establish_phase_1_through_policies_that_block_everything(
    lab: KernelLab, tmp_path: Path
) -> None:
    """Two ``pyracoon --kernel pfkey`` whose hosts' SPDs block all traffic between them.

    The policies are ``action block``: they catch IKE as surely as ``level required`` ones (a
    plain ``sendto`` is refused at once), and having no templates they keep this test about
    the bypass alone, not about how PF_KEY describes templates in the SPD dump.
    """
    a = lab.add_host("a", f"{A4}/24", f"{A6}/64")
    b = lab.add_host("b", f"{B4}/24", f"{B6}/64")
    pin_neighbours(a, b)
    for h, mine, theirs in ((a, (A4, A6), (B4, B6)), (b, (B4, B6), (A4, A6))):
        for me, peer in zip(mine, theirs, strict=True):
            plen = 128 if ":" in me else 32
            for src, dst, direction in ((me, peer, "out"), (peer, me, "in")):
                h.run(
                    f"ip xfrm policy add src {src}/{plen} dst {dst}/{plen} dir {direction} "
                    "action block",
                    check=True,
                )
    for b_addr, a_addr in ((B4, A4), (B6, A6)):
        heard, answered = probe(b, a, b_addr, a_addr, ("plain", "plain"))
        assert heard["got"] is None and answered["refused"] == "Operation not permitted"

    logs: dict[str, Path] = {}
    for h, mine, theirs in ((a, (A4, A6), (B4, B6)), (b, (B4, B6), (A4, A6))):
        conf = daemon_config(tmp_path / h.name, h.name, mine, theirs)
        logs[h.name] = tmp_path / h.name / "racoon.log"
        p = h.spawn(
            ["pyracoon", "-F", "-d", "-f", str(conf), "-l", str(logs[h.name]), "--kernel", "pfkey"],
            name=f"pyracoon-{h.name}",
        )
        assert p.wait_output("admin socket", 30), p.output()
        out = p.output()
        for addr in mine:
            assert f"DEBUG: {addr}[500]: IPsec policy bypassed (" in out, out
        assert "WARNING" not in out, out
        # The kernel lists socket policies too: in and out for each of the two sockets.
        listed = h.run("ip xfrm policy", check=True).stdout
        assert listed.count("socket in") == 2 and listed.count("socket out") == 2, listed

    for family, src, dst in (("inet", A4, B4), ("inet6", A6, B6)):
        r = a.run(
            ["pyracoonctl", "-s", "/run/racoon/a.sock", "establish-sa", "isakmp", family, src, dst]
        )
        assert r.ok, r.stdout + r.stderr
    for h, me, peer in ((a, A4, B4), (b, B4, A4), (a, A6, B6), (b, B6, A6)):
        needle = f"ISAKMP-SA established {me}[500]-{peer}[500]"
        deadline = time.monotonic() + 60
        while needle not in logs[h.name].read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert needle in logs[h.name].read_text(), logs[h.name].read_text()
