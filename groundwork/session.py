"""One run, from its validated targets to its run folder: prepare, execute the stages, verify, finish.

cli.py reads the command line, the config and the inventory and picks the targets; a RunSession does the rest
and is what the verification pass (verify.CheckSession) is handed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from groundwork import hostlock
from groundwork.changes import plan_difference
from groundwork.context import RunContext
from groundwork.inventory import HostModel, Inventory
from groundwork.remote import Masker
from groundwork.approval import approved_slices, digest_key, plan_digest, plan_of
from groundwork.chain import write_atomic
from groundwork.index import write_index
from groundwork.provenance import RunMetadata, git_state, operator_name, tool_versions
from groundwork.report_html import change_report_html, check_tally, host_verification
from groundwork.run_folder import seal_cut_short, start_folder, write_run_folder
from groundwork.runlock import acquire
from groundwork.progress import Progress
from groundwork.record import RunRecord, new_run_id, utc_now
from groundwork.runner import describe_error, run_stages
from groundwork.stages import Stage


@dataclass
class RunSession:
    runbook: str
    args: argparse.Namespace
    stages: list[Stage]
    check_modules: list[str] | None  # the checks/ modules of its stages; None: every check
    inventory: Inventory
    targets: list[HostModel]
    secrets: dict[str, str]
    masker: Masker
    nr: Any  # the Nornir object: inventory, runner, connections
    record: RunRecord
    meta: RunMetadata
    folder: Path
    progress: Progress
    ctx: RunContext
    approved: dict | None
    lock: Any
    host_locks: hostlock.HostLocks
    outcome: str = "interrupted"  # until the run gets to decide one
    checks: list[dict] | None = None
    signing_key: Any = None  # signing.SigningKey; None: the folder is written unsigned
    running: Any = None  # the folder's lock held while the run lives (run_folder.start_folder)

    @classmethod
    def prepare(cls, *, runbook: str, args: argparse.Namespace, stages: list[Stage], check_modules: list[str] | None,
                inventory: Inventory, inventory_dir: Path, targets: list[HostModel], secrets: dict[str, str], nr,
                approved: dict | None, approval: dict[str, str] | None = None, signing_key=None) -> "RunSession":
        """Take the inventory's lock (exit 7 if another run holds it), make the run folder and its metadata."""
        lock = acquire(inventory_dir, {"user": operator_name(), "runbook": runbook, "started": utc_now()})
        if secrets.get("ssh_password"):
            nr.inventory.defaults.password = secrets["ssh_password"]
        record = RunRecord(run_id=new_run_id(runbook, args.reports), runbook=runbook, dry_run=args.dry_run,
                           targets=[h.name for h in targets], started=utc_now())
        masker = Masker(secrets.values())
        try:
            host_locks = hostlock.acquire(
                nr, record.targets, {"user": operator_name(), "controller": socket.gethostname(), "runbook": runbook,
                                     "run": record.run_id, "started": record.started, "pid": os.getpid()},
                masker, lambda exc, name, host: describe_error(exc, inventory.hosts[name], host))
        except BaseException:
            nr.close_connections(on_good=True, on_failed=True)
            lock.close()
            raise
        for name in seal_cut_short(args.reports, signing_key):
            print(f"sealed {name}: a run killed before it ended, recorded as cut short", file=sys.stderr)
        folder = args.reports / record.run_id
        folder.mkdir(parents=True)
        commit, dirty = git_state(args.project)
        meta = RunMetadata(run_id=record.run_id, runbook=runbook, change_id=args.change_id, operator=operator_name(),
                           started=record.started, ended=None, git_commit=commit, git_dirty=dirty,
                           inventory_digest=hashlib.sha256(inventory.digest_source).hexdigest(),
                           groups=args.group, hosts=record.targets, dry_run=args.dry_run, tools=tool_versions(),
                           addresses={h.name: str(h.address) for h in targets}, approval=approval or {},
                           signer=signing_key.fingerprint if signing_key else "unsigned")
        running = start_folder(folder, meta, record)
        ctx = RunContext(inventory=inventory, dry_run=args.dry_run, masker=masker, secrets=secrets,
                         host_locks=host_locks, digest_key=digest_key(args.reports),
                         approved=approved_slices(approved) if approved else None,
                         approved_run=approved["run_id"] if approved else "", renewal=args.gw_renewal,
                         **({"plan_time": datetime.fromisoformat(approved["started"])} if approved else {}))
        return cls(runbook=runbook, args=args, stages=stages, check_modules=check_modules, inventory=inventory,
                   targets=targets, secrets=secrets, masker=masker, nr=nr, record=record, meta=meta, folder=folder,
                   progress=Progress(record, show_diff=args.diff, verbose=args.verbose), ctx=ctx, approved=approved,
                   lock=lock, host_locks=host_locks, signing_key=signing_key, running=running)

    @property
    def show_tables(self) -> bool:
        """Whether the verification prints what its checks show (groundwork certs: every certificate)."""
        return getattr(self.args, "gw_show_tables", False)

    def run(self) -> str:
        """Execute, verify and finish; the run's outcome (run.json, the index; cli maps it to the exit code)."""
        args = self.args
        self.progress.say(f"groundwork {self.runbook}: run {self.record.run_id}, {len(self.targets)} host(s)"
                          + (f", change {args.change_id}" if args.change_id else "")
                          + (", DRY RUN: nothing will be changed" if args.dry_run else ""))
        stop_signals = StopSignals(self._on_interrupt)
        try:
            if self.approved is not None and not self._plan_still_approved():
                self.outcome = "refused"
            else:
                self.execute()
                stop_signals.at_once()  # from here on a stop signal stops at once: nothing changes any more
                if self.ctx.stop.is_set():
                    raise KeyboardInterrupt
                if not (args.dry_run or args.no_verify):
                    self.verify()
                self.outcome = run_outcome(self.record, self.checks)
        except KeyboardInterrupt:
            self.record.interrupted = True
            self.progress.say("\ninterrupted: stopped; the run record says which stages ran and which did not. "
                              "Run again to finish.")
        finally:
            stop_signals.restore()
            self.finish()
        return self.outcome

    def _on_interrupt(self, signum, frame) -> None:
        # Never raised into the stage under way: a change cut in half (a file written, its service not yet
        # restarted) would look done to the next run. Nornir's thread pool would wait for it anyway.
        what = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"
        self.progress.say(f"\n{what}: the stage under way finishes on its hosts, nothing further starts"
                          + (" (already stopping)" if self.ctx.stop.is_set() else ""))
        self.ctx.stop.set()

    def execute(self) -> None:
        run_stages(self.nr, self.stages, self.ctx, self.targets, self.record, self.progress,
                   graph=getattr(self.args, "order", "pipeline") == "graph")
        conclude = getattr(self.args, "gw_conclude", None)
        if conclude is not None and not (self.args.dry_run or self.ctx.stop.is_set()):
            for line in conclude(self.args, self.ctx, self.record):
                self.record.outputs.append(line)
                self.progress.say(line)
        if self.stages:
            self.progress.recap()

    def verify(self) -> None:
        from groundwork.verify import CheckSession, run_checks  # pytest is loaded only for a verification pass
        self.checks = run_checks(CheckSession(self), self.folder)

    def end(self) -> None:
        """The run's end time, in the record and the report's metadata alike."""
        self.record.ended = self.meta.ended = utc_now()

    def finish(self) -> None:
        """Close the connections, write the run folder and the index, release the lock; never skipped."""
        try:
            self.host_locks.release()
            self.nr.close_connections(on_good=True, on_failed=True)
            if self.meta.ended is None:
                self.end()
            report = self.folder / "report.html"
            if not report.exists():
                write_atomic(report, change_report_html(self.meta, self.record, self._verdict_without_checks()))
            write_run_folder(self.folder, self.record, self.meta, self.checks, self.outcome, self.signing_key)
            index = write_index(self.args.reports)
        finally:
            if self.running:
                self.running.close()
            self.lock.close()  # the next run may start
        self.progress.say(f"report: {report}\nall runs: {index}")

    def _plan_still_approved(self) -> bool:
        """Compute the plan again without changing anything and compare it with the approved one, the hosts'
        addresses and the inventory's digest included. Each host's stage is checked again right before it is
        applied (changes.apply_plan), so a host that changes after this check is stopped too."""
        approved, meta, progress = self.approved, self.meta, self.progress
        progress.say(f"checking the approved plan {approved['run_id']} against the hosts")
        check = RunRecord(run_id=approved["run_id"], runbook="plan-check", dry_run=True,
                          targets=[h.name for h in self.targets], started=utc_now())
        quiet = Progress(check, show_diff=False, out=open(os.devnull, "w"))
        dry = RunContext(inventory=self.inventory, dry_run=True, masker=self.masker, secrets=self.secrets,
                         digest_key=self.ctx.digest_key, plan_time=self.ctx.plan_time, host_locks=self.host_locks)
        # A verb whose later stages depend on what its first ones write (restore, then the pipeline) plans those
        # first ones only; the later stages are then held to changing nothing (changes.apply_plan).
        run_stages(self.nr, self.stages[:getattr(self.args, "gw_plan_covers", None)], dry, self.targets, check, quiet)
        self.nr.data.reset_failed_hosts()  # a host the check could not plan refuses the run below; else none is failed
        current = plan_of(check)
        if not check.failed_hosts and plan_digest(current, meta.addresses, meta.inventory_digest) == approved["digest"]:
            progress.say(f"the plan computed now is the approved one (digest {approved['digest'][:16]}); applying it")
            return True
        progress.say(f"REFUSED: the plan computed now differs from the approved plan {approved['run_id']}; "
                     "nothing was changed. Make a new --dry-run and have it approved.")
        if check.failed_hosts:
            progress.say(f"hosts that could not be planned: {', '.join(check.failed_hosts)}")
        if approved.get("inventory_digest") != meta.inventory_digest:
            progress.say(f"the inventory changed since the dry run (digest {approved.get('inventory_digest', '')[:16]}"
                         f" then, {meta.inventory_digest[:16]} now)")
        moved = {h: a for h, a in meta.addresses.items() if (approved.get("addresses") or {}).get(h) != a}
        if moved:
            progress.say("hosts whose address differs from the approved plan's: "
                         + ", ".join(f"{h} ({a})" for h, a in moved.items()))
        progress.say(plan_difference(approved["changes"], current))
        return False

    def _verdict_without_checks(self) -> str:
        """The verdict of a report written without a verification pass."""
        if self.outcome == "interrupted":
            return "Run interrupted: verification not run."
        if self.outcome == "refused":
            return "Approved plan refused: nothing was changed; verification not run."
        return "Verification not run (dry run)." if self.args.dry_run else "Verification not run (--no-verify)."


class StopSignals:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP alike: while stages run, each calls on_stop (the stage under way
    finishes on its hosts, nothing further starts); after `at_once`, each raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, on_stop):
        self.previous = {sig: signal.signal(sig, on_stop) for sig in self.SIGNALS}

    def at_once(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, _raise_interrupt)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_outcome(record: RunRecord, checks: list[dict] | None) -> str:
    """A finished run's outcome: refused, failed, verification-failed, unverified, planned, changed or ok."""
    if record.refused_hosts:
        return "refused"
    if record.failed_hosts:
        return "failed"
    if checks and any(c["outcome"] in ("failed", "error") for c in checks):
        return "verification-failed"
    if checks is not None and any(host_verification(check_tally(checks, h)) == "unverified" for h in record.targets):
        return "unverified"
    if record.dry_run:
        return "planned"
    return "changed" if record.changed_hosts else "ok"
