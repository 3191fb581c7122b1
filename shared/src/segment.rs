//! Segments: one fan-out's audience split among `n` invocations that run at once
//! (docs/design.md §13).
//!
//! Segment `k` of `n` is a range of connection ids, the same range in every index partition the
//! audience spans: the ids from its lower bound up to (not including) the next segment's. So a
//! segment's share is one key-range Query per partition (`BETWEEN` on the index's sort key), read
//! without reading any other segment's; the ranges are disjoint and together cover every id.
//!
//! The bounds are two-character prefixes spread evenly over the 62 letters and digits that API
//! Gateway's connection ids (base64) start with, so each segment gets about `1/n` of any large
//! audience. An id that starts with another allowed character (`+`, `-`, `.`, `:`, `=`, `@`, `_`)
//! falls in whichever range its bytes sort into: covering never depends on the alphabet, only the
//! evenness does.

use crate::id::ConnectionId;
use crate::record::keys;

/// The characters the bounds are made of, in byte order (how DynamoDB compares strings).
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Two-character prefixes: the finest split.
const POINTS: u32 = 62 * 62;
/// Most segments one fan-out may be split into.
pub const MAX_SEGMENTS: u16 = 100;
/// Above every byte a connection id may hold (`z`, 0x7A, is the highest).
const ABOVE_ANY_ID_BYTE: char = '~';

/// Segment `index` of `count` (`0 <= index < count <= MAX_SEGMENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    index: u16,
    count: u16,
}

/// Why a `segment`/`segments` pair cannot be used; the message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segments must be a whole number from 1 to {MAX_SEGMENTS}")]
    Count,
    #[error("segment must be a whole number from 0 to segments - 1 (here 0 to {0})")]
    Index(u16),
    #[error("give segment and segments together (segment k of n), or neither")]
    Half,
}

impl Segment {
    /// The whole audience.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    pub fn new(index: u64, count: u64) -> Result<Self, SegmentError> {
        let count = u16::try_from(count).ok().filter(|c| (1..=MAX_SEGMENTS).contains(c)).ok_or(SegmentError::Count)?;
        let index = u16::try_from(index).ok().filter(|i| *i < count).ok_or(SegmentError::Index(count - 1))?;
        Ok(Self { index, count })
    }

    pub fn index(self) -> u16 {
        self.index
    }

    pub fn count(self) -> u16 {
        self.count
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// The id prefix segment `index` starts at (`None`: the first segment, from the start).
    fn lower(index: u16, count: u16) -> Option<String> {
        if index == 0 {
            return None;
        }
        let point = u32::from(index) * POINTS / u32::from(count);
        let first = ALPHABET[(point / 62) as usize];
        let second = ALPHABET[(point % 62) as usize];
        Some(String::from_utf8(vec![first, second]).expect("ASCII"))
    }

    /// The index sort keys of this segment, both inclusive: `CONN#<lower>` to just below the next
    /// segment's lower bound. Below that bound means: the bound's first character, its second
    /// less one, then a character above any an id may hold (every id starting below the bound
    /// sorts under this key, and none starting at it).
    pub fn sort_key_range(self) -> (String, String) {
        let prefix = keys::connection_prefix();
        let low = Self::lower(self.index, self.count).map_or_else(|| prefix.to_owned(), |l| format!("{prefix}{l}"));
        let next = (self.index + 1 < self.count).then(|| Self::lower(self.index + 1, self.count)).flatten();
        let high = match next {
            Some(next) => {
                let bytes = next.as_bytes();
                let below = char::from(bytes[1] - 1);
                format!("{prefix}{}{below}{ABOVE_ANY_ID_BYTE}", char::from(bytes[0]))
            }
            None => format!("{prefix}{ABOVE_ANY_ID_BYTE}"),
        };
        (low, high)
    }

    /// True when `id` is in this segment (the same rule as [`Segment::sort_key_range`], for a
    /// listing that is not a key-range query).
    pub fn contains(self, id: &ConnectionId) -> bool {
        let key = keys::connection(id);
        let (low, high) = self.sort_key_range();
        low.as_str() <= key.as_str() && key.as_str() <= high.as_str()
    }

    /// `k/n`, as logs and answers show it.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id_strategy() -> impl Strategy<Value = ConnectionId> {
        "[A-Za-z0-9._:@=+-]{1,24}".prop_map(|s| ConnectionId::parse(s).unwrap())
    }

    proptest! {
        /// Every id is in exactly one segment of any split.
        #[test]
        fn segments_are_disjoint_and_cover_every_id(id in id_strategy(), count in 1u64..=100) {
            let holders: Vec<u64> =
                (0..count).filter(|k| Segment::new(*k, count).unwrap().contains(&id)).collect();
            prop_assert_eq!(holders.len(), 1, "{} in segments {:?} of {}", id.as_str(), holders, count);
        }
    }

    #[test]
    fn the_ranges_follow_each_other_in_key_order() {
        for count in 1..=100u64 {
            let ranges: Vec<(String, String)> =
                (0..count).map(|k| Segment::new(k, count).unwrap().sort_key_range()).collect();
            for pair in ranges.windows(2) {
                assert!(pair[0].0 < pair[0].1 && pair[0].1 < pair[1].0, "{count}: {pair:?}");
            }
            assert_eq!(ranges[0].0, "CONN#");
            assert_eq!(ranges.last().unwrap().1, "CONN#~");
        }
    }

    #[test]
    fn base64_ids_spread_evenly_over_the_segments() {
        // API Gateway-like ids: 16 base64 characters (a fixed generator, so no flakiness).
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+";
        let ids: Vec<ConnectionId> = (0..20_000)
            .map(|_| {
                let s: String = (0..15)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        char::from(alphabet[(state % 63) as usize])
                    })
                    .chain(std::iter::once('='))
                    .collect();
                ConnectionId::parse(s).unwrap()
            })
            .collect();
        for count in [2u64, 4, 8, 16] {
            let shares: Vec<usize> = (0..count)
                .map(|k| ids.iter().filter(|id| Segment::new(k, count).unwrap().contains(id)).count())
                .collect();
            let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(max * 4 <= min * 5, "{count} segments: {shares:?}");
        }
    }

    #[test]
    fn a_bad_pair_says_what_to_send() {
        assert_eq!(Segment::new(0, 0).unwrap_err().to_string(), "segments must be a whole number from 1 to 100");
        assert_eq!(Segment::new(0, 101).unwrap_err(), SegmentError::Count);
        assert_eq!(
            Segment::new(4, 4).unwrap_err().to_string(),
            "segment must be a whole number from 0 to segments - 1 (here 0 to 3)"
        );
        assert_eq!(Segment::new(3, 4).unwrap().label(), "3/4");
        assert!(Segment::WHOLE.is_whole());
    }
}
