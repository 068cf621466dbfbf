"""The registry, checked as the seeds check it: docker login, push a canary, pull it on every compute host."""

from shlex import quote

import pytest

from groundwork.verify import SESSION_KEY


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


def login(probe, name: str, password: str):
    return probe.run(f"docker login {quote(name)} -u admin --password-stdin", stdin=password.encode())


@pytest.mark.groups("ops")
def test_login_and_push_a_canary_image(host, probe, registry):
    """docker login harbor.od.com works, and a canary image built without network is pushed"""
    reg, password, run_id = registry
    assert login(probe, reg.name, password).rc == 0, "docker login refused the admin credentials"
    image = f"{reg.name}/{reg.project}/canary:{run_id}"
    built = probe.run(f"tar -c -T /dev/null | docker import - {quote(image)}")
    assert built.rc == 0, built.stderr
    pushed = probe.run(f"docker push {quote(image)}")
    assert pushed.rc == 0, pushed.stderr.strip().splitlines()[-1:] or pushed.stdout


@pytest.mark.groups("ops")
def test_catalog_lists_the_canary(host, probe, registry):
    """the registry's catalog lists the canary, and its tags the run's tag"""
    reg, password, run_id = registry
    config = f'user = "admin:{password}"\n'.encode()
    catalog = probe.run(f"curl -s -K - {quote(f'http://{reg.name}/v2/_catalog')}", stdin=config).stdout
    tags = probe.run(f"curl -s -K - {quote(f'http://{reg.name}/v2/{reg.project}/canary/tags/list')}",
                     stdin=config).stdout
    assert f'"{reg.project}/canary"' in catalog and f'"{run_id}"' in tags


@pytest.mark.groups("master_compute")
def test_the_canary_pulls_on_every_compute_host(host, probe, registry, canary_pushed):
    """the canary pushed from the ops host is pulled here"""
    reg, password, run_id = registry
    assert login(probe, reg.name, password).rc == 0, "docker login refused the admin credentials"
    pulled = probe.run(f"docker pull {quote(f'{reg.name}/{reg.project}/canary:{run_id}')}")
    assert pulled.rc == 0, pulled.stderr.strip()


@pytest.mark.groups("ops")
def test_a_wrong_password_is_refused(host, probe, registry):
    """a login with a wrong password is refused"""
    reg, password, _ = registry
    refused = login(probe, reg.name, password + "-wrong")
    assert refused.rc != 0 and "unauthorized" in (refused.stderr + refused.stdout).lower()
    login(probe, reg.name, password)  # leave the host logged in with the right credentials
