//! Kafka's names for API keys and error codes as its documentation and JMX metrics spell them
//! (`Produce`, `UNKNOWN_TOPIC_OR_PARTITION`), so users can search for them; the codec only
//! knows CamelCase variant names. Computed once per process and handed out as `&'static str`,
//! so naming an error on a hot path allocates nothing.

use std::collections::HashMap;
use std::sync::OnceLock;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// `Produce`, `Fetch`, ...: the API's name as Kafka spells it.
pub fn api_name(api: ApiKey) -> &'static str {
    static NAMES: OnceLock<HashMap<i16, String>> = OnceLock::new();
    let names =
        NAMES.get_or_init(|| ApiKey::iter().map(|key| (key as i16, format!("{key:?}"))).collect());
    names.get(&(api as i16)).map_or("Unknown", String::as_str)
}

/// `UNKNOWN_TOPIC_OR_PARTITION`, ...: the error code's name in Kafka's upper snake case,
/// `NONE` for 0, and `None` for a code Kafka does not define.
pub fn error_name(code: i16) -> Option<&'static str> {
    static NAMES: OnceLock<HashMap<i16, String>> = OnceLock::new();
    if code == 0 {
        return Some("NONE");
    }
    let names = NAMES.get_or_init(|| {
        // Kafka's codes run from -1 (UNKNOWN_SERVER_ERROR) to a little over 100.
        (-1..=500)
            .filter_map(|code| match ResponseError::try_from_code(code) {
                Some(ResponseError::Unknown(_)) | None => None,
                Some(known) => Some((code, upper_snake_case(&known.to_string()))),
            })
            .collect()
    });
    names.get(&code).map(String::as_str)
}

/// `UnknownTopicOrPartition` -> `UNKNOWN_TOPIC_OR_PARTITION`.
fn upper_snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 8);
    for (index, character) in camel.char_indices() {
        if character.is_ascii_uppercase() && index > 0 {
            snake.push('_');
        }
        snake.push(character.to_ascii_uppercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apis_are_named_as_kafka_names_them() {
        assert_eq!(api_name(ApiKey::Produce), "Produce");
        assert_eq!(api_name(ApiKey::OffsetForLeaderEpoch), "OffsetForLeaderEpoch");
    }

    #[test]
    fn error_codes_are_named_as_kafka_names_them() {
        assert_eq!(error_name(0), Some("NONE"));
        assert_eq!(error_name(3), Some("UNKNOWN_TOPIC_OR_PARTITION"));
        assert_eq!(error_name(36), Some("TOPIC_ALREADY_EXISTS"));
        assert_eq!(error_name(-1), Some("UNKNOWN_SERVER_ERROR"));
        assert_eq!(error_name(87), Some("INVALID_RECORD"));
        assert_eq!(error_name(9999), None);
    }
}
