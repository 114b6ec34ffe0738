//! Wire tests: exact classification of decode failures, round trips of every message type and dialect
//! translation, and decoders that never panic on arbitrary input.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use proptest::prelude::{Just, Strategy, any, prop, prop_assert_eq, prop_oneof, proptest};
use serde_json::{Map, Value, json};

use super::channel_payload::*;
use super::project_stream::*;
use super::*;

// ---------------------------------------------------------------------------------------------------------------
// Strategies

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        // Binary fractions print and parse exactly.
        (-1_000_000i32..1_000_000).prop_map(|n| json!(f64::from(n) / 4.0)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_non_null() -> impl Strategy<Value = Value> {
    arb_value().prop_filter("non-null", |v| !v.is_null())
}

fn arb_map_without(reserved: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}", arb_non_null(), 0..4).prop_map(move |m| {
        m.into_iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .collect()
    })
}

fn arb_key() -> impl Strategy<Value = Option<IdempotencyKey>> {
    arb_opt("[a-zA-Z0-9 é_-]{1,40}".prop_map(|k| IdempotencyKey::new(k).unwrap()))
}

fn arb_channel() -> impl Strategy<Value = ChannelName> {
    "[A-Za-z0-9_.:@-][A-Za-z0-9_.:@/-]{0,20}[A-Za-z0-9_.:@-]|[A-Za-z0-9]"
        .prop_map(|s| ChannelName::new(&s).expect("strategy makes valid names"))
}

fn arb_id() -> impl Strategy<Value = MessageId> {
    ".{1,40}".prop_filter_map("1..=128 bytes", |s| MessageId::new(s).ok())
}

fn arb_opt<T: core::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn arb_client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        arb_opt(arb_non_null()).prop_map(|timestamp| ClientMessage::Ping { timestamp }),
        arb_opt(arb_non_null()).prop_map(|metadata| ClientMessage::CreateSession { metadata }),
        ".{0,20}".prop_map(|session_id| ClientMessage::CloseSession { session_id }),
        (arb_channel(), arb_opt((".{0,10}", any::<u64>()))).prop_map(|(channel, since)| {
            ClientMessage::Subscribe {
                channel,
                since: since.map(|(epoch, offset)| StreamPosition { epoch, offset }),
                presence: false,
            }
        }),
        arb_channel().prop_map(|channel| ClientMessage::Unsubscribe { channel }),
        (arb_channel(), arb_non_null(), any::<bool>(), arb_key()).prop_map(
            |(channel, event, retain, idempotency_key)| ClientMessage::Publish {
                channel,
                event,
                retain,
                idempotency_key,
            }
        ),
        (
            arb_channel(),
            prop::collection::vec(arb_non_null(), 1..4),
            any::<bool>(),
            arb_key()
        )
            .prop_map(|(channel, events, retain_last, idempotency_key)| {
                ClientMessage::PublishBatch {
                    channel,
                    events,
                    retain_last,
                    idempotency_key,
                }
            }),
        arb_channel().prop_map(|channel| ClientMessage::GetState { channel }),
        arb_channel().prop_map(|channel| ClientMessage::Serve { channel }),
        (arb_channel(), ".{0,12}", arb_opt(arb_non_null())).prop_map(
            |(channel, method, params)| ClientMessage::Call {
                channel,
                method,
                params
            }
        ),
        arb_map_without(&[]).prop_map(|data| ClientMessage::ServerResponse { data }),
        (arb_opt(any::<u64>()), arb_opt(any::<u64>())).prop_map(|(timestamp, server_timestamp)| {
            ClientMessage::ServerPong {
                timestamp,
                server_timestamp,
            }
        }),
        ".{0,40}".prop_map(|token| ClientMessage::Refresh { token }),
    ]
}

const KNOWN_SERVER_TYPES: &[&str] = &[
    "connected",
    "ping_res",
    "create_session_res",
    "close_session_res",
    "subscribe_res",
    "unsubscribe_res",
    "publish_res",
    "get_state_res",
    "serve_res",
    "call_res",
    "refresh_res",
    "event",
    "notification",
    "server_request",
    "server_ping",
    "error",
];

fn arb_server_message() -> impl Strategy<Value = ServerMessage> {
    let responses = prop_oneof![
        (".{1,36}", any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(app_id, protocol, heartbeat_ms, max_message_bytes)| ServerMessage::Connected {
                app_id,
                status: ConnectedStatus::Connected,
                protocol,
                heartbeat_ms,
                max_message_bytes,
            }
        ),
        (arb_opt(arb_non_null()), any::<u64>()).prop_map(|(timestamp, server_time)| {
            ServerMessage::PingRes {
                timestamp,
                server_time,
            }
        }),
        ".{0,20}".prop_map(|session_id| ServerMessage::CreateSessionRes { session_id }),
        ".{0,20}".prop_map(|session_id| ServerMessage::CloseSessionRes { session_id }),
        (
            arb_channel(),
            ".{0,10}",
            any::<u64>(),
            arb_opt(any::<bool>())
        )
            .prop_map(
                |(channel, epoch, offset, recovered)| ServerMessage::SubscribeRes {
                    channel,
                    epoch,
                    offset,
                    recovered
                }
            ),
        arb_channel().prop_map(|channel| ServerMessage::UnsubscribeRes { channel }),
        (arb_channel(), any::<u64>(), any::<bool>()).prop_map(|(channel, offset, duplicate)| {
            ServerMessage::PublishRes {
                channel,
                offset,
                duplicate,
            }
        }),
        (arb_channel(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
            |(channel, first_offset, last_offset, duplicate)| ServerMessage::PublishBatchRes {
                channel,
                first_offset,
                last_offset,
                duplicate,
            }
        ),
        (arb_channel(), ".{0,10}", any::<u64>(), arb_value()).prop_map(
            |(channel, epoch, offset, state)| ServerMessage::GetStateRes {
                channel,
                epoch,
                offset,
                state
            }
        ),
        arb_channel().prop_map(|channel| ServerMessage::ServeRes { channel }),
    ];
    let others = prop_oneof![
        (arb_channel(), ".{0,12}", arb_value()).prop_map(|(channel, method, result)| {
            ServerMessage::CallRes {
                channel,
                method,
                result,
            }
        }),
        (arb_channel(), ".{0,10}", any::<u64>(), arb_value()).prop_map(
            |(channel, epoch, offset, event)| ServerMessage::Event {
                channel,
                epoch,
                offset,
                event
            }
        ),
        (".{0,12}", arb_opt(".{0,12}"), arb_opt(arb_non_null())).prop_map(
            |(notification_type, message, additional_data)| ServerMessage::Notification {
                notification_type,
                message,
                additional_data
            }
        ),
        (".{0,12}", arb_map_without(&["request_type"]))
            .prop_map(|(request_type, data)| ServerMessage::ServerRequest { request_type, data }),
        any::<u64>().prop_map(|timestamp| ServerMessage::ServerPing { timestamp }),
        arb_opt(any::<u64>()).prop_map(|expires_in_ms| ServerMessage::RefreshRes { expires_in_ms }),
        (
            prop::sample::select(ErrorCode::ALL),
            ".{0,20}",
            arb_opt(arb_non_null())
        )
            .prop_map(|(code, message, details)| ServerMessage::Error {
                code,
                message,
                details
            }),
        ("[a-z_]{1,12}", arb_map_without(&[]))
            .prop_filter("not a known type", |(t, _)| !KNOWN_SERVER_TYPES
                .contains(&t.as_str()))
            .prop_map(|(type_name, data)| ServerMessage::Custom { type_name, data }),
    ];
    prop_oneof![responses, others]
}

// ---------------------------------------------------------------------------------------------------------------
// The three decode failure classes, with exact codes

fn client_err(text: &str) -> DecodeError {
    decode_client(text).expect_err(text)
}

#[test]
fn not_json_or_not_object_is_invalid_json() {
    for text in [
        "",
        "nope",
        "{",
        "[1,2]",
        "42",
        "\"str\"",
        "null",
        "{\"type\":\"ping\",}",
    ] {
        let e = client_err(text);
        assert_eq!(e.code(), ErrorCode::InvalidJson, "{text}");
        assert_eq!(e.message_id, None);
    }
}

#[test]
fn bad_or_missing_field_is_validation_error_naming_it() {
    let cases: &[(&str, &str)] = &[
        (r#"{"message_id":"m1"}"#, "type"),
        (r#"{"message_id":"m1","type":7}"#, "type"),
        (r#"{"message_id":"m1","type":"ping","data":[]}"#, "data"),
        (
            r#"{"message_id":"m1","type":"subscribe","data":{}}"#,
            "data.channel",
        ),
        (
            r#"{"message_id":"m1","type":"subscribe","data":{"channel":5}}"#,
            "data.channel",
        ),
        (
            r#"{"message_id":"m1","type":"subscribe","data":{"channel":"a","since":{"epoch":"e"}}}"#,
            "data.since.offset",
        ),
        (
            r#"{"message_id":"m1","type":"subscribe","data":{"channel":"a","since":{"epoch":"e","offset":-1}}}"#,
            "data.since.offset",
        ),
        (
            r#"{"message_id":"m1","type":"subscribe","data":{"channel":"a","since":7}}"#,
            "data.since",
        ),
        (
            r#"{"message_id":"m1","type":"publish","data":{"channel":"a"}}"#,
            "data.event",
        ),
        (
            r#"{"message_id":"m1","type":"publish","data":{"channel":"a","event":null}}"#,
            "data.event",
        ),
        (
            r#"{"message_id":"m1","type":"publish","data":{"channel":"a","event":1,"retain":"yes"}}"#,
            "data.retain",
        ),
        (
            r#"{"message_id":"m1","type":"call","data":{"channel":"a"}}"#,
            "data.method",
        ),
        (
            r#"{"message_id":"m1","type":"close_session","data":{}}"#,
            "data.session_id",
        ),
        (
            r#"{"message_id":"m1","type":"server_pong","data":{"timestamp":"x"}}"#,
            "data.timestamp",
        ),
    ];
    for (text, field) in cases {
        let e = client_err(text);
        assert_eq!(e.code(), ErrorCode::ValidationError, "{text}");
        assert_eq!(e.message_id.as_deref(), Some("m1"), "{text}");
        match &e.kind {
            DecodeErrorKind::Validation { field: f, .. } => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(e.details()["field"], json!(field));
    }
}

#[test]
fn missing_or_bad_message_id_is_validation_error_without_echo() {
    for text in [
        r#"{"type":"ping"}"#,
        r#"{"type":"ping","message_id":""}"#,
        r#"{"type":"ping","message_id":7}"#,
        &format!(r#"{{"type":"ping","message_id":"{}"}}"#, "x".repeat(129)),
    ] {
        let e = client_err(text);
        assert_eq!(e.code(), ErrorCode::ValidationError, "{text}");
        assert_eq!(e.message_id, None);
        assert!(
            matches!(&e.kind, DecodeErrorKind::Validation { field, .. } if field == "message_id"),
            "{text}"
        );
    }
}

#[test]
fn unknown_type_is_invalid_message_type_and_keeps_data() {
    let e = client_err(r#"{"type":"dance","message_id":"m9","data":{"x":1}}"#);
    assert_eq!(e.code(), ErrorCode::InvalidMessageType);
    assert_eq!(e.message_id.as_deref(), Some("m9"));
    match e.kind {
        DecodeErrorKind::UnknownType { type_name, data } => {
            assert_eq!(type_name, "dance");
            assert_eq!(Value::Object(data), json!({"x": 1}));
        }
        other => panic!("{other:?}"),
    }
    // Unknown type is reported even when the id is missing, since the type is read first.
    assert_eq!(
        client_err(r#"{"type":"dance"}"#).code(),
        ErrorCode::InvalidMessageType
    );
}

#[test]
fn bad_channel_name_is_invalid_channel() {
    for ch in ["", "/a", "a/", "sp ace", "ü"] {
        let text =
            format!(r#"{{"type":"subscribe","message_id":"m2","data":{{"channel":"{ch}"}}}}"#);
        let e = client_err(&text);
        assert_eq!(e.code(), ErrorCode::InvalidChannel, "{ch}");
        assert_eq!(e.message_id.as_deref(), Some("m2"));
    }
}

#[test]
fn unknown_fields_are_ignored_and_data_defaults_to_empty() {
    let f = decode_client(r#"{"type":"ping","message_id":"a","extra":1,"data":{"z":2}}"#).unwrap();
    assert_eq!(f.message, ClientMessage::Ping { timestamp: None });
    let f = decode_client(r#"{"type":"create_session","message_id":"a"}"#).unwrap();
    assert_eq!(f.message, ClientMessage::CreateSession { metadata: None });
}

// ---------------------------------------------------------------------------------------------------------------
// Exact encodings (the contract's examples)

#[test]
fn encodings_are_compact_and_match_the_contract() {
    let frame = ClientFrame {
        message_id: MessageId::new("8f0c").unwrap(),
        message: ClientMessage::Subscribe {
            channel: ChannelName::new("projects/p1").unwrap(),
            since: None,
            presence: false,
        },
    };
    assert_eq!(
        frame.encode(),
        r#"{"type":"subscribe","message_id":"8f0c","data":{"channel":"projects/p1"}}"#
    );

    let connected = ServerFrame {
        message_id: Some(MessageId::new("u1").unwrap()),
        message: ServerMessage::Connected {
            app_id: "a1".into(),
            status: ConnectedStatus::Connected,
            protocol: 1,
            heartbeat_ms: 25000,
            max_message_bytes: 1_048_576,
        },
    };
    assert_eq!(
        connected.encode(),
        r#"{"type":"connected","message_id":"u1","server_initiated":true,"data":{"app_id":"a1","status":"connected","protocol":1,"heartbeat_ms":25000,"max_message_bytes":1048576}}"#
    );

    let err = ServerFrame {
        message_id: None,
        message: ServerMessage::error(ErrorCode::InvalidJson, "bad", None),
    };
    assert_eq!(
        err.encode(),
        r#"{"type":"error","message_id":null,"data":{"code":"INVALID_JSON","message":"bad"}}"#
    );

    let sub = ServerFrame {
        message_id: Some(MessageId::new("m").unwrap()),
        message: ServerMessage::SubscribeRes {
            channel: ChannelName::new("c").unwrap(),
            epoch: "e".into(),
            offset: 3,
            recovered: None,
        },
    };
    assert_eq!(
        sub.encode(),
        r#"{"type":"subscribe_res","message_id":"m","data":{"channel":"c","epoch":"e","offset":3,"recovered":null}}"#
    );

    let id = MessageId::new("ev").unwrap();
    let event = json!({"k": [1, 2]});
    let text = encode_event(&id, &ChannelName::new("c").unwrap(), "e", 9, &event);
    assert_eq!(
        text,
        r#"{"type":"event","message_id":"ev","server_initiated":true,"data":{"channel":"c","epoch":"e","offset":9,"event":{"k":[1,2]}}}"#
    );
    let decoded = decode_server(&text).unwrap();
    assert_eq!(
        decoded.message,
        ServerMessage::Event {
            channel: ChannelName::new("c").unwrap(),
            epoch: "e".into(),
            offset: 9,
            event
        }
    );
}

#[test]
fn every_error_code_round_trips_in_an_error_message() {
    for &code in ErrorCode::ALL {
        let frame = ServerFrame {
            message_id: Some(MessageId::new("m").unwrap()),
            message: ServerMessage::error(code, "text", Some(json!({"retry_after_ms": 5}))),
        };
        assert_eq!(decode_server(&frame.encode()).unwrap(), frame);
    }
    let unknown = decode_server(
        r#"{"type":"error","message_id":null,"data":{"code":"NEW_THING","message":"m"}}"#,
    )
    .unwrap();
    assert_eq!(
        unknown.message,
        ServerMessage::Error {
            code: ErrorCode::InternalError,
            message: "m".into(),
            details: Some(json!({"code": "NEW_THING"}))
        }
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Dialects

#[test]
fn project_stream_messages_match_the_contract() {
    let ms = 1_704_110_400_000;
    assert_eq!(
        ProjectStreamMessage::connected("p1", ms).encode(),
        r#"{"event_type":"connected","project_id":"p1","timestamp":"2024-01-01T12:00:00.000Z","message":"WebSocket connection established"}"#
    );
    assert_eq!(
        ProjectStreamMessage::cancel_acknowledged("p1", ms).encode(),
        r#"{"event_type":"cancel_acknowledged","project_id":"p1","timestamp":"2024-01-01T12:00:00.000Z","data":{"message":"Cancellation request received"}}"#
    );
    assert_eq!(
        ProjectStreamMessage::state("p1", ms, 4, None).encode(),
        r#"{"event_type":"state","project_id":"p1","timestamp":"2024-01-01T12:00:00.000Z","offset":4,"data":null}"#
    );
    let typed = pipeline_event(
        PipelineEventType::ProgressUpdate,
        None,
        json!({"progress": 0.5}),
    );
    let m = ProjectStreamMessage::from_event("p1", 7, &typed, ms);
    assert_eq!(m.event_type, "progress_update");
    assert_eq!(m.timestamp, "2024-01-01T12:00:00.000Z");
    assert_eq!(m.offset, Some(7));
    assert_eq!(m.data, Some(json!({"progress": 0.5})));
    assert_eq!(
        m.pipeline_event_type(),
        Some(PipelineEventType::ProgressUpdate)
    );
    let plain = ProjectStreamMessage::from_event("p1", 8, &json!([1, 2]), ms);
    assert_eq!(plain.event_type, "message");
    assert_eq!(plain.data, Some(json!([1, 2])));
    let err = ProjectStreamMessage::error("p1", ms, "Unknown message type", json!("x"));
    assert_eq!(
        err.data,
        Some(json!({"error": "Unknown message type", "details": "x", "recoverable": true}))
    );
    assert_eq!(project_channel("p1").unwrap().as_str(), "projects/p1");
    assert_eq!(project_channel("p/1"), Err(ProjectIdError::Slash));
    assert_eq!(
        project_channel("p 1"),
        Err(ProjectIdError::Name(NameError::BadCharacter))
    );
    for &t in PipelineEventType::ALL {
        assert_eq!(PipelineEventType::from_wire(t.as_str()), Some(t));
    }
}

#[test]
fn project_stream_requests_decode() {
    assert_eq!(
        decode_project_stream_request(r#"{"type":"ping"}"#).unwrap(),
        ProjectStreamRequest::Ping
    );
    assert_eq!(
        decode_project_stream_request(r#"{"type":"cancel"}"#).unwrap(),
        ProjectStreamRequest::Cancel
    );
    assert_eq!(
        decode_project_stream_request(r#"{"type":"get_state"}"#).unwrap(),
        ProjectStreamRequest::GetState
    );
    for r in [
        ProjectStreamRequest::Ping,
        ProjectStreamRequest::Cancel,
        ProjectStreamRequest::GetState,
    ] {
        assert_eq!(decode_project_stream_request(&r.encode()).unwrap(), r);
    }
    assert_eq!(
        decode_project_stream_request("x").unwrap_err().code(),
        ErrorCode::InvalidJson
    );
    assert_eq!(
        decode_project_stream_request("{}").unwrap_err().code(),
        ErrorCode::ValidationError
    );
    assert_eq!(
        decode_project_stream_request(r#"{"type":"jump"}"#)
            .unwrap_err()
            .code(),
        ErrorCode::InvalidMessageType
    );
}

#[test]
fn channel_payload_messages_match_the_contract() {
    let x = ChannelName::new("room/1").unwrap();
    let sub = decode_channel_payload_request(
        r#"{"channel":"subscription","payload":{"action":"subscribe","channel":"room/1"}}"#,
    )
    .unwrap();
    assert_eq!(sub, ChannelPayloadRequest::Subscribe { channel: x.clone() });
    assert_eq!(
        ChannelPayloadMessage::Subscribed { channel: x.clone() }.encode(),
        r#"{"channel":"subscription","payload":{"action":"subscribed","channel":"room/1"}}"#
    );
    assert_eq!(
        ChannelPayloadMessage::Unsubscribed { channel: x.clone() }.encode(),
        r#"{"channel":"subscription","payload":{"action":"unsubscribed","channel":"room/1"}}"#
    );
    assert_eq!(
        ChannelPayloadMessage::Error {
            message: "m".into(),
            error_details: json!({"a": 1}),
            timestamp: 1.5
        }
        .encode(),
        r#"{"channel":"error","payload":{"type":"error","status":"error","message":"m","error_details":{"a":1},"timestamp":1.5}}"#
    );
    let e = decode_channel_payload_request(r#"{"channel":"bad name","payload":{}}"#).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidChannel);
    let e = decode_channel_payload_request(
        r#"{"channel":"subscription","payload":{"action":"dance","channel":"a"}}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ValidationError);
    let e = decode_channel_payload_request(r#"{"channel":"x"}"#).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ValidationError);
    let e = decode_channel_payload_request(r#"{"channel":"error","payload":{}}"#).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidMessageType);
}

#[test]
fn assistant_updates_round_trip() {
    for &status in AssistantStatus::ALL {
        let u = AssistantUpdate {
            status,
            message: Some("hi".into()),
            data: Some(json!({"n": 1})),
        };
        assert_eq!(AssistantUpdate::from_payload(&u.to_payload()), Some(u));
        assert_eq!(AssistantStatus::from_wire(status.as_str()), Some(status));
    }
    assert!(AssistantStatus::Completed.is_terminal() && !AssistantStatus::Responding.is_terminal());
    assert_eq!(
        AssistantUpdate::from_payload(&json!({"type": "other"})),
        None
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

proptest! {
    #[test]
    fn client_frames_round_trip(message_id in arb_id(), message in arb_client_message()) {
        let frame = ClientFrame { message_id, message };
        prop_assert_eq!(decode_client(&frame.encode()).unwrap(), frame);
    }

    #[test]
    fn server_frames_round_trip(message_id in arb_opt(arb_id()), message in arb_server_message()) {
        let frame = ServerFrame { message_id, message };
        prop_assert_eq!(decode_server(&frame.encode()).unwrap(), frame);
    }

    #[test]
    fn custom_client_types_surface_as_unknown_with_data(
        message_id in arb_id(),
        type_name in "[a-z]{1,8}_x",
        data in arb_map_without(&[]),
    ) {
        let frame = ClientFrame { message_id: message_id.clone(), message: ClientMessage::Custom { type_name: type_name.clone(), data: data.clone() } };
        let err = decode_client(&frame.encode()).unwrap_err();
        prop_assert_eq!(err.message_id, Some(message_id));
        prop_assert_eq!(err.kind, DecodeErrorKind::UnknownType { type_name, data });
    }

    #[test]
    fn project_stream_messages_round_trip(
        event_type in "[a-z_]{1,12}", project_id in "[a-z0-9]{1,8}", timestamp in ".{0,24}",
        offset in arb_opt(any::<u64>()), data in arb_opt(arb_non_null()), message in arb_opt(".{0,12}"),
    ) {
        let m = ProjectStreamMessage { event_type, project_id, timestamp, offset, data, message };
        prop_assert_eq!(decode_project_stream_message(&m.encode()).unwrap(), m);
    }

    /// Native event → project stream → native event is the identity for typed pipeline events...
    #[test]
    fn typed_events_translate_both_ways(
        t in prop::sample::select(PipelineEventType::ALL), ts in ".{0,24}", data in arb_non_null(), offset: u64, now in 0u64..4_000_000_000_000,
    ) {
        let event = pipeline_event(t, Some(ts), data);
        let m = ProjectStreamMessage::from_event("p", offset, &event, now);
        prop_assert_eq!(m.offset, Some(offset));
        prop_assert_eq!(m.to_event(), event);
    }

    /// ...and for every event without an `event_type`, which travels whole as `message`.
    #[test]
    fn untyped_events_translate_both_ways(event in arb_value(), offset: u64) {
        let untyped = match &event { Value::Object(m) => !m.contains_key("event_type"), _ => true };
        if untyped {
            let m = ProjectStreamMessage::from_event("p", offset, &event, 0);
            prop_assert_eq!(&m.event_type, "message");
            prop_assert_eq!(m.to_event(), event);
        }
    }

    #[test]
    fn channel_payload_requests_round_trip(channel in arb_channel(), payload in arb_non_null(), which in 0u8..3) {
        let channel = if matches!(channel.as_str(), "subscription" | "error") { ChannelName::new("x").unwrap() } else { channel };
        let req = match which {
            0 => ChannelPayloadRequest::Subscribe { channel },
            1 => ChannelPayloadRequest::Unsubscribe { channel },
            _ => ChannelPayloadRequest::Publish { channel, payload },
        };
        prop_assert_eq!(decode_channel_payload_request(&req.encode()).unwrap(), req);
    }

    #[test]
    fn channel_payload_messages_round_trip(channel in arb_channel(), payload in arb_non_null(), which in 0u8..4, message in ".{0,12}", details in arb_value(), ts in 0u32..2_000_000_000) {
        let channel = if matches!(channel.as_str(), "subscription" | "error") { ChannelName::new("x").unwrap() } else { channel };
        let msg = match which {
            0 => ChannelPayloadMessage::Subscribed { channel },
            1 => ChannelPayloadMessage::Unsubscribed { channel },
            2 => ChannelPayloadMessage::Delivery { channel, payload },
            _ => ChannelPayloadMessage::Error { message, error_details: details, timestamp: f64::from(ts) / 4.0 },
        };
        prop_assert_eq!(decode_channel_payload_message(&msg.encode()).unwrap(), msg);
    }

    /// Decoders never panic on arbitrary text.
    #[test]
    fn decoders_never_panic_on_text(text in ".{0,200}") {
        let _ = decode_client(&text);
        let _ = decode_server(&text);
        let _ = decode_project_stream_request(&text);
        let _ = decode_project_stream_message(&text);
        let _ = decode_channel_payload_request(&text);
        let _ = decode_channel_payload_message(&text);
    }

    /// Decoders never panic on arbitrary JSON, including envelopes with arbitrary `type`s and `data`.
    #[test]
    fn decoders_never_panic_on_json(
        value in arb_value(),
        t in prop::sample::select(vec![
            "ping", "create_session", "close_session", "subscribe", "unsubscribe", "publish", "get_state", "serve",
            "call", "server_response", "server_pong", "connected", "ping_res", "subscribe_res", "event", "error",
            "server_request", "server_ping", "get_state_res", "call_res", "notification", "x",
        ]),
        id in arb_value(),
        data in arb_value(),
    ) {
        let texts: Vec<String> = vec![
            value.to_string(),
            json!({"type": t, "message_id": id, "data": data}).to_string(),
            json!({"channel": "subscription", "payload": data}).to_string(),
            json!({"channel": "error", "payload": value}).to_string(),
            json!({"event_type": t, "project_id": id, "timestamp": data}).to_string(),
        ];
        for text in &texts {
            let _ = decode_client(text);
            let _ = decode_server(text);
            let _ = decode_project_stream_request(text);
            let _ = decode_project_stream_message(text);
            let _ = decode_channel_payload_request(text);
            let _ = decode_channel_payload_message(text);
        }
    }
}
