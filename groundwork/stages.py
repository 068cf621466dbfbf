"""What a stage is: its name, its hosts, and either its declaration (probes, a pure decide, notes), which the
runner carries out the same way for every such stage (gather, decide, apply), or a run of its own for a stage
whose flow is not that (one that reads back what it issued, or hands a later stage what it saved). What a stage
is handed is groundwork/context.py's."""

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
    probes: Callable[["HostModel", RunContext], list["Probe"]] | None = None
    decide: Callable[["HostModel", "Facts", RunContext, list[str]], list[Change]] | None = None
    notes: Callable[["HostModel", RunContext], list[str]] | None = None  # said before the plan, in the record
    # Secret texts the gather read (a key): masked from then on wherever they could turn up (an error, a diff).
    read_secrets: Callable[["HostModel", "Facts"], list[str]] | None = None
    # Or a run of its own, when gather-decide-apply is not its flow.
    run: Callable[["Remote", "HostModel", RunContext], "StageReport"] | None = None
    # Narrows the hosts of its groups further (the DNS primary, the secondaries).
    select: Callable[["HostModel", "Inventory"], bool] | None = None
    checks: str = ""  # its module under checks/; default test_<name>.py
    secrets: frozenset[str] = frozenset()  # the secrets it (and its checks) need, checked before any connection
    serial: bool = False  # its hosts one at a time, in order (etcd: never two members restarting at once)
    # A serial stage stops at its first failing host (etcd: the next restart could cost the quorum); without,
    # the hosts after it still get their turn (keepalived: the next proxy host then takes the VIP).
    stop_at_failure: bool = True

    def __post_init__(self) -> None:
        if (self.run is None) == (self.probes is None or self.decide is None):
            raise TypeError(f"stage {self.name}: declare probes and decide, or give a run, not both")

    def execute(self, remote: "Remote", host: "HostModel", ctx: RunContext) -> StageReport:
        """What the runner does for one host: the stage's own run, or gather, decide and apply."""
        if self.run is not None:
            return self.run(remote, host, ctx)
        facts = remote.gather(self.probes(host, ctx))
        for secret in self.read_secrets(host, facts) if self.read_secrets else []:
            remote.masker.add(secret)
        report = StageReport(notes=list(self.notes(host, ctx)) if self.notes else [])
        return apply_plan(remote, self.decide(host, facts, ctx, report.notes), ctx, report)

    @property
    def check_module(self) -> str:
        return self.checks or f"test_{self.name}.py"

    def applies_to(self, host: "HostModel", inventory: "Inventory") -> bool:
        in_groups = self.groups is None or any(g in host.groups for g in self.groups)
        return in_groups and (self.select is None or self.select(host, inventory))
