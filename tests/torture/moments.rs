//! When each run is killed: a fraction of the command's measured uninterrupted duration, drawn
//! from the seed, the command's name and the run's number alone, so that `--seed S` with a
//! command filter replays the very same moments.

use std::time::Duration;

/// SplitMix64: tiny, seedable, and good enough to spread kill moments.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a: a stable hash of a command's name (std's hasher may change between releases).
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How far into the command run `run` (1-based, of `runs`) is killed, as a fraction of its
/// measured duration. With three runs or more, the first is killed at once and the last after
/// the command should have ended; the others anywhere in between.
pub fn fraction(seed: u64, command: &str, run: usize, runs: usize) -> f64 {
    let mut rng = SplitMix64(seed ^ name_hash(command) ^ (run as u64).wrapping_mul(0xA24B_AED4));
    let u = rng.unit();
    match run {
        1 if runs >= 3 => 0.0,
        r if r == runs && runs >= 3 => 1.1 + 0.4 * u,
        _ => u,
    }
}

pub fn delay(fraction: f64, measured: Duration) -> Duration {
    measured.mul_f64(fraction)
}

/// A seed for a run that was not given one.
pub fn fresh_seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS has a random source");
    // Short enough to type back in.
    u64::from_le_bytes(b) % 1_000_000_000
}
