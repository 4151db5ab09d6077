//! `--color WHEN` and `NO_COLOR` (issue 31): the tools style nothing of their own (tables and
//! progress bars are plain), so what they govern is clap's help and usage errors.
//!
//! Help is printed while the command line is parsed, so the choice is read from the raw
//! arguments first. An explicit `--color` wins over `NO_COLOR`, which (when set and not empty)
//! means never ("Command-line software which adds ANSI color to its output by default should
//! check for a NO_COLOR environment variable that, when present and not an empty string
//! (regardless of its value), prevents the addition of ANSI color", no-color.org).

use std::ffi::OsString;

use clap::{ColorChoice, ValueEnum};

/// The `--color` option, on every command of both tools: clap's own choice (auto, always,
/// never), which its help and errors follow.
#[derive(Debug, Clone, clap::Args)]
pub struct ColorArg {
    /// When to use colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// clap's colour choice for the command line `args` (the program name first) and the value
/// of `NO_COLOR`. A `--color` that is not one of the three is left to clap to refuse.
pub fn choice(args: &[OsString], no_color: Option<&OsString>) -> ColorChoice {
    let mut flag = None;
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--color") {
            Some("") => args.next().map(|v| v.into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => continue,
        };
        flag = value.or(flag);
    }
    match flag.and_then(|v| ColorChoice::from_str(&v, false).ok()) {
        Some(asked) => asked,
        None if no_color.is_some_and(|v| !v.is_empty()) => ColorChoice::Never,
        None => ColorChoice::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ColorChoice::{Always, Auto, Never};

    fn pick(args: &[&str], no_color: Option<&str>) -> ColorChoice {
        let args: Vec<OsString> = std::iter::once("ssmbak")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        choice(&args, no_color.map(OsString::from).as_ref())
    }

    #[test]
    fn the_flag_wins_then_no_color_then_the_terminal() {
        assert_eq!(pick(&["preview", "--help"], None), Auto);
        assert_eq!(pick(&["--help"], Some("1")), Never);
        assert_eq!(
            pick(&["--help"], Some("")),
            Auto,
            "an empty NO_COLOR is unset"
        );
        assert_eq!(pick(&["--color", "always", "--help"], Some("1")), Always);
        assert_eq!(pick(&["--color=never", "--help"], None), Never);
        assert_eq!(
            pick(&["--color=auto"], Some("1")),
            Auto,
            "asked for explicitly"
        );
        assert_eq!(
            pick(&["--color=never", "--color=always"], None),
            Always,
            "the last"
        );
        assert_eq!(
            pick(&["--", "--color=never"], None),
            Auto,
            "an argument, not the flag"
        );
        assert_eq!(pick(&["--colour=never"], None), Auto, "another flag");
    }
}
