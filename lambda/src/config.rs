//! The Lambda's configuration, from its environment.

/// The bucket to back up to; the same variable as the original ssmbak's Lambda.
pub const BUCKET_VAR: &str = "SSMBAK_BUCKET";

/// Paths the scheduled reconcile covers, comma-separated (all parameters when unset).
pub const RECONCILE_PATHS_VAR: &str = "SSMBAK_RECONCILE_PATHS";

/// Log level variables, first set wins: ours, then the original's, then Lambda's own
/// advanced-logging setting.
pub const LOG_LEVEL_VARS: [&str; 3] = ["SSMBAK_LOG_LEVEL", "LOGLEVEL", "AWS_LAMBDA_LOG_LEVEL"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bucket: String,
    pub log_level: String,
    pub reconcile_paths: Vec<String>,
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
        Ok(Config {
            bucket,
            log_level,
            reconcile_paths,
        })
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
