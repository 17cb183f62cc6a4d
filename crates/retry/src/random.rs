//! The source of jitter. Injectable so that tests can pin every random draw.

/// Uniform numbers in `[0, 1)` for jitter.
///
/// [`fastrand::Rng`] implements it (seed it with `fastrand::Rng::with_seed` for repeatable
/// runs); [`Sequence`] replays fixed values, to test exact bounds.
pub trait Random: Send {
    /// The next number, in `[0, 1)` (values outside are clamped by the caller).
    fn unit(&mut self) -> f64;
}

impl Random for fastrand::Rng {
    fn unit(&mut self) -> f64 {
        self.f64()
    }
}

/// Replays the given values in a cycle: `Sequence::new([0.0, 1.0])` gives 0, 1, 0, 1, ...
#[derive(Clone, Debug)]
pub struct Sequence {
    values: Vec<f64>,
    next: usize,
}

impl Sequence {
    /// A cycle over `values`; an empty list gives 0.5 forever.
    pub fn new(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            values.push(0.5);
        }
        Sequence { values, next: 0 }
    }
}

impl Random for Sequence {
    fn unit(&mut self) -> f64 {
        let v = self.values[self.next % self.values.len()];
        self.next = self.next.wrapping_add(1);
        v
    }
}
