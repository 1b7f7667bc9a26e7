"""The walk of one datagram, from ``receive_datagram`` to the kernel requests it causes, enters the
dispatcher once: phase 1 and quick mode never call back into ``engine.py`` (docs/architecture.md,
"One datagram, from the socket to the kernel").

Measured with a profile hook: an *entry* into a module is a call whose nearest pyracoon caller is
in another module, so calls inside a module (helpers, comprehensions, lambdas) do not count.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from harness import Net, esp_sas

import pyracoon
from pyracoon.engine import DatagramOut, KernelRequest
from pyracoon.kernel import ops
from pyracoon.wire import decode_message
from pyracoon.wire.constants import ExchangeType

ROOT = str(Path(pyracoon.__file__).parent)
A, B = "10.0.0.1", "10.0.0.2"
CONF = """
remote {peer} {{
    exchange_mode main;
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{
    encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate;
}}
"""  # the policies ask for ESP only (the harness's transport_policy)


def _module(frame: FrameType | None) -> str | None:
    """The pyracoon module of the nearest pyracoon frame at or above ``frame``."""
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(ROOT):
            return name[len(ROOT) + 1 :]
        frame = frame.f_back
    return None


def module_entries(action: Callable[[], Any]) -> Counter[str]:
    """How many times ``action`` enters each pyracoon module from another one."""
    entries: Counter[str] = Counter()

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(ROOT):
            return
        callee = _module(frame)
        if callee is not None and _module(frame.f_back) != callee:
            entries[callee] += 1

    sys.setprofile(hook)
    try:
        action()
    finally:
        sys.setprofile(None)
    return entries


def test_one_quick_mode_datagram_enters_the_dispatcher_once() -> None:
    net = Net()
    a = net.host("a", A, CONF.format(peer=B), {B: "k"})
    b = net.host("b", B, CONF.format(peer=A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    held: list[DatagramOut] = []

    def hold_quick_mode(d: DatagramOut) -> list[DatagramOut]:
        if decode_message(d.data).exchange_type == ExchangeType.QUICK and d.remote[0] == b.address:
            held.append(d)
            return []
        return [d]

    net.hook = hold_quick_mode
    net.acquire(a, b)
    net.pump()
    assert len(held) == 1  # QM1, on its way to the responder
    qm1 = held.pop()
    walk = module_entries(
        lambda: b.engine.receive_datagram(qm1.data, qm1.remote, qm1.local, net.clock.now)
    )
    assert walk["engine/engine.py"] == 1, walk
    assert walk["engine/quick.py"] >= 1
    getspi = [e.request for e in b.engine.events() if isinstance(e, KernelRequest)]
    assert [type(r) for r in getspi] == [ops.GetSpi]  # the policy asks for ESP
    for r in getspi:  # the kernel's answers go back the way the harness carries them
        b.sock.submit(r)
    for msg in b.sock.pending():
        walk = module_entries(lambda m=msg: b.engine.receive_kernel(b.event(m), net.clock.now))
        assert walk["engine/engine.py"] == 1, walk
    net.pump()  # QM2 to a, a sends QM3
    assert len(held) == 1
    qm3 = held.pop()
    walk = module_entries(
        lambda: b.engine.receive_datagram(qm3.data, qm3.remote, qm3.local, net.clock.now)
    )
    assert walk["engine/engine.py"] == 1, walk
    installs = [e.request for e in b.engine.events() if isinstance(e, KernelRequest)]
    assert {type(r) for r in installs} == {ops.InstallSa}
    assert sorted(r.update for r in installs) == [False, True]  # ADD out, UPDATE in
    for r in installs:
        b.sock.submit(r)
    net.hook = None
    net.pump()
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2
