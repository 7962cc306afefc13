"""Prometheus metrics at ``GET /metrics``: requests, latency, requests in flight, the pool.

Each app has its own registry (several apps in one process, as in tests, do not collide). The
middleware is plain ASGI, not Starlette's ``BaseHTTPMiddleware``, so it adds no task per request
and streams pass through untouched. Requests are labelled by route template
(``/api/v1/conversations/{conversation_id}``), never by the raw path, so ids cannot explode the
label set; paths that match no route are counted as ``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentkeep.db.service import DatabaseService

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The registry and the instruments one app reports."""

    def __init__(self, version: str, backend: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agentkeep_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agentkeep_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "agentkeep_http_requests_in_flight",
            "Requests being answered now",
            registry=self.registry,
        )
        info = Gauge(
            "agentkeep_info",
            "Server version and database backend",
            ["version", "backend"],
            registry=self.registry,
        )
        info.labels(version=version, backend=backend).set(1)

    def watch_pool(self, service: DatabaseService) -> None:
        self.registry.register(_PoolCollector(service))

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _PoolCollector(Collector):
    """Read at scrape time: how many pooled connections are checked out and idle."""

    def __init__(self, service: DatabaseService) -> None:
        self._service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service = self._service
        pool = service.engine.pool
        # a QueuePool counts its connections; the in-memory store's single connection does not
        in_use, idle = (
            (pool.checkedout(), pool.checkedin()) if isinstance(pool, QueuePool) else (0, 0)
        )
        # a SQLite file's writer connection stays checked out between writes: idle while no
        # write holds the writer lock
        lock = service.writer_lock
        if service.writer is not None and lock is not None and not lock.locked():
            in_use, idle = max(in_use - 1, 0), idle + 1
        yield GaugeMetricFamily(
            "agentkeep_db_connections_in_use", "Pooled connections checked out", value=in_use
        )
        yield GaugeMetricFamily(
            "agentkeep_db_connections_idle", "Pooled connections waiting in the pool", value=idle
        )


class MetricsMiddleware:
    """Count and time every HTTP request by the route it matched."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what an exception escaping the app becomes
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.latency.labels(method, template).observe(time.perf_counter() - started)
            metrics.requests.labels(method, template, str(status)).inc()
