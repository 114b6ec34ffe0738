//! [`Intake`]: the reading half of a connection. It checks a received frame's size, takes a token from the
//! connection's rate limit and decodes the frame in the connection's dialect, producing an [`Inbound`]: a typed
//! message (or the typed reason it goes no further) for [`Hub::handle_inbound`](super::Hub::handle_inbound).
//!
//! It holds nothing the hub holds, so the driver runs it wherever the frame is read (on the connection's own task,
//! outside any lock on the hub); the hub is fed typed messages only, never JSON.
//!
//! Order of checks: size (over `max_message_bytes`: [`Inbound::TooBig`], the hub closes with 1009), then for the
//! native dialect decode before the rate limit (so `RATE_LIMITED` can echo the `message_id`), for the others the
//! rate limit first. Every frame takes a token, answers included.

use core::time::Duration;

use super::config::HubConfig;
use super::dialect::DialectKind;
use super::rate_limit::TokenBucket;
use super::trust::Trust;
use crate::time::Timestamp;
use crate::wire::channel_payload::{ChannelPayloadRequest, decode_channel_payload_request};
use crate::wire::project_stream::{ProjectStreamRequest, decode_project_stream_request};
use crate::wire::{ClientFrame, DecodeError, MessageId, decode_client};

/// One received frame, checked and decoded: the only thing the hub accepts from a peer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Inbound {
    /// Longer than `max_message_bytes`: the connection is closed with 1009.
    TooBig,
    /// Dropped by the rate limit: answered with `RATE_LIMITED` and `retry_after_ms`.
    RateLimited {
        /// The message's id, when it could be read (native only).
        message_id: Option<MessageId>,
        /// How long until the next token.
        wait: Duration,
    },
    /// A binary frame: answered with `UNSUPPORTED_FRAME`.
    Binary,
    /// A native frame.
    Native(Result<ClientFrame, DecodeError>),
    /// A project-stream frame.
    ProjectStream(Result<ProjectStreamRequest, DecodeError>),
    /// A channel-payload frame.
    ChannelPayload(Result<ChannelPayloadRequest, DecodeError>),
}

/// The reading half of one connection: its dialect, its rate limit and the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    kind: DialectKind,
    bucket: TokenBucket,
    max_message_bytes: usize,
}

impl Intake {
    /// The intake of a connection of `kind` opened at `now`, with the hub's limits: the rate limit of its `trust`
    /// (`rate_per_sec`/`rate_burst`, or `trusted_rate_per_sec`/`trusted_rate_burst`) and, whatever the trust,
    /// `max_message_bytes`. [`Hub::handle_open`](super::Hub::handle_open) makes one per connection.
    pub(crate) fn new(
        config: &HubConfig,
        kind: DialectKind,
        trust: Trust,
        now: Timestamp,
    ) -> Intake {
        let (rate, burst) = match trust {
            Trust::Untrusted => (config.rate_per_sec, config.rate_burst),
            Trust::Trusted => (config.trusted_rate_per_sec, config.trusted_rate_burst),
        };
        Intake {
            kind,
            bucket: TokenBucket::new(rate, burst, now),
            max_message_bytes: config.max_message_bytes,
        }
    }

    /// A text frame arrived.
    pub fn text(&mut self, now: Timestamp, text: &str) -> Inbound {
        if text.len() > self.max_message_bytes {
            return Inbound::TooBig;
        }
        match self.kind {
            DialectKind::Native => {
                let decoded = decode_client(text);
                match self.bucket.try_take(now) {
                    Ok(()) => Inbound::Native(decoded),
                    Err(wait) => Inbound::RateLimited {
                        message_id: match decoded {
                            Ok(frame) => Some(frame.message_id),
                            Err(e) => e.message_id,
                        },
                        wait,
                    },
                }
            }
            DialectKind::ProjectStream => match self.bucket.try_take(now) {
                Ok(()) => Inbound::ProjectStream(decode_project_stream_request(text)),
                Err(wait) => Inbound::RateLimited {
                    message_id: None,
                    wait,
                },
            },
            DialectKind::ChannelPayload => match self.bucket.try_take(now) {
                Ok(()) => Inbound::ChannelPayload(decode_channel_payload_request(text)),
                Err(wait) => Inbound::RateLimited {
                    message_id: None,
                    wait,
                },
            },
            // A stream takes no messages; a driver that read one anyway gets it refused like a binary frame.
            DialectKind::Sse | DialectKind::ProjectSse => self.binary(now, text.len()),
        }
    }

    /// A binary frame of `len` bytes arrived.
    pub fn binary(&mut self, now: Timestamp, len: usize) -> Inbound {
        if len > self.max_message_bytes {
            return Inbound::TooBig;
        }
        match self.bucket.try_take(now) {
            Ok(()) => Inbound::Binary,
            Err(wait) => Inbound::RateLimited {
                message_id: None,
                wait,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ClientMessage;

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    #[test]
    fn size_then_decode_then_rate() {
        let config = HubConfig {
            rate_per_sec: 1,
            rate_burst: 1,
            max_message_bytes: 64,
            ..HubConfig::default()
        };
        let mut i = Intake::new(&config, DialectKind::Native, Trust::Untrusted, ms(0));
        let ping = r#"{"type":"ping","message_id":"1"}"#;
        assert!(matches!(
            i.text(ms(0), ping),
            Inbound::Native(Ok(ClientFrame {
                message: ClientMessage::Ping { .. },
                ..
            }))
        ));
        match i.text(ms(0), ping) {
            Inbound::RateLimited { message_id, wait } => {
                assert_eq!(message_id.as_ref().map(|m| m.as_str()), Some("1"));
                assert_eq!(wait, Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            i.text(ms(0), &"x".repeat(65)),
            Inbound::TooBig,
            "size comes first"
        );
        assert!(matches!(i.text(ms(1000), "nope"), Inbound::Native(Err(_))));
        assert!(matches!(
            i.binary(ms(1000), 1),
            Inbound::RateLimited {
                message_id: None,
                ..
            }
        ));
        assert_eq!(i.binary(ms(2000), 1), Inbound::Binary);
        let mut edge = Intake::new(
            &config,
            DialectKind::ChannelPayload,
            Trust::Untrusted,
            ms(0),
        );
        assert!(matches!(
            edge.text(ms(0), "{}"),
            Inbound::ChannelPayload(Err(_))
        ));
        assert!(matches!(
            edge.text(ms(0), "{}"),
            Inbound::RateLimited { .. }
        ));
        let mut stream = Intake::new(&config, DialectKind::ProjectStream, Trust::Untrusted, ms(0));
        assert!(matches!(
            stream.text(ms(0), r#"{"type":"ping"}"#),
            Inbound::ProjectStream(Ok(ProjectStreamRequest::Ping))
        ));
    }

    /// The trust picks the bucket: a trusted intake takes the trusted rate (here none), an untrusted one the
    /// protective rate; the size limit is the same for both.
    #[test]
    fn trust_picks_the_rate_not_the_size() {
        let config = HubConfig {
            rate_per_sec: 1,
            rate_burst: 2,
            trusted_rate_per_sec: 0,
            max_message_bytes: 64,
            ..HubConfig::default()
        };
        let ping = r#"{"type":"ping","message_id":"1"}"#;
        let mut trusted = Intake::new(&config, DialectKind::Native, Trust::Trusted, ms(0));
        for _ in 0..10_000 {
            assert!(matches!(trusted.text(ms(0), ping), Inbound::Native(Ok(_))));
        }
        assert_eq!(trusted.text(ms(0), &"x".repeat(65)), Inbound::TooBig);
        let mut untrusted = Intake::new(&config, DialectKind::Native, Trust::Untrusted, ms(0));
        let limited = (0..10)
            .filter(|_| matches!(untrusted.text(ms(0), ping), Inbound::RateLimited { .. }))
            .count();
        assert_eq!(limited, 8);
        let capped = HubConfig {
            trusted_rate_per_sec: 1,
            trusted_rate_burst: 3,
            ..config
        };
        let mut trusted = Intake::new(&capped, DialectKind::ChannelPayload, Trust::Trusted, ms(0));
        let limited = (0..10)
            .filter(|_| matches!(trusted.text(ms(0), "{}"), Inbound::RateLimited { .. }))
            .count();
        assert_eq!(limited, 7);
    }
}
