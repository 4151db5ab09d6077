//! A value never shares a second with the delete marker before it: a value written after a
//! marker this process wrote waits for S3's next second (see "A value never shares a second
//! with the marker before it" in docs/format.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Backup;

impl Backup {
    pub(super) fn marker_written(&self, key: &str) {
        let now = self.objects.now();
        let mut markers = self.markers.lock().unwrap_or_else(|e| e.into_inner());
        // Only the last few seconds matter.
        markers.retain(|_, at| now.duration_since(*at).unwrap_or_default() < MARKER_MEMORY);
        markers.insert(key.to_owned(), now);
    }

    /// Sleeps until a value written now cannot share S3's LastModified second with the delete
    /// marker this process last wrote for `key`.
    pub(super) async fn wait_for_marker_second(&self, key: &str) {
        let marker = self
            .markers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied();
        if let Some(marker) = marker {
            let until = value_not_before(marker);
            if until > self.objects.now() {
                self.objects.sleep_until(until).await;
            }
        }
    }
}

/// How far S3's clock may be from ours: Lambda and S3 both keep time with the Amazon Time Sync
/// Service, within milliseconds of each other; a quarter second leaves a wide margin.
const CLOCK_MARGIN: Duration = Duration::from_millis(250);

/// How long a written delete marker is remembered: longer than any wait it can cause.
const MARKER_MEMORY: Duration = Duration::from_secs(5);

/// The earliest time at which a value version can be written after a delete marker written
/// (by our clock) at `marker`, so that its LastModified second is later than the marker's even
/// with either clock off by `CLOCK_MARGIN`.
pub fn value_not_before(marker: SystemTime) -> SystemTime {
    let latest_marker_second = (marker + CLOCK_MARGIN)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(latest_marker_second + 1) + CLOCK_MARGIN
}

#[cfg(test)]
mod tests {
    use super::{value_not_before, CLOCK_MARGIN};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_value_after_a_marker_waits_for_a_later_second_on_any_clock() {
        // Marker written at every point of a second, S3's clock ahead or behind by up to the
        // margin: the value's S3 second is always later than the marker's.
        let skews = [-250_i64, -100, 0, 100, 250];
        for marker_ms in (1_700_000_000_000_i64..1_700_000_002_000).step_by(7) {
            let marker = UNIX_EPOCH + Duration::from_millis(marker_ms as u64);
            let value = value_not_before(marker);
            let value_ms = value
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            assert!(value_ms - marker_ms <= 1000 + 2 * CLOCK_MARGIN.as_millis() as i64);
            for a in skews {
                for b in skews {
                    assert!(
                        (value_ms + b).div_euclid(1000) > (marker_ms + a).div_euclid(1000),
                        "marker {marker_ms} skew {a}, value {value_ms} skew {b}"
                    );
                }
            }
        }
    }
}
