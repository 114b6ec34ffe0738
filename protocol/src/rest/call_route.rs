//! `POST /api/v1/channels/{channel}/call` (PROTOCOL §7): a routed call made over HTTP, for pages and scripts that
//! hold no WebSocket (the dashboard's `cancel` and `approve` buttons).
//!
//! The body is `{method, params?}`. The runtime makes the call as a native `call` of a short-lived connection that
//! carries the request's grants, so everything the hub decides for a call — the `call` grant, who serves the
//! channel, the caller's identity, the request timeout, how the server's answer or error comes back — is the same
//! as over a WebSocket. This file reads the body, builds the call and turns the hub's answer into the HTTP reply:
//! `200 {channel, method, result}`, or the error with a status by its code.

use alloc::string::String;
use serde_json::{Value, json};

use crate::wire::{ChannelName, ClientFrame, ClientMessage, ErrorCode, MessageId, ServerMessage};

use super::error_reply::ErrorReply;
use super::reply::Reply;

/// A call request's body.
#[derive(Debug, Clone, PartialEq)]
pub struct CallBody {
    /// The method.
    pub method: String,
    /// Its parameters.
    pub params: Option<Value>,
}

/// Reads `{method, params?}`: `method` a non-empty string.
pub fn call_body(body: &[u8]) -> Result<CallBody, ErrorReply> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ErrorReply::invalid_json(alloc::format!("the body is not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(ErrorReply::validation(
            "the body must be an object {method, params}",
        ));
    };
    let method = match map.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err(ErrorReply::validation("method must be a non-empty string")),
    };
    let params = map.remove("params").filter(|p| !p.is_null());
    Ok(CallBody { method, params })
}

/// The native `call` the runtime hands the hub for this request.
pub fn call_frame(message_id: MessageId, channel: &ChannelName, body: CallBody) -> ClientFrame {
    ClientFrame {
        message_id,
        message: ClientMessage::Call {
            channel: channel.clone(),
            method: body.method,
            params: body.params,
        },
    }
}

/// The HTTP status of a call's error code.
pub fn call_error_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::Forbidden => 403,
        ErrorCode::NoHandler => 503,
        ErrorCode::RequestTimeout => 504,
        ErrorCode::RateLimited => 429,
        ErrorCode::ValidationError | ErrorCode::InvalidChannel | ErrorCode::InvalidJson => 400,
        // The serving connection's own error (its code is in `details.code`) or anything else on its side.
        _ => 502,
    }
}

/// The reply for a frame the call's connection received, when it answers the call `message_id`: `call_res` →
/// 200, `error` → its status. `None` for any other frame (the greeting).
pub fn call_answer(frame: &ServerMessage, answers: bool) -> Option<Reply> {
    if !answers {
        return None;
    }
    match frame {
        ServerMessage::CallRes {
            channel,
            method,
            result,
        } => Some(Reply::json(
            200,
            &json!({"channel": channel.as_str(), "method": method, "result": result}),
        )),
        ServerMessage::Error {
            code,
            message,
            details,
        } => {
            let mut error = json!({"code": code.as_str(), "message": message});
            if let Some(details) = details {
                error["details"] = details.clone();
            }
            Some(Reply::json(
                call_error_status(*code),
                &json!({ "error": error }),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            call_body(br#"{"method":"approve","params":{"by":"me"}}"#).unwrap(),
            CallBody {
                method: "approve".into(),
                params: Some(json!({"by": "me"}))
            }
        );
        assert_eq!(
            call_body(br#"{"method":"x","params":null}"#)
                .unwrap()
                .params,
            None
        );
        assert_eq!(call_body(b"nope").unwrap_err().code, "INVALID_JSON");
        assert_eq!(
            call_body(br#"{"method":""}"#).unwrap_err().code,
            "VALIDATION_ERROR"
        );
        assert_eq!(call_body(br#"[1]"#).unwrap_err().code, "VALIDATION_ERROR");
    }

    #[test]
    fn answers() {
        let ch = ChannelName::new("projects/p").unwrap();
        let ok = ServerMessage::CallRes {
            channel: ch,
            method: "status".into(),
            result: json!({"stage": "training"}),
        };
        let reply = call_answer(&ok, true).unwrap();
        assert_eq!(reply.status, 200);
        assert!(call_answer(&ok, false).is_none());
        let err = ServerMessage::error(
            ErrorCode::NoHandler,
            "no connection serves projects/p",
            None,
        );
        assert_eq!(call_answer(&err, true).unwrap().status, 503);
        assert_eq!(call_error_status(ErrorCode::RequestTimeout), 504);
        assert_eq!(call_error_status(ErrorCode::InternalError), 502);
    }
}
