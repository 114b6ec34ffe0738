//! The Python class `switchboard._native.Machine`: a thin shell over [`Core`]. Every method returns at once; none
//! does IO. Refusals become `ValueError` (a bad argument) or `MachineClosed`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::core::{Core, Knobs};
use crate::refusal::Refusal;
use crate::step::StepTuple;

pyo3::create_exception!(
    _native,
    MachineClosed,
    pyo3::exceptions::PyException,
    "A command reached a machine that was closed or gave up."
);

fn raise(refusal: Refusal) -> PyErr {
    match refusal {
        Refusal::Argument(why) => PyValueError::new_err(why),
        Refusal::Closed => MachineClosed::new_err("the client is closed"),
    }
}

/// The sans-IO client machine. Feed it what happened (`handle_*`), issue commands, and carry out what
/// `poll_output` says until it says `timeout`. `now` is microseconds on one monotonic clock.
#[pyclass(module = "switchboard._native")]
#[derive(Debug)]
pub struct Machine {
    core: Core,
}

#[pymethods]
impl Machine {
    #[new]
    #[pyo3(signature = (now, seed, *, request_timeout_ms=None, connect_timeout_ms=None, heartbeat_timeout_ms=None,
        ping_interval_ms=None, reconnect_first_ms=None, reconnect_max_ms=None, max_queued_messages=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        now: u64,
        seed: u64,
        request_timeout_ms: Option<u64>,
        connect_timeout_ms: Option<u64>,
        heartbeat_timeout_ms: Option<u64>,
        ping_interval_ms: Option<u64>,
        reconnect_first_ms: Option<u64>,
        reconnect_max_ms: Option<u64>,
        max_queued_messages: Option<usize>,
    ) -> Machine {
        let knobs = Knobs {
            seed,
            request_timeout_ms,
            connect_timeout_ms,
            heartbeat_timeout_ms,
            ping_interval_ms,
            reconnect_first_ms,
            reconnect_max_ms,
            max_queued_messages,
        };
        Machine {
            core: Core::new(&knobs, now),
        }
    }

    /// The next output as `(kind, text, number)`.
    fn poll_output(&mut self) -> StepTuple {
        self.core.poll()
    }

    fn handle_connected(&mut self, now: u64) {
        self.core.connected(now);
    }

    fn handle_connect_failed(&mut self, now: u64, reason: &str, rejected: bool) {
        self.core.connect_failed(now, reason, rejected);
    }

    fn handle_text(&mut self, now: u64, text: &str) {
        self.core.text(now, text);
    }

    fn handle_disconnected(&mut self, now: u64, code: u16, reason: &str) {
        self.core.disconnected(now, code, reason);
    }

    fn handle_timeout(&mut self, now: u64) {
        self.core.timeout(now);
    }

    #[pyo3(signature = (now, channel, presence=false))]
    fn subscribe(&mut self, now: u64, channel: &str, presence: bool) -> PyResult<String> {
        self.core.subscribe(now, channel, presence).map_err(raise)
    }

    fn unsubscribe(&mut self, now: u64, channel: &str) -> PyResult<String> {
        self.core.unsubscribe(now, channel).map_err(raise)
    }

    #[pyo3(signature = (now, channel, event, retain, idempotency_key=None))]
    fn publish(
        &mut self,
        now: u64,
        channel: &str,
        event: &str,
        retain: bool,
        idempotency_key: Option<&str>,
    ) -> PyResult<String> {
        self.core
            .publish(now, channel, event, retain, idempotency_key)
            .map_err(raise)
    }

    fn get_state(&mut self, now: u64, channel: &str) -> PyResult<String> {
        self.core.get_state(now, channel).map_err(raise)
    }

    fn presence(&mut self, now: u64, channel: &str) -> PyResult<String> {
        self.core.presence(now, channel).map_err(raise)
    }

    fn serve(&mut self, now: u64, channel: &str) -> PyResult<String> {
        self.core.serve(now, channel).map_err(raise)
    }

    #[pyo3(signature = (now, channel, method, params=None, timeout_ms=None))]
    fn call(
        &mut self,
        now: u64,
        channel: &str,
        method: &str,
        params: Option<&str>,
        timeout_ms: Option<u64>,
    ) -> PyResult<String> {
        self.core
            .call(now, channel, method, params, timeout_ms)
            .map_err(raise)
    }

    #[pyo3(signature = (now, request_type, data, timeout_ms=None))]
    fn request(
        &mut self,
        now: u64,
        request_type: &str,
        data: &str,
        timeout_ms: Option<u64>,
    ) -> PyResult<String> {
        self.core
            .request(now, request_type, data, timeout_ms)
            .map_err(raise)
    }

    fn refresh(&mut self, now: u64, token: &str) -> PyResult<String> {
        self.core.refresh(now, token).map_err(raise)
    }

    fn respond_ok(&mut self, now: u64, id: &str, result: &str) -> PyResult<()> {
        self.core.respond(now, id, Ok(result)).map_err(raise)
    }

    fn respond_error(&mut self, now: u64, id: &str, code: &str, message: &str) -> PyResult<()> {
        self.core
            .respond(now, id, Err((code, message)))
            .map_err(raise)
    }

    fn close(&mut self, now: u64) {
        self.core.close(now);
    }

    fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    fn is_connected(&self) -> bool {
        self.core.is_connected()
    }

    fn app_id(&self) -> Option<String> {
        self.core.app_id()
    }
}
