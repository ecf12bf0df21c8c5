//! Quota entities and Kafka's precedence among them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One component of an entity: a name, or the default for every name without its own quota.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityPart {
    Named(String),
    Default,
}

/// Who a quota applies to: a user, a client id, or a user's client id; each part a name or
/// the default. At least one part is present.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<EntityPart>,
    pub client_id: Option<EntityPart>,
}

impl QuotaEntity {
    /// Whether the entity names something (an entity with no part is no entity).
    pub fn is_valid(&self) -> bool {
        self.user.is_some() || self.client_id.is_some()
    }

    /// Whose usage a quota of this entity counts for one client: a default part stands for
    /// the client's own user or client id, so every user under a default user quota gets the
    /// whole quota to themselves (Kafka's rule), while named parts are shared by all their
    /// connections.
    pub fn usage_of(&self, user: &str, client_id: &str) -> QuotaEntity {
        let concrete = |part: &Option<EntityPart>, own: &str| match part {
            Some(EntityPart::Default) => Some(EntityPart::Named(own.to_owned())),
            other => other.clone(),
        };
        QuotaEntity {
            user: concrete(&self.user, user),
            client_id: concrete(&self.client_id, client_id),
        }
    }
}

/// What a quota limits, with Kafka's config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaKind {
    /// `producer_byte_rate`: request bytes produced per second.
    ProducerByteRate,
    /// `consumer_byte_rate`: response bytes fetched per second.
    ConsumerByteRate,
    /// `request_percentage`: the share of one request thread's time, in percent.
    RequestPercentage,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 3] =
        [QuotaKind::ProducerByteRate, QuotaKind::ConsumerByteRate, QuotaKind::RequestPercentage];

    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::ProducerByteRate => "producer_byte_rate",
            QuotaKind::ConsumerByteRate => "consumer_byte_rate",
            QuotaKind::RequestPercentage => "request_percentage",
        }
    }

    pub fn from_name(name: &str) -> Option<QuotaKind> {
        QuotaKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Every quota of a cluster: per entity, a value per kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quotas {
    pub entries: BTreeMap<QuotaEntity, BTreeMap<QuotaKind, f64>>,
}

impl Quotas {
    /// The quota of `kind` a connection of `user` with `client_id` is held to, and the entity
    /// it belongs to (whose connections share it): the first entity with a quota of that kind
    /// in Kafka's order, most specific first.
    pub fn lookup(
        &self,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
    ) -> Option<(&QuotaEntity, f64)> {
        let named = |name: &str| Some(EntityPart::Named(name.to_owned()));
        let default = || Some(EntityPart::Default);
        let candidates = [
            (named(user), named(client_id)),
            (named(user), default()),
            (named(user), None),
            (default(), named(client_id)),
            (default(), default()),
            (default(), None),
            (None, named(client_id)),
            (None, default()),
        ];
        candidates.into_iter().find_map(|(user, client_id)| {
            let (entity, values) = self.entries.get_key_value(&QuotaEntity { user, client_id })?;
            values.get(&kind).map(|value| (entity, *value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<&str>, client_id: Option<&str>) -> QuotaEntity {
        let part = |value: &str| match value {
            "<default>" => EntityPart::Default,
            name => EntityPart::Named(name.to_owned()),
        };
        QuotaEntity { user: user.map(part), client_id: client_id.map(part) }
    }

    #[test]
    fn the_most_specific_entity_with_a_quota_of_the_kind_applies() {
        let mut quotas = Quotas::default();
        let mut set = |user, client, kind, value| {
            quotas.entries.entry(entity(user, client)).or_default().insert(kind, value);
        };
        use QuotaKind::*;
        set(Some("alice"), None, ProducerByteRate, 1000.0);
        set(Some("alice"), Some("loader"), ProducerByteRate, 5000.0);
        set(Some("<default>"), None, ProducerByteRate, 100.0);
        set(None, Some("loader"), ConsumerByteRate, 42.0);
        set(None, Some("<default>"), RequestPercentage, 50.0);

        let found = |kind, user, client| quotas.lookup(kind, user, client).map(|(_, v)| v);
        assert_eq!(found(ProducerByteRate, "alice", "loader"), Some(5000.0));
        assert_eq!(found(ProducerByteRate, "alice", "other"), Some(1000.0));
        assert_eq!(found(ProducerByteRate, "bob", "loader"), Some(100.0), "the user default");
        assert_eq!(
            found(ConsumerByteRate, "alice", "loader"),
            Some(42.0),
            "each kind finds its own entity"
        );
        assert_eq!(found(ConsumerByteRate, "alice", "other"), None);
        assert_eq!(found(RequestPercentage, "carol", "x"), Some(50.0));
        let (found, _) = quotas.lookup(ProducerByteRate, "bob", "x").expect("a quota");
        assert_eq!(found, &entity(Some("<default>"), None));
        assert_eq!(found.usage_of("bob", "x"), entity(Some("bob"), None), "bob's own 100 B/s");
        let (named, _) = quotas.lookup(ProducerByteRate, "alice", "x").expect("a quota");
        assert_eq!(named.usage_of("alice", "x"), entity(Some("alice"), None));
    }

    #[test]
    fn kinds_have_kafkas_names() {
        for kind in QuotaKind::ALL {
            assert_eq!(QuotaKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(QuotaKind::from_name("controller_mutation_rate"), None);
    }
}
