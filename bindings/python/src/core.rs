//! [`Core`]: the client machine behind the string-and-integer surface the Python class exposes. All of the
//! binding's logic is here, in plain Rust (tested without an interpreter); `machine.rs` only wraps it for Python.
//!
//! Time is a count of microseconds on the driver's monotonic clock. JSON crosses as text: Python's `json` module
//! serialises (so a value it cannot encode fails there, as `TypeError`, before anything reaches the machine).

use core::time::Duration;

use serde_json::{Map, Value};
use switchboard_protocol::client::{ClientConfig, ClientMachine, ConnectFailure, HandlerError};
use switchboard_protocol::time::Timestamp;
use switchboard_protocol::wire::{ChannelName, CloseCode, IdempotencyKey, MessageId};

use crate::refusal::{Refusal, parse_json};
use crate::step::{Step, StepTuple};

/// The knobs the Python `Client` passes through; `None` keeps the contract's default.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Seeds message ids and reconnect jitter.
    pub seed: u64,
    /// Default request timeout.
    pub request_timeout_ms: Option<u64>,
    /// Dial and greeting timeout.
    pub connect_timeout_ms: Option<u64>,
    /// Added to the server's heartbeat interval before a silent connection is replaced.
    pub heartbeat_timeout_ms: Option<u64>,
    /// Client `ping` interval.
    pub ping_interval_ms: Option<u64>,
    /// The first reconnect delay.
    pub reconnect_first_ms: Option<u64>,
    /// The longest reconnect delay.
    pub reconnect_max_ms: Option<u64>,
    /// The offline queue's length.
    pub max_queued_messages: Option<usize>,
}

impl Knobs {
    /// The machine's configuration.
    pub fn config(&self) -> ClientConfig {
        let ms = Duration::from_millis;
        let mut config = ClientConfig::with_seed(self.seed);
        if let Some(t) = self.request_timeout_ms {
            config.request_timeout = ms(t);
        }
        if let Some(t) = self.connect_timeout_ms {
            config.connect_timeout = ms(t);
        }
        if let Some(t) = self.heartbeat_timeout_ms {
            config.heartbeat_timeout = ms(t);
        }
        config.ping_interval = self.ping_interval_ms.map(ms);
        if let Some(t) = self.reconnect_first_ms {
            config.backoff.first_delay = ms(t);
        }
        if let Some(t) = self.reconnect_max_ms {
            config.backoff.max_delay = ms(t);
        }
        if let Some(n) = self.max_queued_messages {
            config.max_queued_messages = n;
        }
        config
    }
}

/// The machine, driven with strings and integers.
#[derive(Debug)]
pub struct Core {
    machine: ClientMachine,
}

fn at(now_us: u64) -> Timestamp {
    Timestamp::from_micros(now_us)
}

fn id_text(id: MessageId) -> String {
    id.into_string()
}

impl Core {
    /// A machine that asks for its first connection at once.
    pub fn new(knobs: &Knobs, now_us: u64) -> Core {
        Core {
            machine: ClientMachine::new(knobs.config(), at(now_us)),
        }
    }

    /// The next output; call until it is a timeout.
    pub fn poll(&mut self) -> StepTuple {
        Step::from_output(self.machine.poll_output()).into_tuple()
    }

    /// The dial asked for succeeded.
    pub fn connected(&mut self, now_us: u64) {
        self.machine.handle_connected(at(now_us));
    }

    /// The dial failed; `rejected` when retrying cannot help (the upgrade was answered 401, 403 or 404).
    pub fn connect_failed(&mut self, now_us: u64, reason: &str, rejected: bool) {
        let failure = if rejected {
            ConnectFailure::Rejected(reason.to_owned())
        } else {
            ConnectFailure::Transient(reason.to_owned())
        };
        self.machine.handle_connect_failed(at(now_us), failure);
    }

    /// A text frame arrived.
    pub fn text(&mut self, now_us: u64, text: &str) {
        self.machine.handle_text(at(now_us), text);
    }

    /// The connection closed without the machine asking.
    pub fn disconnected(&mut self, now_us: u64, code: u16, reason: &str) {
        self.machine
            .handle_disconnected(at(now_us), CloseCode::from_u16(code), reason);
    }

    /// The deadline of the last timeout came.
    pub fn timeout(&mut self, now_us: u64) {
        self.machine.handle_timeout(at(now_us));
    }

    /// `subscribe`.
    pub fn subscribe(
        &mut self,
        now_us: u64,
        channel: &str,
        presence: bool,
    ) -> Result<String, Refusal> {
        Ok(id_text(self.machine.subscribe_with(
            at(now_us),
            channel,
            presence,
        )?))
    }

    /// `unsubscribe`.
    pub fn unsubscribe(&mut self, now_us: u64, channel: &str) -> Result<String, Refusal> {
        Ok(id_text(self.machine.unsubscribe(at(now_us), channel)?))
    }

    /// `publish` of one event, given as JSON text, with an optional idempotency key (1 to 128 bytes).
    pub fn publish(
        &mut self,
        now_us: u64,
        channel: &str,
        event: &str,
        retain: bool,
        idempotency_key: Option<&str>,
    ) -> Result<String, Refusal> {
        let event = parse_json("the event", event)?;
        let key = idempotency_key
            .map(|k| {
                IdempotencyKey::new(k)
                    .map_err(|e| Refusal::Argument(format!("invalid idempotency key: {e}")))
            })
            .transpose()?;
        Ok(id_text(self.machine.publish_keyed(
            at(now_us),
            channel,
            event,
            retain,
            key,
        )?))
    }

    /// `get_state`.
    pub fn get_state(&mut self, now_us: u64, channel: &str) -> Result<String, Refusal> {
        Ok(id_text(self.machine.get_state(at(now_us), channel)?))
    }

    /// `presence`.
    pub fn presence(&mut self, now_us: u64, channel: &str) -> Result<String, Refusal> {
        Ok(id_text(self.machine.presence(at(now_us), channel)?))
    }

    /// `serve`.
    pub fn serve(&mut self, now_us: u64, channel: &str) -> Result<String, Refusal> {
        Ok(id_text(self.machine.serve(at(now_us), channel)?))
    }

    /// `call`, with `params` as JSON text (`None`: no params) and its own timeout (`None`: the default).
    ///
    /// Sent through the machine's generic request so the caller's timeout applies: the machine still owns the
    /// correlation and the timer, and the answer is the same `call_res` or `error`.
    pub fn call(
        &mut self,
        now_us: u64,
        channel: &str,
        method: &str,
        params: Option<&str>,
        timeout_ms: Option<u64>,
    ) -> Result<String, Refusal> {
        let channel = ChannelName::new(channel)
            .map_err(|e| Refusal::Argument(format!("invalid channel name {channel:?}: {e}")))?;
        let mut data = Map::new();
        data.insert("channel".into(), Value::from(channel.as_str()));
        data.insert("method".into(), Value::from(method));
        if let Some(params) = params {
            let params = parse_json("the params", params)?;
            if !params.is_null() {
                data.insert("params".into(), params);
            }
        }
        let timeout = timeout_ms.map(Duration::from_millis);
        Ok(id_text(self.machine.request(
            at(now_us),
            "call",
            data,
            timeout,
        )?))
    }

    /// Any other request type, `data` as a JSON object's text.
    pub fn request(
        &mut self,
        now_us: u64,
        request_type: &str,
        data: &str,
        timeout_ms: Option<u64>,
    ) -> Result<String, Refusal> {
        let Value::Object(data) = parse_json("the data", data)? else {
            return Err(Refusal::Argument("the data must be a JSON object".into()));
        };
        let timeout = timeout_ms.map(Duration::from_millis);
        Ok(id_text(self.machine.request(
            at(now_us),
            request_type,
            data,
            timeout,
        )?))
    }

    /// `refresh`: presents a fresh token on the open connection.
    pub fn refresh(&mut self, now_us: u64, token: &str) -> Result<String, Refusal> {
        Ok(id_text(self.machine.refresh(at(now_us), token)?))
    }

    /// Answers a server request: `Ok(result as JSON text)` or `Err((code, message))`.
    pub fn respond(
        &mut self,
        now_us: u64,
        id: &str,
        answer: Result<&str, (&str, &str)>,
    ) -> Result<(), Refusal> {
        let id = MessageId::new(id)
            .map_err(|e| Refusal::Argument(format!("invalid request id: {e}")))?;
        let answer = match answer {
            Ok(result) => Ok(parse_json("the result", result)?),
            Err((code, message)) => Err(HandlerError::new(code, message)),
        };
        Ok(self.machine.respond(at(now_us), &id, answer)?)
    }

    /// Closes for good (1000, no reconnect); pending requests fail as closed.
    pub fn close(&mut self, now_us: u64) {
        self.machine.close(at(now_us));
    }

    /// Whether the machine has stopped for good.
    pub fn is_closed(&self) -> bool {
        self.machine.is_closed()
    }

    /// Whether a greeted connection is open.
    pub fn is_connected(&self) -> bool {
        self.machine.is_connected()
    }

    /// The open connection's `app_id`.
    pub fn app_id(&self) -> Option<String> {
        self.machine.app_id().map(str::to_owned)
    }
}
