//! Randomness from the operating system (`getrandom`): uniform indices and an adapter for the
//! RustCrypto key generators.

use crate::GeneratorError;

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), GeneratorError> {
    getrandom::fill(buf).map_err(|e| {
        GeneratorError::unavailable("the operating system's random source failed")
            .with_source(std::io::Error::other(e.to_string()))
    })
}

/// A uniform index in `0..n` (`n > 0`), without modulo bias: draws above the largest multiple
/// of `n` are drawn again, as Go's `crypto/rand.Int` does.
pub(crate) fn below(n: usize) -> Result<usize, GeneratorError> {
    let n = n as u64;
    if n <= 1 {
        return Ok(0);
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let mut b = [0u8; 8];
        fill(&mut b)?;
        let v = u64::from_le_bytes(b);
        if v < zone {
            // `v % n < n`, which came from a usize.
            return Ok(usize::try_from(v % n).unwrap_or(0));
        }
    }
}

/// `rand_core` 0.6 over [`fill`], for `rsa`; remembers a failure of the source so the caller
/// can report it instead of using a key made from zeros.
#[derive(Default)]
pub(crate) struct OsRandom {
    pub(crate) failed: Option<GeneratorError>,
}

impl rsa::rand_core::RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(e) = fill(dest) {
            self.failed = Some(e);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for OsRandom {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_covers_the_whole_range_and_nothing_else() {
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[below(7).unwrap()] += 1;
        }
        // Each bucket expects 1000; 700 is more than 9 standard deviations away.
        assert!(seen.iter().all(|&c| c > 700), "{seen:?}");
        assert_eq!(below(1).unwrap(), 0);
    }
}
