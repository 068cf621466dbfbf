"""One run at a time per inventory, with a message naming the run that holds it."""

import os

import pytest

from groundwork.runlock import acquire
from tests.conftest import copy_seed_inventory, run_runbook
from tests.unit.test_cli_refuses_bad_inventory import Listener, loopback_inventory


def test_a_second_run_on_the_same_inventory_is_refused_naming_the_first(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDWORK_REGISTRY_PASSWORD", "unit-test")
    listener = Listener()
    inventory = loopback_inventory(tmp_path, listener.port)
    held = acquire(inventory, {"user": "alice", "runbook": "full", "started": "2026-11-23T20:00:00+00:00"})
    try:
        done = run_runbook("-i", str(inventory), "--reports", str(tmp_path / "reports"))
        assert done.returncode == 7, done.stderr
        assert f"another groundwork run is working on the inventory {inventory}" in done.stderr
        assert "user alice, runbook full" in done.stderr and "pid " in done.stderr
        assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
    finally:
        held.close()
    assert listener.connections == 0
    # Released (as by the holder's exit): the next run goes ahead, to the stand-in sshd (no real one: exit 4).
    done = run_runbook("-i", str(inventory), "--reports", str(tmp_path / "reports"), "-H", "hdss7-11",
                       "--no-verify")
    assert done.returncode == 4, done.stderr
    assert listener.connections >= 1


def test_another_inventory_is_not_held(tmp_path):
    a, b = copy_seed_inventory(tmp_path / "a"), copy_seed_inventory(tmp_path / "b")
    held = acquire(a, {"runbook": "full"})
    try:
        acquire(b, {"runbook": "full"}).close()
    finally:
        held.close()


def test_the_lock_file_is_never_written_through_a_link_another_user_planted(tmp_path, monkeypatch):
    from groundwork import runlock

    monkeypatch.setattr(runlock.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(runlock.os, "access", lambda path, mode: False)  # no /run/lock: the temp folder
    inventory = copy_seed_inventory(tmp_path / "a")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    folder = tmp_path / f"groundwork-{os.getuid()}"
    folder.mkdir(mode=0o700)
    runlock.lock_path(inventory).symlink_to(victim)  # the name is predictable
    with pytest.raises(runlock.LockedError, match="cannot open the lock file"):
        acquire(inventory, {"runbook": "full"})
    assert victim.read_text() == "precious\n"
    # A folder open to others (where anyone could plant the link) is refused as a whole.
    runlock.lock_path(inventory).unlink()
    folder.chmod(0o777)
    with pytest.raises(runlock.LockedError, match="is not a private folder of this user"):
        acquire(inventory, {"runbook": "full"})
    folder.rmdir()
    folder.symlink_to(tmp_path)
    with pytest.raises(runlock.LockedError, match="is not a private folder of this user"):
        acquire(inventory, {"runbook": "full"})
