"""Which stage a host may start next when stages run as a graph (--order graph): pure bookkeeping, no host access.

A stage starts on a host once every stage it needs (Stage.needs) has ended on every host it runs on, and, for a
stage that does its hosts one at a time, once the host before it in that stage's order has ended it. Each host
does one stage at a time, the first of its own in pipeline order that may start, so the work of hosts whose
stages do not depend on each other overlaps (the proxy hosts' DNS and the compute hosts' docker) and nothing
starts before what it needs. A stage that declares no needs waits for every stage before it, and every stage
after it waits for it: pipeline order around it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from groundwork.inventory import HostModel, Inventory
    from groundwork.stages import Stage


@dataclass
class StageGraph:
    stages: list["Stage"]
    hosts_of: dict[str, list[str]]  # stage name -> the hosts it runs on, in pipeline host order
    pending: dict[str, list["Stage"]]  # host -> its stages not started yet, in pipeline order
    ended: set[tuple[str, str]] = field(default_factory=set)  # (stage, host), whatever the outcome
    failed: dict[str, list[str]] = field(default_factory=dict)  # stage -> the hosts that failed it, in order
    changed: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def of(cls, stages: list["Stage"], hosts: list["HostModel"], inventory: "Inventory") -> "StageGraph":
        """hosts: in the pipeline's host order (runner.order_hosts)."""
        return cls(stages, {s.name: [h.name for h in hosts if s.applies_to(h, inventory)] for s in stages},
                   {h.name: [s for s in stages if s.applies_to(h, inventory)] for h in hosts})

    def needs(self, stage: "Stage") -> list[str]:
        """The stages of this run it waits for on every host: those it names that come before it, and every
        stage before it that names none (a verb's own first steps: remove-host's, before the pipeline). A stage
        that names none waits for all before it."""
        before = self.stages[:self.stages.index(stage)]
        if stage.needs is None:
            return [s.name for s in before]
        return [s.name for s in before if s.name in stage.needs or s.needs is None]

    def may_start(self, stage: "Stage", host: str) -> bool:
        if any((need, h) not in self.ended for need in self.needs(stage) for h in self.hosts_of[need]):
            return False
        order = self.hosts_of[stage.name]
        return not stage.serial or all((stage.name, h) in self.ended for h in order[:order.index(host)])

    def next_for(self, host: str) -> "Stage | None":
        """The first of the host's pending stages that may start now (None: it must wait, or has none left)."""
        return next((s for s in self.pending[host] if self.may_start(s, host)), None)

    def take(self, host: str, timeout: float | None = None) -> "Stage | None":
        """Wait until one of the host's stages may start, and take it off its pending list (None: none left)."""
        with self.changed:
            while self.pending[host]:
                stage = self.next_for(host)
                if stage is not None:
                    self.pending[host].remove(stage)
                    return stage
                self.changed.wait(timeout)
            return None

    def end(self, stage: "Stage", host: str, failed: bool) -> None:
        with self.changed:
            self.ended.add((stage.name, host))
            if failed:
                self.failed.setdefault(stage.name, []).append(host)
            self.changed.notify_all()

    def failed_before(self, stage: "Stage", host: str) -> list[str]:
        """The hosts before this one in a serial stage's order that failed it."""
        order = self.hosts_of[stage.name]
        return [h for h in self.failed.get(stage.name, []) if order.index(h) < order.index(host)]

    def order_key(self, host_order: list[str]):
        """Sorts run record entries into pipeline order (stage, then host), as a strict run adds them."""
        index = {s.name: i for i, s in enumerate(self.stages)}
        return lambda e: (index.get(e.stage, len(index)), host_order.index(e.host) if e.host in host_order else 0)
