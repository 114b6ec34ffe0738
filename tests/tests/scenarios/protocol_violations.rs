//! Frames that break RFC 6455, handcrafted and sent over a plain TCP stream after a real upgrade: the server
//! answers each with a Close frame (1002 for a framing violation, 1007 for text that is not UTF-8), then ends the
//! connection once the close handshake is over, instead of dropping the TCP connection without a word.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use switchboard_runtime::Runtime;
use switchboard_tests::http::HttpConn;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded};

use super::{start, test_config};

const UPGRADE: &str = "GET /api/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A client frame: `first` is the FIN/RSV/opcode byte; the payload is masked unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, true)
}

/// Every violation with the close code it must get.
fn violations() -> Vec<(&'static str, Vec<u8>, u16)> {
    vec![
        ("unmasked client frame", frame(0x81, b"hello", false), 1002),
        ("RSV1 set", masked(0xc1, b"{}"), 1002),
        ("RSV2 and RSV3 set", masked(0xb1, b"{}"), 1002),
        ("unknown data opcode", masked(0x83, b"x"), 1002),
        ("unknown control opcode", masked(0x8b, b""), 1002),
        ("oversized ping", masked(0x89, &[b'p'; 126]), 1002),
        ("fragmented ping", masked(0x09, b"p"), 1002),
        ("orphan continuation", masked(0x80, b"x"), 1002),
        (
            "text interleaved in a fragmented message",
            [masked(0x01, b"{\"a\""), masked(0x81, b"{}")].concat(),
            1002,
        ),
        ("1-byte close payload", masked(0x88, &[0x03]), 1002),
        (
            "invalid UTF-8 text",
            masked(0x81, &[b'{', 0xff, 0xfe, b'}']),
            1007,
        ),
        (
            "invalid UTF-8 across fragments",
            [masked(0x01, &[0xe2, 0x82]), masked(0x80, &[0x28])].concat(),
            1007,
        ),
    ]
}

/// A server frame: its opcode and payload.
struct ServerFrame {
    opcode: u8,
    payload: Vec<u8>,
}

/// Reads the next server frame from `stream`, `buf` holding bytes already read; `None` at end of stream.
async fn read_frame<S: futures_lite::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Option<ServerFrame> {
    loop {
        if let Some((frame, used)) = parse_frame(buf) {
            buf.drain(..used);
            return Some(frame);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse_frame(buf: &[u8]) -> Option<(ServerFrame, usize)> {
    let (&first, rest) = buf.split_first()?;
    let (&second, rest) = rest.split_first()?;
    assert_eq!(second & 0x80, 0, "server frames are not masked");
    let (len, header) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let payload = buf.get(header..header + len)?.to_vec();
    Some((
        ServerFrame {
            opcode: first & 0x0f,
            payload,
        },
        header + len,
    ))
}

/// Upgrades a fresh connection, sends `bytes` (in the same write as the upgrade request when `pipelined`, so they
/// reach the session as bytes read past the HTTP head), and gives the code of the server's Close frame (skipping
/// the greeting). Then answers the close and checks the server ends the connection.
async fn close_code_for<R: Runtime>(
    rt: &R,
    addr: std::net::SocketAddr,
    what: &str,
    bytes: &[u8],
    pipelined: bool,
) -> u16 {
    let mut conn = HttpConn::connect(rt, addr).await;
    if pipelined {
        conn.send_raw(&[UPGRADE.as_bytes(), bytes].concat()).await;
    } else {
        conn.send_raw(UPGRADE.as_bytes()).await;
    }
    assert_eq!(conn.read_response(false).await.status, 101);
    let (mut stream, mut buf) = conn.into_inner();
    bounded(rt, STEP_TIMEOUT, async {
        if !pipelined {
            stream.write_all(bytes).await.expect("send the frame");
            stream.flush().await.expect("flush the frame");
        }
        let code = loop {
            let frame = read_frame(&mut stream, &mut buf)
                .await
                .unwrap_or_else(|| panic!("a close frame before the end of the stream ({what})"));
            if frame.opcode == 0x8 {
                assert!(frame.payload.len() >= 2, "the close frame has a code");
                break u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
            assert_eq!(frame.opcode, 0x1, "only text frames before the close");
        };
        // Answer the close; the server then ends the connection.
        let _ = stream.write_all(&masked(0x88, &code.to_be_bytes())).await;
        let _ = stream.flush().await;
        while read_frame(&mut stream, &mut buf).await.is_some() {}
        code
    })
    .await
}

pub async fn protocol_violations_get_a_close_frame<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let (server, addr) = start(&rt, test_config()).await;
        for (what, bytes, want) in violations() {
            assert_eq!(
                close_code_for(&rt, addr, what, &bytes, false).await,
                want,
                "{what}"
            );
        }
        let unmasked = frame(0x81, b"hello", false);
        assert_eq!(
            close_code_for(&rt, addr, "pipelined", &unmasked, true).await,
            1002,
            "pipelined"
        );
        // A well-formed frame on the same kind of connection is still served (the cases above are not vacuous).
        let ping = r#"{"type":"ping","message_id":"p"}"#;
        let mut conn = HttpConn::connect(&rt, addr).await;
        conn.send_raw(UPGRADE.as_bytes()).await;
        assert_eq!(conn.read_response(false).await.status, 101);
        let (mut stream, mut buf) = conn.into_inner();
        bounded(&rt, STEP_TIMEOUT, async {
            stream
                .write_all(&masked(0x81, ping.as_bytes()))
                .await
                .unwrap();
            stream.flush().await.unwrap();
            let mut texts = Vec::new();
            while texts.len() < 2 {
                let frame = read_frame(&mut stream, &mut buf)
                    .await
                    .expect("two text frames");
                assert_eq!(frame.opcode, 0x1);
                texts.push(String::from_utf8(frame.payload).unwrap());
            }
            assert!(texts[1].contains("ping_res"), "{texts:?}");
        })
        .await;
        drop(stream);
        server.shutdown().await;
    })
    .await
}
