//! Entry points for the cargo-fuzz targets in `fuzz/` (`s3_head`), hidden from the docs: not
//! an API. A bucket is shared with whoever else can write to it, so a head object may hold
//! anything; the engine must refuse it as corrupt, never panic or loop on it.

use skiff_protocol::batch::{control_batch, ControlType};
use skiff_storage::producers::plan_append;

use crate::head::Head;

/// Decodes `bytes` as a partition head and, if it decodes, uses it every way the engine does:
/// watermarks, producers, aborted transactions, index ranges, truncation, a marker for each of
/// its producers planned and applied on it, encoding again.
pub fn head(bytes: &[u8]) {
    let Ok(mut head) = Head::decode(bytes) else { return };
    let marks = head.watermarks();
    let producers: Vec<(i64, Option<i64>)> = head.producer_ids().collect();
    let _ = head.aborted_between(marks.log_start, marks.high);
    for entry in &head.index {
        let _ = entry.last();
    }
    for (producer_id, _) in &producers {
        let Some(entry) = head.producer(*producer_id) else { continue };
        for kind in [ControlType::Commit, ControlType::Abort] {
            let Ok(marker) = control_batch(*producer_id, entry.epoch, kind, 0, marks.high) else {
                continue;
            };
            let len = marker.bytes.len() as u64;
            let planned = plan_append(
                vec![marker],
                head.high,
                |producer| Ok(head.producer(producer)),
                |producer| Ok(head.open_since(producer)),
            );
            if let Ok(plan) = planned {
                head.apply(plan, &[("data".to_owned(), 0, len, len)], 0);
            }
        }
    }
    head.expire_producers(i64::MAX);
    let _ = head.take_oldest(1);
    let _ = head.truncate_before(head.high);
    let _ = head.encode();
}
