"""The run's first gather, kept for every stage (facts.GatherCache): a stage's gather reads nothing live that
the first gather read, and after anything but a gather on any host every stage reads live again. Run for real
through the local transport: the files the probes read are this machine's."""

from groundwork import facts as probes
from groundwork.facts import GatherCache


def gathers(remote) -> list[str]:
    return [c.command for c in remote.log if "@@gw-probe" in c.command]


def first_gather(remote, cache, host, wanted):
    """What runner.gather_first does for one host: every probe in one round trip, kept by identity."""
    renamed = [probes.Probe(f"p{i}", p.script, p.parse, p.input) for i, p in enumerate(wanted)]
    out = remote.run(probes.gather_script(renamed), reads_only=True).stdout
    sections = probes.gathered_sections(out)
    cache.keep_first(host, [(p, sections[r.key]) for p, r in zip(wanted, renamed)], remote.log)


def test_a_stage_takes_what_the_first_gather_read_and_reads_only_the_rest(local_remote, tmp_path):
    conf, other = tmp_path / "a.conf", tmp_path / "b.conf"
    conf.write_text("first\n")
    other.write_text("other\n")
    cache = GatherCache()
    local_remote.cache, local_remote.host_name = cache, "hdss7-21"
    first_gather(local_remote, cache, "hdss7-21", [probes.contents([str(conf)])])
    conf.write_text("changed behind its back\n")  # a stage taking the kept text must not see this
    before = len(gathers(local_remote))
    facts = local_remote.gather([probes.contents([str(conf)])])
    assert facts["contents"][str(conf)] == b"first\n" and len(gathers(local_remote)) == before
    # A probe of the same key with another script was not in the first gather: read live.
    facts = local_remote.gather([probes.contents([str(other)])])
    assert facts["contents"][str(other)] == b"other\n" and len(gathers(local_remote)) == before + 1


def test_anything_but_a_gather_on_any_host_makes_every_host_read_live(local_remote, tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("first\n")
    cache = GatherCache()
    local_remote.cache, local_remote.host_name = cache, "hdss7-11"
    first_gather(local_remote, cache, "hdss7-11", [probes.contents([str(conf)])])
    first_gather(local_remote, cache, "hdss7-12", [probes.contents([str(conf)])])
    local_remote.run(f"echo second > {conf}")  # a change on hdss7-11: hdss7-12's probe may read this host
    assert cache.take("hdss7-12", [probes.contents([str(conf)])]) == {}
    assert local_remote.gather([probes.contents([str(conf)])])["contents"][str(conf)] == b"second\n"


def test_a_gather_that_began_before_a_change_elsewhere_is_not_kept():
    cache = GatherCache()
    probe = probes.contents(["/etc/x"])
    began = cache.generation
    cache.forget()  # another host changed something while this gather ran
    cache.keep("hdss7-21", [probe], {"contents": "stale"}, began)
    assert cache.take("hdss7-21", [probe]) == {}
    cache.keep("hdss7-21", [probe], {"contents": "fresh"}, cache.generation)
    assert cache.take("hdss7-21", [probe]) == {"contents": "fresh"}


def test_the_first_gathers_command_goes_on_record_once():
    cache = GatherCache()
    cache.keep_first("hdss7-21", [], ["the gather"])
    assert cache.first_log("hdss7-21") == ["the gather"] and cache.first_log("hdss7-21") == []


def test_a_files_probe_built_with_what_was_handed_over_takes_the_first_gathers_text_when_it_holds_enough(
        local_remote, tmp_path):
    """The first gather runs before an earlier stage hands over the certificates a stage compares its files with:
    what it read answers the stage's probe when it has the content of every file not as that probe wants."""
    import hashlib

    cert, conf = tmp_path / "cert.pem", tmp_path / "unit.conf"
    cert.write_text("the certificate\n")
    conf.write_text("the unit\n")
    digest = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (cert, conf)}
    stale = "0" * 64
    cache = GatherCache()
    local_remote.cache, local_remote.host_name = cache, "hdss7-21"
    # Built before the hand-over: the certificate compared with nothing (always read), the unit as wanted.
    first_gather(local_remote, cache, "hdss7-21", [probes.files([str(cert), str(conf)], read_unless={
        str(cert): stale, str(conf): digest[str(conf)]})])
    before = len(gathers(local_remote))
    # The stage's probe, with the certificate's digest handed over: every content it needs was read.
    facts = local_remote.gather([probes.files([str(cert)], read_unless={str(cert): digest[str(cert)]})])
    assert facts["files"][str(cert)].sha256 == digest[str(cert)] and len(gathers(local_remote)) == before
    # A probe that needs the unit's content, which the first gather skipped as wanted: read live.
    facts = local_remote.gather([probes.files([str(conf)], read_unless={str(conf): stale})])
    assert facts["files"][str(conf)].content == b"the unit\n" and len(gathers(local_remote)) == before + 1
    # A path the first gather did not list: read live.
    other = tmp_path / "other.conf"
    other.write_text("x")
    assert local_remote.gather([probes.files([str(other)], read_unless={})])["files"][str(other)] is not None
    assert len(gathers(local_remote)) == before + 2
