//! A test actor implementing the example `Counter` contract with its state
//! in each instance's memory: an unkeyed actor whose instances count on
//! their own. The tests of instances, scaling, updates and the transport
//! use it; the example `counter` actor is keyed.

use example_counter_contract::{Counter, CounterError};

/// A counter kept in memory: each instance of the actor counts on its own.
#[derive(Debug, Default)]
pub struct CounterActor {
    name: String,
    total: u64,
}

impl Counter for CounterActor {
    fn add(&mut self, by: u64) -> u64 {
        self.total = self.total.saturating_add(by);
        lattice_actor::debug!("added {by}, total {}", self.total);
        self.total
    }

    fn checked_add(&mut self, by: u64) -> Result<u64, CounterError> {
        self.total = self.total.checked_add(by).ok_or(CounterError::Overflow)?;
        Ok(self.total)
    }

    fn get(&self) -> u64 {
        self.total
    }

    fn rename(&mut self, name: String) -> Result<(), CounterError> {
        if name.is_empty() || name.len() > 32 {
            lattice_actor::warn!("refused the name {name:?}");
            return Err(CounterError::InvalidName { name });
        }
        lattice_actor::info!("renamed {:?} to {name:?}", self.name);
        self.name = name;
        Ok(())
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self) {
        let previous = self.total;
        self.total = 0;
        // Tell whoever listens; a failure to publish does not undo the reset.
        if let Err(e) = lattice_actor::publish("counter.reset", &previous.to_le_bytes()) {
            lattice_actor::warn!("could not publish the reset: {e}");
        }
    }
}

lattice_actor::export!(CounterActor: Counter);
