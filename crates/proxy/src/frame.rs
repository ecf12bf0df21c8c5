//! Correlation ids inside frames: the proxy renumbers requests on shared upstream
//! connections and restores the client's ids in the answers. Frames themselves are read by
//! `skiff_net::FrameReader`, the reader the broker uses too.

/// Overwrites the correlation id at `offset` (0 in responses, 4 in requests).
pub(crate) fn set_correlation_id(frame: &mut [u8], offset: usize, correlation_id: i32) {
    if let Some(slot) = frame.get_mut(offset..offset + 4) {
        slot.copy_from_slice(&correlation_id.to_be_bytes());
    }
}

/// Reads the correlation id at `offset`, if the frame is long enough.
pub(crate) fn correlation_id(frame: &[u8], offset: usize) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(offset..offset + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_a_correlation_id() {
        let mut frame = vec![0, 3, 0, 1, 0, 0, 0, 7];
        assert_eq!(correlation_id(&frame, 4), Some(7));
        set_correlation_id(&mut frame, 4, 99);
        assert_eq!(correlation_id(&frame, 4), Some(99));
        assert_eq!(correlation_id(&frame, 6), None);
    }
}
