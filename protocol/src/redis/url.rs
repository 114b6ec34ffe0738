//! [`RedisUrl`]: where a Redis server is and how to log in, from `redis://[[user]:password@]host[:port][/db]`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A parsed Redis address. Its [`Display`](fmt::Display) hides the password, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// `rediss://`: the connection runs over TLS.
    pub tls: bool,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port (6379 when the URL has none).
    pub port: u16,
    /// The ACL user name, when the URL names one.
    pub username: Option<String>,
    /// The password, when the URL carries one.
    pub password: Option<String>,
    /// The logical database (`SELECT`), 0 when the URL has no path.
    pub db: u32,
}

/// Why a Redis URL was refused (the caller's mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `redis://` or `rediss://`.
    #[error("a Redis URL starts with redis:// or rediss://")]
    Scheme,
    /// No host.
    #[error("the Redis URL names no host")]
    NoHost,
    /// A port that is not a number from 1 to 65535.
    #[error("the Redis URL's port is not a number from 1 to 65535")]
    Port,
    /// A path that is not a database number.
    #[error("the Redis URL's path must be a database number (redis://host:port/0)")]
    Db,
    /// A `%` escape that is not two hex digits, or that does not decode to UTF-8.
    #[error("the Redis URL's user or password has a bad %-escape")]
    Escape,
}

impl RedisUrl {
    /// Parses `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS). User and password may be
    /// %-escaped.
    pub fn parse(url: &str) -> Result<RedisUrl, UrlError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss://") {
            (true, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, pass)) => (non_empty(unescape(user)?), Some(unescape(pass)?)),
                None => (non_empty(unescape(info)?), None),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let db = match path.trim_end_matches('/') {
            "" => 0,
            db => db.parse().map_err(|_| UrlError::Db)?,
        };
        Ok(RedisUrl {
            tls,
            host: host.to_string(),
            port,
            username,
            password,
            db,
        })
    }

    /// `host:port`, for resolving (IPv6 hosts in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            alloc::format!("[{}]:{}", self.host, self.port)
        } else {
            alloc::format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(f, "{scheme}://")?;
        match (&self.username, &self.password) {
            (Some(user), Some(_)) => write!(f, "{user}:***@")?,
            (Some(user), None) => write!(f, "{user}@")?,
            (None, Some(_)) => write!(f, ":***@")?,
            (None, None) => {}
        }
        write!(f, "{}/{}", self.host_port(), self.db)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn split_host_port(hostport: &str) -> Result<(&str, u16), UrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']').ok_or(UrlError::NoHost)?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(UrlError::Port),
        };
        (&rest[..end], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None => 6379,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(UrlError::Port),
        },
    };
    Ok((host, port))
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn unescape(text: &str) -> Result<String, UrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::Escape)?;
            let hex = core::str::from_utf8(hex).map_err(|_| UrlError::Escape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Escape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Escape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn reads_every_part() {
        let url = RedisUrl::parse("rediss://app:p%40ss@cache.internal:6380/2").unwrap();
        assert!(url.tls);
        assert_eq!(url.host, "cache.internal");
        assert_eq!(url.port, 6380);
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!(url.db, 2);
        assert_eq!(format!("{url}"), "rediss://app:***@cache.internal:6380/2");

        let url = RedisUrl::parse("redis://:secret@127.0.0.1").unwrap();
        assert_eq!(
            (url.username, url.password.as_deref()),
            (None, Some("secret"))
        );
        assert_eq!((url.port, url.db, url.tls), (6379, 0, false));

        let url = RedisUrl::parse("redis://[::1]:7000/").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 7000));
        assert_eq!(url.host_port(), "[::1]:7000");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (url, error) in [
            ("http://x", UrlError::Scheme),
            ("redis://", UrlError::NoHost),
            ("redis://:pw@:6379", UrlError::NoHost),
            ("redis://h:0", UrlError::Port),
            ("redis://h:99999", UrlError::Port),
            ("redis://h:x", UrlError::Port),
            ("redis://[::1]x", UrlError::Port),
            ("redis://h/db1", UrlError::Db),
            ("redis://u:%zz@h", UrlError::Escape),
            ("redis://u:%4@h", UrlError::Escape),
        ] {
            assert_eq!(RedisUrl::parse(url), Err(error), "{url}");
        }
    }
}
