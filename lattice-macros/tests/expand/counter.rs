// The counter contract of the examples.
#[lattice::contract(version = 1)]
pub trait Counter {
    /// Adds `by` and returns the new total.
    fn add(&mut self, by: u64) -> u64;
    /// Returns the total.
    #[lattice(idempotent, timeout = "500ms")]
    fn get(&self) -> u64;
    fn rename(&mut self, name: String) -> Result<(), CounterError>;
    #[lattice(oneway)]
    fn reset(&mut self);
}
