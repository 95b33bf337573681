"""Prometheus metrics: what the service does (counted as it happens) and what it holds (read
from the database at each scrape).

Counted, per process, added up across gunicorn's workers by prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, which ``signing-service run`` sets):

- ``signing_service_signatures_total{identity_sha1, algorithm, outcome}``: digests asked to be
  signed, by identity, algorithm and outcome (``success`` or ``failure``), as audited;
- ``signing_service_api_refusals_total{reason}``: client API refusals, by the error code the
  client got (``bad_credentials``, ``identity_inactive``, ...);
- ``signing_service_api_request_duration_seconds{route, method}``: client API latency;
- ``signing_service_audit_write_failures_total``: audit writes that failed (each refused a
  request).

Read at each scrape, the same from every replica:

- ``signing_service_clients{state}``: registered clients, and those active (client and key on);
- ``signing_service_identity_not_after_timestamp_seconds{identity_sha1, common_name}``: when
  each active identity's certificate expires, so an alert can fire weeks before.
"""

from __future__ import annotations

import collections
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from signing_service.audit.models import AuditEvent, RequestType

SIGNATURES = Counter(
    "signing_service_signatures",
    "Digests asked to be signed, by identity, algorithm and outcome, as audited.",
    ["identity_sha1", "algorithm", "outcome"],
)
API_REFUSALS = Counter(
    "signing_service_api_refusals", "Client API refusals, by error code.", ["reason"]
)
API_LATENCY = Histogram(
    "signing_service_api_request_duration_seconds",
    "Client API request latency.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
AUDIT_WRITE_FAILURES = Counter(
    "signing_service_audit_write_failures", "Audit writes that failed (each refused a request)."
)


def count_audited(events: list[AuditEvent]) -> None:
    """Count the signature records by their labels, each set of labels once (a batch's records
    mostly share theirs)."""
    counts = collections.Counter(
        (event.identity_sha1, event.algorithm, event.status)
        for event in events
        if event.request_type == RequestType.SIGN
    )
    for labels, count in counts.items():
        SIGNATURES.labels(*labels).inc(count)


class DatabaseCollector(Collector):
    """What the service holds, read when scraped."""

    def collect(self):
        from signing_service.access.models import Client
        from signing_service.identities.models import Identity

        clients = GaugeMetricFamily(
            "signing_service_clients", "Registered client machines.", labels=["state"]
        )
        clients.add_metric(["registered"], Client.objects.count())
        clients.add_metric(
            ["active"], Client.objects.filter(is_active=True, api_key__is_active=True).count()
        )
        yield clients
        expiry = GaugeMetricFamily(
            "signing_service_identity_not_after_timestamp_seconds",
            "When each active identity's certificate expires (Unix time).",
            labels=["identity_sha1", "common_name"],
        )
        for sha1, common_name, not_after in Identity.objects.filter(is_active=True).values_list(
            "sha1", "common_name", "not_after"
        ):
            expiry.add_metric([sha1, common_name], not_after.timestamp())
        yield expiry


def registry() -> CollectorRegistry:
    """Every worker's counts (multiprocess mode) or this process's, and the database's."""
    scraped = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scraped)
    else:
        scraped.register(REGISTRY)
    scraped.register(DatabaseCollector())
    return scraped
