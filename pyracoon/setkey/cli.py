"""``pysetkey``: a drop-in for KAME/ipsec-tools ``setkey`` over pyracoon's kernel interface.

Command line (getopt ``acdf:HlnvxDFPphVrk?`` as setkey 0.8.2, plus ``--kernel SPEC``)::

    pysetkey [-v] file ...              decode raw PF_KEY messages stored in files
    pysetkey [-nvrk] -c                 commands from stdin, each run when its ';' arrives
    pysetkey [-nvrk] -f FILE            commands from FILE (parsed whole before anything runs)
    pysetkey [-Palpv] -D                dump the SAD (-P: the SPD)
    pysetkey [-Pv] -F                   flush the SAD (-P: the SPD)
    pysetkey [-H] -x                    watch every PF_KEY message (-xx: raw timestamps)
    pysetkey [-V] [-h]

The kernel is ``--kernel SPEC``, else ``$PYRACOON_KERNEL``, else ``auto`` (see
``pyracoon.kernel.base.open_kernel``). Messages go where setkey puts them: dumps, parse errors
and ``The result of line N: ...`` on stdout; ``KEYLEN MIN MAX`` and ``pysetkey: ...`` on stderr.

One deliberate difference from setkey: ``-f`` parses the whole file before sending anything,
so a file with a syntax error anywhere leaves the kernel untouched; and the exit status is 1
when any line failed (setkey exits 0 once parsing succeeded).
"""

from __future__ import annotations

import dataclasses
import errno as errno_mod
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from pyracoon import __version__
from pyracoon.kernel.base import (
    BACKENDS_TEXT,
    KernelError,
    KernelMessageUndecodable,
    KernelSocket,
    open_kernel,
)
from pyracoon.kernel.dump import (
    NO_SAD_ENTRIES,
    SHORTDUMP_HEADER,
    format_kdebug,
    format_policy,
    format_sa,
    format_short,
    is_dead,
)
from pyracoon.kernel.pfkey import (
    LINUX,
    Message,
    PfkeyDecodeError,
    Supported,
    decode,
    encode,
)
from pyracoon.kernel.sadb import ExtType, MsgType, SaType

from .algorithms import KeyRange, SupportedAlgorithms
from .errors import SetkeySyntaxError
from .lexer import IncompleteInput, T, tokenize
from .messages import deleteall_matches, header, sa_lookup_message, sa_messages, spd_messages
from .parser import (
    Command,
    DeleteAllCommand,
    DumpCommand,
    FlushCommand,
    ParseOptions,
    SaCommand,
    SpdCommand,
    SpdDumpCommand,
    SpdFlushCommand,
    address_pairs,
    parse_script,
)

PROG = "pysetkey"
OPTSTRING = "acdf:HlnvxDFPphVrk?"
REPLY_TIMEOUT = 1.0  # setkey sets SO_RCVTIMEO to one second


class UsageError(Exception):
    """Bad command line: print the reason (if any) and the usage text, exit 1."""


@dataclass
class Options:
    mode: str | None = None  # "stdin", "script", "dump", "flush", "promisc"
    script_file: str | None = None
    all_states: bool = False  # -a
    loop: bool = False  # -l
    no_action: bool = False  # -n
    hexdump: bool = False  # -H
    tflag: int = 0  # -x count
    policy: bool = False  # -P
    with_ports: bool = False  # -p
    verbose: bool = False  # -v
    rfc_mode: bool = True  # -r (default) / -k
    version: bool = False  # -V
    help: bool = False  # -h / -?
    long_help: bool = False  # --help: asked for, so not a failure (setkey has no --help)
    kernel: str | None = None  # --kernel
    files: list[str] = field(default_factory=list)


def usage_text() -> str:
    return (
        f"{PROG} @(#) pyracoon {__version__} (setkey of ipsec-tools 0.8.2, pyracoon kernel)\n"
        f"usage: {PROG} [-vrk] file ...\n"
        f"       {PROG} [-nvrk] -c\n"
        f"       {PROG} [-nvrk] -f filename\n"
        f"       {PROG} [-Palpvrk] -D\n"
        f"       {PROG} [-Pv] -F\n"
        f"       {PROG} [-H] -x\n"
        f"       {PROG} [-V] [-h]\n"
        f"       any of the above with --kernel {BACKENDS_TEXT} (or $PYRACOON_KERNEL)\n"
    )


def parse_args(argv: list[str]) -> Options:
    """GNU getopt over ``OPTSTRING`` (operands may come anywhere) plus ``--kernel``."""
    opts = Options()
    args = list(argv)
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name == "help" and not eq:
                opts.long_help = True
                continue
            if name != "kernel":
                raise UsageError(f"{PROG}: unrecognized option '{arg}'")
            if not eq:
                if i >= len(args):
                    raise UsageError(f"{PROG}: option '--kernel' requires an argument")
                value = args[i]
                i += 1
            opts.kernel = value
            continue
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            ch = arg[j]
            j += 1
            if ch not in OPTSTRING or ch == ":":
                raise UsageError(f"{PROG}: invalid option -- '{ch}'")
            if ch == "f":
                if j < len(arg):
                    value = arg[j:]
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise UsageError(f"{PROG}: option requires an argument -- 'f'")
                opts.mode, opts.script_file = "script", value
                break
            _apply_flag(opts, ch)
    opts.files = operands
    return opts


def _apply_flag(opts: Options, ch: str) -> None:
    if ch == "c":
        opts.mode = "stdin"
    elif ch == "D":
        opts.mode = "dump"
    elif ch == "F":
        opts.mode = "flush"
    elif ch == "x":
        opts.mode = "promisc"
        opts.tflag += 1
    elif ch == "a":
        opts.all_states = True
    elif ch == "l":
        opts.loop = True
    elif ch == "n":
        opts.no_action = True
    elif ch == "H":
        opts.hexdump = True
    elif ch == "P":
        opts.policy = True
    elif ch == "p":
        opts.with_ports = True
    elif ch == "v":
        opts.verbose = True
    elif ch == "r":
        opts.rfc_mode = True
    elif ch == "k":
        opts.rfc_mode = False
    elif ch == "V":
        opts.version = True
    elif ch in "h?":
        opts.help = True
    # "d" (debug) is accepted and ignored, as setkey does


# ---------------------------------------------------------------------------------------------
# talking to the kernel


def hexdump_lines(data: bytes) -> str:
    """setkey's ``-H`` byte dump: 16 bytes a line, each line prefixed with its offset."""
    out = []
    for i, b in enumerate(data):
        if i % 16 == 0:
            out.append(f"{i:08x}: ")
        out.append(f"{b:02x} ")
        if i % 16 == 15:
            out.append("\n")
    if len(data) % 16:
        out.append("\n")
    return "".join(out)


class KernelTimeout(KernelError):
    """The kernel did not answer within setkey's one-second receive timeout."""


class Session:
    """Runs parsed commands against one kernel socket and prints what setkey prints."""

    def __init__(
        self,
        kernel: KernelSocket | None,
        opts: Options,
        out: TextIO,
        err: TextIO,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kernel = kernel
        self.opts = opts
        self.out = out
        self.err = err
        self.clock = clock
        self.failed = False
        self.script_mode = opts.mode in ("script", "stdin")
        #: ``-f``'s file name, as setkey's ``warnx("%s,%d: ...", filename, lineno)`` shows it
        self.script_name = opts.script_file if opts.mode == "script" else None

    # -- transport ------------------------------------------------------------------------
    def _trace(self, msg: Message) -> None:
        if self.opts.verbose:
            self.out.write(format_kdebug(msg) + "\n")
        if self.opts.hexdump:
            self.out.write(hexdump_lines(encode(msg, LINUX)))

    def _send(self, msg: Message) -> None:
        assert self.kernel is not None
        msg.pid = msg.pid or self.kernel.pid
        msg.seq = msg.seq or self.kernel.next_seq()
        self._trace(msg)
        self.kernel.send(msg)

    def transact(self, msg: Message) -> Message:
        """Send one request and return the kernel's answer to it."""
        assert self.kernel is not None
        self._send(msg)
        try:
            reply = self._await(msg.type, msg.seq)
        except KernelMessageUndecodable as bad:
            raise KernelError(
                f"the kernel's answer could not be decoded: {bad.error}"
            ) from bad
        if self.opts.verbose:
            self.out.write(format_kdebug(reply) + "\n")
        return reply

    def _await(self, msg_type: int, seq: int | None = None) -> Message:
        """The next message of ``msg_type`` (and ``seq``) for this socket, within setkey's
        timeout.

        Anything else (broadcasts of other sockets' changes, ACQUIREs after REGISTER) is of no
        use to setkey and is dropped, undecodable ones too; an undecodable message whose header
        says it is the awaited one is raised, ``KernelMessageUndecodable``.
        """
        assert self.kernel is not None
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            try:
                reply = self.kernel.recv(left) if left > 0 else None
            except KernelMessageUndecodable as bad:
                if bad.answers(msg_type, self.kernel.pid, seq):
                    raise
                continue
            if reply is None:
                raise KernelTimeout(
                    f"the kernel did not answer within {REPLY_TIMEOUT:g} s "
                    "(Resource temporarily unavailable)"
                )
            if reply.pid == self.kernel.pid and reply.type == msg_type:
                if seq is None or reply.seq == seq:
                    return reply

    def dump_entries(self, msg: Message) -> Iterator[Message]:
        """DUMP / X_SPDDUMP: every reply until the one with seq 0 (or an error reply).

        An entry that cannot be decoded is reported on stderr and skipped (the exit status says
        it happened); the others are still shown.
        """
        self._send(msg)
        while True:
            try:
                reply = self._await(msg.type)
            except KernelMessageUndecodable as bad:
                self.failed = True
                self.err.write(f"{PROG}: {bad}; skipped\n")
                if bad.seq == 0:
                    return
                continue
            if self.opts.verbose:
                self.out.write(format_kdebug(reply) + "\n")
            yield reply
            if reply.errno or reply.seq == 0:
                return

    # -- reporting ------------------------------------------------------------------------
    def report_error(self, line: int | None, reply: Message) -> None:
        """setkey ``postproc``: ``The result of line N: <message>.`` (or ``<message>.``)."""
        text = error_text(reply)
        benign = reply.errno == errno_mod.ENOENT and reply.type in (
            MsgType.DUMP,
            MsgType.X_SPDDUMP,
        )
        if not benign:
            self.failed = True
        if self.script_name is not None and line is not None:
            # ipsec-tools' postproc in MODE_SCRIPT: warnx("%s,%d: %s", filename, lineno, ...)
            self.err.write(f"{PROG}: {self.script_name},{line}: {text}\n")
        elif self.script_mode and line is not None:
            self.out.write(f"The result of line {line}: {text}.\n")
        else:
            self.out.write(f"{text}.\n")

    def kernel_failure(self, line: int | None, e: KernelError) -> None:
        self.failed = True
        where = f"line {line}: " if line is not None else ""
        self.err.write(f"{PROG}: {where}{e}\n")

    def show(self, reply: Message, now: int | None = None) -> None:
        """Print a GET / DUMP / SPDGET / SPDDUMP answer as setkey's postproc does.

        ``now`` is the kernel's time for ``current:`` and ``diff:``; a dump reads it once.
        """
        if reply.type in (MsgType.GET, MsgType.DUMP):
            if now is None:
                now = int(self.clock())
            if reply.type == MsgType.DUMP and not self.opts.all_states and is_dead(reply):
                return
            if self.opts.loop and reply.type == MsgType.DUMP:
                self.out.write(format_short(reply, now))
            else:
                self.out.write(format_sa(reply, now, self.opts.with_ports))
        elif reply.type in (MsgType.X_SPDGET, MsgType.X_SPDDUMP):
            self.out.write(format_policy(reply, self.opts.with_ports))

    # -- commands -------------------------------------------------------------------------
    def simple(self, line: int | None, msg: Message) -> None:
        """Send one request; report an error reply, print a GET answer."""
        if self.opts.no_action:
            return
        try:
            reply = self.transact(msg)
        except KernelError as e:
            self.kernel_failure(line, e)
            return
        if reply.errno:
            self.report_error(line, reply)
        else:
            self.show(reply)

    def dump(self, line: int | None, msg: Message) -> None:
        if self.opts.no_action:
            return
        try:
            now = int(self.clock()) if msg.type == MsgType.DUMP else None
            for reply in self.dump_entries(msg):
                if reply.errno:
                    self.report_error(line, reply)
                else:
                    self.show(reply, now)
        except KernelError as e:
            self.kernel_failure(line, e)

    def deleteall(self, cmd: DeleteAllCommand) -> None:
        """Linux setkey: DUMP the satype, then DELETE each SA between the given addresses."""
        if self.opts.no_action:
            return
        spis: list[tuple[int, Message]] = []
        try:
            for reply in self.dump_entries(header(MsgType.DUMP, cmd.satype)):
                if reply.errno:
                    if reply.errno != errno_mod.ENOENT:
                        self.failed = True
                        self.err.write(f"{PROG}: error encountered\n")
                    break
                if deleteall_matches(cmd, reply) and reply.sa is not None:
                    spis.append((reply.sa.spi, reply))
        except KernelError as e:
            self.kernel_failure(cmd.line, e)
            return
        pairs = address_pairs(cmd)
        for spi, entry in spis:
            for src, dst in pairs:
                assert entry.src is not None and entry.dst is not None
                if src.addr == entry.src.addr and dst.addr == entry.dst.addr:
                    self.simple(
                        cmd.line, sa_lookup_message(MsgType.DELETE, cmd.satype, src, dst, spi)
                    )

    def run(self, cmd: Command) -> None:
        if isinstance(cmd, SaCommand):
            for msg in sa_messages(cmd):
                self.simple(cmd.line, msg)
        elif isinstance(cmd, DeleteAllCommand):
            self.deleteall(cmd)
        elif isinstance(cmd, FlushCommand):
            self.simple(cmd.line, header(MsgType.FLUSH, cmd.satype))
        elif isinstance(cmd, DumpCommand):
            self.dump(cmd.line, header(MsgType.DUMP, cmd.satype))
        elif isinstance(cmd, SpdCommand):
            for msg in spd_messages(cmd, self.opts.rfc_mode):
                self.simple(cmd.line, msg)
        elif isinstance(cmd, SpdFlushCommand):
            self.simple(cmd.line, header(MsgType.X_SPDFLUSH))
        elif isinstance(cmd, SpdDumpCommand):
            self.dump(cmd.line, header(MsgType.X_SPDDUMP))

    def get_supported(self) -> SupportedAlgorithms:
        """REGISTER(UNSPEC): the key-size ranges setkey checks keys against."""
        reply = self.transact(header(MsgType.REGISTER, SaType.UNSPEC))
        if reply.errno:
            raise KernelError(f"the kernel refused REGISTER: {os.strerror(reply.errno)}")
        return supported_from(reply)


def supported_from(reply: Message) -> SupportedAlgorithms:
    """The SUPPORTED_ENCRYPT / SUPPORTED_AUTH lists of a REGISTER reply as key ranges."""
    sup = SupportedAlgorithms({}, {})
    for ext_type, table in (
        (ExtType.SUPPORTED_ENCRYPT, sup.encryption),
        (ExtType.SUPPORTED_AUTH, sup.authentication),
    ):
        ext = reply.get(ext_type)
        if isinstance(ext, Supported) and table is not None:
            for alg in ext.algs:
                table[alg.id] = KeyRange(alg.minbits, alg.maxbits)
    return sup


def error_text(reply: Message) -> str:
    """setkey's wording of a kernel error: ENOENT depends on the request, else strerror."""
    if reply.errno == errno_mod.ENOENT:
        if reply.type in (MsgType.DELETE, MsgType.GET, MsgType.X_SPDDELETE):
            return "No entry"
        if reply.type == MsgType.DUMP:
            return NO_SAD_ENTRIES.rstrip(".")
        if reply.type == MsgType.X_SPDDUMP:
            return "No SPD entries"
    return os.strerror(reply.errno)


# ---------------------------------------------------------------------------------------------
# modes


def _print_parse_error(e: SetkeySyntaxError, out: TextIO) -> None:
    for w in getattr(e, "warnings", []):
        out.write(w + "\n")
    out.write(e.render() + "\n")


def run_script(session: Session, text: str, options: ParseOptions) -> int:
    """``-f``: run each command as soon as it is parsed; stop at the first syntax error.

    As ipsec-tools' setkey does (its yacc actions send each command when its ``;`` is read),
    the commands before a broken one have already reached the kernel when parsing fails. Every
    message goes to standard error as setkey's ``warnx`` writes it: ``PROG: FILE,LINE: ...``,
    the offending token quoted as ```TOKEN'``.
    """
    name = session.script_name or "-"
    options = dataclasses.replace(
        options,
        where=lambda line: f"{PROG}: {name},{line}: ",
        quote=lambda token: f"`{token}'",
        on_warning=lambda text: _line(session.err, text),
    )
    err = session.err

    def failed(e: SetkeySyntaxError) -> int:
        for w in getattr(e, "warnings", []):
            err.write(w + "\n")
        err.write(f"{options.where(e.line)}{e.message} at {options.quote(e.token)}\n")
        err.write(f"{options.where(e.line)}parse failed\n")
        return 1

    def run(chunk: str, first: int) -> bool:
        """Parse and run one chunk; False when it said ``exit``."""
        script = parse_script(chunk, options, first)
        for w in script.warnings:
            err.write(w + "\n")
        for cmd in script.commands:
            session.run(cmd)
        return not script.exited

    buffer, first_line = "", 1
    try:
        for raw in text.splitlines(keepends=True):
            buffer += raw
            split = _complete_commands(buffer, first_line)
            if split is None:
                continue
            chunk, buffer = split
            chunk_first, first_line = first_line, first_line + chunk.count("\n")
            if not run(chunk, chunk_first):
                return 1 if session.failed else 0
        run(buffer, first_line)
    except SetkeySyntaxError as e:
        return failed(e)
    return 1 if session.failed else 0


def _complete_commands(buffer: str, first_line: int) -> tuple[str, str] | None:
    """``(commands, rest)``: the complete commands at the front of ``buffer`` (up to the last
    ``;`` outside quotes and comments) and what follows; None while no command is complete
    yet.  A syntax error in the text read so far is ``SetkeySyntaxError``."""
    try:
        tokens = tokenize(buffer, first_line)
    except IncompleteInput:
        return None
    ends = [t for t in tokens if t.kind is T.EOT]
    if not ends:
        return None
    cut = ends[-1].end
    return buffer[:cut], buffer[cut:]


def run_stdin(session: Session, stream: TextIO, options: ParseOptions) -> int:
    """``-c``: run each command as soon as its ``;`` has been read, like setkey's stdin loop."""
    buffer = ""
    first_line = 1
    line_no = 0
    syntax_failed = False
    for raw in stream:
        line_no += 1
        buffer += raw
        try:
            split = _complete_commands(buffer, first_line)
        except SetkeySyntaxError as e:
            _print_parse_error(e, session.out)
            syntax_failed = True
            buffer, first_line = "", line_no + 1
            continue
        if split is None:
            continue
        chunk, buffer = split
        chunk_first = first_line
        first_line += chunk.count("\n")
        try:
            script = parse_script(chunk, options, chunk_first)
        except SetkeySyntaxError as e:
            _print_parse_error(e, session.out)
            syntax_failed = True
            continue
        for w in script.warnings:
            session.out.write(w + "\n")
        for cmd in script.commands:
            session.run(cmd)
        session.out.flush()
        if script.exited:
            break
    else:
        try:
            rest = [t for t in tokenize(buffer, first_line) if t.kind is not T.END]
        except SetkeySyntaxError as e:
            _print_parse_error(e, session.out)
            rest, syntax_failed = [], True
        if rest:
            tok = rest[-1]
            session.out.write(f"line {tok.line}: syntax error at []\n")
            syntax_failed = True
    return 1 if (session.failed or syntax_failed) else 0


def run_files(files: list[str], opts: Options, out: TextIO, err: TextIO) -> int:
    """Bare file arguments: decode the raw PF_KEY messages in each, print them.

    A file that is not PF_KEY messages is an error (stderr, exit status 1): a script that feeds
    the wrong file must not carry on as though it had been read.
    """
    session = Session(None, opts, out, err)
    status = 0
    for name in files:
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as e:
            err.write(f"{PROG}: {name}: {e.strerror}\n")
            return 1
        if len(data) < 16:
            err.write(f"{PROG}: {name}: {os.strerror(errno_mod.EINVAL)}\n")
            return 1
        pos = 0
        while pos + 16 <= len(data):
            length = int.from_bytes(data[pos + 4 : pos + 6], sys.byteorder) * 8
            if length == 0:
                err.write(f"{PROG}: {name}: zero-length message at offset {pos}\n")
                status = 1
                break
            try:
                msg = decode(data[pos : pos + length], LINUX)
            except PfkeyDecodeError as e:
                err.write(f"{PROG}: {name}: not a PF_KEY message at offset {pos}: {e}\n")
                status = 1
                pos += length
                continue
            if opts.verbose:
                out.write(format_kdebug(msg) + "\n")
            if msg.errno:
                session.report_error(None, msg)
            else:
                session.show(msg)
            pos += length
    return status


def run_promisc(kernel: KernelSocket, opts: Options, out: TextIO, err: TextIO) -> int:
    """``-x``: print every PF_KEY message the kernel shows a promiscuous socket, forever.

    One that cannot be decoded is reported on ``err`` and the watch goes on.
    """
    kernel.send(Message(MsgType.X_PROMISC, 1, pid=kernel.pid))
    while True:
        try:
            msg = kernel.recv(None)
        except KernelMessageUndecodable as bad:
            err.write(f"{PROG}: {bad}; skipped\n")
            err.flush()
            continue
        if msg is None:
            continue
        now = time.time()
        if opts.tflag == 1:
            lt = time.localtime(now)
            usec = int((now % 1) * 1_000_000)
            out.write(f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}.{usec:06d} \n")
        else:
            out.write(f"{int(now)}.{int((now % 1) * 1_000_000):06d} \n")
        if opts.hexdump:
            out.write(hexdump_lines(encode(msg, LINUX)))
        if not (msg.type == MsgType.X_PROMISC and not msg.extensions):
            out.write(format_kdebug(msg) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    """The ``pysetkey`` console script."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # "pysetkey -D | head": the reader left; say nothing more, as setkey would die quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def run(
    args: list[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    kernel_opener: Callable[[str | None], KernelSocket] = open_kernel,
    clock: Callable[[], float] | None = None,
) -> int:
    """``main`` with its streams, kernel and clock injectable, so tests run it in-process.

    Without ``clock`` the time is the kernel's own (``KernelSocket.now``).
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if not args:
        out.write(usage_text())
        return 1
    try:
        opts = parse_args(args)
    except UsageError as e:
        err.write(f"{e}\n")
        out.write(usage_text())
        return 1
    if opts.long_help:
        out.write(usage_text())
        return 0
    if opts.help:
        out.write(usage_text())  # setkey's -h exits 1 (its usage() does), and so do we
        return 1
    if opts.version:
        out.write(usage_text().splitlines()[0] + "\n")
        return 0
    if opts.files:
        return run_files(opts.files, opts, out, err)
    if opts.mode is None:
        out.write(usage_text())
        return 1
    try:
        return _run_mode(opts, out, err, stdin, kernel_opener, clock)
    except KernelError as e:
        err.write(f"{PROG}: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 0


def _read_script(opts: Options, stdin: TextIO | None) -> str:
    if opts.script_file in (None, "-"):
        if stdin is not None:
            return stdin.read()
        return sys.stdin.buffer.read().decode("latin-1")
    with open(opts.script_file, "rb") as f:
        return f.read().decode("latin-1")


def _run_mode(
    opts: Options,
    out: TextIO,
    err: TextIO,
    stdin: TextIO | None,
    kernel_opener: Callable[[str | None], KernelSocket],
    clock: Callable[[], float] | None = None,
) -> int:
    text = None
    if opts.mode == "script":
        try:
            text = _read_script(opts, stdin)
        except OSError as e:
            err.write(f"{PROG}: Can't open `{opts.script_file}': {e.strerror}\n")
            return 1
    kernel: KernelSocket | None = None
    if not opts.no_action or opts.mode == "promisc":
        kernel = kernel_opener(opts.kernel)
    try:
        if clock is None:
            clock = kernel.now if kernel is not None else time.time
        session = Session(kernel, opts, out, err, clock)
        if opts.mode == "promisc":
            assert kernel is not None
            return run_promisc(kernel, opts, out, err)
        if opts.mode == "dump":
            msg_type = MsgType.X_SPDDUMP if opts.policy else MsgType.DUMP
            while True:
                if opts.loop:
                    out.write(SHORTDUMP_HEADER)
                session.dump(None, header(msg_type))
                if not opts.loop:
                    return 1 if session.failed else 0
                out.flush()
                time.sleep(1)
        if opts.mode == "flush":
            session.simple(None, header(MsgType.X_SPDFLUSH if opts.policy else MsgType.FLUSH))
            return 1 if session.failed else 0
        supported = SupportedAlgorithms.builtin() if kernel is None else session.get_supported()
        options = ParseOptions(supported=supported, keylen_diagnostic=lambda s: _line(err, s))
        if opts.mode == "script":
            assert text is not None
            return run_script(session, text, options)
        stream = stdin or open(sys.stdin.fileno(), encoding="latin-1", closefd=False)  # noqa: SIM115
        return run_stdin(session, stream, options)
    finally:
        out.flush()
        if kernel is not None:
            kernel.close()


def _line(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
