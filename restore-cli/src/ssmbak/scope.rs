//! PATH: one exact key, or a path (ending in `/`) of direct children, or all depths with `-R`.

/// What a command covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Key(String),
    Path { path: String, recursive: bool },
}

impl Scope {
    /// A PATH ending in `/` is a path; anything else is exactly one key. A name without its
    /// leading `/` gets one, as the backup keys have it.
    pub fn new(path: &str, recursive: bool) -> Self {
        let path = ssmbak_core::format::object_key(path);
        if path.ends_with('/') {
            Scope::Path { path, recursive }
        } else {
            Scope::Key(path)
        }
    }

    /// The S3 listing prefix that covers the scope.
    pub fn prefix(&self) -> &str {
        match self {
            Scope::Key(k) => k,
            Scope::Path { path, .. } => path,
        }
    }

    /// Whether the parameter (or backup key) `name` is in scope.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            // Exactly the key: never `/a/bc` for `/a/b` (the original's same-depth quirk).
            Scope::Key(k) => name == k,
            Scope::Path { path, recursive } => name
                .strip_prefix(path.as_str())
                .is_some_and(|rest| !rest.is_empty() && (*recursive || !rest.contains('/'))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn scopes() {
        let cases = [
            ("/a/b", false, "/a/b", true),
            ("/a/b", false, "/a/bc", false),
            ("/a/b", true, "/a/b/c", false),
            ("a/b", false, "/a/b", true),
            ("/a/", false, "/a/b", true),
            ("/a/", false, "/a/b/c", false),
            ("/a/", true, "/a/b/c", true),
            ("/a/", true, "/a", false),
            ("/a/", true, "/ab/c", false),
            ("/", false, "/top", true),
            ("/", false, "/top/x", false),
            ("/", true, "/top/x", true),
        ];
        for (path, recursive, name, expected) in cases {
            assert_eq!(
                Scope::new(path, recursive).contains(name),
                expected,
                "{path} -R={recursive} {name}"
            );
        }
    }
}
