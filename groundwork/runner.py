"""Runs stages in pipeline order on Nornir's threaded runner and keeps the run record.

Hosts of one stage run in parallel; a host that fails a stage is skipped by the stages after it, and the
other hosts go on. Connections are opened once per host and reused by every stage of the run.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nornir.core import Nornir
from nornir.core.inventory import Host
from nornir.core.task import Result, Task
from nornir.plugins.runners import SerialRunner

from groundwork import hostkeys
from groundwork.changes import PlanFailed, StageReport
from groundwork.context import RunContext
from groundwork.hostlock import NotLocked
from groundwork.inventory import KNOWN_GROUPS, HostModel
from groundwork.remote import Remote
from groundwork.stages import Stage


@dataclass
class HostStageRecord:
    host: str
    stage: str
    status: str  # ok, changed, failed, skipped
    duration: float
    report: StageReport | None = None
    error: str | None = None


@dataclass
class RunRecord:
    run_id: str
    runbook: str
    dry_run: bool
    targets: list[str]
    started: str
    ended: str | None = None
    interrupted: bool = False
    entries: list[HostStageRecord] = field(default_factory=list)
    # Each entry is also appended here as it is added: what a run killed outright did is still on record.
    journal: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entry: HostStageRecord) -> None:
        with self._lock:
            self.entries.append(entry)
            if self.journal is not None:
                with open(self.journal, "a") as journal:
                    journal.write(json.dumps(entry_dict(entry)) + "\n")

    def counts(self, host: str) -> dict[str, int]:
        counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        for e in self.entries:
            if e.host == host:
                counts[e.status] += 1
                if e.status == "changed":
                    counts["ok"] += 1  # a changed stage also ended well, as in Ansible's recap
        return counts

    @property
    def failed_hosts(self) -> list[str]:
        return sorted({e.host for e in self.entries if e.status == "failed"}, key=self.targets.index)

    @property
    def refused_hosts(self) -> list[str]:
        """Hosts stopped because a stage's plan was not the approved one (--approved-plan)."""
        return sorted({e.host for e in self.entries if e.report and e.report.refused}, key=self.targets.index)

    @property
    def changed_hosts(self) -> list[str]:
        return sorted({e.host for e in self.entries if e.status == "changed"}, key=self.targets.index)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "runbook": self.runbook, "dry_run": self.dry_run, "targets": self.targets,
                "started": self.started, "ended": self.ended, "interrupted": self.interrupted,
                "entries": [entry_dict(e) for e in self.entries]}


def entry_dict(e: HostStageRecord) -> dict:
    """One host's stage as run.json keeps it (its report already masked)."""
    data = {"host": e.host, "stage": e.stage, "status": e.status, "duration": round(e.duration, 3), "error": e.error}
    if e.report:
        data["notes"] = e.report.notes
        data["changes"] = [asdict(c) for c in e.report.changes]
        data["commands"] = [{"command": c.command, "rc": c.rc, "duration": round(c.duration, 3)}
                            for c in e.report.commands]
    return data


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(runbook: str, reports_dir: Path) -> str:
    """UTC time and runbook; a suffix keeps two runs started in the same second apart."""
    base = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{runbook}"
    run_id, n = base, 1
    while (reports_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def order_hosts(hosts: list[HostModel]) -> list[HostModel]:
    """The pipeline's order: proxy hosts, then the ops host, then master_compute hosts."""
    def key(h: HostModel) -> tuple:
        rank = min((KNOWN_GROUPS.index(g) for g in h.groups if g in KNOWN_GROUPS), default=len(KNOWN_GROUPS))
        return rank, len(h.name), h.name
    return sorted(hosts, key=key)


def describe_error(exc: BaseException, host: HostModel, connection: Host | None = None) -> str:
    """One line an operator can act on, in place of a driver's traceback. connection: the Nornir host, for
    the SSH port and known_hosts file that a host key message names."""
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException
    import paramiko

    # Netmiko wraps paramiko's host key refusals in a timeout exception; the cause says what happened.
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 10:
        chain.append(cause)
    for link in chain:
        if isinstance(link, paramiko.BadHostKeyException):
            return hostkeys.changed_key_message(link, str(host.address), *_ssh_identity(connection))
        if isinstance(link, paramiko.SSHException) and "not found in known_hosts" in str(link):
            port, known_hosts = _ssh_identity(connection)
            return hostkeys.unknown_key_message(str(host.address), port, known_hosts or "the known_hosts file")
    if isinstance(exc, NetmikoAuthenticationException):
        return f"SSH login to {host.address} refused: check the user, key or GROUNDWORK_SSH_PASSWORD"
    if isinstance(exc, NetmikoTimeoutException) and isinstance(exc.__context__, paramiko.SSHException):
        return f"SSH connection to {host.address} failed: {_first_line(exc.__context__)}"
    if isinstance(exc, NetmikoTimeoutException):
        return f"cannot connect over SSH to {host.address}: host down or unreachable ({_first_line(exc)})"
    if isinstance(exc, (paramiko.SSHException, EOFError, socket.error)):
        return f"SSH connection to {host.address} failed: {_first_line(exc) or type(exc).__name__}"
    return _first_line(exc) or type(exc).__name__


def _ssh_identity(connection: Host | None) -> tuple[int, str | None]:
    """(port, known_hosts file) of a Nornir host's netmiko connection."""
    if connection is None:
        return 22, None
    params = connection.get_connection_parameters("netmiko")
    return params.port or 22, (params.extras or {}).get("alt_key_file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class Progress:
    """Live lines per host and stage; diffs under them in a dry run or with --diff."""

    def __init__(self, record: RunRecord, show_diff: bool, out=None, verbose: bool = False):
        self.record = record
        self.show_diff = show_diff
        self.verbose = verbose  # each stage's Nornir results in full, after its progress lines
        self.out = out or sys.stdout
        self.colour = self.out.isatty()
        self.lock = threading.Lock()

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, file=self.out, flush=True)

    def paint(self, text: str, status: str) -> str:
        codes = {"changed": "33", "failed": "31;1", "ok": "32", "skipped": "36"}
        return f"\033[{codes[status]}m{text}\033[0m" if self.colour and status in codes else text

    def stage_started(self, stage: Stage, hosts: list[HostModel], skipped: list[str]) -> None:
        self.say(f"\n== {stage.name} ({stage.title}) on {len(hosts)} host(s): {' '.join(h.name for h in hosts)}")
        for name in skipped:
            self.say(f"  {name:<12} {self.paint('skipped', 'skipped'):<8} failed in an earlier stage")

    def host_done(self, entry: HostStageRecord) -> None:
        report = entry.report
        what = entry.error or (", ".join(c.summary for c in report.changes) if report and report.changes
                               else "; ".join(report.notes if report else []) or "no change")
        lines = [f"  {entry.host:<12} {self.paint(entry.status, entry.status):<8} {entry.duration:5.1f}s  {what}"]
        if report and report.changes and (self.show_diff or self.record.dry_run):
            lines += ["      " + line for c in report.changes for line in c.diff.rstrip("\n").splitlines()]
        self.say("\n".join(lines))

    def nornir_results(self, results) -> None:
        """--verbose: a stage's Nornir results per host as nornir-utils prints them (diffs, then notes and every
        command with its exit status)."""
        import colorama
        from nornir_utils.plugins.functions import print_result

        # Importing print_result wraps stdout for good (a colour reset after every print): only while it prints,
        # and without colours when the output is not a terminal.
        colorama.deinit()
        with self.lock:
            colorama.init(autoreset=True, strip=not self.out.isatty())
            try:
                print_result(results, vars=["diff", "transcript"])
            finally:
                colorama.deinit()

    def recap(self) -> None:
        r = self.record
        self.say(f"\nRECAP{' (dry run: nothing was changed)' if r.dry_run else ''}")
        self.say(f"  {'host':<12} {'ok':>4} {'changed':>8} {'failed':>7} {'skipped':>8}")
        for host in r.targets:
            c = r.counts(host)
            self.say(f"  {host:<12} {c['ok']:>4} {c['changed']:>8} {c['failed']:>7} {c['skipped']:>8}")
        verb = "would change" if r.dry_run else "changed"
        self.say(f"{len(r.changed_hosts)} host(s) {verb}, {len(r.failed_hosts)} failed"
                 + (f": {', '.join(r.failed_hosts)}" if r.failed_hosts else ""))


def _stage_task(task: Task, stage: Stage, ctx: RunContext, recorder: "StageRecorder") -> Result:
    host = ctx.inventory.hosts[task.host.name]
    if stage.serial and stage.stop_at_failure and recorder.failed:
        # One at a time means the next host's turn assumes the one before ended well (an etcd member restarted
        # while another is down would cost the cluster its quorum): the stage stops at its first failure.
        report = StageReport(error=f"not run: {recorder.failed[0]} failed before it, and {stage.name} does its "
                                   "hosts one at a time", skipped=True)
        return Result(host=task.host, result=report, transcript=report.transcript())
    remote = None
    try:
        if ctx.host_locks is not None:
            ctx.host_locks.check(host.name)
        remote = Remote.for_task(task, ctx.masker)
        report = stage.run(remote, host, ctx.for_step(host.name, stage.name)).mask(ctx.masker)
        report.commands = remote.log
        return Result(host=task.host, changed=report.changed, diff=report.diff, result=report,
                      transcript=report.transcript())
    except PlanFailed as exc:
        report = exc.report
    except NotLocked as exc:  # unreachable when the run began: the connection error, whole
        report = StageReport(error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one host's failure must not stop the others
        report = StageReport(error=describe_error(exc, host, task.host))
    report.mask(ctx.masker)
    report.commands = remote.log if remote else []
    return Result(host=task.host, failed=True, changed=report.changed, diff=report.diff, result=report,
                  exception=None, transcript=report.transcript())


class StageRecorder:
    """A Nornir processor for one stage: times each host's task, adds it to the run record and prints its line
    as soon as that host is done."""

    def __init__(self, stage: Stage, record: RunRecord, progress: Progress):
        self.stage, self.record, self.progress = stage, record, progress
        self._started: dict[str, float] = {}
        self.failed: list[str] = []  # the hosts that failed this stage, in the order they did

    def task_started(self, task: Task) -> None:
        pass

    def task_completed(self, task: Task, result) -> None:
        pass

    def task_instance_started(self, task: Task, host: Host) -> None:
        self._started[host.name] = time.monotonic()

    def task_instance_completed(self, task: Task, host: Host, result) -> None:
        outcome: Result = result[0]
        report: StageReport = outcome.result
        status = ("failed" if outcome.failed else "skipped" if report.skipped
                  else "changed" if report.changed else "ok")
        if status == "failed":
            self.failed.append(host.name)
        entry = HostStageRecord(host.name, self.stage.name, status, time.monotonic() - self._started[host.name],
                                report=report, error=report.error)
        self.record.add(entry)
        self.progress.host_done(entry)

    def subtask_instance_started(self, task: Task, host: Host) -> None:
        pass

    def subtask_instance_completed(self, task: Task, host: Host, result) -> None:
        pass


def run_stages(nr: Nornir, stages: list[Stage], ctx: RunContext, targets: list[HostModel],
               record: RunRecord, progress: Progress) -> None:
    """Run each stage on the targeted hosts it applies to, in order, hosts of a stage in parallel. A host that
    failed a stage is in Nornir's failed hosts, which the stages after it do not run on."""
    for stage in stages:
        hosts = [h for h in order_hosts(targets) if stage.applies_to(h, ctx.inventory)]
        if ctx.stop.is_set():
            for h in hosts:
                record.add(HostStageRecord(h.name, stage.name, "skipped", 0.0,
                                           error="not run: the run was interrupted"))
            continue
        skipped = [h.name for h in hosts if h.name in nr.data.failed_hosts]
        for name in skipped:
            record.add(HostStageRecord(name, stage.name, "skipped", 0.0, error="failed in an earlier stage"))
        if not hosts:
            continue
        progress.stage_started(stage, [h for h in hosts if h.name not in skipped], skipped)
        if len(skipped) == len(hosts):
            continue  # every host failed before: nothing to hand Nornir, which would only say so
        names = {h.name for h in hosts}
        hosts_nr = nr.filter(filter_func=lambda h: h.name in names)
        if stage.serial:
            hosts_nr = hosts_nr.with_runner(SerialRunner())
        recorder = StageRecorder(stage, record, progress)
        results = hosts_nr.with_processors([recorder]).run(task=_stage_task, stage=stage, ctx=ctx,
                                                           recorder=recorder, name=stage.name)
        if progress.verbose:
            progress.nornir_results(results)
