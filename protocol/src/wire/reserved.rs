//! Channel names no one may publish to or subscribe to, in any dialect or through the app API.
//!
//! The channel-payload dialect (PROTOCOL §6) carries its control messages as `{channel, payload}` frames on the
//! channels `subscription` and `error`. An event published on one of them would reach a `/ws` subscriber looking
//! exactly like a subscribe answer or a server error, so the names are kept out of the channel namespace entirely:
//! [`ChannelName`](super::ChannelName) refuses them, and with it every decoder, REST path and API that takes a
//! channel.

/// The control channel of the channel-payload dialect: subscribe and unsubscribe requests and their answers.
pub const SUBSCRIPTION_CHANNEL: &str = "subscription";
/// The channel the channel-payload dialect sends errors on.
pub const ERROR_CHANNEL: &str = "error";

/// Every reserved channel name.
pub const RESERVED_CHANNELS: [&str; 2] = [SUBSCRIPTION_CHANNEL, ERROR_CHANNEL];

/// Whether `name` is reserved (an exact match: `chat/error` is an ordinary name).
pub fn is_reserved_channel(name: &str) -> bool {
    RESERVED_CHANNELS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_control_names_are_reserved() {
        assert!(is_reserved_channel("subscription"));
        assert!(is_reserved_channel("error"));
        for ordinary in [
            "errors",
            "Error",
            "chat/error",
            "error/1",
            "subscriptions",
            "x",
        ] {
            assert!(!is_reserved_channel(ordinary), "{ordinary}");
        }
    }
}
