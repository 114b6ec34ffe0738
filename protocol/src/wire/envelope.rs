//! The native envelope `{type, message_id, data, server_initiated?}` (PROTOCOL §2): reading its parts and writing it.

use alloc::string::String;
use serde::{Deserialize, Serialize};
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
///
/// A well-formed envelope is read straight into its parts ([`read_well_formed`]); anything else is read again
/// through a map of the whole object, which names the problem ([`read_checked`]).
pub(crate) fn read_envelope(text: &str, require_id: bool) -> Result<RawEnvelope, DecodeError> {
    match read_well_formed(text, require_id) {
        Some(envelope) => Ok(envelope),
        None => read_checked(text, require_id),
    }
}

/// The parts of an envelope whose `type` and `message_id` are plain strings (no escapes), whose `data` is an object
/// or absent, and whose keys are not repeated, read without building a map of the top level (every message the
/// server reads goes through here, and that map was most of its decoding). `None` for anything else, including an
/// id that breaks its rule when one is required: [`read_checked`] then gives the same parts or names the problem,
/// and what this gives is always what it would give.
fn read_well_formed(text: &str, require_id: bool) -> Option<RawEnvelope> {
    #[derive(Deserialize)]
    struct Parts<'a> {
        #[serde(rename = "type")]
        type_name: Option<&'a str>,
        message_id: Option<&'a str>,
        data: Option<Map<String, Value>>,
    }
    // serde reads a struct from an array too (by position); an envelope is an object.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return None;
    }
    let parts: Parts<'_> = serde_json::from_str(text).ok()?;
    let message_id = match parts.message_id.map(MessageId::new) {
        Some(Ok(id)) => Some(id),
        _ if require_id => return None,
        _ => None,
    };
    Some(RawEnvelope {
        type_name: String::from(parts.type_name?),
        message_id,
        data: parts.data.unwrap_or_default(),
    })
}

/// [`read_envelope`] through a map of the whole object: every frame that is not well formed, to name its problem.
fn read_checked(text: &str, require_id: bool) -> Result<RawEnvelope, DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::names::MAX_MESSAGE_ID_BYTES;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    type Parts = (String, Option<MessageId>, Map<String, Value>);

    fn parts(read: Result<RawEnvelope, DecodeError>) -> Result<Parts, DecodeError> {
        read.map(|e| (e.type_name, e.message_id, e.data))
    }

    /// The envelope's three keys in `layout`, each with a value or left out (`None`).
    fn frame(layout: u8, parts: [&Option<String>; 3]) -> String {
        let keys = ["type", "message_id", "data"];
        let mut fields: Vec<String> = keys
            .iter()
            .zip(parts)
            .filter_map(|(key, value)| value.as_ref().map(|v| format!("\"{key}\":{v}")))
            .collect();
        match layout {
            // As a client writes it.
            0 => format!("{{{}}}", fields.join(",")),
            // Reversed, spaced, with a key of no meaning (skipped by both readings).
            1 => {
                fields.reverse();
                fields.push("\"extra\":[true,{\"type\":1}]".to_string());
                format!(" \n{{ {} }} ", fields.join(" , "))
            }
            // A repeated key: the map keeps the last, the straight reading refuses it.
            2 => {
                fields.push("\"type\":\"ping\"".to_string());
                format!("{{{}}}", fields.join(","))
            }
            // The same values as an array, which serde would read into a struct by position.
            _ => {
                let values: Vec<&str> = parts.iter().filter_map(|v| v.as_deref()).collect();
                format!("[{}]", values.join(","))
            }
        }
    }

    /// Every combination of a value (of every JSON kind, escaped strings, the id's length limits) or none for each
    /// of the envelope's keys, in four layouts: reading straight gives exactly what the checked reading gives,
    /// error for error. Most combinations are not well formed; of the 10,648 frames 288 are read straight, and the
    /// test fails if that falls below 2 %.
    #[test]
    fn reading_straight_gives_what_the_checked_reading_gives() {
        let mut values: Vec<Option<String>> = [
            r#""ping""#,
            r#""p\u0069ng""#,
            r#""""#,
            "7",
            "null",
            "{}",
            r#"{"channel":"a/b","event":{"n":[1,2.5,null],"s":"\"q\""}}"#,
            "[]",
        ]
        .iter()
        .map(|v| Some(v.to_string()))
        .collect();
        values.push(Some(format!("\"{}\"", "x".repeat(MAX_MESSAGE_ID_BYTES))));
        values.push(Some(format!(
            "\"{}\"",
            "x".repeat(MAX_MESSAGE_ID_BYTES + 1)
        )));
        values.push(None);
        let (mut straight, mut total) = (0, 0);
        for type_name in &values {
            for id in &values {
                for data in &values {
                    for layout in 0..4 {
                        let text = frame(layout, [type_name, id, data]);
                        for require_id in [false, true] {
                            total += 1;
                            if read_well_formed(&text, require_id).is_some() {
                                straight += 1;
                            }
                            assert_eq!(
                                parts(read_envelope(&text, require_id)),
                                parts(read_checked(&text, require_id)),
                                "{text} (id required: {require_id})"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            straight * 50 > total,
            "only {straight} of {total} frames were read straight"
        );
    }
}
