"""The simulated kernel held to the real one: one PF_KEY conversation, Linux's af_key vs ours.

``pfkey_diff.py`` plays the same requests (REGISTER, GETSPI, UPDATE, ADD, GET, DELETE, DUMP,
FLUSH, every SPD operation with each level, mode, direction and priority, tunnel endpoints,
lifetimes with soft and hard EXPIRE, a policy's lifetime, ACQUIREs from packets and their larval
states, a failed negotiation, a promiscuous socket) against Linux's af_key inside the lab and
against a ``pyracoon-kernel`` on a manual clock, and this test compares the transcripts field by
field. Every reply the real kernel sent must also re-encode to its exact bytes through our
codec. The differences that remain on purpose are listed in ``KNOWN`` -- the reason, and exactly
which part of the step is excused, the rest of it still compared -- and in docs/kernel.md.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyracoon.kernellab import KernelLab

DRIVER = Path(__file__).with_name("pfkey_diff.py")


@dataclass(frozen=True)
class Known:
    """A difference kept on purpose: why, and a mask that removes just it from a transcript."""

    why: str
    mask: Callable[[list[dict]], list[dict]]


KAME_AUTH = {249, 250, 252}
"""keyed-md5, keyed-sha1, tcp-md5: offered by the simulated kernel, not by Linux."""
NULL_ALGS = {"SUPPORTED_AUTH": 251, "SUPPORTED_ENCRYPT": 11}


def kame_algorithms(got: list[dict]) -> list[dict]:
    """Drop KAME's extra algorithms and the null algorithms' key ranges from REGISTER replies."""
    out = copy.deepcopy(got)
    for m in out:
        for ext, null in NULL_ALGS.items():
            sup = m["exts"].get(ext)
            if sup is None:
                continue
            kame = KAME_AUTH if ext == "SUPPORTED_AUTH" else set()
            sup["algs"] = [a for a in sup["algs"] if a["id"] not in kame]
            for a in sup["algs"]:
                if a["id"] == null:
                    a["maxbits"] = "excused"
    return out


_REGISTER = Known(
    "the simulated kernel also offers KAME's keyed-md5, keyed-sha1 and tcp-md5, and null "
    "algorithms that take a key of up to 2048 bits (Linux: 0), so that the seed's manual-keying "
    "configurations (the old 'simple' transform) load; the rest of the list is Linux's",
    kame_algorithms,
)


def whole_step(got: list[dict]) -> list[dict]:
    """The step's answer as a whole is excused (it is a different answer, not a detail)."""
    return [{"excused": True}]


#: step label -> the difference kept there on purpose (kept in docs/kernel.md too)
KNOWN: dict[str, Known] = {
    "REGISTER ESP (s)": _REGISTER,
    "REGISTER ESP (l)": _REGISTER,
    "REGISTER AH (p, a third socket)": _REGISTER,
    "ADD with keyed-md5": Known(
        "Linux has no keyed-md5 (ENOSYS); the simulated kernel takes it, as KAME does, for the "
        "seed's manual-keying configurations",
        whole_step,
    ),
}


def transcripts(lab: KernelLab) -> tuple[list[dict], list[dict]]:
    h = lab.add_host("k", "10.9.0.1/24", "fd09::1/64")
    real_out = lab.dir / "real.json"
    sim_out = lab.dir / "sim.json"
    h.run(["python3", str(DRIVER), "real", str(real_out)], timeout=120, check=True)
    sock = lab.dir / "k.sock"
    server = h.spawn(f"exec pyracoon-kernel --listen {sock} --manual-clock", name="kernel")
    for _ in range(100):
        if h.run(f"test -S {sock}").ok:
            break
    h.run(["python3", str(DRIVER), "sim", str(sock), str(sim_out)], timeout=120, check=True)
    server.stop()
    return json.loads(real_out.read_text()), json.loads(sim_out.read_text())


def test_the_simulated_kernel_answers_as_linux_af_key(lab: KernelLab):
    real, sim = transcripts(lab)
    assert [s["step"] for s in real] == [s["step"] for s in sim]
    undecodable = [m for s in real for m in s["got"] if "undecodable" in m or not m["roundtrip"]]
    assert not undecodable, json.dumps(undecodable, indent=1)
    diffs = []
    for r, s in zip(real, sim, strict=True):
        linux, simulated = r["got"], s["got"]
        known = KNOWN.get(r["step"])
        if known is not None:
            assert linux != simulated, f"{r['step']!r} no longer differs: drop it from KNOWN"
            linux, simulated = known.mask(linux), known.mask(simulated)
        if linux != simulated:
            diffs.append(step_diff(r["step"], linux, simulated))
    assert not diffs, f"{len(diffs)} steps differ (- Linux, + simulated):\n" + "\n".join(diffs)


def step_diff(label: str, linux: list[dict], simulated: list[dict]) -> str:
    """A unified diff of one step's transcripts, Linux first."""
    a = json.dumps(linux, indent=1, sort_keys=True).splitlines()
    b = json.dumps(simulated, indent=1, sort_keys=True).splitlines()
    body = "\n".join(difflib.unified_diff(a, b, "linux", "simulated", n=2, lineterm=""))
    return f"== {label}\n{body}"
