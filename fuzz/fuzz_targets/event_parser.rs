#![no_main]
//! Any SQS record body: a parse result or a typed error, never a panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ssmbak_lambda::event::parse(Some(text));
    }
});
