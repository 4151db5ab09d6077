//! Repository checks, run by `cargo test` (the rust-analyzer `tidy` pattern).

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::util::project_root;

    fn read(path: &str) -> String {
        fs::read_to_string(project_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_crate_uses_the_workspace_lints() {
        for krate in ["core", "lambda", "restore-cli", "xtask", "tests"] {
            let manifest = read(&format!("{krate}/Cargo.toml"));
            assert!(
                manifest.contains("[lints]\nworkspace = true"),
                "{krate}/Cargo.toml must have `[lints] workspace = true`"
            );
        }
    }

    #[test]
    fn ci_runs_the_readme_test_command() {
        let readme = read("README.md");
        let ci = read(".ci/run");
        for command in ["cargo xtask test", "cargo xtask demo"] {
            assert!(readme.contains(command), "README.md must show `{command}`");
        }
        assert!(
            ci.lines().any(|l| l.trim() == "cargo xtask test"),
            ".ci/run must run the README's test command"
        );
    }

    /// Every relative link of the README and the docs names a file that exists.
    #[test]
    fn every_documentation_link_resolves() {
        let root = project_root();
        let mut pages = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
        for entry in fs::read_dir(root.join("docs")).expect("docs/").flatten() {
            if entry.path().extension().is_some_and(|e| e == "md") {
                pages.push(entry.path());
            }
        }
        let mut checked = 0;
        for page in &pages {
            let text = fs::read_to_string(page).expect("page");
            for link in text
                .split("](")
                .skip(1)
                .filter_map(|rest| rest.split(')').next())
            {
                let target = link.split('#').next().unwrap_or_default();
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let resolved = page.parent().expect("a folder").join(target);
                assert!(
                    resolved.exists(),
                    "{}: the link {link} names nothing",
                    page.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 10, "{checked} links");
    }

    /// The glossary names each object and tag of the format as the code spells it.
    #[test]
    fn the_format_glossary_spells_names_as_the_code_does() {
        use ssmbak_core::format;
        let glossary = read("docs/format.md");
        for name in [
            format::CLOCK_PROBE_KEY,
            format::LIVE_BEHIND_MARKER_PREFIX,
            ssmbak_core::index::INDEX_PREFIX,
            format::TAG_TIME,
        ] {
            assert!(
                glossary.contains(&format!("`{name}")),
                "docs/format.md does not name `{name}`"
            );
        }
    }

    /// A number the docs state about what the code does is the code's own: each phrase below
    /// is built from the constant it speaks of, so changing one without the other fails here
    /// (issue 30: one home per rule). Whitespace is normalised: prose wraps anywhere.
    #[test]
    fn the_docs_numbers_are_the_codes() {
        use ssmbak_core::{backup, client, format, paced};
        let lambda = read("lambda/src/main.rs");
        let batch_margin = secs_const(&lambda, "BATCH_MARGIN");
        let template: serde_yaml::Value =
            serde_yaml::from_str(&read("cfn/template.yml")).expect("cfn/template.yml");
        let schedule = template["Parameters"]["ReconcileSchedule"]["Default"]
            .as_str()
            .expect("a default schedule");
        let every = schedule
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(')'))
            .expect("a rate(...) schedule");
        let attempt_timeout = client::ClientOptions::default().attempt_timeout.as_secs();
        let pause = ssmbak_cli::ssmbak::apply::RECREATE_PAUSE.as_secs();
        let checks = [
            (
                "docs/guarantees.md",
                format!("more than {} s after it", backup::EVENT_SKEW_SECS),
            ),
            (
                "docs/guarantees.md",
                format!("(we allow {} s)", backup::DELETER_WINDOW_SECS),
            ),
            (
                "docs/guarantees.md",
                format!("{batch_margin} s before the deadline"),
            ),
            ("docs/deploy.md", format!("{batch_margin} s before the")),
            ("docs/deploy.md", format!("every {every} by default")),
            (
                "docs/guarantees.md",
                format!("SSM's default {}/s", paced::SSM_DEFAULT_TPS),
            ),
            (
                "docs/guarantees.md",
                format!("the {attempt_timeout} s attempt timeout"),
            ),
            ("docs/guarantees.md", format!("delete, {pause} s pause")),
            (
                "docs/guarantees.md",
                format!(
                    "at most {} characters, {} tags an object",
                    format::TAG_VALUE_MAX,
                    format::TAGS_PER_OBJECT_MAX
                ),
            ),
            (
                "docs/format.md",
                format!(
                    "the {} tags S3 allows an object",
                    format::TAGS_PER_OBJECT_MAX
                ),
            ),
        ];
        for (file, phrase) in checks {
            let text = read(file).split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                text.contains(&phrase),
                "{file} no longer says {phrase:?}: say what the code does, or change the constant"
            );
        }
    }

    /// The whole seconds of `const NAME: Duration = Duration::from_secs(N);` in `source`.
    fn secs_const(source: &str, name: &str) -> u64 {
        let line = source
            .lines()
            .find(|l| l.contains(&format!("const {name}: Duration")))
            .unwrap_or_else(|| panic!("no Duration constant {name}"));
        let n = line
            .split("from_secs(")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("{name} is not in whole seconds: {line}"));
        n.parse().unwrap_or_else(|_| panic!("{name}: {n}"))
    }

    #[test]
    fn only_core_encodes_the_bucket_format() {
        // The tag names are the contract: any other crate must use `ssmbak_core::format`.
        for dir in ["lambda/src", "restore-cli/src", "xtask/src"] {
            for entry in walk(&project_root().join(dir)) {
                let text = fs::read_to_string(&entry).unwrap_or_default();
                if entry.ends_with("tidy.rs") {
                    continue;
                }
                assert!(
                    !text.contains("\"ssmbakTime\"") && !text.contains("\"ssmbak-time\""),
                    "{} spells out a bucket-format name; use ssmbak_core::format",
                    entry.display()
                );
            }
        }
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        out
    }
}
