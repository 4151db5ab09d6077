//! Where a downloaded key lands under the output directory: never outside it.

use std::path::{Component, Path, PathBuf};

/// Why a key cannot be downloaded under the directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeKey {
    #[error("key {0:?} climbs out of the output directory (..)")]
    Escapes(String),
    #[error("key {0:?} names no file")]
    Empty(String),
}

/// The path of `key` under `dir`: the key's part after `prefix`, or only its last component
/// with `flat`. A leading `/` is dropped; empty and `.` components are skipped; `..` is refused.
pub fn target(dir: &Path, prefix: &str, key: &str, flat: bool) -> Result<PathBuf, UnsafeKey> {
    let relative = key.strip_prefix(prefix).unwrap_or(key);
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(UnsafeKey::Escapes(key.to_owned())),
            p => parts.push(p),
        }
    }
    if flat {
        parts = parts.last().copied().into_iter().collect();
    }
    if parts.is_empty() {
        return Err(UnsafeKey::Empty(key.to_owned()));
    }
    let mut path = dir.to_path_buf();
    for p in parts {
        path.push(p);
    }
    // Belt and braces: whatever the platform makes of a component, the result stays inside.
    debug_assert!(path
        .components()
        .all(|c| !matches!(c, Component::ParentDir)));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_escape() {
        let dir = Path::new("/out");
        let cases: Vec<(&str, &str, bool, Result<&str, &str>)> = vec![
            ("data/", "data/a/b.txt", false, Ok("/out/a/b.txt")),
            ("data/", "data/a/b.txt", true, Ok("/out/b.txt")),
            ("", "/etc/passwd", false, Ok("/out/etc/passwd")),
            ("", "a//b/./c", false, Ok("/out/a/b/c")),
            ("", "../evil", false, Err("escapes")),
            ("", "a/../../evil", false, Err("escapes")),
            ("data/", "data/", false, Err("empty")),
        ];
        for (prefix, key, flat, expected) in cases {
            let got = target(dir, prefix, key, flat);
            match expected {
                Ok(p) => assert_eq!(got, Ok(PathBuf::from(p)), "{key}"),
                Err("escapes") => {
                    assert!(matches!(got, Err(UnsafeKey::Escapes(_))), "{key}: {got:?}")
                }
                Err(_) => assert!(matches!(got, Err(UnsafeKey::Empty(_))), "{key}: {got:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn no_key_lands_outside(key in "[a-z./]{0,30}", flat in proptest::bool::ANY) {
            if let Ok(p) = target(Path::new("/out"), "", &key, flat) {
                proptest::prop_assert!(p.starts_with("/out") && p != Path::new("/out"));
                proptest::prop_assert!(p.components().all(|c| !matches!(c, Component::ParentDir)));
            }
        }
    }
}
