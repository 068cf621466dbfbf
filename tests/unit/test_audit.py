"""Signed run folders and the hash chain: tampering of every kind is caught and the folder named; the signature
verifies with OpenSSH's own `ssh-keygen -Y verify`, as README tells an auditor to check it."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from groundwork.audit import audit
from groundwork.provenance import RunMetadata
from groundwork.report_html import provenance_html
from groundwork.run_folder import write_run_folder
from groundwork.record import RunRecord
from groundwork.signing import SignatureError, load_signing_key, verify
from tests.conftest import make_signing_key

RUNS = ["20261201T080000Z-full", "20261201T090000Z-full", "20261201T100000Z-verify", "20261201T110000Z-full"]


@pytest.fixture
def key(signing_key):
    return signing_key


def make_run(reports: Path, run_id: str, key, approval=None) -> Path:
    record = RunRecord(run_id=run_id, runbook=run_id.split("-")[1], dry_run=False, targets=["hdss7-11"],
                       started="2026-12-01T08:00:00+00:00", ended="2026-12-01T08:00:09+00:00")
    meta = RunMetadata(run_id=run_id, runbook=record.runbook, change_id="CHG-7", operator="ops",
                       started=record.started, ended=record.ended, git_commit="0" * 40, git_dirty=False,
                       inventory_digest="f" * 64, groups=[], hosts=record.targets, dry_run=False,
                       signer=key.fingerprint if key else "unsigned", approval=approval or {})
    folder = reports / run_id
    folder.mkdir(parents=True)
    (folder / "report.html").write_text(f"<html>{provenance_html(meta)} all green</html>")
    write_run_folder(folder, record, meta, [], "ok", key)
    return folder


@pytest.fixture
def reports(tmp_path, key):
    folder = tmp_path / "reports"
    for run_id in RUNS:
        make_run(folder, run_id, key)
    return folder


def first_problem(reports: Path, key) -> tuple[str, str]:
    _, problems = audit(reports, key.fingerprint)
    assert problems, "the tampering went unseen"
    return problems[0]


def test_an_intact_reports_folder_passes_and_each_run_names_the_one_before(reports, key):
    states, problems = audit(reports, key.fingerprint)
    assert problems == [] and [s.signer for s in states] == [key.fingerprint] * len(RUNS)
    chain = [json.loads((reports / r / "run.json").read_text())["chain"] for r in RUNS]
    assert [c["previous_run"] for c in chain] == [None, *RUNS[:-1]]
    assert json.loads((reports / RUNS[1] / "run.json").read_text())["signing"]["fingerprint"] == key.fingerprint


def test_the_signature_verifies_with_ssh_keygen_and_fails_on_an_edit(reports, key, tmp_path):
    """The auditor's check by hand, as README gives it."""
    folder = reports / RUNS[2]
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"groundwork {key.public_line}\n")  # README's words, not the module's constants

    def ssh_keygen_verify() -> subprocess.CompletedProcess:
        with open(folder / "SHA256SUMS", "rb") as sums:
            return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "groundwork", "-n",
                                   "groundwork-run", "-s", str(folder / "SHA256SUMS.sig")], stdin=sums,
                                  capture_output=True, text=True)
    done = ssh_keygen_verify()
    assert done.returncode == 0 and 'Good "groundwork-run" signature for groundwork' in done.stdout, done
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder).returncode == 0
    with open(folder / "SHA256SUMS", "a") as sums:
        sums.write("0" * 64 + "  forged.html\n")
    assert ssh_keygen_verify().returncode != 0


def test_an_edited_report_is_caught_even_with_its_checksum_recomputed(reports, key):
    folder = reports / RUNS[1]
    (folder / "report.html").write_text("<html>all green, honestly</html>")
    assert first_problem(reports, key) == (RUNS[1], "report.html does not match SHA256SUMS: altered after the run")
    # recomputing SHA256SUMS breaks the signature and the next run's link
    subprocess.run("sha256sum report.html run.json > SHA256SUMS", shell=True, cwd=folder, check=True)
    _, problems = audit(reports, key.fingerprint)
    assert {p for f, p in problems if f == RUNS[1]} == {
        "SHA256SUMS.sig: the signature does not match SHA256SUMS: the file or the signature was altered",
        f"its SHA256SUMS is not the one {RUNS[2]} recorded: the folder was rewritten"}


def test_a_deleted_run_folder_is_named(reports, key):
    shutil.rmtree(reports / RUNS[1])
    assert first_problem(reports, key) == (RUNS[1], f"removed: {RUNS[2]} names it as the run before it, and it is "
                                                     "gone")


def test_the_newest_run_deleted_is_named_by_the_chain_head(reports, key):
    shutil.rmtree(reports / RUNS[-1])
    assert first_problem(reports, key) == (RUNS[-1], "removed: .chain-head names it as the run before it, and it "
                                                      "is gone")


def test_two_swapped_folders_are_both_named(reports, key):
    a, b = reports / RUNS[1], reports / RUNS[2]
    a.rename(reports / "swap")
    b.rename(a)
    (reports / "swap").rename(b)
    _, problems = audit(reports, key.fingerprint)
    assert (RUNS[1], f"the folder holds the run '{RUNS[2]}': folders renamed or swapped") in problems
    assert (RUNS[2], f"the folder holds the run '{RUNS[1]}': folders renamed or swapped") in problems
    assert problems[0][0] == RUNS[1]


def test_an_inserted_folder_is_named_even_when_signed_with_the_right_key(reports, key):
    # a genuine-looking run made later and slipped in between two others, without its place on the chain
    spare = reports.parent / "spare"
    inserted = make_run(spare, "20261201T093000Z-full", key)
    shutil.move(str(inserted), reports / inserted.name)
    assert first_problem(reports, key) == (
        "20261201T093000Z-full", "inserted: not on the chain, no run on it names this folder as the run before it "
                                 "(put in afterwards, or the runs that named it are gone)")


def test_a_folder_signed_by_another_key_is_named(reports, key, tmp_path):
    other_path = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_path)], check=True)
    other = load_signing_key({"groundwork": {"signing_key": str(other_path)}}, tmp_path / "config.yaml")
    make_run(reports, "20261201T120000Z-full", other)
    folder, problem = first_problem(reports, key)
    assert folder == "20261201T120000Z-full" and problem.startswith(f"not signed by the trusted key {key.fingerprint}")


def test_a_run_without_a_key_says_unsigned(tmp_path):
    folder = make_run(tmp_path / "reports", RUNS[0], None)
    run = json.loads((folder / "run.json").read_text())
    assert run["signing"] == {"fingerprint": None} and run["metadata"]["signer"] == "unsigned"
    assert "UNSIGNED" in (folder / "report.html").read_text() and not (folder / "SHA256SUMS.sig").exists()
    states, problems = audit(tmp_path / "reports")
    assert problems == [] and states[0].signer == "unsigned"


def test_the_approval_is_in_the_record_and_the_report_header(tmp_path, key):
    approval = {"plan": "20261201T070000Z-full", "plan_digest": "a" * 64, "change_id": "CHG-7", "by": "Li Wei",
                "at": "2026-12-01T07:30:00+00:00"}
    folder = make_run(tmp_path / "reports", RUNS[0], key, approval)
    assert json.loads((folder / "run.json").read_text())["metadata"]["approval"] == approval
    assert ("Applies plan 20261201T070000Z-full, approved by Li Wei at 2026-12-01T07:30:00+00:00 for change CHG-7"
            in (folder / "report.html").read_text())


def test_an_encrypted_or_open_signing_key_is_refused_before_any_run(tmp_path):
    from groundwork.inventory import InventoryError
    path = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(path)], check=True)
    with pytest.raises(InventoryError) as refused:
        load_signing_key({"groundwork": {"signing_key": str(path)}}, tmp_path / "config.yaml")
    assert "signing_key: " in str(refused.value.problems[0]) and "not an unencrypted OpenSSH private key" in \
        str(refused.value.problems[0])
    path.chmod(0o644)
    with pytest.raises(InventoryError) as refused:
        load_signing_key({"groundwork": {"signing_key": str(path)}}, tmp_path / "config.yaml")
    assert "must be readable by its owner only: chmod 600" in str(refused.value.problems[0])


def test_the_approval_flags_are_checked_before_anything_runs(tmp_path):
    import argparse

    from groundwork.cli import UsageError, _approval, main
    from groundwork.tasks.pipeline import PIPELINE
    assert main(PIPELINE, runbook="full", description="", argv=["--approved-by", "Li Wei"]) == 2
    plan = {"run_id": "20261201T070000Z-full", "digest": "a" * 64, "change_id": "CHG-7"}

    def approval(**given):
        args = argparse.Namespace(**{"change_id": "", "approved_by": None, "approved_at": None, **given})
        return _approval(args, plan), args
    recorded, args = approval(approved_by=" Li Wei ", approved_at="2026-12-02T09:30+08:00")
    assert recorded == {"plan": plan["run_id"], "plan_digest": "a" * 64, "change_id": "CHG-7", "by": "Li Wei",
                        "at": "2026-12-02T01:30:00+00:00"} and args.change_id == "CHG-7"
    for given, message in (({"change_id": "CHG-8"}, "not the change of the approved plan"),
                           ({"approved_at": "yesterday"}, "not an ISO 8601 time"),
                           ({"approved_at": "2026-12-02T09:30"}, "has no time zone"),
                           ({"approved_by": "a\nb"}, "one line")):
        with pytest.raises(UsageError, match=message):
            approval(**given)


def forged_folder(reports: Path, run_id: str, key=None) -> Path:
    """A folder made by hand: its own run.json (no chain record), SHA256SUMS, and a signature if given a key."""
    from groundwork.signing import sign

    folder = reports / run_id
    folder.mkdir()
    (folder / "report.html").write_text("<html>all green, approved</html>")
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "outcome": "ok", "signing": {"fingerprint": None}}))
    sums = subprocess.run("sha256sum report.html run.json", shell=True, cwd=folder, capture_output=True, text=True,
                          check=True).stdout
    (folder / "SHA256SUMS").write_text(sums)
    if key:
        (folder / "SHA256SUMS.sig").write_text(sign(sums.encode(), key))
    return folder


def test_a_back_dated_unsigned_folder_off_the_chain_is_named_whatever_its_date(reports, key):
    forged_folder(reports, "20200101T000000Z-full")
    _, problems = audit(reports, key.fingerprint)
    named = [p for folder, p in problems if folder == "20200101T000000Z-full"]
    assert any(p.startswith("not signed by the trusted key") for p in named), problems
    assert any(p.startswith("inserted: not on the chain") for p in named), problems
    assert problems[0][0] == "20200101T000000Z-full"


def test_an_unsigned_folder_on_the_chain_is_named_when_a_key_is_trusted(tmp_path, key):
    reports = tmp_path / "reports"
    make_run(reports, RUNS[0], key)
    make_run(reports, RUNS[1], None)  # on the chain, but written without the key
    make_run(reports, RUNS[2], key)
    assert first_problem(reports, key) == (RUNS[1], f"not signed by the trusted key {key.fingerprint} (unsigned)")


def test_the_newest_runs_removed_with_the_head_rewritten_show_against_the_head_noted_earlier(reports, key):
    from groundwork.audit import head_line

    noted = head_line(reports)
    assert noted.startswith(RUNS[-1] + ":") and len(noted.split(":")[1]) == 64
    assert audit(reports, key.fingerprint, expect_head=noted)[1] == []
    for run in RUNS[-2:]:
        shutil.rmtree(reports / run)
    previous = json.loads((reports / RUNS[1] / "run.json").read_text())
    digest = hashlib.sha256((reports / RUNS[1] / "SHA256SUMS").read_bytes()).hexdigest()
    (reports / ".chain-head").write_text(json.dumps({"run": RUNS[1], "sha256sums": digest}))
    assert previous["chain"]["previous_run"] == RUNS[0]
    assert audit(reports, key.fingerprint)[1] == []  # nothing in the folder itself shows it
    _, problems = audit(reports, key.fingerprint, expect_head=noted)
    assert problems == [(RUNS[-1], f"the head noted earlier, {RUNS[-1]}, is not on the chain any more: it or the "
                                   "runs after it were removed and .chain-head rewritten")]


def audit_cli(*args: str):
    from tests.conftest import PROJECT
    return subprocess.run([sys.executable, str(PROJECT / "runbooks" / "audit.py"), *args], capture_output=True,
                          text=True)


def test_without_a_trusted_key_the_history_is_unverified_and_audit_exits_9(key, tmp_path):
    # A whole history written again and signed with another key: checksums, signatures and chain agree.
    (tmp_path / "other").mkdir()
    other = make_signing_key(tmp_path / "other")
    forged = tmp_path / "forged"
    for run in RUNS:
        make_run(forged, run, other)
    config = tmp_path / "no-key.yaml"
    config.write_text("groundwork: {}\n")
    done = audit_cli("--reports", str(forged), "-c", str(config))
    assert done.returncode == 9 and "UNVERIFIED: no trusted key" in done.stderr, done
    # The trusted key, from the auditor's own copy, names every re-signed folder.
    pub = tmp_path / "operator.pub"
    pub.write_text(key.public_line + "\n")
    done = audit_cli("--reports", str(forged), "-c", str(config), "--key", str(pub))
    assert done.returncode == 8, done
    assert f"FIRST PROBLEM: {RUNS[0]}: not signed by the trusted key {key.fingerprint}" in done.stdout, done
    assert f"HEAD: {RUNS[-1]}:" in done.stdout
    accepted = audit_cli("--reports", str(forged), "-c", str(config), "--accept-unverified")
    assert accepted.returncode == 0 and "UNVERIFIED" in accepted.stdout, accepted


def test_a_signature_made_for_another_namespace_is_refused(tmp_path, key):
    """ssh-keygen's own signature of the same SHA256SUMS with the same key, for another purpose (namespace
    "file"): a signature made for something else never vouches for a run folder."""
    key_file = tmp_path / "signing_key"  # the key the fixture made there
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("0" * 64 + "  report.html\n")
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key_file), "-n", "file", str(sums)], check=True,
                   capture_output=True)
    with pytest.raises(SignatureError, match="signed for namespace 'file'"):
        verify(sums.read_bytes(), (tmp_path / "SHA256SUMS.sig").read_text())
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key_file), "-n", "groundwork-run", str(sums)],
                   check=True, capture_output=True, input=b"y\n")
    assert verify(sums.read_bytes(), (tmp_path / "SHA256SUMS.sig").read_text()) == key.fingerprint
