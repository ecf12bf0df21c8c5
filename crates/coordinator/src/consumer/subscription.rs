//! Which topics members subscribe to: names and regular expressions resolved against the
//! caller's current topic list.
//!
//! Kafka resolves regexes with RE2/J against whole topic names; the `regex` crate has the same
//! syntax family and, like RE2, runs in linear time, so a client's pattern cannot stall a
//! broker.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use super::group::{ConsumerMember, TopicMetadata};
use crate::GroupError;

/// Checks a regex a client sent: INVALID_REGULAR_EXPRESSION if it does not compile.
pub(crate) fn check_regex(pattern: &str) -> Result<(), GroupError> {
    // Compiled as sent first: anchoring alone could turn an unbalanced pattern such as
    // `a)|(b` into a valid one.
    Regex::new(pattern).map_err(|_| GroupError::InvalidRegularExpression)?;
    whole_name(pattern).map(|_| ())
}

/// A regex that must match a whole topic name, as Kafka's `matches()` does.
fn whole_name(pattern: &str) -> Result<Regex, GroupError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|_| GroupError::InvalidRegularExpression)
}

/// Resolves subscriptions against one topic list, compiling each distinct regex once.
pub(crate) struct Resolver<'a> {
    topics: &'a BTreeMap<String, TopicMetadata>,
    /// `None` for a pattern that does not compile (only possible in a value stored by hand):
    /// it matches nothing rather than failing every heartbeat of the group.
    compiled: BTreeMap<String, Option<Regex>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(topics: &'a BTreeMap<String, TopicMetadata>) -> Self {
        Self { topics, compiled: BTreeMap::new() }
    }

    /// The existing topics a member subscribes to, by name.
    pub(crate) fn topics_of(&mut self, member: &ConsumerMember) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = member
            .subscribed_topic_names
            .iter()
            .filter(|name| self.topics.contains_key(*name))
            .cloned()
            .collect();
        if let Some(pattern) = &member.subscribed_topic_regex {
            let regex =
                self.compiled.entry(pattern.clone()).or_insert_with(|| whole_name(pattern).ok());
            if let Some(regex) = regex {
                names.extend(self.topics.keys().filter(|name| regex.is_match(name)).cloned());
            }
        }
        names
    }

    /// The subscribed topics of the whole group with their metadata: what a target
    /// assignment is computed from, and what the group stores to notice changes.
    pub(crate) fn group_topics(
        &mut self,
        members: &[ConsumerMember],
    ) -> BTreeMap<String, TopicMetadata> {
        let mut subscribed = BTreeMap::new();
        for member in members {
            for name in self.topics_of(member) {
                if let Some(metadata) = self.topics.get(&name) {
                    subscribed.insert(name, *metadata);
                }
            }
        }
        subscribed
    }
}
