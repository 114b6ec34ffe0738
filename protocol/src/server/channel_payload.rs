//! The channel-payload dialect (PROTOCOL §6): subscribe and unsubscribe on the `subscription` control channel,
//! publish by sending `{channel, payload}`, receive `{channel, payload}`; errors on the `error` channel with the
//! native code in `error_details.code`. A publish gets no answer on success (the dialect has none). Subscriptions
//! never recover (the dialect has no positions).

use alloc::sync::Arc;

use super::Hub;
use super::conn::ConnId;
use super::permissions::Action;
use super::reply::Refusal;
use crate::time::Timestamp;
use crate::wire::ErrorCode;
use crate::wire::channel_payload::{
    ChannelPayloadMessage, ChannelPayloadRequest, decode_channel_payload_request,
};

impl Hub {
    pub(super) fn channel_payload_text(&mut self, now: Timestamp, conn: ConnId, text: &str) {
        if let Err(wait) = self.take_token(now, conn) {
            self.rate_limited(now, conn, None, wait);
            return;
        }
        let answer = match decode_channel_payload_request(text) {
            Err(e) => {
                self.send_decode_error(now, conn, &e);
                return;
            }
            Ok(ChannelPayloadRequest::Subscribe { channel }) => self
                .subscribe(now, conn, &channel, None)
                .map(|_| Some(ChannelPayloadMessage::Subscribed { channel })),
            Ok(ChannelPayloadRequest::Unsubscribe { channel }) => self
                .unsubscribe(conn, &channel)
                .map(|()| Some(ChannelPayloadMessage::Unsubscribed { channel })),
            Ok(ChannelPayloadRequest::Publish { channel, payload }) => {
                let allowed = self
                    .conns
                    .get(conn)
                    .is_some_and(|c| c.permissions.allows(Action::Publish, &channel));
                if allowed {
                    self.publish_event(now, &channel, payload, false);
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
