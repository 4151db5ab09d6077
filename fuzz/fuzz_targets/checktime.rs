#![no_main]
//! Any CHECKTIME argument: a time or a typed error, never a panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ssmbak_cli::checktime::parse(text, 1_795_772_100);
    }
});
