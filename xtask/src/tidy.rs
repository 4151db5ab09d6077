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

    /// The Lambda starts a late-writes lease only when its stack names its code
    /// (lambda/src/stack.rs): the template must give it its stack, the parameter that holds its
    /// code's key under the name the check reads, and the right to ask. Otherwise the lease
    /// would silently never start.
    #[test]
    fn the_function_can_tell_whether_its_stack_runs_its_code() {
        use serde_yaml::Value;
        let doc: Value = serde_yaml::from_str(&read("cfn/template.yml")).expect("template");
        let reference = |v: &Value| match v {
            Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().map(str::to_owned),
            _ => None,
        };
        let function = &doc["Resources"]["Function"]["Properties"];
        let vars = &function["Environment"]["Variables"];
        assert_eq!(
            reference(&vars["SSMBAK_STACK"]).as_deref(),
            Some("AWS::StackId")
        );
        let artifact = reference(&vars["SSMBAK_ARTIFACT"]).expect("SSMBAK_ARTIFACT: !Ref ...");
        assert_eq!(
            reference(&function["Code"]["S3Key"]).as_ref(),
            Some(&artifact),
            "SSMBAK_ARTIFACT must be the parameter the code comes from"
        );
        assert!(
            read("lambda/src/stack.rs")
                .contains(&format!("ARTIFACT_PARAMETER: &str = \"{artifact}\"")),
            "lambda/src/stack.rs must read the stack's {artifact}"
        );
        let template = read("cfn/template.yml");
        assert!(
            template.contains("Action: [cloudformation:DescribeStacks]\n                Resource: !Ref AWS::StackId"),
            "the function's role must allow DescribeStacks on its own stack"
        );
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
