//! Record bytes produced and fetched, and table commits, by topic: the only metrics labelled by
//! a name clients
//! choose, so the number of topics labelled is capped at [`MAX_TOPICS`]; topics beyond it
//! share the label [`OTHER_TOPICS`]. (Counters of deleted topics stay until the broker
//! restarts, as Prometheus counters do; a restart starts from the topics in use.)

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

/// Topics labelled by name at most, per metric.
pub const MAX_TOPICS: usize = 1000;

/// The label of every topic past [`MAX_TOPICS`].
pub const OTHER_TOPICS: &str = "_other";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

pub(crate) struct Topics {
    produced_bytes: Family<TopicLabels, Counter>,
    produced_records: Family<TopicLabels, Counter>,
    fetched_bytes: Family<TopicLabels, Counter>,
    table_commits: Family<TopicLabels, Counter>,
    table_rows: Family<TopicLabels, Counter>,
    table_errors: Family<TopicLabels, Counter>,
    /// The topics that have their own label (shared by every family).
    labelled: RwLock<HashSet<String>>,
}

impl Topics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let topics = Self {
            produced_bytes: Family::default(),
            produced_records: Family::default(),
            fetched_bytes: Family::default(),
            table_commits: Family::default(),
            table_rows: Family::default(),
            table_errors: Family::default(),
            labelled: RwLock::default(),
        };
        registry.register_with_unit(
            "produced",
            "Record batch bytes appended by Produce, by topic",
            Unit::Bytes,
            topics.produced_bytes.clone(),
        );
        registry.register(
            "produced_records",
            "Records appended by Produce, by topic",
            topics.produced_records.clone(),
        );
        registry.register_with_unit(
            "fetched",
            "Record batch bytes returned by Fetch, by topic",
            Unit::Bytes,
            topics.fetched_bytes.clone(),
        );
        registry.register(
            "table_commits",
            "Table commits (files) this broker's table writers made, by topic",
            topics.table_commits.clone(),
        );
        registry.register(
            "table_rows",
            "Rows this broker's table writers committed to tables, by topic",
            topics.table_rows.clone(),
        );
        registry.register(
            "table_writer_errors",
            "Failures of this broker's table writers (each retried with backoff), by topic",
            topics.table_errors.clone(),
        );
        topics
    }

    pub(crate) fn table_committed(&self, topic: &str, rows: u64) {
        let labels = self.labels(topic);
        self.table_commits.get_or_create(&labels).inc();
        self.table_rows.get_or_create(&labels).inc_by(rows);
    }

    pub(crate) fn table_failed(&self, topic: &str) {
        self.table_errors.get_or_create(&self.labels(topic)).inc();
    }

    pub(crate) fn produced(&self, topic: &str, bytes: usize, records: u64) {
        let labels = self.labels(topic);
        self.produced_bytes.get_or_create(&labels).inc_by(bytes as u64);
        self.produced_records.get_or_create(&labels).inc_by(records);
    }

    pub(crate) fn fetched(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            let labels = self.labels(topic);
            self.fetched_bytes.get_or_create(&labels).inc_by(bytes as u64);
        }
    }
}

impl Topics {
    /// `topic`'s labels, or [`OTHER_TOPICS`] once [`MAX_TOPICS`] others have labels.
    fn labels(&self, topic: &str) -> TopicLabels {
        let known = self.labelled.read().unwrap_or_else(PoisonError::into_inner).contains(topic);
        if known {
            return TopicLabels { topic: topic.to_owned() };
        }
        let mut labelled = self.labelled.write().unwrap_or_else(PoisonError::into_inner);
        if labelled.len() < MAX_TOPICS {
            labelled.insert(topic.to_owned());
        }
        if labelled.contains(topic) {
            TopicLabels { topic: topic.to_owned() }
        } else {
            TopicLabels { topic: OTHER_TOPICS.to_owned() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_past_the_cap_share_one_label() {
        let topics = Topics::register(&mut Registry::default());
        for index in 0..MAX_TOPICS {
            topics.produced(&format!("t{index}"), 10, 1);
        }
        topics.produced("one-too-many", 7, 1);
        topics.produced("t0", 5, 1);
        let get = |topic: &str| {
            topics.produced_bytes.get(&TopicLabels { topic: topic.to_owned() }).map(|c| c.get())
        };
        assert_eq!(get("t0"), Some(15), "a topic already labelled keeps its label");
        assert_eq!(get("one-too-many"), None);
        assert_eq!(get(OTHER_TOPICS), Some(7));
        topics.fetched("one-too-many", 3);
        let fetched = topics.fetched_bytes.get(&TopicLabels { topic: OTHER_TOPICS.to_owned() });
        assert_eq!(fetched.map(|c| c.get()), Some(3), "the cap is shared by every topic metric");
    }
}
