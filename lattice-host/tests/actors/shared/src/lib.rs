//! A test actor over its own key-value bucket (`lattice_actor::kv`): each
//! method one operation, with the host's error as data, and a counter
//! shared by every instance on every host (read, then compare-and-set).

use lattice_actor::kv;
use serde::{Deserialize, Serialize};

/// A kv operation's error, as data: its kind and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The error's kind (`conflict`, `invalid_name`...).
    pub kind: String,
    /// Its message.
    pub message: String,
}

impl From<lattice::Error> for Failure {
    fn from(e: lattice::Error) -> Failure {
        Failure {
            kind: e.kind().as_str().to_owned(),
            message: e.message().to_owned(),
        }
    }
}

/// A value and its revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The value, as text.
    pub text: String,
    /// Its revision.
    pub revision: u64,
}

/// The kv operations, one method each.
#[lattice::contract(version = 1)]
pub trait Shared {
    /// `kv::get`.
    fn get(&self, key: String) -> Result<Option<Value>, Failure>;
    /// `kv::set`.
    fn set(&self, key: String, text: String) -> Result<u64, Failure>;
    /// `kv::set` of `size` zero bytes.
    fn set_zeros(&self, key: String, size: u32) -> Result<u64, Failure>;
    /// `kv::compare_and_set`.
    fn compare_and_set(
        &self,
        key: String,
        text: String,
        revision: Option<u64>,
    ) -> Result<u64, Failure>;
    /// `kv::delete`.
    fn delete(&self, key: String) -> Result<(), Failure>;
    /// `kv::keys`.
    fn keys(&self, prefix: String) -> Result<Vec<String>, Failure>;
    /// Adds one to the decimal number at `key`, by compare-and-set,
    /// retrying on conflict: the new number.
    fn increment(&self, key: String) -> Result<u64, Failure>;
    /// Publishes an empty event on `subject` (not a kv operation: for the
    /// tests of what a signed module may publish).
    fn publish(&self, subject: String) -> Result<(), Failure>;
}

/// No state of its own: everything is in the bucket.
#[derive(Debug, Default)]
pub struct SharedActor;

impl Shared for SharedActor {
    fn get(&self, key: String) -> Result<Option<Value>, Failure> {
        Ok(kv::get(&key)?.map(|e| Value {
            text: String::from_utf8_lossy(&e.value).into_owned(),
            revision: e.revision,
        }))
    }

    fn set(&self, key: String, text: String) -> Result<u64, Failure> {
        Ok(kv::set(&key, text.as_bytes())?)
    }

    fn set_zeros(&self, key: String, size: u32) -> Result<u64, Failure> {
        Ok(kv::set(&key, &vec![0; size as usize])?)
    }

    fn compare_and_set(
        &self,
        key: String,
        text: String,
        revision: Option<u64>,
    ) -> Result<u64, Failure> {
        Ok(kv::compare_and_set(&key, text.as_bytes(), revision)?)
    }

    fn delete(&self, key: String) -> Result<(), Failure> {
        Ok(kv::delete(&key)?)
    }

    fn keys(&self, prefix: String) -> Result<Vec<String>, Failure> {
        Ok(kv::keys(&prefix)?)
    }

    fn increment(&self, key: String) -> Result<u64, Failure> {
        loop {
            let current = kv::get(&key)?;
            let (number, revision) = match &current {
                Some(e) => (
                    String::from_utf8_lossy(&e.value)
                        .parse::<u64>()
                        .unwrap_or(0),
                    Some(e.revision),
                ),
                None => (0, None),
            };
            let next = number + 1;
            match kv::compare_and_set(&key, next.to_string().as_bytes(), revision) {
                Ok(_) => return Ok(next),
                Err(e) if e.kind() == lattice::ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn publish(&self, subject: String) -> Result<(), Failure> {
        Ok(lattice_actor::publish(&subject, &[])?)
    }
}

lattice_actor::export!(SharedActor: Shared);
