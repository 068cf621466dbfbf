"""What a stage is: its name, its hosts, what it runs; what it is handed is groundwork/context.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from groundwork.changes import StageReport
from groundwork.context import RunContext

if TYPE_CHECKING:
    from groundwork.inventory import HostModel, Inventory
    from groundwork.remote import Remote


@dataclass(frozen=True)
class Stage:
    name: str  # as shown in progress and the run record
    title: str
    groups: tuple[str, ...] | None  # the groups whose hosts it runs on; None for every host
    run: Callable[["Remote", "HostModel", RunContext], "StageReport"]
    # Narrows the hosts of its groups further (the DNS primary, the secondaries).
    select: Callable[["HostModel", "Inventory"], bool] | None = None
    checks: str = ""  # its module under checks/; default test_<name>.py
    secrets: frozenset[str] = frozenset()  # the secrets it (and its checks) need, checked before any connection
    serial: bool = False  # its hosts one at a time, in order (etcd: never two members restarting at once)
    # A serial stage stops at its first failing host (etcd: the next restart could cost the quorum); without,
    # the hosts after it still get their turn (keepalived: the next proxy host then takes the VIP).
    stop_at_failure: bool = True

    @property
    def check_module(self) -> str:
        return self.checks or f"test_{self.name}.py"

    def applies_to(self, host: "HostModel", inventory: "Inventory") -> bool:
        in_groups = self.groups is None or any(g in host.groups for g in self.groups)
        return in_groups and (self.select is None or self.select(host, inventory))
