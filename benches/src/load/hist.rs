//! A small log-linear latency histogram (about 1.5% resolution), mergeable across processes.
//!
//! Values below 128 are exact; above, each power of two is cut into 64 buckets. Sparse
//! `(bucket, count)` pairs travel between the load tool's processes as JSON.

use serde::{Deserialize, Serialize};

const SUB: u64 = 64;
const BUCKETS: usize = (64 * SUB) as usize;

/// Counts of values (microseconds in this tool) with their exact maximum.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// The wire form of a [`Histogram`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SparseHistogram {
    /// Non-empty buckets as `(bucket index, count)`.
    pub buckets: Vec<(u32, u64)>,
    /// The largest recorded value.
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros());
    let shift = exp - 6;
    let top = v >> shift;
    (shift * SUB + top) as usize
}

fn bucket_mid(b: usize) -> u64 {
    let b = b as u64;
    if b < 2 * SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let top = b % SUB + SUB;
    (top << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        let b = bucket_of(v).min(BUCKETS - 1);
        self.counts[b] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest recorded value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), to the bucket's resolution; the exact maximum for
    /// `q >= 1`; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        if q >= 1.0 {
            return self.max;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_mid(b).min(self.max);
            }
        }
        self.max
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The wire form.
    pub fn to_sparse(&self) -> SparseHistogram {
        SparseHistogram {
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(b, c)| (b as u32, *c))
                .collect(),
            max: self.max,
        }
    }

    /// Back from the wire form (out-of-range buckets are ignored).
    pub fn from_sparse(s: &SparseHistogram) -> Self {
        let mut h = Self::new();
        for &(b, c) in &s.buckets {
            if let Some(slot) = h.counts.get_mut(b as usize) {
                *slot += c;
                h.total += c;
            }
        }
        h.max = s.max;
        h
    }
}

/// The value at quantile `q` of an unsorted sample (sorts it); 0 when empty.
pub fn quantile_of(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
    }

    #[test]
    fn large_values_are_within_two_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        for (q, want) in [(0.5, 500_000.0), (0.99, 990_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q {q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 1_000_000);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for v in 0..200_000u64 {
            let b = bucket_of(v);
            assert!(b >= last);
            last = b;
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn sparse_round_trip_and_merge() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(5);
        b.record(5_000);
        let mut m = Histogram::from_sparse(&a.to_sparse());
        m.merge(&Histogram::from_sparse(&b.to_sparse()));
        assert_eq!(m.len(), 2);
        assert_eq!(m.max(), 5_000);
        assert_eq!(m.quantile(0.5), 5);
    }

    #[test]
    fn sample_quantile() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(quantile_of(&mut v, 0.5), 3);
        assert_eq!(quantile_of(&mut v, 0.99), 5);
        assert_eq!(quantile_of(&mut [], 0.5), 0);
    }
}
