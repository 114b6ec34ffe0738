//! Security end to end, over real loopback TCP on smol: authentication at the handshake (every refusal a 401 JSON
//! answer before any upgrade), permissions from the token's grants (FORBIDDEN), the REST routes' tokens, API keys,
//! TLS (`wss://` and `https://` with a certificate made in the test), connection limits (429 per IP, 503 in total)
//! and the `Origin` allowlist. Every test is bounded in time and shuts down its server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_protocol::auth::{ApiKeys, Authenticator, ChannelGrants, Claims, Hs256Key};
use switchboard_runtime::client::{Client, ClientOptions, SubscriptionItem};
use switchboard_runtime::sdk::TlsConfig;
use switchboard_runtime::server::{AuthenticatorVerifier, ServerTls};
use switchboard_runtime::{Runtime, Server, ServerConfig};
use switchboard_smol::SmolRuntime;
use switchboard_tests::http::{self, HttpConn, HttpResponse};
use switchboard_tests::ws::WsClient;
use switchboard_tests::{STEP_TIMEOUT, TEST_TIMEOUT, bounded, eventually};

const SECRET: &[u8] = b"an-issue-8-test-secret-of-32-bytes!!";
const KEY_HEADERS: &str =
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Runs a test on smol on a thread with a roomy stack (debug builds of nested futures need it).
fn run<F: std::future::Future<Output = ()> + Send + 'static>(
    test: impl FnOnce(SmolRuntime) -> F + Send + 'static,
) {
    switchboard_tests::on_roomy_stack(move || {
        let rt = SmolRuntime::new();
        smol::block_on(Box::pin(bounded(&rt.clone(), TEST_TIMEOUT, test(rt))));
    });
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn key() -> Hs256Key {
    Hs256Key::new(SECRET).unwrap()
}

fn grants(spec: &str) -> ChannelGrants {
    ChannelGrants::parse_spec(spec).unwrap()
}

fn token(spec: &str) -> String {
    key().sign(&Claims::new("tester", now() + 600).with_channels(grants(spec)))
}

fn authenticator() -> Authenticator {
    let mut keys = ApiKeys::new();
    keys.insert_spec("static-key-1:subscribe=feeds/**,publish=feeds/**")
        .unwrap();
    Authenticator::new().with_jwt(key()).with_api_keys(keys)
}

fn config() -> ServerConfig {
    let mut config = ServerConfig {
        shutdown_timeout: Duration::from_secs(5),
        close_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    config.verifier = Some(Arc::new(AuthenticatorVerifier::new(authenticator())));
    config
}

async fn start(rt: &SmolRuntime, config: ServerConfig) -> (Server<SmolRuntime>, SocketAddr) {
    let server = Server::bind(rt.clone(), "127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("bind a loopback port");
    let addr = server.local_addr().unwrap();
    (server, addr)
}

/// A raw upgrade request to `/api/ws` with `extra` headers; the answer.
async fn upgrade(rt: &SmolRuntime, addr: SocketAddr, path: &str, extra: &str) -> HttpResponse {
    let mut conn = HttpConn::connect(rt, addr).await;
    conn.send_raw(
        format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{KEY_HEADERS}{extra}\r\n"
        )
        .as_bytes(),
    )
    .await;
    conn.read_response(false).await
}

fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// `token` with its header replaced by `header` (the signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let mut parts = token.splitn(2, '.');
    parts.next();
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        parts.next().unwrap()
    )
}

fn assert_refused(r: &HttpResponse, message: &str, why: &str) {
    assert_eq!(r.status, 401, "{why}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{why}");
    let body = r.json();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{why}: {body}");
    assert_eq!(body["error"]["message"], message, "{why}: {body}");
    assert!(r.header("sec-websocket-accept").is_none(), "{why}");
}

#[test]
fn every_bad_token_is_a_401_json_before_the_upgrade() {
    run(|rt| async move {
        let (server, addr) = start(&rt, config()).await;
        let generic = "invalid or expired token";
        let r = upgrade(&rt, addr, "/api/ws", "").await;
        assert_refused(&r, "a token is required", "missing");

        let channels = grants("subscribe=**");
        let other = Hs256Key::new(b"another-secret-another-secret-!!").unwrap();
        let forged = other.sign(&Claims::new("eve", now() + 600).with_channels(channels.clone()));
        let expired =
            key().sign(&Claims::new("old", now() - 3_600).with_channels(channels.clone()));
        let mut early = Claims::new("early", now() + 7_200).with_channels(channels.clone());
        early.nbf = Some(now() + 3_600);
        let early = key().sign(&early);
        let good = token("subscribe=**");
        let none = {
            let t = with_header(&good, &json!({"alg": "none", "typ": "JWT"}));
            format!("{}.", t.rsplit_once('.').unwrap().0)
        };
        let hs512 = with_header(&good, &json!({"alg": "HS512", "typ": "JWT"}));
        let rs256 = with_header(&good, &json!({"alg": "RS256", "typ": "JWT"}));
        for (why, bad) in [
            ("bad signature", forged.as_str()),
            ("expired", &expired),
            ("not yet valid", &early),
            ("alg none", &none),
            ("wrong algorithm HS512", &hs512),
            ("wrong algorithm RS256", &rs256),
            ("garbage", "not-a-token"),
        ] {
            let r = upgrade(
                &rt,
                addr,
                "/api/ws",
                &format!("Authorization: Bearer {bad}\r\n"),
            )
            .await;
            assert_refused(&r, generic, why);
            // The same through the query, as browsers send it.
            let r = upgrade(&rt, addr, &format!("/api/ws?token={bad}"), "").await;
            assert_refused(&r, generic, why);
        }
        // The other dialects are guarded the same way.
        for path in ["/ws", "/api/v1/ws/projects/p1/stream"] {
            assert_refused(
                &upgrade(&rt, addr, path, "").await,
                "a token is required",
                path,
            );
        }
        // And the good token is let in, from the header and from the query.
        let r = upgrade(
            &rt,
            addr,
            "/api/ws",
            &format!("Authorization: Bearer {good}\r\n"),
        )
        .await;
        assert_eq!(r.status, 101);
        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={good}")).await;
        ws.connected().await;
        ws.close().await;
        server.shutdown().await;
    });
}

#[test]
fn grants_become_permissions_and_the_rest_is_forbidden() {
    run(|rt| async move {
        let (server, addr) = start(&rt, config()).await;
        let t = token("subscribe=public/*,publish=public/*,serve=svc/*,call=svc/*");
        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={t}")).await;
        ws.connected().await;
        for (kind, data) in [
            ("subscribe", json!({"channel": "secret/x"})),
            ("publish", json!({"channel": "secret/x", "event": 1})),
            ("serve", json!({"channel": "secret/x"})),
            ("call", json!({"channel": "secret/x", "method": "m"})),
            ("get_state", json!({"channel": "secret/x"})),
        ] {
            let answer = ws.request(kind, data).await;
            assert_eq!(answer["type"], "error", "{kind}: {answer}");
            assert_eq!(answer["data"]["code"], "FORBIDDEN", "{kind}: {answer}");
        }
        let ok = ws
            .request("subscribe", json!({"channel": "public/a"}))
            .await;
        assert_eq!(ok["type"], "subscribe_res", "{ok}");
        let ok = ws.request("serve", json!({"channel": "svc/a"})).await;
        assert_eq!(ok["type"], "serve_res", "{ok}");
        let ok = ws
            .request("publish", json!({"channel": "public/a", "event": {"n": 1}}))
            .await;
        assert_eq!(ok["type"], "publish_res", "{ok}");
        ws.close().await;
        // Publish-only: may publish, may not subscribe.
        let t = token("publish=public/*");
        let mut ws = WsClient::connect(&rt, addr, &format!("/api/ws?token={t}")).await;
        ws.connected().await;
        let no = ws
            .request("subscribe", json!({"channel": "public/a"}))
            .await;
        assert_eq!(no["data"]["code"], "FORBIDDEN", "{no}");
        let ok = ws
            .request("publish", json!({"channel": "public/a", "event": 2}))
            .await;
        assert_eq!(ok["type"], "publish_res", "{ok}");
        ws.close().await;
        server.shutdown().await;
    });
}

#[test]
fn rest_routes_need_the_same_permissions_and_health_stays_open() {
    run(|rt| async move {
        let (server, addr) = start(&rt, config()).await;
        let publish = "/api/v1/channels/public%2Fa/events";
        let body: &[u8] = br#"{"event":{"n":1}}"#;
        let r = http::request(&rt, addr, "POST", publish, &[], Some(body)).await;
        assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
        assert_eq!(r.json()["error"]["message"], "a token is required");
        let r = http::get(&rt, addr, "/api/v1/channels/public%2Fa/state").await;
        assert_eq!(r.status, 401);
        let r = http::get(&rt, addr, "/api/v1/channels/public%2Fa/events?token=bad").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["message"], "invalid or expired token");

        let reader = format!("Bearer {}", token("subscribe=public/*"));
        let writer = format!("Bearer {}", token("publish=public/*"));
        let r = http::request(
            &rt,
            addr,
            "POST",
            publish,
            &[("Authorization", &reader)],
            Some(body),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "FORBIDDEN"));
        let r = http::request(
            &rt,
            addr,
            "POST",
            publish,
            &[("Authorization", &writer)],
            Some(body),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = http::request(
            &rt,
            addr,
            "GET",
            publish,
            &[("Authorization", &reader)],
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["events"][0]["event"], json!({"n": 1}));
        let r = http::request(
            &rt,
            addr,
            "GET",
            publish,
            &[("Authorization", &writer)],
            None,
        )
        .await;
        assert_eq!(r.status, 403);
        let r = http::request(
            &rt,
            addr,
            "GET",
            "/api/v1/channels/public%2Fa/state",
            &[("Authorization", &writer)],
            None,
        )
        .await;
        assert_eq!(r.status, 403);

        for path in ["/health", "/health/live", "/health/ready"] {
            assert_eq!(http::get(&rt, addr, path).await.status, 200, "{path}");
        }

        // An API key works over REST and WebSocket, within its grants.
        let api = [("Authorization", "Bearer static-key-1")];
        let r = http::request(
            &rt,
            addr,
            "POST",
            "/api/v1/channels/feeds%2Fx/events",
            &api,
            Some(body),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = http::request(&rt, addr, "POST", publish, &api, Some(body)).await;
        assert_eq!(r.status, 403);
        let mut ws = WsClient::connect(&rt, addr, "/api/ws?token=static-key-1").await;
        ws.connected().await;
        let ok = ws.request("subscribe", json!({"channel": "feeds/x"})).await;
        assert_eq!(ok["type"], "subscribe_res", "{ok}");
        let no = ws
            .request("subscribe", json!({"channel": "public/a"}))
            .await;
        assert_eq!(no["data"]["code"], "FORBIDDEN", "{no}");
        ws.close().await;
        assert_refused(
            &upgrade(
                &rt,
                addr,
                "/api/ws",
                "Authorization: Bearer static-key-2\r\n",
            )
            .await,
            "invalid or expired token",
            "unknown API key",
        );
        server.shutdown().await;
    });
}

#[test]
fn per_ip_limit_answers_429_and_total_limit_503_before_the_upgrade() {
    run(|rt| async move {
        let per_ip = ServerConfig {
            max_connections_per_ip: 2,
            ..config()
        };
        let (server, addr) = start(&rt, per_ip).await;
        let t = token("subscribe=**");
        let path = format!("/api/ws?token={t}");
        let mut a = WsClient::connect(&rt, addr, &path).await;
        a.connected().await;
        let mut b = WsClient::connect(&rt, addr, &path).await;
        b.connected().await;
        let r = upgrade(&rt, addr, &path, "").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (429, "TOO_MANY_CONNECTIONS")
        );
        assert!(r.header("retry-after").is_some());
        // Plain HTTP is not counted.
        assert_eq!(http::get(&rt, addr, "/health").await.status, 200);
        a.close().await;
        eventually(&rt, "the closed connection to be uncounted", || {
            server.stats().connections == 1
        })
        .await;
        let mut c = WsClient::connect(&rt, addr, &path).await;
        c.connected().await;
        b.close().await;
        c.close().await;
        server.shutdown().await;

        let total = ServerConfig {
            max_connections: 1,
            ..config()
        };
        let (server, addr) = start(&rt, total).await;
        let mut a = WsClient::connect(&rt, addr, &path).await;
        a.connected().await;
        let r = upgrade(&rt, addr, &path, "").await;
        assert_eq!((r.status, r.error_code().as_str()), (503, "UNAVAILABLE"));
        a.close().await;
        server.shutdown().await;
    });
}

#[test]
fn the_origin_allowlist_refuses_other_browser_origins() {
    run(|rt| async move {
        let open = ServerConfig {
            allowed_origins: vec!["https://app.example.com".into()],
            verifier: None,
            ..config()
        };
        let (server, addr) = start(&rt, open).await;
        let r = upgrade(&rt, addr, "/api/ws", "Origin: https://evil.example\r\n").await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "FORBIDDEN"));
        let r = upgrade(&rt, addr, "/api/ws", "Origin: https://app.example.com\r\n").await;
        assert_eq!(r.status, 101);
        let r = upgrade(&rt, addr, "/api/ws", "").await;
        assert_eq!(r.status, 101, "no Origin: not a browser");
        server.shutdown().await;
    });
}

#[test]
fn tls_serves_wss_and_https_on_one_port() {
    run(|rt| async move {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("generate a certificate");
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let tls =
            ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).expect("a TLS config");
        let config = ServerConfig {
            tls: Some(tls),
            ..config()
        };
        let (server, addr) = start(&rt, config).await;
        let trust = TlsConfig::with_roots_pem(cert_pem.as_bytes()).expect("the CA");
        let url = format!("wss://localhost:{}/api/ws", addr.port());
        let options = |spec: &str| {
            let mut o = ClientOptions::with_token(token(spec));
            o.tls = Some(trust.clone());
            o
        };
        let subscriber = Client::connect(rt.clone(), &url, options("subscribe=news")).unwrap();
        let publisher = Client::connect(
            rt.clone(),
            &url.replace("localhost", "127.0.0.1"),
            options("publish=news"),
        )
        .unwrap();
        let mut events = subscriber
            .subscribe("news")
            .await
            .expect("subscribe over wss");
        let offset = publisher
            .publish("news", json!({"hello": "tls"}), false)
            .await
            .expect("publish over wss");
        let item = bounded(&rt, STEP_TIMEOUT, events.next())
            .await
            .expect("an event");
        match item {
            SubscriptionItem::Event(e) => {
                assert_eq!((e.offset, e.event), (offset, json!({"hello": "tls"})));
            }
            other => panic!("{other:?}"),
        }
        let no = publisher
            .publish("other", json!(1), false)
            .await
            .unwrap_err();
        assert!(
            no.to_string().contains("FORBIDDEN") || format!("{no:?}").contains("Forbidden"),
            "{no:?}"
        );
        subscriber.close().await;
        publisher.close().await;

        // https:// REST on the same port, through rustls directly.
        let connector = {
            use futures_rustls::rustls::{
                ClientConfig, RootCertStore, crypto::ring::default_provider,
            };
            let mut roots = RootCertStore::empty();
            roots.add(certified.cert.der().clone()).unwrap();
            let config = ClientConfig::builder_with_provider(Arc::new(default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            futures_rustls::TlsConnector::from(Arc::new(config))
        };
        let tcp = rt.connect(addr).await.unwrap();
        let name = futures_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.expect("a TLS handshake");
        let mut conn = HttpConn::new(&rt, stream);
        let auth = format!("Bearer {}", token("subscribe=news"));
        let r = conn
            .request(
                "GET",
                "/api/v1/channels/news/state",
                &[("Authorization", &auth)],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = conn.get("/health").await;
        assert_eq!(r.json()["status"], "healthy");

        // A plain-text client on the TLS port gets no HTTP answer.
        let mut plain = HttpConn::connect(&rt, addr).await;
        plain
            .send_raw(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        let (mut stream, _) = plain.into_inner();
        let mut answer = Vec::new();
        let _ = bounded(
            &rt,
            STEP_TIMEOUT,
            futures_lite::AsyncReadExt::read_to_end(&mut stream, &mut answer),
        )
        .await;
        assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
        server.shutdown().await;
    });
}

/// A routed call tells the serving client who called: the caller's app id, plus its token's `sub` or its API
/// key's non-secret name (never the key itself), through `IncomingCall::caller`.
#[test]
fn a_served_call_names_the_callers_token_sub_or_api_key() {
    run(|rt| async move {
        let mut keys = ApiKeys::new();
        keys.insert_spec("key-secret-9:call=pipelines/**").unwrap();
        let mut config = config();
        config.verifier = Some(Arc::new(AuthenticatorVerifier::new(
            Authenticator::new().with_jwt(key()).with_api_keys(keys),
        )));
        let (server, addr) = start(&rt, config).await;
        let url = format!("ws://{addr}/api/ws");
        let server_token = key().sign(
            &Claims::new("pipeline-runner", now() + 600)
                .with_channels(grants("serve=pipelines/**")),
        );
        let runner =
            Client::connect(rt.clone(), &url, ClientOptions::with_token(server_token)).unwrap();
        let mut calls = runner.serve("pipelines/p1").await.expect("serve");

        let alice_token = key()
            .sign(&Claims::new("alice", now() + 600).with_channels(grants("call=pipelines/**")));
        let alice =
            Client::connect(rt.clone(), &url, ClientOptions::with_token(alice_token)).unwrap();
        let keyed = Client::connect(
            rt.clone(),
            &url,
            ClientOptions::with_token("key-secret-9".to_owned()),
        )
        .unwrap();
        for (who, want_sub, want_key) in [
            (&alice, Some("alice"), None),
            (&keyed, None, Some("api-key:0")),
        ] {
            let answer = async { who.call("pipelines/p1", "approve", json!(null)).await };
            let serve = async {
                let call = bounded(&rt, STEP_TIMEOUT, calls.next())
                    .await
                    .expect("a call");
                let caller = call.caller().expect("the server names the caller").clone();
                call.responder.respond(Ok(json!({"approved": true})));
                caller
            };
            let (answer, caller) = futures_util::join!(answer, serve);
            assert_eq!(answer, Ok(json!({"approved": true})));
            assert_eq!(caller.sub.as_deref(), want_sub);
            assert_eq!(caller.key.as_deref(), want_key);
            assert!(!caller.app_id.is_empty());
            assert_eq!(caller.name(), want_sub.or(want_key).unwrap());
            assert!(
                !format!("{caller:?}").contains("key-secret-9"),
                "the key itself never travels"
            );
        }
        alice.close().await;
        keyed.close().await;
        runner.close().await;
        server.shutdown().await;
    });
}
