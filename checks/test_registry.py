"""The registry, checked as the seeds check it: docker login, push a canary, pull it on every compute host."""

from shlex import quote

import pytest

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


def login_command(name: str) -> str:
    return f"docker login {quote(name)} -u admin --password-stdin"


def login(probe, name: str, password: str):
    return probe.run(login_command(name), stdin=password.encode())


def canary(reg, run_id: str) -> str:
    return f"{reg.name}/{reg.project}/canary:{run_id}"


def curl_config(password: str) -> bytes:
    return f'user = "admin:{password}"\n'.encode()


def registry_api(reg, path: str) -> str:
    return f"curl -s -K - {quote(f'http://{reg.name}/v2/{path}')}"


def evidence(host, session) -> list:
    """What the checks below run, in their order: on the ops host login, the canary built and pushed, the
    catalog, a wrong password; then (wave 1, once the push is done everywhere) login and pull on each compute
    host. Secrets go on stdin."""
    reg, password = session.inventory.defaults.registry, session.secrets["registry_password"]
    run_id = session.meta.run_id
    image = quote(canary(reg, run_id))
    looks = []
    if "ops" in host.groups:
        looks += [Look(login_command(reg.name), password.encode()), f"tar -c -T /dev/null | docker import - {image}",
                  f"docker push {image}", Look(registry_api(reg, "_catalog"), curl_config(password)),
                  Look(registry_api(reg, f"{reg.project}/canary/tags/list"), curl_config(password)),
                  Look(login_command(reg.name), (password + "-wrong").encode()),
                  Look(login_command(reg.name), password.encode())]
    if "master_compute" in host.groups and session.inventory.ops_host.name in {h.name for h in session.targets}:
        looks += [Look(login_command(reg.name), password.encode(), wave=1), Look(f"docker pull {image}", wave=1)]
    return looks


@pytest.mark.groups("ops")
def test_login_and_push_a_canary_image(host, probe, registry):
    """docker login harbor.od.com works, and a canary image built without network is pushed"""
    reg, password, run_id = registry
    assert login(probe, reg.name, password).rc == 0, "docker login refused the admin credentials"
    image = canary(reg, run_id)
    built = probe.run(f"tar -c -T /dev/null | docker import - {quote(image)}")
    assert built.rc == 0, built.stderr
    pushed = probe.run(f"docker push {quote(image)}")
    assert pushed.rc == 0, pushed.stderr.strip().splitlines()[-1:] or pushed.stdout


@pytest.mark.groups("ops")
def test_catalog_lists_the_canary(host, probe, registry):
    """the registry's catalog lists the canary, and its tags the run's tag"""
    reg, password, run_id = registry
    catalog = probe.run(registry_api(reg, "_catalog"), stdin=curl_config(password)).stdout
    tags = probe.run(registry_api(reg, f"{reg.project}/canary/tags/list"), stdin=curl_config(password)).stdout
    assert f'"{reg.project}/canary"' in catalog and f'"{run_id}"' in tags


@pytest.mark.groups("master_compute")
def test_the_canary_pulls_on_every_compute_host(host, probe, registry, canary_pushed):
    """the canary pushed from the ops host is pulled here"""
    reg, password, run_id = registry
    assert login(probe, reg.name, password).rc == 0, "docker login refused the admin credentials"
    pulled = probe.run(f"docker pull {quote(canary(reg, run_id))}")
    assert pulled.rc == 0, pulled.stderr.strip()


@pytest.mark.groups("ops")
def test_a_wrong_password_is_refused(host, probe, registry):
    """a login with a wrong password is refused"""
    reg, password, _ = registry
    refused = login(probe, reg.name, password + "-wrong")
    assert refused.rc != 0 and "unauthorized" in (refused.stderr + refused.stdout).lower()
    login(probe, reg.name, password)  # leave the host logged in with the right credentials
