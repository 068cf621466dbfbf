"""The registry behind nginx at harbor.od.com end to end: login, push, pull, and its secret kept out of sight."""

from lab import lab as lab_module


def registry_password() -> str:
    text = (lab_module.LAB_DIR / "secrets.yaml").read_text()
    return text.split("registry_password:", 1)[1].split()[0]


def test_nginx_serves_the_registry_at_harbor_od_com_from_every_host(converged):
    lab = converged
    for host in ("hdss7-21", "hdss7-22", "hdss7-11"):
        code = lab.ssh(host, "wget -q -S -O /dev/null http://harbor.od.com/v2/ 2>&1 | awk '/HTTP\\//{print $2}' "
                             "| head -n 1").strip()
        assert code == "401", (host, code)  # the registry itself answers, and asks for credentials
    conf = lab.ssh("hdss7-200", "cat /etc/nginx/conf.d/harbor.od.com.conf; nginx -t 2>&1")
    assert "client_max_body_size 1000m;" in conf and "proxy_pass http://127.0.0.1:180;" in conf
    assert "syntax is ok" in conf
    assert "127.0.0.1:180" in lab.ssh("hdss7-200", "ss -ltn")


def test_verification_pushes_a_canary_and_pulls_it_on_every_compute_host(converged, runbook):
    lab = converged
    run = runbook()
    assert run.rc == 0, run
    registry_checks = [c for c in run.record["checks"] if c["check"].startswith("test_registry.py")]
    assert {(c["host"], c["outcome"]) for c in registry_checks} == {
        ("hdss7-200", "passed"), ("hdss7-21", "passed"), ("hdss7-22", "passed")}
    tag = run.record["run_id"]
    assert f"harbor.od.com/public/canary:{tag}" in lab.ssh("hdss7-22", "docker images --format "
                                                                       "'{{.Repository}}:{{.Tag}}'")
    pushes = [e["command"] for c in registry_checks for e in c["evidence"]]
    assert any(f"docker push harbor.od.com/public/canary:{tag}" in p for p in pushes)
    # The logins of the verification (and of the stages before it) left no credential on any host.
    password = registry_password()
    for host in ("hdss7-200", "hdss7-21", "hdss7-22"):
        stored = lab.ssh(host, "cat /root/.docker/config.json 2>/dev/null; true")
        found = lab.ssh(host, f"grep -rl -- '{password}' /root /tmp /etc/docker 2>/dev/null; true")
        assert "harbor.od.com" not in stored and not found.strip(), (host, stored, found)


def test_the_registry_password_is_in_no_file_of_the_run_folder(converged, runbook):
    run = runbook("--diff")
    assert run.rc == 0, run
    password = registry_password()
    assert len(password) >= 16
    for path in (run.reports / run.record["run_id"]).iterdir():
        assert password not in path.read_text(errors="replace"), path
    assert password not in run.stdout + run.stderr


def test_a_second_run_keeps_the_htpasswd_file(converged, runbook):
    lab = converged
    before = lab.ssh("hdss7-200", "sha256sum /etc/docker/registry/htpasswd")
    run = runbook("--host", "hdss7-200", "--no-verify")
    assert run.rc == 0, run
    assert run.statuses("registry") == {"hdss7-200": "ok"}
    assert lab.ssh("hdss7-200", "sha256sum /etc/docker/registry/htpasswd") == before
