"""The SA tables' indexes always equal what a scan of the whole table would find, whatever the
order of insertions and removals (tables.py: the lookups an input makes cost the same with ten
SAs or ten thousand)."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.engine.tables import Phase1Table, QuickTable

PEERS = [ipaddress.ip_address(f"10.0.0.{i}") for i in range(1, 5)]

ops_ = st.lists(
    st.tuples(
        st.sampled_from(["set", "pop", "del", "clear"]),
        st.integers(0, 7),  # which SA
        st.integers(0, 3),  # peer / policy
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops_)
def test_phase1_table_by_peer(steps: list[tuple[str, int, int]]) -> None:
    table = Phase1Table()
    for op, n, peer in steps:
        icky = bytes([n]) * 8
        if op == "set":
            table[icky] = SimpleNamespace(peer=(PEERS[peer], 500))  # type: ignore[assignment]
        elif op == "pop":
            table.pop(icky, None)
        elif op == "del" and icky in table:
            del table[icky]
        elif op == "clear":
            table.clear()
        for address in PEERS:
            expected = [p for p in table.values() if p.peer[0] == address]
            assert sorted(map(id, table.of_peer(address))) == sorted(map(id, expected))


@settings(max_examples=300, deadline=None)
@given(ops_)
def test_quick_table_by_phase1_and_policy(steps: list[tuple[str, int, int]]) -> None:
    table = QuickTable()
    indexed_policy: dict[Any, int] = {}
    for op, n, group in steps:
        key = (bytes([n % 3]) * 8, n)
        if op == "set":
            q = SimpleNamespace(message_id=n, request=SimpleNamespace(policy_id=group))
            table[key] = q  # type: ignore[assignment]
            indexed_policy[key] = group
            q.request.policy_id = 99  # a responder's request is filled in later: still found
        elif op == "pop":
            table.pop(key, None)
        elif op == "del" and key in table:
            del table[key]
        elif op == "clear":
            table.clear()
        for icky in {bytes([i]) * 8 for i in range(3)}:
            assert sorted(map(id, table.of_phase1(icky))) == sorted(
                id(q) for k, q in table.items() if k[0] == icky
            )
        for policy in range(4):
            assert sorted(map(id, table.for_policy(policy))) == sorted(
                id(q) for k, q in table.items() if indexed_policy.get(k) == policy
            )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["set", "pop", "forget"]), st.integers(0, 5), st.integers(0, 2)),
        max_size=60,
    )
)
def test_pending_replies_forget_exactly_an_owners_requests(
    steps: list[tuple[str, int, int]],
) -> None:
    from pyracoon.engine.context import PendingReplies
    from pyracoon.kernel import ops

    owners = [object(), object(), object()]
    table = PendingReplies()
    for op, seq, who in steps:
        key = (seq, ops.SaChange.UPDATE, ops.Proto.ESP)
        if op == "set":
            table[key] = owners[who]
        elif op == "pop":
            table.pop(key, None)
        else:
            before = {k: v for k, v in table.items() if v is not owners[who]}
            table.forget(owners[who])
            assert dict(table) == before
