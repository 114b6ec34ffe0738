//! The native envelope `{type, message_id, data, server_initiated?}` (PROTOCOL §2): reading its parts and writing it.

use alloc::string::String;
use serde::Serialize;
use serde_json::{Map, Value};

use super::decode_error::{DecodeError, FieldProblem, Fields, parse_object};
use super::names::MessageId;

/// The envelope's parts once the text is parsed: the `type`, the `message_id` (if readable) and the `data` object.
pub(crate) struct RawEnvelope {
    pub(crate) type_name: String,
    pub(crate) message_id: Option<MessageId>,
    pub(crate) data: Map<String, Value>,
}

/// Parses the envelope. The `message_id` is read before anything can fail on `type` or `data`, so those errors echo
/// it; a malformed `message_id` itself is reported only when `require_id` is set (it then has nothing to echo).
pub(crate) fn read_envelope(text: &str, require_id: bool) -> Result<RawEnvelope, DecodeError> {
    let map = parse_object(text)?;
    let no_id = None;
    let mut top = Fields::new(map, "", &no_id);
    let message_id = match top.take("message_id") {
        Some(Value::String(s)) => match MessageId::new(s) {
            Ok(id) => Some(id),
            Err(e) if require_id => return Err(top.error("message_id", FieldProblem::Invalid(e))),
            Err(_) => None,
        },
        Some(_) if require_id => {
            return Err(top.error(
                "message_id",
                FieldProblem::WrongType {
                    expected: "a string",
                },
            ));
        }
        None if require_id => return Err(top.error("message_id", FieldProblem::Missing)),
        _ => None,
    };
    let mut top = Fields::new(top.map, "", &message_id);
    let type_name = top.string("type")?;
    let data = top.opt_object("data")?.unwrap_or_default();
    Ok(RawEnvelope {
        type_name,
        message_id,
        data,
    })
}

/// The envelope as written. `message_id: None` is written as `null` (errors about frames without a readable id).
#[derive(Serialize)]
pub(crate) struct EnvelopeOut<'a, D: Serialize> {
    #[serde(rename = "type")]
    pub(crate) type_name: &'a str,
    pub(crate) message_id: Option<&'a MessageId>,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) server_initiated: bool,
    pub(crate) data: &'a D,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Serialises to compact JSON. Serialising these types cannot fail (string keys, no non-finite floats from us).
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}
