//! Create or update one stack from a template, follow it until it settles: what `deploy` (the
//! application stack, by the CI) and `data` (the data stack, by an administrator) share.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};

use crate::aws::{describe, Aws};
use crate::stack::{self, StackInfo};

/// One create-or-update.
pub(crate) struct Apply<'a> {
    pub(crate) stack: &'a str,
    pub(crate) template: &'a str,
    /// The values to pass: those given, over the stack's current ones on an update.
    pub(crate) given: BTreeMap<String, String>,
    /// The CloudFormation service role, if any.
    pub(crate) role_arn: Option<String>,
    /// Tags added to the stack's own.
    pub(crate) tags: &'a [(String, String)],
    pub(crate) timeout: Duration,
}

/// The template's parameter names.
pub(crate) fn template_parameters(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_parameters = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_parameters = line.trim_end() == "Parameters:";
            continue;
        }
        if in_parameters {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                if !name.starts_with(' ') {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

impl Apply<'_> {
    /// Creates or updates the stack (`existing`: as read before) and follows it; "nothing to
    /// do" is success.
    pub(crate) async fn run(self, aws: &Aws, existing: Option<StackInfo>) -> anyhow::Result<()> {
        let known = template_parameters(self.template);
        if let Some(unknown) = self.given.keys().find(|k| !known.contains(k)) {
            bail!("--param {unknown}: the template has no such parameter");
        }
        let (current, current_tags) = match &existing {
            Some(s) => (s.parameters.clone(), s.tags.clone()),
            None => Default::default(),
        };
        let update_role = role_to_pass(
            existing.as_ref().and_then(|s| s.role_arn.as_deref()),
            self.role_arn.as_deref(),
        );
        // Its events are told from others' by this token, not by the local clock.
        let operation = stack::Operation::start("deploy");
        // UpdateStack replaces the whole tag set when Tags is given, and the change reaches
        // every resource ("If you don't specify this parameter, CloudFormation doesn't modify
        // the stack's tags", UpdateStack API reference): the current tags are kept, the given
        // ones added.
        let tags: Vec<Tag> = merged_tags(current_tags, self.tags)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
        let stack = self.stack;
        match existing.and_then(|s| s.status) {
            None => {
                eprintln!("creating stack {stack}");
                aws.cfn
                    .create_stack()
                    .stack_name(stack)
                    .client_request_token(&operation.token)
                    .template_body(self.template)
                    .set_role_arn(self.role_arn.clone())
                    .set_parameters(Some(parameters(self.given.iter())))
                    .set_capabilities(Some(capabilities.to_vec()))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| {
                        let denied = e.code() == Some("AccessDenied");
                        let error = describe(&format!("creating stack {stack}"), &e);
                        if denied {
                            // The CI deployer may only update (policies/iam/deployer.json).
                            error.context(format!("an administrator creates stack {stack} once (`cargo xtask deploy {stack} --role-arn ...` with administrator credentials); the CI updates it"))
                        } else {
                            error
                        }
                    })?;
            }
            Some(status) if stack::advice(stack, &status).is_some() => {
                bail!("{}", stack::advice(stack, &status).unwrap_or_default())
            }
            Some(_) => {
                eprintln!("updating stack {stack}");
                // Parameters not given keep their current values, not the template defaults.
                // The values are passed back explicitly rather than with UsePreviousValue,
                // which moto cannot do for a parameter left at its default (the templates have
                // no NoEcho parameter, whose value would read back masked).
                let mut values = current;
                values.extend(self.given);
                let params = parameters(known.iter().filter_map(|k| Some((k, values.get(k)?))));
                let result = aws
                    .cfn
                    .update_stack()
                    .stack_name(stack)
                    .client_request_token(&operation.token)
                    .template_body(self.template)
                    .set_role_arn(update_role)
                    .set_parameters(Some(params))
                    .set_capabilities(Some(capabilities.to_vec()))
                    .set_tags(Some(tags))
                    .send()
                    .await;
                if let Err(e) = result {
                    let text = aws_sdk_s3::error::ProvideErrorMetadata::message(&e)
                        .unwrap_or_default()
                        .to_owned();
                    // A ValidationError like any other refusal: only the message tells
                    // "nothing to do" apart (the AWS CLI's `deploy
                    // --no-fail-on-empty-changeset` does the same).
                    if text.contains("No updates are to be performed") {
                        eprintln!("stack {stack} is up to date");
                        return Ok(());
                    }
                    return Err(describe(&format!("updating stack {stack}"), &e));
                }
            }
        }
        stack::follow(aws, stack, &operation, Instant::now() + self.timeout).await
    }
}

/// The service role an update names: none when the stack is already driven by the one wanted.
/// CloudFormation then keeps using it, "even if the users don't have permission to pass it"
/// (UpdateStack API reference, RoleARN): the CI deployer needs no iam:PassRole once an
/// administrator created the stack with its role.
fn role_to_pass(current: Option<&str>, wanted: Option<&str>) -> Option<String> {
    match (current, wanted) {
        (Some(current), Some(wanted)) if current == wanted => None,
        (_, wanted) => wanted.map(str::to_owned),
    }
}

/// The stack's tags after a deploy: what it has, then what was given, then ours.
pub(crate) fn merged_tags(
    mut current: BTreeMap<String, String>,
    given: &[(String, String)],
) -> BTreeMap<String, String> {
    current.extend(given.iter().cloned());
    current.insert("ssmbak:managed".to_owned(), "true".to_owned());
    current
}

/// CloudFormation parameters from `(key, value)` pairs.
fn parameters<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<Parameter> {
    pairs
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_names_the_service_role_only_to_change_it() {
        let role = "arn:aws:iam::1:role/s-cfn-execution";
        assert_eq!(role_to_pass(Some(role), Some(role)), None);
        assert_eq!(role_to_pass(None, Some(role)), Some(role.to_owned()));
        assert_eq!(
            role_to_pass(Some("arn:aws:iam::1:role/old"), Some(role)),
            Some(role.to_owned())
        );
        assert_eq!(role_to_pass(Some(role), None), None);
    }
}
