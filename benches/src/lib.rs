//! Benchmark data generators. Generated data is written to temporary folders, never committed.

use std::path::Path;

/// Write a CSV lake of `partitions` Hive partitions (`dt=YYYY-MM-DD/hr=HH`) holding
/// `files_per_partition` small files each, under `root/events/`. Deterministic.
pub fn write_partitioned_csv_lake(
    root: &Path,
    partitions: usize,
    files_per_partition: usize,
) -> std::io::Result<()> {
    for p in 0..partitions {
        let day = p / 24;
        let hour = p % 24;
        let month = 1 + day / 28;
        let dom = 1 + day % 28;
        let dir = root.join(format!("events/dt=2024-{month:02}-{dom:02}/hr={hour:02}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..files_per_partition {
            let mut body = String::from("id,user,amount,ts\n");
            for r in 0..20 {
                let id = (p * files_per_partition + f) * 20 + r;
                body.push_str(&format!(
                    "{id},user{},{}.{:02},2024-{month:02}-{dom:02} {hour:02}:{:02}:00\n",
                    id % 97,
                    id % 1000,
                    id % 100,
                    r
                ));
            }
            std::fs::write(dir.join(format!("part-{f:05}.csv")), body)?;
        }
    }
    Ok(())
}

/// Write `partitions` tiny Hive partitions `events/dt=YYYY-MM-DD/hr=HH/part-0.csv` (24 hours a
/// day, consecutive days from 2000-01-01), 5 rows each. Deterministic.
pub fn write_many_partitions(root: &Path, partitions: usize) -> std::io::Result<()> {
    let start = chrono_free_date(2000, 1, 1);
    for p in 0..partitions {
        let (y, m, d) = civil_from_days(start + (p / 24) as i64);
        let hour = p % 24;
        let dir = root.join(format!("events/dt={y:04}-{m:02}-{d:02}/hr={hour:02}"));
        std::fs::create_dir_all(&dir)?;
        let mut body = String::from("id,amount\n");
        for r in 0..5 {
            body.push_str(&format!("{},{}.5\n", p * 5 + r, r));
        }
        std::fs::write(dir.join("part-0.csv"), body)?;
    }
    Ok(())
}

/// The date of partition number `p` written by [`write_many_partitions`], as `YYYY-MM-DD`.
pub fn partition_date(p: usize) -> String {
    let (y, m, d) = civil_from_days(chrono_free_date(2000, 1, 1) + (p / 24) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

// Days since 1970-01-01 <-> civil dates (Howard Hinnant's algorithms), to keep this crate free
// of a date library.
fn chrono_free_date(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(civil_from_days(chrono_free_date(2000, 1, 1)), (2000, 1, 1));
        assert_eq!(
            civil_from_days(chrono_free_date(2024, 2, 29)),
            (2024, 2, 29)
        );
        assert_eq!(partition_date(24 * 31), "2000-02-01");
    }
}
