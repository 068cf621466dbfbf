"""Runs stages in pipeline order on Nornir's threaded runner, adding each host's stage to the run record.

Hosts of one stage run in parallel; a host that fails a stage is skipped by the stages after it, and the
other hosts go on. Connections are opened once per host and reused by every stage of the run.
"""

from __future__ import annotations

import socket
import time

from nornir.core import Nornir
from nornir.core.inventory import Host
from nornir.core.task import Result, Task
from nornir.plugins.runners import SerialRunner

from groundwork import hostkeys
from groundwork.changes import PlanFailed, StageReport
from groundwork.context import RunContext
from groundwork.hostlock import NotLocked
from groundwork.inventory import KNOWN_GROUPS, HostModel
from groundwork.progress import Progress
from groundwork.record import HostStageRecord, RunRecord
from groundwork.remote import Remote
from groundwork.stages import Stage


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
        remote.on_step = lambda what: recorder.progress.doing(host.name, what)
        if (os := ctx.os_of(host.name)) is not None:
            remote.known["os"] = os
        report = stage.execute(remote, host, ctx.for_step(host.name, stage.name)).mask(ctx.masker)
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
        self.progress.host_started(host.name, self.stage.name)

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
    progress.start()
    try:
        _run_each(nr, stages, ctx, targets, record, progress)
    finally:
        progress.stop()


def _run_each(nr: Nornir, stages: list[Stage], ctx: RunContext, targets: list[HostModel], record: RunRecord,
              progress: Progress) -> None:
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
