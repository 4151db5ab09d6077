//! Request-rate limits shared by every task of one process: each request waits for its own
//! slot, `1 / rate` apart, so a burst is spread out instead of throttled by the service. The
//! rate is fixed ([`RateLimit`]) or learnt from the service's refusals ([`AdaptiveRate`]; see
//! [`crate::paced`] for sending SDK requests at its pace).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most `per_second` requests a second, spaced evenly.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub fn per_second(per_second: f64) -> Self {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.01)),
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// What the first refusal leaves of the rate, before anything is measured (TCP halves its
/// window): the rate that found the limit may be far over it.
const FIRST_CUT: f64 = 0.5;
/// What each calm second multiplies the rate by once a limit was measured, to find a limit
/// that was raised, or a share of it that another client left.
const RECOVERY: f64 = 1.02;
/// The shortest span of refusals over which the admitted rate is measured: over a shorter one
/// a few requests more or less make a large error...
const MEASURE_MIN: Duration = Duration::from_millis(500);
/// ...unless this many were admitted (a high limit, measured to within a few percent) over at
/// least [`MEASURE_QUICK`] (a few round trips, so that their jitter matters little).
const MEASURE_ENOUGH: u32 = 40;
const MEASURE_QUICK: Duration = Duration::from_millis(100);
/// The longest calm between two refusals of one measurement: over a longer one the service's
/// bucket may have refilled to the brim, and what it admitted is no longer its refill rate.
const MEASURE_MAX: Duration = Duration::from_secs(3);
/// How far under the measured limit the pace sits, so that the service's bucket refills a
/// little and a refusal stays rare.
const MARGIN: f64 = 0.97;

/// A rate learnt from throttling. Requests are let go one at a time, `1 / rate` apart at the
/// rate in force when each goes (a cut slows the very next request, not only those queued
/// after it), starting from the service's documented default.
///
/// AWS limits a rate with a token bucket: a burst is admitted, then requests only as fast as
/// the bucket refills. A refusal means the bucket is empty, so from one refusal to a later one
/// (each within `MEASURE_MAX` of the one before, with no lull in the requests: `LULL`)
/// what the service admitted, refusals left out, is what it refilled: its limit for this
/// client. The pace is set just under that measure (`MARGIN`), once it spans
/// `MEASURE_MIN`. The first refusal halves the rate before anything is measured (unless a
/// burst after a lull emptied the bucket); a refusal after a long calm goes back to the last
/// measure.
///
/// The measure runs on the clock of the requests' departures ([`Ticket`]), not of their
/// answers: the service decides as a request arrives, a round trip's half after it left,
/// while an admitted request's answer waits for the work it asks for. A busy service answers
/// admissions late and in bunches and refusals at once, so counting answers between two
/// refusals can find a fraction of the real rate (on the bench's moto, busy with a restore's
/// plan beside its writes, 23.9 a second against 40). A request still unanswered when a later
/// one is refused is counted as admitted: a refusal comes back as fast as anything.
///
/// Until the first refusal the rate doubles every second (TCP's slow start: an account may
/// have a much higher limit); after it, it grows by 2% a second. It grows only while requests
/// wait for their turn, and never past twice what the service admitted over the last second:
/// a rate the requests do not reach is not shown to be allowed (as TCP does not grow a window
/// the sender leaves unused, RFC 7661), and a restore whose plan fed its writes slowly, or in
/// bursts, would otherwise send the rest far over the limit.
///
/// Every attempt must be paced, retries included ([`crate::paced::send`] does it): the
/// measure counts them, and a retry sent beside the pace would push the total over it.
#[derive(Debug)]
pub struct AdaptiveRate {
    state: Mutex<Adaptive>,
    /// Held by the request waiting for its turn: the others queue behind it, in order.
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Adaptive {
    rate: f64,
    floor: f64,
    /// Where the rate started: the slow start's growth is never held below it.
    start: f64,
    /// When the service admitted the requests of the last second.
    recent: std::collections::VecDeque<Instant>,
    /// When the rate last changed.
    changed: Instant,
    /// When the last request was let go.
    last: Option<Instant>,
    /// The service's limit for this client, as last measured.
    limit: Option<f64>,
    /// Refusals in a row, each sent within [`MEASURE_MAX`] of the one before.
    refusals: Option<Refusals>,
    /// The requests let go since the first refusal of [`Self::refusals`] (or over the last
    /// [`MEASURE_MAX`]), in order, with when they left: the `n`th has ticket `sent_from + n`.
    sent: std::collections::VecDeque<(Instant, Sent)>,
    sent_from: u64,
}

/// A request let go, as its answer left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Unanswered,
    Admitted,
    Refused,
}

/// One request's turn, as [`AdaptiveRate::acquire`] gave it: its answer is told with it, so
/// that the pace knows when the request left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    id: u64,
    at: Instant,
}

#[derive(Debug)]
struct Refusals {
    /// The first and last refused requests (when they left).
    first: Ticket,
    last: Ticket,
    /// Requests stopped coming for a while since the first: the service's bucket may have
    /// filled to the brim and lost what it refilled, so what it admitted is not its rate.
    lull: bool,
}

const SECOND: Duration = Duration::from_secs(1);

/// A pause in the requests this long, beyond their interval, may let the service's bucket
/// fill: the measure in progress is dropped.
const LULL: Duration = Duration::from_millis(250);

impl Adaptive {
    /// How many requests the service admitted over the last second.
    fn admitted_lately(&mut self, now: Instant) -> usize {
        while self
            .recent
            .front()
            .is_some_and(|&t| now.duration_since(t) > SECOND)
        {
            self.recent.pop_front();
        }
        self.recent.len()
    }

    /// When the next request may go, after raising the rate for the calm since it last
    /// changed, if requests were waiting for their turn all that time.
    fn next_slot(&mut self, now: Instant) -> Instant {
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        match self.last {
            // This request waited for its turn: the rate is what holds the requests back.
            Some(last) if last + interval >= now => {
                let calm = now.duration_since(self.changed).as_secs_f64();
                let growth = if self.limit.is_some() { RECOVERY } else { 2.0 };
                // At most twice what the service admitted over the last second (or the start):
                // growth shown by bursts alone, with lulls between, is not shown by the service.
                let shown = (2 * self.admitted_lately(now)) as f64;
                self.rate =
                    (self.rate * growth.powf(calm)).min(shown.max(self.start).max(self.rate));
                self.changed = now;
                (last + Duration::from_secs_f64(1.0 / self.rate)).max(now)
            }
            // Requests come slower than the rate: no evidence it could be higher.
            _ => {
                let lull = self.last.is_some_and(|last| now > last + interval + LULL);
                if let Some(r) = self.refusals.as_mut().filter(|_| lull) {
                    r.lull = true;
                }
                self.changed = now;
                now
            }
        }
    }
}

impl AdaptiveRate {
    /// Starts at `per_second`; never goes below `floor`.
    pub fn starting_at(per_second: f64, floor: f64) -> Self {
        AdaptiveRate {
            state: Mutex::new(Adaptive {
                rate: per_second.max(floor),
                floor,
                start: per_second.max(floor),
                recent: std::collections::VecDeque::new(),
                changed: Instant::now(),
                last: None,
                limit: None,
                refusals: None,
                sent: std::collections::VecDeque::new(),
                sent_from: 0,
            }),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Adaptive> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current rate, requests a second.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// The service's limit for this client, as last measured.
    pub fn limit(&self) -> Option<f64> {
        self.lock().limit
    }

    /// Waits for this request's turn, after those already waiting; its answer is told with the
    /// ticket ([`Self::admitted`], [`Self::throttled`]).
    pub async fn acquire(&self) -> Ticket {
        let _turn = self.turn.lock().await;
        let slot = self.lock().next_slot(Instant::now());
        tokio::time::sleep_until(slot).await;
        let mut s = self.lock();
        s.last = Some(slot);
        s.forget(slot);
        let id = s.sent_from + s.sent.len() as u64;
        s.sent.push_back((slot, Sent::Unanswered));
        Ticket { id, at: slot }
    }

    /// The service accepted the request `ticket` let go.
    pub fn admitted(&self, ticket: Ticket) {
        let mut s = self.lock();
        let now = Instant::now();
        s.recent.push_back(now);
        s.admitted_lately(now);
        s.answered(ticket, Sent::Admitted);
    }

    /// The service refused the request `ticket` let go, for its rate.
    pub fn throttled(&self, ticket: Ticket) {
        let mut s = self.lock();
        s.answered(ticket, Sent::Refused);
        let sent = ticket.at;
        // Answered so late that what was sent after it is forgotten: old news.
        if !s.on_record_after(ticket) {
            return;
        }
        let rate = match s.refusals.as_ref() {
            // Sent before the last refusal counted: part of what was measured.
            Some(r) if ticket.id <= r.last.id => return,
            // What left since the first is still on record (it is forgotten once the measure
            // looks over, though a refusal answered late may still extend it).
            Some(r)
                if !r.lull
                    && sent.duration_since(r.last.at) <= MEASURE_MAX
                    && s.on_record_after(r.first) =>
            {
                let first = r.first;
                let admitted = s.admitted_between(first, ticket);
                if let Some(r) = s.refusals.as_mut() {
                    r.last = ticket;
                }
                let span = sent.duration_since(first.at);
                let enough =
                    span >= MEASURE_MIN || (span >= MEASURE_QUICK && admitted >= MEASURE_ENOUGH);
                if !enough {
                    return;
                }
                let limit = f64::from(admitted) / span.as_secs_f64();
                s.limit = Some(limit);
                limit * MARGIN
            }
            _ => {
                // A burst after a lull empties the bucket at any pace: not a sign the pace is
                // too fast.
                let after_lull = s.refusals.as_ref().is_some_and(|r| r.lull);
                s.refusals = Some(Refusals {
                    first: ticket,
                    last: ticket,
                    lull: false,
                });
                match (s.limit, after_lull) {
                    (Some(limit), _) => s.rate.min(limit * MARGIN),
                    (None, true) => s.rate,
                    (None, false) => s.rate * FIRST_CUT,
                }
            }
        };
        s.rate = rate.max(s.floor);
        s.changed = Instant::now();
    }
}

impl Adaptive {
    /// Whether every request let go after `ticket`'s is still on record in `sent`.
    fn on_record_after(&self, ticket: Ticket) -> bool {
        ticket.id + 1 >= self.sent_from
    }

    fn answered(&mut self, ticket: Ticket, answer: Sent) {
        if let Some(sent) = ticket
            .id
            .checked_sub(self.sent_from)
            .and_then(|i| self.sent.get_mut(usize::try_from(i).ok()?))
        {
            sent.1 = answer;
        }
    }

    /// Requests let go strictly between `first` and `last` that were not refused (those not
    /// answered yet included).
    fn admitted_between(&self, first: Ticket, last: Ticket) -> u32 {
        // Where a ticket's record is (or would be, forgotten or not yet let go) in `sent`.
        let index = |id: u64| {
            usize::try_from(id.saturating_sub(self.sent_from))
                .unwrap_or(usize::MAX)
                .min(self.sent.len())
        };
        let (from, to) = (index(first.id + 1), index(last.id));
        if from >= to {
            return 0;
        }
        let between = self.sent.range(from..to);
        u32::try_from(between.filter(|(_, s)| *s != Sent::Refused).count()).unwrap_or(u32::MAX)
    }

    /// Forgets the requests no measure can span any more: those let go before the first
    /// refusal of the measure in progress and over [`MEASURE_MAX`] before `now` (a refusal
    /// answered late may start the next measure).
    fn forget(&mut self, now: Instant) {
        let measuring = self
            .refusals
            .as_ref()
            .filter(|r| now.duration_since(r.last.at) <= MEASURE_MAX)
            .map(|r| r.first.id);
        while let Some(&(at, _)) = self.sent.front() {
            let spanned = measuring.is_some_and(|first| self.sent_from > first);
            if spanned || now.duration_since(at) <= MEASURE_MAX {
                break;
            }
            self.sent.pop_front();
            self.sent_from += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_whatever_the_concurrency() {
        let limit = std::sync::Arc::new(RateLimit::per_second(20.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let limit = std::sync::Arc::clone(&limit);
                tokio::spawn(async move {
                    limit.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.expect("task").duration_since(start));
        }
        times.sort();
        // Ten requests at 20 a second: the first at once, the last 450 ms later.
        assert_eq!(times.first(), Some(&Duration::ZERO));
        assert_eq!(times.last(), Some(&Duration::from_millis(450)));
    }

    /// `n` requests let go by `pace`, one after another.
    async fn let_go(pace: &AdaptiveRate, n: usize) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        for _ in 0..n {
            tickets.push(pace.acquire().await);
        }
        tickets
    }

    /// Two refusals 750 ms apart by when their requests left: the 29 requests that left
    /// between them passed, though none has been answered yet (their answers wait for the
    /// work; a refusal's does not). Counted by answers, the measure would be 0 a second. A
    /// refusal of a request that left before the last one counted changes nothing.
    #[tokio::test(start_paused = true)]
    async fn the_limit_is_measured_on_the_clock_of_departures() {
        let pace = AdaptiveRate::starting_at(40.0, 1.0);
        let tickets = let_go(&pace, 40).await;
        assert_eq!(
            tickets[30].at.duration_since(tickets[0].at),
            Duration::from_millis(750)
        );
        pace.throttled(tickets[0]);
        assert_eq!(pace.limit(), None);
        pace.throttled(tickets[30]);
        let limit = pace.limit().unwrap_or_default();
        assert!((limit - 29.0 / 0.75).abs() < 1e-9, "{limit}");
        let rate = pace.rate();
        pace.throttled(tickets[10]);
        assert_eq!((pace.limit(), pace.rate()), (Some(limit), rate));
    }

    /// A slow pace (one request every 2.5 s): the first refused request's record is forgotten
    /// (over 3 s old) by the time the next one is refused. Nothing left between them, so the
    /// measure is 0, and no index runs backwards.
    #[tokio::test(start_paused = true)]
    async fn a_refusal_right_after_a_forgotten_one_measures_nothing_between() {
        let pace = AdaptiveRate::starting_at(0.4, 0.1);
        let tickets = let_go(&pace, 3).await;
        pace.throttled(tickets[0]);
        pace.throttled(tickets[1]);
        assert_eq!(pace.limit(), Some(0.0));
        assert_eq!(pace.rate(), 0.1);
    }

    /// One step of a run of the pace: time passes and a request is let go, or one of the
    /// requests in flight is answered (admitted, refused, or given up on: a timeout).
    #[derive(Debug, Clone)]
    enum Step {
        Send(u64),
        Answer(proptest::sample::Index, u8),
    }

    fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        let step = prop_oneof![
            // Mostly quick, sometimes a pause longer than a measure spans.
            prop_oneof![4 => 0_u64..100, 1 => 0_u64..5000].prop_map(Step::Send),
            (any::<proptest::sample::Index>(), 0_u8..3).prop_map(|(i, a)| Step::Answer(i, a)),
        ];
        proptest::collection::vec(step, 1..400)
    }

    proptest::proptest! {
        /// Answers in any order, as late as they come, some never: the pace never panics,
        /// never goes under its floor, measures only finite, non-negative limits, and, unless
        /// a measure is in progress, keeps no record of a request let go over
        /// [`MEASURE_MAX`] before the last one.
        #[test]
        fn answers_in_any_order_keep_the_pace_sound(steps in steps()) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let pace = AdaptiveRate::starting_at(40.0, 1.0);
                let mut in_flight = Vec::new();
                for step in steps {
                    match step {
                        Step::Send(ms) => {
                            tokio::time::advance(Duration::from_millis(ms)).await;
                            let ticket = pace.acquire().await;
                            in_flight.push(ticket);
                            let s = pace.lock();
                            let measuring = s
                                .refusals
                                .as_ref()
                                .is_some_and(|r| ticket.at.duration_since(r.last.at) <= MEASURE_MAX);
                            let oldest = s.sent.front().map(|&(at, _)| ticket.at.duration_since(at));
                            assert!(
                                measuring || oldest.is_some_and(|age| age <= MEASURE_MAX),
                                "{oldest:?} kept with no measure in progress"
                            );
                        }
                        Step::Answer(i, answer) if !in_flight.is_empty() => {
                            let ticket = in_flight.remove(i.index(in_flight.len()));
                            match answer {
                                0 => pace.admitted(ticket),
                                1 => pace.throttled(ticket),
                                _ => {}
                            }
                        }
                        Step::Answer(..) => {}
                    }
                    let (rate, limit) = (pace.rate(), pace.limit());
                    assert!(rate.is_finite() && rate >= 1.0, "rate {rate}");
                    assert!(limit.is_none_or(|l| l.is_finite() && l >= 0.0), "{limit:?}");
                }
            });
        }
    }
}
