//! Security from the command line: `serve` refuses an open non-loopback bind (exit 2, and says why) unless
//! `--insecure-no-auth`; `switchboard token` mints a token the server accepts within its grants; `--tls-cert` /
//! `--tls-key` serve wss:// that the client commands reach with `--ca-file`.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::{Proc, get_json, listening_on, run};
use switchboard_protocol::auth::Hs256Key;

const SECRET: &str = "cli-test-secret-cli-test-secret-!";

#[test]
fn a_non_loopback_bind_without_auth_is_refused_with_the_reason() {
    let refused = run(&["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("refusing to serve 0.0.0.0:0 without authentication"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--insecure-no-auth"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty());

    let mut server = Proc::spawn(&["serve", "--bind", "0.0.0.0:0", "--insecure-no-auth"], &[]);
    let addr = listening_on(&server);
    let port = addr.strip_prefix("0.0.0.0:").expect("bound on 0.0.0.0");
    assert_eq!(
        get_json(&format!("127.0.0.1:{port}"), "/health")["status"],
        "healthy"
    );
    server.signal("TERM");
    assert!(server.wait().success());

    // With a secret it starts without the override.
    let mut server = Proc::spawn(
        &["serve", "--bind", "0.0.0.0:0"],
        &[("SWITCHBOARD_AUTH_SECRET", SECRET)],
    );
    listening_on(&server);
    server.signal("TERM");
    assert!(server.wait().success());
}

#[test]
fn minted_tokens_verify_and_open_the_server_within_their_grants() {
    let minted = run(&[
        "token",
        "--secret",
        SECRET,
        "--sub",
        "ada",
        "--subscribe",
        "news/*",
        "--ttl",
        "10m",
    ]);
    assert_eq!(minted.code, Some(0), "{}", minted.stderr);
    let token = minted.stdout[0].clone();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Hs256Key::new(SECRET.as_bytes())
        .unwrap()
        .verify(&token, now)
        .expect("the token verifies with the secret");
    assert_eq!(claims.sub, "ada");
    assert!(
        claims.exp > now + 500 && claims.exp <= now + 600,
        "{}",
        claims.exp
    );
    assert_eq!(claims.channels.subscribe(), ["news/*"]);
    assert!(claims.channels.publish().is_empty());

    let mut server = Proc::spawn(
        &["serve", "--bind", "127.0.0.1:0", "--auth-secret", SECRET],
        &[],
    );
    let url = format!("ws://{}/api/ws", listening_on(&server));
    let without = run(&["state", &url, "news/today"]);
    assert_eq!(without.code, Some(1), "{}", without.stderr);
    assert!(without.stderr.contains("401"), "{}", without.stderr);
    let with = run(&["state", &url, "news/today", "--token", &token]);
    assert_eq!(with.code, Some(0), "{}", with.stderr);
    let forbidden = run(&["pub", &url, "news/today", "1", "--token", &token]);
    assert_ne!(forbidden.code, Some(0));
    assert!(
        forbidden.stderr.contains("FORBIDDEN"),
        "{}",
        forbidden.stderr
    );
    server.signal("TERM");
    assert!(server.wait().success());
}

#[test]
fn tls_flags_serve_wss_for_clients_with_the_ca_file() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let mut server = Proc::spawn(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
        &[],
    );
    let addr = listening_on(&server);
    let port = addr.rsplit_once(':').unwrap().1;
    let url = format!("wss://localhost:{port}/api/ws");
    let published = run(&[
        "pub",
        &url,
        "news",
        r#"{"n":1}"#,
        "--retain",
        "--ca-file",
        cert,
    ]);
    assert_eq!(published.code, Some(0), "{}", published.stderr);
    let state = run(&["state", &url, "news", "--ca-file", cert]);
    assert_eq!(state.code, Some(0), "{}", state.stderr);
    assert!(state.stdout[0].contains(r#""n":1"#), "{:?}", state.stdout);
    // Without the CA the public roots do not trust the certificate: refused, not retried forever.
    let untrusted = run(&["state", &url, "news"]);
    assert_eq!(untrusted.code, Some(1), "{}", untrusted.stderr);
    server.signal("TERM");
    assert!(server.wait().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token for every channel, expiring at `exp` (unix seconds).
fn token_until(exp: u64) -> String {
    use switchboard_protocol::auth::{ChannelGrants, Claims};
    let grants = ChannelGrants::parse_spec("all=**").expect("a valid spec");
    Hs256Key::new(SECRET.as_bytes())
        .expect("a valid secret")
        .sign(&Claims::new("ada", exp).with_channels(grants))
}

/// `--token-file`: the first token was accepted inside the server's 30 s leeway and lapses about 2 s later; warned
/// ahead of that, `sub` reads the file again and refreshes with the fresh token written there meanwhile, so it
/// still follows the channel well after the first token is gone (the lapsed token would be refused on a reconnect).
#[test]
fn a_sub_reads_its_token_file_again_and_outlives_its_first_token() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(&file, format!("{}\n", token_until(now - 28))).unwrap();

    let mut server = Proc::spawn(
        &["serve", "--bind", "127.0.0.1:0", "--auth-secret", SECRET],
        &[],
    );
    let url = format!("ws://{}/api/ws", listening_on(&server));
    let mut sub = Proc::spawn(
        &[
            "sub",
            &url,
            "jobs/1",
            "--json",
            "--token-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    sub.stderr_until("subscribed");
    // Replaced whole, as a secret manager does, so a read never sees half a token.
    let fresh = token_until(now + 600);
    let staged = dir.join("token.new");
    std::fs::write(&staged, &fresh).unwrap();
    std::fs::rename(&staged, &file).unwrap();
    // Past the first token's lapse (exp + leeway, about 2 s after it was made).
    std::thread::sleep(std::time::Duration::from_secs(4));

    let published = run(&["pub", &url, "jobs/1", r#"{"n":1}"#, "--token", &fresh]);
    assert_eq!(published.code, Some(0), "{}", published.stderr);
    assert_eq!(
        sub.json_line(),
        serde_json::json!({"channel": "jobs/1", "offset": 1, "event": {"n": 1}})
    );
    let empty = run(&[
        "state",
        &url,
        "jobs/1",
        "--token-file",
        "/nonexistent/token",
    ]);
    assert_eq!(empty.code, Some(2), "{}", empty.stderr);
    assert!(empty.stderr.contains("--token-file"), "{}", empty.stderr);

    sub.signal("INT");
    sub.wait();
    server.signal("TERM");
    assert!(server.wait().success());
    let _ = std::fs::remove_dir_all(&dir);
}
