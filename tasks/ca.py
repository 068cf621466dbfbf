"""The certificate authority on the ops host, the seeds' "准备签发证书环境", made with `cryptography`.

Files under /opt/certs keep the names cfssl users know: ca.pem, ca-key.pem (0600), ca.csr, ca-config.json with
the signing profiles server, client and peer.

Where the key lives: only on the ops host, in /opt/certs/ca-key.pem, root's, mode 0600. groundwork makes it in
memory on this machine and sends it over the SSH session's stdin into an atomic write that is 0600 before it is
renamed into place; it never touches this machine's disk, a command line, a log, a diff or a report (diffs of
the key show digests, and output that carries it is not kept in the run record).

An existing CA is never replaced by a run: a run that finds ca.pem and ca-key.pem adopts them after checking
that they belong together. Replacing it takes runbooks/replace_ca.py, which keeps the old pair.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import (ActionChange, Change, CommandChange, DesiredFile, StageError, StageReport,
                                apply_plan, file_changes, value_diff)
from groundwork.inventory import HostModel
from groundwork.platforms import install_missing, platform_for
from groundwork.remote import Remote
from groundwork.settings import Ca
from groundwork.stages import RunContext, Stage

CERT, KEY, CSR, CONFIG = "ca.pem", "ca-key.pem", "ca.csr", "ca-config.json"


def paths(ca: Ca) -> dict[str, str]:
    return {name: f"{ca.dir}/{name}" for name in (CERT, KEY, CSR, CONFIG)}


def describe_new_ca(ca: Ca) -> str:
    """What a plan shows for a CA not made yet: its settings, not random bytes (so a plan's digest is stable)."""
    names = ", ".join(f"{k}={getattr(ca.names, k)}" for k in ("C", "ST", "L", "O", "OU")) + f", CN={ca.cn}"
    key = "ECDSA P-256" if ca.key_algo == "ecdsa" else f"RSA {ca.key_size}"
    return (value_diff(f"{ca.dir}/{CERT}", None, f"CA certificate: {names}; valid {ca.expiry}")
            + value_diff(f"{ca.dir}/{KEY}", None, f"new {key} key, root 0600 (content never shown)")
            + value_diff(f"{ca.dir}/{CSR}", None, "the CA's certificate signing request"))


def write_ca(remote: Remote, ca: Ca, files: pki.CaFiles) -> None:
    """Key first: a crash between the writes leaves a key without a certificate, never the reverse."""
    p = paths(ca)
    remote.masker.add(files.key_pem.decode())
    remote.write_file(p[KEY], files.key_pem, mode="0600", previous=None, sensitive=True)
    remote.write_file(p[CERT], files.cert_pem, mode="0644", previous=None)
    remote.write_file(p[CSR], files.csr_pem, mode="0644", previous=None)


def _gather(remote: Remote, ca: Ca):
    p = paths(ca)
    return remote.gather([probes.os_info(), probes.packages(["openssl"]), probes.files(list(p.values()))])


def run(remote: Remote, host: HostModel, ctx: RunContext) -> StageReport:
    ca = host.settings.ca
    p = paths(ca)
    facts = _gather(remote, ca)
    platform = platform_for(facts["os"])
    present = {name: facts["files"].get(path) is not None for name, path in p.items()}
    report = StageReport()
    # Operators check the CA with openssl, as the checks do.
    plan: list[Change] = install_missing(platform, ["openssl"], facts["packages"])

    if not present[CERT] and not present[KEY]:
        plan.append(ActionChange(f"create the CA {ca.cn} in {ca.dir}", describe_new_ca(ca),
                                 lambda r: write_ca(r, ca, pki.make_ca(ca))))
        wanted = [DesiredFile(p[CONFIG], pki.ca_config_json(ca))]
    elif present[CERT] != present[KEY]:
        found, missing = (CERT, KEY) if present[CERT] else (KEY, CERT)
        raise StageError(f"{p[found]} is there but {p[missing]} is not; groundwork never replaces a CA: put the "
                         f"missing file back, or replace the CA with runbooks/replace_ca.py")
    else:
        current = remote.read_files([p[CERT], p[KEY], p[CSR]], sensitive=True)
        remote.masker.add(current[p[KEY]].decode(errors="replace"))
        try:
            cert, key = pki.load_pair(current[p[CERT]], current[p[KEY]])
        except pki.PkiError as exc:
            raise StageError(f"{host.name}:{ca.dir}: {exc}; groundwork never replaces a CA: fix the pair, or "
                             f"replace the CA with runbooks/replace_ca.py") from None
        report.notes.append(f"adopted the existing CA {cert.subject.rfc4514_string()} "
                            f"({pki.cert_fingerprint(current[p[CERT]])})")
        csr = current[p[CSR]] or pki.csr_pem(cert.subject, key)  # cfssl's third file, made again from the pair
        # The pair stays as it is; only its modes are put right.
        wanted = [DesiredFile(p[KEY], current[p[KEY]], mode="600", sensitive=True),
                  DesiredFile(p[CERT], current[p[CERT]]), DesiredFile(p[CSR], csr),
                  DesiredFile(p[CONFIG], pki.ca_config_json(ca))]
    plan += file_changes(remote, wanted, facts["files"])
    return apply_plan(remote, plan, ctx, report)


def run_replace(remote: Remote, host: HostModel, ctx: RunContext) -> StageReport:
    """Replace the CA on purpose: the old files move to a dated folder beside them, then a new CA is made."""
    ca = host.settings.ca
    p = paths(ca)
    facts = _gather(remote, ca)
    old = [name for name in (CERT, KEY, CSR) if facts["files"].get(p[name]) is not None]
    keep = f"{ca.dir}/replaced-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    plan: list[Change] = install_missing(platform_for(facts["os"]), ["openssl"], facts["packages"])
    if old:
        moves = " && ".join(f"mv {shlex.quote(p[n])} {shlex.quote(keep)}/" for n in old)
        plan.append(CommandChange(f"keep the old CA in {keep}", [f"mkdir -m 700 {shlex.quote(keep)} && {moves}"],
                                  "".join(value_diff(p[n], "present", f"moved to {keep}/{n}") for n in old)))
    plan.append(ActionChange(f"create the CA {ca.cn} in {ca.dir}", describe_new_ca(ca),
                             lambda r: write_ca(r, ca, pki.make_ca(ca))))
    return apply_plan(remote, plan, ctx, StageReport(notes=[f"old CA kept in {keep}"] if old else []))


STAGE = Stage(name="ca", title="certificate authority", groups=("ops",), run=run)
REPLACE = Stage(name="replace_ca", title="replace the certificate authority", groups=("ops",), run=run_replace,
                checks="test_ca.py")


def issue_stage(name: str, profile: str, cn: str, sans: list[str]) -> Stage:
    """A stage that issues NAME.pem and NAME-key.pem under the CA's folder, as `cfssl gencert -profile` does."""

    def run_issue(remote: Remote, host: HostModel, ctx: RunContext) -> StageReport:
        import json

        ca = host.settings.ca
        p = paths(ca)
        leaf_cert, leaf_key = f"{ca.dir}/{name}.pem", f"{ca.dir}/{name}-key.pem"
        current = remote.read_files([p[CERT], p[KEY], p[CONFIG], leaf_cert], sensitive=True)
        if current[p[CERT]] is None or current[p[KEY]] is None:
            raise StageError(f"no CA in {ca.dir} on {host.name}: run the ca stage first (runbooks/ca.py)")
        remote.masker.add(current[p[KEY]].decode(errors="replace"))
        cert, key = pki.load_pair(current[p[CERT]], current[p[KEY]])
        config = json.loads(current[p[CONFIG]]) if current[p[CONFIG]] else pki.ca_config(ca)
        usages = config.get("signing", {}).get("profiles", {}).get(profile, {}).get("usages")
        if usages is None:
            raise StageError(f"no signing profile {profile!r} in {p[CONFIG]}")
        report = StageReport()
        if current[leaf_cert] and pki.leaf_is_current(current[leaf_cert], cert, cn, sans, usages):
            report.notes.append(f"{leaf_cert} is current: CN {cn}, SANs {', '.join(sans) or 'none'}, {profile}")
            return report

        def write(r: Remote) -> None:
            leaf_pem, leaf_key_pem = pki.issue(cert, key, profile, cn, sans, ca, profile_config=config)
            r.masker.add(leaf_key_pem.decode())
            r.write_file(leaf_key, leaf_key_pem, mode="0600", sensitive=True)
            r.write_file(leaf_cert, leaf_pem, mode="0644")
        diff = (value_diff(leaf_cert, "present" if current[leaf_cert] else None,
                           f"CN {cn}, SANs {', '.join(sans) or 'none'}, profile {profile}, signed by {ca.cn}")
                + value_diff(leaf_key, None, "new key, root 0600 (content never shown)"))
        return apply_plan(remote, [ActionChange(f"issue {name}.pem ({profile})", diff, write)], ctx, report)

    return Stage(name="issue_cert", title=f"issue {name} with profile {profile}", groups=("ops",), run=run_issue,
                 checks="test_ca.py")
