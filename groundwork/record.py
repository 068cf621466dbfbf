"""The run record: each host's stage as it ended, kept in memory and journalled as it is added (run.json, the
report and the index are written from it)."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from groundwork.changes import StageReport


@dataclass
class HostStageRecord:
    host: str
    stage: str
    status: str  # ok, changed, failed, skipped
    duration: float
    report: StageReport | None = None
    error: str | None = None


@dataclass
class RunRecord:
    run_id: str
    runbook: str
    dry_run: bool
    targets: list[str]
    started: str
    ended: str | None = None
    interrupted: bool = False
    # What the run made on the controller beyond its run folder (a backup archive: path, size, SHA-256).
    outputs: list[str] = field(default_factory=list)
    entries: list[HostStageRecord] = field(default_factory=list)
    # Each entry is also appended here as it is added: what a run killed outright did is still on record.
    journal: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entry: HostStageRecord) -> None:
        with self._lock:
            self.entries.append(entry)
            if self.journal is not None:
                with open(self.journal, "a") as journal:
                    journal.write(json.dumps(entry_dict(entry)) + "\n")

    def sort(self, key) -> None:
        """Put the entries in another order (a graph run's into pipeline order); the journal keeps its own."""
        with self._lock:
            self.entries.sort(key=key)

    def counts(self, host: str) -> dict[str, int]:
        counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        for e in self.entries:
            if e.host == host:
                counts[e.status] += 1
                if e.status == "changed":
                    counts["ok"] += 1  # a changed stage also ended well, as in Ansible's recap
        return counts

    @property
    def failed_hosts(self) -> list[str]:
        return sorted({e.host for e in self.entries if e.status == "failed"}, key=self.targets.index)

    @property
    def refused_hosts(self) -> list[str]:
        """Hosts stopped because a stage's plan was not the approved one (--approved-plan)."""
        return sorted({e.host for e in self.entries if e.report and e.report.refused}, key=self.targets.index)

    @property
    def changed_hosts(self) -> list[str]:
        return sorted({e.host for e in self.entries if e.status == "changed"}, key=self.targets.index)

    def outcome_line(self) -> str:
        """The pipeline's outcome in one line, as the terminal, the report and the verification report say it."""
        failed = self.failed_hosts
        return (f"{len(self.changed_hosts)} host(s) {'would change' if self.dry_run else 'changed'}, "
                f"{len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "runbook": self.runbook, "dry_run": self.dry_run, "targets": self.targets,
                "started": self.started, "ended": self.ended, "interrupted": self.interrupted,
                "outputs": self.outputs, "entries": [entry_dict(e) for e in self.entries]}


def entry_dict(e: HostStageRecord) -> dict:
    """One host's stage as run.json keeps it (its report already masked)."""
    data = {"host": e.host, "stage": e.stage, "status": e.status, "duration": round(e.duration, 3), "error": e.error}
    if e.report:
        data["notes"] = e.report.notes
        data["changes"] = [asdict(c) for c in e.report.changes]
        data["commands"] = [{"command": c.command, "rc": c.rc, "duration": round(c.duration, 3)}
                            for c in e.report.commands]
    return data


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(runbook: str, reports_dir: Path) -> str:
    """UTC time and runbook; a suffix keeps two runs started in the same second apart."""
    base = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{runbook}"
    run_id, n = base, 1
    while (reports_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id
