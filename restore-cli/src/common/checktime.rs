//! CHECKTIME: the point in time to read the backups at.
//!
//! Accepted, all meaning an instant:
//! * the original's `YYYY-MM-DDTHH:MM:SS`, read as UTC;
//! * RFC 3339 with `Z` or an offset (`2026-11-27T09:15:00+01:00`), fractions allowed;
//! * a relative time, `2h ago`, `30m ago`, `1h 30m ago`, `90s ago`, or `now`.
//!
//! Times are compared at whole seconds, inclusively, so fractions are dropped.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// How far in the future a time may be (clock skew) before it is refused.
const FUTURE_SLACK_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckTimeError {
    #[error("{0:?} is not a time: use YYYY-MM-DDTHH:MM:SS (UTC), RFC 3339 (2026-11-27T09:15:00Z), or a relative time like \"2h ago\"")]
    Unparsable(String),
    #[error("{0:?} is in the future")]
    Future(String),
}

/// Parses `input` relative to `now` (epoch seconds); returns epoch seconds.
pub fn parse(input: &str, now: i64) -> Result<i64, CheckTimeError> {
    let text = input.trim();
    let unparsable = || CheckTimeError::Unparsable(input.to_owned());
    let secs = if text.eq_ignore_ascii_case("now") {
        now
    } else if let Some(ago) = text.strip_suffix("ago") {
        let duration = humantime::parse_duration(ago.trim()).map_err(|_| unparsable())?;
        let back = i64::try_from(duration.as_secs()).map_err(|_| unparsable())?;
        now.checked_sub(back).ok_or_else(unparsable)?
    } else if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        t.unix_timestamp()
    } else {
        let naive = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        PrimitiveDateTime::parse(text, naive)
            .map_err(|_| unparsable())?
            .assume_utc()
            .unix_timestamp()
    };
    if secs > now + FUTURE_SLACK_SECS {
        return Err(CheckTimeError::Future(input.to_owned()));
    }
    Ok(secs)
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_772_100; // 2026-11-27T09:35:00Z

    #[test]
    fn accepted_forms() {
        let cases = [
            ("2026-11-27T09:15:00", 1_795_770_900),
            ("2026-11-27T09:15:00Z", 1_795_770_900),
            ("2026-11-27T10:15:00+01:00", 1_795_770_900),
            ("2026-11-27T09:15:00.999Z", 1_795_770_900),
            (" 2026-11-27T09:15:00 ", 1_795_770_900),
            ("2h ago", NOW - 7200),
            ("30m ago", NOW - 1800),
            ("1h 30m ago", NOW - 5400),
            ("90s ago", NOW - 90),
            ("now", NOW),
            ("NOW", NOW),
            ("2022-08-03T21:09:31", 1_659_560_971),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input, NOW), Ok(expected), "{input}");
        }
    }

    #[test]
    fn refused_forms() {
        for input in [
            "",
            "yesterday",
            "2026-11-27",
            "2026-11-27 09:15:00",
            "27/11/2026 09:15",
            "2026-13-01T00:00:00",
            "2026-11-27T25:00:00",
            "ago",
            "2 fortnights ago",
            "-2h ago",
            "1700000000",
        ] {
            assert_eq!(
                parse(input, NOW),
                Err(CheckTimeError::Unparsable(input.to_owned())),
                "{input:?}"
            );
        }
    }

    #[test]
    fn the_future_is_refused_beyond_clock_skew() {
        assert_eq!(parse("2026-11-27T09:35:30Z", NOW), Ok(NOW + 30));
        assert!(matches!(
            parse("2026-11-27T10:00:00Z", NOW),
            Err(CheckTimeError::Future(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(format(1_795_770_900), "2026-11-27T09:15:00Z");
        assert_eq!(parse(&format(1_659_560_971), NOW), Ok(1_659_560_971));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in "\\PC{0,40}") {
            let _ = parse(&input, NOW);
        }
    }
}
