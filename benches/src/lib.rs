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
