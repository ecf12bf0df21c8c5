use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;

#[test]
fn specs_parse_into_rules_per_operation() {
    let faults =
        Faults::parse("append:error=0.1, append:lost=0.05,read:delay_ms=20,seed=7").expect("parse");
    let append = faults.rule(Operation::Append).expect("append rule");
    assert_eq!((append.error, append.lost, append.delay), (0.1, 0.05, Duration::ZERO));
    let read = faults.rule(Operation::Read).expect("read rule");
    assert_eq!((read.delay, read.delay_chance), (Duration::from_millis(20), 1.0));
    assert_eq!(faults.rule(Operation::StatePut), None);
    assert_eq!(faults.shared.seed, 7);
}

#[test]
fn a_star_sets_every_operation_and_later_items_override() {
    let faults = Faults::parse("*:error=0.2,state_put:error=0,state_put:lost=0.5").expect("parse");
    for operation in Operation::ALL {
        assert!(faults.rule(*operation).is_some(), "{operation:?}");
    }
    assert_eq!(faults.rule(Operation::Append).map(|rule| rule.error), Some(0.2));
    let put = faults.rule(Operation::StatePut).expect("put");
    assert_eq!((put.error, put.lost), (0.0, 0.5));
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let refused = |spec: &str| Faults::parse(spec).err().map(|error| error.to_string());
    let unknown = refused("apend:error=0.1").unwrap_or_default();
    assert!(unknown.contains("unknown operation \"apend\"") && unknown.contains("append"));
    assert!(refused("append:eror=0.1").is_some_and(|e| e.contains("unknown fault kind")));
    assert!(refused("append:error=1.5").is_some_and(|e| e.contains("between 0 and 1")));
    assert!(refused("append:error=x").is_some_and(|e| e.contains("not a number")));
    assert!(refused("append:delay_ms=-1").is_some_and(|e| e.contains("whole number")));
    assert!(refused("append:error=0.6,append:lost=0.6").is_some_and(|e| e.contains("at most 1")));
    assert!(refused("append").is_some_and(|e| e.contains("OPERATION:KIND=VALUE")));
    assert!(refused("seed=1").is_some_and(|e| e.contains("empty")));
    assert!(refused("").is_some_and(|e| e.contains("empty")));
}

#[test]
fn draws_are_uniform_and_repeat_for_a_seed() {
    let draws = |seed| {
        let faults = Faults::new([(Operation::Append, Rule::default())], seed);
        (0..10_000).map(|_| faults.draw()).collect::<Vec<f64>>()
    };
    let first = draws(7);
    assert_eq!(first, draws(7), "same seed, same sequence");
    assert_ne!(first, draws(8));
    assert!(first.iter().all(|draw| (0.0..1.0).contains(draw)));
    let below_a_tenth = first.iter().filter(|draw| **draw < 0.1).count();
    assert!((800..1200).contains(&below_a_tenth), "{below_a_tenth} of 10000 below 0.1");
}

#[tokio::test]
async fn outcomes_are_counted_and_lost_replies_still_apply() {
    let faults = Faults::parse("append:error=0.3,append:lost=0.3,seed=1").expect("parse");
    let applied = AtomicU32::new(0);
    let mut answered = 0;
    for _ in 0..1000 {
        let call = async {
            applied.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        match faults.run(Operation::Append, call).await {
            Ok(()) => answered += 1,
            Err(StorageError::Unavailable(why)) => assert!(why.starts_with("injected")),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let counts = faults.counts();
    assert_eq!(counts.calls, 1000);
    assert!(counts.errors > 200 && counts.lost > 200, "{counts:?}");
    assert_eq!(answered + counts.failures(), 1000);
    assert_eq!(
        u64::from(applied.load(Ordering::Relaxed)),
        answered + counts.lost,
        "a lost reply was applied; an injected error was not"
    );
    assert_eq!(faults.counts_for(Operation::Read), FaultCounts::default());
}

#[tokio::test]
async fn operations_without_a_rule_pass_untouched() {
    let faults = Faults::parse("read:error=1").expect("parse");
    let result = faults.run(Operation::Append, async { Ok(5) }).await;
    assert_eq!(result, Ok(5));
    assert_eq!(faults.counts().calls, 0);
    let read = faults.run(Operation::Read, async { Ok(5) }).await;
    assert!(matches!(read, Err(StorageError::Unavailable(_))), "{read:?}");
}

#[tokio::test]
async fn delays_are_added_and_counted() {
    let faults = Faults::parse("state_get:delay_ms=50").expect("parse");
    let started = tokio::time::Instant::now();
    faults.run(Operation::StateGet, async { Ok(()) }).await.expect("passes");
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(faults.counts().delayed, 1);
}
