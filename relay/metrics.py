"""Prometheus metrics, read from the relay's plain counters at scrape time, so the
fan-out hot path pays nothing for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .state import RelayState


class RelayCollector(Collector):
    def __init__(self, state: RelayState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        hub = state.hub
        stats = hub.stats
        yield GaugeMetricFamily(
            "dialjam_relay_connections", "Open WebSocket connections", value=len(state.connections)
        )
        websockets = GaugeMetricFamily(
            "dialjam_relay_websockets",
            "Open WebSockets by kind: the relay's clients (relay) and gateways' streams",
            labels=["kind"],
        )
        for kind, count in sorted(state.sockets.counts().items()):
            websockets.add_metric([kind], count)
        yield websockets
        yield GaugeMetricFamily(
            "dialjam_relay_subscriptions",
            "Channel subscriptions",
            value=hub.subscription_count(),
        )
        yield GaugeMetricFamily(
            "dialjam_relay_channels", "Channels held (live or in history)", value=len(hub.channels)
        )
        yield CounterMetricFamily(
            "dialjam_relay_frames_in", "WebSocket frames received", value=state.frames_in
        )
        yield CounterMetricFamily(
            "dialjam_relay_throttled",
            "Frames of publishers held back for publisher_rate (read later, not refused)",
            value=state.throttled,
        )
        yield CounterMetricFamily(
            "dialjam_relay_events_published",
            "Events published (messages in)",
            value=stats.published,
        )
        yield CounterMetricFamily(
            "dialjam_relay_events_delivered",
            "Events written to subscribers (messages out)",
            value=stats.delivered,
        )
        yield CounterMetricFamily(
            "dialjam_relay_frames_out", "WebSocket frames written", value=stats.frames_out
        )
        yield CounterMetricFamily(
            "dialjam_relay_bytes_out", "Bytes written to subscribers", value=stats.bytes_out
        )
        yield CounterMetricFamily(
            "dialjam_relay_drops", "Events dropped from overflowing outboxes", value=stats.drops
        )
        yield CounterMetricFamily(
            "dialjam_relay_slow_closed",
            "Subscribers closed for staying overflowed",
            value=stats.slow_closed,
        )
        yield GaugeMetricFamily(
            "dialjam_relay_history_bytes",
            "Bytes of history held, all channels (envelopes and their bookkeeping)",
            value=hub.history_bytes,
        )
        history_dropped = CounterMetricFamily(
            "dialjam_relay_history_dropped",
            "Events dropped from history by a byte bound: a channel's (channel) or all "
            "channels' together (total)",
            labels=["bound"],
        )
        history_dropped.add_metric(["channel"], stats.history_dropped_channel)
        history_dropped.add_metric(["total"], stats.history_dropped_total)
        yield history_dropped
        edge = state.edge
        if edge is not None:
            ledger = edge.ledger
            yield GaugeMetricFamily(
                "dialjam_relay_sockets",
                "Open client sockets (HTTP and WebSocket)",
                value=len(ledger),
            )
            yield GaugeMetricFamily(
                "dialjam_relay_sockets_token_holders",
                "Open sockets whose requests showed a known token",
                value=ledger.holders,
            )
            yield GaugeMetricFamily(
                "dialjam_relay_sockets_max",
                "Sockets allowed at once (max_connections)",
                value=ledger.limits.total,
            )
            refused = CounterMetricFamily(
                "dialjam_relay_refused",
                "Sockets and requests refused at the edge, by reason",
                labels=["reason"],
            )
            for reason, count in edge.figures(state.errors)["refused"].items():
                refused.add_metric([reason], count)
            yield refused
        errors = CounterMetricFamily(
            "dialjam_relay_errors", "Refused frames and requests, by error code", labels=["code"]
        )
        for code, count in sorted(state.errors.items()):
            errors.add_metric([code], count)
        yield errors
        yield from gateway_metrics(state)
        backplane = state.backplane
        if backplane is not None:
            yield GaugeMetricFamily(
                "dialjam_relay_backplane_up",
                "1 while the shared channels' Redis is listened to and takes publishes",
                value=1 if backplane.ok else 0,
            )
            yield CounterMetricFamily(
                "dialjam_relay_backplane_reconnects",
                "Times the backplane's listener or writer started again after a failure",
                value=backplane.reconnects,
            )
            yield CounterMetricFamily(
                "dialjam_relay_backplane_caught_up",
                "Events read from Redis's streams after missing them live (reconnects)",
                value=backplane.caught_up,
            )
            yield GaugeMetricFamily(
                "dialjam_relay_backplane_waiting",
                "Publishes waiting to be sent to Redis",
                value=len(backplane.queue),
            )
        latency = stats.latency
        yield HistogramMetricFamily(
            "dialjam_relay_fanout_latency_seconds",
            "Publish to socket write, oldest event of each write",
            buckets=[(bound, float(count)) for bound, count in latency.cumulative()],
            sum_value=latency.total,
        )


def gateway_metrics(state: RelayState) -> Iterator[Metric]:
    """Each gateway's /healthz figures (numbers and yes/no, e.g. ARI's callers and
    app_proven) and its status (1 for the status it is in)."""
    figures = GaugeMetricFamily(
        "dialjam_gateway", "Gateways' figures, as /healthz shows them", labels=["gateway", "figure"]
    )
    statuses = GaugeMetricFamily(
        "dialjam_gateway_status", "A gateway's status (1: this one)", labels=["gateway", "status"]
    )
    for name, health in sorted(state.gateway_health.items()):
        for figure, value in health().items():
            if figure == "status" and isinstance(value, str):
                statuses.add_metric([name, value], 1)
            elif isinstance(value, int | float):  # bools too: 1 or 0
                figures.add_metric([name, figure], float(value))
    yield figures
    yield statuses


def make_registry(state: RelayState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RelayCollector(state))
    return registry
