//! Transcripts of presence: `join`/`leave` notifications to subscribers that asked for them (`subscribe` with
//! `presence: true`) as connections subscribe, unsubscribe, serve, are taken over and disconnect — never about
//! themselves — and the `presence` request with its member cap and permission check.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Value, json};

use super::transcripts::assert_transcript;
use super::{Harness, ch};
use crate::server::{Dialect, HubConfig, Permissions, Principal};
use crate::wire::PRESENCE_MEMBERS_MAX;

fn quiet() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

fn app_id(h: &Harness, name: &str) -> String {
    String::from(h.hub.connection(h.conn(name)).expect("open").app_id())
}

/// The `notification`s `name` received since the last look, as `(type, additional_data)`.
fn notifications(h: &mut Harness, name: &str) -> Vec<(String, Value)> {
    let mut got = Vec::new();
    while let Some(f) = h.next_frame(name) {
        if f["type"] == "notification" {
            got.push((
                String::from(f["data"]["notification_type"].as_str().expect("a type")),
                f["data"]["additional_data"].clone(),
            ));
        }
    }
    got
}

fn subscribe(h: &mut Harness, name: &str, channel: &str, presence: bool) {
    h.text(
        name,
        &format!(
            r#"{{"type":"subscribe","message_id":"sub-{name}","data":{{"channel":"{channel}","presence":{presence}}}}}"#
        ),
    );
}

#[test]
fn joins_and_leaves_follow_subscribe_serve_unsubscribe_and_disconnect() {
    let mut h = Harness::new(quiet());
    h.open_with(
        "watcher",
        Dialect::Native,
        Permissions::allow_all().with_principal(Principal::token("ops")),
    );
    h.open_with(
        "worker",
        Dialect::Native,
        Permissions::allow_all().with_principal(Principal::api_key("api-key:1")),
    );
    h.open("viewer", Dialect::Native);
    h.take();
    subscribe(&mut h, "watcher", "jobs/j1", true);
    h.text(
        "worker",
        r#"{"type":"serve","message_id":"s1","data":{"channel":"jobs/j1"}}"#,
    );
    subscribe(&mut h, "viewer", "jobs/j1", false);
    // Already a member (it serves): subscribing changes nothing anyone is told.
    subscribe(&mut h, "worker", "jobs/j1", false);
    h.text(
        "viewer",
        r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"jobs/j1"}}"#,
    );
    // Subscribed and serving, it leaves once; the API key's name is never shown.
    h.transport_closed("worker");
    assert_transcript(
        h.take(),
        &[
            "watcher <- {\"type\":\"subscribe_res\",\"message_id\":\"sub-watcher\",\"data\":{\"channel\":\"jobs/j1\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "watcher <- {\"type\":\"notification\",\"message_id\":\"#7\",\"server_initiated\":true,\"data\":{\"notification_type\":\"join\",\"additional_data\":{\"app_id\":\"#3\",\"channel\":\"jobs/j1\",\"dialect\":\"native\",\"serving\":true}}}",
            "worker <- {\"type\":\"serve_res\",\"message_id\":\"s1\",\"data\":{\"channel\":\"jobs/j1\"}}",
            "watcher <- {\"type\":\"notification\",\"message_id\":\"#8\",\"server_initiated\":true,\"data\":{\"notification_type\":\"join\",\"additional_data\":{\"app_id\":\"#5\",\"channel\":\"jobs/j1\",\"dialect\":\"native\",\"serving\":false}}}",
            "viewer <- {\"type\":\"subscribe_res\",\"message_id\":\"sub-viewer\",\"data\":{\"channel\":\"jobs/j1\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "worker <- {\"type\":\"subscribe_res\",\"message_id\":\"sub-worker\",\"data\":{\"channel\":\"jobs/j1\",\"epoch\":\"E\",\"offset\":0,\"recovered\":null}}",
            "watcher <- {\"type\":\"notification\",\"message_id\":\"#9\",\"server_initiated\":true,\"data\":{\"notification_type\":\"leave\",\"additional_data\":{\"app_id\":\"#5\",\"channel\":\"jobs/j1\",\"dialect\":\"native\",\"serving\":false}}}",
            "viewer <- {\"type\":\"unsubscribe_res\",\"message_id\":\"u1\",\"data\":{\"channel\":\"jobs/j1\"}}",
            "watcher <- {\"type\":\"notification\",\"message_id\":\"#10\",\"server_initiated\":true,\"data\":{\"notification_type\":\"leave\",\"additional_data\":{\"app_id\":\"#3\",\"channel\":\"jobs/j1\",\"dialect\":\"native\",\"serving\":true}}}",
            "event {\"app_id\":\"#3\",\"conn\":\"worker\",\"event\":\"disconnected\"}",
        ],
    );
    h.assert_clean();
}

#[test]
fn watchers_see_each_other_but_never_themselves() {
    let mut h = Harness::new(quiet());
    h.open_with(
        "a",
        Dialect::Native,
        Permissions::allow_all().with_principal(Principal::token("alice")),
    );
    h.open("b", Dialect::Native);
    subscribe(&mut h, "a", "room", true);
    subscribe(&mut h, "b", "room", true);
    assert_eq!(
        notifications(&mut h, "a"),
        vec![(
            "join".into(),
            json!({"app_id": app_id(&h, "b"), "channel": "room", "dialect": "native", "serving": false})
        )]
    );
    assert_eq!(notifications(&mut h, "b"), vec![]);
    h.text(
        "a",
        r#"{"type":"unsubscribe","message_id":"u","data":{"channel":"room"}}"#,
    );
    assert_eq!(notifications(&mut h, "a"), vec![]);
    assert_eq!(
        notifications(&mut h, "b"),
        vec![(
            "leave".into(),
            json!({"app_id": app_id(&h, "a"), "sub": "alice", "channel": "room", "dialect": "native", "serving": false})
        )]
    );
    h.assert_clean();
}

#[test]
fn without_presence_nobody_is_told_and_a_plain_resubscribe_stops_it() {
    let mut h = Harness::new(quiet());
    h.open("plain", Dialect::Native);
    h.open("watcher", Dialect::Native);
    h.open("other", Dialect::Native);
    subscribe(&mut h, "plain", "room", false);
    subscribe(&mut h, "watcher", "room", true);
    subscribe(&mut h, "other", "room", false);
    assert_eq!(notifications(&mut h, "plain"), vec![]);
    assert_eq!(notifications(&mut h, "watcher").len(), 1);
    // The latest subscribe decides: without `presence` the watcher stops watching.
    subscribe(&mut h, "watcher", "room", false);
    h.transport_closed("other");
    assert_eq!(notifications(&mut h, "watcher"), vec![]);
    assert_eq!(notifications(&mut h, "plain"), vec![]);
    h.assert_clean();
}

#[test]
fn a_takeover_tells_who_serves_now_and_what_became_of_the_previous_server() {
    let mut h = Harness::new(quiet());
    h.open("watcher", Dialect::Native);
    h.open("w1", Dialect::Native);
    h.open("w2", Dialect::Native);
    h.open("w3", Dialect::Native);
    subscribe(&mut h, "watcher", "jobs/j1", true);
    let serve = |h: &mut Harness, name: &str| {
        h.text(
            name,
            r#"{"type":"serve","message_id":"s","data":{"channel":"jobs/j1"}}"#,
        )
    };
    serve(&mut h, "w1");
    serve(&mut h, "w2");
    let member = |h: &Harness, name: &str, serving: bool| json!({"app_id": app_id(h, name), "channel": "jobs/j1", "dialect": "native", "serving": serving});
    // w1 only served: taken over, it is gone from the channel, and it was serving until then.
    assert_eq!(
        notifications(&mut h, "watcher"),
        vec![
            ("join".into(), member(&h, "w1", true)),
            ("join".into(), member(&h, "w2", true)),
            ("leave".into(), member(&h, "w1", true)),
        ]
    );
    // w2 also subscribes: taken over, it stays, no longer serving.
    subscribe(&mut h, "w2", "jobs/j1", false);
    serve(&mut h, "w3");
    assert_eq!(
        notifications(&mut h, "watcher"),
        vec![
            ("join".into(), member(&h, "w3", true)),
            ("join".into(), member(&h, "w2", false)),
        ]
    );
    h.assert_clean();
}

#[test]
fn the_presence_request_counts_everyone_lists_at_most_the_cap_and_always_the_server() {
    assert_eq!(quiet().max_presence_members, PRESENCE_MEMBERS_MAX);
    presence_cap(quiet());
}

#[test]
fn the_presence_cap_is_the_configured_one() {
    presence_cap(HubConfig {
        max_presence_members: 3,
        ..quiet()
    });
}

/// `cap + 5` subscribers, then a server: every answer counts them all and lists `cap`, the server among them.
fn presence_cap(config: HubConfig) {
    let cap = config.max_presence_members;
    let mut h = Harness::new(config);
    let n = cap + 5;
    for i in 0..n {
        let name = format!("s{i}");
        h.open(&name, Dialect::Native);
        subscribe(&mut h, &name, "room", false);
    }
    h.open("asker", Dialect::Native);
    let ask = |h: &mut Harness| {
        h.text(
            "asker",
            r#"{"type":"presence","message_id":"p","data":{"channel":"room"}}"#,
        );
        let mut last = None;
        while let Some(f) = h.next_frame("asker") {
            last = Some(f);
        }
        last.expect("an answer")
    };
    let res = ask(&mut h);
    assert_eq!(res["type"], "presence_res");
    assert_eq!(res["message_id"], "p");
    assert_eq!(res["data"]["count"], n);
    assert_eq!(res["data"]["serving"], false);
    let members = res["data"]["members"].as_array().expect("members");
    assert_eq!(members.len(), cap);
    assert!(members.iter().all(|m| m["serving"] == false));
    // The server came last and is beyond the cap, yet listed.
    h.open("worker", Dialect::Native);
    h.text(
        "worker",
        r#"{"type":"serve","message_id":"s","data":{"channel":"room"}}"#,
    );
    let res = ask(&mut h);
    assert_eq!(res["data"]["count"], n + 1);
    assert_eq!(res["data"]["serving"], true);
    let members = res["data"]["members"].as_array().expect("members");
    assert_eq!(members.len(), cap);
    let worker = app_id(&h, "worker");
    assert_eq!(
        members
            .iter()
            .filter(|m| m["app_id"] == worker.as_str() && m["serving"] == true)
            .count(),
        1
    );
    let typed = h.hub.presence(&ch("room"));
    assert_eq!((typed.count, typed.serving), (n + 1, true));
    let nobody = h.hub.presence(&ch("empty"));
    assert_eq!(
        (nobody.count, nobody.serving, nobody.members.len()),
        (0, false, 0)
    );
    h.assert_clean();
}

#[test]
fn presence_needs_the_subscribe_permission() {
    let mut h = Harness::new(quiet());
    let only_public =
        Permissions::from_patterns(vec!["public/**".into()], Vec::new(), Vec::new(), Vec::new());
    h.open_with("limited", Dialect::Native, only_public);
    h.take();
    h.text(
        "limited",
        r#"{"type":"presence","message_id":"p","data":{"channel":"jobs/j1"}}"#,
    );
    h.text(
        "limited",
        r#"{"type":"subscribe","message_id":"s","data":{"channel":"jobs/j1","presence":true}}"#,
    );
    h.text(
        "limited",
        r#"{"type":"presence","message_id":"q","data":{"channel":"public/news"}}"#,
    );
    assert_transcript(
        h.take(),
        &[
            "limited <- {\"type\":\"error\",\"message_id\":\"p\",\"data\":{\"code\":\"FORBIDDEN\",\"message\":\"not allowed to read jobs/j1\"}}",
            "limited <- {\"type\":\"error\",\"message_id\":\"s\",\"data\":{\"code\":\"FORBIDDEN\",\"message\":\"not allowed to subscribe to jobs/j1\"}}",
            "limited <- {\"type\":\"presence_res\",\"message_id\":\"q\",\"data\":{\"channel\":\"public/news\",\"count\":0,\"serving\":false,\"members\":[]}}",
        ],
    );
    h.assert_clean();
}

#[test]
fn edge_dialect_subscribers_are_members_too() {
    let mut h = Harness::new(quiet());
    h.open("watcher", Dialect::Native);
    subscribe(&mut h, "watcher", "projects/p1", true);
    subscribe(&mut h, "watcher", "room", true);
    h.open(
        "dashboard",
        Dialect::ProjectStream {
            project_id: "p1".into(),
            since: None,
        },
    );
    h.open("chat", Dialect::ChannelPayload);
    h.text(
        "chat",
        r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"room"}}"#,
    );
    let member = |h: &Harness, name: &str, channel: &str, dialect: &str| json!({"app_id": app_id(h, name), "channel": channel, "dialect": dialect, "serving": false});
    assert_eq!(
        notifications(&mut h, "watcher"),
        vec![
            (
                "join".into(),
                member(&h, "dashboard", "projects/p1", "project_stream")
            ),
            ("join".into(), member(&h, "chat", "room", "channel_payload")),
        ]
    );
    let chat = member(&h, "chat", "room", "channel_payload");
    h.text(
        "chat",
        r#"{"channel":"subscription","payload":{"action":"unsubscribe","channel":"room"}}"#,
    );
    assert_eq!(
        notifications(&mut h, "watcher"),
        vec![("leave".into(), chat)]
    );
    assert_eq!(h.hub.presence(&ch("projects/p1")).count, 2);
    h.assert_clean();
}
