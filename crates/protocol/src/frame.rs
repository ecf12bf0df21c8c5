//! Kafka frames: a 4-byte big-endian length followed by that many bytes.
//!
//! The length is checked before a single byte of the body is allocated, so a peer announcing a
//! negative or huge frame costs us four bytes of reading, not memory.

use thiserror::Error;

/// Default cap on a request frame (100 MiB, like Kafka's `socket.request.max.bytes`).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// Why a frame length was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame length {length} exceeds the limit of {limit} bytes")]
    TooLarge { length: usize, limit: usize },
    #[error("frame length {0} is too short for a request header")]
    TooShort(usize),
}

/// The smallest request: api key (2), api version (2), correlation id (4).
const MIN_REQUEST_BYTES: usize = 8;

/// Checks a frame's announced length against `limit` and returns it as a `usize`.
pub fn check_request_length(prefix: [u8; 4], limit: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    if length < 0 {
        return Err(FrameError::Negative(length));
    }
    let length = length as usize;
    if length > limit {
        return Err(FrameError::TooLarge { length, limit });
    }
    if length < MIN_REQUEST_BYTES {
        return Err(FrameError::TooShort(length));
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_negative_and_huge_lengths() {
        assert_eq!(
            check_request_length((-1i32).to_be_bytes(), 1024),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            check_request_length(2000i32.to_be_bytes(), 1024),
            Err(FrameError::TooLarge { length: 2000, limit: 1024 })
        );
        assert_eq!(check_request_length(3i32.to_be_bytes(), 1024), Err(FrameError::TooShort(3)));
        assert_eq!(check_request_length(100i32.to_be_bytes(), 1024), Ok(100));
    }

    proptest! {
        #[test]
        fn accepted_lengths_are_within_bounds(prefix in any::<[u8; 4]>(), limit in 8usize..1_000_000) {
            if let Ok(length) = check_request_length(prefix, limit) {
                prop_assert!(length <= limit);
                prop_assert!(length >= MIN_REQUEST_BYTES);
                prop_assert_eq!(length as i32, i32::from_be_bytes(prefix));
            }
        }
    }
}
