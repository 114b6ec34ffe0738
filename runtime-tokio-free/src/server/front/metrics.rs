//! `/metrics` in the Prometheus text format: the hub's metrics, HTTP answers by status, and the process's resident
//! memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use switchboard_protocol::server::{DialectCounts, HubStats};

use crate::server::hub::metrics as hub_metrics;

/// HTTP answers counted by status (including 101 for upgrades).
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    by_status: Mutex<BTreeMap<u16, u64>>,
}

impl HttpMetrics {
    /// Counts one answer.
    pub fn count(&self, status: u16) {
        let mut m = self.by_status.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(status).or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Renders the whole `/metrics` page: the hub's metrics, then HTTP answers by status, then resident memory.
pub(crate) fn render(stats: &HubStats, by_dialect: DialectCounts, http: &HttpMetrics) -> String {
    let mut out = String::with_capacity(2048);
    let one = |v: u64| vec![(String::new(), v)];
    hub_metrics::render(&mut out, stats, by_dialect);
    let statuses: Vec<(String, u64)> = http
        .snapshot()
        .into_iter()
        .map(|(status, n)| (format!("{{status=\"{status}\"}}"), n))
        .collect();
    hub_metrics::metric(
        &mut out,
        "switchboard_http_requests_total",
        "counter",
        "HTTP requests answered, by status.",
        &statuses,
    );
    if let Some(rss) = resident_memory_bytes() {
        hub_metrics::metric(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &one(rss),
        );
    }
    out
}

/// The process's resident set size: `/proc/self/statm`'s second field (pages) times the page size from the
/// auxiliary vector (`AT_PAGESZ`), or 4096 when that cannot be read. `None` off Linux.
pub(crate) fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size().unwrap_or(4096)))
}

fn page_size() -> Option<u64> {
    const AT_PAGESZ: u64 = 6;
    let auxv = std::fs::read("/proc/self/auxv").ok()?;
    let word = std::mem::size_of::<usize>();
    auxv.chunks_exact(2 * word).find_map(|pair| {
        let read = |b: &[u8]| -> u64 {
            let mut v = [0u8; 8];
            v[..word].copy_from_slice(b);
            u64::from_ne_bytes(v)
        };
        (read(&pair[..word]) == AT_PAGESZ).then(|| read(&pair[word..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let http = HttpMetrics::default();
        http.count(200);
        http.count(200);
        http.count(404);
        let stats = HubStats::default();
        let text = render(&stats, DialectCounts::default(), &http);
        assert!(text.contains("# TYPE switchboard_connections gauge\n"));
        assert!(text.contains("switchboard_connections{dialect=\"native\"} 0\n"));
        assert!(text.contains("switchboard_http_requests_total{status=\"200\"} 2\n"));
        assert!(text.contains("switchboard_http_requests_total{status=\"404\"} 1\n"));
        assert!(text.contains("switchboard_publishes_total 0\n"));
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().is_some_and(|b| b > 0));
            assert!(text.contains("process_resident_memory_bytes "));
        }
    }

    #[test]
    fn page_size_is_a_power_of_two_on_linux() {
        if cfg!(target_os = "linux") {
            let p = page_size().unwrap();
            assert!(p.is_power_of_two() && p >= 4096);
        }
    }
}
