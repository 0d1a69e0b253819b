//! The last price of a subscription: any `Decimal`, exact, written by the one feed that owns the slot and read at
//! scrape time, without a lock.
//!
//! A `Decimal` is 128 bits; no stable atomic holds that, so the cell is a sequence lock over two 64-bit halves:
//! the writer makes the sequence odd, stores both halves, makes it even again; a reader retries while it is odd or
//! changed under it. Writes are a handful of plain stores on x86 and ARM; reads are rare (scrapes, API calls).

use std::sync::atomic::{AtomicU64, Ordering, fence};

use rust_decimal::Decimal;

/// Marks "no price": `Decimal::serialize` leaves the low 16 bits of its flags word zero, so this never
/// decodes from a real value.
const NONE: [u64; 2] = [0xffff, 0];

/// A lock-free cell holding `Option<Decimal>`, for one writer and any number of readers.
#[derive(Debug)]
pub(super) struct PriceCell {
    seq: AtomicU64,
    halves: [AtomicU64; 2],
}

impl Default for PriceCell {
    fn default() -> Self {
        Self {
            seq: AtomicU64::new(0),
            halves: NONE.map(AtomicU64::new),
        }
    }
}

fn split(price: Option<Decimal>) -> [u64; 2] {
    let Some(price) = price else {
        return NONE;
    };
    let bytes = price.serialize();
    let (lo, hi) = bytes.split_at(8);
    [
        u64::from_le_bytes(lo.try_into().unwrap_or_default()),
        u64::from_le_bytes(hi.try_into().unwrap_or_default()),
    ]
}

fn join(halves: [u64; 2]) -> Option<Decimal> {
    if halves == NONE {
        return None;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&halves[0].to_le_bytes());
    bytes[8..].copy_from_slice(&halves[1].to_le_bytes());
    Some(Decimal::deserialize(bytes))
}

impl PriceCell {
    /// Stores `price`. Only one thread may write a cell at a time (the feed that owns the slot, or the rebuild
    /// before any feed starts); readers never block it.
    #[inline]
    pub(super) fn store(&self, price: Option<Decimal>) {
        let [lo, hi] = split(price);
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.halves[0].store(lo, Ordering::Relaxed);
        self.halves[1].store(hi, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Reads a value some store wrote entirely.
    pub(super) fn load(&self) -> Option<Decimal> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let halves = [
                self.halves[0].load(Ordering::Relaxed),
                self.halves[1].load(Ordering::Relaxed),
            ];
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return join(halves);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_decimal_round_trips_exactly() {
        let cell = PriceCell::default();
        assert_eq!(cell.load(), None);
        for text in [
            "0.35210000",
            "16578.50",
            "0.00000001",
            "-1.5",
            "36028797018963968",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "1234567890123456789.123456789",
        ] {
            let d = Decimal::from_str(text).unwrap();
            cell.store(Some(d));
            let read = cell.load().unwrap();
            assert_eq!(read, d, "{text}");
            assert_eq!(read.to_string(), text, "scale kept for {text}");
        }
        cell.store(None);
        assert_eq!(cell.load(), None);
    }

    #[test]
    fn a_reader_never_sees_half_of_a_write() {
        let cell = Arc::new(PriceCell::default());
        let a = Decimal::from_str("1.5").unwrap();
        let b = Decimal::from_str("-79228162514264337593543950335").unwrap();
        let writer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for i in 0..200_000 {
                    cell.store(Some(if i % 2 == 0 { a } else { b }));
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() {
            if let Some(read) = cell.load() {
                assert!(read == a || read == b, "torn read {read}");
            }
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 0);
    }
}
