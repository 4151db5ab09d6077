//! Secret values for "a secret never appears" checks.
//!
//! A leak check asserts that an output does *not* contain the secret, so the secret must be
//! something no honest output can contain by chance: a short value such as `m1` turns up inside
//! the SDK's random base62 request ids at debug level, and the check then fails when nothing
//! leaked. A sentinel is 32 random characters from a fresh random source on every call, so a
//! match means the value itself was printed.

use std::hash::{BuildHasher, Hasher};

/// The alphabet of a sentinel: base62, like the request ids it must never collide with, so a
/// chance match is as unlikely as guessing 26 random base62 characters.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// How many random characters follow the `sentinel-` prefix.
const RANDOM_CHARS: usize = 26;

/// A new secret value, different on every call and every run: `sentinel-` and 26 random
/// base62 characters (about 154 bits).
pub fn secret() -> String {
    let mut out = String::from("sentinel-");
    while out.len() < "sentinel-".len() + RANDOM_CHARS {
        // Each RandomState is seeded from the OS on first use per thread and then stepped,
        // so every call hashes under different keys.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let mut bits = hasher.finish();
        // 10 characters of 6 bits each from one 64-bit hash (62 of 64 values kept by modulo:
        // a slight bias that does not matter for a sentinel).
        for _ in 0..10 {
            if out.len() == "sentinel-".len() + RANDOM_CHARS {
                break;
            }
            out.push(ALPHABET[(bits % 64 % 62) as usize] as char);
            bits >>= 6;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_are_long_and_never_repeat() {
        let a = secret();
        let b = secret();
        assert_eq!(a.len(), "sentinel-".len() + RANDOM_CHARS, "{a}");
        assert_ne!(a, b);
        assert!(a["sentinel-".len()..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric()));
    }
}
