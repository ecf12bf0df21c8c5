//! Client strings in `text` columns, losslessly.
//!
//! Kafka strings (group ids, member ids, config values, header keys, ...) are UTF-8 and may hold
//! U+0000, which a Postgres `text` value cannot. Such strings are stored escaped with U+0001 (a
//! control character no real identifier uses):
//!
//! | in the string | stored as |
//! |---|---|
//! | U+0000 | U+0001 U+0001 |
//! | U+0001 | U+0001 U+0002 |
//! | anything else | itself |
//!
//! So every string without those two characters is stored as it is, and rows stay readable and
//! queryable (`WHERE group_id = 'billing'`). The escape keeps byte order (U+0000 < U+0001 < the
//! rest, and the two escapes sort the same way) and prefixes (no escape is a prefix of another),
//! so `ORDER BY` and prefix scans over stored values mean what they mean over the strings.

use std::borrow::Cow;

use skiff_storage::{Result, StorageError};

const NUL: char = '\u{0}';
const ESCAPE: char = '\u{1}';
const ESCAPED_NUL: char = '\u{1}';
const ESCAPED_ESCAPE: char = '\u{2}';

/// The stored form of `value`; borrowed when nothing needs escaping (nearly always).
pub(crate) fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains([NUL, ESCAPE]) {
        return Cow::Borrowed(value);
    }
    let mut stored = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            NUL => stored.extend([ESCAPE, ESCAPED_NUL]),
            ESCAPE => stored.extend([ESCAPE, ESCAPED_ESCAPE]),
            other => stored.push(other),
        }
    }
    Cow::Owned(stored)
}

/// The stored forms of several values, for statements over arrays.
pub(crate) fn escape_all<'a, I>(values: I) -> Vec<Cow<'a, str>>
where
    I: IntoIterator<Item = &'a str>,
{
    values.into_iter().map(escape).collect()
}

/// The string a stored value stands for; `Corrupt` for an escape this module never writes.
pub(crate) fn unescape(stored: String) -> Result<String> {
    if !stored.contains(ESCAPE) {
        return Ok(stored);
    }
    let mut value = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some(ESCAPED_NUL) => value.push(NUL),
            Some(ESCAPED_ESCAPE) => value.push(ESCAPE),
            _ => {
                return Err(StorageError::Corrupt(format!(
                    "stored text {stored:?} has an unknown escape"
                )))
            }
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of up to three characters from an alphabet around the escaped ones.
    fn samples() -> Vec<String> {
        let alphabet = ['\u{0}', '\u{1}', '\u{2}', 'a', 'é'];
        let mut all = vec![String::new()];
        let mut previous = vec![String::new()];
        for _ in 0..3 {
            let next: Vec<String> = previous
                .iter()
                .flat_map(|prefix| {
                    alphabet.iter().map(move |c| {
                        let mut longer = prefix.clone();
                        longer.push(*c);
                        longer
                    })
                })
                .collect();
            all.extend(next.iter().cloned());
            previous = next;
        }
        all
    }

    #[test]
    fn round_trips_and_never_stores_nul() {
        for value in samples() {
            let stored = escape(&value);
            assert!(!stored.contains(NUL), "{value:?} stored as {stored:?}");
            assert_eq!(unescape(stored.into_owned()).expect("unescape"), value);
        }
    }

    #[test]
    fn plain_strings_are_stored_as_they_are() {
        for value in ["billing", "a\\b", "ü/x y", "groups/g1", ""] {
            assert!(matches!(escape(value), Cow::Borrowed(stored) if stored == value));
        }
        assert_eq!(escape("Hello\0world!"), "Hello\u{1}\u{1}world!");
    }

    #[test]
    fn keeps_byte_order_and_prefixes() {
        let samples = samples();
        for a in &samples {
            for b in &samples {
                let (stored_a, stored_b) = (escape(a), escape(b));
                assert_eq!(
                    a.as_bytes().cmp(b.as_bytes()),
                    stored_a.as_bytes().cmp(stored_b.as_bytes())
                );
                assert_eq!(b.starts_with(a.as_str()), stored_b.starts_with(stored_a.as_ref()));
            }
        }
    }

    #[test]
    fn unknown_escapes_are_corrupt() {
        for stored in ["\u{1}", "a\u{1}b", "\u{1}\u{3}"] {
            let result = unescape(stored.to_owned());
            assert!(matches!(result, Err(StorageError::Corrupt(_))), "{stored:?}: {result:?}");
        }
    }
}
