//! What a [`DeliveryScheduler`](super::DeliveryScheduler) is configured with.

use alloc::string::String;
use alloc::vec::Vec;

use crate::http_client::RetryPolicy;
use crate::server::pattern_matches;

/// The scheduler's knobs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SchedulerConfig {
    /// Channel patterns, as in permissions: `*` is one segment, a trailing `**` the rest of the name. Empty: every
    /// channel.
    pub channels: Vec<String>,
    /// When and how often a failed request is sent again.
    pub retry: RetryPolicy,
    /// Channels delivered at the same time (at least 1).
    pub max_concurrent: usize,
    /// Seeds the retry jitter.
    pub seed: u64,
}

impl SchedulerConfig {
    /// Every channel, `retry`, `max_concurrent` channels at once, jitter seeded with `seed`.
    pub fn new(retry: RetryPolicy, max_concurrent: usize, seed: u64) -> Self {
        SchedulerConfig {
            channels: Vec::new(),
            retry,
            max_concurrent,
            seed,
        }
    }

    /// `self` delivering only channels matching one of `patterns` (empty: all).
    pub fn with_channels(mut self, patterns: Vec<String>) -> Self {
        self.channels = patterns;
        self
    }

    /// Whether events of `channel` are delivered.
    pub fn matches(&self, channel: &str) -> bool {
        self.channels.is_empty() || self.channels.iter().any(|p| pattern_matches(p, channel))
    }
}
