#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_protocol::fuzzing::hub_ops(data));
