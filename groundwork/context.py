"""What every stage of a run is given: the inventory, the run's mode and secrets, its stop signal, the
approved plan, and what one stage hands a later one. The lowest layer of a run: it imports no other part."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from groundwork.facts import GatherCache, OsInfo
    from groundwork.hostlock import HostLocks
    from groundwork.inventory import Inventory
    from groundwork.remote import Masker


@dataclass(frozen=True)
class Renewal:
    """When a leaf certificate is issued again though its settings have not changed: under within_days left,
    or named (`groundwork certs renew`). Every run renews under 30 days."""
    within_days: int = 30
    names: frozenset[str] = frozenset()


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
    renewal: Renewal = field(default_factory=Renewal)
    # Every stage's facts, read on each host in one round trip at the run's start (runner.run_stages).
    gather_cache: "GatherCache | None" = None
    # Per host, by OS family, the packages host preparation installs for the stages after it (stages.packages_ahead).
    packages_ahead: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def os_of(self, host: str) -> "OsInfo | None":
        """The host's OS, read with its lock before any stage; None when not known."""
        return self.host_locks.os.get(host) if self.host_locks is not None else None

    def family(self, host: str) -> str | None:
        """The host's OS family ('debian', 'el'), or None when not known."""
        os = self.os_of(host)
        return os.family if os is not None else None

    def for_step(self, host: str, stage: str) -> "RunContext":
        return replace(self, step=(host, stage))
