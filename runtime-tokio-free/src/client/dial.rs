//! Dialing: resolve, TCP connect (each address in turn), TLS for `wss://`, WebSocket upgrade over the runtime's stream with
//! async-tungstenite's runtime-neutral `client_async_with_config`. Failures are classified for the machine: an
//! upgrade answered with 401, 403 or 404 cannot be fixed by retrying ([`ConnectFailure::Rejected`]); everything
//! else is [`ConnectFailure::Transient`].

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use switchboard_protocol::client::ConnectFailure;

use super::target::Target;
use crate::Runtime;
use crate::sdk::MaybeTlsStream;

/// A WebSocket over the runtime's TCP stream, plain or TLS.
pub(crate) type Socket<R> = WebSocketStream<MaybeTlsStream<<R as Runtime>::Tcp>>;

/// Opens one connection to the target.
pub(crate) async fn dial<R: Runtime>(
    runtime: R,
    target: Target,
    config: WebSocketConfig,
) -> Result<Socket<R>, ConnectFailure> {
    let addrs = runtime
        .resolve(target.host_port().to_owned())
        .await
        .map_err(|e| ConnectFailure::Transient(format!("resolving {}: {e}", target.host_port())))?;
    let mut last_error = None;
    let mut tcp = None;
    for addr in addrs {
        match runtime.connect(addr).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last_error = Some(format!("connecting to {addr}: {e}")),
        }
    }
    let Some(tcp) = tcp else {
        return Err(ConnectFailure::Transient(last_error.unwrap_or_else(|| {
            format!("{} resolved to no address", target.host_port())
        })));
    };
    #[cfg(feature = "tls")]
    let stream = match target.tls() {
        None => MaybeTlsStream::Plain(tcp),
        Some((tls, name)) => match tls.handshake(name.clone(), tcp).await {
            Ok(stream) => MaybeTlsStream::Tls(Box::new(stream)),
            // A certificate refused will be refused again.
            Err(e) if crate::sdk::tls::is_tls_refusal(&e) => {
                return Err(ConnectFailure::Rejected(format!("TLS handshake: {e}")));
            }
            Err(e) => return Err(ConnectFailure::Transient(format!("TLS handshake: {e}"))),
        },
    };
    #[cfg(not(feature = "tls"))]
    let stream = MaybeTlsStream::Plain(tcp);
    let request = target.request().map_err(ConnectFailure::Transient)?;
    match async_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(e) => Err(classify(&e)),
    }
}

/// Whether retrying could help.
fn classify(error: &WsError) -> ConnectFailure {
    match error {
        WsError::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let why = format!(
                "the upgrade was answered with HTTP {status} {}",
                body.trim()
            );
            match status.as_u16() {
                401 | 403 | 404 => ConnectFailure::Rejected(why),
                _ => ConnectFailure::Transient(why),
            }
        }
        other => ConnectFailure::Transient(format!("WebSocket upgrade failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::http::Response;

    fn http(status: u16) -> WsError {
        let response = Response::builder()
            .status(status)
            .body(Some(br#"{"error":{"code":"X"}}"#.to_vec()))
            .unwrap();
        WsError::Http(Box::new(response))
    }

    #[test]
    fn auth_and_not_found_are_rejections_the_rest_transient() {
        for status in [401, 403, 404] {
            assert!(
                matches!(classify(&http(status)), ConnectFailure::Rejected(ref why) if why.contains(&status.to_string())),
                "{status}"
            );
        }
        for status in [400, 429, 500, 503] {
            assert!(
                matches!(classify(&http(status)), ConnectFailure::Transient(_)),
                "{status}"
            );
        }
        assert!(matches!(
            classify(&WsError::ConnectionClosed),
            ConnectFailure::Transient(_)
        ));
    }
}
