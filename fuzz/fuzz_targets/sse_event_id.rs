#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_protocol::fuzzing::sse_event_id(data));
