//! Keys of keyed actors.
//!
//! A keyed actor (a virtual actor, as in Orleans or Durable Objects) has one
//! activation per key in the whole lattice, with a state of its own. Callers
//! address an activation as `actor/key`: `counter/alice` is the activation
//! of `counter` for the key `alice`. The key travels in the
//! [`KEY`](crate::headers::KEY) header; the subject names the actor alone.
//!
//! Keys are 1 to [`MAX_KEY_LEN`] bytes from `[A-Za-z0-9_=.-]`, neither
//! starting nor ending with `.`: the characters a JetStream key-value key
//! takes, where the state is kept. Other keys are refused, not escaped, so
//! that a key reads the same in the state bucket as in calls; encode what
//! has other characters (an email address, say) into these first.
//!
//! ```
//! use lattice::key::{split, validate_key};
//! assert_eq!(split("counter/alice"), ("counter", Some("alice")));
//! assert_eq!(split("counter"), ("counter", None));
//! assert!(validate_key("user-42").is_ok());
//! let err = validate_key("alice@example.com").unwrap_err();
//! assert!(err.message().contains("'@'"));
//! ```

use crate::error::{Error, ErrorKind};

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Splits an address into the actor's name and the key, if it has one:
/// `counter/alice` is `("counter", Some("alice"))`. Everything after the
/// first `/` is the key.
pub fn split(address: &str) -> (&str, Option<&str>) {
    match address.split_once('/') {
        Some((actor, key)) => (actor, Some(key)),
        None => (address, None),
    }
}

/// Checks an address, `actor` or `actor/key`: the actor's name against
/// the naming rule and the key, if any, against [`validate_key`].
pub fn validate_address(address: &str) -> Result<(), Error> {
    let (actor, key) = split(address);
    crate::names::validate(crate::names::NameKind::Actor, actor)?;
    match key {
        Some(key) => validate_key(key),
        None => Ok(()),
    }
}

/// Whether `b` may appear in a key.
pub const fn is_key_byte(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'=' | b'.' | b'-')
}

/// Checks a key against the rule; the error (`invalid_name`) says what is
/// wrong and what keys may hold.
pub fn validate_key(key: &str) -> Result<(), Error> {
    let rule = "keys are 1 to 256 bytes from [A-Za-z0-9_=.-], not starting or ending with '.'; \
                encode other keys (an email address, say) into these";
    let bad = |why: String| Error::new(ErrorKind::InvalidName, format!("{why}: {rule}"));
    if key.is_empty() {
        return Err(bad("the key is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad(format!("the key is {} bytes long", key.len())));
    }
    if let Some((index, ch)) = key
        .char_indices()
        .find(|&(_, c)| !c.is_ascii() || !is_key_byte(c as u8))
    {
        let shown: String = key.chars().take(64).collect();
        return Err(bad(format!("the key {shown:?} has {ch:?} at byte {index}")));
    }
    if key.starts_with('.') || key.ends_with('.') {
        return Err(bad(format!("the key {key:?} starts or ends with '.'")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_rule() {
        for ok in ["a", "alice", "user-42", "A_b=c.d", &"k".repeat(256)] {
            validate_key(ok).unwrap();
        }
        for (bad, says) in [
            ("", "empty"),
            (&"k".repeat(257) as &str, "257 bytes"),
            ("a b", "' '"),
            ("a/b", "'/'"),
            ("a*", "'*'"),
            ("a>", "'>'"),
            ("é", "'é'"),
            (".a", "starts or ends"),
            ("a.", "starts or ends"),
            ("a\r\nb", "'\\r'"),
        ] {
            let err = validate_key(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName);
            assert!(err.message().contains(says), "{says} in {err}");
        }
    }

    #[test]
    fn addresses_split_at_the_first_slash() {
        assert_eq!(split("counter/a/b"), ("counter", Some("a/b")));
        assert_eq!(split("counter/"), ("counter", Some("")));
        assert_eq!(split("/x"), ("", Some("x")));
    }
}
