//! Shared by the SDK tests: a fault-injecting HTTP/1.1 server ([`server`]) and the backends every scenario runs
//! on ([`backends`]).

pub mod backends;
pub mod server;

pub use backends::{Backend, SurfAsyncStd, UreqAsyncStd, UreqSmol, client, client_over};
pub use server::{FakeServer, Reply, Seen};
