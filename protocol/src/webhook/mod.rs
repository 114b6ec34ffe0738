//! Webhook delivery scheduling, sans IO: which event of which channel goes to the receiver next, when a failed
//! request is sent again, and when one is given up.
//!
//! The [`DeliveryScheduler`] keeps no events. Per channel with work pending it keeps two numbers (the last offset
//! handled, delivered or given up, and the newest offset published), and it asks its driver to read the next event
//! from the hub's history by offset. So memory is bounded by the history however long the receiver is down, and an
//! event that left the history before it could be delivered is reported as skipped.
//!
//! Rules:
//! - **In order per channel, one at a time**: a channel's next event is fetched only once the previous one is
//!   delivered, given up or skipped.
//! - **Concurrency cap**: at most [`SchedulerConfig::max_concurrent`] channels have a delivery under way; the
//!   others wait in a ready list, in turn, so a slow channel does not hold the others up.
//! - **At least once**: every published offset of a matching channel ends as delivered, given up or skipped.
//!   A retried request may have reached the receiver before: receivers deduplicate by `(epoch, channel, offset)`.
//! - **Retries**: the [`RetryPolicy`](crate::http_client::RetryPolicy)'s [`RetryState`](crate::http_client::RetryState)
//!   decides (backoff with jitter from a seeded [`Rng`](crate::rng::Rng), `Retry-After` obeyed). A webhook
//!   delivery is treated as idempotent, since receivers deduplicate.
//!
//! # Driving it
//!
//! - **inputs**: [`handle_published`](DeliveryScheduler::handle_published) for every publish;
//!   [`handle_fetched`](DeliveryScheduler::handle_fetched) with the offset history gave for a
//!   [`DeliveryOutput::Fetch`]; [`handle_delivered`](DeliveryScheduler::handle_delivered) (2xx),
//!   [`handle_failed`](DeliveryScheduler::handle_failed) (any other outcome) or
//!   [`handle_unsendable`](DeliveryScheduler::handle_unsendable) (the request cannot be made) for a
//!   [`DeliveryOutput::Send`]; [`handle_timeout`](DeliveryScheduler::handle_timeout) at the deadline.
//! - **outputs**: [`poll_output`](DeliveryScheduler::poll_output) drained until [`DeliveryOutput::Timeout`].
//!
//! Retry deadlines are one per channel under way, at most `max_concurrent` of them; the deadline is their
//! minimum, found by a scan of that small set (the crate's [`TimerTable`](crate::timer::TimerTable) has one slot
//! per fixed kind, which does not fit a set of channels).

mod config;
mod output;
mod scheduler;
#[cfg(test)]
mod tests;

pub use config::SchedulerConfig;
pub use output::{AbandonReason, DeliveryCounters, DeliveryOutput};
pub use scheduler::DeliveryScheduler;
