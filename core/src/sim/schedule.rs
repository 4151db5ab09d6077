//! What a simulated run is made of: the changes made to SSM, when each change's event is
//! delivered (late, twice, never), the faults, the skew and the page size, from one seed.

use crate::format::ParameterType;

/// A small, fast, seedable generator (SplitMix64): the schedule is a function of the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The parameters of the simulation: the second's name extends the first's, so a listing of
/// the first's key holds the second's entries too.
pub const NAMES: [&str; 2] = ["/app/p", "/app/p/x"];

/// What SSM did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PutParameter: a new version (version 1 of a new parameter when absent).
    Put(ParameterType),
    Delete,
    /// LabelParameterVersion on the current version: an event, no new version.
    Label,
}

/// One change SSM made to one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Which of [`NAMES`].
    pub param: usize,
    pub kind: Kind,
    /// Its event's time, epoch seconds.
    pub at: i64,
    /// The milliseconds within `at` when SSM made it.
    pub ms: i64,
}

impl Change {
    pub(super) fn made_ms(&self) -> i64 {
        self.at * 1000 + self.ms
    }

    pub(super) fn value(index: usize) -> String {
        format!("value {index}")
    }
}

/// SSM's versions of `param` after the changes made by `upto_ms`, `(version, ms, change)`.
pub(super) fn ssm_at(
    changes: &[Change],
    param: usize,
    upto_ms: i64,
) -> Option<Vec<(i64, i64, usize)>> {
    let mut state: Option<Vec<(i64, i64, usize)>> = None;
    for (i, c) in changes.iter().enumerate() {
        if c.param != param || c.made_ms() > upto_ms {
            continue;
        }
        match c.kind {
            Kind::Put(_) => {
                let versions = state.get_or_insert_with(Vec::new);
                let v = versions.last().map_or(1, |last| last.0 + 1);
                versions.push((v, c.made_ms(), i));
            }
            Kind::Delete => state = None,
            Kind::Label => {}
        }
    }
    state
}

/// The truth for `param` at second `t`: the current version `(version, ms, change)`, or absent.
pub(super) fn truth_at(changes: &[Change], param: usize, t: i64) -> Option<(i64, i64, usize)> {
    ssm_at(changes, param, t * 1000 + 999).and_then(|v| v.last().copied())
}

/// One delivery of one change's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub change: usize,
    /// When it is received, epoch ms.
    pub at_ms: i64,
}

/// A schedule: what SSM does, and what the pipeline is given to do, in time.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub changes: Vec<Change>,
    pub deliveries: Vec<Delivery>,
    /// When a reconcile runs beside the deliveries, epoch ms.
    pub reconciles: Vec<i64>,
    /// Entries per listing page.
    pub page_size: usize,
    /// Percent of store calls that fail.
    pub fault_percent: u64,
    /// How far the writer's clock is ahead of S3's, ms.
    pub skew_ms: i64,
}

pub(super) const START: i64 = 1_700_000_000;

/// SQS's visibility timeout: a failed delivery comes again after it.
pub(super) const VISIBILITY_MS: i64 = 30_000;

/// Deliveries of one message before SQS moves it to the dead-letter queue.
pub(super) const MAX_RECEIVES: usize = 5;

impl Schedule {
    /// The schedule of `seed`.
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Rng::new(seed);
        let mut changes: Vec<Change> = Vec::new();
        let mut t = START;
        let mut exists = [false; 2];
        // Now and then a burst past SSM's 100 kept versions.
        let n = if rng.chance(2) {
            100 + rng.below(40)
        } else {
            2 + rng.below(12)
        };
        for _ in 0..n {
            // Same second sometimes, mostly a few seconds apart, sometimes minutes.
            t += match rng.below(10) {
                0 => 0,
                1 => 60 + rng.below(600) as i64,
                _ => 1 + rng.below(4) as i64,
            };
            let param = if rng.chance(75) { 0 } else { 1 };
            let kind = match (exists[param], rng.below(10)) {
                (false, _) | (true, 0..=4) => {
                    exists[param] = true;
                    let types = [
                        ParameterType::String,
                        ParameterType::SecureString,
                        ParameterType::StringList,
                    ];
                    Kind::Put(types[rng.below(3) as usize])
                }
                (true, 5..=7) if n < 100 => {
                    exists[param] = false;
                    Kind::Delete
                }
                (true, _) => Kind::Label,
            };
            // SSM's dates only grow.
            let after = match changes.last() {
                Some(c) if c.at == t => c.ms + 1,
                _ => 0,
            };
            changes.push(Change {
                param,
                kind,
                at: t,
                ms: (after + rng.below(1000) as i64).min(999),
            });
        }
        let mut deliveries = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let copies = match rng.below(10) {
                0 => 0, // lost
                1 | 2 => 2,
                _ => 1,
            };
            for _ in 0..copies {
                let lag_ms = match rng.below(10) {
                    0..=5 => rng.below(3_000),
                    6..=8 => rng.below(60_000),
                    _ => rng.below(3_600_000),
                } as i64;
                deliveries.push(Delivery {
                    change: i,
                    at_ms: c.made_ms() + lag_ms,
                });
            }
        }
        deliveries.sort_by_key(|d| d.at_ms);
        let last = changes.last().map_or(START, |c| c.at);
        let reconciles = (0..rng.below(3))
            .map(|_| (START + rng.below((last - START + 60) as u64) as i64) * 1000)
            .collect();
        let page_size = match rng.below(4) {
            0 => 1 + rng.below(3) as usize,
            1 => 4 + rng.below(20) as usize,
            _ => 1000,
        };
        let fault_percent = [0, 0, 2, 5, 10][rng.below(5) as usize];
        let skew_ms = [0, 0, 250, -250, 100, -100][rng.below(6) as usize];
        Schedule {
            seed,
            changes,
            deliveries,
            reconciles,
            page_size,
            fault_percent,
            skew_ms,
        }
    }
}
