//! Fuzzing the readers of untrusted input (issue 9, part 6), on stable Rust: proptest drives
//! arbitrary bytes and format-aware mutations of valid seeds into every reader, for a bounded time
//! (see `harness`), and checks that none panics, that extraction stays in its staging folder, and
//! that memory stays bounded (this binary counts allocations; see `alloc`).
//!
//! `cargo test --test fuzz` runs every target for `LIFEBOAT_FUZZ_SECONDS` (5 by default; the CI
//! budget), `scripts/fuzz.sh --seconds N` for longer in a release build. `caps` holds the
//! deterministic cases: oversized and pathological inputs, one per fix.
//! `archive::tar_extract_through_links` splices the chain of links that once escaped the staging
//! folder into random member lists.

mod alloc;
mod archive;
mod caps;
mod clone;
mod csv;
mod doctor;
mod dremio;
mod fingerprint;
mod format2;
mod harness;
mod inputs;
mod loadspec;
mod manifest;
mod settings;
