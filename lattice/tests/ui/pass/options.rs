//! Every option, on a private trait in a module, under `deny(missing_docs)`.
#![deny(missing_docs, warnings)]

mod inner {
    /// A documented contract.
    #[lattice::contract(version = 7, name = "kv-store", crate = ::lattice)]
    pub trait KeyValue {
        /// Reads a key.
        #[lattice(idempotent, timeout = "1m")]
        fn get(&self, key: String) -> Option<String>;
        /// Writes a key.
        #[lattice(timeout = "150ms")]
        #[lattice(idempotent)]
        fn set(&mut self, key: String, value: String);
        /// Forgets everything.
        #[lattice(oneway)]
        fn clear(&mut self);
        /// A default body is kept.
        fn ping(&self) -> bool {
            true
        }
    }
}

fn main() {
    use inner::KeyValue;
    use lattice::Contract;
    let d = <dyn KeyValue as Contract>::DESCRIPTOR;
    assert_eq!(d.name, "kv-store");
    assert_eq!(d.version, 7);
    assert_eq!(d.method("get").unwrap().timeout_ms, Some(60_000));
    assert_eq!(d.method("set").unwrap().timeout_ms, Some(150));
    assert!(d.method("set").unwrap().idempotent);
    let _ = inner::KeyValueGuestClient::new("kv");
}
