"""The HTML a change board reads beside pytest-html's: the provenance line, the change log, the grid of hosts by
checks with their evidence, and the tallies a verdict is made from."""

from __future__ import annotations

import html

from groundwork.provenance import RunMetadata
from groundwork.record import RunRecord


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


def cut_short_html(meta: dict, entries: list[dict], why: str) -> str:
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
    outputs = "".join(f"<li>{html.escape(o)}</li>" for o in record.outputs)
    if outputs:
        rows.append(f'<tr><td colspan="5"><b>Written on the controller</b><ul>{outputs}</ul></td></tr>')
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
    ".gw-cell a{display:block;text-decoration:none;color:inherit}.gw-passed{background:#cfc}.gw-warned{background:#fe9;font-weight:bold}.gw-failed,.gw-error"
    "{background:#f99;font-weight:bold}.gw-skipped{background:#eee;color:#666}.gw-none{background:#fff;color:#bbb}"
    ".gw-evidence-of pre{background:#f6f8fa;padding:4px;white-space:pre-wrap;margin:2px 0}"
    "#gw-failures li{margin:4px 0}"
    # pytest-html puts its Environment table above the summary: the verdict and grid come first, the
    # metadata right after them, then pytest-html's results table.
    "body{display:flex;flex-direction:column;align-items:flex-start}.summary{order:1}#environment-header{order:2}"
    "#environment{order:3}#results-table{order:4;align-self:stretch}")


CELL_MARK = {"passed": "✓", "warned": "!", "failed": "✗", "error": "✗", "skipped": "–"}


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
    warnings = [r for r in results if r["outcome"] == "warned"]
    warning_items = "".join(
        f'<li><a href="#{anchor[id(r)]}"><b>{html.escape(r["host"])}</b> — {html.escape(r["title"])}</a>: '
        f'{html.escape(r["message"])}</li>' for r in warnings)
    return (f"<style>{GLANCE_STYLE}</style><h2>Hosts by checks</h2>"
            f'<table id="gw-grid"><tr><th class="gw-host">host</th>{head}</tr>{"".join(rows)}</table>'
            '<p>✓ passed, ! warned (passed, something due soon), ✗ failed, – skipped, · not a check for that host. '
            'Each cell links to its evidence.</p>'
            + (f'<h2>Failures</h2><ol id="gw-failures">{failure_items}</ol>' if failures else "")
            + (f'<h2>Warnings</h2><ol id="gw-warnings">{warning_items}</ol>' if warnings else ""))


READINESS = "test_readiness.py"  # kubeadm's preflight, as groundwork readiness checks it


def readiness_verdicts(results: list[dict]) -> dict[str, dict]:
    """host -> its "ready for kubeadm" verdict: not ready when a readiness check failed, else ready; the checks
    that could not decide there (skipped) and those that warned are listed beside it, never counted as passed."""
    verdicts: dict[str, dict] = {}
    for r in results:
        if not r["host"] or not r["check"].startswith(READINESS + "::"):
            continue
        v = verdicts.setdefault(r["host"], {"ready": True, "failed": [], "undecided": [], "warned": []})
        if r["outcome"] in ("failed", "error"):
            v["ready"] = False
            v["failed"].append(f"{r['title']}: {r['message']}")
        elif r["outcome"] == "skipped":
            v["undecided"].append(f"{r['title']}: {r['message']}")
        elif r["outcome"] == "warned":
            v["warned"].append(f"{r['title']}: {r['message']}")
    return verdicts


def readiness_html(results: list[dict]) -> str:
    """The report's "Ready for kubeadm" heading: a verdict per host with its reasons; "" without readiness checks."""
    verdicts = readiness_verdicts(results)
    if not verdicts:
        return ""
    items = []
    for host, v in verdicts.items():
        reasons = "".join(f"<li>{kind}: {html.escape(text)}</li>" for kind in ("failed", "undecided", "warned")
                          for text in v[kind])
        word = "ready for kubeadm" if v["ready"] else "NOT ready for kubeadm"
        items.append(f'<li class="gw-{"passed" if v["ready"] else "failed"}" data-host="{html.escape(host)}">'
                     f'<b>{html.escape(host)}</b>: {word}{f"<ul>{reasons}</ul>" if reasons else ""}</li>')
    return f'<h2>Ready for kubeadm</h2><ul id="gw-readiness">{"".join(items)}</ul>'


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
    """passed, warned, failed (errors included), skipped and total of the checks of one host, or of all."""
    mine = [r for r in results if host is None or r["host"] == host]
    tally = {"passed": sum(r["outcome"] == "passed" for r in mine),
             "warned": sum(r["outcome"] == "warned" for r in mine),
             "failed": sum(r["outcome"] in ("failed", "error") for r in mine),
             "skipped": sum(r["outcome"] == "skipped" for r in mine)}
    return {**tally, "total": len(mine)}


def host_verification(tally: dict[str, int]) -> str:
    """failed; unverified when every check of the host was skipped (nothing was proven there); else ok (a
    warning is a pass with something due soon)."""
    if tally["failed"]:
        return "failed"
    if tally["total"] and not (tally["passed"] or tally.get("warned")):
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
