"""The registry, checked as the seeds check it: docker login, push a canary, pull it on every compute host.

Every login uses a throwaway docker configuration, removed when its command ends: the verification leaves no
registry credential on any host (the seeds' `docker login` stores one in /root/.docker/config.json)."""

from shlex import quote

import pytest

from groundwork.registry_client import curl_credentials, registry_api, registry_login
from groundwork.verify import SESSION_KEY, Look, reads


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


# What the checks below run, each a Look with its secret on stdin: on the ops host the canary built and pushed,
# the catalog and the canary's tags, a wrong password; then (wave 1, once the push is done everywhere) the pull
# on each compute host.

def credentials(session) -> tuple:
    return session.inventory.defaults.registry, session.secrets["registry_password"], session.meta.run_id


def push(host, session) -> Look:
    reg, password, run_id = credentials(session)
    return Look(push_command(reg, run_id), password.encode())


def listing(host, session) -> list[Look]:
    reg, password, _ = credentials(session)
    return [Look(registry_api(reg.name, "_catalog"), curl_credentials(password)),
            Look(registry_api(reg.name, f"{reg.project}/canary/tags/list"), curl_credentials(password))]


def pull(host, session) -> Look | None:
    """None when the ops host is not in the run: nothing was pushed to pull (the check skips)."""
    if session.inventory.ops_host.name not in {h.name for h in session.targets}:
        return None
    reg, password, run_id = credentials(session)
    return Look(pull_command(reg, run_id), password.encode(), wave=1)


def wrong_login(host, session) -> Look:
    reg, password, _ = credentials(session)
    return Look(login_only(reg), (password + "-wrong").encode())


@pytest.mark.groups("ops")
@reads(push)
def test_login_and_push_a_canary_image(host, probe, session):
    """docker login harbor.od.com works, and a canary image built without network is pushed"""
    pushed = probe.look(push(host, session))
    assert pushed.rc == 0, (pushed.stderr.strip().splitlines() or [pushed.stdout])[-1]


@pytest.mark.groups("ops")
@reads(listing)
def test_catalog_lists_the_canary(host, probe, session):
    """the registry's catalog lists the canary, and its tags the run's tag"""
    reg, _, run_id = credentials(session)
    catalog, tags = (probe.look(look).stdout for look in listing(host, session))
    assert f'"{reg.project}/canary"' in catalog and f'"{run_id}"' in tags


@pytest.mark.groups("master_compute")
@reads(pull)
def test_the_canary_pulls_on_every_compute_host(host, probe, session, canary_pushed):
    """the canary pushed from the ops host is pulled here"""
    pulled = probe.look(pull(host, session))
    assert pulled.rc == 0, pulled.stderr.strip()


@pytest.mark.groups("ops")
@reads(wrong_login)
def test_a_wrong_password_is_refused(host, probe, session):
    """a login with a wrong password is refused"""
    refused = probe.look(wrong_login(host, session))
    assert refused.rc != 0 and "unauthorized" in (refused.stderr + refused.stdout).lower()
