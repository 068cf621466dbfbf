"""Runs stages on Nornir's threaded runner, adding each host's stage to the run record.

In pipeline order (the default), hosts of one stage run in parallel and each stage waits for the one before it
on every host. As a graph (--order graph), each host goes through its own stages as soon as what each needs
has ended (groundwork/schedule.py), so independent work of different hosts overlaps. Either way a host that
fails a stage is skipped by the stages after it, and the other hosts go on. Connections are opened once per
host and reused by every stage of the run.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from nornir.core import Nornir
from nornir.core.inventory import Host
from nornir.core.task import Result, Task
from nornir.plugins.runners import SerialRunner, ThreadedRunner

from groundwork import hostkeys
from groundwork.changes import PlanFailed, StageReport
from groundwork.context import RunContext
from groundwork.facts import GatherCache, Probe, gather_input, gather_script, gathered_sections
from groundwork.hostlock import NotLocked
from groundwork.inventory import KNOWN_GROUPS, HostModel
from groundwork.progress import Progress
from groundwork.record import HostStageRecord, RunRecord
from groundwork.remote import Remote
from groundwork.schedule import StageGraph
from groundwork.stages import Stage, packages_ahead


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
    return _stage_on_host(task, stage, ctx, recorder.progress, recorder.failed)


def _stage_on_host(task: Task, stage: Stage, ctx: RunContext, progress: Progress, failed_before: list[str]) -> Result:
    """One host's stage; failed_before: the hosts that failed this stage before this one's turn."""
    host = ctx.inventory.hosts[task.host.name]
    if stage.serial and stage.stop_at_failure and failed_before:
        # One at a time means the next host's turn assumes the one before ended well (an etcd member restarted
        # while another is down would cost the cluster its quorum): the stage stops at its first failure.
        report = StageReport(error=f"not run: {failed_before[0]} failed before it, and {stage.name} does its "
                                   "hosts one at a time", skipped=True)
        return Result(host=task.host, result=report, transcript=report.transcript())
    remote = None
    try:
        if ctx.host_locks is not None:
            ctx.host_locks.check(host.name)
        remote = Remote.for_task(task, ctx.masker)
        remote.cache, remote.host_name = ctx.gather_cache, host.name
        if ctx.gather_cache is not None:
            remote.log.extend(ctx.gather_cache.first_log(host.name))
        remote.on_step = lambda what: progress.doing(host.name, what)
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


def _entry(stage: Stage, host: str, outcome: Result, duration: float) -> HostStageRecord:
    report: StageReport = outcome.result
    status = "failed" if outcome.failed else "skipped" if report.skipped else "changed" if report.changed else "ok"
    return HostStageRecord(host, stage.name, status, duration, report=report, error=report.error)


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
        entry = _entry(self.stage, host.name, result[0], time.monotonic() - self._started[host.name])
        if entry.status == "failed":
            self.failed.append(host.name)
        self.record.add(entry)
        self.progress.host_done(entry)

    def subtask_instance_started(self, task: Task, host: Host) -> None:
        pass

    def subtask_instance_completed(self, task: Task, host: Host, result) -> None:
        pass


def run_stages(nr: Nornir, stages: list[Stage], ctx: RunContext, targets: list[HostModel],
               record: RunRecord, progress: Progress, graph: bool = False) -> None:
    """Run each stage on the targeted hosts it applies to: in pipeline order, hosts of a stage in parallel, or
    as a graph. A host that failed a stage is in Nornir's failed hosts, which the stages after it do not run on."""
    progress.start()
    try:
        ctx = replace(ctx, gather_cache=GatherCache(),
                      packages_ahead={h.name: packages_ahead(stages, h, ctx.inventory) for h in targets})
        gather_first(nr, stages, ctx, targets)
        (_run_graph if graph else _run_each)(nr, stages, ctx, targets, record, progress)
    finally:
        progress.stop()


def gather_first(nr: Nornir, stages: list[Stage], ctx: RunContext, targets: list[HostModel]) -> None:
    """Every stage's probes on every host in one round trip per host, kept in ctx.gather_cache for the stages'
    own gathers (facts.GatherCache). Probes that depend on what an earlier stage hands over are read again by
    their stage; a host that cannot be read now is left to its stages, which say why."""
    def gather(host: HostModel) -> None:
        wanted: dict[tuple[str, str, bytes], Probe] = {}
        for stage in stages:
            if stage.applies_to(host, ctx.inventory):
                try:
                    for probe in stage.probes(host, ctx.for_step(host.name, stage.name)):
                        wanted.setdefault((probe.key, probe.script, probe.input), probe)
                except Exception:  # noqa: BLE001 - its stage computes them again and fails there if it must
                    continue
        if not wanted:
            return
        # Two stages may name different probes alike ("files"): in this gather each has a key of its own.
        renamed = [replace(p, key=f"p{i}") for i, p in enumerate(wanted.values())]
        try:
            if ctx.host_locks is not None:
                ctx.host_locks.check(host.name)
            remote = Remote.for_host(nr.inventory.hosts[host.name], nr.config, ctx.masker)
            generation = ctx.gather_cache.generation
            out = remote.run(gather_script(renamed), stdin=gather_input(renamed), what="gathering every stage's facts",
                             sensitive_output=any(p.sensitive for p in renamed), reads_only=True).stdout
        except Exception:  # noqa: BLE001 - not locked, unreachable: its stages say so
            return
        sections = gathered_sections(out)
        if generation == ctx.gather_cache.generation:
            ctx.gather_cache.keep_first(host.name, [(p, sections[r.key]) for p, r in zip(wanted.values(), renamed)
                                                    if r.key in sections], remote.log)

    with ThreadPoolExecutor(max_workers=max(1, min(64, len(targets)))) as pool:
        list(pool.map(gather, targets))


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


def _run_graph(nr: Nornir, stages: list[Stage], ctx: RunContext, targets: list[HostModel], record: RunRecord,
               progress: Progress) -> None:
    hosts = order_hosts(targets)
    graph = StageGraph.of(stages, hosts, ctx.inventory)
    names = [h.name for h in hosts if graph.pending[h.name]]
    if not names:
        return
    # Every host has a thread of its own, which mostly waits (for what its next stage needs, or on SSH): a
    # thread waiting for a worker would never come. The workers setting bounds the hosts working at once.
    workers = threading.BoundedSemaphore(nr.runner.num_workers if isinstance(nr.runner, ThreadedRunner) else 1)
    progress.say(f"\n== {len(stages)} stage(s) on {len(names)} host(s), each stage on a host as soon as what it "
                 "needs has ended (--order graph)")
    progress.with_stage = True
    hosts_nr = nr.filter(filter_func=lambda h: h.name in names).with_runner(ThreadedRunner(num_workers=len(names)))
    already_failed = set(nr.data.failed_hosts)
    hosts_nr.run(task=_walk_host, graph=graph, ctx=ctx, record=record, progress=progress, workers=workers,
                 already_failed=already_failed, name="stages")
    for name in {e.host for e in record.entries if e.status == "failed"}:
        nr.data.failed_hosts.add(name)
    record.sort(graph.order_key([h.name for h in hosts]))


def _walk_host(task: Task, graph: StageGraph, ctx: RunContext, record: RunRecord, progress: Progress,
               workers: threading.BoundedSemaphore, already_failed: set[str]) -> Result:
    """One host's stages, each when the graph lets it start; after a failure, the rest are skipped."""
    name = task.host.name
    failed = name in already_failed
    while (stage := graph.take(name)) is not None:
        failed_here = False
        if ctx.stop.is_set():
            record.add(HostStageRecord(name, stage.name, "skipped", 0.0, error="not run: the run was interrupted"))
        elif failed:
            record.add(entry := HostStageRecord(name, stage.name, "skipped", 0.0, error="failed in an earlier stage"))
            progress.host_done(entry)
        else:
            with workers:
                started = time.monotonic()
                progress.host_started(name, stage.name)
                outcome = _stage_on_host(task, stage, ctx, progress, graph.failed_before(stage, name))
                entry = _entry(stage, name, outcome, time.monotonic() - started)
            failed = failed_here = entry.status == "failed"
            record.add(entry)
            progress.host_done(entry)
        graph.end(stage, name, failed=failed_here)
    return Result(host=task.host)
