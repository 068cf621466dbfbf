"""What a stage is, and what it is given. A stage is a module under tasks/ exposing STAGE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from groundwork.changes import StageReport
    from groundwork.inventory import HostModel, Inventory
    from groundwork.remote import Masker, Remote


@dataclass(frozen=True)
class RunContext:
    inventory: "Inventory"
    dry_run: bool
    masker: "Masker"


@dataclass(frozen=True)
class Stage:
    name: str  # as typed on the command line and shown in the run record
    title: str
    groups: tuple[str, ...] | None  # the groups whose hosts it runs on; None for every host
    run: Callable[["Remote", "HostModel", RunContext], "StageReport"]

    def applies_to(self, host: "HostModel") -> bool:
        return self.groups is None or any(g in host.groups for g in self.groups)
