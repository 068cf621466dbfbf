"""The run folder a change board reads: one per run under reports/, named by UTC time and runbook, never
overwritten. It holds report.html (pytest-html, self-contained), run.json (the same content for machines),
plan.json (a dry run's plan), SHA256SUMS (`sha256sum -c SHA256SUMS` inside the folder verifies them) and, with
a signing key, SHA256SUMS.sig; sealed onto the reports folder's chain (chain.py). While its run lives it holds
started.json, the journal of each host's stage and a lock: a folder left so is sealed as cut short by the
next run."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from groundwork.approval import plan_digest, plan_of
from groundwork.chain import seal, write_atomic
from groundwork.changes import ChangeRecord
from groundwork.provenance import RunMetadata
from groundwork.record import RunRecord
from groundwork.report_html import cut_short_html


STARTED = "started.json"  # a run's metadata, written when it starts; gone once run.json is written


JOURNAL = "progress.jsonl"  # each host's stage, appended as it ends (RunRecord.journal)


RUNNING = ".running"  # held locked by the live run: a folder whose lock is free and that has no run.json was cut short


def write_run_folder(folder: Path, record: RunRecord, meta: RunMetadata, checks: list[dict] | None,
                     outcome: str, signing_key=None) -> None:
    """run.json (linked to the run before it), plan.json (dry run), SHA256SUMS over every file of the folder,
    report.html included, and SHA256SUMS.sig with a signing key; then this run becomes the chain's head. Runs
    sharing a reports folder take their turn at this under a lock, so the chain never forks."""
    folder.mkdir(parents=True, exist_ok=True)
    changes = plan_of(record)
    digest = plan_digest(changes, meta.addresses, meta.inventory_digest)
    plan = ({"run_id": record.run_id, "targets": record.targets, "addresses": meta.addresses,
             "inventory_digest": meta.inventory_digest, "digest": digest, "changes": changes}
            if record.dry_run else None)
    _clear_run_files(folder)
    seal(folder, {"metadata": meta.__dict__, "outcome": outcome, **record.to_dict(), "plan_digest": digest,
                   "checks": checks}, plan, signing_key)


def _clear_run_files(folder: Path) -> None:
    """What a run keeps while it runs: run.json holds it all once written."""
    for leftover in (STARTED, JOURNAL, RUNNING):
        (folder / leftover).unlink(missing_ok=True)


def start_folder(folder: Path, meta: RunMetadata, record: RunRecord):
    """What a run killed outright (SIGKILL, a dead controller) still leaves: its metadata and a journal of its
    stages, for the next run to seal (seal_cut_short). Returns the lock held for the run's life."""
    running = open(folder / RUNNING, "w")
    fcntl.flock(running, fcntl.LOCK_EX)
    write_atomic(folder / STARTED, json.dumps({"metadata": meta.__dict__, **record.to_dict()}, indent=2) + "\n")
    record.journal = folder / JOURNAL
    return running


def seal_cut_short(reports: Path, signing_key=None) -> list[str]:
    """Write as cut short, chained and signed like any run, every folder of a run that ended without writing
    its run.json and whose process is gone (oldest first); the names of those sealed."""
    sealed = []
    if not reports.is_dir():
        return sealed
    for folder in sorted(p for p in reports.iterdir() if (p / STARTED).is_file() and not (p / "run.json").exists()):
        with open(folder / RUNNING, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its run is alive
            started = json.loads((folder / STARTED).read_text())
            entries = [json.loads(line) for line in _lines(folder / JOURNAL)]
            meta = started.pop("metadata")
            why = ("cut short: the run was killed before it ended (SIGKILL, or its controller died); its stages "
                   "below are those that ended. The next run finishes what it began.")
            changes = [{"host": e["host"], "stage": e["stage"], **ChangeRecord(**c).plan_entry()}
                       for e in entries for c in e.get("changes", [])]
            document = {"metadata": meta, "outcome": "cut-short", **started, "interrupted": True, "entries": entries,
                        "cut_short": why, "plan_digest": plan_digest(changes, meta.get("addresses"),
                                                                     meta.get("inventory_digest", "")),
                        "checks": None}
            write_atomic(folder / "report.html", cut_short_html(meta, entries, why))
            _clear_run_files(folder)
            seal(folder, document, None, signing_key)
        sealed.append(folder.name)
    return sealed


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []
