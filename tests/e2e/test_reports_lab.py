"""The verification pass and the run folder a change board reads, end to end against the lab."""

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import PROJECT
from tests.e2e.conftest import HOSTS, UNDECIDABLE, decided_outcomes, inventory_copy

HOST_PREP_CHECKS = ["hostname is hdss7-NN.host.com, running and in /etc/hostname",
                    "kernel is at least the minimum docker needs", "the base tools are installed",
                    "br_netfilter is loaded and the sysctl settings docker needs are in force",
                    "the sysctl settings are in the file read at boot",
                    "SELinux is not enforcing and is disabled at boot, firewalld is stopped and disabled (where they exist)"]


def run_folder(run):
    return run.reports / run.record["run_id"]


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with nothing of its own reaching the network."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: lab/setup installs it")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def rendered_text(page) -> str:
    """The page as headless Chromium renders it (pytest-html builds its table with JavaScript)."""
    return chromium("--dump-dom", f"file://{page}").stdout


def test_full_run_writes_report_json_and_checksums(converged, runbook):
    lab = converged
    lab.ssh("hdss7-22", "hostnamectl set-hostname by-hand")
    run = runbook("--change-id", "CHG-4711")
    assert run.rc == 0, run
    folder = run_folder(run)
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "report.html", "run.json"]
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True).returncode == 0

    document = json.loads((folder / "run.json").read_text())
    meta = document["metadata"]
    assert meta["change_id"] == "CHG-4711" and meta["hosts"] == run.record["targets"]
    assert len(meta["git_commit"]) == 40 and len(meta["inventory_digest"]) == 64
    assert meta["tools"]["nornir"] and meta["started"] <= meta["ended"]
    checks = document["checks"]
    host_prep = [c for c in checks if c["check"].startswith("test_host_prep.py::")]
    assert sorted({(c["host"], c["title"]) for c in host_prep}) == sorted(
        (h, t) for h in HOSTS for t in HOST_PREP_CHECKS)
    assert decided_outcomes(run) == {"passed"}  # the VIP's pass-through included: apiservers answer
    assert {c["outcome"] for c in checks if UNDECIDABLE in c["check"]} == {"skipped"}  # never passed in the lab
    assert {c["check"].split("::")[0] for c in checks} == {"test_host_prep.py", "test_dns.py", "test_ca.py",
                                                           "test_docker.py", "test_registry.py", "test_etcd.py",
                                                           "test_lb.py", "test_kubernetes.py", "test_certs.py",
                                                           "test_time_sync.py", "test_readiness.py"}
    hostname_check = next(c for c in checks if c["host"] == "hdss7-22" and c["title"] == HOST_PREP_CHECKS[0])
    assert hostname_check["evidence"][0]["command"] == "hostname; cat /etc/hostname"
    assert hostname_check["evidence"][0]["stdout"] == "hdss7-22.host.com\nhdss7-22.host.com\n"
    assert document["outcome"] == "changed"

    index = (run.reports / "index.html").read_text()
    assert f'href="{folder.name}/report.html"' in index and "CHG-4711" in index


def test_report_opened_in_chromium_shows_hosts_checks_metadata_and_diff(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "hostnamectl set-hostname by-hand")
    run = runbook("--change-id", "CHG-0815")
    assert run.rc == 0, run
    page = rendered_text(run_folder(run) / "report.html")
    for host in HOSTS:
        assert f"test_hostname_is_the_fqdn[{host}]" in page
    for title in HOST_PREP_CHECKS:
        assert title in page
    for label in ("CHG-0815", run.record["run_id"], "Git commit", "Inventory digest", "Operator"):
        assert label in page
    outcomes = [c["outcome"] for c in run.record["checks"]]
    # skipped: the L4 proxy's pass-through, with no apiserver behind it yet
    assert (f"Verification passed: {outcomes.count('passed')} passed, 0 failed, {outcomes.count('skipped')} "
            "skipped on 5 host(s).") in page
    assert "-by-hand\n+hdss7-21.host.com" in page  # the change log's diff


def test_check_made_false_by_hand_fails_for_that_host_only(converged, runbook):
    lab = converged
    lab.ssh("hdss7-11", "hostnamectl set-hostname by-hand")
    try:
        run = runbook(name="verify")
        assert run.rc == 5, run
        failed = [c for c in run.record["checks"] if c["outcome"] not in ("passed", "skipped")]
        assert [(c["host"], c["title"]) for c in failed] == [("hdss7-11", HOST_PREP_CHECKS[0])]
        evidence = failed[0]["evidence"][0]
        assert evidence["command"] == "hostname; cat /etc/hostname" and evidence["stdout"] == "by-hand\nby-hand\n"
        assert "running hostname 'by-hand'" in failed[0]["message"]
        passed = [c for c in run.record["checks"] if c["outcome"] == "passed"]
        assert "FAIL  hdss7-11" in run.stdout and f"{len(passed)} check(s) passed, 1 failed" in run.stdout
        assert run.record["outcome"] == "verification-failed"
    finally:
        lab.ssh("hdss7-11", "hostnamectl set-hostname hdss7-11.host.com")


def test_the_report_and_index_at_a_glance_in_chromium(converged, runbook):
    """The grid has a cell per host and check, a failed cell links to that check's evidence on that host, the
    failure is listed with its evidence; the index has its columns and filter. Screenshots are kept beside the
    test's run folders (the path is printed)."""
    lab = converged
    lab.ssh("hdss7-11", "hostnamectl set-hostname by-hand")
    try:
        run = runbook("--change-id", "CHG-GRID", name="verify")
    finally:
        lab.ssh("hdss7-11", "hostnamectl set-hostname hdss7-11.host.com")
    assert run.rc == 5, run
    folder = run_folder(run)
    page = rendered_text(folder / "report.html")
    cells = re.findall(r'<td class="gw-cell gw-(\w+)" data-host="([\w-]+)" data-outcome="\w+"><a href="#(gw-ev-\d+)"',
                       page)
    assert len(cells) == len(run.record["checks"]) > 40
    failed = [(host, anchor) for outcome, host, anchor in cells if outcome == "failed"]
    assert [host for host, _ in failed] == ["hdss7-11"]
    target = page[page.index(f'id="{failed[0][1]}"'):]
    target = target[:target.index("</details>")]
    assert "hdss7-11 — hostname is hdss7-NN.host.com" in target and "by-hand" in target
    assert "<b>hdss7-11</b> — hostname is hdss7-NN.host.com" in page[page.index('id="gw-failures"'):]
    # The grid comes before pytest-html's own table.
    assert page.index('id="gw-grid"') < page.index('id="results-table"')
    shot = run.reports / "report-at-a-glance.png"
    chromium("--window-size=1400,1000", f"--screenshot={shot}", f"file://{folder / 'report.html'}")
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    index = rendered_text(run.reports / "index.html")
    for column in ("started (UTC)", "duration", "change id", "hosts", "checks passed", "failed", "skipped"):
        assert f"<th>{column}</th>" in index
    assert "CHG-GRID" in index and '<option value="verification-failed">' in index
    chromium("--window-size=1400,400", f"--screenshot={run.reports / 'index.png'}",
             f"file://{run.reports / 'index.html'}")


def by_hand(command: str, folder) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True)


def test_an_auditor_checks_a_run_folder_by_hand_and_audit_py_names_the_altered_one(converged, runbook, tmp_path):
    """README's "Checking a run folder by hand", command for command, on the lab's run folders."""
    first = runbook("--no-verify")
    second = runbook("--no-verify")
    assert first.rc == second.rc == 0
    folder, before = run_folder(second), run_folder(first)
    (tmp_path / "allowed_signers").write_text("groundwork " + open("/var/lib/groundwork-lab/signing_key.pub").read())
    assert by_hand("sha256sum -c SHA256SUMS", folder).returncode == 0
    verified = by_hand(f"ssh-keygen -Y verify -f {tmp_path}/allowed_signers -I groundwork -n groundwork-run "
                       "-s SHA256SUMS.sig < SHA256SUMS", folder)
    assert verified.returncode == 0 and 'Good "groundwork-run" signature for groundwork' in verified.stdout, verified
    fingerprint = by_hand("ssh-keygen -lf /var/lib/groundwork-lab/signing_key.pub", folder).stdout.split()[1]
    document = json.loads((folder / "run.json").read_text())
    assert document["signing"]["fingerprint"] == document["metadata"]["signer"] == fingerprint
    assert f"signed with key {fingerprint}" in (folder / "report.html").read_text()
    link = re.findall(r'"previous_\w+": "(\S+)"', by_hand("grep '\"previous_' run.json", folder).stdout)
    assert link == [before.name, by_hand(f"sha256sum ../{before.name}/SHA256SUMS", folder).stdout.split()[0]]

    audit = [sys.executable, str(PROJECT / "runbooks" / "audit.py"), "--reports", str(second.reports)]
    clean = subprocess.run(audit, capture_output=True, text=True)
    assert clean.returncode == 0 and "the chain is whole" in clean.stdout, clean.stdout
    report = before / "report.html"
    report.write_text(report.read_text().replace("changed", "ok"))  # a reviewer's view made rosier
    assert by_hand("sha256sum -c SHA256SUMS", before).returncode != 0
    caught = subprocess.run(audit, capture_output=True, text=True)
    assert caught.returncode == 8
    assert f"FIRST PROBLEM: {before.name}: report.html does not match SHA256SUMS" in caught.stdout


def test_audit_flags_a_back_dated_forgery_and_the_newest_runs_removed(converged, runbook, tmp_path):
    """Issue 24's forged history on a lab reports folder: a back-dated unsigned folder with its own SHA256SUMS,
    the newest run removed with .chain-head rewritten, and no trusted key at all."""
    runs = [runbook("--no-verify") for _ in range(3)]
    assert [r.rc for r in runs] == [0, 0, 0]
    reports = runs[0].reports
    pub = tmp_path / "operator.pub"  # the auditor's own copy of the operator's public key
    shutil.copy("/var/lib/groundwork-lab/signing_key.pub", pub)
    audit = [sys.executable, str(PROJECT / "runbooks" / "audit.py"), "--reports", str(reports), "--key", str(pub)]
    clean = subprocess.run(audit, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout
    head = re.search(r"^HEAD: (\S+)", clean.stdout, re.M).group(1)
    assert head.startswith(runs[-1].record["run_id"] + ":")

    forged = reports / "20200101T000000Z-full"
    shutil.copytree(run_folder(runs[0]), forged)
    (forged / "SHA256SUMS.sig").unlink()
    run = json.loads((forged / "run.json").read_text())
    run.update(run_id=forged.name, signing={"fingerprint": None}, chain={"previous_run": None,
                                                                         "previous_sha256sums": None})
    (forged / "run.json").write_text(json.dumps(run))
    by_hand("sha256sum report.html run.json > SHA256SUMS", forged)
    caught = subprocess.run(audit, capture_output=True, text=True)
    assert caught.returncode == 8, caught.stdout
    assert f"FIRST PROBLEM: {forged.name}: " in caught.stdout
    assert f"{forged.name}: inserted: not on the chain" in caught.stdout
    assert f"{forged.name}: not signed by the trusted key" in caught.stdout
    shutil.rmtree(forged)

    newest, previous = run_folder(runs[-1]), run_folder(runs[-2])
    shutil.rmtree(newest)
    digest = by_hand("sha256sum SHA256SUMS", previous).stdout.split()[0]
    (reports / ".chain-head").write_text(json.dumps({"run": previous.name, "sha256sums": digest}) + "\n")
    assert subprocess.run(audit, capture_output=True, text=True).returncode == 0  # the folder alone shows nothing
    truncated = subprocess.run([*audit, "--expect-head", head], capture_output=True, text=True)
    assert truncated.returncode == 8, truncated.stdout
    assert f"the head noted earlier, {newest.name}, is not on the chain any more" in truncated.stdout

    no_key = tmp_path / "config.yaml"
    no_key.write_text("groundwork: {}\n")
    unverified = subprocess.run(audit[:4] + ["-c", str(no_key)], capture_output=True, text=True)
    assert unverified.returncode == 9 and "UNVERIFIED: no trusted key" in unverified.stderr, unverified


def test_plan_is_applied_only_while_it_is_the_approved_one(converged, runbook):
    lab = converged
    lab.ssh("hdss7-21", "hostnamectl set-hostname by-hand")
    plan = runbook("--dry-run", "--change-id", "CHG-9")
    assert plan.rc == 0, plan
    planned = json.loads((run_folder(plan) / "plan.json").read_text())
    assert [c["host"] for c in planned["changes"]] == ["hdss7-21"] and len(planned["digest"]) == 64

    lab.ssh("hdss7-12", "sysctl -q -w net.ipv4.ip_forward=0")  # a change nobody approved
    refused = runbook("--approved-plan", plan.record["run_id"])
    assert refused.rc == 6, refused
    assert "REFUSED: the plan computed now differs from the approved plan" in refused.stdout
    assert "+## hdss7-12 host_prep: apply kernel settings" in refused.stdout
    assert lab.ssh("hdss7-21", "hostname").strip() == "by-hand"  # nothing was changed
    assert lab.ssh("hdss7-12", "sysctl -n net.ipv4.ip_forward").strip() == "0"

    lab.ssh("hdss7-12", "sysctl -q -w net.ipv4.ip_forward=1")
    other_change = runbook("--approved-plan", plan.record["run_id"], "--change-id", "CHG-10")
    assert other_change.rc == 2 and "not the change of the approved plan" in other_change.stderr, other_change
    applied = runbook("--approved-plan", plan.record["run_id"], "--approved-by", "Li Wei",
                      "--approved-at", "2026-12-02T09:30+08:00")
    assert applied.rc == 0, applied
    assert "the plan computed now is the approved one" in applied.stdout
    approval = applied.record["metadata"]["approval"]
    assert approval == {"plan": plan.record["run_id"], "plan_digest": planned["digest"], "change_id": "CHG-9",
                        "by": "Li Wei", "at": "2026-12-02T01:30:00+00:00"}
    assert applied.record["metadata"]["change_id"] == "CHG-9"  # the dry run's change, carried over
    assert (f"Applies plan {plan.record['run_id']}, approved by Li Wei at 2026-12-02T01:30:00+00:00 for change "
            "CHG-9") in (run_folder(applied) / "report.html").read_text()
    assert "<td>Li Wei</td>" in (applied.reports / "index.html").read_text()
    assert applied.statuses()["hdss7-21"] == "changed"
    assert lab.ssh("hdss7-21", "hostname").strip() == "hdss7-21.host.com"


def test_a_plan_copied_in_from_another_dry_run_and_re_hashed_is_never_applied(converged, runbook, tmp_path):
    """The attack of issue 24: the approved dry run's plan.json swapped for another inventory's, SHA256SUMS
    recomputed; applied with that inventory. On the main before signed plans, it was applied (exit 0)."""
    lab = converged
    approved = runbook("--dry-run", "--change-id", "CHG-11")
    assert approved.rc == 0, approved

    def add_record(name, data):
        if name == "defaults.yaml":
            data["data"]["dns"]["records"] = {"evil": "10.4.7.66"}
    other_inventory = inventory_copy(tmp_path, add_record)
    other = runbook("--dry-run", "-i", other_inventory)
    assert other.rc == 0 and "evil" in (run_folder(other) / "plan.json").read_text(), other
    folder = run_folder(approved)
    shutil.copy(run_folder(other) / "plan.json", folder / "plan.json")
    by_hand("sha256sum plan.json report.html run.json > SHA256SUMS", folder)
    refused = runbook("--approved-plan", approved.record["run_id"], "-i", other_inventory)
    assert refused.rc == 6, refused
    assert "SHA256SUMS.sig: the signature does not match SHA256SUMS" in refused.stderr, refused
    assert lab.ssh("hdss7-11", "dig +short evil.od.com @10.4.7.11").strip() == ""  # nothing changed
    # A plan nobody touched still applies (there is nothing to change).
    fresh = runbook("--dry-run", "--change-id", "CHG-12")
    applied = runbook("--approved-plan", fresh.record["run_id"], "--no-verify")
    assert applied.rc == 0, applied


def test_rerun_failed_targets_the_hosts_that_failed_last_time(converged, runbook):
    lab = converged
    lab.kill("hdss7-22")
    try:
        first = runbook("--no-verify")
        assert first.rc == 4, first
    finally:
        lab.start("hdss7-22")
    again = runbook("--rerun-failed")
    assert again.rc == 0, again
    assert again.record["targets"] == ["hdss7-22"]
    assert {c["host"] for c in again.record["checks"]} == {"hdss7-22"}
    pull = next(c for c in again.record["checks"] if "pulled here" in c["title"])
    assert pull["outcome"] == "skipped"  # no canary pushed: the ops host was not targeted


def test_no_secret_reaches_any_file_of_the_run_folder(converged, runbook, monkeypatch):
    lab = converged
    secret = "pw-" + secrets.token_hex(12)
    monkeypatch.setenv("GROUNDWORK_SSH_PASSWORD", secret)
    # The secret turns up on a host, so it would be in the diff, the evidence and the report if not masked.
    lab.ssh("hdss7-200", f"echo '# {secret}' >> /etc/sysctl.d/docker.conf; hostnamectl set-hostname {secret}")
    run = runbook("--diff")
    assert run.rc == 0, run
    folder = run_folder(run)
    for path in [*folder.iterdir(), run.reports / "index.html"]:
        assert secret not in path.read_text(errors="replace"), path
    assert secret not in run.stdout + run.stderr
    assert "-# ********" in json.dumps(run.record)
