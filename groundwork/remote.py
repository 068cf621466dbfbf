"""The remote layer: commands with exit status, file reads, atomic file writes, one-round-trip fact gathering.

The SSH session comes from nornir-netmiko (login, keys, host key policy, reuse across stages). Commands run
on exec channels of that session's transport rather than in Netmiko's interactive shell: an exec channel
returns the real exit status and keeps stdout and stderr apart, with no prompt to match and nothing echoed.
File contents and secrets travel on stdin, never on a command line; the sudo password goes to sudo alone, and
only when sudo asks for it (see Remote._wrap).
"""

from __future__ import annotations

import difflib
import hashlib
import secrets
import select
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    import paramiko
    from nornir.core.configuration import Config
    from nornir.core.inventory import Host
    from nornir.core.task import Task

    from groundwork.facts import Facts, GatherCache, Probe

BACKUP_DIR = "/var/backups/groundwork"
BACKUPS_KEPT = 10
# Plain, predictable output from every tool we parse, and no pager or prompt waiting for a person.
SHELL_ENV = "export LC_ALL=C LANG=C DEBIAN_FRONTEND=noninteractive PAGER=cat SYSTEMD_PAGER= SYSTEMD_COLORS=0;"
MASK = "********"
READ_FROM_HOST = object()  # write_file's default: read the current content first


class Masker:
    """Replaces every known secret value with a fixed mask, in anything that leaves the process."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


@dataclass
class CommandResult:
    command: str  # as shown to people: masked, without the sudo/env wrapper
    rc: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def tail(self, lines: int = 8) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


class RemoteError(Exception):
    """A command on a host failed; the message carries the command and what it said."""

    def __init__(self, result: CommandResult, what: str = ""):
        self.result = result
        head = what or f"`{result.command}`"
        detail = result.tail()
        super().__init__(f"{head} failed (exit {result.rc})" + (f": {detail}" if detail else ""))


STDIN_PIECE = 1 << 18


def _drain(chan, out: bytearray, err: bytearray) -> bool:
    """Whatever stdout and stderr the channel has ready, appended; True when there was any."""
    got = False
    while chan.recv_ready():
        out += chan.recv(1 << 16)
        got = True
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(1 << 16)
        got = True
    return got


@dataclass
class Held:
    """A command Remote.hold started: running while channel is set, else ended with rc."""

    channel: "paramiko.Channel | None"
    rc: int | None
    stdout: str
    stderr: str

    def release(self) -> None:
        """Close its stdin (it ends on EOF) and the channel."""
        if self.channel is not None:
            try:
                self.channel.shutdown_write()
            except (OSError, EOFError):
                pass  # the session is gone already, and the command with it
            self.channel.close()
            self.channel = None


@dataclass
class FileWrite:
    path: str
    changed: bool
    diff: str
    backup: str | None = None


def unified_diff(path: str, before: bytes | None, after: bytes | None, sensitive: bool = False) -> str:
    """A unified diff headed by the path. A sensitive file's content is never shown, nor a digest of it: an
    unkeyed digest of content that holds a secret allows an offline guess of the secret (a plan binds the
    content with a keyed digest instead: changes.content_digest)."""
    if before == after:
        return ""
    if sensitive:
        what = "new file" if before is None else ("removed" if after is None else "content changes")
        return f"--- {path}\n+++ {path}\n(sensitive content not shown: {what})\n"
    old = [] if before is None else before.decode("utf-8", "replace").splitlines(keepends=True)
    new = [] if after is None else after.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, fromfile=f"{path} (on host)" if before is not None else "/dev/null",
                                 tofile=f"{path} (wanted)" if after is not None else "/dev/null")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


@dataclass
class SudoHandshake:
    """The two markers of one sudo call: sudo's prompt (answered with the password) and the command's start."""

    prompt: str
    ready: str
    answered: bool = False
    refused: bool = False  # sudo asked again after the password: it is wrong

    @classmethod
    def new(cls) -> "SudoHandshake":
        token = secrets.token_hex(8)
        return cls(prompt=f"[gw-sudo-prompt-{token}]", ready=f"[gw-command-started-{token}]")

    @property
    def prompt_bytes(self) -> bytes:
        return self.prompt.encode()

    @property
    def ready_bytes(self) -> bytes:
        return self.ready.encode()


@dataclass
class Remote:
    """Runs commands on one host over an established SSH transport."""

    transport_factory: Callable[[], "paramiko.Transport"]
    username: str = "root"
    sudo_password: str | None = None
    masker: Masker = field(default_factory=Masker)
    log: list[CommandResult] = field(default_factory=list)
    default_timeout: float = 600.0
    backup_dir: str = BACKUP_DIR
    # Told what each command is for (its `what`, else the command, masked) as it starts: the live progress.
    on_step: Callable[[str], None] | None = None
    # Facts the run knows already (the OS, read with the host's lock): a gather takes them from here.
    known: dict[str, Any] = field(default_factory=dict)
    # The run's first gather, kept for every stage (facts.GatherCache), and this host's name in it.
    cache: "GatherCache | None" = None
    host_name: str = ""

    @classmethod
    def for_host(cls, host: "Host", config: "Config", masker: Masker | None = None) -> "Remote":
        """The Remote of a Nornir host, over its nornir-netmiko connection (opened once, then reused), whose
        host key was checked against the inventory's known_hosts file."""
        from groundwork.hostkeys import connect_pinned

        conn = connect_pinned(host, config)
        username = host.username or "root"
        masker = masker or Masker()
        if host.password:
            masker.add(host.password)
        return cls(transport_factory=lambda: conn.remote_conn_pre.get_transport(), username=username,
                   sudo_password=host.password if username != "root" else None, masker=masker)

    @classmethod
    def for_task(cls, task: "Task", masker: Masker | None = None) -> "Remote":
        return cls.for_host(task.host, task.nornir.config, masker)

    # -- commands -------------------------------------------------------------------------------

    def _wrap(self, command: str) -> tuple[str, "SudoHandshake | None"]:
        script = f"{SHELL_ENV} {command}"
        if self.username == "root":
            return f"sh -c {shlex.quote(script)}", None
        if self.sudo_password:
            # sudo is given the password only when it asks: it prompts on stderr with a prompt of ours, and the
            # command announces itself there before it reads a byte of its own stdin. With NOPASSWD or a cached
            # timestamp there is no prompt, and the password is never sent.
            hs = SudoHandshake.new()
            announced = f"printf %s {shlex.quote(hs.ready)} >&2; {script}"
            return f"sudo -S -p {shlex.quote(hs.prompt)} -- sh -c {shlex.quote(announced)}", hs
        return f"sudo -n -- sh -c {shlex.quote(script)}", None

    def run(self, command: str, *, stdin: bytes = b"", check: bool = True, timeout: float | None = None,
            what: str = "", sensitive_output: bool = False, reads_only: bool = False) -> CommandResult:
        """Run a shell command; with check, raise RemoteError unless it exits 0.

        sensitive_output: the output (a key being read) goes to the caller only, never into the log.
        reads_only: a gather, which changes nothing; anything else makes the run's kept gather stale.
        """
        if self.cache is not None and not reads_only:
            self.cache.forget()
        wrapped, handshake = self._wrap(command)
        if self.on_step is not None:
            self.on_step(self.masker(what or command))
        started = time.monotonic()
        rc, out, err = self._exec(wrapped, stdin, timeout or self.default_timeout, handshake)
        result = CommandResult(command=self.masker(command), rc=rc, stdout=self.masker(out.decode("utf-8", "replace")),
                               stderr=self.masker(err.decode("utf-8", "replace")),
                               duration=time.monotonic() - started)
        if handshake and handshake.refused:  # not the command's failure: no command of this run can work
            result.stderr = self._sudo_refused()
            self.log.append(result)
            raise RemoteError(result, what="sudo")
        if sensitive_output:
            self.log.append(CommandResult(result.command, rc, "(sensitive output not kept)", "", result.duration))
        else:
            self.log.append(result)
        if check and rc != 0:
            raise RemoteError(result, what)
        return result

    def _exec(self, command: str, stdin: bytes, timeout: float,
              handshake: "SudoHandshake | None" = None) -> tuple[int, bytes, bytes]:
        chan = self.transport_factory().open_session(timeout=30)
        try:
            chan.exec_command(command)
            deadline = time.monotonic() + timeout
            out, err = bytearray(), bytearray()
            if handshake is None or self._sudo_handshake(chan, handshake, out, err, deadline):
                # In pieces: paramiko's sendall copies what is left of its argument after every packet, which
                # makes one call on a large upload (a server tarball) quadratic.
                for start in range(0, len(stdin), STDIN_PIECE):
                    chan.sendall(stdin[start:start + STDIN_PIECE])
            chan.shutdown_write()
            while True:
                got = _drain(chan, out, err)
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    if chan.eof_received or chan.closed:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"command did not finish within {timeout:.0f}s")
                if not got:
                    # stdout readiness and channel close wake select; stderr alone is picked up within 10 ms.
                    select.select([chan], [], [], 0.01)
            return chan.recv_exit_status(), bytes(out), bytes(err)
        finally:
            chan.close()

    def hold(self, command: str, ready: str, timeout: float = 30.0) -> "Held":
        """Start a command that runs until the session lets go of it (a lock held by a process reading its stdin,
        say): returns once it printed the line `ready`, or ended first. Its stdin stays open; Held.release()
        closes it. The SSH session dying, however it dies, closes it too."""
        wrapped, handshake = self._wrap(command)
        chan = self.transport_factory().open_session(timeout=30)
        chan.exec_command(wrapped)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        if handshake is not None and not self._sudo_handshake(chan, handshake, out, err, deadline):
            if handshake.refused:
                chan.close()
                raise RemoteError(CommandResult(self.masker(command), 1, "", self._sudo_refused(), 0.0), what="sudo")
        marker = ready.encode() + b"\n"
        rc: int | None = None
        while True:
            _drain(chan, out, err)
            if marker in out:
                break
            if chan.exit_status_ready() and not chan.recv_ready() and (chan.eof_received or chan.closed):
                rc = chan.recv_exit_status()
                chan.close()
                break
            if time.monotonic() > deadline:
                chan.close()
                raise TimeoutError(f"`{self.masker(command)}` did not start within {timeout:.0f}s")
            select.select([chan], [], [], 0.01)
        text = [self.masker(b.decode("utf-8", "replace")) for b in (out, err)]
        return Held(None if rc is not None else chan, rc, *text)

    def _sudo_refused(self) -> str:
        return f"sudo refused the password of {self.username} (GROUNDWORK_SSH_PASSWORD)"

    def _sudo_handshake(self, chan, hs: "SudoHandshake", out: bytearray, err: bytearray, deadline: float) -> bool:
        """Answer sudo's prompt with the password, once; True when the command has started (it may read its
        stdin now), False when sudo ended first (refused, or not allowed): its words are in err."""
        seen = bytearray()
        while True:
            while chan.recv_ready():
                out += chan.recv(1 << 16)
            while chan.recv_stderr_ready():
                seen += chan.recv_stderr(1 << 16)
            if hs.ready_bytes in seen:
                before, _, after = seen.partition(hs.ready_bytes)
                err += before.replace(hs.prompt_bytes, b"") + after
                return True
            if hs.prompt_bytes in seen:
                if hs.answered:  # asked again: the password was wrong
                    err += seen.replace(hs.prompt_bytes, b"")
                    hs.refused = True
                    return False
                seen = seen.replace(hs.prompt_bytes, b"")
                chan.sendall(self.sudo_password.encode() + b"\n")
                hs.answered = True
            if chan.exit_status_ready() and not chan.recv_stderr_ready():
                err += seen
                return False
            if time.monotonic() > deadline:
                raise TimeoutError("sudo neither asked for a password nor started the command")
            select.select([chan], [], [], 0.01)

    # -- files ----------------------------------------------------------------------------------

    def read_files(self, paths: Iterable[str], sensitive: bool = False) -> dict[str, bytes | None]:
        """Read several files in one round trip; a missing file reads as None."""
        from groundwork.facts import contents

        paths = list(paths)
        return self.gather([contents(paths)], sensitive=sensitive)["contents"] if paths else {}

    def read_file(self, path: str) -> bytes | None:
        return self.read_files([path])[path]

    def write_file(self, path: str, content: bytes, *, mode: str = "0644", owner: str = "root",
                   group: str = "root", previous: bytes | None | object = READ_FROM_HOST, validate: str | None = None,
                   sensitive: bool = False) -> FileWrite:
        """Write a file atomically (temp file, validate, back up the old one, rename).

        previous: the content already read from the host (None: absent), saving a round trip.
        validate: a command run on the temp file before it takes effect, `{path}` standing for it
        (`named-checkconf {path}`); when it fails the file on the host is left as it was.
        """
        if previous is READ_FROM_HOST:
            previous = self.read_file(path)
        diff = unified_diff(path, previous, content, sensitive=sensitive)
        q = shlex.quote
        check = ""
        if validate:
            on_temp_file = validate.replace("{path}", '"$t"')
            check = f'if ! out=$({on_temp_file} 2>&1); then echo "validation failed: $out" >&2; exit 3; fi; '
        digest = hashlib.sha256(content).hexdigest()
        backup_base = q(f"{self.backup_dir}{path}")
        protect_backup = 'chmod 600 "$b"; ' if sensitive else ""  # a key's old copy is as secret as the key
        script = (
            f"set -eu; p={q(path)}; d=$(dirname \"$p\"); mkdir -p \"$d\"; "
            f"t=$(mktemp \"$d/.gw-tmp.XXXXXX\"); trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; "
            # A transfer cut short leaves a whole-looking shorter file: only what arrived in full is installed.
            f"[ \"$(stat -c %s \"$t\")\" = {len(content)} ] && [ \"$(sha256sum < \"$t\" | cut -d' ' -f1)\" = {digest} ] "
            f"|| {{ echo \"upload cut short: $(stat -c %s \"$t\") of {len(content)} bytes arrived\" >&2; exit 4; }}; "
            f"chown {q(owner)}:{q(group)} \"$t\"; chmod {q(mode)} \"$t\"; {check}"
            f"if [ -e \"$p\" ]; then b={backup_base}.$(date -u +%Y%m%dT%H%M%S.%NZ); mkdir -p -m 700 \"$(dirname \"$b\")\"; "
            f"cp -p \"$p\" \"$b\"; {protect_backup}echo \"backup=$b\"; "
            # NUL-separated, so that no name is ever split into two (xargs on lines would split on spaces)
            f"find \"$(dirname \"$b\")\" -maxdepth 1 -type f -name \"$(basename {backup_base}).*\" -printf '%T@ %p\\0' "
            f"| sort -z -rn | tail -z -n +{BACKUPS_KEPT + 1} | cut -z -d' ' -f2- | xargs -0 -r rm -f; fi; "
            f"mv -f \"$t\" \"$p\"; trap - EXIT")
        result = self.run(script, stdin=content, what=f"writing {path}")
        backup = next((line[7:] for line in result.stdout.splitlines() if line.startswith("backup=")), None)
        return FileWrite(path=path, changed=bool(diff) or previous is None, diff=diff, backup=backup)

    def restore_file(self, path: str, backup: str | None) -> None:
        """Put a backup made by write_file back in place, atomically; without a backup, remove the file."""
        q = shlex.quote
        if backup is None:
            self.run(f"rm -f {q(path)}", what=f"removing {path}")
            return
        self.run(f"set -eu; t=$(mktemp \"$(dirname {q(path)})/.gw-tmp.XXXXXX\"); cp -p {q(backup)} \"$t\"; "
                 f"mv -f \"$t\" {q(path)}", what=f"restoring {path} from {backup}")

    # -- facts ----------------------------------------------------------------------------------

    def gather(self, probes: Iterable["Probe"], sensitive: bool = False) -> "Facts":
        """Run every probe in one round trip and parse what each printed."""
        from groundwork.facts import gather_input, gather_script, gathered_sections, parse_gathered

        probes = list(probes)
        known = {p.key: self.known[p.key] for p in probes if p.key in self.known}
        probes = [p for p in probes if p.key not in known]
        sections = self.cache.take(self.host_name, probes) if self.cache is not None else {}
        if missing := [p for p in probes if p.key not in sections]:
            generation = self.cache.generation if self.cache is not None else 0
            out = self.run(gather_script(missing), stdin=gather_input(missing), what="gathering facts",
                           sensitive_output=sensitive or any(p.sensitive for p in missing), reads_only=True).stdout
            read = gathered_sections(out)
            if self.cache is not None:
                self.cache.keep(self.host_name, missing, read, generation)
            sections.update(read)
        facts = parse_gathered(probes, sections)
        facts.update(known)
        return facts
