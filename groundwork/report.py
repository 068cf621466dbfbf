"""The run folder a change board reads: metadata, plan, checksums, and the index of all runs.

One folder per run under reports/, named by UTC time and runbook, never overwritten. It holds report.html
(pytest-html, self-contained), run.json (the same content for machines), plan.json (a dry run's plan),
SHA256SUMS (`sha256sum -c SHA256SUMS` inside the folder verifies them) and, with a signing key, SHA256SUMS.sig.
Each run.json names the run written before it and the digest of that run's SHA256SUMS: a hash chain per
reports folder, whose newest link is reports/.chain-head (audit.py walks it).
"""

from __future__ import annotations

import fcntl
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
from groundwork.changes import ChangeRecord
from groundwork.record import RunRecord

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
    signer: str = "unsigned"  # the signing key's fingerprint, or "unsigned" without a key
    # --approved-plan: {"plan", "plan_digest", "change_id", "by", "at"}; empty when not an approved apply
    approval: dict[str, str] = field(default_factory=dict)

    def as_table(self) -> dict[str, str]:
        """For the report's Environment table, in the order a reviewer reads it."""
        table = {"Run": self.run_id, "Runbook": self.runbook, "Change id": self.change_id or "(none given)",
                 "Operator": self.operator, "Started (UTC)": self.started, "Ended (UTC)": self.ended or "",
                 "Git commit": self.git_commit + (" (tree dirty)" if self.git_dirty else ""),
                 "Inventory digest": self.inventory_digest,
                 "Targeted groups": ", ".join(self.groups) or "all",
                 "Targeted hosts": ", ".join(self.hosts), "Dry run": "yes" if self.dry_run else "no",
                 "Signed by": self.signer}
        if self.approval:
            table.update({"Approved plan": f"{self.approval['plan']} (digest {self.approval['plan_digest'][:16]})",
                          "Approved by": self.approval["by"] or "(not given)", "Approved at": self.approval["at"]})
        table.update({f"version {name}": version for name, version in self.tools.items()})
        return table


def provenance_html(meta: RunMetadata) -> str:
    """The report header's line on who approved the plan this run applied, and who signs the folder."""
    parts = []
    if meta.approval:
        a = meta.approval
        parts.append(f"Applies plan {a['plan']}, approved by {a['by'] or '(approver not given)'} at {a['at']}"
                     + (f" for change {a['change_id']}" if a.get("change_id") else "") + ".")
    parts.append(f"Run folder signed with key {meta.signer} (SHA256SUMS.sig)." if meta.signer != "unsigned"
                 else "Run folder UNSIGNED: no signing key configured (groundwork.signing_key).")
    return f'<p id="gw-provenance">{html.escape(" ".join(parts))}</p>'


def git_state(project: Path) -> tuple[str, bool]:
    """The commit of the operator's project folder (config and inventory under change control), if it is one."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True)
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


# -- the run folder -------------------------------------------------------------------------------------

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
    _seal(folder, {"metadata": meta.__dict__, "outcome": outcome, **record.to_dict(), "plan_digest": digest,
                   "checks": checks}, plan, signing_key)


def _seal(folder: Path, document: dict, plan: dict | None, signing_key) -> None:
    """run.json with its chain link, plan.json, SHA256SUMS and its signature; the folder becomes the head."""
    from groundwork import signing

    for leftover in (STARTED, JOURNAL, RUNNING):  # what a run keeps while it runs: run.json holds it all now
        (folder / leftover).unlink(missing_ok=True)
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


STARTED = "started.json"  # a run's metadata, written when it starts; gone once run.json is written
JOURNAL = "progress.jsonl"  # each host's stage, appended as it ends (RunRecord.journal)
RUNNING = ".running"  # held locked by the live run: a folder whose lock is free and that has no run.json was cut short


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
            write_atomic(folder / "report.html", _cut_short_html(meta, entries, why))
            _seal(folder, document, None, signing_key)
        sealed.append(folder.name)
    return sealed


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def _cut_short_html(meta: dict, entries: list[dict], why: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(e['host'])}</td><td>{html.escape(e['stage'])}</td>"
                   f"<td>{html.escape(e['status'])}</td><td>{html.escape('; '.join(c['summary'] for c in e.get('changes', [])))}"
                   "</td></tr>" for e in entries)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>groundwork {html.escape(meta['runbook'])} — "
            f"run {html.escape(meta['run_id'])} (cut short)</title></head><body><h1>Run {html.escape(meta['run_id'])}"
            f": cut short</h1><p><b>{html.escape(why)}</b></p><p>Operator {html.escape(meta.get('operator', ''))}, "
            f"started {html.escape(meta.get('started', ''))}, hosts {html.escape(', '.join(meta.get('hosts', [])))}."
            "</p><table><tr><th>host</th><th>stage</th><th>status</th><th>changes</th></tr>"
            f"{rows}</table></body></html>\n")


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
    title = html.escape(f"groundwork {meta.runbook} — run {meta.run_id}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<h1>{title}</h1>{provenance_html(meta)}<h2>Environment</h2><table id=\"environment\">{rows}</table>"
            f"<p><b>{html.escape(verdict)}</b> Pipeline: {html.escape(record.outcome_line())}.</p>"
            f"{change_log_html(record)}</body></html>")


GLANCE_STYLE = (
    "#gw-grid{border-collapse:collapse;margin:6px 0}#gw-grid th,#gw-grid td{border:1px solid #ccc;padding:2px 6px;"
    "font-size:12px;text-align:center}#gw-grid th.gw-check{writing-mode:vertical-rl;transform:rotate(180deg);"
    "max-height:16em;font-weight:normal;text-align:left}#gw-grid th.gw-host{text-align:left}"
    ".gw-cell a{display:block;text-decoration:none;color:inherit}.gw-passed{background:#cfc}.gw-failed,.gw-error"
    "{background:#f99;font-weight:bold}.gw-skipped{background:#eee;color:#666}.gw-none{background:#fff;color:#bbb}"
    ".gw-evidence-of pre{background:#f6f8fa;padding:4px;white-space:pre-wrap;margin:2px 0}"
    "#gw-failures li{margin:4px 0}"
    # pytest-html puts its Environment table above the summary: the verdict and grid come first, the
    # metadata right after them, then pytest-html's results table.
    "body{display:flex;flex-direction:column;align-items:flex-start}.summary{order:1}#environment-header{order:2}"
    "#environment{order:3}#results-table{order:4;align-self:stretch}")
CELL_MARK = {"passed": "✓", "failed": "✗", "error": "✗", "skipped": "–"}


def glance_html(results: list[dict], hosts: list[str]) -> str:
    """The top of report.html: a grid of hosts by checks, each cell linking to its evidence, then the failures
    with host, check, message and evidence. Checks are columns in the order they ran; a check a host is not
    in the groups of is an empty cell."""
    checks = list(dict.fromkeys((r["check"], r["title"]) for r in results if r["host"]))
    anchor = {id(r): f"gw-ev-{n}" for n, r in enumerate(results)}
    by_cell = {(r["host"], r["check"]): r for r in results if r["host"]}
    head = "".join(f'<th class="gw-check" title="{html.escape(title)}">{html.escape(title)}</th>'
                   for _, title in checks)
    rows = []
    for host in hosts:
        cells = []
        for check, title in checks:
            r = by_cell.get((host, check))
            if r is None:
                cells.append('<td class="gw-none">·</td>')
                continue
            tip = html.escape(f"{host}: {title}: {r['outcome']}" + (f" ({r['message']})" if r["message"] else ""))
            cells.append(f'<td class="gw-cell gw-{r["outcome"]}" data-host="{html.escape(host)}" '
                         f'data-outcome="{r["outcome"]}"><a href="#{anchor[id(r)]}" title="{tip}">'
                         f'{CELL_MARK.get(r["outcome"], "?")}</a></td>')
        rows.append(f'<tr><th class="gw-host">{html.escape(host)}</th>{"".join(cells)}</tr>')
    failures = [r for r in results if r["outcome"] in ("failed", "error")]
    failure_items = "".join(
        f'<li><a href="#{anchor[id(r)]}"><b>{html.escape(r["host"] or "(no host)")}</b> — {html.escape(r["title"])}'
        f'</a>: {html.escape(r["message"])}{evidence_html(r.get("evidence") or [])}</li>' for r in failures)
    return (f"<style>{GLANCE_STYLE}</style><h2>Hosts by checks</h2>"
            f'<table id="gw-grid"><tr><th class="gw-host">host</th>{head}</tr>{"".join(rows)}</table>'
            '<p>✓ passed, ✗ failed, – skipped, · not a check for that host. Each cell links to its evidence.</p>'
            + (f'<h2>Failures</h2><ol id="gw-failures">{failure_items}</ol>' if failures else ""))


def evidence_section_html(results: list[dict]) -> str:
    """Every check's evidence under an anchor the grid links to; failures open."""
    items = "".join(
        f'<details class="gw-evidence-of" id="gw-ev-{n}"{" open" if r["outcome"] in ("failed", "error") else ""}>'
        f'<summary>{html.escape(r["host"] or "(no host)")} — {html.escape(r["title"])}: {r["outcome"]}'
        f'{" — " + html.escape(r["message"]) if r["message"] else ""}</summary>'
        f'{evidence_html(r.get("evidence") or [])}</details>'
        for n, r in enumerate(results))
    # Closed as a whole, so that the run's metadata follows the grid; following a cell's link opens it (the
    # browser reveals the details around a fragment it scrolls to).
    return (f'<details id="gw-evidence"><summary><b>Evidence by host and check</b> ({len(results)} checks; each '
            f"grid cell links to its own)</summary>{items}</details>")


def evidence_html(evidence: list[dict]) -> str:
    """A check's evidence: every command with its exit status and output (secrets already masked)."""
    if not evidence:
        return '<div class="gw-evidence">no command was run</div>'
    parts = []
    for e in evidence:
        output = e["stdout"] + (("\n[stderr]\n" + e["stderr"]) if e["stderr"] else "")
        parts.append(f'<div class="gw-evidence"><b>$ {html.escape(e["command"])}</b> (exit {e["rc"]})'
                     f"<pre>{html.escape(output)}</pre></div>")
    return "".join(parts)


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


def duration_text(started: str | None, ended: str | None) -> str:
    """"1m 05s" between two ISO times; "" when either is missing."""
    from datetime import datetime

    try:
        seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return ""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


INDEX_STYLE = ("body{font-family:sans-serif}td,th{padding:2px 10px;text-align:left;vertical-align:top}"
               "td.num{text-align:right}.ok{color:#070}.failed,.verification-failed,.refused,.unverified,.interrupted"
               "{color:#b00;font-weight:bold}.changed{color:#a60}tr:nth-child(even){background:#f6f6f6}")
# Shows only the rows of the chosen outcome; the page stays one self-contained file.
INDEX_FILTER = ("<script>function gwFilter(v){for(const r of document.querySelectorAll('#gw-runs tr[data-outcome]'))"
                "{r.hidden=!!v&&r.dataset.outcome!==v;}}</script>")


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: every run, newest first, with when, how long, its change, hosts, outcome and checks."""
    rows, outcomes = [], set()
    for run_json in sorted(reports_dir.glob("*/run.json"), reverse=True):
        try:
            run = json.loads(run_json.read_text())
        except (OSError, ValueError):
            continue
        meta = run.get("metadata") or {}
        folder = run_json.parent.name
        outcome = run.get("outcome", "")
        outcomes.add(outcome)
        link = f'<a href="{html.escape(folder)}/report.html">{html.escape(folder)}</a>' \
            if (run_json.parent / "report.html").exists() else html.escape(folder)
        checks = run.get("checks")
        tally = check_tally(checks) if checks is not None else None
        counts = "".join(f'<td class="num">{tally[k] if tally else "–"}</td>'
                         for k in ("passed", "failed", "skipped"))
        targets = run.get("targets", [])
        rows.append(f'<tr data-outcome="{html.escape(outcome)}"><td>{link}</td>'
                    f'<td>{html.escape(run.get("runbook", ""))}</td>'
                    f"<td>{html.escape(run.get('started') or '')}</td>"
                    f"<td class=\"num\">{duration_text(run.get('started'), run.get('ended'))}</td>"
                    f"<td>{html.escape(meta.get('change_id') or '')}</td>"
                    f"<td>{html.escape(meta.get('operator') or '')}</td>"
                    f"<td>{html.escape((meta.get('approval') or {}).get('by') or '')}</td>"
                    f"<td>{'yes' if (run.get('signing') or {}).get('fingerprint') else 'no'}</td>"
                    f"<td>{'yes' if run.get('dry_run') else 'no'}</td>"
                    f'<td class="num" title="{html.escape(", ".join(targets))}">{len(targets)}</td>'
                    f'<td class="{html.escape(outcome)}">{html.escape(outcome)}</td>{counts}</tr>')
    options = "".join(f'<option value="{html.escape(o)}">{html.escape(o)}</option>' for o in sorted(outcomes))
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>groundwork runs</title>"
            f"<style>{INDEX_STYLE}</style>{INDEX_FILTER}</head><body><h1>groundwork runs</h1>"
            '<p><label>outcome: <select id="gw-outcome" onchange="gwFilter(this.value)"><option value="">all</option>'
            f'{options}</select></label> ({len(rows)} runs; hover a host count for the hosts)</p>'
            '<table id="gw-runs"><tr><th>run</th><th>runbook</th><th>started (UTC)</th><th>duration</th>'
            "<th>change id</th><th>operator</th><th>approved by</th><th>signed</th><th>dry run</th><th>hosts</th>"
            "<th>outcome</th><th>checks passed</th><th>failed</th><th>skipped</th></tr>" + "".join(rows)
            + "</table></body></html>\n")
    path = reports_dir / "index.html"
    write_atomic(path, page)
    return path
