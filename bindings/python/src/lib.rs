//! `switchboard._native`: the Switchboard client machine (`switchboard_protocol::client::ClientMachine`) for Python.
//!
//! The machine makes every decision (reconnect timing, resubscription with `since`, request correlation and
//! timeouts, heartbeat); the pure-Python asyncio driver in `python/switchboard/` only moves frames and sleeps until
//! the deadline the machine gives. Nothing here does IO, reads a clock or runs an async runtime.
//!
//! - [`core`]: the machine behind a string-and-integer surface, plain Rust.
//! - [`events`], [`step`]: outputs and events as the driver reads them.
//! - [`refusal`]: refused commands, as `ValueError` or `MachineClosed`.
//! - `machine`: the Python class.

pub mod core;
pub mod events;
mod machine;
pub mod refusal;
pub mod step;

#[cfg(test)]
mod tests;

use pyo3::prelude::*;

/// Every error code of the contract, in its table's order: the Python side checks it has an exception for each.
pub fn error_codes() -> Vec<&'static str> {
    switchboard_protocol::wire::ErrorCode::ALL
        .iter()
        .map(|code| code.as_str())
        .collect()
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<machine::Machine>()?;
    m.add("MachineClosed", m.py().get_type::<machine::MachineClosed>())?;
    m.add(
        "PROTOCOL_VERSION",
        switchboard_protocol::wire::PROTOCOL_VERSION,
    )?;
    m.add("ERROR_CODES", error_codes())?;
    Ok(())
}
