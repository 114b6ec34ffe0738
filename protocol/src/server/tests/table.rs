//! One row per error code and per message type of the contract, in all three dialects. Each row is a short script
//! against a fresh hub; the last check of every row is what the row covers. At the end, the rows' coverage is
//! compared with the lists of what each dialect must produce, so a missing row fails the test.
//!
//! Not applicable, by the dialects' design: the project-stream dialect has no message ids
//! (`DUPLICATE_MESSAGE_ID`), no sessions (`SESSION_*`), one fixed subscription (`TOO_MANY_SUBSCRIPTIONS`,
//! `NOT_SUBSCRIBED`); the channel-payload dialect has no ids, no sessions and no calls (`DUPLICATE_MESSAGE_ID`,
//! `SESSION_*`, `NO_HANDLER`, `REQUEST_TIMEOUT`), and nothing in it can reach `INTERNAL_ERROR`.

use alloc::borrow::ToOwned;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use serde_json::{Map, Value, json};

use super::{Harness, T0_MS, ch, matches};
use crate::server::{Dialect, DialectKind, HubConfig, NotifyTarget, Permissions};
use crate::wire::{ErrorCode, MessageId};

/// How a row opens a connection.
#[derive(Debug, Clone, Copy)]
enum D {
    Native,
    /// Native, allowed nothing.
    NativeDenied,
    Project(&'static str, Option<u64>),
    /// Project stream allowed to subscribe but not to call (cancel).
    ProjectNoCall(&'static str),
    /// Project stream allowed nothing.
    ProjectDenied(&'static str),
    Payload,
    /// Channel payload allowed to subscribe only.
    PayloadNoPublish,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Opens a connection and discards its greeting.
    Open(&'static str, D),
    /// Opens a connection and keeps its greeting for `Expect`.
    OpenRaw(&'static str, D),
    /// A text frame; `{var}` is replaced by a captured value.
    Text(&'static str, &'static str),
    Binary(&'static str, usize),
    AdvanceMs(u64),
    /// `Hub::publish(channel, json, retain)`.
    Publish(&'static str, &'static str, bool),
    Register(&'static str),
    /// Answers the last custom request: `None` → `{"ok": true}`, `Some(code)` → that error.
    RespondCustom(Option<ErrorCode>),
    /// `Hub::send_request(conn, type, {"question": "?"})`.
    SendRequest(&'static str, &'static str),
    /// `Hub::notify(App(conn), "deploy", "done", {"v": 2})`.
    Notify(&'static str),
    /// The next frame to the connection matches the pattern (`{var}` substituted). Remembered for `Capture`.
    Expect(&'static str, &'static str),
    /// The next event matches the pattern.
    ExpectEvent(&'static str),
    /// Stores the string at a JSON pointer of the last frame matched for the connection as `{var}`.
    Capture(&'static str, &'static str, &'static str),
    /// Discards the next frame to the connection.
    Skip(&'static str),
    /// The connection was closed with this code.
    ExpectClose(&'static str, u16),
    /// The connection is open and was not closed.
    ExpectOpen(&'static str),
}

/// What a row proves the hub produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cover {
    Code(ErrorCode),
    Type(&'static str),
}

struct Row {
    dialect: DialectKind,
    cover: Cover,
    config: fn(&mut HubConfig),
    steps: &'static [Step],
}

fn defaults(_: &mut HubConfig) {}
fn rate_one(c: &mut HubConfig) {
    c.rate_per_sec = 1;
    c.rate_burst = 1;
}
fn one_session(c: &mut HubConfig) {
    c.max_sessions = 1;
}
fn one_subscription(c: &mut HubConfig) {
    c.max_subscriptions = 1;
}
fn one_channel(c: &mut HubConfig) {
    c.max_channels = 1;
}
fn short_requests(c: &mut HubConfig) {
    c.request_timeout = Duration::from_secs(1);
}
fn quick_heartbeat(c: &mut HubConfig) {
    c.heartbeat = Duration::from_secs(10);
    c.heartbeat_timeout = Duration::from_secs(5);
}

use Cover::{Code, Type};
use DialectKind::{ChannelPayload as CP, Native as N, ProjectStream as PS};
use Step::*;

/// `{"type":"error","message_id":…,"data":{"code":…}}` patterns.
macro_rules! native_error {
    ($id:literal, $code:literal) => {
        concat!(
            r#"{"type":"error","message_id":"#,
            $id,
            r#","data":{"code":""#,
            $code,
            r#"","message":"<any>"}}"#
        )
    };
}
macro_rules! project_error {
    ($code:literal) => {
        concat!(
            r#"{"event_type":"error","project_id":"p1","timestamp":"<any>","data":{"error":"<any>","recoverable":true,"details":{"code":""#,
            $code,
            r#""}}}"#
        )
    };
}
macro_rules! payload_error {
    ($code:literal) => {
        concat!(
            r#"{"channel":"error","payload":{"type":"error","status":"error","message":"<any>","timestamp":"<any>","error_details":{"code":""#,
            $code,
            r#""}}}"#
        )
    };
}

const SERVE_P1: Step = Text(
    "b",
    r#"{"type":"serve","message_id":"s","data":{"channel":"projects/p1"}}"#,
);
const SERVE_RES_P1: Step = Expect("b", r#"{"type":"serve_res","message_id":"s"}"#);

fn rows() -> Vec<Row> {
    vec![
        // ---------------------------------------------------------------- native: message types
        Row {
            dialect: N,
            cover: Type("connected"),
            config: defaults,
            steps: &[
                OpenRaw("a", D::Native),
                Expect(
                    "a",
                    r#"{"type":"connected","message_id":"<uuid>","server_initiated":true,"data":{"app_id":"<uuid>","status":"connected","protocol":1,"heartbeat_ms":25000,"max_message_bytes":1048576}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("ping"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"ping","message_id":"p1","data":{"timestamp":42}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"ping_res","message_id":"p1","data":{"timestamp":42,"server_time":1700000000000}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("create_session"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"create_session","message_id":"c1","data":{"metadata":{"user":"u"}}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"create_session_res","message_id":"c1","data":{"session_id":"<uuid>"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("close_session"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text("a", r#"{"type":"create_session","message_id":"c1"}"#),
                Expect("a", r#"{"type":"create_session_res"}"#),
                Capture("a", "/data/session_id", "sid"),
                Text(
                    "a",
                    r#"{"type":"close_session","message_id":"c2","data":{"session_id":"{sid}"}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"close_session_res","message_id":"c2","data":{"session_id":"{sid}"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("subscribe"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"subscribe_res","message_id":"s1","data":{"channel":"news","epoch":"<any>","offset":0,"recovered":null}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("unsubscribe"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
                ),
                Skip("a"),
                Text(
                    "a",
                    r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"news"}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"unsubscribe_res","message_id":"u1","data":{"channel":"news"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("publish"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"p1","data":{"channel":"news","event":{"n":1}}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"publish_res","message_id":"p1","data":{"channel":"news","offset":1}}"#,
                ),
                ExpectEvent(r#"{"event":"published","channel":"news","offset":1}"#),
            ],
        },
        Row {
            dialect: N,
            cover: Type("get_state"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"p1","data":{"channel":"news","event":{"n":1},"retain":true}}"#,
                ),
                Skip("a"),
                Text(
                    "a",
                    r#"{"type":"get_state","message_id":"g1","data":{"channel":"news"}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"get_state_res","message_id":"g1","data":{"channel":"news","epoch":"<any>","offset":1,"state":{"n":1}}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("serve"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"serve","message_id":"s1","data":{"channel":"rpc"}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"serve_res","message_id":"s1","data":{"channel":"rpc"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("call"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Open("b", D::Native),
                Text(
                    "b",
                    r#"{"type":"serve","message_id":"s1","data":{"channel":"rpc"}}"#,
                ),
                Skip("b"),
                Text(
                    "a",
                    r#"{"type":"call","message_id":"k1","data":{"channel":"rpc","method":"add","params":[2,3]}}"#,
                ),
                Expect(
                    "b",
                    r#"{"type":"server_request","message_id":"<uuid>","server_initiated":true,"data":{"request_type":"call","channel":"rpc","method":"add","params":[2,3],"caller":{"app_id":"<uuid>"}}}"#,
                ),
                Capture("b", "/message_id", "rid"),
                Text(
                    "b",
                    r#"{"type":"server_response","message_id":"{rid}","data":{"result":5}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"call_res","message_id":"k1","data":{"channel":"rpc","method":"add","result":5}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("server_response"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                SendRequest("a", "confirm"),
                Expect("a", r#"{"type":"server_request"}"#),
                Capture("a", "/message_id", "rid"),
                Text(
                    "a",
                    r#"{"type":"server_response","message_id":"{rid}","data":{"response_type":"confirm","ok":true}}"#,
                ),
                ExpectEvent(
                    r#"{"event":"request_completed","conn":"a","id":"{rid}","outcome":{"ok":{"response_type":"confirm","ok":true}}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("server_request"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                SendRequest("a", "confirm"),
                Expect(
                    "a",
                    r#"{"type":"server_request","message_id":"<uuid>","server_initiated":true,"data":{"request_type":"confirm","question":"?"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("server_ping"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                AdvanceMs(25_000),
                Expect(
                    "a",
                    r#"{"type":"server_ping","message_id":"<uuid>","server_initiated":true,"data":{"timestamp":"<any>"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("server_pong"),
            config: quick_heartbeat,
            steps: &[
                Open("a", D::Native),
                AdvanceMs(10_000),
                Expect("a", r#"{"type":"server_ping"}"#),
                Text(
                    "a",
                    r#"{"type":"server_pong","message_id":"q1","data":{"timestamp":1,"server_timestamp":2}}"#,
                ),
                // Without the pong the connection would have been closed at 15 s.
                AdvanceMs(14_000),
                Expect("a", r#"{"type":"server_ping"}"#),
                ExpectOpen("a"),
            ],
        },
        Row {
            dialect: N,
            cover: Type("event"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
                ),
                Skip("a"),
                Publish("news", r#"{"headline":"hi"}"#, false),
                Expect(
                    "a",
                    r#"{"type":"event","message_id":"<uuid>","server_initiated":true,"data":{"channel":"news","epoch":"<any>","offset":1,"event":{"headline":"hi"}}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("notification"),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Notify("a"),
                Expect(
                    "a",
                    r#"{"type":"notification","message_id":"<uuid>","server_initiated":true,"data":{"notification_type":"deploy","message":"done","additional_data":{"v":2}}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Type("custom"),
            config: defaults,
            steps: &[
                Register("my_type"),
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"my_type","message_id":"m1","data":{"x":1}}"#,
                ),
                ExpectEvent(
                    r#"{"event":"custom_request","conn":"a","message_id":"m1","type":"my_type","data":{"x":1}}"#,
                ),
                RespondCustom(None),
                Expect(
                    "a",
                    r#"{"type":"my_type_res","message_id":"m1","data":{"ok":true}}"#,
                ),
            ],
        },
        // ---------------------------------------------------------------- native: error codes
        Row {
            dialect: N,
            cover: Code(ErrorCode::InvalidJson),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text("a", "not json"),
                Expect("a", native_error!("null", "INVALID_JSON")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::ValidationError),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text("a", r#"{"type":"subscribe","message_id":"v1","data":{}}"#),
                Expect("a", native_error!("\"v1\"", "VALIDATION_ERROR")),
                Capture("a", "/data/details/field", "field"),
                Text(
                    "a",
                    r#"{"type":"ping","message_id":"p1","data":{"timestamp":"{field}"}}"#,
                ),
                Expect(
                    "a",
                    r#"{"type":"ping_res","data":{"timestamp":"data.channel"}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::InvalidMessageType),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text("a", r#"{"type":"dance","message_id":"t1"}"#),
                Expect("a", native_error!("\"t1\"", "INVALID_MESSAGE_TYPE")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::UnsupportedFrame),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Binary("a", 16),
                Expect("a", native_error!("null", "UNSUPPORTED_FRAME")),
                ExpectOpen("a"),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::DuplicateMessageId),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Open("b", D::Native),
                Text(
                    "b",
                    r#"{"type":"serve","message_id":"s1","data":{"channel":"rpc"}}"#,
                ),
                Skip("b"),
                Text(
                    "a",
                    r#"{"type":"call","message_id":"d1","data":{"channel":"rpc","method":"slow"}}"#,
                ),
                Skip("b"),
                Text("a", r#"{"type":"ping","message_id":"d1"}"#),
                Expect("a", native_error!("\"d1\"", "DUPLICATE_MESSAGE_ID")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::SessionNotFound),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"close_session","message_id":"c1","data":{"session_id":"nope"}}"#,
                ),
                Expect("a", native_error!("\"c1\"", "SESSION_NOT_FOUND")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::SessionLimit),
            config: one_session,
            steps: &[
                Open("a", D::Native),
                Text("a", r#"{"type":"create_session","message_id":"c1"}"#),
                Expect("a", r#"{"type":"create_session_res"}"#),
                Text("a", r#"{"type":"create_session","message_id":"c2"}"#),
                Expect("a", native_error!("\"c2\"", "SESSION_LIMIT")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::InvalidChannel),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s1","data":{"channel":"no spaces"}}"#,
                ),
                Expect("a", native_error!("\"s1\"", "INVALID_CHANNEL")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::Forbidden),
            config: defaults,
            steps: &[
                Open("a", D::NativeDenied),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s1","data":{"channel":"news"}}"#,
                ),
                Expect("a", native_error!("\"s1\"", "FORBIDDEN")),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"s2","data":{"channel":"news","event":1}}"#,
                ),
                Expect("a", native_error!("\"s2\"", "FORBIDDEN")),
                Text(
                    "a",
                    r#"{"type":"serve","message_id":"s3","data":{"channel":"news"}}"#,
                ),
                Expect("a", native_error!("\"s3\"", "FORBIDDEN")),
                Text(
                    "a",
                    r#"{"type":"call","message_id":"s4","data":{"channel":"news","method":"m"}}"#,
                ),
                Expect("a", native_error!("\"s4\"", "FORBIDDEN")),
                Text(
                    "a",
                    r#"{"type":"get_state","message_id":"s5","data":{"channel":"news"}}"#,
                ),
                Expect("a", native_error!("\"s5\"", "FORBIDDEN")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::ChannelLimit),
            config: one_channel,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"p1","data":{"channel":"one","event":1}}"#,
                ),
                Skip("a"),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"p2","data":{"channel":"one","event":2}}"#,
                ),
                Skip("a"),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"p3","data":{"channel":"two","events":[1]}}"#,
                ),
                Expect("a", native_error!("\"p3\"", "CHANNEL_LIMIT")),
                Text(
                    "a",
                    r#"{"type":"publish","message_id":"p4","data":{"channel":"two","event":3}}"#,
                ),
                Expect("a", native_error!("\"p4\"", "CHANNEL_LIMIT")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::TooManySubscriptions),
            config: one_subscription,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s1","data":{"channel":"one"}}"#,
                ),
                Skip("a"),
                Text(
                    "a",
                    r#"{"type":"subscribe","message_id":"s2","data":{"channel":"two"}}"#,
                ),
                Expect("a", native_error!("\"s2\"", "TOO_MANY_SUBSCRIPTIONS")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::NotSubscribed),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"unsubscribe","message_id":"u1","data":{"channel":"news"}}"#,
                ),
                Expect("a", native_error!("\"u1\"", "NOT_SUBSCRIBED")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::NoHandler),
            config: defaults,
            steps: &[
                Open("a", D::Native),
                Text(
                    "a",
                    r#"{"type":"call","message_id":"k1","data":{"channel":"rpc","method":"m"}}"#,
                ),
                Expect("a", native_error!("\"k1\"", "NO_HANDLER")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::RequestTimeout),
            config: short_requests,
            steps: &[
                Open("a", D::Native),
                Open("b", D::Native),
                Text(
                    "b",
                    r#"{"type":"serve","message_id":"s1","data":{"channel":"rpc"}}"#,
                ),
                Skip("b"),
                Text(
                    "a",
                    r#"{"type":"call","message_id":"k1","data":{"channel":"rpc","method":"m"}}"#,
                ),
                Skip("b"),
                AdvanceMs(1_000),
                Expect("a", native_error!("\"k1\"", "REQUEST_TIMEOUT")),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::RateLimited),
            config: rate_one,
            steps: &[
                Open("a", D::Native),
                Text("a", r#"{"type":"ping","message_id":"r1"}"#),
                Expect("a", r#"{"type":"ping_res","message_id":"r1"}"#),
                Text("a", r#"{"type":"ping","message_id":"r2"}"#),
                Expect(
                    "a",
                    r#"{"type":"error","message_id":"r2","data":{"code":"RATE_LIMITED","details":{"retry_after_ms":1000}}}"#,
                ),
            ],
        },
        Row {
            dialect: N,
            cover: Code(ErrorCode::InternalError),
            config: defaults,
            steps: &[
                Register("my_type"),
                Open("a", D::Native),
                Text("a", r#"{"type":"my_type","message_id":"m1"}"#),
                ExpectEvent(r#"{"event":"custom_request"}"#),
                RespondCustom(Some(ErrorCode::InternalError)),
                Expect("a", native_error!("\"m1\"", "INTERNAL_ERROR")),
            ],
        },
        // ---------------------------------------------------------------- project stream: message types
        Row {
            dialect: PS,
            cover: Type("connected"),
            config: defaults,
            steps: &[
                OpenRaw("p", D::Project("p1", None)),
                Expect(
                    "p",
                    r#"{"event_type":"connected","project_id":"p1","timestamp":"2023-11-14T22:13:20.000Z","message":"WebSocket connection established"}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("pong"),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"ping"}"#),
                Expect(
                    "p",
                    r#"{"event_type":"pong","project_id":"p1","timestamp":"2023-11-14T22:13:20.000Z"}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("state"),
            config: defaults,
            steps: &[
                Publish("projects/p1", r#"{"stage":"build"}"#, true),
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"get_state"}"#),
                Expect(
                    "p",
                    r#"{"event_type":"state","project_id":"p1","timestamp":"<any>","offset":1,"data":{"stage":"build"}}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("cancel_acknowledged"),
            config: defaults,
            steps: &[
                Open("b", D::Native),
                SERVE_P1,
                SERVE_RES_P1,
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"cancel"}"#),
                Expect(
                    "p",
                    r#"{"event_type":"cancel_acknowledged","project_id":"p1","timestamp":"<any>","data":{"message":"Cancellation request received"}}"#,
                ),
                Expect(
                    "b",
                    r#"{"type":"server_request","data":{"request_type":"call","channel":"projects/p1","method":"cancel","params":null,"caller":{"app_id":"<uuid>"}}}"#,
                ),
                Capture("b", "/message_id", "rid"),
                Text(
                    "b",
                    r#"{"type":"server_response","message_id":"{rid}","data":{"result":"cancelled"}}"#,
                ),
                ExpectOpen("p"),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("typed event"),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Publish(
                    "projects/p1",
                    r#"{"event_type":"progress_update","timestamp":"2024-01-01T00:00:00.000Z","data":{"pct":50}}"#,
                    false,
                ),
                Expect(
                    "p",
                    r#"{"event_type":"progress_update","project_id":"p1","timestamp":"2024-01-01T00:00:00.000Z","offset":1,"data":{"pct":50}}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("message"),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Publish("projects/p1", r#"{"x":1}"#, false),
                Expect(
                    "p",
                    r#"{"event_type":"message","project_id":"p1","timestamp":"2023-11-14T22:13:20.000Z","offset":1,"data":{"x":1}}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("replay after since"),
            config: defaults,
            steps: &[
                Publish("projects/p1", r#"{"n":1}"#, false),
                Publish("projects/p1", r#"{"n":2}"#, false),
                Publish("projects/p1", r#"{"n":3}"#, false),
                OpenRaw("p", D::Project("p1", Some(1))),
                Expect("p", r#"{"event_type":"connected"}"#),
                Expect("p", r#"{"event_type":"message","offset":2,"data":{"n":2}}"#),
                Expect("p", r#"{"event_type":"message","offset":3,"data":{"n":3}}"#),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("state after lost since"),
            config: defaults,
            steps: &[
                Publish("projects/p1", r#"{"n":1}"#, true),
                OpenRaw("p", D::Project("p1", Some(7))),
                Expect("p", r#"{"event_type":"connected"}"#),
                Expect("p", r#"{"event_type":"state","offset":1,"data":{"n":1}}"#),
            ],
        },
        Row {
            dialect: PS,
            cover: Type("refused open"),
            config: defaults,
            steps: &[
                OpenRaw("p", D::ProjectDenied("p1")),
                Expect("p", r#"{"event_type":"connected"}"#),
                Expect("p", project_error!("FORBIDDEN")),
                ExpectClose("p", 1008),
            ],
        },
        // ---------------------------------------------------------------- project stream: error codes
        Row {
            dialect: PS,
            cover: Code(ErrorCode::InvalidJson),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Text("p", "[1,"),
                Expect("p", project_error!("INVALID_JSON")),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::ValidationError),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"kind":"ping"}"#),
                Expect(
                    "p",
                    r#"{"event_type":"error","data":{"details":{"code":"VALIDATION_ERROR","field":"type"}}}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::InvalidMessageType),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"dance"}"#),
                Expect("p", project_error!("INVALID_MESSAGE_TYPE")),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::UnsupportedFrame),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Binary("p", 3),
                Expect("p", project_error!("UNSUPPORTED_FRAME")),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::InvalidChannel),
            config: defaults,
            steps: &[
                OpenRaw("p", D::Project("not a valid id", None)),
                Expect(
                    "p",
                    r#"{"event_type":"connected","project_id":"not a valid id"}"#,
                ),
                Expect(
                    "p",
                    r#"{"event_type":"error","project_id":"not a valid id","data":{"details":{"code":"INVALID_CHANNEL"}}}"#,
                ),
                ExpectClose("p", 1008),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::Forbidden),
            config: defaults,
            steps: &[
                Open("p", D::ProjectNoCall("p1")),
                Text("p", r#"{"type":"cancel"}"#),
                Expect("p", project_error!("FORBIDDEN")),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::NoHandler),
            config: defaults,
            steps: &[
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"cancel"}"#),
                Expect("p", r#"{"event_type":"cancel_acknowledged"}"#),
                Expect("p", project_error!("NO_HANDLER")),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::RequestTimeout),
            config: short_requests,
            steps: &[
                Open("b", D::Native),
                SERVE_P1,
                SERVE_RES_P1,
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"cancel"}"#),
                Expect("p", r#"{"event_type":"cancel_acknowledged"}"#),
                Skip("b"),
                AdvanceMs(1_000),
                Expect("p", project_error!("REQUEST_TIMEOUT")),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::RateLimited),
            config: rate_one,
            steps: &[
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"ping"}"#),
                Expect("p", r#"{"event_type":"pong"}"#),
                Text("p", r#"{"type":"ping"}"#),
                Expect(
                    "p",
                    r#"{"event_type":"error","data":{"details":{"code":"RATE_LIMITED","retry_after_ms":1000}}}"#,
                ),
            ],
        },
        Row {
            dialect: PS,
            cover: Code(ErrorCode::InternalError),
            config: defaults,
            steps: &[
                Open("b", D::Native),
                SERVE_P1,
                SERVE_RES_P1,
                Open("p", D::Project("p1", None)),
                Text("p", r#"{"type":"cancel"}"#),
                Expect("p", r#"{"event_type":"cancel_acknowledged"}"#),
                Expect("b", r#"{"type":"server_request"}"#),
                Capture("b", "/message_id", "rid"),
                Text(
                    "b",
                    r#"{"type":"server_response","message_id":"{rid}","data":{"error":{"code":"INTERNAL_ERROR","message":"boom"}}}"#,
                ),
                Expect(
                    "p",
                    r#"{"event_type":"error","data":{"error":"boom","details":{"code":"INTERNAL_ERROR"}}}"#,
                ),
            ],
        },
        // ---------------------------------------------------------------- channel payload: message types
        Row {
            dialect: CP,
            cover: Type("no greeting"),
            config: defaults,
            steps: &[OpenRaw("c", D::Payload), ExpectOpen("c")],
        },
        Row {
            dialect: CP,
            cover: Type("subscribed"),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"chat/1"}}"#,
                ),
                Expect(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribed","channel":"chat/1"}}"#,
                ),
            ],
        },
        Row {
            dialect: CP,
            cover: Type("unsubscribed"),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"chat/1"}}"#,
                ),
                Skip("c"),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"unsubscribe","channel":"chat/1"}}"#,
                ),
                Expect(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"unsubscribed","channel":"chat/1"}}"#,
                ),
            ],
        },
        Row {
            dialect: CP,
            cover: Type("delivery"),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Open("d", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"chat/1"}}"#,
                ),
                Skip("c"),
                Text(
                    "d",
                    r#"{"channel":"chat/1","payload":{"type":"assistant_update","status":"started"}}"#,
                ),
                Expect(
                    "c",
                    r#"{"channel":"chat/1","payload":{"type":"assistant_update","status":"started"}}"#,
                ),
                ExpectEvent(r#"{"event":"published","channel":"chat/1","offset":1}"#),
            ],
        },
        // ---------------------------------------------------------------- channel payload: error codes
        Row {
            dialect: CP,
            cover: Code(ErrorCode::InvalidJson),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text("c", "\"just a string\""),
                Expect("c", payload_error!("INVALID_JSON")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::ValidationError),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe"}}"#,
                ),
                Expect(
                    "c",
                    r#"{"channel":"error","payload":{"error_details":{"code":"VALIDATION_ERROR","field":"payload.channel"}}}"#,
                ),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::InvalidMessageType),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text("c", r#"{"channel":"error","payload":{}}"#),
                Expect("c", payload_error!("INVALID_MESSAGE_TYPE")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::UnsupportedFrame),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Binary("c", 3),
                Expect("c", payload_error!("UNSUPPORTED_FRAME")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::InvalidChannel),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text("c", r#"{"channel":"bad name","payload":{}}"#),
                Expect("c", payload_error!("INVALID_CHANNEL")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::Forbidden),
            config: defaults,
            steps: &[
                Open("c", D::PayloadNoPublish),
                Text("c", r#"{"channel":"chat/1","payload":{"x":1}}"#),
                Expect("c", payload_error!("FORBIDDEN")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::ChannelLimit),
            config: one_channel,
            steps: &[
                Open("c", D::Payload),
                Text("c", r#"{"channel":"chat/1","payload":{"x":1}}"#),
                Text("c", r#"{"channel":"chat/1","payload":{"x":2}}"#),
                Text("c", r#"{"channel":"chat/2","payload":{"x":3}}"#),
                Expect("c", payload_error!("CHANNEL_LIMIT")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::TooManySubscriptions),
            config: one_subscription,
            steps: &[
                Open("c", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"a"}}"#,
                ),
                Skip("c"),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"b"}}"#,
                ),
                Expect("c", payload_error!("TOO_MANY_SUBSCRIPTIONS")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::NotSubscribed),
            config: defaults,
            steps: &[
                Open("c", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"unsubscribe","channel":"a"}}"#,
                ),
                Expect("c", payload_error!("NOT_SUBSCRIBED")),
            ],
        },
        Row {
            dialect: CP,
            cover: Code(ErrorCode::RateLimited),
            config: rate_one,
            steps: &[
                Open("c", D::Payload),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"a"}}"#,
                ),
                Skip("c"),
                Text(
                    "c",
                    r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"b"}}"#,
                ),
                Expect(
                    "c",
                    r#"{"channel":"error","payload":{"error_details":{"code":"RATE_LIMITED","retry_after_ms":1000}}}"#,
                ),
            ],
        },
    ]
}

fn permissions(d: D) -> Permissions {
    let all = || vec!["**".to_owned()];
    match d {
        D::NativeDenied | D::ProjectDenied(_) => Permissions::deny_all(),
        D::ProjectNoCall(_) | D::PayloadNoPublish => {
            Permissions::from_patterns(all(), vec![], vec![], vec![])
        }
        _ => Permissions::allow_all(),
    }
}

fn dialect(d: D) -> Dialect {
    let project = |id: &str, since| Dialect::ProjectStream {
        project_id: id.to_owned(),
        since,
    };
    match d {
        D::Native | D::NativeDenied => Dialect::Native,
        D::Project(id, since) => project(id, since),
        D::ProjectNoCall(id) | D::ProjectDenied(id) => project(id, None),
        D::Payload | D::PayloadNoPublish => Dialect::ChannelPayload,
    }
}

fn substitute(text: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn run(row: &Row) {
    let mut config = HubConfig::default();
    (row.config)(&mut config);
    let mut h = Harness::new(config);
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    let mut last: BTreeMap<&str, Value> = BTreeMap::new();
    let mut last_custom: Option<(crate::server::ConnId, MessageId, String)> = None;
    let label = format!("{:?} {:?}", row.dialect, row.cover);
    for (i, step) in row.steps.iter().enumerate() {
        let at = format!("{label}, step {i} {step:?}");
        match *step {
            Open(name, d) | OpenRaw(name, d) => {
                h.open_with(name, dialect(d), permissions(d));
                if matches!(step, Open(..)) {
                    let id = h.conn(name);
                    h.frames.remove(&id);
                }
            }
            Text(name, text) => h.text(name, &substitute(text, &vars)),
            Binary(name, len) => h.binary(name, len),
            AdvanceMs(ms) => h.advance_ms(ms),
            Publish(channel, event, retain) => {
                let event: Value = serde_json::from_str(event).expect("row event is JSON");
                h.hub
                    .publish(h.now, &ch(channel), event, retain)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                h.drain();
            }
            Register(type_name) => h.hub.register_custom_type(type_name),
            RespondCustom(code) => {
                let (conn, id, type_name) = last_custom
                    .take()
                    .unwrap_or_else(|| panic!("{at}: no custom request"));
                let result = match code {
                    None => {
                        let mut m = Map::new();
                        m.insert("ok".to_owned(), Value::Bool(true));
                        Ok(m)
                    }
                    Some(code) => Err((code, "it broke".to_owned())),
                };
                assert!(h.hub.respond(h.now, conn, &id, &type_name, result), "{at}");
                assert!(
                    !h.hub.respond(
                        h.now,
                        conn,
                        &id,
                        &type_name,
                        Err((ErrorCode::InternalError, String::new()))
                    ),
                    "{at}: answered twice"
                );
                h.drain();
            }
            SendRequest(name, request_type) => {
                let conn = h.conn(name);
                let mut data = Map::new();
                data.insert("question".to_owned(), json!("?"));
                h.hub
                    .send_request(h.now, conn, request_type, data, None)
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                h.drain();
            }
            Notify(name) => {
                let conn = h.conn(name);
                let n = h.hub.notify(
                    h.now,
                    NotifyTarget::App(conn),
                    "deploy",
                    Some("done".to_owned()),
                    Some(json!({"v": 2})),
                );
                assert_eq!(n, 1, "{at}");
                h.drain();
            }
            Expect(name, pattern) => {
                let pattern: Value = serde_json::from_str(&substitute(pattern, &vars))
                    .unwrap_or_else(|e| panic!("{at}: bad pattern: {e}"));
                let frame = h
                    .next_frame(name)
                    .unwrap_or_else(|| panic!("{at}: no frame"));
                assert!(
                    matches(&pattern, &frame),
                    "{at}:\n  want {pattern}\n  got  {frame}"
                );
                last.insert(name, frame);
            }
            ExpectEvent(pattern) => {
                let pattern: Value =
                    serde_json::from_str(&substitute(pattern, &vars)).expect("pattern");
                let found = h.events.iter().position(|e| matches(&pattern, e));
                let Some(index) = found else {
                    panic!("{at}: no event matches {pattern}; events: {:?}", h.events)
                };
                let event = h.events.remove(index).expect("index is in range");
                if event["event"] == "custom_request" {
                    let conn = h.conn(event["conn"].as_str().unwrap_or_default());
                    let id = MessageId::new(event["message_id"].as_str().unwrap_or_default())
                        .expect("id");
                    last_custom = Some((
                        conn,
                        id,
                        event["type"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
            Capture(name, pointer, var) => {
                let value = last
                    .get(name)
                    .and_then(|f| f.pointer(pointer))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{at}: nothing to capture"));
                vars.insert(var, value.to_owned());
            }
            Skip(name) => {
                assert!(h.next_frame(name).is_some(), "{at}: nothing to skip");
            }
            ExpectClose(name, code) => {
                let id = h.conn(name);
                assert_eq!(h.closes.get(&id).map(|c| c.0), Some(code), "{at}");
            }
            ExpectOpen(name) => {
                let id = h.conn(name);
                assert!(
                    h.hub.connection(id).is_some() && !h.closes.contains_key(&id),
                    "{at}: closed"
                );
            }
        }
        h.assert_clean();
    }
    // Nothing unexpected was said to anyone.
    for (id, frames) in &h.frames {
        assert!(
            frames.is_empty(),
            "{label}: unexpected frames to {id}: {frames:?}"
        );
    }
}

#[test]
fn every_code_and_message_type_in_every_dialect() {
    let rows = rows();
    let mut covered: BTreeMap<DialectKind, BTreeSet<Cover>> = BTreeMap::new();
    for row in &rows {
        run(row);
        let fresh = covered.entry(row.dialect).or_default().insert(row.cover);
        assert!(fresh, "two rows cover {:?} {:?}", row.dialect, row.cover);
    }

    let codes = |list: &[ErrorCode]| list.iter().map(|&c| Code(c)).collect::<Vec<_>>();
    let types = |list: &[&'static str]| list.iter().map(|&t| Type(t)).collect::<Vec<_>>();
    use ErrorCode as E;
    let want: [(DialectKind, Vec<Cover>); 3] = [
        (
            N,
            [
                // STORAGE_UNAVAILABLE needs a store that writes: tests/durable_publish.rs has its transcripts.
                codes(
                    &ErrorCode::ALL
                        .iter()
                        .copied()
                        .filter(|c| *c != E::StorageUnavailable)
                        .collect::<Vec<_>>(),
                ),
                types(&[
                    "connected",
                    "ping",
                    "create_session",
                    "close_session",
                    "subscribe",
                    "unsubscribe",
                    "publish",
                    "get_state",
                    "serve",
                    "call",
                    "server_response",
                    "server_request",
                    "server_ping",
                    "server_pong",
                    "event",
                    "notification",
                    "custom",
                ]),
            ]
            .concat(),
        ),
        (
            PS,
            [
                codes(&[
                    E::InvalidJson,
                    E::ValidationError,
                    E::InvalidMessageType,
                    E::UnsupportedFrame,
                    E::InvalidChannel,
                    E::Forbidden,
                    E::NoHandler,
                    E::RequestTimeout,
                    E::RateLimited,
                    E::InternalError,
                ]),
                types(&[
                    "connected",
                    "pong",
                    "state",
                    "cancel_acknowledged",
                    "typed event",
                    "message",
                    "replay after since",
                    "state after lost since",
                    "refused open",
                ]),
            ]
            .concat(),
        ),
        (
            CP,
            [
                codes(&[
                    E::InvalidJson,
                    E::ValidationError,
                    E::InvalidMessageType,
                    E::UnsupportedFrame,
                    E::InvalidChannel,
                    E::Forbidden,
                    E::TooManySubscriptions,
                    E::NotSubscribed,
                    E::RateLimited,
                    E::ChannelLimit,
                ]),
                types(&["no greeting", "subscribed", "unsubscribed", "delivery"]),
            ]
            .concat(),
        ),
    ];
    for (dialect, want) in want {
        let want: BTreeSet<Cover> = want.into_iter().collect();
        let got = covered.remove(&dialect).unwrap_or_default();
        assert_eq!(got, want, "{dialect} coverage");
    }
    assert!(covered.is_empty());
    assert_eq!(
        T0_MS, 1_700_000_000_000,
        "the rows' timestamps assume this start"
    );
}
