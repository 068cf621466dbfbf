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
