"""The engine's shape: no import circle inside the package, a timer cost that does not grow
with the SAs held, credentials read with the configuration, monotonic engine time."""

from __future__ import annotations

import ast
import ipaddress
import os
from pathlib import Path

from certs import build_pki
from harness import START
from test_engine_failures import A, B, certconf, pair

import pyracoon.engine as engine_package
from pyracoon.config import parse_string
from pyracoon.engine import DatagramOut, Engine, LogEvent, PskFile, PskTable
from pyracoon.engine.events import Level
from pyracoon.engine.proposals import phase1_sa
from pyracoon.wire import Message, encode_message
from pyracoon.wire.constants import ExchangeType

PACKAGE = Path(engine_package.__file__).parent


def _imports(path: Path) -> set[str]:
    """The modules of the engine package that ``path`` imports, TYPE_CHECKING ones included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.level == 0 and (node.module or "").startswith("pyracoon.engine."):
                found.add((node.module or "").split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pyracoon.engine."):
                    found.add(alias.name.split(".")[2])
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {m: _imports(PACKAGE / f"{m}.py") & modules for m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules on it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := visit(n)) is not None:
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_inside_the_engine_package() -> None:
    graph = import_graph()
    assert {"engine", "phase1", "quick", "spd", "informational", "credentials"} <= set(graph)
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph) or [])}"
    # the per-SA modules never reach the dispatcher
    for m in ("phase1", "quick", "informational", "spd", "credentials", "context"):
        assert "engine" not in graph[m], m


# ---------------------------------------------------------------------- timers
RESPONDER = """
remote anonymous {
    exchange_mode main;
    proposal { encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }
}
"""


def responder_holding(n: int) -> Engine:
    """An engine with ``n`` phase-1 responders waiting for MM3, each with its resend timer,
    created 10 ms apart (so their timers are due one by one)."""
    engine = Engine(parse_string(RESPONDER), psk=PskTable({}))
    engine.start(START)
    sa = phase1_sa(engine.config.remotes[0])
    for i in range(n):
        mm1 = Message(os.urandom(8), bytes(8), ExchangeType.IDENTITY_PROTECTION, 0, (sa,))
        peer = (ipaddress.ip_address(f"10.1.{i // 200}.{i % 200 + 1}"), 500)
        engine.receive_datagram(encode_message(mm1), (ipaddress.ip_address(A), 500), peer,
                                START + i * 0.01)  # fmt: skip
    assert len(engine.ph1s) == n
    engine.events()
    return engine


def timer_costs(engine: Engine) -> tuple[int, int, int]:
    """Timer entries visited by next_timer, by a handle_timer with nothing due, and by one
    with exactly one SA due."""
    first = engine.next_timer()
    assert first is not None
    v0 = engine.timer_visits
    assert engine.next_timer() == first
    v1 = engine.timer_visits
    engine.handle_timer(first - 0.005)
    v2 = engine.timer_visits
    assert not [e for e in engine.events() if isinstance(e, DatagramOut)]
    engine.handle_timer(first)
    v3 = engine.timer_visits
    resent = [e for e in engine.events() if isinstance(e, DatagramOut)]
    assert len(resent) == 1  # the one due SA resent its MM2
    return v1 - v0, v2 - v1, v3 - v2


def test_timer_cost_does_not_depend_on_the_sas_held() -> None:
    few, many = timer_costs(responder_holding(5)), timer_costs(responder_holding(400))
    assert few == many, (few, many)
    assert max(many) <= 4, many


def test_the_due_sa_is_rescheduled_and_the_others_keep_their_times() -> None:
    engine = responder_holding(3)
    first = engine.next_timer()
    assert first is not None
    engine.handle_timer(first)
    assert engine.next_timer() == first + 0.01  # the second responder is next
    engine.handle_timer(first + 0.02 + 1e-6)
    assert engine.next_timer() == first + engine.config.timer.interval  # the first's resend


def test_show_sa_dates_are_wall_time_of_monotonic_engine_time() -> None:
    engine = Engine(parse_string(RESPONDER), psk=PskTable({}),
                    wall_time=lambda t: t + 1_700_000_000.0)  # fmt: skip
    engine.start(12.5)
    mm1 = Message(os.urandom(8), bytes(8), ExchangeType.IDENTITY_PROTECTION, 0,
                  (phase1_sa(engine.config.remotes[0]),))  # fmt: skip
    engine.receive_datagram(encode_message(mm1), (ipaddress.ip_address(A), 500),
                            (ipaddress.ip_address(B), 500), 12.5)  # fmt: skip
    (status,) = engine.isakmp_sas()
    assert status.created == 1_700_000_012.5
    assert engine.next_timer() == 12.5 + engine.config.timer.interval  # timers stay monotonic


# ---------------------------------------------------------------------- credentials
def test_psk_file_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    f = tmp_path / "psk.txt"
    f.write_text("10.0.0.2 one\n")
    os.chmod(f, 0o600)
    psk = PskFile(f)
    for _ in range(5):
        assert psk.lookup(["10.0.0.2"]).key == b"one"
    assert psk.reads == 1
    f.write_text("10.0.0.2 second\n")  # edited in place: takes effect at the next lookup
    assert psk.lookup(["10.0.0.2"]).key == b"second" and psk.reads == 2
    os.chmod(f, 0o644)
    try:
        psk.lookup(["10.0.0.2"])
    except Exception as exc:
        assert "weak file permission" in str(exc)
    else:
        raise AssertionError("a weak psk.txt must be refused at the next lookup")


def test_credentials_are_read_with_the_configuration_not_while_negotiating(
    tmp_path: Path,
) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    from harness import Net

    net = Net()
    a = net.host("a", A, certconf(B, A, d), {})
    b = net.host("b", B, certconf(A, B, d), {})
    # the files go away after the start: the negotiation still has what it needs
    for name in (f"{A}.pem", f"{A}.key", f"{B}.pem", f"{B}.key"):
        (d / name).unlink()
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    assert a.has_log("ISAKMP-SA established") and b.has_log("ISAKMP-SA established"), (
        a.log_text() + "\n" + b.log_text()
    )


def test_a_credential_that_fails_to_load_is_an_error_at_start_and_at_reload(
    tmp_path: Path,
) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    conf = certconf(B, A, d, '\n    ca_type x509 "no-such-ca.pem";')
    engine = Engine(parse_string(conf), psk=PskTable({}))
    errors = [e for e in engine.events() if isinstance(e, LogEvent) and e.level is Level.ERROR]
    assert any(
        f"remote {B}[500]" in e.text and str(d / "no-such-ca.pem") in e.text for e in errors
    ), errors
    engine.reload(parse_string(conf), START)
    errors = [e for e in engine.events() if isinstance(e, LogEvent) and e.level is Level.ERROR]
    assert any("no-such-ca.pem" in e.text for e in errors), errors
    # and a negotiation that needs it still fails with the reason (test_engine_failures)
    net, a, b = pair(certconf(B, A, d), certconf(A, B, d, '\n    ca_type x509 "none.pem";'))
    assert b.has_log("failed to load the CA certificate of ca_type"), b.log_text()
