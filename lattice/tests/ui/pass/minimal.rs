#[lattice::contract]
pub trait Ping {
    fn ping(&self);
}

fn main() {
    use lattice::Contract;
    assert_eq!(<dyn Ping as Contract>::NAME, "ping");
    assert_eq!(<dyn Ping as Contract>::VERSION, 1);
}
