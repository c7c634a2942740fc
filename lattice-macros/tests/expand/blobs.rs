// Bytes, a renamed wire name, a private trait, raw identifiers.
/// Stores blobs.
#[lattice::contract(version = 4, name = "blob-store")]
trait Blobs {
    fn put(&mut self, key: String, data: Vec<u8>, meta: Option<Vec<u8>>) -> Result<u64, String>;
    fn get(&self, key: String) -> Vec<u8>;
    fn r#type(&self, r#ref: bytes::Bytes) -> Option<Vec<u8>>;
}
