//! [`Target`]: where a client dials and what its WebSocket upgrade request says, checked once when the client is
//! set up so that every later dial can only fail for network reasons.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::http::{HeaderValue, Uri, header};

use super::error::ConnectError;
#[cfg(feature = "tls")]
use futures_rustls::rustls::pki_types::ServerName;

/// A checked `ws://` or `wss://` URL and the optional bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    uri: Uri,
    /// `host:port` for the resolver.
    host_port: String,
    authorization: Option<HeaderValue>,
    /// The TLS setup for `wss://`; `None` for `ws://`.
    #[cfg(feature = "tls")]
    tls: Option<(crate::sdk::TlsConfig, ServerName<'static>)>,
}

impl Target {
    /// Checks the URL (`ws://host[:port][/path][?query]`, port 80 by default; `wss://`, port 443, with the
    /// feature `tls`, trusting Mozilla's roots until [`Target::trusting`]) and the token.
    pub(crate) fn parse(url: &str, token: Option<&str>) -> Result<Target, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|e| invalid(&format!("{e}")))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            #[cfg(feature = "tls")]
            Some("wss") => true,
            #[cfg(not(feature = "tls"))]
            Some("wss") => {
                return Err(ConnectError::Unsupported {
                    what: "wss:// (TLS) URLs without the feature `tls`; use ws://".to_owned(),
                });
            }
            Some(other) => {
                return Err(invalid(&format!("scheme {other:?} is not ws:// or wss://")));
            }
            None => return Err(invalid("no scheme; expected ws://host:port/path")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "user information in the URL is not supported; use a token",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        let port = authority
            .port_u16()
            .unwrap_or(if secure { 443 } else { 80 });
        #[cfg(feature = "tls")]
        let tls = if secure {
            let name = crate::sdk::tls::server_name(host).map_err(|e| invalid(&e))?;
            Some((crate::sdk::TlsConfig::webpki_roots(), name))
        } else {
            None
        };
        let authorization = match token {
            Some(token) => Some(
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| ConnectError::InvalidToken)?,
            ),
            None => None,
        };
        let target = Target {
            host_port: format!("{host}:{port}"),
            uri,
            authorization,
            #[cfg(feature = "tls")]
            tls,
        };
        // Build the request once now, so a dial cannot fail on it later.
        target.request().map_err(|e| invalid(&e))?;
        Ok(target)
    }

    /// Presents `token` from the next upgrade on. A token that cannot be a header value is refused and the old one
    /// kept.
    pub(crate) fn set_token(&mut self, token: &str) -> Result<(), ConnectError> {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ConnectError::InvalidToken)?;
        self.authorization = Some(value);
        Ok(())
    }

    /// `host:port`, for [`Runtime::resolve`](crate::Runtime::resolve).
    pub(crate) fn host_port(&self) -> &str {
        &self.host_port
    }

    /// For `wss://`: trust `tls` instead of Mozilla's roots (no effect on `ws://` or with `None`).
    #[cfg(feature = "tls")]
    pub(crate) fn trusting(mut self, tls: Option<crate::sdk::TlsConfig>) -> Target {
        if let (Some((current, _)), Some(tls)) = (self.tls.as_mut(), tls) {
            *current = tls;
        }
        self
    }

    /// For `wss://`: whom to trust and the server name to check.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&(crate::sdk::TlsConfig, ServerName<'static>)> {
        self.tls.as_ref()
    }

    /// The URL.
    pub(crate) fn uri(&self) -> &Uri {
        &self.uri
    }

    /// A fresh upgrade request (each carries a new `Sec-WebSocket-Key`), with the bearer token if any.
    pub(crate) fn request(&self) -> Result<Request, String> {
        let mut request = self
            .uri
            .clone()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(value) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_parse_with_default_port() {
        let t = Target::parse("ws://127.0.0.1:8000/api/ws", None).unwrap();
        assert_eq!(t.host_port(), "127.0.0.1:8000");
        let t = Target::parse("ws://example.test/api/ws?x=1", None).unwrap();
        assert_eq!(t.host_port(), "example.test:80");
        let t = Target::parse("ws://[::1]:9000/api/ws", None).unwrap();
        assert_eq!(t.host_port(), "[::1]:9000");
        let req = t.request().unwrap();
        assert_eq!(req.uri().path(), "/api/ws");
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
    }

    #[test]
    fn token_goes_in_the_authorization_header() {
        let t = Target::parse("ws://h:1/api/ws", Some("s3cret")).unwrap();
        let req = t.request().unwrap();
        assert_eq!(
            req.headers().get(header::AUTHORIZATION).unwrap(),
            "Bearer s3cret"
        );
        assert_eq!(
            Target::parse("ws://h:1/", Some("bad\ntoken")).unwrap_err(),
            ConnectError::InvalidToken
        );
    }

    #[test]
    fn wss_urls_default_to_port_443_and_other_urls_are_invalid() {
        let t = Target::parse("wss://h/api/ws", None).unwrap();
        assert_eq!(t.host_port(), "h:443");
        assert!(t.tls().is_some());
        assert!(
            Target::parse("ws://h/api/ws", None)
                .unwrap()
                .tls()
                .is_none()
        );
        for bad in [
            "http://h/api/ws",
            "h:80/api/ws",
            "ws:///api/ws",
            "not a url",
            "ws://u:p@h/x",
        ] {
            assert!(
                matches!(
                    Target::parse(bad, None),
                    Err(ConnectError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }
}
