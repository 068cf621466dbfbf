"""reports/index.html: every run of a reports folder, newest first, with its outcome and checks, filterable."""

from __future__ import annotations

import html
import json
from pathlib import Path

from groundwork.chain import write_atomic
from groundwork.report_html import check_tally, duration_text, readiness_verdicts


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
                         for k in ("passed", "warned", "failed", "skipped"))
        targets = run.get("targets", [])
        verdicts = readiness_verdicts(checks or [])
        ready = sorted(h for h, v in verdicts.items() if v["ready"])
        readiness = (f'<td class="num" title="ready: {html.escape(", ".join(ready) or "none")}">'
                     f'{len(ready)}/{len(verdicts)}</td>' if verdicts else '<td class="num">–</td>')
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
                    f'<td class="{html.escape(outcome)}">{html.escape(outcome)}</td>{counts}{readiness}</tr>')
    options = "".join(f'<option value="{html.escape(o)}">{html.escape(o)}</option>' for o in sorted(outcomes))
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>groundwork runs</title>"
            f"<style>{INDEX_STYLE}</style>{INDEX_FILTER}</head><body><h1>groundwork runs</h1>"
            '<p><label>outcome: <select id="gw-outcome" onchange="gwFilter(this.value)"><option value="">all</option>'
            f'{options}</select></label> ({len(rows)} runs; hover a host count for the hosts)</p>'
            '<table id="gw-runs"><tr><th>run</th><th>runbook</th><th>started (UTC)</th><th>duration</th>'
            "<th>change id</th><th>operator</th><th>approved by</th><th>signed</th><th>dry run</th><th>hosts</th>"
            "<th>outcome</th><th>checks passed</th><th>warned</th><th>failed</th><th>skipped</th>"
            "<th>ready for kubeadm</th></tr>" + "".join(rows)
            + "</table></body></html>\n")
    path = reports_dir / "index.html"
    write_atomic(path, page)
    return path
