//! The hub's metrics in the Prometheus text format: connections by dialect, channels, subscriptions, sessions,
//! queued bytes, history, and the hub's counters.

use std::fmt::Write as _;

use switchboard_protocol::server::{DialectCounts, DialectKind, HubStats};

/// One metric: its help and type lines, then its samples (`labels` is `{…}` or empty).
pub(crate) fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, u64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Appends the hub's gauges and counters.
pub(crate) fn render(out: &mut String, stats: &HubStats, by_dialect: DialectCounts) {
    let one = |v: u64| vec![(String::new(), v)];
    let dialects: Vec<(String, u64)> = DialectKind::ALL
        .iter()
        .map(|k| {
            (
                format!("{{dialect=\"{}\"}}", k.as_str()),
                by_dialect.get(*k) as u64,
            )
        })
        .collect();
    metric(
        out,
        "switchboard_connections",
        "gauge",
        "Open connections (WebSockets and event streams) by dialect.",
        &dialects,
    );
    metric(
        out,
        "switchboard_channels",
        "gauge",
        "Channels the hub holds.",
        &one(stats.channels as u64),
    );
    metric(
        out,
        "switchboard_subscriptions",
        "gauge",
        "Subscriptions over all connections.",
        &one(stats.subscriptions as u64),
    );
    metric(
        out,
        "switchboard_sessions",
        "gauge",
        "Open sessions.",
        &one(stats.sessions as u64),
    );
    metric(
        out,
        "switchboard_queued_bytes",
        "gauge",
        "Bytes queued to writers and not yet flushed.",
        &one(stats.queued_bytes as u64),
    );
    metric(
        out,
        "switchboard_history_events",
        "gauge",
        "Events kept in history over all channels.",
        &one(stats.history_events as u64),
    );
    metric(
        out,
        "switchboard_history_bytes",
        "gauge",
        "Bytes of the events kept in history over all channels (each event's JSON length).",
        &one(stats.history_bytes as u64),
    );
    metric(
        out,
        "switchboard_connections_opened_total",
        "counter",
        "WebSocket connections ever opened.",
        &one(stats.connections_opened),
    );
    metric(
        out,
        "switchboard_publishes_total",
        "counter",
        "Events published.",
        &one(stats.published),
    );
    metric(
        out,
        "switchboard_deliveries_total",
        "counter",
        "Events delivered to subscribers, live and replayed.",
        &one(stats.delivered),
    );
    metric(
        out,
        "switchboard_frames_received_total",
        "counter",
        "WebSocket frames received.",
        &one(stats.frames_received),
    );
    metric(
        out,
        "switchboard_pending_publishes",
        "gauge",
        "Publishes waiting for the store's write before they are acknowledged and delivered.",
        &one(stats.pending_publishes as u64),
    );
    metric(
        out,
        "switchboard_storage_failures_total",
        "counter",
        "Publishes refused because the store could not write them (STORAGE_UNAVAILABLE, HTTP 503).",
        &one(stats.storage_failures),
    );
    metric(
        out,
        "switchboard_duplicate_publishes_total",
        "counter",
        "Publishes whose idempotency key was seen within the dedupe window: answered, nothing published.",
        &one(stats.duplicate_publishes),
    );
    metric(
        out,
        "switchboard_dedupe_keys",
        "gauge",
        "Idempotency keys remembered within the dedupe window.",
        &one(stats.dedupe_keys as u64),
    );
    metric(
        out,
        "switchboard_token_refreshes_total",
        "counter",
        "Token refreshes accepted on open connections.",
        &one(stats.token_refreshes),
    );
    metric(
        out,
        "switchboard_token_expiries_total",
        "counter",
        "Connections closed because their token expired without a refresh (4401).",
        &one(stats.token_expiries),
    );
    metric(
        out,
        "switchboard_errors_sent_total",
        "counter",
        "Error answers sent on WebSockets.",
        &one(stats.errors_sent),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_hubs_gauges_and_counters() {
        let mut text = String::new();
        render(&mut text, &HubStats::default(), DialectCounts::default());
        assert!(text.contains("# TYPE switchboard_connections gauge\n"));
        assert!(text.contains("switchboard_connections{dialect=\"native\"} 0\n"));
        assert!(text.contains("switchboard_publishes_total 0\n"));
        assert!(
            text.contains("# TYPE switchboard_history_bytes gauge\nswitchboard_history_bytes 0\n")
        );
    }
}
