#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gomirror_fuzz::note_open(data));
