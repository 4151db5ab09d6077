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

/// A console "folder" placeholder: an empty object whose key ends in `/`. It holds no file.
pub fn is_placeholder(key: &str, size: i64) -> bool {
    key.ends_with('/') && size == 0
}

/// Two keys that cannot both be written under one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub first: String,
    pub second: String,
    /// Why: same path but for letter case (case-insensitive file systems: macOS, Windows), the
    /// same path (`--flat`), or one key's file is the other's directory.
    pub why: &'static str,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} and {} ({})", self.first, self.second, self.why)
    }
}

/// Every pair of `(key, path)` whose paths cannot coexist, found before anything is written.
pub fn collisions(paths: &[(String, PathBuf)]) -> Vec<Collision> {
    let mut by_folded: std::collections::BTreeMap<String, &str> = Default::default();
    let mut out = Vec::new();
    for (key, path) in paths {
        let folded = path.to_string_lossy().to_lowercase();
        if let Some(other) = by_folded.insert(folded, key) {
            let why = if paths.iter().filter(|(_, p)| p == path).count() > 1 {
                "the same file"
            } else {
                "the same file on a case-insensitive file system"
            };
            out.push(Collision {
                first: other.to_owned(),
                second: key.clone(),
                why,
            });
        }
    }
    // A file where another key needs a directory: its path is an ancestor of another's.
    let folded: Vec<(String, &str)> = paths
        .iter()
        .map(|(k, p)| {
            (
                format!("{}/", p.to_string_lossy().to_lowercase()),
                k.as_str(),
            )
        })
        .collect();
    let mut sorted = folded.clone();
    sorted.sort();
    for pair in sorted.windows(2) {
        let ((a, key_a), (b, key_b)) = (&pair[0], &pair[1]);
        if b.starts_with(a.as_str()) && a != b {
            out.push(Collision {
                first: (*key_a).to_owned(),
                second: (*key_b).to_owned(),
                why: "a file where the other needs a directory",
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_paths_are_found_before_writing() {
        let paths = |keys: &[&str]| -> Vec<(String, PathBuf)> {
            keys.iter()
                .map(|k| {
                    (
                        (*k).to_owned(),
                        target(Path::new("/out"), "", k, false).expect("safe"),
                    )
                })
                .collect()
        };
        let whys = |keys: &[&str]| -> Vec<&'static str> {
            collisions(&paths(keys))
                .into_iter()
                .map(|c| c.why)
                .collect()
        };
        assert_eq!(whys(&["a/x", "a/y", "b"]), Vec::<&str>::new());
        assert_eq!(
            whys(&["A.txt", "a.txt"]),
            ["the same file on a case-insensitive file system"]
        );
        assert_eq!(
            whys(&["a", "a/b"]),
            ["a file where the other needs a directory"]
        );
        assert_eq!(
            whys(&["ab", "a/b"]),
            Vec::<&str>::new(),
            "a sibling, not a parent"
        );
        assert_eq!(whys(&["x//a", "x/a"]), ["the same file"]);
        assert!(is_placeholder("folder/", 0));
        assert!(!is_placeholder("folder/", 3) && !is_placeholder("file", 0));
    }

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
