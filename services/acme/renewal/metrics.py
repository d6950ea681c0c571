"""The job's metrics for Prometheus (services/prometheus, the acme job and the TLSCertificate*
alerts), read at each scrape from the installed certificate and the status file, so what a
renewal started by hand did counts too."""

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from renewal import certificate, settings, status


class RenewalCollector(Collector):
    def __init__(self, tls_dir=None, status_file=None):
        self.tls_dir = tls_dir or settings.TLS_DIR
        self.status_file = status_file or settings.STATUS_FILE

    def collect(self):
        record = status.read(self.status_file)
        yield CounterMetricFamily("acme_renewal_attempts", "certbot runs, due or not", value=record.attempts)
        yield CounterMetricFamily(
            "acme_renewal_failures", "certbot runs or installs that failed", value=record.failures
        )
        if record.last_attempt_succeeded is not None:
            yield GaugeMetricFamily(
                "acme_renewal_last_attempt_succeeded",
                "1 if the last renewal attempt succeeded, 0 if it failed",
                value=int(record.last_attempt_succeeded),
            )
        if record.last_success_time is not None:
            yield GaugeMetricFamily(
                "acme_renewal_last_success_timestamp_seconds",
                "When a renewal attempt last succeeded",
                value=record.last_success_time,
            )
        installed = certificate.installed(self.tls_dir)
        if installed is not None:
            yield GaugeMetricFamily(
                "acme_certificate_not_after_timestamp_seconds",
                "When the certificate installed for nginx expires",
                value=installed.not_after.timestamp(),
            )
            yield GaugeMetricFamily(
                "acme_certificate_self_signed",
                "1 while nginx serves the self-signed fallback, before ACME has issued a certificate",
                value=int(installed.self_signed),
            )


def serve(port=settings.METRICS_PORT):
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RenewalCollector())
    return start_http_server(port, registry=registry)
