//! The compact spec of a fault plan: `append:error=0.1,append:lost=0.05,read:delay_ms=20,seed=7`.
//!
//! Kept strict on purpose: a typo in a test's plan (`apend:error=0.1`) must fail loudly, not
//! give a run that injects nothing and passes.

use std::time::Duration;

use thiserror::Error;

use super::{Operation, Rule};

/// Why a fault spec was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// An item is not `OPERATION:KIND=VALUE` or `seed=N`.
    #[error("fault spec item {0:?} is not OPERATION:KIND=VALUE or seed=N")]
    Malformed(String),
    /// The operation is not a storage call.
    #[error("unknown operation {name:?} in fault spec (known: *, {known})")]
    UnknownOperation { name: String, known: String },
    /// The kind is not one of `error`, `lost`, `delay_ms`, `delay`.
    #[error("unknown fault kind {0:?} (known: error, lost, delay_ms, delay)")]
    UnknownKind(String),
    /// The value does not parse or is out of range.
    #[error("bad value {value:?} for {kind}: {why}")]
    BadValue { kind: String, value: String, why: &'static str },
    /// `error + lost` of one operation exceeds 1.
    #[error("{0}: error + lost must be at most 1")]
    TooLikely(&'static str),
    /// The spec names no fault at all.
    #[error("fault spec is empty")]
    Empty,
}

/// A parsed spec.
pub(super) struct Parsed {
    pub(super) rules: Vec<(Operation, Rule)>,
    pub(super) seed: u64,
}

/// Parses a whole spec; items apply in order.
pub(super) fn parse(spec: &str) -> Result<Parsed, SpecError> {
    let mut rules: Vec<Option<Rule>> = vec![None; Operation::ALL.len()];
    let mut seed = 0;
    let items = spec.split(',').map(str::trim).filter(|item| !item.is_empty());
    for item in items {
        if let Some(value) = item.strip_prefix("seed=") {
            seed = value.parse().map_err(|_| bad_value("seed", value, "not a whole number"))?;
            continue;
        }
        let (targets, kind, value) = split_item(item)?;
        for operation in targets {
            let rule = rules[operation as usize].get_or_insert_with(Rule::default);
            apply(rule, kind, value)?;
        }
    }
    let rules: Vec<(Operation, Rule)> = Operation::ALL
        .iter()
        .zip(rules)
        .filter_map(|(operation, rule)| rule.map(|rule| (*operation, rule)))
        .collect();
    if rules.is_empty() {
        return Err(SpecError::Empty);
    }
    for (operation, rule) in &rules {
        if rule.error + rule.lost > 1.0 {
            return Err(SpecError::TooLikely(operation.name()));
        }
    }
    Ok(Parsed { rules, seed })
}

/// `OPERATION:KIND=VALUE` into the operations it names, the kind and the value.
fn split_item(item: &str) -> Result<(Vec<Operation>, &str, &str), SpecError> {
    let malformed = || SpecError::Malformed(item.to_owned());
    let (operation, setting) = item.split_once(':').ok_or_else(malformed)?;
    let (kind, value) = setting.split_once('=').ok_or_else(malformed)?;
    let (operation, kind, value) = (operation.trim(), kind.trim(), value.trim());
    if operation == "*" {
        return Ok((Operation::ALL.to_vec(), kind, value));
    }
    match Operation::from_name(operation) {
        Some(found) => Ok((vec![found], kind, value)),
        None => Err(SpecError::UnknownOperation {
            name: operation.to_owned(),
            known: Operation::ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Sets one kind of `rule`.
fn apply(rule: &mut Rule, kind: &str, value: &str) -> Result<(), SpecError> {
    match kind {
        "error" => rule.error = chance(kind, value)?,
        "lost" => rule.lost = chance(kind, value)?,
        "delay" => rule.delay_chance = chance(kind, value)?,
        "delay_ms" => {
            let millis: u64 =
                value.parse().map_err(|_| bad_value(kind, value, "not a whole number"))?;
            rule.delay = Duration::from_millis(millis);
        }
        other => return Err(SpecError::UnknownKind(other.to_owned())),
    }
    Ok(())
}

fn chance(kind: &str, value: &str) -> Result<f64, SpecError> {
    let parsed: f64 = value.parse().map_err(|_| bad_value(kind, value, "not a number"))?;
    if !(0.0..=1.0).contains(&parsed) {
        return Err(bad_value(kind, value, "a chance must be between 0 and 1"));
    }
    Ok(parsed)
}

fn bad_value(kind: &str, value: &str, why: &'static str) -> SpecError {
    SpecError::BadValue { kind: kind.to_owned(), value: value.to_owned(), why }
}
