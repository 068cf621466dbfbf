"""What a stage is, and what it is given. A stage is a module under tasks/ exposing STAGE."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from groundwork.changes import StageReport
    from groundwork.hostlock import HostLocks
    from groundwork.inventory import HostModel, Inventory
    from groundwork.remote import Masker, Remote


@dataclass(frozen=True)
class RunContext:
    inventory: "Inventory"
    dry_run: bool
    masker: "Masker"
    secrets: dict[str, str] = field(default_factory=dict)
    # Set by the first Ctrl-C: stages under way finish their hosts, no further stage starts.
    stop: threading.Event = field(default_factory=threading.Event)
    # --approved-plan: (host, stage) -> the changes approved for it; each host's stage is applied only when the
    # plan computed right before applying is exactly its slice (changes.apply_plan).
    approved: dict[tuple[str, str], list[dict]] | None = None
    approved_run: str = ""
    # Keys the digests of sensitive files' contents in plans, so that a plan gives no offline guess of a secret.
    digest_key: bytes = b""
    step: tuple[str, str] = ("", "")  # (host, stage) of the task this context was handed to
    # What one stage hands a later one in the same run, in memory only (the etcd certificates the ops host's
    # step read, for the members' step); shared by every copy for_step makes.
    handoff: dict = field(default_factory=dict)
    # The time a plan is made at, for what a decision takes from the clock (a zone serial's date, a folder or
    # snapshot name): now, or with --approved-plan the dry run's start, so that a plan approved before midnight
    # still applies after it when nothing on the hosts changed.
    plan_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # The run's locks on its hosts (hostlock.HostLocks): no stage works on a host this run has not locked.
    host_locks: "HostLocks | None" = None

    def for_step(self, host: str, stage: str) -> "RunContext":
        return replace(self, step=(host, stage))


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
