//! The HTTP/1.1 front, sans-IO parts: request heads ([`request`]), responses ([`response`]), errors ([`error`])
//! and the route table ([`routes`]). Reading and writing happen in the server's connection loop.

pub mod error;
pub mod request;
pub mod response;
pub mod routes;

pub use error::{ApiError, RequestError};
pub use request::{BodyFraming, RequestHead, parse_head, percent_decode};
pub use response::Response;
pub use routes::{Route, route};
