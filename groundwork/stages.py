"""What a stage is: its name, its hosts, and its declaration (probes, a pure decide, notes, the secrets it is
handed or reads, what it hands the stages after it), which the runner carries out the same way for every stage:
mask what it was handed, gather, decide, apply, settle, hand off. What a stage is handed is
groundwork/context.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from groundwork.changes import Change, StageReport, apply_plan
from groundwork.context import RunContext

if TYPE_CHECKING:
    from groundwork.facts import Facts, Probe
    from groundwork.inventory import HostModel, Inventory
    from groundwork.remote import Remote


@dataclass(frozen=True)
class Stage:
    name: str  # as shown in progress and the run record
    title: str
    groups: tuple[str, ...] | None  # the groups whose hosts it runs on; None for every host
    # Declared: what to read on the host (one round trip), and the plan from what was read (pure: no host
    # access; it may add notes for the run record). The runner gathers, decides and applies.
    probes: Callable[["HostModel", RunContext], list["Probe"]]
    decide: Callable[["HostModel", "Facts", RunContext, list[str]], list[Change]]
    notes: Callable[["HostModel", RunContext], list[str]] | None = None  # said before the plan, in the record
    # Secret texts an earlier stage handed it (ctx.handoff: keys it issued), masked before its gather.
    handed_secrets: Callable[["HostModel", RunContext], list[str]] | None = None
    # Secret texts the gather read (a key): masked from then on wherever they could turn up (an error, a diff).
    read_secrets: Callable[["HostModel", "Facts", RunContext], list[str]] | None = None
    # What it hands the stages after it, in memory for this run (ctx.handoff), from what it read before its
    # plan and after it (read again when the plan changed the host; the same facts in a dry run or a no-op).
    hand_off: Callable[["HostModel", "Facts", "Facts", RunContext], dict] | None = None
    # A wait after the plan that is no change of groundwork's (keepalived out of FAULT once its check passes
    # again): (what, script, note) or None; never in a dry run.
    settle: Callable[["HostModel", "Facts", RunContext], tuple[str, str, str] | None] | None = None
    # Narrows the hosts of its groups further (the DNS primary, the secondaries).
    select: Callable[["HostModel", "Inventory"], bool] | None = None
    checks: str = ""  # its module under checks/; default test_<name>.py
    secrets: frozenset[str] = frozenset()  # the secrets it (and its checks) need, checked before any connection
    serial: bool = False  # its hosts one at a time, in order (etcd: never two members restarting at once)
    # A serial stage stops at its first failing host (etcd: the next restart could cost the quorum); without,
    # the hosts after it still get their turn (keepalived: the next proxy host then takes the VIP).
    stop_at_failure: bool = True
    # The stages that must have ended on every host they run on before this one starts on any (run with
    # --order graph; each named stage comes before this one in the pipeline). None: every stage before it in
    # the run, as in pipeline order.
    needs: tuple[str, ...] | None = None
    # The packages its plan installs, by OS family. Host preparation installs them with the base tools, in the
    # run's one package transaction per host; the stage still reads its packages and installs any missing.
    # None where a package must not start before the stage's own step (chrony would step the clock before its
    # drop-in; bind9 and dnsmasq each need the other stopped first).
    installs: Callable[["HostModel"], dict[str, list[str]]] | None = None
    # The stage that takes the others' installs into its own transaction (host preparation).
    installs_for_others: bool = False

    def execute(self, remote: "Remote", host: "HostModel", ctx: RunContext) -> StageReport:
        """What the runner does for one host."""
        for handed in self.handed_secrets(host, ctx) if self.handed_secrets else []:
            remote.masker.add(handed)
        wanted = self.probes(host, ctx)
        facts = self._gather(remote, host, wanted, ctx)
        if ctx.dry_run and not self.installs_for_others:
            facts = planned_installs(facts, ctx.packages_ahead.get(host.name, {}))
        report = StageReport(notes=list(self.notes(host, ctx)) if self.notes else [])
        apply_plan(remote, self.decide(host, facts, ctx, report.notes), ctx, report)
        if self.settle is not None and not ctx.dry_run and (step := self.settle(host, facts, ctx)) is not None:
            what, script, note = step
            remote.run(script, what=what)
            report.notes.append(note)
        if self.hand_off is not None:
            after = self._gather(remote, host, wanted, ctx) if report.changed and not ctx.dry_run else facts
            ctx.handoff.update(self.hand_off(host, facts, after, ctx))
        return report

    def _gather(self, remote: "Remote", host: "HostModel", wanted: list["Probe"], ctx: RunContext) -> "Facts":
        from groundwork.facts import Facts

        facts = remote.gather(wanted) if wanted else Facts()  # nothing to read: no round trip
        for secret in self.read_secrets(host, facts, ctx) if self.read_secrets else []:
            remote.masker.add(secret)
        return facts

    @property
    def check_module(self) -> str:
        return self.checks or f"test_{self.name}.py"

    def applies_to(self, host: "HostModel", inventory: "Inventory") -> bool:
        in_groups = self.groups is None or any(g in host.groups for g in self.groups)
        return in_groups and (self.select is None or self.select(host, inventory))


def packages_ahead(stages: list[Stage], host: "HostModel", inventory: "Inventory") -> dict[str, list[str]]:
    """By OS family, the packages the run's stages after the one that installs for the others will install on
    the host; empty when the run has no such stage (--stage, day-two verbs)."""
    runs = [s for s in stages if s.applies_to(host, inventory)]
    first = next((i for i, s in enumerate(runs) if s.installs_for_others), None)
    if first is None:
        return {}
    ahead: dict[str, list[str]] = {}
    for stage in runs[first + 1:]:
        for family, names in (stage.installs(host) if stage.installs else {}).items():
            ahead.setdefault(family, [])
            ahead[family] += [n for n in names if n not in ahead[family]]
    return ahead


def planned_installs(facts: "Facts", ahead: dict[str, list[str]]) -> "Facts":
    """A dry run's facts for a stage after host preparation: the packages that preparation's plan installs count
    as installed, so that the stage plans no second install (and an approved plan matches the real run's)."""
    from groundwork.facts import Facts

    os, packages = facts.get("os"), facts.get("packages")
    names = ahead.get(os.family, []) if os is not None and packages is not None else []
    planned = {n: PLANNED for n in names if packages.get(n) is None}
    return Facts(facts, packages={**packages, **planned}) if planned else facts


PLANNED = "(installed by host preparation in this run)"
