//! The client's hot path: one ~200-byte `event` frame on a subscribed channel, end to end — `handle_text` (decode,
//! subscription filter and de-duplication, heartbeat re-arm) and draining `poll_output` (the `ChannelEvent`, then
//! the `Timeout`).
//!
//! Run with `cargo bench -p switchboard-protocol --bench client_event`.

use divan::Bencher;
use serde_json::json;
use switchboard_protocol::client::{ClientConfig, ClientMachine, Output};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{
    ChannelName, ConnectedStatus, MessageId, ServerFrame, ServerMessage, encode_event,
};

const CHANNEL: &str = "projects/p1";
const EPOCH: &str = "4f1c2a7e";

fn main() {
    divan::main();
}

fn drain(client: &mut ClientMachine) -> Option<Output> {
    let mut event = None;
    loop {
        match client.poll_output() {
            Output::Timeout(_) => return event,
            output => event = Some(output),
        }
    }
}

/// A client connected, greeted and subscribed to [`CHANNEL`] at offset 0.
fn subscribed_client(now: Timestamp) -> ClientMachine {
    let mut client = ClientMachine::new(ClientConfig::default(), now);
    drain(&mut client);
    client.handle_connected(now);
    let greeting = ServerFrame {
        message_id: Some(MessageId::new("greeting").unwrap()),
        message: ServerMessage::Connected {
            app_id: "bench".into(),
            status: ConnectedStatus::Connected,
            protocol: 1,
            heartbeat_ms: 25_000,
            max_message_bytes: 1 << 20,
        },
    };
    client.handle_text(now, &greeting.encode());
    let id = client.subscribe(now, CHANNEL).unwrap();
    drain(&mut client);
    let answer = ServerFrame {
        message_id: Some(id),
        message: ServerMessage::SubscribeRes {
            channel: ChannelName::new(CHANNEL).unwrap(),
            epoch: EPOCH.into(),
            offset: 0,
            recovered: None,
        },
    };
    client.handle_text(now, &answer.encode());
    drain(&mut client);
    client
}

/// The `event` frame for `offset`: a progress update, padded to 200 bytes at offset 1 (a few more as the
/// offset grows digits).
fn event_frame(offset: u64) -> String {
    let id = MessageId::new("0b7e4b9e-7d51-4f0e-9f39-5d1f2a9c1e42").unwrap();
    let channel = ChannelName::new(CHANNEL).unwrap();
    let event = |note: &str| json!({ "stage": "build", "pct": 42, "note": note });
    let bare = encode_event(&id, &channel, EPOCH, 1, &event("")).len();
    let note = "x".repeat(200usize.saturating_sub(bare));
    encode_event(&id, &channel, EPOCH, offset, &event(&note))
}

#[divan::bench(sample_count = 500, sample_size = 64)]
fn handle_event_frame(bencher: Bencher<'_, '_>) {
    assert_eq!(event_frame(1).len(), 200);
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut client = subscribed_client(now);
    // Each iteration gets the next offset, so every frame is new and delivered, never dropped as a duplicate.
    let mut offset = 0;
    bencher
        .with_inputs(|| {
            offset += 1;
            event_frame(offset)
        })
        .bench_local_refs(|frame| {
            client.handle_text(now, frame);
            let delivered = drain(&mut client);
            debug_assert!(matches!(delivered, Some(Output::Event(_))));
            delivered
        });
}
