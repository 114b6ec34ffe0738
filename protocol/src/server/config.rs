//! [`HubConfig`]: every limit and interval of the hub, with the defaults of PROTOCOL.md.

use core::time::Duration;

use crate::wire::PRESENCE_MEMBERS_MAX;

/// [`HubConfig::history_bytes`]'s default: 16 MiB.
pub(crate) const DEFAULT_HISTORY_BYTES: usize = 16 * 1024 * 1024;
/// [`HubConfig::history_total_bytes`]'s default: 256 MiB.
pub(crate) const DEFAULT_HISTORY_TOTAL_BYTES: usize = 256 * 1024 * 1024;

/// [`HubConfig::max_channels`]'s default.
pub const DEFAULT_MAX_CHANNELS: usize = 100_000;

/// [`HubConfig::dedupe_keys_per_channel`]'s default.
pub const DEFAULT_DEDUPE_KEYS_PER_CHANNEL: usize = 10_000;
/// [`HubConfig::dedupe_keys`]'s default.
pub const DEFAULT_DEDUPE_KEYS: usize = 100_000;

/// The hub's limits and intervals. [`Default`] gives the contract's defaults (PROTOCOL §1–§4); change fields with
/// struct update syntax: `HubConfig { history_size: 10, ..HubConfig::default() }`.
///
/// Every limit is on by default, except the trusted rate limit. A zero `heartbeat` turns heartbeats (pings and the
/// silence timeout) off; a zero `rate_per_sec` (or `trusted_rate_per_sec`) turns that rate limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// How often a native connection gets a `server_ping` (default 25 s). The first ping of each connection comes at
    /// a random point in `[heartbeat/2, heartbeat]` after open, to spread load after mass reconnects.
    pub heartbeat: Duration,
    /// How much longer than `heartbeat` a native connection may stay silent before it is closed with 4008
    /// (default 10 s).
    pub heartbeat_timeout: Duration,
    /// Silence after which a project-stream or channel-payload connection is closed with 4008 (default `None`:
    /// never). Those clients do not understand `server_ping`, so the hub never sends it to them; their liveness
    /// comes from WebSocket pings, which the driver answers and reports through
    /// [`Hub::handle_activity`](super::Hub::handle_activity).
    pub edge_idle_timeout: Option<Duration>,
    /// The largest text frame accepted (default 1 MiB); a bigger one closes the connection with 1009. Also the
    /// largest event [`Hub::publish`](super::Hub::publish) accepts.
    pub max_message_bytes: usize,
    /// Events kept per channel for recovery and the history route (default 1000).
    pub history_size: usize,
    /// No kept event is older than this (default 300 s).
    pub history_ttl: Duration,
    /// Bytes of history one channel keeps (default 16 MiB), each event counting its compact JSON's length; past it
    /// the channel's oldest events are dropped. An event larger than this is delivered but not kept.
    pub history_bytes: usize,
    /// Bytes of history all channels together keep (default 256 MiB); past it the oldest events of the whole hub
    /// are dropped first.
    pub history_total_bytes: usize,
    /// How long a server request or a routed call waits for its answer (default 30 s).
    pub request_timeout: Duration,
    /// Messages per second an untrusted connection may send, on average (default 100).
    pub rate_per_sec: u32,
    /// Messages an untrusted connection may send at once after a quiet spell (default 200).
    pub rate_burst: u32,
    /// Messages per second a [trusted](super::Trust) connection may send, on average (default 0: no limit). A
    /// backend streaming a reply token by token sends thousands a second; what bounds it is the hub's own pace,
    /// since a connection's frames are read one after another.
    pub trusted_rate_per_sec: u32,
    /// Messages a trusted connection may send at once, when `trusted_rate_per_sec` is set (default 1000).
    pub trusted_rate_burst: u32,
    /// Channels one connection may subscribe to (default 1024).
    pub max_subscriptions: usize,
    /// Patterns one connection may subscribe to (default 16; PROTOCOL §3.2); one more is refused with
    /// `TOO_MANY_SUBSCRIPTIONS`. Each costs every publish to a channel it matches one more recipient, and a
    /// resubscribe with `since` a replay of every matching channel.
    pub max_patterns: usize,
    /// Bytes handed to a connection's writer and not yet reported sent (default 4 MiB); over it, the connection is a
    /// slow consumer and is closed with 1013.
    pub max_queued_bytes: usize,
    /// Sessions one connection may hold open at once (default 100).
    pub max_sessions: usize,
    /// How long before a token-authenticated connection's expiry (the token's `exp` plus the leeway) it gets a
    /// `token_expiring` notification (default 60 s). When the token was granted with less than twice this left,
    /// the warning comes halfway through what was left instead. Zero: no warning (the close still comes).
    pub token_expiry_warning: Duration,
    /// How many channels may have events at once (default 100,000): past it, a publish to a channel with none is
    /// refused with `CHANNEL_LIMIT`. Idle channels (no subscriber, server, history or retained state) are forgotten
    /// and do not count.
    pub max_channels: usize,
    /// Members listed in one presence answer (default [`PRESENCE_MEMBERS_MAX`]); `count` is always the true
    /// number, and the serving connection is always listed.
    pub max_presence_members: usize,
    /// How long a publish's `idempotency_key` is remembered on its channel (default 300 s): a publish with the
    /// same key within it publishes nothing and is answered with the original offsets. Zero: keys are ignored.
    pub dedupe_window: Duration,
    /// Idempotency keys one channel remembers at once (default 10,000); past it the oldest is forgotten.
    pub dedupe_keys_per_channel: usize,
    /// Idempotency keys the hub remembers at once, all channels together (default 100,000; each costs its key's
    /// length, the channel name's and about 100 bytes); past it the oldest is forgotten.
    pub dedupe_keys: usize,
    /// Seeds every random choice: the epochs, app ids, message ids, session ids and the heartbeat spread.
    pub seed: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            heartbeat: Duration::from_secs(25),
            heartbeat_timeout: Duration::from_secs(10),
            edge_idle_timeout: None,
            max_message_bytes: 1024 * 1024,
            history_size: 1000,
            history_ttl: Duration::from_secs(300),
            history_bytes: DEFAULT_HISTORY_BYTES,
            history_total_bytes: DEFAULT_HISTORY_TOTAL_BYTES,
            request_timeout: Duration::from_secs(30),
            rate_per_sec: 100,
            rate_burst: 200,
            trusted_rate_per_sec: 0,
            trusted_rate_burst: 1000,
            max_subscriptions: 1024,
            max_patterns: 16,
            max_queued_bytes: 4 * 1024 * 1024,
            max_sessions: 100,
            token_expiry_warning: Duration::from_secs(60),
            max_channels: DEFAULT_MAX_CHANNELS,
            max_presence_members: PRESENCE_MEMBERS_MAX,
            dedupe_window: Duration::from_secs(300),
            dedupe_keys_per_channel: DEFAULT_DEDUPE_KEYS_PER_CHANNEL,
            dedupe_keys: DEFAULT_DEDUPE_KEYS,
            seed: 0,
        }
    }
}
