"""The metrics Prometheus's TLSCertificate* alerts read, from the installed pair and the status."""

from prometheus_client import CollectorRegistry, generate_latest

from renewal import certificate, metrics, status


def scrape(tmp_path):
    registry = CollectorRegistry()
    registry.register(metrics.RenewalCollector(tls_dir=tmp_path, status_file=tmp_path / "status.json"))
    lines = generate_latest(registry).decode().splitlines()
    return dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))


def test_before_anything_only_the_counters(tmp_path):
    assert scrape(tmp_path) == {"acme_renewal_attempts_total": "0.0", "acme_renewal_failures_total": "0.0"}


def test_a_failed_attempt_over_the_fallback(tmp_path):
    chain, key = certificate.fallback_pair(("shop.test",))
    certificate.install(tmp_path, chain, key)
    status.write(
        tmp_path / "status.json",
        status.Status(attempts=3, failures=2, last_attempt_succeeded=False, last_success_time=1700000000.0),
    )
    values = scrape(tmp_path)
    assert values["acme_renewal_attempts_total"] == "3.0"
    assert values["acme_renewal_failures_total"] == "2.0"
    assert values["acme_renewal_last_attempt_succeeded"] == "0.0"
    assert float(values["acme_renewal_last_success_timestamp_seconds"]) == 1700000000.0
    assert values["acme_certificate_self_signed"] == "1.0"
    assert (
        float(values["acme_certificate_not_after_timestamp_seconds"]) == certificate.facts(chain).not_after.timestamp()
    )
