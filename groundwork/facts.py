"""Read-only probes of a host's state. Only this module parses shell output.

A stage lists the probes it needs; `Remote.gather` joins their scripts into one round trip and hands each
probe back its own part of the output. Every probe works on Debian-family and EL hosts alike.
"""

from __future__ import annotations

import base64
import json
import shlex
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

MARK = "@@gw-probe "


@dataclass(frozen=True)
class Probe:
    key: str
    script: str
    parse: Callable[[str], Any]
    # Bytes the script reads on its stdin (a password it checks): sent with the gather, never on a command line.
    input: bytes = b""
    # Its output holds a secret (a key, a password file): the gather's output is then kept out of the log.
    sensitive: bool = False
    # A files() probe's paths and the digests it skips reading (None: reads no content): another files()
    # probe's text answers it when that text has these paths and every content this one needs (GatherCache).
    reads: tuple[frozenset[str], dict[str, str] | None] | None = field(default=None, compare=False)


class Facts(dict):
    """The parsed result of a gather: probe key -> value."""


def keyvalues(text: str, skip: str | None = None) -> dict[str, str]:
    """The KEY=VALUE lines of a command's output (split at the first =), but those starting with `skip`."""
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not (skip and line.startswith(skip)))


def gather_script(probes: list[Probe]) -> str:
    # Each probe runs in a subshell so that one probe's failure or `exit` cannot hide the next one. A mark
    # starts on a line of its own even after output with no final newline (the parser drops that empty line).
    return ("".join(f"echo '{MARK}{p.key}'; {on_own_stdin(p.script, p.input)} 2>/dev/null; echo; " for p in probes)
            + f"echo '{MARK}end'")


def on_own_stdin(script: str, data: bytes) -> str:
    """The script in a subshell that reads exactly its own bytes of a stdin shared in order with other parts of
    one command (`head -c` reads no further than asked); without bytes of its own, it reads nothing of theirs."""
    return f"head -c {len(data)} | ( {script} )" if data else f"( {script} ) </dev/null"


def gather_input(probes: list[Probe]) -> bytes:
    return b"".join(p.input for p in probes)


def gathered_sections(output: str) -> dict[str, str]:
    """What each probe of a gather printed: probe key -> its text."""
    sections: dict[str, str] = {}
    current = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(MARK):
            if current is not None:
                sections[current] = "\n".join(lines[:-1] if lines and lines[-1] == "" else lines)
            current, lines = line[len(MARK):], []
        else:
            lines.append(line)
    return sections


def parse_gathered(probes: list[Probe], output: str | dict[str, str]) -> Facts:
    sections = gathered_sections(output) if isinstance(output, str) else output
    facts = Facts()
    for probe in probes:
        if probe.key not in sections:
            raise ValueError(f"probe {probe.key!r} printed nothing; output was cut short")
        facts[probe.key] = probe.parse(sections[probe.key])
    return facts


class GatherCache:
    """What each host's probes printed, read for every stage of a run in one round trip per host at its start.

    A stage's gather takes from here what a probe identical in script and input printed, and runs only the
    rest. As soon as any host runs anything but a gather (a change, a wait), every host's texts are forgotten:
    a change may alter what another host's probe reads of it (a secondary asks the primary for its serials), so
    from then on every stage gathers live, as without the cache. A no-op run or a dry run reads each host once.
    """

    def __init__(self) -> None:
        self._texts: dict[str, dict[tuple[str, str, bytes], str]] = {}
        # Per host, what each files() probe read: (its paths, its text), for a probe asking less of them.
        self._files: dict[str, list[tuple[frozenset[str], str]]] = {}
        self._lock = threading.Lock()
        self.generation = 0  # how many times forgotten: a gather under way across a forget is not kept
        self._first_log: dict[str, list] = {}

    @staticmethod
    def _identity(probe: Probe) -> tuple[str, str, bytes]:
        return probe.key, probe.script, probe.input

    def keep(self, host: str, probes: list[Probe], sections: dict[str, str], generation: int) -> None:
        """Keep what a gather begun at `generation` read, unless a forget came since it began."""
        with self._lock:
            if generation != self.generation:
                return
            self._kept(host, [(p, sections[p.key]) for p in probes if p.key in sections])

    def keep_first(self, host: str, read: list[tuple[Probe, str]], log: list) -> None:
        """The run's first gather on a host: each probe with its text, and the command that read them (the
        host's first stage carries it into the run record)."""
        with self._lock:
            self._kept(host, read)
            self._first_log[host] = log

    def _kept(self, host: str, read: list[tuple[Probe, str]]) -> None:
        self._texts.setdefault(host, {}).update({self._identity(p): text for p, text in read})
        self._files.setdefault(host, []).extend((p.reads[0], text) for p, text in read if p.reads is not None)

    def first_log(self, host: str) -> list:
        """The command of the host's first gather, once: for the first stage to carry."""
        with self._lock:
            return self._first_log.pop(host, [])

    def take(self, host: str, probes: list[Probe]) -> dict[str, str]:
        """probe key -> its text, for the probes kept for this host."""
        with self._lock:
            texts, files = self._texts.get(host, {}), self._files.get(host, [])
            taken = {p.key: texts[self._identity(p)] for p in probes if self._identity(p) in texts}
            for p in (p for p in probes if p.key not in taken and p.reads is not None):
                # The first gather's files probes were built before an earlier stage handed over what they
                # compare with (certificates): a text that read every content this probe needs answers it.
                text = next((t for paths, t in files if p.reads[0] <= paths and _files_text_answers(p, t)), None)
                if text is not None:
                    taken[p.key] = text
            return taken

    def forget(self) -> None:
        with self._lock:
            self._texts.clear()
            self._files.clear()
            self.generation += 1


def _files_text_answers(probe: Probe, text: str) -> bool:
    """Whether a files() text has the content of every file whose digest is not the one this probe wants."""
    paths, wanted = probe.reads
    if wanted is None:
        return True
    found = _parse_files(list(paths))(text)
    return all(info is None or info.content is not None or wanted.get(p) == info.sha256 for p, info in found.items())


def _q(values: list[str]) -> str:
    return " ".join(shlex.quote(v) for v in values)


# -- operating system -------------------------------------------------------------------------------

@dataclass(frozen=True)
class OsInfo:
    id: str
    id_like: tuple[str, ...]
    version_id: str
    pretty_name: str
    kernel: str

    @property
    def family(self) -> str:
        """'debian', 'el', or 'unknown': the one switch for package and path differences."""
        ids = {self.id, *self.id_like}
        if ids & {"debian", "ubuntu"}:
            return "debian"
        if ids & {"rhel", "centos", "fedora", "rocky", "almalinux", "ol"}:
            return "el"
        return "unknown"


def _parse_os(text: str) -> OsInfo:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    return OsInfo(id=values.get("ID", "").lower(), id_like=tuple(values.get("ID_LIKE", "").lower().split()),
                  version_id=values.get("VERSION_ID", ""), pretty_name=values.get("PRETTY_NAME", ""),
                  kernel=values.get("GW_KERNEL", ""))


def os_info() -> Probe:
    return Probe("os", "cat /etc/os-release; echo GW_KERNEL=$(uname -r)", _parse_os)


# -- hostname ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostnameInfo:
    static: str | None  # /etc/hostname, None when the file is missing
    running: str


def _parse_hostname(text: str) -> HostnameInfo:
    values = keyvalues(text)
    static = values.get("static")
    return HostnameInfo(static=None if static == "@absent" else static, running=values.get("running", ""))


def hostname() -> Probe:
    return Probe("hostname",
                 "if [ -f /etc/hostname ]; then echo static=$(cat /etc/hostname); else echo static=@absent; fi; "
                 "echo running=$(cat /proc/sys/kernel/hostname)", _parse_hostname)


# -- packages ---------------------------------------------------------------------------------------

def _parse_packages(names: list[str]) -> Callable[[str], dict[str, str | None]]:
    def parse(text: str) -> dict[str, str | None]:
        found: dict[str, str | None] = {n: None for n in names}
        for line in text.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1].startswith("ii") and parts[0] in found:
                found[parts[0]] = parts[2]
        return found
    return parse


def packages(names: list[str]) -> Probe:
    """Installed version of each package, None when not installed."""
    names = list(names)
    script = (f"if command -v dpkg-query >/dev/null; then "
              f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}${{Version}}\\n' {_q(names)}; "
              f"elif command -v rpm >/dev/null; then "
              f"rpm -q --qf '%{{NAME}} ii %{{VERSION}}-%{{RELEASE}}\\n' {_q(names)} | grep -v 'is not installed'; fi; true")
    return Probe("packages", script if names else "true", _parse_packages(names))


# -- files ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileInfo:
    sha256: str
    mode: str  # octal, like "644"
    owner: str
    group: str
    # The file's content, read in the same round trip when its digest was not the one the stage wants
    # (files(..., read_unless=...)); None when it was not read.
    content: bytes | None = field(default=None, repr=False, compare=False)


def content_on_host(files: dict[str, FileInfo | None], path: str, wanted: bytes | None) -> bytes | None:
    """A file's content on the host, from a files() probe that read it unless it was what is wanted: what was
    read, else what is wanted; None when the file is not there."""
    info = files.get(path)
    if info is None:
        return None
    return info.content if info.content is not None else wanted


def _parse_files(paths: list[str]) -> Callable[[str], dict[str, FileInfo | None]]:
    def parse(text: str) -> dict[str, FileInfo | None]:
        attrs, digests, contents = {}, {}, {}
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "@@s" and rest.count("\t") == 3:
                path, mode, owner, group = rest.split("\t")
                attrs[path] = (mode, owner, group)
            elif kind == "@@h":
                digest, _, path = rest.partition(" ")
                digests[path] = digest
            elif kind == "@@c":
                path, _, body = rest.partition("\t")
                contents[path] = base64.b64decode(body)
        return {p: FileInfo(digests[p], *attrs[p], content=contents.get(p)) if p in attrs and p in digests else None
                for p in paths}
    return parse


def files(paths: list[str], read_unless: dict[str, str] | None = None, key: str = "files",
          sensitive: bool = False) -> Probe:
    """sha256, mode and ownership of each file, None when it does not exist.

    read_unless: path -> the sha256 a stage wants there. The content of a file whose digest differs comes in
    the same round trip, so that a stage never reads twice; a path not named is always read. None: read none.
    sensitive: the files hold secrets; their content never reaches the log.
    One stat and one sha256sum for all the files, whatever their number.
    """
    paths = list(dict.fromkeys(paths))
    reads = (frozenset(paths), None if read_unless is None else {p: d for p, d in read_unless.items() if p in paths})
    if not paths:
        return Probe(key, "true", _parse_files(paths), sensitive=sensitive, reads=reads)
    if read_unless is not None:
        known = "".join(f"{shlex.quote(p)}) w={shlex.quote(d)};; " for p, d in read_unless.items() if p in paths)
        read = (f" | while read -r s p; do echo \"@@h $s $p\"; w=; case \"$p\" in {known}esac; "
                "[ \"$s\" = \"$w\" ] || printf '@@c %s\\t%s\\n' \"$p\" \"$(base64 -w0 < \"$p\")\"; done")
    else:
        read = " | while read -r s p; do echo \"@@h $s $p\"; done"
    script = (f"set --; for p in {_q(paths)}; do [ -f \"$p\" ] && set -- \"$@\" \"$p\"; done; [ $# -gt 0 ] || exit 0; "
              "stat -c '@@s %n\t%a\t%U\t%G' -- \"$@\"; sha256sum -- \"$@\"" + read)
    return Probe(key, script, _parse_files(paths), sensitive=sensitive, reads=reads)


# -- services ---------------------------------------------------------------------------------------

# One marker per unit that a run wrote files for and has not yet activated on them (changes.apply_plan).
PENDING_DIR = "/var/lib/groundwork/pending"


@dataclass(frozen=True)
class ServiceInfo:
    exists: bool
    active: str   # active, inactive, failed, ...
    enabled: str  # enabled, disabled, masked, static, ...
    pending: bool = False  # a run cut short wrote its files and never activated it (changes.CommandChange)

    @property
    def running(self) -> bool:
        return self.active == "active"

    @property
    def on(self) -> bool:
        """Running now, or set to start at boot."""
        return self.exists and (self.running or self.enabled == "enabled")


class Services(dict):
    """Unit name -> ServiceInfo; a unit the host does not know is absent."""

    def running(self, name: str) -> bool:
        service = self.get(name)
        return bool(service and service.running)

    def on(self, name: str) -> bool:
        service = self.get(name)
        return bool(service and service.on)

    def settled(self, name: str) -> bool:
        """Running, and owing no activation: no run was cut short between writing its files and activating it."""
        service = self.get(name)
        return bool(service and service.running and not service.pending)

    def pending(self, name: str) -> bool:
        service = self.get(name)
        return bool(service and service.pending)


def _parse_services(names: list[str]) -> Callable[[str], Services]:
    def parse(text: str) -> Services:
        # `systemctl show` prints one block of properties per unit, in the order asked, blank lines between.
        shown, _, pending = text.partition("@@pending\n")
        blocks = [keyvalues(block) for block in shown.strip().split("\n\n")] if shown.strip() else []
        owed = set(pending.split())
        result = Services()
        for i, name in enumerate(names):
            props = blocks[i] if i < len(blocks) else {}
            if not props and name not in owed:
                continue
            result[name] = ServiceInfo(exists=props.get("LoadState") == "loaded",
                                       active=props.get("ActiveState") or "unknown",
                                       enabled=props.get("UnitFileState") or "none", pending=name in owed)
        return result
    return parse


def services(names: list[str]) -> Probe:
    """Each unit's load state, whether it runs, and whether it starts at boot: one systemctl for them all."""
    names = list(names)
    script = (f"systemctl show -p LoadState -p ActiveState -p UnitFileState -- {_q(names)}; echo @@pending; "
              f"cd {PENDING_DIR} 2>/dev/null && ls -A -- {_q(names)} 2>/dev/null; true")
    return Probe("services", script if names else "true", _parse_services(names))


# -- kernel settings --------------------------------------------------------------------------------

def _parse_keyvalues(text: str) -> dict[str, str | None]:
    return {key: None if value == "@absent" else value for key, value in keyvalues(text).items()}


def sysctl(keys: list[str]) -> Probe:
    """Running value of each sysctl key, None when the key does not exist (its module is not loaded)."""
    script = (f"for k in {_q(list(keys))}; do f=/proc/sys/$(echo \"$k\" | tr . /); "
              "if [ -r \"$f\" ]; then echo \"$k=$(cat \"$f\")\"; else echo \"$k=@absent\"; fi; done")
    return Probe("sysctl", script if keys else "true", _parse_keyvalues)


def selinux() -> Probe:
    """Running and configured SELinux mode; both None on hosts without SELinux."""
    script = ("if command -v getenforce >/dev/null; then echo running=$(getenforce | tr A-Z a-z); "
              "else echo running=@absent; fi; "
              "if [ -f /etc/selinux/config ]; then echo config=$(sed -n 's/^SELINUX=//p' /etc/selinux/config); "
              "else echo config=@absent; fi")
    return Probe("selinux", script, _parse_keyvalues)


def commands(names: list[str]) -> Probe:
    """Which of these commands exist on the host."""
    script = f"for c in {_q(list(names))}; do command -v \"$c\" >/dev/null && echo \"$c\"; done; true"
    return Probe("commands", script, lambda text: set(text.split()))


def paths_exist(paths: list[str]) -> Probe:
    """Which of these paths exist on the host."""
    script = f"for p in {_q(list(paths))}; do [ -e \"$p\" ] && echo \"$p\"; done; true"
    return Probe("paths", script, lambda text: set(text.splitlines()))


def contents(paths: list[str], key: str = "contents", sensitive: bool = False) -> Probe:
    """The content of each file, None when it does not exist (for small files whose text a stage reads)."""
    paths = list(dict.fromkeys(paths))
    script = "".join(f"if [ -f {shlex.quote(p)} ]; then echo '@@gw-file 1'; base64 < {shlex.quote(p)}; "
                     f"else echo '@@gw-file 0'; fi; " for p in paths)

    def parse(text: str) -> dict[str, bytes | None]:
        chunks = text.split("@@gw-file ")[1:]
        result: dict[str, bytes | None] = dict.fromkeys(paths)  # output cut short: the rest read as absent
        for path, chunk in zip(paths, chunks):
            present, _, body = chunk.partition("\n")
            result[path] = base64.b64decode(body) if present.strip() == "1" else None
        return result
    return Probe(key, script or "true", parse, sensitive=sensitive)


def interfaces() -> Probe:
    """Each IPv4 address on the host -> the interface carrying it (eth0, never eth0@if12)."""
    def parse(text: str) -> dict[str, str]:
        found = {}
        for fields in (line.split() for line in text.splitlines()):
            if len(fields) >= 4 and fields[2] == "inet":
                found[fields[3].split("/")[0]] = fields[1].split("@")[0]
        return found
    return Probe("interfaces", "ip -o -4 addr show", parse)


# The VRRP state keepalived last entered since it started, from its journal (it has no other way to ask).
KEEPALIVED_STATE = ("id=$(systemctl show -p InvocationID --value keepalived); [ -n \"$id\" ] && journalctl -q -o cat "
                    "--no-pager -u keepalived _SYSTEMD_INVOCATION_ID=\"$id\" | sed -n 's/.*Entering \\([A-Z]*\\) "
                    "STATE.*/\\1/p' | tail -n 1")


def keepalived_state() -> Probe:
    """MASTER, BACKUP or FAULT: the state keepalived entered last; "" when it is not running."""
    return Probe("keepalived_state", KEEPALIVED_STATE + "; true", lambda text: text.strip())


def links(paths: list[str]) -> Probe:
    """For each path: the target when it is a symbolic link, "" when it is anything else, absent when missing."""
    script = (f"for p in {_q(list(paths))}; do if [ -L \"$p\" ]; then printf '%s\\t%s\\n' \"$p\" \"$(readlink \"$p\")\"; "
              "elif [ -e \"$p\" ]; then printf '%s\\t\\n' \"$p\"; fi; done; true")
    return Probe("links", script, lambda text: dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line))


def password_checks(paths: list[str], user: str, password: str) -> Probe:
    """For each htpasswd file: True when it verifies USER's password, False when not (or htpasswd is not
    installed), None when the file does not exist. The password is the probe's input: on stdin, never on a
    command line (printf is the shell's own)."""
    script = (f"pw=$(cat); for p in {_q(list(paths))}; do if [ ! -f \"$p\" ]; then echo \"$p=@absent\"; "
              f"elif printf '%s' \"$pw\" | htpasswd -v -i \"$p\" {shlex.quote(user)} >/dev/null 2>&1; "
              "then echo \"$p=yes\"; else echo \"$p=no\"; fi; done")

    def parse(text: str) -> dict[str, bool | None]:
        return {path: None if found is None else found == "yes" for path, found in _parse_keyvalues(text).items()}
    return Probe("password_checks", script, parse, input=password.encode())


def harbor_health(port: int) -> Probe:
    """Harbor's own health summary ("healthy", "unhealthy"), None when nothing answers on the port."""
    def parse(text: str) -> str | None:
        try:
            return json.loads(text).get("status")
        except (ValueError, AttributeError):
            return None
    return Probe("harbor_health", f"curl -s -m 5 http://127.0.0.1:{int(port)}/api/v2.0/health; true", parse)
