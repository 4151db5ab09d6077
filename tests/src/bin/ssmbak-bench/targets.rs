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
        // Issue 28 part 5: the original's format, through the modelled round trip, within 0.9
        // of the emulator's ceiling (the time moto takes to serve the same requests).
        self.check(
            format!("{n} parameters, end, original's format, {delay_ms} ms: within 0.9 of the emulator's ceiling"),
            format!("{:.2} ({ours:.2} s vs {ceiling:.2} s)", ceiling / ours),
            ceiling / ours >= 0.9,
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

    /// Issue 28 part 5: a restore point anywhere, our layout (with its index), costs at most
    /// 1.05 S3 object reads per parameter whose SSM state differs, plus the listing pages.
    /// `spacing` says how far apart the tree's changes were (the index makes it not matter);
    /// `differing` is the share of parameters whose state differs at the point.
    pub(crate) fn index(
        &mut self,
        n: usize,
        point: &str,
        object_reads: f64,
        differing: f64,
        requests: f64,
    ) {
        let per_differing = object_reads / differing;
        self.check(
            format!("{n} parameters, {point}, our layout: <= 1.05 S3 object reads per differing parameter"),
            format!("{per_differing:.2} ({requests:.2} requests per parameter in all)"),
            per_differing <= 1.05,
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
            format!("{n} parameters, end, our layout, 1 in 10 changed: <= 0.12 SSM value and metadata requests per parameter"),
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
