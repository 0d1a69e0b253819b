//! The map from a data frame's stream name or topic to the connection's stream, looked up once per message.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Stream name or topic to the index of the connection's stream.
pub type StreamLookup<'c> = HashMap<&'c str, usize, BuildHasherDefault<NameHasher>>;

/// A fast unkeyed hash of a stream name, eight bytes at a time with a full-avalanche finish. The keyed default
/// (SipHash) guards a table whose keys an attacker chooses; here every key is a stream this connection asked for,
/// and only the name looked up comes from the venue, so no one can fill the table with collisions.
#[derive(Default)]
pub struct NameHasher(u64);

/// The multiplier of rustc's FxHasher.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl NameHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    /// MurmurHash3's 64-bit finalizer: the table indexes by the low bits, which the multiplications above leave
    /// blind to the high bytes of each word.
    #[inline]
    fn finish(&self) -> u64 {
        crate::shard::avalanche(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn names_that_differ_anywhere_spread_over_the_table() {
        let build = BuildHasherDefault::<NameHasher>::default();
        // 1024 names that differ only in one byte each, in every position of an eight-byte word.
        let names: Vec<String> = (0..1024).map(|i| format!("tickers.S{i:04}USDT")).collect();
        // The 64 buckets of a small table (the low six bits) all get some, none more than three times the mean.
        let mut buckets = [0_u32; 64];
        for name in &names {
            buckets[(build.hash_one(name.as_str()) & 63) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (1..=48).contains(&n)),
            "{buckets:?}"
        );
        let mut lookup = StreamLookup::default();
        for (i, name) in names.iter().enumerate() {
            lookup.insert(name.as_str(), i);
        }
        assert!(
            names
                .iter()
                .enumerate()
                .all(|(i, n)| lookup.get(n.as_str()) == Some(&i))
        );
        assert_eq!(lookup.get("tickers.S1024USDT"), None);
    }
}
