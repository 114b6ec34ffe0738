//! Transcripts of what a serving connection learns about who called: `caller: {app_id, sub?, key?}` in the
//! `server_request` of a routed `call` and of a project-stream `cancel`, from the caller's [`Principal`] (set by
//! the driver from its token or API key), never more.

use alloc::string::String;
use core::time::Duration;
use serde_json::json;

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::server::{Dialect, HubConfig, Permissions, Principal};

fn quiet() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

/// The `caller` of the last `server_request` `name` received.
fn last_caller(h: &Harness, name: &str) -> serde_json::Value {
    h.frames[&h.conn(name)]
        .iter()
        .rev()
        .find(|f| f["type"] == "server_request")
        .map(|f| f["data"]["caller"].clone())
        .expect("a server_request")
}

#[test]
fn a_routed_call_names_the_callers_token_sub_or_api_key_or_only_its_app_id() {
    let mut h = Harness::new(quiet());
    h.open("server", Dialect::Native);
    h.open_with(
        "alice",
        Dialect::Native,
        Permissions::allow_all().with_principal(Principal::token("alice@example.com")),
    );
    h.open_with(
        "backend",
        Dialect::Native,
        Permissions::allow_all().with_principal(Principal::api_key("api-key:0")),
    );
    h.open("anonymous", Dialect::Native);
    h.text(
        "server",
        r#"{"type":"serve","message_id":"s","data":{"channel":"pipelines/p1"}}"#,
    );
    h.take();
    h.text(
        "alice",
        r#"{"type":"call","message_id":"c1","data":{"channel":"pipelines/p1","method":"approve"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "server <- {\"type\":\"server_request\",\"message_id\":\"#9\",\"server_initiated\":true,\"data\":{\"request_type\":\"call\",\"caller\":{\"app_id\":\"#3\",\"sub\":\"alice@example.com\"},\"channel\":\"pipelines/p1\",\"method\":\"approve\",\"params\":null}}",
        ],
    );
    h.text(
        "backend",
        r#"{"type":"call","message_id":"c2","data":{"channel":"pipelines/p1","method":"approve"}}"#,
    );
    let app_id = |h: &Harness, name: &str| {
        String::from(h.hub.connection(h.conn(name)).expect("open").app_id())
    };
    assert_eq!(
        last_caller(&h, "server"),
        json!({"app_id": app_id(&h, "backend"), "key": "api-key:0"})
    );
    h.text(
        "anonymous",
        r#"{"type":"call","message_id":"c3","data":{"channel":"pipelines/p1","method":"approve"}}"#,
    );
    assert_eq!(
        last_caller(&h, "server"),
        json!({"app_id": app_id(&h, "anonymous")})
    );
    h.assert_clean();
}

#[test]
fn a_project_stream_cancel_names_its_caller_too() {
    let mut h = Harness::new(quiet());
    h.open("server", Dialect::Native);
    h.text(
        "server",
        r#"{"type":"serve","message_id":"s","data":{"channel":"projects/p1"}}"#,
    );
    h.open_with(
        "dashboard",
        Dialect::ProjectStream {
            project_id: String::from("p1"),
            since: None,
        },
        Permissions::allow_all().with_principal(Principal::token("bob")),
    );
    h.take();
    h.text("dashboard", r#"{"type":"cancel"}"#);
    let caller = last_caller(&h, "server");
    assert_eq!(caller["sub"], "bob");
    assert!(caller.get("key").is_none(), "{caller}");
    assert_eq!(
        caller["app_id"].as_str(),
        h.hub.connection(h.conn("dashboard")).map(|c| c.app_id())
    );
    assert_eq!(h.hub.subscriber_count(&ch("projects/p1")), 1);
}
