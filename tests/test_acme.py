"""HTTPS with a certificate from an ACME server (compose.acme.yaml, TLS=acme), against a real
one: Pebble, Let's Encrypt's test server (tests/acme/compose.pebble.yaml, a local stand-in
image), validating HTTP-01 through nginx, with its mock DNS pointing the test's names at
nginx. In order: the self-signed fallback before anything is issued, the first issuance, a
forced renewal under load, a renewal whose challenge cannot reach nginx, and a restart of the
stack that issues nothing."""

import http.client
import json
import socket
import ssl
import subprocess
import time
from datetime import UTC, datetime

import pytest
import requests
from cryptography import x509

from composed import ROOT, Stack, free_loopback_port, wait_for
from https_load import HttpsLoad
from pebble import Pebble, prepare

DOMAINS = ("shop.test", "www.shop.test")
# As `make prod-up TLS=acme` runs it (read-only roots, no capabilities, two web replicas),
# with the test's ACME server beside it.
COMPOSE_FILES = (
    "compose.yaml",
    "compose.prod.yaml",
    "compose.tls.yaml",
    "compose.acme.yaml",
    "tests/acme/compose.pebble.yaml",
)
STACK_SERVICES = ("web", "acme-fallback", "nginx", "acme")
RETRY_INTERVAL_S = 20
METRICS = (
    "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9120/metrics', timeout=5).read().decode())"
)


def python_image():
    return subprocess.run(
        ["scripts/dockerfile-arg.sh", "services/web/Dockerfile", "PYTHON_IMAGE"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    pebble_dir = tmp_path_factory.mktemp("pebble")
    pebble_dir.chmod(0o755)
    ca_root = prepare(pebble_dir)
    https_port = free_loopback_port()
    env = {
        "PYTHON_IMAGE": python_image(),
        "PEBBLE_DIR": str(pebble_dir),
        "HTTPS_PORT": str(https_port),
        "ACME_DOMAINS": " ".join(DOMAINS),
        "ACME_EMAIL": "ops@shop.test",
        "ACME_DIRECTORY": "https://pebble:14000/dir",
        "ACME_CA_ROOT": str(ca_root),
        # Long enough that a test sees a failure before the job's own retry, short enough
        # that the first issuance follows Pebble's start within the test's patience.
        "ACME_RETRY_INTERVAL": str(RETRY_INTERVAL_S),
    }
    stack = Stack("acme", compose_files=COMPOSE_FILES, env=env)
    stack.https_port = https_port
    try:
        # nginx first, on the fallback; then the renewal job, while Pebble is not running yet
        # (as when the ACME server cannot be reached); then Pebble, its DNS learning nginx's
        # address, and the job's retry issues the first certificate.
        stack.up("challtestsrv", "nginx")
        stack.before_acme = served(stack)
        stack.fallback_log = stack.logs("acme-fallback")
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "120", "acme", timeout=300)
        wait_for(lambda: failures(stack), deadline_s=120, message="the job's first attempt")
        stack.unreachable = {"failures": failures(stack), "served": served(stack), "metrics": metrics(stack)}
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "120", "pebble", timeout=300)
        stack.pebble = Pebble.from_compose(stack.compose, ca_root)
        stack.pebble.wait_ready(deadline_s=60)
        point_names_at_nginx(stack)
        yield stack
    finally:
        print(f"--- acme log ---\n{stack.logs('acme')}")
        stack.down()


def point_names_at_nginx(stack):
    (nginx,) = stack.running("nginx")
    for domain in DOMAINS:
        stack.pebble.resolve(domain, stack.address_of(nginx))


def handshake(stack, server_name, context):
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise


def served(stack, server_name=DOMAINS[0]):
    """The certificate nginx shows a client naming `server_name`, unverified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with handshake(stack, server_name, context) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def pebble_context(stack):
    """Trusting Pebble's root alone: a handshake succeeds only over a chain Pebble issued."""
    return ssl.create_default_context(cadata=stack.pebble.issuing_roots()[0])


def https_get(stack, context, path, server_name=DOMAINS[0]):
    """(status, body, served serial) of one request on a new, verified connection."""
    connection = http.client.HTTPSConnection(server_name, stack.https_port, context=context, timeout=10)
    connection.sock = handshake(stack, server_name, context)
    serial = x509.load_der_x509_certificate(connection.sock.getpeercert(binary_form=True)).serial_number
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read(), serial
    finally:
        connection.close()


def self_signed(certificate):
    return certificate.issuer == certificate.subject


def issued_by_pebble(stack):
    return Pebble.issued(stack.logs("pebble"))


def metrics(stack):
    text = stack.compose("exec", "-T", "acme", "python", "-c", METRICS).stdout
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    }


def acme_log(stack):
    return [json.loads(line) for line in stack.logs("acme").splitlines() if line.startswith("{")]


def failures(stack):
    return [line for line in acme_log(stack) if line["level"] == "error"]


def renew(stack, force=False):
    """`make acme-renew`, as an operator runs it; returns the completed process."""
    return subprocess.run(
        ["make", "acme-renew", *(["FORCE=1"] if force else []), f"COMPOSE=docker compose -p {stack.project}"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_until_issued(stack, deadline_s=RETRY_INTERVAL_S + 90):
    wait_for(lambda: not self_signed(served(stack)), deadline_s=deadline_s, message="a certificate from Pebble served")
    return served(stack)


def test_before_any_issuance_nginx_serves_a_short_lived_self_signed_certificate_and_says_so(acme):
    fallback = acme.before_acme
    assert self_signed(fallback)
    names = fallback.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == set(DOMAINS)
    lifetime = fallback.not_valid_after_utc - fallback.not_valid_before_utc
    assert lifetime.days <= 8, lifetime
    assert "nginx serves a short-lived self-signed one until it arrives" in acme.fallback_log


def test_while_the_acme_server_cannot_be_reached_the_fallback_stays_and_the_job_says_why(acme):
    (failure, *_) = acme.unreachable["failures"]
    assert failure["message"] == "certificate renewal failed; nginx keeps serving the certificate it has"
    assert "pebble" in failure["reason"], failure["reason"]
    assert failure["serving_self_signed"] is True
    assert self_signed(acme.unreachable["served"])
    assert acme.unreachable["served"].serial_number == acme.before_acme.serial_number
    values = acme.unreachable["metrics"]
    assert values["acme_certificate_self_signed"] == 1
    assert values["acme_renewal_last_attempt_succeeded"] == 0
    assert values["acme_renewal_failures_total"] >= 1
    print(f"ACME server unreachable: {failure['time']}: {failure['reason']}")


def test_plain_http_serves_health_and_challenges_and_redirects_the_rest(acme):
    assert acme.get("/healthz").status_code == 200
    page = acme.get("/some/page?x=1", headers={"Host": DOMAINS[0]}, allow_redirects=False)
    assert page.status_code == 308
    assert page.headers["Location"] == f"https://{DOMAINS[0]}:{acme.https_port}/some/page?x=1"
    # Answered by nginx from the challenges' volume, never redirected nor passed to web.
    missing = acme.get("/.well-known/acme-challenge/no-such-token", headers={"Host": DOMAINS[0]})
    assert missing.status_code == 404
    written = acme.post("/.well-known/acme-challenge/no-such-token", headers={"Host": DOMAINS[0]})
    assert written.status_code == 403
    asked = [line for line in acme.nginx_access_log() if "no-such-token" in line["request"]]
    assert sorted(line["status"] for line in asked) == [403, 404]
    assert {line["upstream"] for line in asked} == {""}, "a challenge path went to web"


def test_nginx_refuses_to_answer_challenges_without_the_volume_they_are_written_to(acme):
    status, stderr = acme.run_to_exit(acme.running("nginx")[0].image, {"NGINX_ACME": "on"})
    assert status != 0
    assert "check-settings: NGINX_ACME=on needs the ACME challenges' volume mounted" in stderr


def test_the_first_certificate_is_issued_over_http_01_through_nginx_and_its_chain_verifies(acme):
    certificate = wait_until_issued(acme)
    serial = Pebble.hex_serial(certificate.serial_number)
    assert issued_by_pebble(acme) == [serial]
    # Verified against Pebble's root, for each name, by a client that checks the host name.
    for domain in DOMAINS:
        status, body, served_serial = https_get(acme, pebble_context(acme), "/healthz", server_name=domain)
        assert (status, served_serial) == (200, certificate.serial_number), body
    # Pebble fetched each name's challenge from nginx, which answered it from the volume.
    challenges = [
        line
        for line in acme.nginx_access_log()
        if "/.well-known/acme-challenge/" in line["request"] and "no-such-token" not in line["request"]
    ]
    assert len(challenges) >= len(DOMAINS), challenges
    assert {line["status"] for line in challenges} == {200}
    assert {line["upstream"] for line in challenges} == {""}, "a challenge went to web"
    installed = [line for line in acme_log(acme) if line["message"] == "installed a new certificate for nginx"]
    assert [line["serial"] for line in installed] == [Pebble.hex_serial(certificate.serial_number)]
    first = installed[0]
    print(f"ACME first issuance: serial {serial}, logged at {first['time']}, not after {first['not_after']}")
    values = metrics(acme)
    assert values["acme_certificate_self_signed"] == 0
    assert values["acme_renewal_last_attempt_succeeded"] == 1
    assert values["acme_certificate_not_after_timestamp_seconds"] == certificate.not_valid_after_utc.timestamp()


def test_a_forced_renewal_under_load_fails_no_request_and_the_new_certificate_is_served(acme):
    old = wait_until_issued(acme)
    issued_before = issued_by_pebble(acme)
    context = pebble_context(acme)

    # Each client names one of the domains in turn, so both names' handshakes are watched.
    def healthz(index):
        status, _, serial = https_get(acme, context, "/healthz", server_name=DOMAINS[index % 2])
        return status, serial

    with HttpsLoad(healthz, pause_s=0.1, max_seconds=120) as load:
        time.sleep(2)
        renewal_started = datetime.now(UTC)
        renewed = renew(acme, force=True)
        renewal_finished = datetime.now(UTC)
        renewal_done = time.monotonic()
        time.sleep(2)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    new = served(acme)
    assert new.serial_number != old.serial_number
    assert issued_by_pebble(acme) == [*issued_before, Pebble.hex_serial(new.serial_number)]

    failed = [outcome for outcome in load.outcomes if outcome[2] != 200]
    print(
        f"ACME forced renewal: serial {Pebble.hex_serial(old.serial_number)} -> "
        f"{Pebble.hex_serial(new.serial_number)}, from {renewal_started.isoformat(timespec='seconds')} "
        f"to {renewal_finished.isoformat(timespec='seconds')}; requests sent {len(load.outcomes)}, failed {len(failed)}"
    )
    assert not failed, failed[:5]
    assert len(load.outcomes) >= 20, len(load.outcomes)
    serials = [serial for _, _, _, serial in load.outcomes]
    assert old.serial_number in serials, "no request before the reload"
    # `make acme-renew` returns once nginx serves the new certificate: every later handshake shows it.
    after = {serial for started, _, _, serial in load.outcomes if started > renewal_done}
    assert after == {new.serial_number}, after


def test_a_renewal_whose_challenge_cannot_reach_nginx_fails_and_the_old_certificate_stays(acme):
    kept = wait_until_issued(acme)
    issued_before = issued_by_pebble(acme)
    before = metrics(acme)
    attempts_before, failures_before = before["acme_renewal_attempts_total"], before["acme_renewal_failures_total"]
    # As a firewall closing port 80 would: the names now lead Pebble where nothing answers.
    for domain in DOMAINS:
        acme.pebble.unresolve(domain)
    try:
        blocked = renew(acme, force=True)
        # Read at once: the job retries by itself ACME_RETRY_INTERVAL later.
        values = metrics(acme)
    finally:
        point_names_at_nginx(acme)
    assert blocked.returncode != 0
    assert "renewal failed" in blocked.stdout, blocked.stdout
    assert values["acme_renewal_attempts_total"] == attempts_before + 1
    assert values["acme_renewal_failures_total"] == failures_before + 1
    assert values["acme_renewal_last_attempt_succeeded"] == 0
    assert values["acme_certificate_self_signed"] == 0
    assert served(acme).serial_number == kept.serial_number
    status, _, _ = https_get(acme, pebble_context(acme), "/healthz")
    assert status == 200
    assert issued_by_pebble(acme) == issued_before

    (failure,) = [line for line in acme_log(acme) if line["level"] == "error"][-1:]
    assert failure["message"] == "certificate renewal failed; nginx keeps serving the certificate it has"
    assert "connection refused" in failure["reason"].lower(), failure["reason"]
    assert failure["serving"]["serial"] == Pebble.hex_serial(kept.serial_number)
    assert "port 80" in failure["hint"]
    print(f"ACME blocked challenge: {failure['time']}: {failure['reason']}")

    # With the path open again, a due-only run succeeds and issues nothing: not due.
    recovered = renew(acme)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert metrics(acme)["acme_renewal_last_attempt_succeeded"] == 1
    assert issued_by_pebble(acme) == issued_before


def test_prometheus_scrapes_the_job_it_is_handed_and_sees_the_failure(acme):
    port = free_loopback_port()
    observability = ("--profile", "observability")
    acme.env["PROMETHEUS_PORT"] = str(port)
    acme.compose(
        *observability, "up", "--build", "--detach", "--wait", "--wait-timeout", "120", "prometheus", timeout=600
    )
    try:

        def value(query):
            answer = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5).json()
            return [float(sample["value"][1]) for sample in answer["data"]["result"]]

        wait_for(lambda: value('up{job="acme"}') == [1.0], deadline_s=60, message="the acme target up")
        assert value("acme_renewal_failures_total")[0] >= 1
        assert value("acme_certificate_self_signed") == [0.0]
        assert value("acme_certificate_not_after_timestamp_seconds") == [served(acme).not_valid_after_utc.timestamp()]
    finally:
        acme.compose(*observability, "rm", "--stop", "--force", "--volumes", "prometheus", check=False)


def test_the_job_survives_nginx_restarting_and_still_reloads_it(acme):
    old = wait_until_issued(acme)
    acme.compose("restart", "nginx", timeout=120)
    point_names_at_nginx(acme)
    wait_for(lambda: bool(acme.running("acme")), deadline_s=60, message="the job running again")
    wait_for(lambda: metrics_answer(acme), deadline_s=60, message="the job answering again")
    renewed = renew(acme, force=True)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert served(acme).serial_number != old.serial_number


def metrics_answer(stack):
    try:
        return "acme_renewal_attempts_total" in metrics(stack)
    except RuntimeError:
        return False


def set_renew_before_expiry(stack, value):
    """certbot's documented per-certificate setting (renewal/site.conf), written as an operator
    would: None removes it, back to certbot's own rule."""
    script = (
        "import pathlib, re, sys; path = pathlib.Path('/var/lib/acme/certbot/renewal/site.conf'); "
        "text = re.sub(r'(?m)^renew_before_expiry = .*\\n', '', path.read_text()); "
        "path.write_text((f'renew_before_expiry = {sys.argv[1]}\\n' if sys.argv[1] != 'None' else '') + text)"
    )
    stack.compose("exec", "-T", "acme", "python", "-c", script, str(value))


def test_the_job_renews_a_certificate_once_it_is_due_with_no_one_asking(acme):
    old = wait_until_issued(acme)
    issued_before = issued_by_pebble(acme)
    lifetime_days = (old.not_valid_after_utc - old.not_valid_before_utc).days
    # Due now: renew when less than the certificate's whole lifetime is left.
    set_renew_before_expiry(acme, f"{lifetime_days + 1} days")
    try:
        # The job checks at start, then daily: a restart stands for the day going by.
        acme.compose("restart", "acme", timeout=120)
        wait_for(
            lambda: served(acme).serial_number != old.serial_number,
            deadline_s=90,
            message="the due certificate renewed by the job",
        )
    finally:
        set_renew_before_expiry(acme, None)
    new = served(acme)
    assert issued_by_pebble(acme) == [*issued_before, Pebble.hex_serial(new.serial_number)]
    status, _, _ = https_get(acme, pebble_context(acme), "/healthz")
    assert status == 200
    serials = f"{Pebble.hex_serial(old.serial_number)} -> {Pebble.hex_serial(new.serial_number)}"
    print(f"ACME due renewal by the job: serial {serials}")


def test_a_rollout_leaves_the_certificate_and_the_renewal_job_alone(acme):
    kept = wait_until_issued(acme)
    issued_before = issued_by_pebble(acme)
    untouched = {service: [c.id for c in acme.running(service)] for service in ("nginx", "acme")}
    old_web = {c.id for c in acme.running("web")}
    acme.make("rollout")
    assert not old_web & {c.id for c in acme.running("web")}, "web was not replaced"
    assert {service: [c.id for c in acme.running(service)] for service in ("nginx", "acme")} == untouched
    assert served(acme).serial_number == kept.serial_number
    assert issued_by_pebble(acme) == issued_before


def test_down_and_up_keep_the_certificate_and_the_account_and_issue_nothing(acme):
    kept = wait_until_issued(acme)
    issued_before = issued_by_pebble(acme)
    account = acme.compose("exec", "-T", "acme", "ls", "-R", "/var/lib/acme/certbot/accounts").stdout
    # The stack's containers go; the named volumes stay, as with `make down`. (Pebble stays
    # up: a new Pebble would know neither the account nor the certificate.)
    acme.compose("down", "--timeout", "40", *STACK_SERVICES, timeout=300)
    assert not acme.running("nginx")
    acme.compose("up", "--detach", "--wait", "--wait-timeout", "180", *STACK_SERVICES, timeout=600)
    point_names_at_nginx(acme)

    assert served(acme).serial_number == kept.serial_number
    assert "nginx serves the certificate ACME issued" in acme.logs("acme-fallback")
    assert acme.compose("exec", "-T", "acme", "ls", "-R", "/var/lib/acme/certbot/accounts").stdout == account
    wait_for(
        lambda: any(line["message"].startswith("the certificate is not due") for line in acme_log(acme)),
        deadline_s=60,
        message="the restarted job's check",
    )
    assert issued_by_pebble(acme) == issued_before
    assert metrics(acme)["acme_renewal_last_attempt_succeeded"] == 1


def test_a_changed_acme_directory_replaces_the_certificate_though_it_is_not_due(acme):
    # Last: from here on the job's directory differs from the fixture's.
    old = wait_until_issued(acme)
    issued_before = issued_by_pebble(acme)
    acme.env["ACME_DIRECTORY"] = "https://pebble-ca:14000/dir"  # as staging -> production
    acme.compose("up", "--detach", "--wait", "--wait-timeout", "120", "acme", timeout=300)
    # The one-shot fallback's settings changed too, so compose ran it again and recreated
    # nginx after it: a new address, which the job's retry reaches.
    point_names_at_nginx(acme)
    wait_for(
        lambda: served(acme).serial_number != old.serial_number,
        deadline_s=RETRY_INTERVAL_S + 90,
        message="the replaced certificate",
    )
    assert any(line["message"].startswith("ACME_DIRECTORY changed") for line in acme_log(acme))
    assert issued_by_pebble(acme) == [*issued_before, Pebble.hex_serial(served(acme).serial_number)]
