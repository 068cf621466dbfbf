"""The registry, checked as the seeds check it: docker login, push a canary, pull it on every compute host.

Every login uses a throwaway docker configuration, removed when its command ends: the verification leaves no
registry credential on any host (the seeds' `docker login` stores one in /root/.docker/config.json)."""

from shlex import quote

import pytest

from groundwork.registry_client import curl_credentials, registry_api, registry_login
from groundwork.verify import SESSION_KEY, Look


@pytest.fixture
def registry(request):
    session = request.config.stash[SESSION_KEY]
    return session.inventory.defaults.registry, session.secrets["registry_password"], session.meta.run_id


@pytest.fixture
def canary_pushed(request):
    """The pull check needs this run's canary, which the ops host's check pushes: only when it is targeted."""
    session = request.config.stash[SESSION_KEY]
    ops = session.inventory.ops_host.name
    if ops not in {h.name for h in session.targets}:
        pytest.skip(f"the ops host {ops} is not targeted, so no canary was pushed in this run")


def canary(reg, run_id: str) -> str:
    return f"{reg.name}/{reg.project}/canary:{run_id}"


def push_command(reg, run_id: str) -> str:
    image = quote(canary(reg, run_id))
    return registry_login(reg.name, f"tar -c -T /dev/null | docker import - {image} >/dev/null && docker push {image}")


def pull_command(reg, run_id: str) -> str:
    return registry_login(reg.name, f"docker pull {quote(canary(reg, run_id))}")


def login_only(reg) -> str:
    return registry_login(reg.name, "true")


def evidence(host, session) -> list:
    """What the checks below run, in their order: on the ops host the canary built and pushed, the catalog, a
    wrong password; then (wave 1, once the push is done everywhere) the pull on each compute host. Secrets go
    on stdin."""
    reg, password = session.inventory.defaults.registry, session.secrets["registry_password"]
    run_id = session.meta.run_id
    looks = []
    if "ops" in host.groups:
        looks += [Look(push_command(reg, run_id), password.encode()),
                  Look(registry_api(reg.name, "_catalog"), curl_credentials(password)),
                  Look(registry_api(reg.name, f"{reg.project}/canary/tags/list"), curl_credentials(password)),
                  Look(login_only(reg), (password + "-wrong").encode())]
    if "master_compute" in host.groups and session.inventory.ops_host.name in {h.name for h in session.targets}:
        looks += [Look(pull_command(reg, run_id), password.encode(), wave=1)]
    return looks


@pytest.mark.groups("ops")
def test_login_and_push_a_canary_image(host, probe, registry):
    """docker login harbor.od.com works, and a canary image built without network is pushed"""
    reg, password, run_id = registry
    pushed = probe.run(push_command(reg, run_id), stdin=password.encode())
    assert pushed.rc == 0, (pushed.stderr.strip().splitlines() or [pushed.stdout])[-1]


@pytest.mark.groups("ops")
def test_catalog_lists_the_canary(host, probe, registry):
    """the registry's catalog lists the canary, and its tags the run's tag"""
    reg, password, run_id = registry
    catalog = probe.run(registry_api(reg.name, "_catalog"), stdin=curl_credentials(password)).stdout
    tags = probe.run(registry_api(reg.name, f"{reg.project}/canary/tags/list"), stdin=curl_credentials(password)).stdout
    assert f'"{reg.project}/canary"' in catalog and f'"{run_id}"' in tags


@pytest.mark.groups("master_compute")
def test_the_canary_pulls_on_every_compute_host(host, probe, registry, canary_pushed):
    """the canary pushed from the ops host is pulled here"""
    reg, password, run_id = registry
    pulled = probe.run(pull_command(reg, run_id), stdin=password.encode())
    assert pulled.rc == 0, pulled.stderr.strip()


@pytest.mark.groups("ops")
def test_a_wrong_password_is_refused(host, probe, registry):
    """a login with a wrong password is refused"""
    reg, password, _ = registry
    refused = probe.run(login_only(reg), stdin=(password + "-wrong").encode())
    assert refused.rc != 0 and "unauthorized" in (refused.stderr + refused.stdout).lower()
