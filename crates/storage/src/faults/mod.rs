//! Fault injection, for testing only: a storage decorator that makes chosen calls fail, slow
//! down, or apply and then report failure ("applied but the reply was lost").
//!
//! Real engines fail like this: a Postgres connection drops after COMMIT but before the reply,
//! an S3 PUT succeeds and the response times out. Callers must survive all three outcomes
//! without losing or doubling anything they acknowledged, and this module lets the conformance
//! suite and the broker's end-to-end tests prove it on every engine.
//!
//! A [`Faults`] plan is parsed from a compact spec ([`Faults::parse`]) such as
//! `append:error=0.1,append:lost=0.05,read:delay_ms=20,seed=7`, and [`with_faults`] wraps a
//! [`Storage`] with it. Decisions come from a seeded generator, so one caller making calls in
//! one order sees the same faults on every run. Every injected fault is counted
//! ([`Faults::counts`]), so a test can assert that faults really happened instead of passing
//! because none did.
//!
//! Injected errors are always [`StorageError::Unavailable`], the one error that means "may be
//! retried": what a real outage looks like to callers.

mod spec;
mod stores;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use spec::SpecError;

use crate::{Result, Storage, StorageError};

macro_rules! operations {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A storage call faults can be injected into, named after its trait method (state
        /// store methods get a `state_` prefix, as `delete` alone would be ambiguous).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($variant),*
        }

        impl Operation {
            /// Every operation, in the order of the traits.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),*];

            /// The name a spec uses for it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name),*
                }
            }
        }
    };
}

operations! {
    CreateTopic => "create_topic",
    DeleteTopic => "delete_topic",
    Topics => "topics",
    Topic => "topic",
    TopicById => "topic_by_id",
    CreatePartitions => "create_partitions",
    AlterConfigs => "alter_configs",
    Append => "append",
    Read => "read",
    Watermarks => "watermarks",
    OffsetForTime => "offset_for_time",
    MaxTimestamp => "max_timestamp",
    AbortedTransactions => "aborted_transactions",
    BatchSizes => "batch_sizes",
    Producers => "producers",
    DeleteRecords => "delete_records",
    RemoveRecords => "remove_records",
    StateGet => "state_get",
    StatePut => "state_put",
    StateDelete => "state_delete",
    StateList => "state_list",
    CommitOffsets => "commit_offsets",
    CommittedOffsets => "committed_offsets",
    DeleteOffsets => "delete_offsets",
    OffsetGroups => "offset_groups",
}

impl Operation {
    /// The operation a spec names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|operation| operation.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What may happen to calls of one operation. Probabilities are in `[0, 1]`, and
/// `error + lost` is at most 1: one draw per call picks at most one of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Chance that the call fails before reaching the engine (nothing applied).
    pub error: f64,
    /// Chance that the call reaches the engine and then fails (applied, reply lost).
    pub lost: f64,
    /// Latency added before the call.
    pub delay: Duration,
    /// Chance that `delay` is added (1 unless the spec says otherwise).
    pub delay_chance: f64,
}

impl Default for Rule {
    /// No faults; a delay, once set, applies to every call.
    fn default() -> Self {
        Self { error: 0.0, lost: 0.0, delay: Duration::ZERO, delay_chance: 1.0 }
    }
}

/// What the plan decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    ErrorBefore,
    LostReply,
}

/// How many faults a plan injected, of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Calls failed before reaching the engine.
    pub errors: u64,
    /// Calls applied whose result was replaced by an error.
    pub lost: u64,
    /// Calls slowed down.
    pub delayed: u64,
    /// Calls that went through the plan (faulted or not), of operations with a rule.
    pub calls: u64,
}

impl FaultCounts {
    /// Errors and lost replies: the faults a caller has to recover from.
    pub fn failures(&self) -> u64 {
        self.errors + self.lost
    }
}

/// A fault plan: rules per operation, a seeded generator and counters. Cheap to clone; clones
/// share the generator and the counters, so a test keeps a clone to read what was injected.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

struct Shared {
    rules: Vec<Option<Rule>>,
    seed: u64,
    draws: AtomicU64,
    counters: Vec<Counters>,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    lost: AtomicU64,
    delayed: AtomicU64,
}

impl Faults {
    /// A plan with the given rules and seed.
    pub fn new(rules: impl IntoIterator<Item = (Operation, Rule)>, seed: u64) -> Self {
        let mut by_operation = vec![None; Operation::ALL.len()];
        for (operation, rule) in rules {
            by_operation[operation.index()] = Some(rule);
        }
        let counters = Operation::ALL.iter().map(|_| Counters::default()).collect();
        Self {
            shared: Arc::new(Shared {
                rules: by_operation,
                seed,
                draws: AtomicU64::new(0),
                counters,
            }),
        }
    }

    /// Parses a spec: comma-separated `OPERATION:KIND=VALUE` items and an optional `seed=N`.
    /// Kinds: `error` and `lost` (chances in `[0, 1]`), `delay_ms` (milliseconds) and
    /// `delay` (the chance of that delay, default 1). `*` as the operation sets the kind for
    /// every operation; items apply in order, so a later one overrides an earlier one. The seed
    /// defaults to 0. Example: `append:error=0.1,append:lost=0.05,read:delay_ms=20,seed=7`.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let parsed = spec::parse(spec)?;
        Ok(Self::new(parsed.rules, parsed.seed))
    }

    /// The rule for `operation`, if the plan has one.
    pub fn rule(&self, operation: Operation) -> Option<Rule> {
        self.shared.rules[operation.index()]
    }

    /// Faults injected so far, over every operation.
    pub fn counts(&self) -> FaultCounts {
        Operation::ALL.iter().fold(FaultCounts::default(), |total, &operation| {
            let one = self.counts_for(operation);
            FaultCounts {
                errors: total.errors + one.errors,
                lost: total.lost + one.lost,
                delayed: total.delayed + one.delayed,
                calls: total.calls + one.calls,
            }
        })
    }

    /// Faults injected so far into one operation.
    pub fn counts_for(&self, operation: Operation) -> FaultCounts {
        let counters = &self.shared.counters[operation.index()];
        FaultCounts {
            errors: counters.errors.load(Ordering::Relaxed),
            lost: counters.lost.load(Ordering::Relaxed),
            delayed: counters.delayed.load(Ordering::Relaxed),
            calls: counters.calls.load(Ordering::Relaxed),
        }
    }

    /// Runs `call` under the plan's rule for `operation`: maybe delayed, maybe not run at all,
    /// maybe run with its result replaced by an error.
    async fn run<T>(
        &self,
        operation: Operation,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let outcome = self.plan_call(operation).await;
        self.apply(operation, outcome, call).await
    }

    /// The first half of [`Faults::run`], for a caller that must know the outcome before it
    /// starts the call (an append queued now, awaited later): counts the call, delays it if the
    /// rule says so, and decides its outcome (`Pass` where no rule applies).
    async fn plan_call(&self, operation: Operation) -> Outcome {
        let Some(rule) = self.rule(operation) else { return Outcome::Pass };
        let counters = &self.shared.counters[operation.index()];
        counters.calls.fetch_add(1, Ordering::Relaxed);
        if rule.delay > Duration::ZERO && self.draw() < rule.delay_chance {
            counters.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(rule.delay).await;
        }
        decide(&rule, self.draw())
    }

    /// The second half of [`Faults::run`]: runs `call` as `outcome` says (not at all for an
    /// error before it).
    async fn apply<T>(
        &self,
        operation: Operation,
        outcome: Outcome,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let counters = &self.shared.counters[operation.index()];
        match outcome {
            Outcome::Pass => call.await,
            Outcome::ErrorBefore => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(operation = operation.name(), "injected fault: error");
                Err(StorageError::Unavailable(format!("injected: {} failed", operation.name())))
            }
            Outcome::LostReply => {
                // The engine's own outcome, success or failure, is what the caller never sees.
                let _ = call.await;
                counters.lost.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(operation = operation.name(), "injected fault: lost reply");
                Err(StorageError::Unavailable(format!(
                    "injected: {} applied but the reply was lost",
                    operation.name()
                )))
            }
        }
    }

    /// The next number in `[0, 1)` of the seeded sequence (splitmix64: one atomic add per draw,
    /// no lock, and the same sequence for the same seed).
    fn draw(&self) -> f64 {
        let index = self.shared.draws.fetch_add(1, Ordering::Relaxed);
        let mut z = self.shared.seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits make an exact f64 in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One draw decides the call: below `error` it fails before, below `error + lost` its reply is
/// lost, otherwise it passes.
fn decide(rule: &Rule, draw: f64) -> Outcome {
    if draw < rule.error {
        Outcome::ErrorBefore
    } else if draw < rule.error + rule.lost {
        Outcome::LostReply
    } else {
        Outcome::Pass
    }
}

/// `storage` with every call of every trait going through `faults`.
pub fn with_faults(storage: Storage, faults: Faults) -> Storage {
    stores::wrap(storage, faults)
}

#[cfg(test)]
mod tests;
