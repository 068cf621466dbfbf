"""The images every kubelet runs, made once on the ops host and pushed to harbor.od.com/public, the reason the
tutorial builds the registry first: the pause image (the static pause binary the inventory names, from the
same Kubernetes release) and a small workload image (Debian's busybox-static: a shell and an httpd).

Both are made without network (`docker import` of a tar, as the registry's canary check does), labelled with
the SHA-256 of the binary they carry, and made and pushed again only when that label or the registry's copy
is missing. The push logs in with a throwaway docker configuration: no credential stays on the host.
"""

from __future__ import annotations

import io
import shlex
import tarfile

from groundwork import facts as probes
from groundwork.changes import ActionChange, Change, value_diff
from groundwork.context import RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel, Inventory
from groundwork.platforms import candidate_packages, install_missing, platform_for
from groundwork.registry_client import curl_credentials, registry_has, registry_login
from groundwork.remote import Remote
from groundwork.stages import Stage
from groundwork.tasks.kubernetes import (IMAGES_HANDOFF, LABEL, image_labels, k8s_stage_applies, pause_image,
                                         verified_file, workload_image)

BUSYBOX = "/bin/busybox"
WORKLOAD_PACKAGES = {"debian": ["busybox-static"], "el": ["busybox"]}


def _in_registry(registry: str, images: list[str], password: str) -> probes.Probe:
    script = "; ".join(f"head -c {len(curl_credentials(password))} | {registry_has(registry, i)}; echo" for i in images)
    return probes.Probe("in_registry", script,
                        lambda text: {i: code == "200" for i, code in zip(images, text.split())},
                        input=curl_credentials(password) * len(images), sensitive=True)


def stage_probes(inventory: Inventory, password: str, family: str | None = None) -> list[probes.Probe]:
    images = [pause_image(inventory), workload_image(inventory)]
    return [probes.os_info(), probes.packages(candidate_packages(WORKLOAD_PACKAGES, family)),
            probes.Probe("busybox", f"sha256sum {BUSYBOX} 2>/dev/null | cut -c1-64", lambda t: t.strip() or None),
            image_labels(images), _in_registry(inventory.defaults.registry.name, images, password)]


def pause_tar(binary: bytes) -> bytes:
    """A filesystem holding /pause alone, as a tar for `docker import`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("pause")
        info.size, info.mode = len(binary), 0o755
        tar.addfile(info, io.BytesIO(binary))
    return out.getvalue()


def _push(image: str, registry: str) -> str:
    return registry_login(registry, f"docker push {shlex.quote(image)} >/dev/null")


def decide(host: HostModel, inventory: Inventory, facts: Facts, pause_sha: str, password: str) -> list[Change]:
    k, registry = inventory.defaults.kubernetes, inventory.defaults.registry.name
    platform = platform_for(facts["os"])
    plan: list[Change] = list(install_missing(platform, WORKLOAD_PACKAGES.get(platform.family, []), facts["packages"]))
    pause, workload = pause_image(inventory), workload_image(inventory)

    def current(image: str, source: str | None) -> bool:
        return bool(source) and facts["labels"].get(image) == f"sha256:{source}" and facts["in_registry"].get(image)

    if not current(pause, pause_sha):
        def make_pause(r: Remote) -> None:
            binary = verified_file(k, "pause_binary")[0].read_bytes()
            r.run(f"docker import --change 'ENTRYPOINT [\"/pause\"]' --change 'LABEL {LABEL}=sha256:{pause_sha}' "
                  f"- {shlex.quote(pause)} >/dev/null", stdin=pause_tar(binary), what=f"making {pause}")
            r.run(_push(pause, registry), stdin=password.encode(), what=f"pushing {pause}")
        plan.append(ActionChange(f"make {pause} and push it", value_diff(
            pause, "in the registry from another binary" if facts["in_registry"].get(pause) else None,
            f"/pause from {k.pause_binary} (sha256:{pause_sha}), pushed to {registry}"), make_pause))
    if not current(workload, facts["busybox"]):
        def make_workload(r: Remote) -> None:
            build = ("t=$(mktemp -d) && trap 'rm -rf \"$t\"' EXIT && mkdir -p \"$t/bin\" \"$t/www\" && "
                     f"cp {BUSYBOX} \"$t/bin/busybox\" && ln -s busybox \"$t/bin/sh\" && "
                     f"sha=$(sha256sum {BUSYBOX} | cut -c1-64) && tar -C \"$t\" -c . | docker import --change "
                     f"'ENTRYPOINT [\"/bin/busybox\"]' --change \"LABEL {LABEL}=sha256:$sha\" - "
                     f"{shlex.quote(workload)} >/dev/null")
            r.run(build, what=f"making {workload}")
            r.run(_push(workload, registry), stdin=password.encode(), what=f"pushing {workload}")
        plan.append(ActionChange(f"make {workload} and push it", value_diff(
            workload, "in the registry from another busybox" if facts["in_registry"].get(workload) else None,
            f"{BUSYBOX} of this host's busybox-static, pushed to {registry}"), make_workload))
    return plan


def hand_images(host: HostModel, before: Facts, after: Facts, ctx: RunContext) -> dict:
    """What the nodes should have: the workload's label is known only when busybox was there before this run."""
    pause_sha = verified_file(ctx.inventory.defaults.kubernetes, "pause_binary")[1]
    return {IMAGES_HANDOFF: {pause_image(ctx.inventory): f"sha256:{pause_sha}",
                             workload_image(ctx.inventory): f"sha256:{before['busybox']}" if before["busybox"] else ""}}


STAGE = Stage(name="k8s_images", title="the kubelets' images, pushed to the registry", groups=("ops",),
              needs=("host_prep", "registry"), installs=lambda host: WORKLOAD_PACKAGES,
              select=k8s_stage_applies, secrets=frozenset({"registry_password"}), checks="test_kubernetes.py",
              probes=lambda host, ctx: stage_probes(ctx.inventory, ctx.secrets["registry_password"],
                                                    ctx.family(host.name)),
              notes=lambda host, ctx: [f"images: {pause_image(ctx.inventory)}, {workload_image(ctx.inventory)}"],
              decide=lambda host, facts, ctx, notes: decide(
                  host, ctx.inventory, facts, verified_file(ctx.inventory.defaults.kubernetes, "pause_binary")[1],
                  ctx.secrets["registry_password"]),
              hand_off=hand_images)
