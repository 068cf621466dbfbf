"""The CA on hdss7-200 end to end: made once, adopted after, issuing certificates, its key kept out of sight."""


def key_body(lab) -> str:
    pem = lab.ssh("hdss7-200", "cat /opt/certs/ca-key.pem")
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def test_ca_has_the_configured_subject_about_200_years_and_a_private_key(converged):
    lab = converged
    out = lab.ssh("hdss7-200", "openssl x509 -in /opt/certs/ca.pem -noout -subject -enddate; "
                               "stat -c '%a %U' /opt/certs/ca-key.pem; ls /opt/certs")
    assert "subject=C = CN, ST = beijing, L = beijing, O = od, OU = ops, CN = OldboyEdu" in out
    end_year = int(out.split("notAfter=")[1].split("\n")[0].split()[3])
    assert 2225 <= end_year <= 2227, out  # 1752000 h from now
    assert "600 root" in out
    assert {"ca.pem", "ca-key.pem", "ca.csr", "ca-config.json"} <= set(out.split())


def test_second_run_keeps_the_ca_and_reports_no_change(converged, runbook):
    lab = converged
    before = lab.ssh("hdss7-200", "openssl x509 -in /opt/certs/ca.pem -noout -fingerprint -sha256")
    run = runbook()
    assert run.rc == 0, run
    assert run.statuses("ca") == {"hdss7-200": "ok"}
    assert "adopted the existing CA" in run.entry("hdss7-200", "ca")["notes"][0]
    assert lab.ssh("hdss7-200", "openssl x509 -in /opt/certs/ca.pem -noout -fingerprint -sha256") == before


def test_a_peer_certificate_verifies_against_the_ca(converged, runbook):
    lab = converged
    run = runbook("etcd-peer", "--profile", "peer", "--san", "10.4.7.12", "--san", "hdss7-12.host.com",
                  name="issue_cert")
    assert run.rc == 0, run
    out = lab.ssh("hdss7-200", "cd /opt/certs && openssl verify -CAfile ca.pem etcd-peer.pem && "
                               "openssl x509 -in etcd-peer.pem -noout -ext subjectAltName,extendedKeyUsage")
    assert "etcd-peer.pem: OK" in out and "IP Address:10.4.7.12" in out and "TLS Web Client Authentication" in out
    again = runbook("etcd-peer", "--profile", "peer", "--san", "10.4.7.12", "--san", "hdss7-12.host.com",
                    name="issue_cert")
    assert again.statuses("issue_cert") == {"hdss7-200": "ok"}, again


def test_the_key_appears_in_no_report_and_no_output(converged, runbook):
    lab = converged
    runs = [runbook(), runbook("--dry-run"), runbook("cert-x", "--profile", "server", name="issue_cert")]
    body = key_body(lab)
    assert len(body) > 1000
    chunks = [body[i:i + 64] for i in range(0, len(body), 64)]
    for run in runs:
        assert not any(c in run.stdout + run.stderr for c in chunks)
    files = [p for p in runs[0].reports.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(errors="replace")
        assert not any(c in text for c in chunks), path
