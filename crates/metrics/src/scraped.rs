//! Counters that another component already keeps (the S3 engine counts its requests for its
//! own log lines): read when scraped instead of counted twice.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// Reads `(label value, total)` pairs at each scrape.
pub type Read = Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// One counter family whose values `read` returns at each scrape.
pub(crate) struct ScrapedCounters {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) label: &'static str,
    pub(crate) read: Read,
}

impl fmt::Debug for ScrapedCounters {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("ScrapedCounters").field("name", &self.name).finish()
    }
}

impl Collector for ScrapedCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let values = (self.read)();
        let counter = ConstCounter::new(0u64);
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, counter.metric_type())?;
        for (value, total) in values {
            let labels = [(self.label, value)];
            ConstCounter::new(total).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
