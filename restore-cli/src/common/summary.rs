//! The closing line (and JSON object) of a restore, for both tools: a count per outcome.

use std::fmt;

use super::exit::ExitCode;

/// The outcomes a tool counts, each with its label.
pub trait Outcome: Copy + Eq + 'static {
    /// Every outcome, in the order of the JSON object and of the closing line.
    const ALL: &'static [Self];
    /// How the closing line names it; the JSON key is the same with `_` for spaces.
    fn label(self) -> &'static str;
    /// Whether the closing line shows it at zero; the JSON object always does.
    fn always_shown(self) -> bool;
    /// Whether it leaves the restore unfinished (exit code 3).
    fn leaves_work_undone(self) -> bool;
}

/// A count per outcome of `O`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<O: Outcome> {
    /// One per outcome, in the order of `O::ALL`.
    counts: Vec<(O, usize)>,
}

impl<O: Outcome> Default for Summary<O> {
    fn default() -> Self {
        Summary {
            counts: O::ALL.iter().map(|&o| (o, 0)).collect(),
        }
    }
}

impl<O: Outcome> Summary<O> {
    pub fn add(&mut self, outcome: O) {
        self.add_many(outcome, 1);
    }

    pub fn add_many(&mut self, outcome: O, n: usize) {
        if let Some((_, count)) = self.counts.iter_mut().find(|(o, _)| *o == outcome) {
            *count += n;
        }
    }

    /// Partial when any outcome that leaves work undone was counted.
    pub fn exit_code(&self) -> ExitCode {
        if self
            .counts
            .iter()
            .any(|&(o, count)| o.leaves_work_undone() && count > 0)
        {
            ExitCode::Partial
        } else {
            ExitCode::Success
        }
    }

    /// Every count, zeros too, under its label with `_` for spaces.
    pub fn to_json(&self) -> serde_json::Value {
        self.counts
            .iter()
            .map(|&(o, count)| (o.label().replace(' ', "_"), serde_json::Value::from(count)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// `label N, label N`: the counts always shown, then the others that are not zero, so the
/// line of an ordinary run reads the same whatever could have happened.
impl<O: Outcome> fmt::Display for Summary<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let always = self.counts.iter().filter(|(o, _)| o.always_shown());
        let when_not_zero = self
            .counts
            .iter()
            .filter(|&&(o, count)| !o.always_shown() && count > 0);
        for (i, (o, count)) in always.chain(when_not_zero).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {count}", o.label())?;
        }
        Ok(())
    }
}
