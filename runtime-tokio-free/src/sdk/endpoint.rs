//! Where a client sends its requests: an [`Endpoint`] is a parsed base URL — scheme, host, port and an optional
//! path prefix that every request target is put under.
//!
//! Only what an API base URL needs is accepted: `http` or `https`, a host (a name, an IPv4 address or a bracketed
//! IPv6 address), an optional port, an optional path. User info (`user:pass@`), a query and a fragment are refused:
//! credentials go in [`ApiConfig::token`](super::ApiConfig::token), never in a URL that ends up in logs.

use std::fmt;

use super::config_error::ConfigError;

/// The URL scheme of an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain-text HTTP/1.1.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed base URL (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: u16,
    base_path: String,
}

impl Endpoint {
    /// Parses a base URL such as `http://localhost:8080` or `https://api.example.com/switchboard`.
    pub fn parse(url: &str) -> Result<Endpoint, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("missing scheme (http:// or https://)"))?;
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(invalid("the scheme must be http or https"));
        };
        if rest.contains(['?', '#']) {
            return Err(invalid("a base URL takes no query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(invalid("credentials in the URL are refused; use the token"));
        }
        let (host, port) = split_host_port(authority).map_err(invalid)?;
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?,
        };
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("the path must be percent-encoded ASCII"));
        }
        Ok(Endpoint {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as written (lower-cased; IPv6 addresses without their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL named none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path prefix put before every target, without a trailing `/` (empty for none).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// `host:port` as [`Runtime::resolve`](crate::Runtime::resolve) takes it (IPv6 bracketed).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The origin, `scheme://host[:port]`, leaving out the scheme's default port (what a `Host` header and an
    /// absolute URL carry).
    pub fn origin(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            format!("{}://{host}", self.scheme.as_str())
        } else {
            format!("{}://{host}:{}", self.scheme.as_str(), self.port)
        }
    }

    /// The absolute URL of an origin-form `target` (`/path?query`) that already includes the base path.
    pub fn url(&self, target: &str) -> String {
        format!("{}{target}", self.origin())
    }

    /// The origin-form target of an API route: the base path followed by `route` (which starts with `/`).
    pub fn target(&self, route: &str) -> String {
        if route.starts_with('/') {
            format!("{}{route}", self.base_path)
        } else {
            format!("{}/{route}", self.base_path)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.base_path)
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 host needs its closing bracket")?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or("unexpected text after the IPv6 host"),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, Some(port))),
        Some(_) => Err("an IPv6 host must be in brackets"),
        None => Ok((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let e = Endpoint::parse("http://LocalHost:8080/api/").unwrap();
        assert_eq!(
            (e.scheme(), e.host(), e.port(), e.base_path()),
            (Scheme::Http, "localhost", 8080, "/api")
        );
        assert_eq!(e.origin(), "http://localhost:8080");
        assert_eq!(e.target("/health"), "/api/health");
        assert_eq!(
            e.url(&e.target("/health")),
            "http://localhost:8080/api/health"
        );
        assert_eq!(e.to_string(), "http://localhost:8080/api");

        let e = Endpoint::parse("https://example.com").unwrap();
        assert_eq!((e.port(), e.base_path()), (443, ""));
        assert_eq!(e.origin(), "https://example.com");
        assert_eq!(e.host_port(), "example.com:443");
        assert_eq!(e.target("health"), "/health");

        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 9000));
        assert_eq!(e.host_port(), "[::1]:9000");
        assert_eq!(e.origin(), "http://[::1]:9000");
    }

    #[test]
    fn refuses_what_a_base_url_must_not_have() {
        for bad in [
            "localhost:8080",
            "ftp://x",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "http://u:p@h",
            "http://h/?q=1",
            "http://h/#f",
            "http://::1",
            "http://[::1",
            "http://[::1]x",
            "http://h/a b",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(ConfigError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
