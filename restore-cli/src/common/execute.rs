//! One executor for the units of work of both tools (ssmbak's deletes and puts, s3bak's copies
//! and downloads): bounded concurrency, results in the order of the units, dry runs,
//! `--keep-going`, and failures that stop everything.
//!
//! Ctrl-C is not handled here: the top-level `run_to_exit` drops the whole future, and with it
//! every unit in flight.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget};
use ssmbak_core::bounded::map_in_order;

/// What became of one unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T, E> {
    /// Never started: a dry run, or a failure before it stopped the run.
    NotAttempted,
    Succeeded(T),
    Failed(E),
}

impl<T, E> Attempt<T, E> {
    pub fn failure(&self) -> Option<&E> {
        match self {
            Attempt::Failed(e) => Some(e),
            Attempt::NotAttempted | Attempt::Succeeded(_) => None,
        }
    }
}

/// Runs units of work, one phase after another through the same executor: a failure that
/// stops the run in one phase also stops the phases after it (ssmbak's failed delete leaves
/// its puts unattempted).
pub struct Executor<E> {
    dry_run: bool,
    keep_going: bool,
    /// A failure every unit would meet alike (s3bak's bucket-wide refusals): it stops the run
    /// even with `keep_going`, since going on would only repeat it.
    stops_everything: fn(&E) -> bool,
    show_progress: bool,
    /// Set once the run must start nothing new; shared by every phase.
    stopped: AtomicBool,
}

impl<E> Executor<E> {
    /// Without `keep_going`, nothing new starts after the first failure.
    pub fn new(keep_going: bool) -> Self {
        Executor {
            dry_run: false,
            keep_going,
            stops_everything: |_| false,
            show_progress: false,
            stopped: AtomicBool::new(false),
        }
    }

    /// With `dry_run`, nothing is attempted: every unit is [`Attempt::NotAttempted`].
    pub fn dry_run(self, dry_run: bool) -> Self {
        Executor { dry_run, ..self }
    }

    pub fn stopping_everything_on(self, stops_everything: fn(&E) -> bool) -> Self {
        Executor {
            stops_everything,
            ..self
        }
    }

    /// A progress bar on stderr for each phase, drawn only on a terminal.
    pub fn with_progress(self) -> Self {
        Executor {
            show_progress: true,
            ..self
        }
    }

    /// Runs `work` on each unit, at most `concurrency` at once; what became of each, in the
    /// order of `units`.
    pub async fn run<U, T, F>(
        &self,
        units: impl IntoIterator<Item = U>,
        concurrency: usize,
        mut work: impl FnMut(U) -> F,
    ) -> Vec<Attempt<T, E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let units: Vec<U> = units.into_iter().collect();
        let bar = self.show_progress.then(|| progress(units.len()));
        let attempts = map_in_order(units, concurrency, |unit| {
            // Futures do nothing until polled: the unit starts only after the check below.
            let unit_work = work(unit);
            let bar = bar.as_ref();
            async move {
                let attempt = if self.dry_run || self.stopped.load(Ordering::Relaxed) {
                    Attempt::NotAttempted
                } else {
                    match unit_work.await {
                        Ok(done) => Attempt::Succeeded(done),
                        Err(e) => {
                            if !self.keep_going || (self.stops_everything)(&e) {
                                self.stopped.store(true, Ordering::Relaxed);
                            }
                            Attempt::Failed(e)
                        }
                    }
                };
                if let Some(bar) = bar {
                    bar.inc(1);
                }
                attempt
            }
        })
        .await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        attempts
    }

    /// The first failure among `attempts` that stopped everything: it ends the command.
    pub fn stopped_everything_by<'a, T>(&self, attempts: &'a [Attempt<T, E>]) -> Option<&'a E> {
        attempts
            .iter()
            .filter_map(Attempt::failure)
            .find(|e| (self.stops_everything)(e))
    }
}

fn progress(len: usize) -> ProgressBar {
    // Drawn only on a terminal.
    ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use Attempt::{Failed, NotAttempted, Succeeded};

    /// A unit that takes `millis` and fails when `fails`; counts the units that ran.
    async fn unit(ran: &AtomicUsize, millis: u64, fails: bool) -> Result<u64, String> {
        ran.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        if fails {
            Err(format!("unit of {millis} ms failed"))
        } else {
            Ok(millis)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_the_order_and_the_concurrency_bound() {
        let (in_flight, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let executor = Executor::<String>::new(false);
        let durations = [50_u64, 10, 40, 20, 30, 5, 25, 15];
        let attempts = executor
            .run(durations, 3, |millis| {
                let (in_flight, most) = (&in_flight, &most);
                async move {
                    let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                    most.fetch_max(now, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    Ok::<_, String>(millis)
                }
            })
            .await;
        let expected: Vec<Attempt<u64, String>> = durations.map(Succeeded).into();
        assert_eq!(attempts, expected);
        assert_eq!(most.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn without_keep_going_nothing_new_starts_after_a_failure() {
        let ran = AtomicUsize::new(0);
        let executor = Executor::new(false);
        // Unit 1 fails at 1 ms while unit 0 (10 ms) is in flight: unit 0 finishes, the rest
        // never start.
        let units = [(10, false), (1, true), (1, false), (1, false), (1, false)];
        let attempts = executor
            .run(units, 2, |(millis, fails)| unit(&ran, millis, fails))
            .await;
        assert_eq!(
            attempts,
            [
                Succeeded(10),
                Failed("unit of 1 ms failed".to_owned()),
                NotAttempted,
                NotAttempted,
                NotAttempted
            ]
        );
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        assert_eq!(executor.stopped_everything_by(&attempts), None);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_going_attempts_every_unit() {
        let ran = AtomicUsize::new(0);
        let executor = Executor::new(true);
        let units = [(1, false), (1, true), (1, false), (1, true), (1, false)];
        let attempts = executor
            .run(units, 1, |(millis, fails)| unit(&ran, millis, fails))
            .await;
        let failed = || Failed("unit of 1 ms failed".to_owned());
        assert_eq!(
            attempts,
            [Succeeded(1), failed(), Succeeded(1), failed(), Succeeded(1)]
        );
        assert_eq!(ran.load(Ordering::Relaxed), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dry_run_attempts_nothing() {
        let ran = AtomicUsize::new(0);
        let executor = Executor::new(false).dry_run(true).with_progress();
        let attempts = executor
            .run([(1, false), (1, true)], 4, |(millis, fails)| {
                unit(&ran, millis, fails)
            })
            .await;
        assert_eq!(attempts, [NotAttempted, NotAttempted]);
        assert_eq!(ran.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_stops_everything_stops_even_with_keep_going() {
        let ran = AtomicUsize::new(0);
        let executor = Executor::new(true).stopping_everything_on(|e: &String| e.contains("3 ms"));
        let units = [(1, true), (3, true), (1, false), (1, false)];
        let attempts = executor
            .run(units, 1, |(millis, fails)| unit(&ran, millis, fails))
            .await;
        assert_eq!(
            attempts,
            [
                Failed("unit of 1 ms failed".to_owned()),
                Failed("unit of 3 ms failed".to_owned()),
                NotAttempted,
                NotAttempted
            ]
        );
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        assert_eq!(
            executor
                .stopped_everything_by(&attempts)
                .map(String::as_str),
            Some("unit of 3 ms failed")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_in_one_phase_stops_the_next_unless_keep_going() {
        for keep_going in [false, true] {
            let ran = AtomicUsize::new(0);
            let executor = Executor::new(keep_going);
            let first = executor
                .run([(1, true)], 1, |(millis, fails)| unit(&ran, millis, fails))
                .await;
            let second = executor
                .run([(1, false), (1, false)], 4, |(millis, fails)| {
                    unit(&ran, millis, fails)
                })
                .await;
            assert_eq!(first, [Failed("unit of 1 ms failed".to_owned())]);
            if keep_going {
                assert_eq!(second, [Succeeded(1), Succeeded(1)]);
            } else {
                assert_eq!(second, [NotAttempted, NotAttempted]);
            }
        }
    }
}
