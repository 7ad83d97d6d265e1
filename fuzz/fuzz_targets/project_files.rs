#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gomirror_fuzz::project_files(data));
