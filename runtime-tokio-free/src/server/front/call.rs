//! `POST /api/v1/channels/{channel}/call`, executed: the request becomes a native `call` of a connection that
//! lives for that call only and carries the request's grants, so the hub decides everything it decides for a call
//! over a WebSocket ([`switchboard_protocol::rest::call_route`]). The connection is registered like any other
//! (it is briefly counted in `/api/connections`), reads nothing from a socket, and is closed once answered.

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use switchboard_protocol::rest::call_route::{call_answer, call_body, call_frame};
use switchboard_protocol::rest::{ErrorReply, Reply};
use switchboard_protocol::server::{Dialect, Inbound, Permissions, Trust};
use switchboard_protocol::wire::{ChannelName, CloseCode, MessageId, decode_server};

use super::Front;
use crate::Runtime;
use crate::deadline::with_deadline;
use crate::server::hub::driver::{ConnLink, RawLink};

/// Makes the call and waits (at most the hub's request timeout and a second) for its answer.
pub(crate) async fn call<R: Runtime>(
    front: &Front<R>,
    channel: &ChannelName,
    body: &[u8],
    permissions: Permissions,
    trust: Trust,
) -> Result<Reply, ErrorReply> {
    let request = call_body(body)?;
    let id = MessageId::new("http-call")
        .map_err(|e| ErrorReply::new(500, "INTERNAL_ERROR", e.to_string()))?;
    let frame = call_frame(id.clone(), channel, request);
    let (frames_tx, mut frames) = mpsc::unbounded();
    let (close_tx, _close_rx) = oneshot::channel();
    let hub = &front.hub;
    let conn = hub.with(|core, now| {
        let (conn, _intake) = core
            .hub
            .handle_open(now, Dialect::Native, permissions, trust);
        core.conns.insert(
            conn,
            ConnLink {
                outbound: Default::default(),
                raw: Some(RawLink {
                    frames: frames_tx,
                    close: Some(close_tx),
                }),
                listener: None,
            },
        );
        core.hub
            .handle_inbound(now, conn, Inbound::Native(Ok(frame)));
        conn
    });
    let wait = front.config.hub.request_timeout + std::time::Duration::from_secs(1);
    let deadline = front.runtime.now() + wait;
    let answer = async {
        while let Some(text) = frames.next().await {
            hub.with(|core, _| core.hub.handle_sent(conn, text.len()));
            let Ok(frame) = decode_server(&text) else {
                continue;
            };
            let answers = frame.message_id.as_ref() == Some(&id);
            if let Some(reply) = call_answer(&frame.message, answers) {
                return Some(reply);
            }
        }
        None
    };
    let reply = with_deadline(&front.runtime, deadline, answer)
        .await
        .flatten();
    hub.with(|core, now| {
        core.hub
            .close(now, conn, CloseCode::Normal, "call answered");
        core.conns.remove(&conn);
        core.hub.handle_transport_closed(now, conn);
    });
    reply
        .ok_or_else(|| ErrorReply::new(504, "REQUEST_TIMEOUT", "the call was not answered in time"))
}
