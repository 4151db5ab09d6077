//! A deterministic simulation of the backup pipeline: one seed gives one schedule, replayable
//! (`cargo xtask sim --seeds N`, and a fixed budget in `cargo test`).
//!
//! It runs the **real** writer ([`crate::backup::Backup::apply`]), the real reconcile ([`crate::reconcile::run`], which
//! is `seed-all`'s [`crate::seed::ensure`] plus the missed-delete check) and the real
//! point-in-time reader ([`crate::reader::BucketReader::state_at`]) against the in-memory models of S3 and
//! SSM ([`crate::store::memory`]), through the storage seam every release uses:
//!
//! * two parameters, one the other's path prefix (`/app/p`, `/app/p/x`: their listings
//!   overlap); random histories of puts, deletes, re-creations (within one second and
//!   across seconds), label moves, some longer than SSM's 100 kept versions;
//! * each change's event delivered late (milliseconds to an hour), reordered, duplicated or
//!   lost;
//! * deliveries run two at a time, interleaved at every await point the stores yield at (a
//!   seeded choice per call), and reconcile runs beside them at random points;
//! * calls slow (every other task runs first), throttled, or timed out after S3 made them
//!   (the write happened, its answer was lost), at random; a failed delivery comes again
//!   after SQS's visibility timeout (a crash between any two writes), up to the queue's
//!   receive count, then it is lost to the dead-letter queue;
//! * listing pages of a random size (1 to 1,000 entries), split anywhere;
//! * time moving on at every call (latency), so writes of one delivery span seconds or not;
//!   the writer's clock off S3's by up to 250 ms either way (see `docs/guarantees.md` for more).
//!
//! The invariant (`World::check`), after a final reconcile lap: for every key and every second
//! where something changed (and the seconds either side), what a restore reads for T,
//! through each read path (with the index, without it, knowing SSM's value), is SSM's truth
//! at T: absent, or the version with its value, type and LastModifiedDate. The only
//! exceptions are those `docs/guarantees.md` names:
//! * a second holding two changes of the key (their order inside the second is not in any
//!   event), up to the next change;
//! * a change no delivery recorded (every delivery lost, or made when SSM no longer had its
//!   version: a value can only be read while it exists), up to the next change;
//! * after a delete whose event was lost, up to the reconcile that found it gone.

mod schedule;
mod ssm;
mod world;

pub use schedule::{Change, Delivery, Kind, Rng, Schedule, NAMES};
pub use world::Failure;
use world::World;

/// Runs the schedule of `seed` and checks the invariant; the first failure, if any.
pub fn run(seed: u64) -> Result<(), Failure> {
    run_schedule(&Schedule::generate(seed))
}

/// Runs one schedule (generated, or shrunk from one).
pub fn run_schedule(schedule: &Schedule) -> Result<(), Failure> {
    futures::executor::block_on(World::new(schedule).run())
}

/// A smaller schedule that fails as `schedule` does: deliveries and reconciles taken out one
/// at a time while it still fails.
pub fn shrink(schedule: &Schedule) -> Schedule {
    let mut best = schedule.clone();
    loop {
        let mut smaller = None;
        for i in 0..best.deliveries.len() {
            let mut s = best.clone();
            s.deliveries.remove(i);
            if run_schedule(&s).is_err() {
                smaller = Some(s);
                break;
            }
        }
        if smaller.is_none() {
            for i in 0..best.reconciles.len() {
                let mut s = best.clone();
                s.reconciles.remove(i);
                if run_schedule(&s).is_err() {
                    smaller = Some(s);
                    break;
                }
            }
        }
        match smaller {
            Some(s) => best = s,
            None => return best,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed budget `cargo test` runs; `cargo xtask sim --seeds N` runs more.
    #[test]
    fn any_delivery_order_restores_the_truth() {
        let failures: Vec<Failure> = (0..SEEDS).filter_map(|seed| run(seed).err()).collect();
        if let Some(f) = failures.first() {
            panic!("{} of {SEEDS} schedules fail; {f}", failures.len());
        }
    }

    const SEEDS: u64 = 2_000;

    /// `SIM_SEED=n cargo test -p ssmbak-core one_seed -- --ignored`: one schedule, reported.
    #[test]
    #[ignore]
    fn one_seed() {
        let seed = std::env::var("SIM_SEED").map_or(0, |s| s.parse().unwrap_or(0));
        if let Err(f) = run(seed) {
            panic!("{f}");
        }
    }

    /// Seeds the simulation once failed on, each fixed since: kept so that they stay fixed.
    /// 901: two deliveries of one delete at once each wrote a marker, and the second read as
    /// a delete of its own (`backup::races::two_deliveries_of_one_delete_at_once_write_one_marker`).
    /// 3718 (one of 201 in the first million): a delete processed after a re-creation of the
    /// same second was not flagged live behind its marker, so a later lost delete was never
    /// found (`backup::races::a_lost_delete_of_a_key_re_created_in_the_second_of_its_delete_is_found`).
    /// 13612 (one of 61 in the second million): a delete whose delivery read the key before a
    /// re-creation's delivery recorded its value, then wrote its tombstone and marker, did not
    /// flag the key live behind the marker
    /// (`backup::races::a_delete_racing_the_re_creation_it_precedes_flags_the_key`).
    /// 16172 (one of 33 in the third million): the reconcile dated a delete it found within a
    /// second of it by the writer's clock, 100 ms behind, in the second before the delete
    /// (`backup::races::a_delete_found_within_a_second_is_dated_by_s3s_clock_not_this_machines`).
    /// 60980 (one of 21 in the fourth million): a label record of version 2 and a re-creation
    /// (version 1 again) of the same second tied, and the higher version, the deleted
    /// incarnation's, won (`pit::tests::a_re_creation_beats_a_label_record_of_its_second_by_ssm_date_not_version`).
    /// 75995 (one of 15 in the fifth million): a delete looked for versions written below its
    /// tombstone in one listing page, which ended right after the tombstone, so a re-creation
    /// recorded meanwhile went unseen and the key was not flagged live behind its marker.
    /// 108664 (one of 11 in the sixth million): a re-creation in the millisecond of its delete,
    /// placed from its tags (no SSM date), tied with the version before the delete, and the
    /// version number ordered them
    /// (`backup::races::a_re_creation_in_the_millisecond_of_its_delete_is_ordered_by_its_ssm_date`).
    /// 337014 (one of 9 in the seventh million): the model's fault, not the code's. SSM
    /// changes were made only between jobs, so a reconcile that ran past a re-creation still
    /// read the parameter gone and recorded a delete SSM never made; changes are now made at
    /// every SSM call ([`DueChanges`]).
    /// 768845 (one of 3 in the eighth million): a delete that raced a re-creation wrote its
    /// tombstone and failed before flagging the key; the tombstone named none of the versions
    /// below it, and an earlier delete processed next trusted it, looked no further and left
    /// the key live behind its marker unflagged
    /// (`backup::races::a_delete_after_a_failed_racing_delete_still_flags_the_key`).
    /// 881542 (one of 2 in the ninth million): a delivery that found no object and then
    /// listed the key while a label's delivery wrote its record knew that record from its
    /// tags alone, without its SSM date, and named it so; the undated record, within the
    /// clocks' skew of a re-creation, was taken for the new version's
    /// (`backup::races::an_undated_record_of_the_deleted_incarnation_is_read_not_guessed`).
    /// (The model of the writer this simulation replaced kept seeds 54, 166, 628, 2700 and
    /// 4005; its schedules are not this generator's, and each bug they found has a named test
    /// in `backup::decide` or `backup::races`.)
    #[test]
    fn seeds_that_failed_once() {
        for seed in [
            901, 3718, 13612, 16172, 60980, 75995, 108664, 337014, 768845, 881542,
        ] {
            if let Err(f) = run(seed) {
                panic!("{f}");
            }
        }
    }
}
