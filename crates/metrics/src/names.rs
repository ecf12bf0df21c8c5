//! Label values for Kafka API keys and error codes: Kafka's own names (`Produce`,
//! `UNKNOWN_TOPIC_OR_PARTITION`, as its JMX metrics spell them), from `skiff_protocol::names`,
//! with one label for every code Kafka does not define so the label stays bounded.

pub(crate) use skiff_protocol::names::api_name;

/// The label of every error code Kafka does not name.
pub(crate) const UNKNOWN_ERROR: &str = "UNKNOWN_CODE";

/// The label of an error code.
pub(crate) fn error_name(code: i16) -> &'static str {
    skiff_protocol::names::error_name(code).unwrap_or(UNKNOWN_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_kafka_does_not_define_share_one_label() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(30_000), UNKNOWN_ERROR);
        assert_eq!(error_name(-2), UNKNOWN_ERROR);
    }
}
