//! The end-to-end test harness: the moto emulator on loopback, a local Lambda Runtime API,
//! and the real `bootstrap` from the release zip.
//!
//! `cargo xtask test` starts moto and sets `SSMBAK_TEST_ENDPOINT`; every client here is built
//! against that endpoint, and [`emulator::endpoint`] refuses anything that is not loopback.

pub mod bucket_owner;
pub mod cli;
pub mod emulator;
pub mod events;
pub mod fault_proxy;
pub mod lambda;
pub mod pipeline;
pub mod runtime_api;
pub mod sentinel;
