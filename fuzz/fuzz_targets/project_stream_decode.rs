#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_protocol::fuzzing::project_stream_decode(data));
