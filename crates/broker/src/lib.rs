//! The Kafka broker (work in progress).
