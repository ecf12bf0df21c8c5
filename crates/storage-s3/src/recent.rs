//! Data objects this broker wrote lately, kept in memory: consumers that keep up with producers
//! read what was just written, and serving it from here saves a GET per fetch. Objects are
//! immutable, so a cached one is never stale.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// Bytes of recent objects kept.
const KEPT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct RecentObjects {
    objects: Mutex<(VecDeque<(String, Bytes)>, usize)>,
}

impl RecentObjects {
    pub(crate) fn insert(&self, name: &str, bytes: Bytes) {
        let mut guard = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (objects, total) = &mut *guard;
        *total += bytes.len();
        objects.push_back((name.to_owned(), bytes));
        while *total > KEPT_BYTES {
            match objects.pop_front() {
                Some((_, dropped)) => *total -= dropped.len(),
                None => break,
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Bytes> {
        let guard = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0.iter().rev().find(|(object, _)| object == name).map(|(_, bytes)| bytes.clone())
    }
}
