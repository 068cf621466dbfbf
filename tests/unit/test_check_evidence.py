"""The verification pass gathers its checks' evidence in one script per host: each command's exit status,
stdout and stderr kept apart, each secret reaching only its own command, results handed out in order."""

from groundwork.remote import Masker
from groundwork.verify import GatheredLooks, Look, looks_script, parse_looks


def gather(local_remote, looks):
    done = local_remote.run(looks_script(looks), stdin=b"".join(lk.stdin for lk in looks), check=False)
    return parse_looks(looks, done.stdout, Masker(["s3cret"]), done.duration)


def test_each_look_keeps_its_own_status_output_and_stdin(local_remote):
    looks = [Look("echo out; echo err >&2; exit 3"), Look("cat", b"s3cret"), Look("cat"), Look("cat", b"two"),
             Look("printf '@@gw-look 0 0\\n'")]  # output that looks like a mark fakes nothing
    results = gather(local_remote, looks)
    # the secret read back is masked as it would be in a report
    assert [(r.rc, r.stdout, r.stderr) for r in results] == [
        (3, "out\n", "err\n"), (0, "********", ""), (0, "", ""), (0, "two", ""), (0, "@@gw-look 0 0\n", "")]
    assert "s3cret" not in "".join(local_remote.executed)  # on stdin only, never in the script


def test_a_look_the_output_does_not_have_is_left_to_the_check(local_remote):
    results = parse_looks([Look("true"), Look("false")], "@@gw-look 0 0\n\n\n", Masker(), 0.0)
    assert results[0].rc == 0 and results[1] is None


def test_results_are_handed_out_in_order_then_the_last_one_is_shared(local_remote):
    looks = [Look("login", b"pw"), Look("login", b"wrong"), Look("login", b"pw"), Look("info")]
    gathered = GatheredLooks(looks, gather(local_remote, [Look("echo first"), Look("echo refused; exit 1"),
                                                          Look("echo again"), Look("echo info")]))
    assert gathered.take("login", b"pw").stdout == "first\n"
    assert gathered.take("login", b"wrong").rc == 1
    assert gathered.take("login", b"pw").stdout == "again\n"
    assert gathered.take("info", b"").stdout == gathered.take("info", b"").stdout == "info\n"
    assert gathered.take("not listed", b"") is None  # the check runs it itself


def test_a_check_declares_its_reads_in_every_form():
    """A command, a Probe, a Look, a function of the host or of host and session, a list, or None."""
    from types import SimpleNamespace

    from groundwork.facts import os_info
    from groundwork.verify import declared_looks, reads

    @reads("uname -r", os_info(), Look("cat", b"pw", wave=1), lambda host: f"echo {host.name}",
           lambda host, session: [f"echo {session.run_id}", "true"], lambda host: None)
    def check(host, probe):
        pass
    host, session = SimpleNamespace(name="h1"), SimpleNamespace(run_id="r9")
    assert declared_looks(check, host, session) == [Look("uname -r"), Look(os_info().script), Look("cat", b"pw", 1),
                                                   Look("echo h1"), Look("echo r9"), Look("true")]


def test_a_read_two_checks_declare_runs_once_and_each_check_is_held_to_its_own(local_remote, monkeypatch):
    """The gather runs a shared read once per host; a check's command outside its own @reads is named
    undeclared, one of a check that @acts is not, and every command of a check that declares nothing is."""
    import types
    from types import SimpleNamespace

    from groundwork import verify
    from groundwork.verify import CheckSession, acts, reads

    module = types.ModuleType("groundwork.checks.test_example")
    module.test_one = reads("echo shared", lambda host: f"echo {host.name}")(lambda host, probe: None)
    module.test_one.__name__ = "test_one"
    module.test_two = reads("echo shared")(lambda host, probe: None)
    module.test_two.__name__ = "test_two"
    module.test_three = acts(lambda host, probe: None)
    module.test_three.__name__ = "test_three"
    module.test_four = lambda host, probe: None
    module.test_four.__name__ = "test_four"
    monkeypatch.setattr(verify, "check_modules", lambda names: [module])
    host = SimpleNamespace(name="h1", groups=("proxy",))
    run = SimpleNamespace(nr=None, inventory=None, targets=[host], masker=Masker(), meta=None, record=None,
                          progress=None, check_modules=None, secrets={})
    session = CheckSession(run)
    session._remotes["h1"] = local_remote
    session.gather_evidence()
    assert len(local_remote.executed) == 1 and local_remote.executed[0].count("echo shared") == 1

    def probe(check: str):
        undeclared: list[str] = []
        return session.probe_for(host, [], f"groundwork.checks.test_example::{check}", undeclared), undeclared
    two, undeclared = probe("test_two")
    assert two.run("echo shared").stdout == "shared\n" and undeclared == []
    assert two.run("echo h1").stdout == "h1\n" and undeclared == ["echo h1"]  # test_one's read, not test_two's
    assert len(local_remote.executed) == 1  # both taken from the gather
    three, undeclared = probe("test_three")
    three.run("echo acting")
    assert undeclared == []
    four, undeclared = probe("test_four")
    four.run("echo unread")
    assert undeclared == ["echo unread"]
