//! `cargo xtask validate`: the template against every cfn-guard rule in `policies/`, with
//! cfn-guard as a library, in-process.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context};
use cfn_guard::{run_checks, ValidateInput};

/// One rule that did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) rule: String,
    pub(crate) message: String,
}

/// The status of every rule of `rules` on `data` (PASS, FAIL or SKIP).
pub(crate) fn evaluate(
    data: &str,
    data_name: &str,
    rules: &str,
    rules_name: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let report = run_checks(
        ValidateInput {
            content: data,
            file_name: data_name,
        },
        ValidateInput {
            content: rules,
            file_name: rules_name,
        },
        true,
    )
    .map_err(|e| anyhow::format_err!("cfn-guard on {data_name} with {rules_name}: {e}"))?;
    let tree: serde_json::Value = serde_json::from_str(&report).context("cfn-guard's report")?;
    let mut out = Vec::new();
    collect_rules(&tree, &mut out);
    Ok(out)
}

/// Walks cfn-guard's evaluation record tree for the rule-level results.
fn collect_rules(node: &serde_json::Value, out: &mut Vec<(String, String, String)>) {
    if let Some(check) = node.get("container").and_then(|c| c.get("RuleCheck")) {
        let name = check
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_owned();
        let status = check
            .get("status")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned();
        let message = check
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .trim()
            .to_owned();
        out.push((name, status, message));
    }
    if let Some(children) = node.get("children").and_then(|c| c.as_array()) {
        for child in children {
            collect_rules(child, out);
        }
    }
}

/// The rules files, by name.
pub(crate) fn rule_files(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(root.join("policies")).context("policies/")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "guard") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, fs::read_to_string(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

/// The templates the rules hold: the application stack the CI deploys and the data stack an
/// administrator deploys.
pub(crate) const TEMPLATES: [&str; 2] = ["cfn/template.yml", "cfn/data.yml"];

/// Every violation of the rules by the templates.
pub(crate) fn violations(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let rules = rule_files(root)?;
    let mut out = Vec::new();
    for template_name in TEMPLATES {
        let template = fs::read_to_string(root.join(template_name)).context(template_name)?;
        for (name, rules) in &rules {
            for (rule, status, message) in evaluate(&template, template_name, rules, name)? {
                if status == "FAIL" {
                    out.push(Violation {
                        rule: format!("{template_name}: {rule}"),
                        message,
                    });
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let found = violations(root)?;
    for v in &found {
        eprintln!("FAIL {}: {}", v.rule, v.message);
    }
    if !found.is_empty() {
        bail!("the templates break {} policy rule(s)", found.len());
    }
    eprintln!("{} pass every rule in policies/", TEMPLATES.join(" and "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::util::project_root;

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        input: serde_yaml::Value,
        expectations: Expectations,
    }

    #[derive(serde::Deserialize)]
    struct Expectations {
        rules: BTreeMap<String, String>,
    }

    #[test]
    fn the_templates_pass_every_rule() {
        let found = violations(&project_root()).expect("validate runs");
        assert!(found.is_empty(), "the templates break: {found:?}");
    }

    /// Each rule file has `tests/<name>_tests.yml` in cfn-guard's test format, and every rule
    /// fails on at least one fixture that breaks it.
    #[test]
    fn every_rule_passes_and_fails_its_fixtures() {
        let root = project_root();
        let mut failing_fixture: BTreeSet<String> = BTreeSet::new();
        let mut all_rules: BTreeSet<String> = BTreeSet::new();
        for (name, rules) in rule_files(&root).expect("rules") {
            let stem = name.trim_end_matches(".guard");
            let tests_path = root.join(format!("policies/tests/{stem}_tests.yml"));
            let text = fs::read_to_string(&tests_path)
                .unwrap_or_else(|e| panic!("{}: {e}", tests_path.display()));
            let cases: Vec<Case> =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{stem}_tests.yml: {e}"));
            for case in cases {
                let data = serde_json::to_string(&case.input).expect("fixture as JSON");
                let results = evaluate(&data, &case.name, &rules, &name).expect("evaluates");
                for (rule, expected) in &case.expectations.rules {
                    let got = results
                        .iter()
                        .find(|(r, _, _)| r == rule)
                        .map(|(_, s, _)| s.as_str());
                    assert_eq!(
                        got,
                        Some(expected.as_str()),
                        "{name}: {}: {rule}",
                        case.name
                    );
                    if expected == "FAIL" {
                        failing_fixture.insert(rule.clone());
                    }
                }
                all_rules.extend(results.into_iter().map(|(r, _, _)| r));
            }
        }
        let untested: Vec<_> = all_rules.difference(&failing_fixture).collect();
        assert!(
            untested.is_empty(),
            "rules without a failing fixture: {untested:?}"
        );
    }
}
