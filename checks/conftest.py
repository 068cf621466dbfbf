"""Hands every check its host and a probe that records evidence (see groundwork/verify.py).

A module's GROUPS names the groups whose hosts its checks run on; None (the default) means every host; its
`applies_to(host, inventory)`, where it has one, narrows them further.
A check's own `@pytest.mark.groups(...)` wins over its module's. A check declares what it reads on its host with
`@reads(...)` (or runs its commands as it goes, `@acts`): see groundwork/verify.py.
"""

import pytest

from groundwork.verify import SESSION_KEY


def pytest_generate_tests(metafunc):
    if "host" in metafunc.fixturenames:
        session = metafunc.config.stash[SESSION_KEY]
        marker = metafunc.definition.get_closest_marker("groups")
        groups = marker.args if marker else getattr(metafunc.module, "GROUPS", None)
        hosts = [h for h in session.targets if groups is None or any(g in h.groups for g in groups)]
        applies = getattr(metafunc.module, "applies_to", None)  # narrower than groups (a host holding certificates)
        hosts = [h for h in hosts if applies is None or applies(h, session.inventory)]
        metafunc.parametrize("host", hosts, ids=[h.name for h in hosts])


@pytest.fixture
def probe(request, host):
    session = request.config.stash[SESSION_KEY]
    request.node.gw_evidence = []
    request.node.gw_undeclared, request.node.gw_warnings, request.node.gw_shown = [], [], []
    check = f"{request.module.__name__}::{request.node.originalname}"
    return session.probe_for(host, request.node.gw_evidence, check, request.node.gw_undeclared,
                             request.node.gw_warnings, request.node.gw_shown)


@pytest.fixture
def inventory(request):
    return request.config.stash[SESSION_KEY].inventory


@pytest.fixture
def session(request):
    """The run's verification session: its targets, secrets and metadata (the run id)."""
    return request.config.stash[SESSION_KEY]
