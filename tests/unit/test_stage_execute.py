"""What the runner does for every declared stage (Stage.execute), run for real on this machine through the local
transport: handed-over keys masked before the gather, what a stage hands on read again after its plan changed
the host, and the settling wait never run in a dry run."""

import shlex

from groundwork.changes import CommandChange
from groundwork.context import RunContext
from groundwork.facts import Probe
from groundwork.inventory import load_inventory
from groundwork.remote import Masker
from groundwork.stages import Stage
from tests.conftest import copy_seed_inventory

HANDED_KEY = "-----BEGIN PRIVATE KEY----- handed over by an earlier stage"


def _host_and_ctx(tmp_path, dry_run=False):
    inventory = load_inventory(copy_seed_inventory(tmp_path))
    return inventory.ops_host, RunContext(inventory=inventory, dry_run=dry_run, masker=Masker())


def _file_probe(path) -> Probe:
    return Probe("text", f"cat {shlex.quote(str(path))} 2>/dev/null; true", str.strip)


def test_a_key_handed_over_is_masked_before_the_stage_reads_anything(local_remote, tmp_path):
    host, ctx = _host_and_ctx(tmp_path)
    local_remote.masker = ctx.masker
    copy = tmp_path / "client-key.pem"
    copy.write_text(HANDED_KEY)  # the host already holds the key the stage was handed
    stage = Stage(name="uses_a_key", title="t", groups=None, handed_secrets=lambda h, c: [HANDED_KEY],
                  probes=lambda h, c: [_file_probe(copy)], decide=lambda h, facts, c, notes: [])
    stage.execute(local_remote, host, ctx)
    gathered = [r for r in local_remote.log if "client-key.pem" in r.command]
    assert gathered and all(HANDED_KEY not in r.stdout for r in gathered)
    assert all(HANDED_KEY not in r.stdout + r.stderr for r in local_remote.log)


def test_what_a_stage_hands_on_is_read_again_after_its_plan_changed_the_host(local_remote, tmp_path):
    host, ctx = _host_and_ctx(tmp_path)
    issued = tmp_path / "issued.pem"
    seen = {}

    def hand_off(h, before, after, c):
        seen.update(before=before["text"], after=after["text"])
        return {"issued": after["text"]}

    stage = Stage(name="issues", title="t", groups=None, probes=lambda h, c: [_file_probe(issued)],
                  decide=lambda h, facts, c, notes: [] if facts["text"] else [
                      CommandChange("issue it", [f"echo new > {shlex.quote(str(issued))}"], "")],
                  hand_off=hand_off)
    report = stage.execute(local_remote, host, ctx)
    assert report.changed and seen == {"before": "", "after": "new"} and ctx.handoff["issued"] == "new"
    # Nothing to do the second time: handed on from the one gather.
    gathers = len(local_remote.log)
    assert not stage.execute(local_remote, host, ctx).changed
    assert ctx.handoff["issued"] == "new" and len(local_remote.log) == gathers + 1


def test_a_dry_run_hands_on_what_it_read_and_never_settles(local_remote, tmp_path):
    host, ctx = _host_and_ctx(tmp_path, dry_run=True)
    marker = tmp_path / "settled"
    stage = Stage(name="waits", title="t", groups=None, probes=lambda h, c: [_file_probe(marker)],
                  decide=lambda h, facts, c, notes: [CommandChange("change it", ["true"], "")],
                  settle=lambda h, facts, c: ("settling", f"touch {shlex.quote(str(marker))}", "it settled"),
                  hand_off=lambda h, before, after, c: {"same": before is after})
    report = stage.execute(local_remote, host, ctx)
    assert not marker.exists() and "it settled" not in report.notes and ctx.handoff["same"] is True
    wet_host, wet_ctx = _host_and_ctx(tmp_path / "wet")
    report = stage.execute(local_remote, wet_host, wet_ctx)
    assert marker.exists() and report.notes[-1] == "it settled"
