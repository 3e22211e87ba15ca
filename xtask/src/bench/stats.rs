//! The statistics the benchmark reports: median, min and max of a series, and the ratio of two
//! launchers computed pair by pair (run i of A over run i of B, which ran right after it), so that a
//! burst of noise slows both sides of a pair rather than one launcher's whole series.

use serde_json::{Value, json};

/// Median, min and max of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty series. The median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 0 {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    pub fn to_json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// The median of `a[i] / b[i]` over the runs both have (pairs with a zero denominator are skipped).
pub fn pairwise_ratio(a: &[f64], b: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, b)| **b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    Summary::of(&ratios).map(|s| s.median)
}

/// The median of `a[i] - b[i]` over the runs both have: what A adds to B, pair by pair.
pub fn pairwise_difference(a: &[f64], b: &[f64]) -> Option<f64> {
    let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    Summary::of(&differences).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_of_odd_and_even_series() {
        assert_eq!(
            Summary::of(&[3.0, 1.0, 2.0]),
            Some(Summary {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        assert_eq!(Summary::of(&[7.0]).unwrap().median, 7.0);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratio_is_taken_pair_by_pair() {
        // A is twice B in most pairs; noise slowed A's second run (20) and B's third (10). The median
        // of the pairs is 2, while the ratio of the medians (20 / 1) would blame A for the noise.
        let a = [2.0, 20.0, 20.0];
        let b = [1.0, 1.0, 10.0];
        assert_eq!(pairwise_ratio(&a, &b), Some(2.0));
        assert_eq!(pairwise_ratio(&[1.0], &[0.0]), None);
        assert_eq!(
            pairwise_ratio(&[1.0, 3.0], &[1.0]),
            Some(1.0),
            "extra runs are ignored"
        );
    }

    #[test]
    fn difference_is_taken_pair_by_pair() {
        assert_eq!(pairwise_difference(&[1.5, 9.0, 2.5], &[1.0, 1.0, 2.0]), Some(0.5));
        assert_eq!(pairwise_difference(&[], &[1.0]), None);
    }
}
