//! Connection limits checked before a WebSocket upgrade: WebSocket connections in total (503 past
//! `max_connections`) and per client IP address (429 past `max_connections_per_ip`), plus the `Origin` allowlist
//! (403).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use switchboard_protocol::rest::{ErrorReply, RequestHead};

/// Counts of open (and opening) WebSocket connections.
#[derive(Debug)]
pub(crate) struct ConnLimits {
    max_total: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One counted connection; uncounted when dropped. It owns a handle on the counts, so it can move into the
/// session's task and live exactly as long as the connection.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    counts: Arc<Mutex<Counts>>,
    ip: Option<IpAddr>,
}

impl ConnLimits {
    /// Limits of `max_total` and `max_per_ip` (0: no limit).
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnLimits {
        ConnLimits {
            max_total,
            max_per_ip,
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        lock(&self.counts)
    }

    /// Counts one more connection from `ip` (`None`: a stream with no address, counted in the total only), or
    /// says which limit it is over.
    pub fn acquire(&self, ip: Option<IpAddr>) -> Result<ConnSlot, ErrorReply> {
        let mut counts = self.lock();
        if self.max_total > 0 && counts.total >= self.max_total {
            return Err(ErrorReply::too_many_connections());
        }
        if let Some(ip) = ip {
            let n = counts.per_ip.get(&ip).copied().unwrap_or(0);
            if self.max_per_ip > 0 && n >= self.max_per_ip {
                return Err(ErrorReply::too_many_connections_from_address());
            }
            counts.per_ip.insert(ip, n + 1);
        }
        counts.total += 1;
        Ok(ConnSlot {
            counts: Arc::clone(&self.counts),
            ip,
        })
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(n) = counts.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

/// 403 when `allowed` is not empty and the request carries an `Origin` not in it.
pub(crate) fn check_origin(allowed: &[String], head: &RequestHead) -> Result<(), ErrorReply> {
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(origin) = head.header("origin") else {
        return Ok(());
    };
    let origin = origin.trim().trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        Ok(())
    } else {
        tracing::debug!(origin, "upgrade refused: origin not allowed");
        Err(ErrorReply::forbidden("this origin is not allowed"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::parse_head;
    use super::*;

    #[test]
    fn total_and_per_ip_limits_count_and_release() {
        let limits = ConnLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = limits.acquire(Some(a)).unwrap();
        let _s2 = limits.acquire(Some(a)).unwrap();
        assert_eq!(limits.acquire(Some(a)).unwrap_err().status, 429);
        let _s3 = limits.acquire(Some(b)).unwrap();
        assert_eq!(limits.acquire(Some(b)).unwrap_err().status, 503);
        drop(s1);
        let _s4 = limits.acquire(Some(a)).unwrap();
        let off = ConnLimits::new(0, 0);
        let _many: Vec<_> = (0..10).map(|_| off.acquire(Some(a)).unwrap()).collect();
    }

    #[test]
    fn origins() {
        let head = |origin: &str| {
            let raw = format!("GET /ws HTTP/1.1\r\nOrigin: {origin}\r\n\r\n");
            parse_head(raw.as_bytes(), 1024).unwrap().unwrap().0
        };
        let allowed = vec!["https://app.example.com/".to_owned()];
        assert!(check_origin(&allowed, &head("https://APP.example.com")).is_ok());
        assert_eq!(
            check_origin(&allowed, &head("https://evil.example"))
                .unwrap_err()
                .status,
            403
        );
        assert!(check_origin(&[], &head("https://evil.example")).is_ok());
        let none = parse_head(b"GET /ws HTTP/1.1\r\n\r\n", 1024)
            .unwrap()
            .unwrap()
            .0;
        assert!(check_origin(&allowed, &none).is_ok());
    }
}
