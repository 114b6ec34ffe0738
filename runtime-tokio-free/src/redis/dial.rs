//! Dialing Redis: resolve, connect to each address in turn, TLS for `rediss://`.

use std::io;

use switchboard_protocol::redis::RedisUrl;

use super::options::RedisOptions;
use crate::Runtime;
use crate::sdk::maybe_tls::MaybeTlsStream;

/// A connection to Redis, plain or TLS.
pub(crate) type Stream<R> = MaybeTlsStream<<R as Runtime>::Tcp>;

/// Opens one connection to `options.url`.
pub(crate) async fn dial<R: Runtime>(runtime: R, options: RedisOptions) -> io::Result<Stream<R>> {
    let url: &RedisUrl = &options.url;
    let addrs = runtime.resolve(url.host_port()).await?;
    let mut last_error = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} resolved to no address", url.host_port()),
    );
    for addr in addrs {
        match runtime.connect(addr).await {
            Ok(tcp) => return secure(tcp, &options).await,
            Err(e) => last_error = io::Error::new(e.kind(), format!("connecting to {addr}: {e}")),
        }
    }
    Err(last_error)
}

#[cfg(feature = "tls")]
async fn secure<T>(tcp: T, options: &RedisOptions) -> io::Result<MaybeTlsStream<T>>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    if !options.url.tls {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    let name = crate::sdk::tls::server_name(&options.url.host)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = options.tls.handshake(name, tcp).await?;
    Ok(MaybeTlsStream::Tls(Box::new(stream)))
}

#[cfg(not(feature = "tls"))]
async fn secure<T>(tcp: T, options: &RedisOptions) -> io::Result<MaybeTlsStream<T>> {
    if options.url.tls {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "rediss:// needs the runtime's `tls` feature",
        ));
    }
    Ok(MaybeTlsStream::Plain(tcp))
}
