//! Which version of each API to speak: the highest one both the broker and this build support.

use std::collections::HashMap;

use anyhow::bail;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

/// The broker's advertised version range per API key, from its ApiVersions answer.
#[derive(Debug, Default, Clone)]
pub(crate) struct VersionTable {
    ranges: HashMap<i16, VersionRange>,
}

impl VersionTable {
    pub(crate) fn from_response(response: &ApiVersionsResponse) -> Self {
        let ranges = response
            .api_keys
            .iter()
            .map(|api| (api.api_key, VersionRange { min: api.min_version, max: api.max_version }))
            .collect();
        Self { ranges }
    }

    /// Whether the broker advertises `api_key` at all (used to gate optional features).
    pub(crate) fn supports(&self, api_key: ApiKey) -> bool {
        self.ranges.get(&(api_key as i16)).is_some_and(|range| !range.is_empty())
    }

    /// The highest version of `api_key` that the broker, our codec (`ours`) and the caller's
    /// `cap` all allow. Capping lets a command stay on versions whose request shape it builds
    /// (e.g. Produce addresses topics by name only up to v12).
    pub(crate) fn choose(
        &self,
        api_key: ApiKey,
        ours: VersionRange,
        cap: i16,
    ) -> anyhow::Result<i16> {
        let Some(theirs) = self.ranges.get(&(api_key as i16)) else {
            bail!("the broker does not support the {api_key:?} API");
        };
        let ours = VersionRange { min: ours.min, max: ours.max.min(cap) };
        let common = theirs.intersect(&ours);
        if common.is_empty() {
            bail!("no common {api_key:?} version: the broker speaks {theirs}, this client {ours}");
        }
        Ok(common.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn table(entries: &[(ApiKey, i16, i16)]) -> VersionTable {
        let api_keys = entries
            .iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect();
        VersionTable::from_response(&ApiVersionsResponse::default().with_api_keys(api_keys))
    }

    #[test]
    fn picks_the_highest_common_version() -> anyhow::Result<()> {
        let table = table(&[(ApiKey::Produce, 3, 11), (ApiKey::Fetch, 4, 17)]);
        let ours = VersionRange { min: 3, max: 13 };
        assert_eq!(table.choose(ApiKey::Produce, ours, i16::MAX)?, 11);
        assert_eq!(table.choose(ApiKey::Fetch, VersionRange { min: 4, max: 18 }, 12)?, 12);
        Ok(())
    }

    #[test]
    fn broker_newer_than_us_gets_our_max() -> anyhow::Result<()> {
        let table = table(&[(ApiKey::Metadata, 0, 20)]);
        assert_eq!(table.choose(ApiKey::Metadata, VersionRange { min: 0, max: 13 }, 99)?, 13);
        Ok(())
    }

    #[test]
    fn disjoint_or_missing_apis_are_errors() {
        let table = table(&[(ApiKey::Produce, 0, 2)]);
        assert!(table.choose(ApiKey::Produce, VersionRange { min: 3, max: 13 }, 12).is_err());
        assert!(table.choose(ApiKey::Fetch, VersionRange { min: 4, max: 18 }, 12).is_err());
        assert!(table.supports(ApiKey::Produce));
        assert!(!table.supports(ApiKey::OffsetCommit));
    }
}
