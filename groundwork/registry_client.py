"""How a host talks to the private registry without leaving a credential behind: docker logins in a throwaway
docker configuration, curl's credentials on stdin in curl's own quoting."""

from __future__ import annotations

import shlex


def registry_login(registry: str, then: str) -> str:
    """Log in to the registry with a throwaway docker configuration (the password on stdin), run `then` with it,
    and remove it: no credential stays on the host. Fails with docker's own words when the login is refused."""
    return (f"d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && export DOCKER_CONFIG=\"$d\" && "
            f"docker login {shlex.quote(registry)} -u admin --password-stdin >/dev/null && {then}")


def curl_credentials(password: str) -> bytes:
    """A curl config (read with -K -) holding the registry admin's credentials: on stdin, never a command line;
    quoted as curl's config syntax wants, so that no character of the password adds an option."""
    if any(c in password for c in "\r\n\0"):
        raise ValueError("registry_password holds a line break or NUL, which no HTTP credential can carry")
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    return f'user = "admin:{quoted}"\n'.encode()


def registry_api(registry: str, path: str) -> str:
    """A curl of the registry's API at /v2/PATH, the credentials read from stdin (curl_credentials)."""
    return f"curl -s -K - {shlex.quote(f'http://{registry}/v2/{path}')}"


def registry_has(registry: str, image: str) -> str:
    """A command printing the HTTP status of IMAGE's manifest in the registry (200: there), credentials on stdin."""
    repo, _, tag = image.removeprefix(registry + "/").rpartition(":")
    url = f"http://{registry}/v2/{repo}/manifests/{tag}"
    return ("curl -s -o /dev/null -w '%{http_code}' -K - -I "
            "-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' " + shlex.quote(url))
