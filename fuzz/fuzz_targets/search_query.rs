#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookvault::fuzzing::search_query(data));
