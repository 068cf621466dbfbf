"""The shape every stage shares: desired state -> a plan of changes -> applied unless dry run -> a report.

A stage's decision function is pure: facts and settings in, a list of changes out, and no change when the
host is already as wanted. `apply_plan` carries a plan out through the remote layer and records, per change,
what it did, its diff and how long it took, keeping what was done when a later change fails.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import shlex
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from groundwork.context import RunContext
from groundwork.facts import PENDING_DIR, FileInfo
from groundwork.remote import CommandResult, Remote, unified_diff


class StageError(Exception):
    """A stage cannot go on for this host; the message says why in the operator's terms."""


@dataclass(frozen=True)
class DesiredFile:
    path: str
    content: bytes
    mode: str = "644"
    owner: str = "root"
    group: str = "root"
    validate: str | None = None  # command run on the new file before it takes effect, {path} = the file
    sensitive: bool = False  # never show the content in diffs

    def matches(self, current: FileInfo | None) -> tuple[bool, bool]:
        """(content matches, attributes match) against the host's file."""
        if current is None:
            return False, False
        same_content = current.sha256 == hashlib.sha256(self.content).hexdigest()
        same_attrs = (current.mode.lstrip("0") == self.mode.lstrip("0") and current.owner == self.owner
                      and current.group == self.group)
        return same_content, same_attrs


@dataclass
class FileChange:
    want: DesiredFile
    before: bytes | None  # content on the host now; None when the file does not exist
    attrs_before: FileInfo | None

    @property
    def summary(self) -> str:
        if self.before is None and self.attrs_before is None:
            return f"create {self.want.path}"
        if self.before == self.want.content:
            return f"set mode {self.want.mode} owner {self.want.owner}:{self.want.group} on {self.want.path}"
        return f"update {self.want.path}"

    @property
    def diff(self) -> str:
        text = ""
        if self.before != self.want.content:
            text = unified_diff(self.want.path, self.before, self.want.content, self.want.sensitive)
        if self.attrs_before is not None:
            a, w = self.attrs_before, self.want
            if (a.mode.lstrip("0"), a.owner, a.group) != (w.mode.lstrip("0"), w.owner, w.group):
                text += (f"--- {w.path} (attributes on host)\n+++ {w.path} (wanted)\n"
                         f"-mode {a.mode} owner {a.owner}:{a.group}\n+mode {w.mode} owner {w.owner}:{w.group}\n")
        return text


@dataclass
class CommandChange:
    summary: str
    commands: list[str]
    diff: str  # what changes, in diff form ("-old" / "+new" lines), for plans and reports
    # An activation (a config check, a reload, a restart): when it fails, the files this plan wrote are put
    # back as they were and `recover` runs, so the service keeps running on its previous configuration.
    undo_files_on_failure: bool = False
    recover: list[str] = field(default_factory=list)
    timeout: float | None = None  # for each command and recovery command; None: the remote's default
    # The unit this change activates on the files its plan writes. A marker for it is left on the host before
    # the first write and removed once the activation succeeded: a run cut short in between leaves it, and
    # the next run activates the unit although its files are as wanted (facts.Services.settled).
    pending: str = ""


@dataclass
class ActionChange:
    """A change carried out by code rather than a file or commands (creating a CA: its key is made at apply
    time, so a plan's diff describes it instead of showing random bytes). The files it writes are undone like
    a FileChange's when the plan's activation fails."""
    summary: str
    diff: str
    action: Callable[[Remote], object]


@dataclass
class FileEdit:
    """A change to a file that a package installed earlier in the same plan brings (nginx.conf): its content is
    known only then, so `edit` makes the new content from the file as the host has it at apply time. Written
    like a FileChange (atomically, backed up, put back when the plan's activation fails)."""
    path: str
    edit: Callable[[bytes], bytes]
    summary: str
    diff: str
    mode: str = "644"


Change = FileChange | CommandChange | ActionChange | FileEdit


def wait_until(test: str, seconds: float, failure: str, diagnose: str = "", interval: float = 0.2) -> str:
    """A command that runs `test` until it succeeds, for at most `seconds`; else it says `failure` on stderr,
    runs `diagnose` (what the service's own log says) and fails."""
    tries = max(1, round(seconds / interval))
    return (f"for i in $(seq {tries}); do {test} && exit 0; sleep {interval}; done; echo {shlex.quote(failure)} >&2; "
            + (f"{diagnose}; " if diagnose else "") + "exit 1")


def journal_tail(service: str, lines: int = 5) -> str:
    return f"journalctl -u {shlex.quote(service)} -n {lines} --no-pager -q -o cat >&2"


def activate_service(service: str, summary: str, diff: str, *, check: str | None = None, reload: bool = False,
                     start: str | None = None, waits: list[str] | None = None, recover: list[str] | None = None,
                     timeout: float | None = None) -> CommandChange:
    """Check the configuration, restart (or reload) the service, wait until it answers. When any of that fails,
    the files the plan wrote go back as they were and the service is brought back on them (`recover`, by
    default: started again if the restart took it down)."""
    unit = shlex.quote(service)
    start = start or (f"systemctl reload {unit}" if reload
                      else f"systemctl enable {unit} >/dev/null 2>&1; systemctl restart {unit}")
    return CommandChange(summary, [c for c in (check, start, *(waits or [])) if c], diff, undo_files_on_failure=True,
                         recover=recover or [f"systemctl is-active --quiet {unit} || systemctl restart {unit}"],
                         timeout=timeout, pending=service)


def stop_and_disable(services, name: str, why: str = "") -> list[CommandChange]:
    """The change that stops a service and keeps it from starting at boot, or none when it is neither."""
    if not services.on(name):
        return []
    service = services[name]
    return [CommandChange(f"stop and disable {name}" + (f" ({why})" if why else ""),
                          [f"systemctl disable --now {shlex.quote(name)}"],
                          value_diff(name, f"{service.active}, {service.enabled}", "inactive, disabled"))]


def create_directories(wanted: list[str], existing: set[str], owner: str | None = None,
                       summary: str = "") -> list[CommandChange]:
    """The change that creates the wanted directories the host lacks (owned by owner), or none."""
    missing = [d for d in wanted if d not in existing]
    if not missing:
        return []
    paths = " ".join(shlex.quote(d) for d in missing)
    commands = [f"mkdir -p {paths}"] + ([f"chown {shlex.quote(owner + ':')} {paths}"] if owner else [])
    what = "directory" + (f" of {owner}" if owner else "")
    return [CommandChange(summary or f"create {', '.join(missing)}", [" && ".join(commands)],
                          "".join(value_diff(d, None, what) for d in missing))]


def value_diff(label: str, before: str | None, after: str | None) -> str:
    """A small diff for a value that is not a file (a running hostname, a sysctl value, a package)."""
    lines = [f"--- {label} (on host)", f"+++ {label} (wanted)"]
    if before is not None:
        lines.append(f"-{before}")
    if after is not None:
        lines.append(f"+{after}")
    return "\n".join(lines) + "\n"


def wanted_digests(*desired: Iterable[DesiredFile]) -> dict[str, str]:
    """Path -> the sha256 a stage would write there, for `facts.files(read_unless=...)`: a file already so is
    not read. desired: the candidates (one list per platform, when the facts decide which); a path whose
    candidates differ is always read."""
    digests: dict[str, set[str]] = {}
    for want in (w for group in desired for w in group):
        digests.setdefault(want.path, set()).add(hashlib.sha256(want.content).hexdigest())
    return {path: shas.pop() for path, shas in digests.items() if len(shas) == 1}


def file_changes(desired: list[DesiredFile], current: dict[str, FileInfo | None]) -> list[FileChange]:
    """Changes for the desired files that differ on the host. current: from `facts.files(read_unless=...)`,
    which carries the content of every file whose digest differs."""
    changes = []
    for want in desired:
        info = current.get(want.path)
        same_content, same_attrs = want.matches(info)
        if same_content and same_attrs:
            continue
        if not same_content and info is not None and info.content is None:
            raise ValueError(f"{want.path} differs on the host but its content was not gathered "
                             "(facts.files(read_unless=...) names a digest other than the one wanted)")
        changes.append(FileChange(want=want, before=want.content if same_content else (info and info.content),
                                  attrs_before=info))
    return changes


@dataclass
class ChangeRecord:
    summary: str
    diff: str
    applied: bool
    duration: float = 0.0
    error: str | None = None
    commands: list[str] = field(default_factory=list)  # what it runs (a file's write is its content digest)
    content: str = ""  # a file's content digest: sha256:..., or hmac-sha256:... keyed for a sensitive file

    def plan_entry(self) -> dict:
        """What an approval binds: the change as shown, every command, the content written."""
        return {"summary": self.summary, "diff": self.diff, "commands": self.commands, "content": self.content}


def content_digest(want: DesiredFile, key: bytes) -> str:
    """A plan's digest of a file's content. A sensitive file's is keyed: an unkeyed digest of content that
    holds a secret lets anyone with the plan test guesses of the secret offline."""
    if want.sensitive:
        return "hmac-sha256:" + hmac.new(key, want.content, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(want.content).hexdigest()


def record_of(change: "Change", dry_run: bool, key: bytes) -> ChangeRecord:
    record = ChangeRecord(summary=change.summary, diff=change.diff, applied=not dry_run)
    if isinstance(change, FileChange):
        w = change.want
        record.content = f"{content_digest(w, key)} mode {w.mode} owner {w.owner}:{w.group}"
    elif isinstance(change, CommandChange):
        record.commands = list(change.commands)
    return record


@dataclass
class StageReport:
    """What a stage found and did on one host."""

    changes: list[ChangeRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why nothing was done, what was checked
    commands: list[CommandResult] = field(default_factory=list)
    error: str | None = None
    refused: bool = False  # its plan was not the approved one (changes.PlanRefused)
    skipped: bool = False  # not run, for the reason in error (a serial stage stopped at an earlier host)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def mask(self, masker) -> "StageReport":
        """Hide secret values in everything the report carries; done once, before it is printed or saved."""
        for change in self.changes:
            change.summary, change.diff = masker(change.summary), masker(change.diff)
            change.commands = [masker(c) for c in change.commands]
            change.error = masker(change.error) if change.error else None
        self.notes = [masker(n) for n in self.notes]
        self.error = masker(self.error) if self.error else None
        return self

    @property
    def diff(self) -> str:
        return "".join(c.diff for c in self.changes)

    def transcript(self) -> str:
        """What --verbose shows of a host's stage: its notes and error, then every command with its exit status."""
        lines = [*self.notes, *([f"ERROR: {self.error}"] if self.error else [])]
        lines += [f"$ {c.command}  (exit {c.rc}, {c.duration:.2f}s)" for c in self.commands]
        return "\n".join(lines)


class PlanFailed(Exception):
    def __init__(self, message: str, report: StageReport):
        super().__init__(message)
        self.report = report


class PlanRefused(PlanFailed):
    """The plan computed for a host's stage is not the approved one: nothing of it was applied."""


def apply_plan(remote: Remote, plan: list[Change], ctx: RunContext, report: StageReport | None = None) -> StageReport:
    """Carry out a plan in order (or only record it in a dry run). Stops at the first failing change.

    Under --approved-plan the plan, computed right before this, is applied only when it is exactly the approved
    plan's slice for this host and stage; otherwise nothing of it is, and the host stops here.
    """
    report = report or StageReport()
    records = [record_of(change, ctx.dry_run, ctx.digest_key) for change in plan]
    if ctx.approved is not None:
        _check_approved(records, ctx, remote.masker, report)
    written: list[tuple[str, str | None]] = []  # (path, backup) of the files this plan wrote, to undo them
    to_activate = _activations_after_writes(plan)
    for change, record in zip(plan, records):
        report.changes.append(record)
        if ctx.dry_run:
            continue
        started = time.monotonic()
        try:
            if to_activate and not isinstance(change, CommandChange):  # the plan's first write: mark first
                remote.run(mark_pending(to_activate), what="marking the activations this plan owes")
                to_activate = []
            if isinstance(change, FileChange) and change.before == change.want.content:
                w = change.want  # only mode or owner differ: no rewrite, no backup copy of the content
                remote.run(f"chown {shlex.quote(f'{w.owner}:{w.group}')} {shlex.quote(w.path)} && "
                           f"chmod {shlex.quote(w.mode)} {shlex.quote(w.path)}", what=change.summary)
            elif isinstance(change, FileChange):
                w = change.want
                result = remote.write_file(w.path, w.content, mode=w.mode, owner=w.owner, group=w.group,
                                           previous=change.before, validate=w.validate, sensitive=w.sensitive)
                written.append((w.path, result.backup))
            elif isinstance(change, FileEdit):
                before = remote.read_file(change.path)
                if before is None:
                    raise StageError(f"{change.path} is not on the host even after the packages were installed")
                after = change.edit(before)
                if after != before:
                    result = remote.write_file(change.path, after, mode=change.mode, previous=before)
                    written.append((change.path, result.backup))
            elif isinstance(change, ActionChange):
                change.action(_RecordingWrites(remote, written))
            else:
                for command in change.commands:
                    remote.run(command, what=change.summary, timeout=change.timeout)
                if change.pending:
                    remote.run(f"rm -f {shlex.quote(pending_marker(change.pending))}", what=change.summary)
        except Exception as exc:  # noqa: BLE001 - recorded, then the stage fails with it
            record.applied = False
            record.error = str(exc)
            report.error = str(exc) if str(exc).startswith(change.summary) else f"{change.summary}: {exc}"
            if isinstance(change, CommandChange) and change.undo_files_on_failure and written:
                report.error += "; " + _undo(remote, written, change.recover, change.timeout)
            raise PlanFailed(report.error, report) from exc
        finally:
            record.duration = time.monotonic() - started
    return report


class _RecordingWrites:
    """The remote an ActionChange works through: every file it writes is recorded like a FileChange's, so that
    a failed activation later in the plan puts it back too (a certificate, an htpasswd, a harbor.yml)."""

    def __init__(self, remote: Remote, written: list[tuple[str, str | None]]):
        self._remote, self._written = remote, written

    def write_file(self, path: str, content: bytes, **options):
        result = self._remote.write_file(path, content, **options)
        self._written.append((path, result.backup))
        return result

    def __getattr__(self, name: str):
        return getattr(self._remote, name)


def pending_marker(unit: str) -> str:
    return f"{PENDING_DIR}/{unit}"


def mark_pending(units: list[str]) -> str:
    return f"mkdir -p {PENDING_DIR} && touch " + " ".join(shlex.quote(pending_marker(u)) for u in units)


def _activations_after_writes(plan: list[Change]) -> list[str]:
    """The units whose activation follows a write in this plan: what a run cut short in between would owe."""
    first_write = next((i for i, c in enumerate(plan) if not isinstance(c, CommandChange)), None)
    if first_write is None:
        return []
    return list(dict.fromkeys(c.pending for c in plan[first_write:] if isinstance(c, CommandChange) and c.pending))


def _check_approved(records: list[ChangeRecord], ctx: RunContext, masker, report: StageReport) -> None:
    host, stage = ctx.step
    approved = ctx.approved.get((host, stage), [])
    now = [{k: (masker(v) if isinstance(v, str) else [masker(c) for c in v]) for k, v in r.plan_entry().items()}
           for r in records]
    if now != approved:
        report.notes.append(plan_difference([{"host": host, "stage": stage, **e} for e in approved],
                                            [{"host": host, "stage": stage, **e} for e in now]))
        report.refused = True
        raise PlanRefused(f"REFUSED: the plan for {host} {stage} differs from the approved plan {ctx.approved_run} "
                          "(the host changed since it was approved); nothing of it was applied", report)


def _undo(remote: Remote, written: list[tuple[str, str | None]], recover: list[str],
          timeout: float | None = None) -> str:
    """Put written files back as they were (a new file is removed) and run the recovery commands."""
    paths = ", ".join(p for p, _ in written)
    try:
        for path, backup in reversed(written):
            remote.restore_file(path, backup)
    except Exception as exc:  # noqa: BLE001 - say that the undo failed too, with why
        return f"putting the previous files back FAILED as well: {exc}"
    try:
        for command in recover:
            remote.run(command, what="recovering the service on its previous configuration", timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return f"previous files restored ({paths}); the service did not recover: {exc}"
    return f"previous files restored ({paths})"


def plan_text(changes: list[dict]) -> str:
    def details(c: dict) -> str:
        return "".join(f"  $ {command}\n" for command in c.get("commands", [])) + (
            f"  content {c['content']}\n" if c.get("content") else "")
    return "".join(f"## {c['host']} {c['stage']}: {c['summary']}\n{c['diff']}{details(c)}" for c in changes)


def plan_difference(approved: list[dict], current: list[dict]) -> str:
    return "".join(difflib.unified_diff(plan_text(approved).splitlines(keepends=True),
                                        plan_text(current).splitlines(keepends=True),
                                        fromfile="approved plan", tofile="plan computed now"))
