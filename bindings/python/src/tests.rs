//! The conversion layer against the real machine: transcripts of what the Python driver would see.

use serde_json::{Value, json};
use switchboard_protocol::client::FailReason;
use switchboard_protocol::wire::{
    ChannelName, ConnectedStatus, ErrorCode, MessageId, ServerFrame, ServerMessage,
};

use crate::core::{Core, Knobs};
use crate::events::fail_reason_json;
use crate::refusal::Refusal;

const SECOND: u64 = 1_000_000;

fn frame(id: Option<&str>, message: ServerMessage) -> String {
    ServerFrame {
        message_id: id.map(|id| MessageId::new(id).unwrap()),
        message,
    }
    .encode()
}

fn greeting() -> String {
    frame(
        Some("greeting-1"),
        ServerMessage::Connected {
            app_id: "app-1".into(),
            status: ConnectedStatus::Connected,
            protocol: 1,
            heartbeat_ms: 25_000,
            max_message_bytes: 1_048_576,
        },
    )
}

/// Every output up to the timeout, then the timeout's own triple last.
fn drain(core: &mut Core) -> Vec<(&'static str, Option<String>, Option<u64>)> {
    let mut out = Vec::new();
    loop {
        let step = core.poll();
        let done = step.0 == "timeout";
        out.push(step);
        if done {
            return out;
        }
    }
}

fn events(steps: &[(&'static str, Option<String>, Option<u64>)]) -> Vec<Value> {
    steps
        .iter()
        .filter(|s| s.0 == "event")
        .map(|s| serde_json::from_str(s.1.as_deref().unwrap()).unwrap())
        .collect()
}

fn transmitted(steps: &[(&'static str, Option<String>, Option<u64>)]) -> Vec<Value> {
    steps
        .iter()
        .filter(|s| s.0 == "transmit")
        .map(|s| serde_json::from_str(s.1.as_deref().unwrap()).unwrap())
        .collect()
}

/// A machine with an open, greeted connection, its outputs drained.
fn open(knobs: &Knobs) -> Core {
    let mut core = Core::new(knobs, 0);
    let steps = drain(&mut core);
    assert_eq!(steps[0], ("connect", None, None));
    core.connected(1);
    core.text(2, &greeting());
    let steps = drain(&mut core);
    assert_eq!(
        events(&steps),
        vec![json!({"kind": "connected", "app_id": "app-1"})]
    );
    assert!(core.is_connected());
    assert_eq!(core.app_id().as_deref(), Some("app-1"));
    core
}

#[test]
fn first_output_is_connect_then_the_connect_deadline() {
    let knobs = Knobs {
        connect_timeout_ms: Some(3_000),
        ..Knobs::default()
    };
    let mut core = Core::new(&knobs, 5 * SECOND);
    assert_eq!(
        drain(&mut core),
        vec![("connect", None, None), ("timeout", None, Some(8 * SECOND))]
    );
}

#[test]
fn publish_goes_out_and_its_answer_is_a_response_with_the_offset() {
    let mut core = open(&Knobs::default());
    let id = core
        .publish(10, "projects/p1", r#"{"n":1}"#, true, Some("k-1"))
        .unwrap();
    let sent = transmitted(&drain(&mut core));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "publish");
    assert_eq!(sent[0]["message_id"], id.as_str());
    assert_eq!(sent[0]["data"]["event"], json!({"n": 1}));
    assert_eq!(sent[0]["data"]["retain"], true);
    assert_eq!(sent[0]["data"]["idempotency_key"], "k-1");

    let answer = ServerMessage::PublishRes {
        channel: ChannelName::new("projects/p1").unwrap(),
        offset: 7,
        duplicate: false,
    };
    core.text(20, &frame(Some(&id), answer));
    assert_eq!(
        events(&drain(&mut core)),
        vec![json!({
            "kind": "response",
            "id": id,
            "type": "publish_res",
            "data": {"channel": "projects/p1", "offset": 7},
        })]
    );
}

#[test]
fn channel_events_come_with_channel_epoch_offset_and_event() {
    let mut core = open(&Knobs::default());
    let id = core.subscribe(10, "projects/p1", false).unwrap();
    let sent = transmitted(&drain(&mut core));
    assert_eq!(sent[0]["type"], "subscribe");
    assert_eq!(sent[0]["data"]["channel"], "projects/p1");
    let event = ServerMessage::Event {
        channel: ChannelName::new("projects/p1").unwrap(),
        epoch: "e1".into(),
        offset: 3,
        event: json!({"event_type": "log"}),
    };
    core.text(20, &frame(Some("ev-1"), event));
    let seen = events(&drain(&mut core));
    assert_eq!(
        seen,
        vec![json!({
            "kind": "channel_event",
            "channel": "projects/p1",
            "epoch": "e1",
            "offset": 3,
            "event": {"event_type": "log"},
        })]
    );
    assert!(!id.is_empty());
}

#[test]
fn a_call_times_out_at_its_own_timeout_not_the_default() {
    let knobs = Knobs {
        request_timeout_ms: Some(60_000),
        ..Knobs::default()
    };
    let mut core = open(&knobs);
    let id = core
        .call(
            SECOND,
            "projects/p1",
            "status",
            Some(r#"{"verbose":true}"#),
            Some(500),
        )
        .unwrap();
    let steps = drain(&mut core);
    let sent = transmitted(&steps);
    assert_eq!(sent[0]["type"], "call");
    assert_eq!(
        sent[0]["data"],
        json!({"channel": "projects/p1", "method": "status", "params": {"verbose": true}})
    );
    assert_eq!(
        steps.last().unwrap(),
        &("timeout", None, Some(SECOND + 500_000))
    );
    core.timeout(SECOND + 500_000);
    assert_eq!(
        events(&drain(&mut core)),
        vec![json!({"kind": "request_failed", "id": id, "reason": {"kind": "timed_out"}})]
    );
}

#[test]
fn a_server_refusal_keeps_its_code_message_and_details() {
    let mut core = open(&Knobs::default());
    let id = core.get_state(10, "projects/p1").unwrap();
    drain(&mut core);
    let refusal = ServerMessage::Error {
        code: ErrorCode::Forbidden,
        message: "not allowed".into(),
        details: Some(json!({"channel": "projects/p1"})),
    };
    core.text(20, &frame(Some(&id), refusal));
    assert_eq!(
        events(&drain(&mut core)),
        vec![json!({
            "kind": "request_failed",
            "id": id,
            "reason": {
                "kind": "error",
                "code": "FORBIDDEN",
                "message": "not allowed",
                "details": {"channel": "projects/p1"},
            },
        })]
    );
}

#[test]
fn bad_arguments_are_refused_before_anything_is_queued() {
    let mut core = open(&Knobs::default());
    for refused in [
        core.publish(10, "no spaces", "1", false, None),
        core.publish(10, "projects/p1", "1", false, Some("")),
        core.publish(10, "projects/p1", "null", false, None),
        core.publish(10, "projects/p1", "{not json", false, None),
        core.call(10, "", "m", None, None),
        core.call(10, "projects/p1", "m", Some("[1,"), None),
        core.request(10, "ping", "[]", None),
        core.subscribe(10, "a b", false),
    ] {
        assert!(matches!(refused, Err(Refusal::Argument(_))), "{refused:?}");
    }
    assert!(transmitted(&drain(&mut core)).is_empty());
}

#[test]
fn a_closed_machine_refuses_commands_as_closed_and_fails_pending_requests() {
    let mut core = open(&Knobs::default());
    let id = core.get_state(10, "projects/p1").unwrap();
    drain(&mut core);
    core.close(20);
    let steps = drain(&mut core);
    assert!(steps.iter().any(|s| s.0 == "close" && s.2 == Some(1000)));
    assert!(
        events(&steps)
            .contains(&json!({"kind": "request_failed", "id": id, "reason": {"kind": "closed"}}))
    );
    assert!(core.is_closed());
    assert_eq!(
        core.publish(30, "projects/p1", "1", false, None),
        Err(Refusal::Closed)
    );
}

#[test]
fn a_rejected_dial_gives_up_with_the_reason() {
    let mut core = Core::new(&Knobs::default(), 0);
    drain(&mut core);
    core.connect_failed(1, "the upgrade was answered with HTTP 401", true);
    let seen = events(&drain(&mut core));
    assert!(seen.contains(&json!({
        "kind": "gave_up",
        "reason": {"kind": "rejected", "reason": "the upgrade was answered with HTTP 401"},
    })));
    assert!(core.is_closed());
}

#[test]
fn a_dropped_connection_is_reported_then_a_reconnect_scheduled() {
    let knobs = Knobs {
        reconnect_first_ms: Some(100),
        reconnect_max_ms: Some(100),
        ..Knobs::default()
    };
    let mut core = open(&knobs);
    core.disconnected(SECOND, 1006, "");
    let steps = drain(&mut core);
    let seen = events(&steps);
    assert_eq!(
        seen[0],
        json!({"kind": "disconnected", "code": 1006, "reason": ""})
    );
    assert_eq!(seen[1]["kind"], "reconnecting");
    assert!(seen[1]["delay_ms"].as_u64().unwrap() <= 100);
    let (_, _, at) = steps.last().unwrap();
    core.timeout(at.unwrap());
    assert_eq!(drain(&mut core)[0], ("connect", None, None));
}

#[test]
fn every_fail_reason_has_a_kind() {
    assert_eq!(
        fail_reason_json(&FailReason::Disconnected),
        json!({"kind": "disconnected"})
    );
    assert_eq!(
        fail_reason_json(&FailReason::QueueFull),
        json!({"kind": "queue_full"})
    );
    assert_eq!(
        fail_reason_json(&FailReason::TimedOut),
        json!({"kind": "timed_out"})
    );
    assert_eq!(
        fail_reason_json(&FailReason::Closed),
        json!({"kind": "closed"})
    );
}

#[test]
fn refresh_sends_the_token() {
    let mut core = open(&Knobs::default());
    let id = core.refresh(10, "fresh-token").unwrap();
    let sent = transmitted(&drain(&mut core));
    assert_eq!(
        sent,
        vec![json!({"type": "refresh", "message_id": id, "data": {"token": "fresh-token"}})]
    );
}

#[test]
fn error_codes_are_the_wire_strings() {
    let codes = crate::error_codes();
    assert!(codes.contains(&"FORBIDDEN") && codes.contains(&"NO_HANDLER"));
    assert_eq!(codes.len(), ErrorCode::ALL.len());
}
