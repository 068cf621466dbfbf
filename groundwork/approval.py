"""A run's plan, its digest, and the authentication of an approved plan (--approved-plan): what an approval
binds, and the checks that the folder read back is the signed dry run on the chain."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from groundwork.chain import SIGNATURE, SUMS, chain_links, read_sums
from groundwork.record import RunRecord


def plan_of(record: RunRecord) -> list[dict]:
    """Every change of a run, in pipeline order: what a dry run would apply, or what a run applied."""
    return [{"host": e.host, "stage": e.stage, **c.plan_entry()}
            for e in sorted(record.entries, key=lambda e: (record.targets.index(e.host), e.stage))
            if e.report for c in e.report.changes]


def plan_digest(changes: list[dict], addresses: dict[str, str] | None = None, inventory_digest: str = "") -> str:
    """What an approval binds: every change (commands and content digests included), each targeted host's
    address, and the inventory's digest."""
    document = {"changes": changes, "addresses": addresses or {}, "inventory_digest": inventory_digest}
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def approved_slices(plan: dict) -> dict[tuple[str, str], list[dict]]:
    """The approved plan per host and stage, as apply_plan compares it."""
    slices: dict[tuple[str, str], list[dict]] = {}
    for change in plan["changes"]:
        entry = {k: v for k, v in change.items() if k not in ("host", "stage")}
        slices.setdefault((change["host"], change["stage"]), []).append(entry)
    return slices


def digest_key(reports_dir: Path) -> bytes:
    """The key of sensitive files' content digests in plans: random, made once per reports folder, readable by
    its owner only. A plan approved here is applied here; a plan read elsewhere gives no guess of a secret."""
    path = reports_dir / ".digest-key"
    if not path.exists():
        reports_dir.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(os.urandom(32))
        except FileExistsError:
            pass  # another run made it first
    return path.read_bytes()


class PlanError(Exception):
    """--approved-plan names no usable plan (exit 2)."""


class PlanRejected(Exception):
    """The approved plan's folder was altered since its dry run wrote it (exit 6)."""


def load_plan(reports_dir: Path, run_id: str, trusted: str | None) -> dict:
    """A dry run's plan, authenticated: its folder's files match SHA256SUMS, SHA256SUMS carries a signature by
    the trusted key (a fingerprint), the folder holds the run its name says, it sits on the reports folder's
    chain with that SHA256SUMS, and the plan's digest matches its changes. Anyone who can write reports/ can
    recompute checksums and digests; only the signing key's holder can sign, and the chain pins the folder."""
    from groundwork import signing

    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
        raise PlanError(f"{run_id!r} is not a run id: --approved-plan takes the name of a dry run's folder in "
                        f"{reports_dir}")
    folder = reports_dir / run_id
    path = folder / "plan.json"
    if not path.exists():
        raise PlanError(f"no plan in {folder}: --approved-plan takes the run id of a --dry-run")
    again = "make a new --dry-run and have it approved"
    try:
        run = json.loads((folder / "run.json").read_text())
        plan = json.loads(path.read_text())
        sums_text = (folder / SUMS).read_bytes()
        sums = read_sums(folder)
    except (OSError, ValueError) as exc:
        raise PlanRejected(f"the folder of {run_id} is incomplete or damaged ({exc}); {again}") from None
    for name in ("plan.json", "run.json"):
        if sums.get(name) != hashlib.sha256((folder / name).read_bytes()).hexdigest():
            raise PlanRejected(f"{folder / name} does not match {folder / SUMS}: the folder was altered "
                               f"after its dry run; {again}")
    if trusted is None:
        raise PlanRejected("no signing key is configured (groundwork.signing_key), so no approved plan can be "
                           "authenticated: sign the dry run and the apply with the same key")
    try:
        signer = signing.verify(sums_text, (folder / SIGNATURE).read_text())
    except OSError:
        raise PlanRejected(f"{folder} has no {SIGNATURE}: an unsigned plan cannot be approved; {again}") from None
    except signing.SignatureError as exc:
        raise PlanRejected(f"{folder / SIGNATURE}: {exc}; {again}") from None
    if signer != trusted:
        raise PlanRejected(f"{folder} is signed by {signer}, not by the trusted key {trusted}; {again}")
    if not (run.get("run_id") == plan.get("run_id") == run_id):
        raise PlanRejected(f"{folder} holds the plan of run {plan.get('run_id')!r} and the record of run "
                           f"{run.get('run_id')!r}: folders or files were swapped; {again}")
    link = chain_links(reports_dir).get(run_id)
    if link != hashlib.sha256(sums_text).hexdigest():
        raise PlanRejected(f"{run_id} is not on the chain of {reports_dir}"
                           + (" with this SHA256SUMS: the folder was rewritten" if link else
                              ": no run after it names it (put in afterwards, or the chain was cut)") + f"; {again}")
    if not run.get("dry_run"):
        raise PlanError(f"{run_id} was not a dry run: --approved-plan takes the run id of a --dry-run")
    if plan_digest(plan["changes"], plan.get("addresses"), plan.get("inventory_digest", "")) != plan.get("digest"):
        raise PlanRejected(f"{path}: its digest does not match its changes; {again}")
    plan["change_id"] = (run.get("metadata") or {}).get("change_id") or ""
    plan["started"] = run.get("started") or ""
    return plan
