//! SSM's request limits, as the benchmark's proxy enforces them: a request over its limit is
//! answered `ThrottlingException`, as SSM answers it, so a tool that fires requests faster
//! than SSM would let it cannot look faster than it would be.

use std::sync::Mutex;
use std::time::Instant;

use ssmbak_tests::fault_proxy::{Fault, FaultProxy};

/// SSM's default ("standard") throughput: 40 transactions per second per account and Region
/// for GetParameter, GetParameters and GetParametersByPath together ("Increasing or resetting
/// Parameter Store throughput", SSM User Guide), and PutParameter falls under the same setting
/// ("Parameter Store throughput", PutParameter API reference).
pub(crate) const PUT_TPS: f64 = 40.0;
pub(crate) const READ_TPS: f64 = 40.0;

/// The reads that share [`READ_TPS`].
const SHARED_READS: [&str; 3] = [
    "AmazonSSM.GetParameter",
    "AmazonSSM.GetParameters",
    "AmazonSSM.GetParametersByPath",
];

/// A token bucket: `rate` per second, bursts up to `rate`.
struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: f64) -> Self {
        RateLimit {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// True when a request may pass now.
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Throttles PutParameter over [`PUT_TPS`] and the shared reads over [`READ_TPS`].
pub(crate) fn model_ssm_limits(proxy: &FaultProxy) {
    let writes = Mutex::new(RateLimit::new(PUT_TPS));
    let reads = Mutex::new(RateLimit::new(READ_TPS));
    proxy.inject(usize::MAX, Fault::Throttle, move |seen| {
        let target = seen.target.as_deref().unwrap_or_default();
        if target == "AmazonSSM.PutParameter" {
            !writes.lock().expect("lock").admit()
        } else if SHARED_READS.contains(&target) {
            !reads.lock().expect("lock").admit()
        } else {
            false
        }
    });
}
