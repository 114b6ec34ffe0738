//! The channel-payload dialect (PROTOCOL §6): subscribe and unsubscribe on the `subscription` control channel,
//! publish by sending `{channel, payload}`, receive `{channel, payload}`; errors on the `error` channel with the
//! native code in `error_details.code`. A publish gets no answer on success (the dialect has none). Subscriptions
//! never recover (the dialect has no positions). `subscribe` with `pattern` instead of `channel` follows every
//! matching channel (PROTOCOL §3.2), answered `subscribed` with the pattern.

use alloc::sync::Arc;

use super::Hub;
use super::conn_table::ConnId;
use super::permissions::Action;
use super::publish::Answer;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::channel_payload::{ChannelPayloadMessage, ChannelPayloadRequest};
use crate::wire::{DecodeError, ErrorCode};

impl Hub {
    /// A channel-payload frame from the intake.
    pub(super) fn channel_payload_request(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        decoded: Result<ChannelPayloadRequest, DecodeError>,
    ) {
        let answer = match decoded {
            Err(e) => {
                self.send_decode_error(now, conn, &e);
                return;
            }
            Ok(ChannelPayloadRequest::Subscribe { channel }) => self
                .subscribe(now, conn, &channel, None)
                .map(|_| Some(ChannelPayloadMessage::Subscribed { channel })),
            Ok(ChannelPayloadRequest::SubscribePattern { pattern }) => self
                .subscribe_pattern(now, conn, &pattern, None)
                .map(|_| Some(ChannelPayloadMessage::SubscribedPattern { pattern })),
            Ok(ChannelPayloadRequest::UnsubscribePattern { pattern }) => self
                .unsubscribe_pattern(conn, &pattern)
                .map(|()| Some(ChannelPayloadMessage::UnsubscribedPattern { pattern })),
            Ok(ChannelPayloadRequest::Unsubscribe { channel }) => self
                .unsubscribe(conn, &channel)
                .map(|()| Some(ChannelPayloadMessage::Unsubscribed { channel })),
            Ok(ChannelPayloadRequest::Publish { channel, payload }) => {
                if let Some(refusal) = self
                    .allows(conn, Action::Publish, &channel)
                    .then(|| self.channel_limit_refusal(&channel))
                    .flatten()
                {
                    Err(refusal)
                } else if self.allows(conn, Action::Publish, &channel) {
                    self.publish_event(now, &channel, payload, false, Answer::Edge { conn });
                    Ok(None)
                } else {
                    Err(Refusal::new(
                        ErrorCode::Forbidden,
                        alloc::format!("not allowed to publish to {channel}"),
                    ))
                }
            }
        };
        match answer {
            Ok(Some(msg)) => {
                self.send_frame(conn, Arc::from(msg.encode()));
            }
            Ok(None) => {}
            Err(refusal) => self.send_refusal(now, conn, None, refusal),
        }
    }
}
