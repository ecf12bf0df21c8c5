//! Kafka error codes as people read them: `TOPIC_ALREADY_EXISTS (36): <broker's message>`.

use kafka_protocol::error::ResponseError;

/// The Kafka documentation's name for an error code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`, so
/// users can search for it.
pub(crate) fn error_name(code: i16) -> String {
    match skiff_protocol::names::error_name(code) {
        Some(name) => name.to_owned(),
        None => format!("UNKNOWN_ERROR_CODE_{code}"),
    }
}

/// `Ok(())` for code 0; otherwise an error naming the code and the broker's message, if any.
pub(crate) fn check(code: i16, message: Option<&str>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let name = error_name(code);
    match message.filter(|message| !message.is_empty()) {
        Some(message) => anyhow::bail!("{what}: {name} ({code}): {message}"),
        None => anyhow::bail!("{what}: {name} ({code})"),
    }
}

/// Whether retrying the same request later may succeed (e.g. LEADER_NOT_AVAILABLE right after
/// a topic was auto-created).
pub(crate) fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|error| error.is_retriable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_kafka_docs() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }

    #[test]
    fn check_includes_the_broker_message() {
        assert!(check(0, None, "x").is_ok());
        let error = check(36, Some("topic t exists"), "creating t").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("creating t: TOPIC_ALREADY_EXISTS (36): topic t exists"));
    }
}
