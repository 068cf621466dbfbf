"""--verbose: a stage's Nornir results as nornir-utils prints them, per host, with diffs and commands."""

import io

from nornir.core.task import AggregatedResult, MultiResult, Result

from groundwork.changes import ChangeRecord, StageReport
from groundwork.remote import CommandResult
from groundwork.progress import Progress
from groundwork.record import RunRecord


def test_verbose_prints_each_hosts_diff_notes_and_commands_with_exit_status(capsys):
    report = StageReport(changes=[ChangeRecord("update /etc/docker/daemon.json", "-old\n+new\n", applied=True)],
                         notes=["bip 172.7.21.1/24"],
                         commands=[CommandResult("systemctl restart docker", 0, "", "", 1.25)])
    results = AggregatedResult("docker")
    results["hdss7-21"] = MultiResult("docker")
    results["hdss7-21"].append(Result(host=None, name="docker", changed=True, diff=report.diff,
                                      transcript=report.transcript()))
    Progress(RunRecord("r", "docker", False, ["hdss7-21"], "now"), False, out=io.StringIO(),
             verbose=True).nornir_results(results)
    shown = capsys.readouterr().out
    assert "* hdss7-21 ** changed : True" in shown
    assert "-old\n+new" in shown and "bip 172.7.21.1/24" in shown
    assert "$ systemctl restart docker  (exit 0, 1.25s)" in shown
    assert "\x1b[" not in shown  # not a terminal: no colour codes
    print("after")
    assert capsys.readouterr().out == "after\n"  # stdout is not left wrapped
