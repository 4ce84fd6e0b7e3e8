//! Athena-style pricing of bytes scanned.

use serde::{Deserialize, Serialize};

pub const MIB: u64 = 1 << 20;
pub const TIB: u64 = 1 << 40;

/// Billed bytes = max(minimum, bytes rounded up to `rounding`); cost = billed / TiB x price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BillingPolicy {
    pub usd_per_tib: f64,
    pub minimum_bytes: u64,
    pub rounding_bytes: u64,
}

impl Default for BillingPolicy {
    /// Athena's: $5.00 per TB, 10 MB minimum, rounded up to the MB (binary units).
    fn default() -> Self {
        Self {
            usd_per_tib: 5.0,
            minimum_bytes: 10 * MIB,
            rounding_bytes: MIB,
        }
    }
}

impl BillingPolicy {
    /// Bytes billed for a statement that reads data (queries, EXPLAIN ANALYZE).
    pub fn billed_bytes(&self, scanned: u64) -> u64 {
        let r = self.rounding_bytes.max(1);
        scanned
            .div_ceil(r)
            .saturating_mul(r)
            .max(self.minimum_bytes)
    }

    pub fn cost_usd(&self, billed_bytes: u64) -> f64 {
        billed_bytes as f64 / TIB as f64 * self.usd_per_tib
    }
}

/// `4.2 MB`-style sizes in binary units.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_rounding_and_minimum() {
        let p = BillingPolicy::default();
        assert_eq!(p.billed_bytes(0), 10 * MIB);
        assert_eq!(p.billed_bytes(1), 10 * MIB);
        assert_eq!(p.billed_bytes(10 * MIB + 1), 11 * MIB);
        assert_eq!(p.billed_bytes(TIB), TIB);
        assert!((p.cost_usd(TIB) - 5.0).abs() < 1e-12);
        assert!((p.cost_usd(10 * MIB) - 10.0 / 1_048_576.0 * 5.0).abs() < 1e-15);
        assert_eq!(human_bytes(4_404_019), "4.2 MB");
        assert_eq!(human_bytes(512), "512 B");
    }
}
