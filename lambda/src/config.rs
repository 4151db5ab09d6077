//! The Lambda's configuration, from its environment.

/// The bucket to back up to; the same variable as the original ssmbak's Lambda.
pub const BUCKET_VAR: &str = "SSMBAK_BUCKET";

/// Paths the scheduled reconcile covers, comma-separated (all parameters when unset).
pub const RECONCILE_PATHS_VAR: &str = "SSMBAK_RECONCILE_PATHS";

/// Log level variables, first set wins: ours, then the original's, then Lambda's own
/// advanced-logging setting.
pub const LOG_LEVEL_VARS: [&str; 3] = ["SSMBAK_LOG_LEVEL", "LOGLEVEL", "AWS_LAMBDA_LOG_LEVEL"];

/// SSM reads a second the whole deployment may make (the account's GetParameter* share,
/// 40 TPS by default: SSM User Guide, "Increasing or resetting Parameter Store throughput").
pub const SSM_READS_VAR: &str = "SSMBAK_SSM_READS_PER_SECOND";

/// How many invocations run at once at most (the event source mapping's MaximumConcurrency,
/// plus one for the schedule): each takes its share of the reads.
pub const CONCURRENCY_VAR: &str = "SSMBAK_MAX_CONCURRENCY";

const DEFAULT_SSM_READS: f64 = 40.0;
const DEFAULT_CONCURRENCY: f64 = 2.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bucket: String,
    pub log_level: String,
    pub reconcile_paths: Vec<String>,
    pub ssm_reads_per_second: f64,
    pub max_concurrency: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{BUCKET_VAR} is not set: the Lambda needs the backup bucket's name")]
    NoBucket,
}

impl Config {
    /// Reads the configuration through `var` (the process environment in production).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bucket = var(BUCKET_VAR)
            .filter(|b| !b.trim().is_empty())
            .ok_or(ConfigError::NoBucket)?;
        let log_level = LOG_LEVEL_VARS
            .iter()
            .find_map(|v| var(v).filter(|l| !l.trim().is_empty()))
            .unwrap_or_else(|| "info".to_owned())
            .to_ascii_lowercase();
        let reconcile_paths = var(RECONCILE_PATHS_VAR)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let number = |name: &str, default: f64| {
            var(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|n| *n > 0.0 && n.is_finite())
                .unwrap_or(default)
        };
        Ok(Config {
            bucket,
            log_level,
            reconcile_paths,
            ssm_reads_per_second: number(SSM_READS_VAR, DEFAULT_SSM_READS),
            max_concurrency: number(CONCURRENCY_VAR, DEFAULT_CONCURRENCY),
        })
    }

    /// This invocation's share of the SSM read rate: one of the event source mapping's
    /// concurrent batches or the schedule's reconcile, all at once at most.
    pub fn ssm_reads_per_invocation(&self) -> f64 {
        self.ssm_reads_per_second / (self.max_concurrency + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn invocations_share_ssms_read_rate() {
        let c = Config::from_vars(vars(&[("SSMBAK_BUCKET", "b")])).expect("config");
        // The default 40 TPS over two batches and the reconcile.
        assert!((c.ssm_reads_per_invocation() - 40.0 / 3.0).abs() < 1e-9);
        let c = Config::from_vars(vars(&[
            ("SSMBAK_BUCKET", "b"),
            ("SSMBAK_SSM_READS_PER_SECOND", "100"),
            ("SSMBAK_MAX_CONCURRENCY", "4"),
        ]))
        .expect("config");
        assert!((c.ssm_reads_per_invocation() - 20.0).abs() < 1e-9);
        let c = Config::from_vars(vars(&[
            ("SSMBAK_BUCKET", "b"),
            ("SSMBAK_MAX_CONCURRENCY", "0"),
        ]))
        .expect("config");
        assert!(
            (c.max_concurrency - 2.0).abs() < 1e-9,
            "nonsense falls back to the default"
        );
    }

    #[test]
    fn bucket_is_required() {
        assert_eq!(Config::from_vars(vars(&[])), Err(ConfigError::NoBucket));
        assert_eq!(
            Config::from_vars(vars(&[("SSMBAK_BUCKET", " ")])),
            Err(ConfigError::NoBucket)
        );
    }

    #[test]
    fn log_level_falls_back_to_the_original_variable() {
        let c = Config::from_vars(vars(&[("SSMBAK_BUCKET", "b"), ("LOGLEVEL", "DEBUG")]));
        assert_eq!(c.map(|c| c.log_level), Ok("debug".to_owned()));
        let c = Config::from_vars(vars(&[("SSMBAK_BUCKET", "b")]));
        assert_eq!(c.map(|c| c.log_level), Ok("info".to_owned()));
    }
}
