//! Data objects held in memory: those this broker wrote lately (consumers that keep up read
//! what was just written) and small ones fetched whole by a reader (a flush's object holds
//! batches of many partitions, and a consumer usually reads them all). Objects are immutable,
//! so a cached one is never stale.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// Bytes of objects kept.
const KEPT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Objects {
    by_name: HashMap<String, Bytes>,
    /// Names, oldest first: the order they leave in.
    order: VecDeque<String>,
    total: usize,
}

#[derive(Default)]
pub(crate) struct RecentObjects {
    objects: Mutex<Objects>,
}

impl RecentObjects {
    pub(crate) fn insert(&self, name: &str, bytes: Bytes) {
        let mut objects = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if objects.by_name.contains_key(name) {
            return;
        }
        objects.total += bytes.len();
        objects.by_name.insert(name.to_owned(), bytes);
        objects.order.push_back(name.to_owned());
        while objects.total > KEPT_BYTES {
            let Some(oldest) = objects.order.pop_front() else { break };
            if let Some(dropped) = objects.by_name.remove(&oldest) {
                objects.total -= dropped.len();
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Bytes> {
        let objects = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        objects.by_name.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_objects_leave_first() {
        let recent = RecentObjects::default();
        let big = Bytes::from(vec![0u8; KEPT_BYTES / 2]);
        recent.insert("a", big.clone());
        recent.insert("b", big.clone());
        recent.insert("c", Bytes::from_static(b"c"));
        assert!(recent.get("a").is_none());
        assert_eq!(recent.get("b").map(|b| b.len()), Some(KEPT_BYTES / 2));
        assert_eq!(recent.get("c").as_deref(), Some(&b"c"[..]));
    }
}
