"""The daemon's side of pyracoonctl, in-process: a real ``Daemon`` over an ``InMemoryKernel``.

Engine outcomes are injected the way the engine hands them out (its event list, then
``Daemon.pump``), so these tests exercise the daemon's plumbing -- what ``show-event`` streams,
what ``reload-config`` answers, what a clean stop logs -- without sockets or peers.
"""

from __future__ import annotations

import asyncio
import errno
import io
import ipaddress
from pathlib import Path

import pytest

from pyracoon.admin.cli import format_event_reply
from pyracoon.admin.errors import AdminCommandError
from pyracoon.admin.protocol import AdminProto
from pyracoon.admin.records import decode_event, decode_sadb_dump, decode_schedule
from pyracoon.admin.render import AdminEvent
from pyracoon.config import parse_file
from pyracoon.daemon.admin import DaemonAdmin, EventStream, _SaEvents
from pyracoon.daemon.log import Log
from pyracoon.daemon.service import Daemon, Options
from pyracoon.engine import events as ev
from pyracoon.engine.events import Level
from pyracoon.kernel.memory import InMemoryKernel

CONF = """\
listen { adminsock disabled; }
remote anonymous {
  exchange_mode main;
  my_identifier address;
  proposal { encryption_algorithm aes; hash_algorithm sha1;
             authentication_method pre_shared_key; dh_group 14; }
}
"""
A = (ipaddress.ip_address("127.0.0.1"), 500)
B = (ipaddress.ip_address("127.0.0.2"), 500)


def make_daemon(tmp_path: Path) -> tuple[Daemon, io.StringIO]:
    path = tmp_path / "racoon.conf"
    path.write_text(CONF)
    out = io.StringIO()
    log = Log(Level.DEBUG, use_syslog=False, stream=out)
    kernel = InMemoryKernel().open()
    return Daemon(parse_file(path), Options(str(path)), kernel, [], log), out


def happen(daemon: Daemon, *events: ev.Event) -> None:
    """As if the engine had just decided these."""
    daemon.engine._events.extend(events)
    daemon.pump()


def up(n: int) -> ev.Phase1Established:
    return ev.Phase1Established(A, B, n.to_bytes(16, "big"), True)


async def next_line(stream, timeout: float = 1.0) -> str:
    """The next pushed ``struct evt_async``, as racoonctl (and pyracoonctl) print it."""
    return format_event_reply(await asyncio.wait_for(stream.__anext__(), timeout))


async def test_show_event_starts_at_connect_without_replaying_old_events(tmp_path):
    daemon, _ = make_daemon(tmp_path)
    admin = DaemonAdmin(daemon)
    happen(daemon, up(1))  # before the watcher connects: history, not news
    stream = await admin.show_event()
    happen(daemon, ev.Phase1Deleted(A, B, bytes(16)))
    assert await next_line(stream) == "Phase 1 deleted : 127.0.0.1[500] -> 127.0.0.2[500]\n"
    with pytest.raises(TimeoutError):
        await next_line(stream, 0.2)
    await stream.aclose()
    assert len(daemon.feed) == 0  # the watcher's subscription went with it


async def test_show_event_keeps_streaming_past_two_hundred_events(tmp_path):
    daemon, _ = make_daemon(tmp_path)
    stream = await DaemonAdmin(daemon).show_event()
    for n in range(450):
        happen(daemon, up(n))
        assert await next_line(stream) == (
            "Phase 1 established : 127.0.0.1[500] -> 127.0.0.2[500]\n"
        ), f"event {n}"
    await stream.aclose()


async def rest(stream) -> list[str]:
    """Every line until the stream ends (it must end, as racoon closes an SA's listeners)."""
    lines = []
    while True:
        try:
            lines.append(await next_line(stream))
        except StopAsyncIteration:
            return lines


C = (ipaddress.ip_address("127.0.0.3"), 500)
ROUTE = "127.0.0.1[500] -> 127.0.0.2[500]"


async def test_phase1_stream_is_that_sas_events_until_it_is_deleted(tmp_path):
    """What racoonctl establish-sa -w isakmp / vpn-connect reads: "mode configuration done"
    right after "Phase 1 established" (what it waits for), the SA's phase-2 events, and the
    end of the stream with its deletion."""
    daemon, _ = make_daemon(tmp_path)
    stream = EventStream(daemon.feed.subscribe(), _SaEvents(1, B[0]))
    happen(daemon, ev.Phase1Established(A, C, bytes(16), True),  # another peer
           ev.Phase2Established(A, B, 7, ("ESP",), (1,), (2,)),  # not under our SA: not up yet
           up(5), ev.Phase2Established(A, B, 7, ("ESP",), (1,), (2,)),
           ev.Phase1Deleted(A, B, up(6).cookies),  # another SA with that peer
           ev.Phase1Deleted(A, B, up(5).cookies), up(8))
    assert await rest(stream) == [
        f"Phase 1 established : {ROUTE}\n",
        f"Phase 1 mode configuration done : {ROUTE}\n",
        f"Phase 2 established : {ROUTE}\n",
        f"Phase 1 deleted : {ROUTE}\n",
    ]
    assert len(daemon.feed) == 0


async def test_phase1_stream_ends_with_the_failure(tmp_path):
    daemon, _ = make_daemon(tmp_path)
    stream = EventStream(daemon.feed.subscribe(), _SaEvents(1, B[0]))
    happen(daemon, ev.NegotiationFailed(1, C, "time up"), ev.NegotiationFailed(1, B, "time up"))
    assert await rest(stream) == ["Phase 1 error: peer not responding : anonymous -> "
                                  "127.0.0.2[500]\n"]
    assert len(daemon.feed) == 0


async def test_phase2_stream(tmp_path):
    """establish-sa -w esp: "Phase 2 established", then the stream lasts until that quick
    mode's SAs are deleted; a failed phase 1 under it ends it without a phase-2 event."""
    daemon, _ = make_daemon(tmp_path)
    stream = EventStream(daemon.feed.subscribe(), _SaEvents(2, B[0]))
    happen(daemon, up(1), ev.Phase2Established(A, B, 7, ("ESP",), (1,), (2,)),
           ev.Phase2Deleted(A, B, 8), ev.Phase2Deleted(A, B, 7))
    assert await rest(stream) == [f"Phase 2 established : {ROUTE}\n",
                                  f"Phase 2 deleted : {ROUTE}\n"]
    stream = EventStream(daemon.feed.subscribe(), _SaEvents(2, B[0]))
    happen(daemon, ev.NegotiationFailed(1, B, "time up"))
    assert await rest(stream) == []
    assert len(daemon.feed) == 0


async def test_stream_closed_unread_releases_its_subscription(tmp_path):
    daemon, _ = make_daemon(tmp_path)
    stream = EventStream(daemon.feed.subscribe(), _SaEvents(2, B[0]))
    await stream.aclose()
    assert len(daemon.feed) == 0


async def test_show_event_names_deletions_and_failures(tmp_path):
    daemon, _ = make_daemon(tmp_path)
    stream = await DaemonAdmin(daemon).show_event()
    happen(
        daemon,
        ev.Phase2Established(A, B, 7, ("ESP",), (0x100,), (0x200,)),
        ev.Phase2Deleted(A, B, 7),
        ev.NegotiationFailed(1, B, "phase1 negotiation failed due to time up."),
        ev.PeerDead(A, B, bytes(16)),
    )
    assert [await next_line(stream) for _ in range(4)] == [
        "Phase 2 established : 127.0.0.1[500] -> 127.0.0.2[500]\n",
        "Phase 2 deleted : 127.0.0.1[500] -> 127.0.0.2[500]\n",
        "Phase 1 error: peer not responding : anonymous -> 127.0.0.2[500]\n",
        "Phase 1 error: dead peer detected : 127.0.0.1[500] -> 127.0.0.2[500]\n",
    ]
    await stream.aclose()


async def test_a_watcher_that_falls_behind_gets_the_newest_events(tmp_path):
    """racoon's records cannot say "some were dropped" in a way racoonctl prints: the events
    a slow watcher missed are skipped, the newest ones still come."""
    daemon, _ = make_daemon(tmp_path)
    daemon.feed.limit = 10
    stream = await DaemonAdmin(daemon).show_event()
    happen(daemon, *(up(n) for n in range(25)))
    records = [decode_event(await asyncio.wait_for(stream.__anext__(), 1)) for _ in range(10)]
    assert all(r.event == AdminEvent.EVT_PHASE1_UP for r in records)
    with pytest.raises(TimeoutError):
        await next_line(stream, 0.2)
    await stream.aclose()


async def test_show_sa_and_show_schedule_answer_racoons_records(tmp_path):
    daemon, _ = make_daemon(tmp_path)
    admin = DaemonAdmin(daemon)
    assert await admin.show_sa(AdminProto.ADMIN_PROTO_ISAKMP, 0) == b""  # no SA: no record
    assert decode_sadb_dump(await admin.show_sa(AdminProto.ADMIN_PROTO_ESP, 0)) == (
        errno.ENOENT, [])
    assert decode_schedule(await admin.show_schedule()) == []


async def test_reload_config_of_a_broken_file_is_an_error_with_file_and_line(tmp_path):
    daemon, log = make_daemon(tmp_path)
    conf = tmp_path / "racoon.conf"
    conf.write_text(CONF + "sainfo anonymous { lifetime time 1 min; }\n")
    with pytest.raises(AdminCommandError) as info:
        await DaemonAdmin(daemon).reload_config()
    assert info.value.message.startswith(f"{conf}:8: no encryption algorithm")
    assert "the previous configuration is still running" in info.value.message
    assert "configuration reload refused" in log.getvalue()
    conf.write_text(CONF)
    assert await DaemonAdmin(daemon).reload_config() == ""


async def test_shutdown_is_quiet_about_sas_already_flushed(tmp_path):
    """A FLUSH (flush-sa, setkey -F) empties what a clean stop would remove: no warnings."""
    from pyracoon.crypto.algorithms import cipher_by_sadb_id
    from pyracoon.kernel import ops

    daemon, log = make_daemon(tmp_path)
    for spi in (0x1001, 0x1002):
        add = ops.InstallSa(
            spi, False, ops.SaId(ops.Proto.ESP, spi, A[0], B[0]), ops.Mode.ANY, 0,
            cipher=cipher_by_sadb_id(11),  # ESP null: a 0-bit key, as Linux wants
        )  # fmt: skip
        daemon._track(daemon.kernel.call(add))
    assert len(daemon.installed) == 2
    daemon._track(ops.SaEvent(ops.SaChange.FLUSH, 0, False, ops.Proto.ESP))
    assert daemon.installed == {}
    await daemon._shutdown()
    assert "WARNING" not in log.getvalue()


async def test_shutdown_names_an_sa_it_could_not_delete(tmp_path):
    """An SA gone behind our back is no news (debug); any other refusal names the SA."""
    from pyracoon.kernel import ops
    from pyracoon.kernel.sadb import SaType

    daemon, log = make_daemon(tmp_path)
    gone = ops.SaId(ops.Proto.ESP, 0x2001, A[0], B[0])
    daemon.installed[(SaType.ESP, B[0], 0x2001)] = gone  # never in the kernel
    await daemon._shutdown()
    text = log.getvalue()
    assert "WARNING" not in text
    assert "ESP SA 127.0.0.1->127.0.0.2 spi=0x2001 was already gone at shutdown" in text
