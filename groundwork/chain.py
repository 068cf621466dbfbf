"""A reports folder's hash chain: each run folder's SHA256SUMS (and its signature) over every file it holds,
each run.json naming the run sealed before it and the digest of that run's SHA256SUMS, and reports/.chain-head
naming the newest (audit.py walks it back). Runs sharing a reports folder seal under a lock: it never forks."""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


CHAIN_HEAD = ".chain-head"  # in the reports folder: the newest run on the chain and its SHA256SUMS digest


SUMS, SIGNATURE = "SHA256SUMS", "SHA256SUMS.sig"


def summed_files(folder: Path) -> list[str]:
    """The files SHA256SUMS covers: every file of the folder but itself and its signature (and no dotfile)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in (SUMS, SIGNATURE)
                  and not p.name.startswith("."))


def read_sums(folder: Path) -> dict[str, str]:
    """SHA256SUMS as name -> digest (OSError, ValueError when it is missing or malformed)."""
    return dict(reversed(line.split("  ", 1)) for line in (folder / SUMS).read_text().splitlines())


def chain_head(reports_dir: Path) -> dict | None:
    try:
        return json.loads((reports_dir / CHAIN_HEAD).read_text())
    except (OSError, ValueError):
        return None


def chain_links(reports_dir: Path) -> dict[str, str]:
    """The runs on the chain, newest first, each with the SHA-256 of its SHA256SUMS as the run after it (or
    .chain-head) recorded it; the walk stops at the first run, a folder that is gone, or a run without a link."""
    links: dict[str, str] = {}
    head = chain_head(reports_dir)
    current, digest = (head.get("run"), head.get("sha256sums")) if head else (None, None)
    while isinstance(current, str) and current not in links and "/" not in current:
        links[current] = digest
        try:
            chain = json.loads((reports_dir / current / "run.json").read_text())["chain"]
        except (OSError, ValueError, KeyError, TypeError):
            break
        current, digest = chain.get("previous_run"), chain.get("previous_sha256sums")
    return links


def seal(folder: Path, document: dict, plan: dict | None, signing_key) -> None:
    """run.json with its chain link, plan.json, SHA256SUMS and its signature; the folder becomes the head."""
    from groundwork import signing

    with open(folder.parent / ".chain.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        head = chain_head(folder.parent)
        chain = {"previous_run": head["run"], "previous_sha256sums": head["sha256sums"]} if head else \
            {"previous_run": None, "previous_sha256sums": None}
        signed = ({"fingerprint": signing_key.fingerprint, "public_key": signing_key.public_line,
                   "namespace": signing.NAMESPACE, "file": SIGNATURE} if signing_key else {"fingerprint": None})
        write_atomic(folder / "run.json", json.dumps({**document, "chain": chain, "signing": signed}, indent=2) + "\n")
        if plan is not None:
            write_atomic(folder / "plan.json", json.dumps(plan, indent=2) + "\n")
        sums = "".join(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n"
                       for name in summed_files(folder))
        write_atomic(folder / SUMS, sums)
        if signing_key:
            write_atomic(folder / SIGNATURE, signing.sign(sums.encode(), signing_key))
        write_atomic(folder.parent / CHAIN_HEAD, json.dumps(
            {"run": folder.name, "sha256sums": hashlib.sha256(sums.encode()).hexdigest()}) + "\n")
