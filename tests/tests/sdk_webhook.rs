//! `WebhookHandler`: signatures are verified (with the core's `WebhookVerifier`) before anything is parsed or
//! dispatched, then events go to the handlers of their type. The signature format itself is tested in the core.

use std::sync::{Arc, Mutex};

use serde_json::json;
use switchboard_protocol::auth::webhook::SIGNATURE_HEADER;
use switchboard_protocol::auth::{
    WebhookError, WebhookVerifier, sign_webhook, sign_webhook_rotating,
};
use switchboard_runtime::sdk::{WebhookHandler, WebhookHandlerError};

const NOW: u64 = 1_750_000_000;

/// A handler recording `"<listener>:<event type>:<data.run>"` for each call.
fn recording() -> (WebhookHandler, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut handler = WebhookHandler::new(WebhookVerifier::new(b"whsec-1").unwrap());
    for (name, event_type) in [
        ("done", "pipeline_completed"),
        ("failed", "pipeline_failed"),
        ("done2", "pipeline_completed"),
    ] {
        let log = log.clone();
        handler.on(event_type, move |e| {
            log.lock().unwrap().push(format!(
                "{name}:{}:{}",
                e.event_type, e.payload["data"]["run"]
            ));
        });
    }
    let all = log.clone();
    handler.on_any(move |e| all.lock().unwrap().push(format!("any:{}", e.event_type)));
    (handler, log)
}

#[test]
fn dispatches_verified_events_by_type_in_registration_order() {
    let (handler, log) = recording();
    let body = serde_json::to_vec(&json!({"event_type": "pipeline_completed", "data": {"run": 7}}))
        .unwrap();
    let header = sign_webhook(b"whsec-1", NOW - 5, &body);
    let dispatch = handler.handle(Some(&header), &body, NOW).unwrap();
    assert_eq!(
        (dispatch.event_type.as_str(), dispatch.handlers),
        ("pipeline_completed", 3)
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "done:pipeline_completed:7",
            "done2:pipeline_completed:7",
            "any:pipeline_completed"
        ]
    );

    // `type` is read when there is no `event_type`; a type nobody listens for reaches only the catch-all.
    log.lock().unwrap().clear();
    let body = br#"{"type":"stage_transition","data":{"run":8}}"#;
    let header = sign_webhook(b"whsec-1", NOW, body);
    let dispatch = handler.handle(Some(&header), body, NOW).unwrap();
    assert_eq!(
        (dispatch.event_type.as_str(), dispatch.handlers),
        ("stage_transition", 1)
    );
    assert_eq!(*log.lock().unwrap(), ["any:stage_transition"]);
}

#[test]
fn nothing_unverified_reaches_a_handler_or_the_parser() {
    let (handler, log) = recording();
    let body = br#"{"event_type":"pipeline_completed","data":{"run":1}}"#;
    let good = sign_webhook(b"whsec-1", NOW, body);

    assert_eq!(
        handler.handle(None, body, NOW),
        Err(WebhookHandlerError::MissingSignature)
    );
    // Signed with another secret.
    let forged = sign_webhook(b"not-the-secret", NOW, body);
    assert_eq!(
        handler.handle(Some(&forged), body, NOW),
        Err(WebhookHandlerError::Signature(WebhookError::BadSignature))
    );
    // The body changed after signing.
    let altered = br#"{"event_type":"pipeline_completed","data":{"run":2}}"#;
    assert_eq!(
        handler.handle(Some(&good), altered, NOW),
        Err(WebhookHandlerError::Signature(WebhookError::BadSignature))
    );
    // Replayed outside the 5-minute tolerance.
    assert_eq!(
        handler.handle(Some(&good), body, NOW + 301),
        Err(WebhookHandlerError::Signature(WebhookError::TooOld {
            age_secs: 301
        }))
    );
    // Garbage that is not JSON is refused by the signature check, before any parsing.
    let garbage = b"\xff\xfe not json";
    assert!(matches!(
        handler.handle(Some(&good), garbage, NOW),
        Err(WebhookHandlerError::Signature(WebhookError::BadSignature))
    ));
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn authentic_bodies_without_a_usable_event_are_refused() {
    let (handler, log) = recording();
    for (body, expected) in [
        (&b"not json"[..], "invalid"),
        (&b"[1,2]"[..], "invalid"),
        (&br#"{"data":{}}"#[..], "missing"),
        (&br#"{"event_type":42}"#[..], "missing"),
    ] {
        let header = sign_webhook(b"whsec-1", NOW, body);
        let err = handler.handle(Some(&header), body, NOW).unwrap_err();
        match expected {
            "invalid" => assert!(
                matches!(err, WebhookHandlerError::InvalidBody(_)),
                "{err:?}"
            ),
            _ => assert_eq!(err, WebhookHandlerError::MissingEventType),
        }
    }
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn headers_are_searched_case_insensitively_and_rotated_secrets_verify() {
    let (mut handler, log) = recording();
    let body = br#"{"event_type":"pipeline_failed","data":{"run":3}}"#;
    // The sender signs with the old and the new secret while rotating; this receiver holds only the new one.
    let header = sign_webhook_rotating(&[b"whsec-0", b"whsec-1"], NOW, body);
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (SIGNATURE_HEADER.to_ascii_lowercase(), header),
    ];
    let dispatch = handler.handle_request(&headers, body, NOW).unwrap();
    assert_eq!(dispatch.handlers, 2);
    assert_eq!(
        *log.lock().unwrap(),
        ["failed:pipeline_failed:3", "any:pipeline_failed"]
    );
    assert_eq!(
        handler.handle_request(&headers[..1], body, NOW),
        Err(WebhookHandlerError::MissingSignature)
    );
    // Listeners can be added later; they run after the earlier ones.
    let late = log.clone();
    handler.on("pipeline_failed", move |_| {
        late.lock().unwrap().push("late".into())
    });
    log.lock().unwrap().clear();
    handler.handle_request(&headers, body, NOW).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["failed:pipeline_failed:3", "late", "any:pipeline_failed"]
    );
}
