"""The run folder a change board reads: metadata, plan, checksums, and the index of all runs.

One folder per run under reports/, named by UTC time and runbook, never overwritten. It holds report.html
(pytest-html, self-contained), run.json (the same content for machines), plan.json (a dry run's plan) and
SHA256SUMS (`sha256sum -c SHA256SUMS` inside the folder verifies them).
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import html
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata as pkg_metadata
from pathlib import Path

import groundwork
from groundwork.runner import RunRecord

PROJECT = Path(__file__).resolve().parents[1]
TOOLS = ("groundwork", "nornir", "nornir-netmiko", "netmiko", "paramiko", "cryptography", "dnspython", "jinja2",
         "pytest", "pytest-html")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@dataclass
class RunMetadata:
    run_id: str
    runbook: str
    change_id: str
    operator: str
    started: str
    ended: str | None
    git_commit: str
    git_dirty: bool
    inventory_digest: str
    groups: list[str]
    hosts: list[str]
    dry_run: bool
    tools: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # each targeted host's address

    def as_table(self) -> dict[str, str]:
        """For the report's Environment table, in the order a reviewer reads it."""
        table = {"Run": self.run_id, "Runbook": self.runbook, "Change id": self.change_id or "(none given)",
                 "Operator": self.operator, "Started (UTC)": self.started, "Ended (UTC)": self.ended or "",
                 "Git commit": self.git_commit + (" (tree dirty)" if self.git_dirty else ""),
                 "Inventory digest": self.inventory_digest,
                 "Targeted groups": ", ".join(self.groups) or "all",
                 "Targeted hosts": ", ".join(self.hosts), "Dry run": "yes" if self.dry_run else "no"}
        table.update({f"version {name}": version for name, version in self.tools.items()})
        return table


def git_state() -> tuple[str, bool]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(PROJECT), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return commit, dirty


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "groundwork": groundwork.__version__}
    for name in TOOLS[1:]:
        try:
            versions[name] = pkg_metadata.version(name)
        except pkg_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def operator_name() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


# -- plan -----------------------------------------------------------------------------------------------

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


def plan_text(changes: list[dict]) -> str:
    def details(c: dict) -> str:
        return "".join(f"  $ {command}\n" for command in c.get("commands", [])) + (
            f"  content {c['content']}\n" if c.get("content") else "")
    return "".join(f"## {c['host']} {c['stage']}: {c['summary']}\n{c['diff']}{details(c)}" for c in changes)


def plan_difference(approved: list[dict], current: list[dict]) -> str:
    return "".join(difflib.unified_diff(plan_text(approved).splitlines(keepends=True),
                                        plan_text(current).splitlines(keepends=True),
                                        fromfile="approved plan", tofile="plan computed now"))


class PlanError(Exception):
    """--approved-plan names no usable plan (exit 2)."""


class PlanRejected(Exception):
    """The approved plan's folder was altered since its dry run wrote it (exit 6)."""


def load_plan(reports_dir: Path, run_id: str) -> dict:
    """A dry run's plan, checked against its folder's SHA256SUMS and its own digest."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
        raise PlanError(f"{run_id!r} is not a run id: --approved-plan takes the name of a dry run's folder in "
                        f"{reports_dir}")
    folder = reports_dir / run_id
    path = folder / "plan.json"
    if not path.exists():
        raise PlanError(f"no plan in {folder}: --approved-plan takes the run id of a --dry-run")
    try:
        run = json.loads((folder / "run.json").read_text())
        sums = dict(reversed(line.split("  ", 1)) for line in (folder / "SHA256SUMS").read_text().splitlines())
    except (OSError, ValueError) as exc:
        raise PlanRejected(f"the folder of {run_id} is incomplete or damaged ({exc}); make a new --dry-run") from None
    for name in ("plan.json", "run.json"):
        if sums.get(name) != hashlib.sha256((folder / name).read_bytes()).hexdigest():
            raise PlanRejected(f"{folder / name} does not match {folder / 'SHA256SUMS'}: the folder was altered "
                               "after its dry run; make a new --dry-run and have it approved")
    if not run.get("dry_run"):
        raise PlanError(f"{run_id} was not a dry run: --approved-plan takes the run id of a --dry-run")
    plan = json.loads(path.read_text())
    if plan_digest(plan["changes"], plan.get("addresses"), plan.get("inventory_digest", "")) != plan.get("digest"):
        raise PlanRejected(f"{path}: its digest does not match its changes; make a new --dry-run")
    return plan


# -- the run folder -------------------------------------------------------------------------------------

def write_run_folder(folder: Path, record: RunRecord, meta: RunMetadata, checks: list[dict] | None,
                     outcome: str) -> None:
    """run.json, plan.json (dry run), and SHA256SUMS over every file of the folder, report.html included."""
    folder.mkdir(parents=True, exist_ok=True)
    changes = plan_of(record)
    digest = plan_digest(changes, meta.addresses, meta.inventory_digest)
    document = {"metadata": meta.__dict__, "outcome": outcome, **record.to_dict(), "plan_digest": digest,
                "checks": checks}
    write_atomic(folder / "run.json", json.dumps(document, indent=2) + "\n")
    if record.dry_run:
        write_atomic(folder / "plan.json", json.dumps(
            {"run_id": record.run_id, "targets": record.targets, "addresses": meta.addresses,
             "inventory_digest": meta.inventory_digest, "digest": digest, "changes": changes}, indent=2) + "\n")
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "SHA256SUMS"
                   and not p.name.startswith("."))
    sums = "".join(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n" for name in files)
    write_atomic(folder / "SHA256SUMS", sums)


def change_log_html(record: RunRecord) -> str:
    """The run's changes per host and stage, for the HTML report (diffs already masked)."""
    rows = []
    for e in sorted(record.entries, key=lambda e: (record.targets.index(e.host), e.stage)):
        detail = []
        if e.error:
            detail.append(f'<div class="gw-error">{html.escape(e.error)}</div>')
        for c in (e.report.changes if e.report else []):
            state = "planned" if record.dry_run else ("applied" if c.applied else "not applied")
            detail.append(f"<div><b>{html.escape(c.summary)}</b> ({state}, {c.duration:.2f}s)"
                          f"<pre class=\"gw-diff\">{html.escape(c.diff)}</pre></div>")
        if e.report and not e.report.changes and e.report.notes:
            detail.append(f"<div>{html.escape('; '.join(e.report.notes))}</div>")
        rows.append(f"<tr class=\"gw-{e.status}\"><td>{html.escape(e.host)}</td><td>{html.escape(e.stage)}</td>"
                    f"<td>{e.status}</td><td>{e.duration:.2f}s</td><td>{''.join(detail)}</td></tr>")
    title = "Plan (dry run: nothing was changed)" if record.dry_run else "Change log"
    if not rows:
        return f'<h2 id="gw-change-log">{title}</h2><p>No stage ran in this run (verification only).</p>'
    return (f'<h2 id="gw-change-log">{title}</h2>'
            "<style>.gw-diff{background:#f6f8fa;padding:4px;white-space:pre-wrap;margin:2px 0}"
            ".gw-failed td{background:#fdd}.gw-changed td:nth-child(3){color:#a60}.gw-error{color:#b00}"
            "#gw-changes td,#gw-changes th{vertical-align:top;padding:2px 8px;text-align:left;"
            "border-bottom:1px solid #ddd}</style>"
            '<table id="gw-changes"><tr><th>host</th><th>stage</th><th>status</th><th>duration</th>'
            "<th>changes</th></tr>" + "".join(rows) + "</table>")


def change_report_html(meta: RunMetadata, record: RunRecord, verdict: str) -> str:
    """report.html of a run without a verification pass (dry run, --no-verify, interrupted, refused): the same
    metadata and change log as the pytest-html report, without loading pytest for nothing."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in meta.as_table().items())
    failed = record.failed_hosts
    title = html.escape(f"groundwork {meta.runbook} — run {meta.run_id}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<h1>{title}</h1><h2>Environment</h2><table id=\"environment\">{rows}</table>"
            f"<p><b>{html.escape(verdict)}</b> Pipeline: {len(record.changed_hosts)} host(s) "
            f"{'would change' if record.dry_run else 'changed'}, {len(failed)} failed"
            f"{': ' + html.escape(', '.join(failed)) if failed else ''}.</p>"
            f"{change_log_html(record)}</body></html>")


def check_tally(results: list[dict], host: str | None = None) -> dict[str, int]:
    """passed, failed (errors included), skipped and total of the checks of one host, or of all."""
    mine = [r for r in results if host is None or r["host"] == host]
    tally = {"passed": sum(r["outcome"] == "passed" for r in mine),
             "failed": sum(r["outcome"] in ("failed", "error") for r in mine),
             "skipped": sum(r["outcome"] == "skipped" for r in mine)}
    return {**tally, "total": len(mine)}


def host_verification(tally: dict[str, int]) -> str:
    """failed; unverified when every check of the host was skipped (nothing was proven there); else ok."""
    if tally["failed"]:
        return "failed"
    if tally["total"] and not tally["passed"]:
        return "unverified"
    return "ok"


def _checks_cell(checks: list[dict] | None) -> str:
    if checks is None:
        return "not run"
    tally = check_tally(checks)
    return f"{tally['passed']} / {tally['failed']} / {tally['skipped']}"


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: every run, newest first, with its outcome."""
    rows = []
    for run_json in sorted(reports_dir.glob("*/run.json"), reverse=True):
        try:
            run = json.loads(run_json.read_text())
        except (OSError, ValueError):
            continue
        meta = run.get("metadata") or {}
        folder = run_json.parent.name
        link = f'<a href="{html.escape(folder)}/report.html">{html.escape(folder)}</a>' \
            if (run_json.parent / "report.html").exists() else html.escape(folder)
        rows.append(f"<tr><td>{link}</td><td>{html.escape(run.get('runbook', ''))}</td>"
                    f"<td>{html.escape(meta.get('change_id') or '')}</td>"
                    f"<td>{html.escape(meta.get('operator') or '')}</td>"
                    f"<td>{'yes' if run.get('dry_run') else 'no'}</td>"
                    f"<td class=\"{html.escape(run.get('outcome', ''))}\">{html.escape(run.get('outcome', ''))}</td>"
                    f"<td>{_checks_cell(run.get('checks'))}</td>"
                    f"<td>{html.escape(', '.join(run.get('targets', [])))}</td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>groundwork runs</title><style>"
            "body{font-family:sans-serif}td,th{padding:2px 10px;text-align:left}.ok{color:#070}"
            ".failed,.verification-failed,.refused,.unverified{color:#b00;font-weight:bold}.changed{color:#a60}</style></head>"
            "<body><h1>groundwork runs</h1><table><tr><th>run</th><th>runbook</th><th>change id</th><th>operator</th>"
            "<th>dry run</th><th>outcome</th><th>checks passed / failed / skipped</th><th>hosts</th></tr>" + "".join(rows) + "</table></body></html>\n")
    path = reports_dir / "index.html"
    write_atomic(path, page)
    return path
