//! The targets, checked against what this run measured and printed as a table.

/// One target and whether this run met it.
pub(crate) struct Check {
    target: String,
    measured: String,
    /// `None`: reported beside a target, not one.
    met: Option<bool>,
}

/// What the run measured that the targets are about.
#[derive(Default)]
pub(crate) struct Targets {
    checks: Vec<Check>,
    /// (parameters, requests per parameter) of ours, end of history, raw.
    requests_per_param: Vec<(usize, f64)>,
}

impl Targets {
    fn check(&mut self, target: impl Into<String>, measured: impl Into<String>, met: bool) {
        self.checks.push(Check {
            target: target.into(),
            measured: measured.into(),
            met: Some(met),
        });
    }

    fn report(&mut self, what: impl Into<String>, measured: impl Into<String>) {
        self.checks.push(Check {
            target: what.into(),
            measured: measured.into(),
            met: None,
        });
    }

    /// Preview at the end of history on raw moto: requests beyond the listing, and the
    /// distance to the emulator's ceiling.
    pub(crate) fn preview_raw(
        &mut self,
        n: usize,
        object_reads: f64,
        requests: f64,
        ours: f64,
        ceiling: f64,
    ) {
        self.requests_per_param.push((n, requests));
        self.check(
            format!("{n} parameters, end: <= 1.2 S3 reads per parameter beyond the listing"),
            format!("{object_reads:.2}"),
            object_reads <= 1.2,
        );
        self.check(
            format!("{n} parameters, end, raw moto: within 1.5x of the emulator's ceiling"),
            format!("{:.2}x ({ours:.2} s vs {ceiling:.2} s)", ours / ceiling),
            ours <= 1.5 * ceiling,
        );
    }

    /// Preview at the end of history with the modelled round trip, beside the original.
    pub(crate) fn preview_delayed(
        &mut self,
        n: usize,
        delay_ms: u64,
        original: f64,
        ours: f64,
        ceiling: f64,
    ) {
        self.check(
            format!("{n} parameters, end, {delay_ms} ms: >= 25x faster than the original"),
            format!(
                "{:.1}x (the emulator's ceiling allows at most {:.1}x)",
                original / ours,
                original / ceiling
            ),
            original / ours >= 25.0,
        );
    }

    /// #15 part 4: a preview of the standard tier's limit, 10,000 parameters, in 64 MB.
    pub(crate) fn memory(&mut self, n: usize, delay_ms: u64, peak_rss_mb: Option<f64>) {
        if n < 10_000 {
            return;
        }
        let rss = peak_rss_mb.unwrap_or(f64::INFINITY);
        self.check(
            format!("{n} parameters, end, {delay_ms} ms: peak RSS <= 64 MB"),
            format!("{rss:.1} MB"),
            rss <= 64.0,
        );
    }

    /// #15 part 2: preview three versions back in our layout, the versions after the point
    /// written more than the late-writes window after it (changes minutes apart), counted as
    /// the issue counts its 5.2 requests per parameter before (every request: listing, object
    /// reads and SSM's).
    pub(crate) fn past(&mut self, n: usize, object_reads: f64, ssm: f64, requests: f64) {
        self.check(
            format!("{n} parameters, three versions back, our layout: <= 2 requests per parameter (all of them)"),
            format!("{requests:.2} (S3 object reads {object_reads:.2}, SSM {ssm:.2})"),
            requests <= 2.0,
        );
    }

    /// The same with every later version within the window of the point (changes seconds
    /// apart): the newest version is read to place them. Reported beside the target.
    pub(crate) fn past_within_the_window(&mut self, n: usize, object_reads: f64, requests: f64) {
        self.report(
            format!("{n} parameters, three versions back, all within the late-writes window"),
            format!("{requests:.2} (S3 object reads {object_reads:.2})"),
        );
    }

    /// #15 part 1: "undo the last hour" of 1,000 parameters with 1 in 10 changed since, our
    /// layout. The issue sets it at 1,000: on a smaller tree each part of the plan (10, 20, 40,
    /// ... keys) costs one `DescribeParameters` for its changed keys however few they are, so
    /// 100 parameters with 10 changed make 0.14 (10 `GetParameters`, 4 `DescribeParameters`),
    /// shown in the preview table.
    pub(crate) fn ssm_reads(&mut self, n: usize, ssm_requests: f64) {
        if n < 1000 {
            return;
        }
        self.check(
            format!("{n} parameters, end, our layout, 1 in 10 changed: <= 0.12 SSM requests per parameter"),
            format!("{ssm_requests:.3}"),
            ssm_requests <= 0.12,
        );
    }

    pub(crate) fn lambda(&mut self, delay_ms: u64, peak_rss_mb: Option<f64>, start_up_ms: f64) {
        let rss = peak_rss_mb.unwrap_or(f64::INFINITY);
        self.check(
            format!("Lambda, {delay_ms} ms: peak RSS < 40 MB"),
            format!("{rss:.1} MB"),
            rss < 40.0,
        );
        self.check(
            format!("Lambda, {delay_ms} ms: start-up < 50 ms"),
            format!("{start_up_ms:.1} ms"),
            start_up_ms < 50.0,
        );
    }

    /// A restore of `n` changed parameters against a write limit of `tps`: SSM's floor is
    /// `n / tps` seconds.
    pub(crate) fn restore(&mut self, n: usize, seconds: f64, tps: f64) {
        let floor = n as f64 / tps;
        self.check(
            format!("restore of {n} changed parameters at {tps} writes/s: within 1.15x of the {floor:.0} s floor"),
            format!("{:.2}x ({seconds:.1} s)", seconds / floor),
            seconds <= 1.15 * floor,
        );
    }

    pub(crate) fn zip(&mut self, bytes: u64) {
        let mb = bytes as f64 / 1e6;
        self.check("Lambda zip < 8 MB", format!("{mb:.2} MB"), mb < 8.0);
    }

    /// Prints the table; the flatness of requests per parameter across sizes is checked here.
    pub(crate) fn print(mut self) {
        if self.requests_per_param.len() > 1 {
            let rates: Vec<f64> = self.requests_per_param.iter().map(|(_, r)| *r).collect();
            let (lo, hi) = rates.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), r| {
                (lo.min(*r), hi.max(*r))
            });
            let sizes: Vec<String> = self
                .requests_per_param
                .iter()
                .map(|(n, r)| format!("{n}: {r:.2}"))
                .collect();
            self.check(
                "requests per parameter flat across sizes (within 10%)",
                sizes.join(", "),
                hi <= lo * 1.1,
            );
        }
        println!("### Targets\n\n| target | measured | met |\n|---|---|---|");
        for c in &self.checks {
            let met = match c.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "reported",
            };
            println!("| {} | {} | {met} |", c.target, c.measured);
        }
        println!();
    }
}
