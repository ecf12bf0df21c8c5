//! The rate a broker measures per quota entity and the throttle time it answers with: Kafka's
//! sampled rate (`quota.window.num` samples of `quota.window.size.seconds`) and its rule
//! `throttle = (rate - quota) / quota * window`, so a client that took twice its quota over
//! the window waits as long as the window again.

use std::collections::VecDeque;

/// Kafka's defaults: 11 samples of one second.
pub const SAMPLES: usize = 11;
pub const SAMPLE_MS: u64 = 1000;

/// Amounts recorded in consecutive samples of fixed length; old samples fall out.
#[derive(Debug, Clone)]
pub struct SampledRate {
    /// (sample start in ms, amount recorded in it), oldest first.
    samples: VecDeque<(u64, f64)>,
    sample_ms: u64,
    max_samples: usize,
}

impl Default for SampledRate {
    fn default() -> Self {
        Self::new(SAMPLES, SAMPLE_MS)
    }
}

impl SampledRate {
    pub fn new(max_samples: usize, sample_ms: u64) -> Self {
        Self {
            samples: VecDeque::new(),
            sample_ms: sample_ms.max(1),
            max_samples: max_samples.max(2),
        }
    }

    /// Adds `amount` at `now_ms` (a monotonic clock).
    pub fn record(&mut self, now_ms: u64, amount: f64) {
        self.expire(now_ms);
        match self.samples.back_mut() {
            Some((start, total)) if now_ms < *start + self.sample_ms => *total += amount,
            _ => {
                let start = now_ms - now_ms % self.sample_ms;
                self.samples.push_back((start, amount));
                while self.samples.len() > self.max_samples {
                    self.samples.pop_front();
                }
            }
        }
    }

    /// Units per second over the window: the samples' total over the time they span, never
    /// less than all but one sample (so a burst in a fresh window is not read as a huge rate).
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        self.expire(now_ms);
        let total: f64 = self.samples.iter().map(|(_, amount)| amount).sum();
        total / (self.window_ms(now_ms) as f64 / 1000.0)
    }

    /// How long a client over `quota` (units per second) must wait for its rate to come back
    /// to the quota; 0 when within it.
    pub fn throttle_ms(&mut self, now_ms: u64, quota: f64) -> u64 {
        if quota <= 0.0 {
            return 0;
        }
        let rate = self.rate(now_ms);
        if rate <= quota {
            return 0;
        }
        let window = self.window_ms(now_ms) as f64;
        ((rate - quota) / quota * window).round() as u64
    }

    /// Whether nothing recorded is left in the window.
    pub fn is_idle(&mut self, now_ms: u64) -> bool {
        self.expire(now_ms);
        self.samples.is_empty()
    }

    fn window_ms(&self, now_ms: u64) -> u64 {
        let floor = (self.max_samples as u64 - 1) * self.sample_ms;
        let spanned = self.samples.front().map_or(0, |(start, _)| now_ms.saturating_sub(*start));
        spanned.max(floor).max(1)
    }

    fn expire(&mut self, now_ms: u64) {
        let horizon = self.max_samples as u64 * self.sample_ms;
        while self.samples.front().is_some_and(|(start, _)| start + horizon <= now_ms) {
            self.samples.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_quota_nothing_is_throttled() {
        let mut rate = SampledRate::default();
        for second in 0..20 {
            rate.record(second * 1000, 900.0);
        }
        assert!((rate.rate(19_500) - 900.0 * 11.0 / 10.5).abs() < 1.0);
        assert_eq!(rate.throttle_ms(19_500, 1000.0), 0);
    }

    #[test]
    fn twice_the_quota_waits_a_window_and_old_samples_fall_out() {
        let mut rate = SampledRate::default();
        // 20,000 bytes at once against 1,000 B/s: over the 10 s floor that is 2,000 B/s.
        rate.record(100_000, 20_000.0);
        assert_eq!(rate.rate(100_000), 2000.0);
        assert_eq!(rate.throttle_ms(100_000, 1000.0), 10_000, "(2000 - 1000) / 1000 * 10 s");
        assert_eq!(rate.throttle_ms(112_000, 1000.0), 0, "the burst left the window");
        assert!(rate.is_idle(112_000));
        assert_eq!(rate.throttle_ms(100_000, 0.0), 0, "no quota, no throttle");
    }
}
