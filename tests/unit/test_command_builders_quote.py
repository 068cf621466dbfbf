"""The shared command builders quote every value they put into a command: run for real through a local shell
with names that would split, expand or chain commands if they were not, each must act on exactly the names
given and run nothing else. (Settings that reach them are refused unless plain, test_inventory_refusals.py;
this is the second fence, and it must hold on its own.)"""

import getpass
import os

from groundwork.changes import apply_plan, create_directories, stop_and_disable, wait_until
from groundwork.context import RunContext
from groundwork.facts import ServiceInfo, Services
from groundwork.remote import Masker


def test_create_directories_makes_exactly_the_names_given_and_runs_nothing_else(local_remote, tmp_path,
                                                                               monkeypatch):
    root = tmp_path / "made"
    root.mkdir()
    monkeypatch.chdir(root)  # whatever an unquoted name would make by accident lands here too, and shows
    wanted = [f"{root}/{name}" for name in ("a b", "$(touch pwned)", "c;touch pwned2", "`touch pwned3`", "it's",
                                            "d&&touch pwned4")]
    plan = create_directories(wanted, set(), owner=getpass.getuser())
    apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=False, masker=Masker()))
    assert sorted(str(p) for p in root.iterdir()) == sorted(wanted)
    assert all(os.path.isdir(d) for d in wanted)


def test_a_wait_loops_failure_message_stays_one_word_of_data(local_remote, tmp_path):
    failure = f"nothing answered; $(touch {tmp_path}/pwned) `touch {tmp_path}/pwned2` it's \"done\""
    result = local_remote.run(wait_until("false", 0.2, failure), check=False)
    assert result.rc == 1 and result.stderr.strip() == failure
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_stop_and_disable_hands_systemctl_the_service_name_as_one_argument(local_remote, tmp_path, monkeypatch):
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "systemctl").write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {tmp_path}/args\n')
    (stubs / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stubs}:{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    name = "my app;touch pwned $(touch pwned2)"
    plan = stop_and_disable(Services({name: ServiceInfo(True, "active", "enabled")}), name)
    apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=False, masker=Masker()))
    assert (tmp_path / "args").read_text().splitlines() == ["disable", "--now", name]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
