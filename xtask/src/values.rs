//! Values the commands' arguments take (clap value parsers): `Key=Value` pairs and durations.

/// `Key=Value`, for `--param` and `--tag`.
pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not Key=Value"))
}

/// A duration like `30m`, `2h` or `90` (seconds), in seconds.
pub(crate) fn humantime_secs(s: &str) -> Result<u64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m"))?;
    match unit {
        "" | "s" => Ok(n),
        "m" => Ok(n * 60),
        "h" => Ok(n * 3600),
        _ => Err(format!("{s:?} is not a duration like 30m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_durations() {
        assert_eq!(parse_param("A=b=c"), Ok(("A".to_owned(), "b=c".to_owned())));
        assert!(parse_param("nope").is_err());
        assert_eq!(humantime_secs("30m"), Ok(1800));
        assert_eq!(humantime_secs("90"), Ok(90));
        assert!(humantime_secs("soon").is_err());
    }
}
