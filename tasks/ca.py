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

import json
import shlex

from groundwork import facts as probes
from groundwork import pki
from groundwork.changes import (ActionChange, Change, CommandChange, DesiredFile, StageError,
                                file_changes, value_diff, wanted_digests)
from groundwork.context import Renewal, RunContext
from groundwork.facts import Facts
from groundwork.inventory import HostModel
from groundwork.platforms import install_missing, platform_for
from groundwork.remote import BACKUP_DIR, Remote
from groundwork.settings import Ca
from groundwork.stages import Stage

CERT, KEY, CSR, CONFIG = "ca.pem", "ca-key.pem", "ca.csr", "ca-config.json"
PACKAGES = ["openssl"]  # operators check the CA with openssl, as the checks do


def leaf_files(name: str) -> tuple[str, str]:
    """The files `issue NAME` writes beside the CA, as cfssljson -bare NAME does."""
    return f"{name}.pem", f"{name}-key.pem"


def lands_on_ca(name: str) -> list[str]:
    """The CA's own files that issuing NAME would write over ("ca" -> ca.pem, "ca-key" -> ca-key.pem)."""
    return [f for f in leaf_files(name) if f in (CERT, KEY, CSR, CONFIG)]


def paths(ca: Ca) -> dict[str, str]:
    return {name: f"{ca.dir}/{name}" for name in (CERT, KEY, CSR, CONFIG)}


def extra_trusted(host: HostModel, found: dict[str, bytes | None]) -> list[bytes]:
    """The CAs trusted beside this one during a roll (ca.extra_trusted_cas, files on the CA's host), each checked."""
    for path in host.settings.ca.extra_trusted_cas:
        if not pki.certificates_in(found.get(path)):
            raise StageError(f"ca.extra_trusted_cas: {path} on {host.name} is missing or holds no certificate")
    return [found[path] for path in host.settings.ca.extra_trusted_cas]


def trust_bundle(ca_pem: bytes | None, extras: list[bytes]) -> bytes | None:
    """What the hosts trust: the CA first (the issuer of every certificate handed over), then the CAs still
    trusted during a roll."""
    if not extras or not ca_pem:
        return ca_pem
    return ca_pem.rstrip(b"\n") + b"\n" + b"".join(p.rstrip(b"\n") + b"\n" for p in extras)


def roll_note(host: HostModel, who: str) -> str:
    return f"{who} also trust {', '.join(host.settings.ca.extra_trusted_cas)} (ca.extra_trusted_cas): a CA roll"


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


def stage_probes(ca: Ca) -> list[probes.Probe]:
    p = paths(ca)
    config = wanted_digests([DesiredFile(p[CONFIG], pki.ca_config_json(ca))])
    return [probes.os_info(), probes.packages(PACKAGES), probes.files([p[CONFIG]], read_unless=config),
            # An existing pair is adopted, so it is read whole; the key never reaches the log.
            probes.files([p[CERT], p[KEY], p[CSR]], read_unless={}, key="ca_files", sensitive=True)]


def decide(host: HostModel, facts: Facts, notes: list[str]) -> list[Change]:
    """Make the CA when neither half exists; else adopt the pair, putting only modes and ca-config.json right."""
    ca = host.settings.ca
    p = paths(ca)
    current = {**facts["files"], **facts["ca_files"]}
    present = {name: current.get(path) is not None for name, path in p.items()}
    # Operators check the CA with openssl, as the checks do.
    plan: list[Change] = install_missing(platform_for(facts["os"]), PACKAGES, facts["packages"])

    if not present[CERT] and not present[KEY]:
        plan.append(ActionChange(f"create the CA {ca.cn} in {ca.dir}", describe_new_ca(ca),
                                 lambda r: write_ca(r, ca, pki.make_ca(ca))))
        wanted = [DesiredFile(p[CONFIG], pki.ca_config_json(ca))]
    elif present[CERT] != present[KEY]:
        found, missing = (CERT, KEY) if present[CERT] else (KEY, CERT)
        raise StageError(f"{p[found]} is there but {p[missing]} is not; groundwork never replaces a CA: put the "
                         f"missing file back, or replace the CA with runbooks/replace_ca.py")
    else:
        cert_pem, key_pem = current[p[CERT]].content, current[p[KEY]].content
        try:
            cert, key = pki.load_ca_pair(cert_pem, key_pem)
        except pki.PkiError as exc:
            raise StageError(f"{host.name}:{ca.dir}: {exc}; groundwork never replaces a CA, nor adopts such a pair: "
                             f"put the CA's own pair back (a file groundwork wrote over is kept under "
                             f"{BACKUP_DIR}{ca.dir}/), or replace the CA with runbooks/replace_ca.py") from None
        notes.append(f"adopted the existing CA {cert.subject.rfc4514_string()} ({pki.cert_fingerprint(cert_pem)})")
        # cfssl's third file, made again from the pair when it is missing
        csr = current[p[CSR]].content if present[CSR] else pki.csr_pem(cert.subject, key)
        # The pair stays as it is; only its modes are put right.
        wanted = [DesiredFile(p[KEY], key_pem, mode="600", sensitive=True), DesiredFile(p[CERT], cert_pem),
                  DesiredFile(p[CSR], csr), DesiredFile(p[CONFIG], pki.ca_config_json(ca))]
    return plan + file_changes(wanted, current)


def key_read(ca: Ca, facts: Facts) -> list[str]:
    """The CA key's text, when the gather read it: masked wherever it could turn up (an error message, a diff)."""
    key = facts["ca_files"].get(paths(ca)[KEY])
    return [key.content.decode(errors="replace")] if key is not None else []


def decide_replace(host: HostModel, facts: Facts, ctx: RunContext, notes: list[str]) -> list[Change]:
    """Replace the CA on purpose: the old files move to a dated folder beside them, then a new CA is made."""
    ca = host.settings.ca
    p = paths(ca)
    old = [name for name in (CERT, KEY, CSR) if facts["ca_files"].get(p[name]) is not None]
    keep = f"{ca.dir}/replaced-{ctx.plan_time.strftime('%Y%m%dT%H%M%SZ')}"
    plan: list[Change] = install_missing(platform_for(facts["os"]), PACKAGES, facts["packages"])
    if old:
        notes.append(f"old CA kept in {keep}")
        moves = " && ".join(f"mv {shlex.quote(p[n])} {shlex.quote(keep)}/" for n in old)
        plan.append(CommandChange(f"keep the old CA in {keep}", [f"mkdir -m 700 {shlex.quote(keep)} && {moves}"],
                                  "".join(value_diff(p[n], "present", f"moved to {keep}/{n}") for n in old)))
    plan.append(ActionChange(f"create the CA {ca.cn} in {ca.dir}", describe_new_ca(ca),
                             lambda r: write_ca(r, ca, pki.make_ca(ca))))
    return plan


STAGE = Stage(name="ca", title="certificate authority", groups=("ops",),
              needs=("host_prep",), installs=lambda host: {"debian": PACKAGES, "el": PACKAGES},
              probes=lambda host, ctx: stage_probes(host.settings.ca),
              read_secrets=lambda host, facts, ctx: key_read(host.settings.ca, facts),
              decide=lambda host, facts, ctx, notes: decide(host, facts, notes))
REPLACE = Stage(name="replace_ca", title="replace the certificate authority", groups=("ops",), checks="test_ca.py",
                probes=lambda host, ctx: stage_probes(host.settings.ca),
                read_secrets=lambda host, facts, ctx: key_read(host.settings.ca, facts), decide=decide_replace)


def issue_stage(name: str, profile: str, cn: str, sans: list[str]) -> Stage:
    """A stage that issues NAME.pem and NAME-key.pem under the CA's folder, as `cfssl gencert -profile` does.
    It never writes over a certificate of that name issued with other settings (another stage's, say)."""

    def wanted(host: HostModel) -> list[str]:
        p = paths(host.settings.ca)
        return [p[CERT], p[KEY], p[CONFIG], f"{host.settings.ca.dir}/{name}.pem"]

    return Stage(name="issue_cert", title=f"issue {name} with profile {profile}", groups=("ops",), checks="test_ca.py",
                 probes=lambda host, ctx: [probes.contents(wanted(host), sensitive=True)],
                 read_secrets=lambda host, facts, ctx: pki.key_texts(facts["contents"]),
                 decide=lambda host, facts, ctx, notes: decide_issue(host, facts["contents"], name, profile, cn,
                                                                     sans, notes))


def decide_issue(host: HostModel, found: dict[str, bytes | None], name: str, profile: str, cn: str,
                 sans: list[str], notes: list[str], owner: bool = False,
                 groups: list[str] | None = None, renewal: Renewal = Renewal(), keep_key: bool = False) -> list[Change]:
    """Issue NAME.pem unless the one there is current (same CN, SANs and usages, signed by this CA, more days
    left than renewal.within_days, not named for renewal).

    owner: the caller owns NAME (the etcd stage its peer and client certificates) and issues it again when its
    settings change; anyone else (issue_cert.py) is refused a NAME already issued with other settings.
    keep_key: issued again, it certifies the key there (one whose signatures must stay good, such as the
    service account key's) rather than a new one."""
    ca = host.settings.ca
    p = paths(ca)
    if lands_on_ca(name):
        raise StageError(f"{name}: issuing it would write over the CA's own {' and '.join(lands_on_ca(name))}")
    leaf_cert, leaf_key = (f"{ca.dir}/{f}" for f in leaf_files(name))
    if found[p[CERT]] is None or found[p[KEY]] is None:
        raise StageError(f"no CA in {ca.dir} on {host.name}: run the ca stage first (runbooks/ca.py)")
    try:
        cert, key = pki.load_ca_pair(found[p[CERT]], found[p[KEY]])
    except pki.PkiError as exc:
        raise StageError(f"{host.name}:{ca.dir}: {exc}; nothing is signed with it (runbooks/ca.py says more)") from None
    config = json.loads(found[p[CONFIG]]) if found[p[CONFIG]] else pki.ca_config(ca)
    usages = config.get("signing", {}).get("profiles", {}).get(profile, {}).get("usages")
    if usages is None:
        raise StageError(f"no signing profile {profile!r} in {p[CONFIG]}")
    if found[leaf_cert] and name in renewal.names:
        notes.append(f"{leaf_cert}: renewed, as asked")
    elif found[leaf_cert] and pki.leaf_is_current(found[leaf_cert], cert, cn, sans, usages, groups,
                                                  min_days=renewal.within_days):
        notes.append(f"{leaf_cert} is current: CN {cn}, SANs {', '.join(sans) or 'none'}, {profile}")
        return []
    have = pki.leaf_settings(found[leaf_cert]) if found[leaf_cert] else None
    if have is not None and not owner and not pki.same_leaf_settings(have, pki.wanted_leaf_settings(cn, sans, usages)):
        raise StageError(
            f"{leaf_cert} was issued with other settings (CN {have['cn']}, SANs {', '.join(have['sans']) or 'none'}, "
            f"usages {', '.join(have['usages']) or 'none'}) than asked for now (CN {cn}, SANs "
            f"{', '.join(sans) or 'none'}, profile {profile}); it may be another stage's: nothing was written. "
            "Choose another name, or remove its files first if it is yours to replace")

    def write(r: Remote) -> None:
        leaf_pem, leaf_key_pem = pki.issue(cert, key, profile, cn, sans, ca, profile_config=config, groups=groups,
                                           keep_key=found.get(leaf_key) if keep_key else None)
        r.masker.add(leaf_key_pem.decode())
        r.write_file(leaf_key, leaf_key_pem, mode="0600", sensitive=True)
        r.write_file(leaf_cert, leaf_pem, mode="0644")
    diff = (value_diff(leaf_cert, "present" if found[leaf_cert] else None,
                       f"CN {cn}{', O ' + ', '.join(groups) if groups else ''}, SANs {', '.join(sans) or 'none'}, "
                       f"profile {profile}, signed by {ca.cn}")
            + value_diff(leaf_key, None, "the same key, kept (content never shown)" if keep_key and found.get(leaf_key)
                         else "new key, root 0600 (content never shown)"))
    return [ActionChange(f"issue {name}.pem ({profile})", diff, write)]
