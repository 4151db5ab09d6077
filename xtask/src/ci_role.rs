//! `cargo xtask ci-role --repo OWNER/NAME [--environment production | --branch main] [--do-it]`:
//! everything a GitHub Actions pipeline needs to deploy the stack and nothing more. The
//! policies and the CloudFormation service role (as `cargo xtask iam`), the artifact bucket
//! (created and hardened here: the CI deployer may only check it), GitHub's OIDC provider, and
//! the CI role: assumable only by jobs of that repository in that GitHub environment (or, with
//! `--branch`, on that branch), with the deployer policy. Prints the role's ARN for the
//! workflow. A dry run unless `--do-it`.

use std::path::Path;

use anyhow::{bail, Context};

use crate::artifacts::{self, Artifacts};
use crate::aws::{describe, Aws};
use crate::iam::{self, Iam, Placeholders};

/// GitHub's OIDC issuer (GitHub docs, "Configuring OpenID Connect in Amazon Web Services").
const GITHUB_ISSUER: &str = "token.actions.githubusercontent.com";
/// The audience aws-actions/configure-aws-credentials asks for.
const AUDIENCE: &str = "sts.amazonaws.com";
/// IAM no longer checks thumbprints for GitHub's issuer (it trusts its root CAs), but the API
/// still asked for one before 2024; this is GitHub's published intermediate.
const GITHUB_THUMBPRINT: &str = "6938fd4d98bab03faadb97b34396831e3780aea1";

#[derive(clap::Args)]
pub(crate) struct CiRoleArgs {
    /// The GitHub repository whose workflows may deploy, OWNER/NAME.
    #[arg(long)]
    pub(crate) repo: String,
    /// The GitHub environment whose jobs may deploy (default: production). Its protection
    /// rules (required reviewers, deployment branches) then gate every deploy.
    #[arg(long, conflicts_with = "branch")]
    pub(crate) environment: Option<String>,
    /// Instead of an environment: the only branch whose jobs (without one) may deploy.
    #[arg(long)]
    pub(crate) branch: Option<String>,
    #[command(flatten)]
    pub(crate) iam: iam::IamArgs,
}

/// The CI role of `stack`.
pub(crate) fn role_name(stack: &str) -> String {
    format!("{stack}-ci-deploy")
}

/// Whose jobs may deploy. GitHub's OIDC token names a job's environment in `sub` when it has
/// one, its ref otherwise (GitHub docs, "About security hardening with OpenID Connect",
/// example subject claims): `repo:O/N:environment:E` or `repo:O/N:ref:refs/heads/B`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trusted {
    Environment(String),
    Branch(String),
}

/// The environment the workflow's deploy job runs in.
const DEFAULT_ENVIRONMENT: &str = "production";

impl Trusted {
    fn of(args: &CiRoleArgs) -> anyhow::Result<Self> {
        let trusted = match (&args.environment, &args.branch) {
            (_, Some(branch)) => Trusted::Branch(branch.clone()),
            (Some(env), None) => Trusted::Environment(env.clone()),
            (None, None) => Trusted::Environment(DEFAULT_ENVIRONMENT.to_owned()),
        };
        let (Trusted::Environment(name) | Trusted::Branch(name)) = &trusted;
        if name.is_empty() || name.contains([':', '*', '?']) {
            bail!("{name:?} cannot name a GitHub environment or branch in a trust policy");
        }
        Ok(trusted)
    }

    /// The token's `sub` for `repo`.
    fn subject(&self, repo: &str) -> String {
        match self {
            Trusted::Environment(env) => format!("repo:{repo}:environment:{env}"),
            Trusted::Branch(branch) => format!("repo:{repo}:ref:refs/heads/{branch}"),
        }
    }
}

impl std::fmt::Display for Trusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trusted::Environment(env) => write!(f, "environment {env}"),
            Trusted::Branch(branch) => write!(f, "branch {branch}"),
        }
    }
}

/// Who may assume the CI role: jobs of `repo` that `trusted` names, through GitHub's OIDC
/// provider, with the audience configure-aws-credentials uses. `sub` is matched exactly, so
/// pull requests, other environments and branches, tags and forks are refused.
fn ci_trust(provider_arn: &str, repo: &str, trusted: &Trusted) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{GITHUB_ISSUER}:aud"): AUDIENCE,
                format!("{GITHUB_ISSUER}:sub"): trusted.subject(repo)
            }}
        }]
    })
}

fn check_repo(repo: &str) -> anyhow::Result<()> {
    let ok = repo.split_once('/').is_some_and(|(owner, name)| {
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        valid(owner) && valid(name)
    });
    if !ok {
        bail!("--repo {repo:?} is not OWNER/NAME");
    }
    Ok(())
}

/// GitHub's OIDC provider in the account, created when missing; returns its ARN.
async fn ensure_provider(iam: &Iam<'_>) -> anyhow::Result<String> {
    let arn = format!("arn:aws:iam::{}:oidc-provider/{GITHUB_ISSUER}", iam.account);
    let providers = iam
        .aws
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| describe("listing OIDC providers", &e))?;
    let exists = providers
        .open_id_connect_provider_list()
        .iter()
        .any(|p| p.arn() == Some(arn.as_str()));
    if !exists {
        let verb = if iam.do_it { "" } else { "would " };
        eprintln!("iam: {verb}create the OIDC provider {GITHUB_ISSUER}");
        if iam.do_it {
            iam.aws
                .iam
                .create_open_id_connect_provider()
                .url(format!("https://{GITHUB_ISSUER}"))
                .client_id_list(AUDIENCE)
                .thumbprint_list(GITHUB_THUMBPRINT)
                .send()
                .await
                .map_err(|e| describe("creating the GitHub OIDC provider", &e))?;
        }
        return Ok(arn);
    }
    let provider = iam
        .aws
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .map_err(|e| describe("reading the GitHub OIDC provider", &e))?;
    if !provider.client_id_list().iter().any(|c| c == AUDIENCE) {
        let verb = if iam.do_it { "" } else { "would " };
        eprintln!("iam: {verb}add the audience {AUDIENCE} to the OIDC provider");
        if iam.do_it {
            iam.aws
                .iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .client_id(AUDIENCE)
                .send()
                .await
                .map_err(|e| describe("adding the audience", &e))?;
        }
    } else {
        eprintln!("iam: OIDC provider {GITHUB_ISSUER} is up to date");
    }
    Ok(arn)
}

/// Everything, for `stack` and the jobs of `repo` that `args` trusts; returns the CI role's ARN.
pub(crate) async fn apply(aws: &Aws, root: &Path, args: &CiRoleArgs) -> anyhow::Result<String> {
    check_repo(&args.repo)?;
    let trusted = Trusted::of(args)?;
    let stack = &args.iam.stack;
    let placeholders = Placeholders::of(aws, stack, args.iam.discovery_prefix.as_deref()).await?;
    let iam = Iam {
        aws,
        account: placeholders.account.clone(),
        do_it: args.iam.do_it,
    };
    let policies = iam::apply(&iam, root, &placeholders).await?;
    let bucket = artifacts::default_bucket(&placeholders.account, &aws.region());
    if iam.do_it {
        Artifacts {
            aws,
            bucket: &bucket,
            owner: &placeholders.account,
        }
        .ensure_bucket()
        .await?;
        eprintln!("artifact bucket {bucket} is ready");
    } else {
        eprintln!("iam: would create or harden the artifact bucket {bucket}");
    }
    let provider = ensure_provider(&iam).await?;
    let deployer = policies
        .get("deployer")
        .cloned()
        .context("policies/iam/deployer.json is missing")?;
    iam.ensure_role(
        &role_name(stack),
        &ci_trust(&provider, &args.repo, &trusted),
        &[deployer],
        &format!(
            "GitHub Actions of {} in {trusted} deploy ssmbak stack {stack}",
            args.repo
        ),
    )
    .await
}

pub(crate) fn run(root: &Path, args: &CiRoleArgs) -> anyhow::Result<()> {
    crate::aws::block_on(async {
        let aws = Aws::connect(args.iam.region.clone(), "iam-admin").await?;
        let role = apply(&aws, root, args).await?;
        if args.iam.do_it {
            eprintln!("the workflow's role-to-assume (secret SSMBAK_DEPLOY_ROLE_ARN):");
        } else {
            eprintln!("iam: dry run; pass --do-it to apply. The role would be:");
        }
        println!("{role}");
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_environment_or_branch_of_the_repository_is_trusted() {
        let sub = |trusted: &Trusted| {
            let trust = ci_trust("arn:aws:iam::1:oidc-provider/x", "acme/infra", trusted);
            trust["Statement"][0]["Condition"]["StringEquals"]
                ["token.actions.githubusercontent.com:sub"]
                .clone()
        };
        let args = |environment: Option<&str>, branch: Option<&str>| CiRoleArgs {
            repo: "acme/infra".to_owned(),
            environment: environment.map(str::to_owned),
            branch: branch.map(str::to_owned),
            iam: iam::IamArgs {
                stack: "s".to_owned(),
                region: None,
                discovery_prefix: None,
                do_it: false,
            },
        };
        let default = Trusted::of(&args(None, None)).expect("default");
        assert_eq!(sub(&default), "repo:acme/infra:environment:production");
        let staging = Trusted::of(&args(Some("staging"), None)).expect("environment");
        assert_eq!(sub(&staging), "repo:acme/infra:environment:staging");
        let main = Trusted::of(&args(None, Some("main"))).expect("branch");
        assert_eq!(sub(&main), "repo:acme/infra:ref:refs/heads/main");
        for bad in ["", "prod:*", "release/*"] {
            assert!(Trusted::of(&args(Some(bad), None)).is_err(), "{bad}");
        }
        let trust = ci_trust("arn:aws:iam::1:oidc-provider/x", "acme/infra", &main);
        let condition = &trust["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(
            condition["token.actions.githubusercontent.com:aud"],
            "sts.amazonaws.com"
        );
        assert!(check_repo("acme/infra").is_ok());
        for bad in ["acme", "acme/", "a/b/c", "acme/in*"] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
    }

    /// On moto's IAM: the provider, the role with its trust and the deployer policy, the
    /// artifact bucket; a second run changes nothing; another branch updates the trust.
    #[test]
    #[ignore = "needs the moto emulator: `cargo xtask test` runs it"]
    fn sets_up_ci_on_the_emulator() {
        let _endpoint = ssmbak_tests::emulator::required_endpoint();
        let root = crate::util::project_root();
        let stack = ssmbak_tests::emulator::unique("ci");
        let args = |branch: &str, do_it: bool| CiRoleArgs {
            repo: "acme/infra".to_owned(),
            environment: None,
            branch: Some(branch.to_owned()),
            iam: iam::IamArgs {
                stack: stack.clone(),
                region: None,
                discovery_prefix: None,
                do_it,
            },
        };
        crate::aws::block_on(async {
            let aws = Aws::connect(None, "iam-admin").await.expect("clients");
            let role_arn = apply(&aws, &root, &args("main", true)).await.expect("apply");
            assert!(role_arn.ends_with(&format!(":role/{}", role_name(&stack))));
            let trust = |aws: &Aws| {
                let name = role_name(&stack);
                let iam = aws.iam.clone();
                async move {
                    let role = iam.get_role().role_name(name).send().await.expect("role");
                    let doc = role.role.and_then(|r| r.assume_role_policy_document);
                    iam::parse_iam_document(&doc.unwrap_or_default()).expect("JSON")
                }
            };
            assert_eq!(
                trust(&aws).await["Statement"][0]["Condition"]["StringEquals"]
                    ["token.actions.githubusercontent.com:sub"],
                "repo:acme/infra:ref:refs/heads/main"
            );
            let attached = aws
                .iam
                .list_attached_role_policies()
                .role_name(role_name(&stack))
                .send()
                .await
                .expect("attached");
            assert!(
                attached
                    .attached_policies()
                    .iter()
                    .any(|p| p.policy_name() == Some(iam::policy_name(&stack, "deployer").as_str())),
                "{attached:?}"
            );
            // The artifact bucket is there and hardened: a deploy by the CI needs no writes.
            let account = aws.account().await.expect("account");
            let bucket = artifacts::default_bucket(&account, &aws.region());
            let versioning = ssmbak_core::client::versioning_status(&aws.s3, &bucket, None)
                .await
                .expect("versioning");
            assert_eq!(versioning.as_ref().map(|s| s.as_str()), Some("Enabled"));

            apply(&aws, &root, &args("main", true)).await.expect("again");
            let providers = aws
                .iam
                .list_open_id_connect_providers()
                .send()
                .await
                .expect("providers");
            assert_eq!(
                providers
                    .open_id_connect_provider_list()
                    .iter()
                    .filter(|p| p.arn().is_some_and(|a| a.ends_with(GITHUB_ISSUER)))
                    .count(),
                1
            );

            apply(&aws, &root, &args("release", false)).await.expect("dry run");
            assert!(trust(&aws).await.to_string().contains("refs/heads/main"));
            apply(&aws, &root, &args("release", true)).await.expect("branch");
            assert!(trust(&aws).await.to_string().contains("refs/heads/release"));
        })
        .expect("runtime");
    }
}
