"""The remote layer's shell scripts, run for real on this machine through a local transport."""

import base64
import os
import stat

import pytest

from groundwork import facts as probes
from groundwork.changes import DesiredFile, file_changes, wanted_digests
from groundwork.context import RunContext
from groundwork.remote import Masker, RemoteError, unified_diff


def test_run_returns_exit_status_and_keeps_stderr_apart(local_remote):
    result = local_remote.run("echo out; echo err >&2; exit 7", check=False)
    assert (result.rc, result.stdout, result.stderr) == (7, "out\n", "err\n")
    with pytest.raises(RemoteError, match=r"exit 7\): err"):
        local_remote.run("echo err >&2; exit 7")


def test_write_creates_file_with_mode_and_returns_diff(local_remote, tmp_path):
    target = tmp_path / "etc" / "app.conf"
    written = local_remote.write_file(str(target), b"a = 1\n", mode="0640")
    assert target.read_bytes() == b"a = 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert written.changed and written.backup is None
    assert "+a = 1" in written.diff and "/dev/null" in written.diff


def test_rewrite_keeps_a_dated_backup_and_leaves_no_temp_file(local_remote, tmp_path):
    target = tmp_path / "app.conf"
    target.write_bytes(b"a = 1\n")
    written = local_remote.write_file(str(target), b"a = 2\n")
    assert target.read_bytes() == b"a = 2\n"
    assert written.backup and open(written.backup, "rb").read() == b"a = 1\n"
    assert written.backup.startswith(str(tmp_path / "backups") + str(target) + ".")
    assert "-a = 1\n+a = 2" in written.diff
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gw-tmp")] == []


def test_failed_validation_leaves_the_old_file_in_place(local_remote, tmp_path):
    target = tmp_path / "app.json"
    target.write_bytes(b'{"ok": true}\n')
    with pytest.raises(RemoteError, match="validation failed"):
        local_remote.write_file(str(target), b"{not json", validate="python3 -m json.tool {path}")
    assert target.read_bytes() == b'{"ok": true}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gw-tmp")] == []


def test_an_upload_cut_short_is_not_installed(local_remote, tmp_path, monkeypatch):
    """A transfer that ends early (a dropped link) must never become a whole-looking truncated file."""
    target = tmp_path / "app.conf"
    target.write_bytes(b"old\n")
    exec_ = local_remote._exec
    monkeypatch.setattr(local_remote, "_exec", lambda command, stdin, *a: exec_(command, stdin[:len(stdin) // 2], *a))
    with pytest.raises(RemoteError, match="upload cut short: 4 of 8 bytes arrived"):
        local_remote.write_file(str(target), b"new one\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gw-tmp")] == []


def test_read_files_in_one_round_trip(local_remote, tmp_path):
    (tmp_path / "a").write_bytes(b"\x00binary\nline")
    before = len(local_remote.log)
    got = local_remote.read_files([str(tmp_path / "a"), str(tmp_path / "missing")])
    assert got == {str(tmp_path / "a"): b"\x00binary\nline", str(tmp_path / "missing"): None}
    assert len(local_remote.log) == before + 1


def test_values_are_quoted(local_remote, tmp_path):
    odd = tmp_path / "it's $(touch pwned) a file"
    local_remote.write_file(str(odd), b"x\n")
    assert odd.read_bytes() == b"x\n"
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_gather_runs_every_probe_in_one_round_trip(local_remote, tmp_path):
    conf = tmp_path / "f.conf"
    conf.write_bytes(b"hello\n")
    every = [probes.os_info(), probes.hostname(), probes.packages(["dpkg", "no-such-package"]),
              probes.files([str(conf), str(tmp_path / "absent")]), probes.sysctl(["kernel.ostype", "no.such.key"]),
              probes.services(["no-such-unit"]), probes.paths_exist([str(conf), "/nonexistent"]),
              probes.commands(["sh", "no-such-command"])]
    facts = local_remote.gather(every)
    assert len(local_remote.log) == 1
    assert facts["os"].family == "debian" and facts["os"].kernel == os.uname().release
    assert facts["hostname"].running == os.uname().nodename
    assert facts["packages"]["dpkg"] and facts["packages"]["no-such-package"] is None
    info = facts["files"][str(conf)]
    assert info.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert (info.owner, info.mode) == ("root", format(stat.S_IMODE(conf.stat().st_mode), "o"))
    assert facts["files"][str(tmp_path / "absent")] is None
    assert facts["sysctl"] == {"kernel.ostype": "Linux", "no.such.key": None}
    assert facts["paths"] == {str(conf)} and facts["commands"] == {"sh"}


def test_masker_hides_secrets_in_output(local_remote):
    local_remote.masker = Masker(["s3cret-pw"])
    result = local_remote.run("echo the password is s3cret-pw", check=False)
    assert "s3cret-pw" not in result.stdout and "********" in result.stdout


def test_sensitive_file_diff_shows_digests_not_content():
    diff = unified_diff("/opt/certs/ca-key.pem", b"OLD KEY", b"NEW KEY", sensitive=True)
    assert "OLD KEY" not in diff and "NEW KEY" not in diff and "sensitive content not shown" in diff


def test_failed_activation_puts_written_files_back(local_remote, tmp_path):
    from groundwork.changes import CommandChange, DesiredFile, FileChange, PlanFailed, apply_plan

    existing, created = tmp_path / "existing.conf", tmp_path / "created.conf"
    existing.write_bytes(b"old\n")
    plan = [FileChange(DesiredFile(str(existing), b"new\n"), b"old\n", None),
            FileChange(DesiredFile(str(created), b"new\n"), None, None),
            CommandChange("reload the service", ["echo 'bad config at line 3' >&2; exit 1"], "",
                          undo_files_on_failure=True, recover=[f"echo recovered > {tmp_path / 'recovered'}"])]
    with pytest.raises(PlanFailed) as failed:
        apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=False, masker=local_remote.masker))
    assert existing.read_bytes() == b"old\n" and not created.exists()
    assert (tmp_path / "recovered").read_text() == "recovered\n"
    assert "bad config at line 3" in str(failed.value)
    assert f"previous files restored ({existing}, {created})" in str(failed.value)
    assert [c.applied for c in failed.value.report.changes] == [True, True, False]


def test_one_gather_reads_only_differing_files_and_never_logs_a_sensitive_one(local_remote, tmp_path):
    secret, plain, same = tmp_path / "secret.yml", tmp_path / "plain.conf", tmp_path / "same.conf"
    secret.write_text("password: hunter2\n")
    plain.write_text("old\n")
    same.write_text("as wanted\n")
    wanted = [DesiredFile(str(secret), b"password: other\n", sensitive=True), DesiredFile(str(plain), b"new\n"),
              DesiredFile(str(same), b"as wanted\n")]
    digests = wanted_digests(wanted)
    facts = local_remote.gather([
        probes.files([str(plain), str(same)], read_unless=digests),
        probes.files([str(secret)], read_unless=digests, key="secrets", sensitive=True)])
    assert len(local_remote.log) == 1  # one round trip
    assert facts["files"][str(same)].content is None  # its digest is the wanted one: not read
    changes = file_changes(wanted, {**facts["files"], **facts["secrets"]})
    assert [c.before for c in changes] == [b"password: hunter2\n", b"old\n"]
    # Files are read as base64: look for that form too, or "not in the log" could not fail.
    logged = "".join(c.stdout + c.command for c in local_remote.log).replace("\n", "")
    encoded = base64.b64encode(b"password: hunter2\n").decode()
    assert "hunter2" not in logged and encoded not in logged
    assert "hunter2" not in changes[0].diff


def test_a_differing_file_whose_content_was_not_gathered_is_a_bug_not_a_creation(local_remote, tmp_path):
    plain = tmp_path / "plain.conf"
    plain.write_text("old\n")
    current = local_remote.gather([probes.files([str(plain)])])["files"]  # digests only
    with pytest.raises(ValueError, match="its content was not gathered"):
        file_changes([DesiredFile(str(plain), b"new\n")], current)


def test_the_password_check_probe_takes_the_password_on_stdin_only(local_remote, tmp_path):
    good, other = tmp_path / "good", tmp_path / "other"
    password = "it's a \"pass\" $(touch pwned)"
    local_remote.run(f"htpasswd -c -B -i {good} admin", stdin=password.encode())
    local_remote.run(f"htpasswd -c -B -i {other} admin", stdin=b"something else")
    local_remote.executed.clear()
    files = [str(good), str(other), str(tmp_path / "none")]
    checks = local_remote.gather([probes.os_info(), probes.password_checks(files, "admin", password)])["password_checks"]
    assert checks == {str(good): True, str(other): False, str(tmp_path / "none"): None}
    assert password not in "".join(local_remote.executed) and not (tmp_path / "pwned").exists()


def test_backups_are_pruned_to_the_newest_ten_without_splitting_names(local_remote, tmp_path):
    target = tmp_path / "etc" / "a b.conf"  # a space: pruning by lines of `ls` would delete ".../a" and "b.conf..."
    target.parent.mkdir()
    backups = tmp_path / "backups" / str(target.parent).lstrip("/")
    backups.mkdir(parents=True)
    decoy = backups / "a"
    decoy.write_text("not a backup of a b.conf\n")
    for n in range(13):
        local_remote.write_file(str(target), f"version {n}\n".encode())
    kept = sorted(p for p in backups.iterdir() if p.name.startswith("a b.conf."))
    assert len(kept) == 10
    assert sorted(p.read_text() for p in kept) == sorted(f"version {n}\n" for n in range(2, 12))
    assert decoy.read_text() == "not a backup of a b.conf\n"


def test_files_written_by_code_are_put_back_when_the_activation_fails(local_remote, tmp_path):
    """A certificate installed by an ActionChange goes back with the declared files: the service is not left
    on a half-moved configuration that every rerun repeats."""
    from groundwork.changes import ActionChange, CommandChange, PlanFailed, apply_plan

    cert, made = tmp_path / "peer.pem", tmp_path / "new-key.pem"
    cert.write_bytes(b"old certificate\n")

    def install(r):
        r.write_file(str(cert), b"new certificate\n")
        r.write_file(str(made), b"new key\n", mode="0600")
    plan = [ActionChange("install the certificates issued in this run", "", install),
            CommandChange("restart the service", ["echo 'peers refuse the new CA' >&2; exit 1"], "",
                          undo_files_on_failure=True, recover=["true"])]
    with pytest.raises(PlanFailed) as failed:
        apply_plan(local_remote, plan, RunContext(inventory=None, dry_run=False, masker=local_remote.masker))
    assert cert.read_bytes() == b"old certificate\n" and not made.exists()
    assert f"previous files restored ({cert}, {made})" in str(failed.value)
