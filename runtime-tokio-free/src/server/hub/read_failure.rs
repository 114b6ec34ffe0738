//! What a failed WebSocket read tells the peer. RFC 6455 §7.1.7 has an endpoint that must fail the connection send
//! a Close frame first when it still can, with the status of §7.4.1: 1002 for a framing violation, 1007 for text
//! that is not UTF-8, 1009 for a message over the limit. Failures that mean the peer is already gone (a reset, an IO
//! error) or that come after its own close get no frame: nobody would read it.

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::error::ProtocolError;
use switchboard_protocol::wire::CloseCode;

/// The close frame to send for a read that failed with `error`, or `None` when the connection just ends.
pub(crate) fn close_for_read_error(error: &WsError) -> Option<(CloseCode, &'static str)> {
    match error {
        WsError::Capacity(_) => Some((CloseCode::TooBig, "message too big")),
        WsError::Utf8(_) => Some((CloseCode::InvalidPayload, "invalid UTF-8")),
        WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::ReceivedAfterClosing
            | ProtocolError::SendAfterClosing,
        ) => None,
        WsError::Protocol(_) => Some((CloseCode::ProtocolError, "protocol error")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::error::CapacityError;
    use async_tungstenite::tungstenite::protocol::frame::coding::Data;

    fn code(error: WsError) -> Option<u16> {
        close_for_read_error(&error).map(|(code, _)| code.as_u16())
    }

    #[test]
    fn framing_violations_close_with_1002() {
        for violation in [
            ProtocolError::UnmaskedFrameFromClient,
            ProtocolError::NonZeroReservedBits,
            ProtocolError::UnknownDataFrameType(3),
            ProtocolError::UnknownControlFrameType(11),
            ProtocolError::ControlFrameTooBig,
            ProtocolError::FragmentedControlFrame,
            ProtocolError::UnexpectedContinueFrame,
            ProtocolError::ExpectedFragment(Data::Text),
            ProtocolError::InvalidCloseSequence,
            ProtocolError::InvalidOpcode(15),
        ] {
            assert_eq!(
                code(WsError::Protocol(violation.clone())),
                Some(1002),
                "{violation}"
            );
        }
    }

    #[test]
    fn bad_utf8_closes_with_1007_and_an_oversized_message_with_1009() {
        assert_eq!(
            code(WsError::Utf8("invalid utf-8 sequence".into())),
            Some(1007)
        );
        let too_long = CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        };
        assert_eq!(code(WsError::Capacity(too_long)), Some(1009));
    }

    #[test]
    fn a_peer_that_is_gone_or_already_closed_gets_no_frame() {
        for gone in [
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
            WsError::Protocol(ProtocolError::ReceivedAfterClosing),
            WsError::ConnectionClosed,
            WsError::AlreadyClosed,
            WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            assert_eq!(code(gone), None);
        }
    }
}
