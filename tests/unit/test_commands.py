"""The `groundwork` command: a verb per runbook, stages picked by name and run in pipeline order, and the same
refusals and exit codes as the runbooks."""

import argparse
import os
import subprocess
import sys

import pytest

from groundwork import commands
from groundwork.tasks.pipeline import PIPELINE
from tests.conftest import PROJECT


def names(stages) -> list[str]:
    return [s.name for s in stages]


def test_run_picks_the_named_stages_and_parts_in_pipeline_order():
    args = argparse.Namespace(stage=["vip", "dns", "docker"])
    assert names(commands._stages_named(args)) == ["dns_primary", "dns_secondary", "dnsmasq", "resolver",
                                                   "docker", "vip"]
    assert names(commands._stages_named(argparse.Namespace(stage=[]))) == names(PIPELINE)


@pytest.mark.parametrize("stages, runbook", [([], "full"), (["dns"], "dns"), (["dns", "dns"], "dns"),
                                             (["vip"], "run"), (["dns", "etcd"], "run")])
def test_a_run_is_named_as_the_runbook_it_stands_for(stages, runbook):
    assert commands._runbook_of_run(argparse.Namespace(stage=stages)) == runbook


def test_every_runbook_stands_for_a_verb():
    runbooks = {p.stem for p in (PROJECT / "runbooks").glob("*.py") if not p.name.startswith("_")}
    assert runbooks == set(commands.RUNBOOKS)
    for verb, *_ in commands.RUNBOOKS.values():
        assert verb in commands.VERBS or verb == "audit"


def groundwork(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "groundwork", *args], capture_output=True, text=True,
                          cwd=cwd or PROJECT, timeout=60, env={**os.environ, **(env or {})})


def test_unknown_verbs_and_stages_and_a_replace_without_confirmation_are_usage_errors(tmp_path):
    assert groundwork().returncode == 2 and "verbs:" in groundwork().stdout
    unknown = groundwork("frobnicate")
    assert unknown.returncode == 2 and "unknown verb 'frobnicate'" in unknown.stderr
    stage = groundwork("run", "dsn")
    assert stage.returncode == 2 and "'dsn' is not a stage" in stage.stderr
    replace = groundwork("replace-ca", cwd=tmp_path)
    assert replace.returncode == 2 and "--confirm-replace-ca" in replace.stderr


def test_certs_renew_refuses_a_name_it_does_not_renew_and_options_without_renew(tmp_path):
    """Exit 2 before any host is contacted, naming what it renews."""
    unknown = groundwork("certs", "renew", "--name", "web-peer")
    assert unknown.returncode == 2, unknown.stderr
    assert "--name web-peer: not a certificate groundwork renews" in unknown.stderr
    assert "etcd-peer, client" in unknown.stderr
    alone = groundwork("certs", "--within", "60")
    assert alone.returncode == 2 and "go with `certs renew`" in alone.stderr
    assert names(commands._certs_stages(argparse.Namespace(action="renew", name=[], within=30))) == [
        "etcd_certs", "etcd", *[s.name for s in PIPELINE if s.name.startswith("k8s") or s.name == "pod_network"]]
    assert commands._certs_stages(argparse.Namespace(action=None, name=[], within=30)) == []


def test_the_config_is_the_working_directorys_never_the_install_location(tmp_path):
    """From a folder without config.yaml the command says which file it looked for, and contacts nothing."""
    done = groundwork("run", "--dry-run", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert str(tmp_path / "config.yaml") in done.stderr
    elsewhere = tmp_path / "elsewhere" / "site.yaml"
    done = groundwork("run", "--dry-run", cwd=tmp_path, env={"GROUNDWORK_CONFIG": str(elsewhere)})
    assert done.returncode == 3 and str(elsewhere) in done.stderr
