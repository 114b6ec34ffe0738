//! Error codes (PROTOCOL §2.4) and WebSocket close codes (PROTOCOL §1), with their exact wire strings and numbers.

use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// An `error` message's `code` (PROTOCOL §2.4). The wire form is the SCREAMING_SNAKE string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code of the contract, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The exact wire string, e.g. `"INVALID_JSON"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }

            /// Parses a wire string; `None` for codes this version does not know.
            pub fn from_wire(s: &str) -> Option<ErrorCode> {
                match s {
                    $($wire => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// The frame is not a JSON object.
    InvalidJson => "INVALID_JSON",
    /// A field is missing or of the wrong type; `details` names it.
    ValidationError => "VALIDATION_ERROR",
    /// Unknown `type`.
    InvalidMessageType => "INVALID_MESSAGE_TYPE",
    /// A binary frame.
    UnsupportedFrame => "UNSUPPORTED_FRAME",
    /// A second in-flight request with a `message_id` already in flight.
    DuplicateMessageId => "DUPLICATE_MESSAGE_ID",
    /// Unknown or expired session.
    SessionNotFound => "SESSION_NOT_FOUND",
    /// `max_sessions` reached.
    SessionLimit => "SESSION_LIMIT",
    /// Bad channel name.
    InvalidChannel => "INVALID_CHANNEL",
    /// The token does not allow this channel or action.
    Forbidden => "FORBIDDEN",
    /// `max_subscriptions` per connection reached.
    TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
    /// Unsubscribe from a channel not subscribed.
    NotSubscribed => "NOT_SUBSCRIBED",
    /// `call` on a channel nobody serves.
    NoHandler => "NO_HANDLER",
    /// A routed call or server request got no answer in time.
    RequestTimeout => "REQUEST_TIMEOUT",
    /// Over the per-connection rate; the message was dropped.
    RateLimited => "RATE_LIMITED",
    /// A bug; logged with the connection's `app_id`.
    InternalError => "INTERNAL_ERROR",
    /// The server could not store the event (a full disk, an IO error); it was not published. Retry later.
    StorageUnavailable => "STORAGE_UNAVAILABLE",
    /// A publish to a channel with no events while the server already holds `max_channels` channels with events;
    /// nothing was published. Publishing to channels that have events still works.
    ChannelLimit => "CHANNEL_LIMIT",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        ErrorCode::from_wire(&s).ok_or_else(|| serde::de::Error::custom("unknown error code"))
    }
}

/// A WebSocket close code (PROTOCOL §1). Codes outside the table are kept as [`CloseCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the server is going away; clients reconnect.
    GoingAway,
    /// 1002: the peer broke the WebSocket framing rules (RFC 6455 §7.4.1), e.g. an unmasked client frame.
    ProtocolError,
    /// 1006: the connection dropped without a close frame (never sent on the wire; drivers report it).
    Abnormal,
    /// 1007: a text frame (or close reason) that is not valid UTF-8.
    InvalidPayload,
    /// 1008: policy violation (e.g. authentication); clients give up.
    PolicyViolation,
    /// 1009: a message over `max_message_bytes`.
    TooBig,
    /// 1011: internal error.
    InternalError,
    /// 1013: try again later (overload, slow consumer); clients reconnect and recover.
    TryAgainLater,
    /// 4008: heartbeat timeout.
    HeartbeatTimeout,
    /// 4401: the connection's token expired (its `exp` plus the leeway) and no `refresh` replaced it. Clients
    /// reconnect with a fresh token.
    TokenExpired,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidPayload => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::TryAgainLater => 1013,
            CloseCode::HeartbeatTimeout => 4008,
            CloseCode::TokenExpired => 4401,
            CloseCode::Other(c) => c,
        }
    }

    /// The code for a number.
    pub const fn from_u16(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::ProtocolError,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::PolicyViolation,
            1009 => CloseCode::TooBig,
            1011 => CloseCode::InternalError,
            1013 => CloseCode::TryAgainLater,
            4008 => CloseCode::HeartbeatTimeout,
            4401 => CloseCode::TokenExpired,
            c => CloseCode::Other(c),
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode::from_u16(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.as_u16()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_wire_strings_are_the_contract() {
        let want = [
            "INVALID_JSON",
            "VALIDATION_ERROR",
            "INVALID_MESSAGE_TYPE",
            "UNSUPPORTED_FRAME",
            "DUPLICATE_MESSAGE_ID",
            "SESSION_NOT_FOUND",
            "SESSION_LIMIT",
            "INVALID_CHANNEL",
            "FORBIDDEN",
            "TOO_MANY_SUBSCRIPTIONS",
            "NOT_SUBSCRIBED",
            "NO_HANDLER",
            "REQUEST_TIMEOUT",
            "RATE_LIMITED",
            "INTERNAL_ERROR",
            // This project's addition (docs/PROTOCOL.md, durable history).
            "STORAGE_UNAVAILABLE",
            // This project's addition (docs/PROTOCOL.md, forgetting idle channels).
            "CHANNEL_LIMIT",
        ];
        let got: alloc::vec::Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(got, want);
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, alloc::format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        assert_eq!(ErrorCode::from_wire("NOPE"), None);
    }

    #[test]
    fn close_codes_round_trip() {
        for (code, n) in [
            (CloseCode::Normal, 1000),
            (CloseCode::GoingAway, 1001),
            (CloseCode::ProtocolError, 1002),
            (CloseCode::Abnormal, 1006),
            (CloseCode::InvalidPayload, 1007),
            (CloseCode::PolicyViolation, 1008),
            (CloseCode::TooBig, 1009),
            (CloseCode::InternalError, 1011),
            (CloseCode::TryAgainLater, 1013),
            (CloseCode::HeartbeatTimeout, 4008),
            (CloseCode::TokenExpired, 4401),
            (CloseCode::Other(4321), 4321),
        ] {
            assert_eq!(code.as_u16(), n);
            assert_eq!(CloseCode::from_u16(n), code);
        }
    }
}
