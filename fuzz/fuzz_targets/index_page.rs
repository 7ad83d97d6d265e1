#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gomirror_fuzz::index_page(data));
