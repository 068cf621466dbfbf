"""Checking a reports folder long after its runs: every folder's checksums and signature, and the hash chain.

Each run folder's files must match its SHA256SUMS, SHA256SUMS must carry a valid signature (by the trusted key,
when one is given), the folder's name must be its run's id, and the chain must be whole: from the newest run
(reports/.chain-head) each run.json names the run before it and the digest of that run's SHA256SUMS. A folder
changed after its run, removed, renamed or put in later (whatever date its name gives) is named; the first of
them (in time order) is the answer to "where does the record stop being trustworthy". The newest runs removed
with .chain-head rewritten leave no trace in the folder itself: the head an earlier audit printed, given back
as expect_head, catches that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from groundwork.chain import CHAIN_HEAD, SIGNATURE, SUMS, chain_head, read_sums, summed_files

from groundwork.run_folder import STARTED
from groundwork.signing import SignatureError, verify


@dataclass
class FolderState:
    name: str
    problems: list[str] = field(default_factory=list)
    signer: str = "unsigned"
    chained: bool = False  # its run.json has a chain record (runs before the chain began have none)
    note: str = ""  # said beside it, not a problem


def _sums_digest(folder: Path) -> str | None:
    try:
        return hashlib.sha256((folder / SUMS).read_bytes()).hexdigest()
    except OSError:
        return None


def check_folder(folder: Path, trusted: str | None) -> tuple[FolderState, dict | None]:
    """One folder on its own: files against SHA256SUMS, the signature, the run id. (state, its run.json)."""
    state = FolderState(folder.name)
    try:
        listed = read_sums(folder)
    except (OSError, ValueError):
        state.problems.append(f"{SUMS} is missing or unreadable")
        listed = {}
    for name, digest in sorted(listed.items()):
        path = folder / name
        if "/" in name or not path.is_file():
            state.problems.append(f"{name} is listed in {SUMS} but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            state.problems.append(f"{name} does not match {SUMS}: altered after the run")
    extra = [name for name in summed_files(folder) if name not in listed]
    state.problems += [f"{name} is not in {SUMS}: added after the run" for name in extra]
    try:
        run = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        state.problems.append("run.json is missing or not JSON")
        return state, None
    if run.get("run_id") != folder.name:
        state.problems.append(f"the folder holds the run {run.get('run_id')!r}: folders renamed or swapped")
    state.chained = "chain" in run
    recorded = (run.get("signing") or {}).get("fingerprint")
    if (folder / SIGNATURE).exists() or recorded:
        try:
            state.signer = verify((folder / SUMS).read_bytes(), (folder / SIGNATURE).read_text())
        except (OSError, SignatureError) as exc:
            state.problems.append(f"{SIGNATURE}: {exc}")
            return state, run  # who signed it is moot
        if recorded and state.signer != recorded:
            state.problems.append(f"signed by {state.signer}, but run.json names {recorded}")
    if trusted and state.signer != trusted:
        state.problems.append(f"not signed by the trusted key {trusted}"
                              + (f" (signed by {state.signer})" if state.signer != "unsigned" else " (unsigned)"))
    return state, run


def audit(reports: Path, trusted: str | None = None,
          expect_head: str | None = None) -> tuple[list[FolderState], list[tuple[str, str]]]:
    """Every folder's state, and every problem as (folder, what), in time order (folder names are UTC times).

    expect_head: the head an earlier audit printed ("RUN" or "RUN:SHA256SUMS-DIGEST"), noted elsewhere (the
    change ticket): it must still be on the chain, so that the newest runs cannot be removed without a trace."""
    folders = sorted(p for p in reports.iterdir() if p.is_dir() and not p.name.startswith("."))
    head = chain_head(reports)
    states: dict[str, FolderState] = {}
    runs: dict[str, dict] = {}
    unsealed: list[FolderState] = []
    for folder in folders:
        if (folder / STARTED).is_file() and not (folder / "run.json").exists():
            # A run under way, or killed before it ended: the next run seals it as cut short. Newer than the
            # chain's head it is what it says; older, it was left out of the chain.
            state = FolderState(folder.name, note="cut short or under way: sealed by the next run")
            if head and folder.name < head.get("run", ""):
                state.problems.append("a run that never ended, older than the chain's head: never sealed")
            unsealed.append(state)
            continue
        states[folder.name], run = check_folder(folder, trusted)
        if run is not None and states[folder.name].chained:
            runs[folder.name] = run
    chain_problems = _walk_chain(reports, runs, states, expect_head)
    problems = [(s.name, p) for s in [*states.values(), *unsealed] for p in s.problems] + chain_problems
    return sorted([*states.values(), *unsealed], key=lambda s: s.name), sorted(problems, key=lambda item: item[0])


def _walk_chain(reports: Path, runs: dict[str, dict], states: dict[str, FolderState],
                expect_head: str | None) -> list[tuple[str, str]]:
    """From the head back to the first run: every link must name a folder that is there, with the digest it
    had; a folder no link reaches, whatever its date, was put in afterwards (or the runs that named it are gone)."""
    problems: list[tuple[str, str]] = []
    head = chain_head(reports)
    if head is None and states:
        problems.append((max(states), f"reports/{CHAIN_HEAD} is missing: the newest runs cannot be told apart "
                                      "from runs removed after them"))
    visited: dict[str, str] = {}  # run -> the SHA256SUMS digest the link to it recorded
    current, wanted, named_by = (head["run"], head["sha256sums"], CHAIN_HEAD) if head else (None, None, "")
    after_gap = False
    while current is not None and current not in visited:
        if current not in states:
            problems.append((current, f"removed: {named_by} names it as the run before it, and it is gone"))
            # go on from the newest older run no link reached: what is before the gap is checked too
            older = [name for name in runs if name not in visited and name < current]
            current, after_gap = (max(older), True) if older else (None, False)
            continue
        visited[current] = wanted
        if not after_gap and _sums_digest(reports / current) != wanted:
            problems.append((current, f"its {SUMS} is not the one {named_by} recorded: the folder was rewritten"))
        run = runs.get(current)
        if run is None:
            problems.append((current, "its run.json has no chain record, but the chain runs through it"))
            break
        chain = run["chain"]
        current, wanted, named_by, after_gap = (chain.get("previous_run"), chain.get("previous_sha256sums"),
                                                current, False)
    for name in sorted(states):
        if name not in visited:
            problems.append((name, "inserted: not on the chain, no run on it names this folder as the run before "
                                   "it (put in afterwards, or the runs that named it are gone)"))
    if expect_head:
        run, _, digest = expect_head.partition(":")
        if run not in visited:
            problems.append((run, f"the head noted earlier, {run}, is not on the chain any more: it or the runs "
                                  f"after it were removed and {CHAIN_HEAD} rewritten"))
        elif digest and visited[run] != digest:
            problems.append((run, f"the head noted earlier had {SUMS} {digest}; the chain now records "
                                  f"{visited[run]}: the history after it was rewritten"))
    return problems


def head_line(reports: Path) -> str:
    """The chain's head as an auditor notes it (and gives back as --expect-head): RUN:SHA256SUMS-DIGEST."""
    head = chain_head(reports)
    return f"{head.get('run')}:{head.get('sha256sums')}" if isinstance(head, dict) else ""
