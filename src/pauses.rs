//! Pauses between tries of something that may come back (PostgreSQL,
//! Redis): each twice the one before, up to a cap, for as long as the
//! caller is patient. A leaf: it imports nothing of ours.

use std::time::{Duration, Instant};

pub struct Pauses {
    next: Duration,
    max: Duration,
    started: Instant,
    patience: Duration,
}

impl Pauses {
    /// Pauses from `first` doubling up to `max`, given up once one would
    /// end more than `patience` after now.
    pub fn new(first: Duration, max: Duration, patience: Duration) -> Self {
        Self {
            next: first,
            max,
            started: Instant::now(),
            patience,
        }
    }

    /// Whether the next pause ends within the patience.
    pub fn next_fits(&self) -> bool {
        self.started.elapsed() + self.next <= self.patience
    }

    /// Sleep the next pause.
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.step()).await;
    }

    /// The next pause; the one after is twice as long, up to the cap.
    fn step(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(self.max);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_stop_fitting_past_the_patience() {
        let ms = Duration::from_millis;
        let mut pauses = Pauses::new(ms(100), ms(500), Duration::from_secs(60));
        let steps: Vec<u128> = (0..5).map(|_| pauses.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 500, 500]);
        assert!(pauses.next_fits());
        let impatient = Pauses::new(ms(100), ms(500), ms(50));
        assert!(!impatient.next_fits());
    }
}
