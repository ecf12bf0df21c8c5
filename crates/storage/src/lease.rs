//! Leases in storage: how the brokers of a cluster agree that one of them does a background
//! job (the cleaner, a table's writer for a partition, the S3 engine's collector) while the
//! others stand by.
//!
//! A lease is a state value "<holder> <expires at ms>" changed by compare-and-set. Its holder
//! renews it before it runs out; anyone may take it once it has expired, so a broker that dies
//! (or is cut off from storage) loses its jobs within one lease time. A lease saves duplicate
//! work; the jobs themselves stay correct if two brokers ever both believe they hold it
//! (compaction is idempotent, a table commit is conditional).

use bytes::Bytes;

use crate::{StateStore, StorageError};

/// Takes (or renews) the lease at `key` for `holder` until `now + ttl`; false if another
/// holder has an unexpired lease there, or took it in the same instant.
pub async fn take(
    state: &dyn StateStore,
    key: &str,
    holder: &str,
    now: i64,
    ttl: std::time::Duration,
) -> Result<bool, StorageError> {
    let current = state.get(key).await?;
    if let Some(stored) = &current {
        let (owner, expires) = parse(&stored.value);
        if owner != holder && expires > now {
            return Ok(false);
        }
    }
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2));
    let value = Bytes::from(format!("{holder} {expires}"));
    match state.put(key, value, current.map(|stored| stored.version)).await {
        Ok(_) => Ok(true),
        Err(StorageError::Conflict(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The holder of the lease at `key` and when it runs out, if anyone ever took it.
pub async fn holder(
    state: &dyn StateStore,
    key: &str,
) -> Result<Option<(String, i64)>, StorageError> {
    let current = state.get(key).await?;
    Ok(current.map(|stored| {
        let (owner, expires) = parse(&stored.value);
        (owner.to_owned(), expires)
    }))
}

fn parse(value: &[u8]) -> (&str, i64) {
    let text = std::str::from_utf8(value).unwrap_or_default();
    let mut parts = text.split(' ');
    let owner = parts.next().unwrap_or_default();
    let expires = parts.next().and_then(|value| value.parse::<i64>().ok()).unwrap_or(0);
    (owner, expires)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn only_one_holder_gets_the_lease_until_it_expires() {
        let state = &crate::test_state::Racy::default();
        let ttl = Duration::from_millis(1000);
        let key = "jobs/lease";
        assert!(take(state, key, "a", 0, ttl).await.expect("lease"));
        assert!(!take(state, key, "b", 500, ttl).await.expect("lease"), "a holds it");
        assert!(take(state, key, "a", 900, ttl).await.expect("lease"), "a renews");
        assert!(!take(state, key, "b", 1800, ttl).await.expect("lease"), "renewed until 1900");
        assert_eq!(holder(state, key).await.expect("read"), Some(("a".to_owned(), 1900)));
        assert!(take(state, key, "b", 2000, ttl).await.expect("lease"), "expired: b takes it");
        assert!(take(state, "other/lease", "a", 2000, ttl).await.expect("lease"), "keys apart");
    }
}
