//! Sharding: which symbols this process watches when several processes split a market between them
//! (`MARKETFEED_SHARD=<index>/<count>`).
//!
//! A symbol belongs to shard `hash(symbol) mod count`, with a hash of its name alone that never changes (FNV-1a,
//! then a 64-bit finalizer so that names differing in one letter spread): the same on every process, every
//! restart and every version, whatever the order of a list, and the same shard for a symbol on every market, so
//! BTCUSDT is on one shard everywhere. A listing change moves no other symbol. Coordination is none: every replica
//! of every shard reads the same configuration and the same listing and picks its own part.

use std::fmt;

/// Refuse more shards than this: past it, a typo is likelier than a deployment.
pub const MAX_SHARDS: u32 = 1024;

/// One shard of `count`, numbered from 0 (a StatefulSet's pod ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// The shard `index` of `count`, when `index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index < count && count <= MAX_SHARDS).then_some(Self { index, count })
    }

    /// Reads `<index>/<count>`, e.g. `2/4`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| "expected <index>/<count>, e.g. 0/4".to_owned())?;
        let number = |part: &str, what: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what} {part:?} is not a whole number"))
        };
        let (index, count) = (number(index, "index")?, number(count, "count")?);
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("count must be 1 to {MAX_SHARDS}, not {count}"));
        }
        Self::new(index, count).ok_or_else(|| {
            format!(
                "index {index} is out of range: shards are numbered from 0, so 0 to {} of {count}",
                count - 1
            )
        })
    }

    /// This shard's number, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards split the symbols.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether `symbol` is this shard's to watch.
    pub fn contains(self, symbol: &str) -> bool {
        shard_of(symbol, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Keeps in `symbols` only `shard`'s part, in order; all of them when there is no shard.
pub fn retain_part(shard: Option<Shard>, symbols: &mut Vec<String>) {
    if let Some(shard) = shard {
        symbols.retain(|s| shard.contains(s));
    }
}

/// The shard of `symbol` among `count` (at least 1).
pub fn shard_of(symbol: &str, count: u32) -> u32 {
    (stable_hash(symbol) % u64::from(count.max(1))) as u32
}

/// FNV-1a over the name's bytes, then the murmur3 64-bit finalizer: fixed constants, no per-process seed.
fn stable_hash(symbol: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let h = symbol
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    avalanche(h)
}

/// MurmurHash3's 64-bit finalizer: every input bit moves about half the output bits, the low ones included. Also
/// the finish of the session's stream-name hash.
pub(crate) fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_count() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse(" 0 / 1 "), Ok(Shard { index: 0, count: 1 }));
        let errors = [
            ("4", "expected <index>/<count>, e.g. 0/4"),
            (
                "4/4",
                "index 4 is out of range: shards are numbered from 0, so 0 to 3 of 4",
            ),
            ("1/0", "count must be 1 to 1024, not 0"),
            ("0/2000", "count must be 1 to 1024, not 2000"),
            ("-1/4", "index \"-1\" is not a whole number"),
            ("a/4", "index \"a\" is not a whole number"),
            ("1/four", "count \"four\" is not a whole number"),
        ];
        for (text, error) in errors {
            assert_eq!(Shard::parse(text), Err(error.to_owned()), "{text}");
        }
    }

    /// The assignment is part of the deployment's contract: replicas of different versions must agree. These
    /// values were computed once and must never change.
    #[test]
    fn the_hash_never_changes() {
        let fixed: Vec<u32> = ["BTCUSDT", "ETHUSDT", "BTCUSD", "SOLUSDT", "1000PEPEUSDT"]
            .iter()
            .map(|s| shard_of(s, 1024))
            .collect();
        assert_eq!(fixed, FIXED_SHARDS_OF_1024);
    }

    const FIXED_SHARDS_OF_1024: [u32; 5] = [658, 606, 986, 494, 767];

    #[test]
    fn every_symbol_is_on_exactly_one_shard_whatever_the_order() {
        let symbols: Vec<String> = (0..500).map(|i| format!("SYM{i}USDT")).collect();
        let mut reversed = symbols.clone();
        reversed.reverse();
        for count in 1..=8 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            for s in &symbols {
                assert_eq!(shards.iter().filter(|sh| sh.contains(s)).count(), 1, "{s}");
            }
            for shard in &shards {
                let forward: Vec<&String> = symbols.iter().filter(|s| shard.contains(s)).collect();
                let mut backward: Vec<&String> =
                    reversed.iter().filter(|s| shard.contains(s)).collect();
                backward.reverse();
                assert_eq!(forward, backward);
            }
        }
    }

    /// Over a real listing (Binance USD-M's 122 symbols, 2021), two shards are within 10 % of an even split. A
    /// hash of each name alone balances like a fair coin: within 10 % needs some hundreds of symbols per shard
    /// (the whole market's lists are 500 to 2000 each), which is the price of never moving a symbol between
    /// shards when others are listed (docs/decisions.md).
    #[test]
    fn a_real_listing_splits_evenly() {
        let info: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/binance-usdm/rest-exchangeInfo-2021-real.json"
        )))
        .unwrap();
        let symbols: Vec<&str> = info["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["symbol"].as_str().unwrap())
            .collect();
        assert_eq!(symbols.len(), 122);
        let mut sizes = [0usize; 2];
        for s in &symbols {
            sizes[shard_of(s, 2) as usize] += 1;
        }
        let even = symbols.len() as f64 / 2.0;
        for size in sizes {
            assert!(
                (size as f64 - even).abs() <= even * 0.1,
                "{sizes:?} is not within 10 % of {even}"
            );
        }
    }
}
