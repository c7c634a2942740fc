//! Validation of the names that appear in subjects.
//!
//! Lattice ids, host ids, actor, contract and method names all follow one
//! rule: one to [`MAX_NAME_LEN`] characters from `[a-z0-9_-]`. A name that
//! breaks it is rejected before anything reaches NATS, with an error that names
//! the value and the rule it broke.

use std::fmt;

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// What a name is for; used in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A lattice id: the namespace every host, actor and client of one lattice shares.
    Lattice,
    /// The id of a host.
    Host,
    /// The name an actor runs under (its queue group).
    Actor,
    /// The wire name of a contract.
    Contract,
    /// The wire name of a method.
    Method,
    /// A control operation.
    Operation,
    /// An event kind.
    Event,
    /// The key of a host's label.
    Label,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Lattice => "lattice id",
            NameKind::Host => "host id",
            NameKind::Actor => "actor name",
            NameKind::Contract => "contract name",
            NameKind::Method => "method name",
            NameKind::Operation => "control operation",
            NameKind::Event => "event kind",
            NameKind::Label => "label key",
        })
    }
}

/// A name that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("{kind} is empty: names are 1 to {MAX_NAME_LEN} characters from [a-z0-9_-]")]
    Empty {
        /// What the name is for.
        kind: NameKind,
    },
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error(
        "{kind} {value:?} is {len} bytes long: names are at most {MAX_NAME_LEN} characters from [a-z0-9_-]"
    )]
    TooLong {
        /// What the name is for.
        kind: NameKind,
        /// The rejected name (cut to the limit).
        value: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The name has a character outside `[a-z0-9_-]`.
    #[error(
        "{kind} {value:?} has {ch:?} at byte {index}: names use only lowercase letters, digits, '_' and '-' ([a-z0-9_-]){hint}",
        hint = invalid_char_hint(*ch)
    )]
    InvalidChar {
        /// What the name is for.
        kind: NameKind,
        /// The rejected name.
        value: String,
        /// The first offending character.
        ch: char,
        /// Its byte offset.
        index: usize,
    },
}

fn invalid_char_hint(ch: char) -> &'static str {
    match ch {
        'A'..='Z' => "; use lowercase",
        '.' => "; '.' separates subject tokens",
        '*' | '>' => "; wildcards are not names",
        ' ' | '\t' | '\n' | '\r' => "; whitespace is not allowed",
        _ => "",
    }
}

impl NameError {
    /// What the rejected name was for.
    pub fn kind(&self) -> NameKind {
        match self {
            NameError::Empty { kind }
            | NameError::TooLong { kind, .. }
            | NameError::InvalidChar { kind, .. } => *kind,
        }
    }
}

/// Checks `value` against the naming rule.
///
/// ```
/// use lattice::names::{validate, NameKind};
/// assert!(validate(NameKind::Actor, "counter-1").is_ok());
/// let err = validate(NameKind::Actor, "Counter").unwrap_err();
/// assert!(err.to_string().contains("\"Counter\""));
/// ```
pub fn validate(kind: NameKind, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if value.len() > MAX_NAME_LEN {
        let mut cut = MAX_NAME_LEN;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(NameError::TooLong {
            kind,
            value: format!("{}…", &value[..cut]),
            len: value.len(),
        });
    }
    // Names are ASCII: a table lookup per byte, where decoding chars cost
    // ~40 instructions each in a guest (guest clients validate per call).
    if value.bytes().all(|b| NAME_BYTES[usize::from(b)]) {
        return Ok(());
    }
    match value.char_indices().find(|&(_, c)| !is_name_char(c)) {
        Some((index, ch)) => Err(NameError::InvalidChar {
            kind,
            value: value.to_owned(),
            ch,
            index,
        }),
        None => Ok(()),
    }
}

/// [`is_name_char`] for each byte value.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_name_char(b as u8 as char);
        b += 1;
    }
    table
};

/// Whether `c` may appear in a name.
pub const fn is_name_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_rule() {
        for ok in [
            "a",
            "counter",
            "counter-1",
            "key_value",
            "0",
            &"x".repeat(64),
        ] {
            validate(NameKind::Actor, ok).unwrap();
        }
    }

    #[test]
    fn rejects_with_the_value_and_the_rule() {
        let err = validate(NameKind::Lattice, "").unwrap_err();
        assert_eq!(
            err,
            NameError::Empty {
                kind: NameKind::Lattice
            }
        );
        assert!(err.to_string().starts_with("lattice id is empty"));

        let err = validate(NameKind::Actor, "My.Actor").unwrap_err();
        assert_eq!(err.kind(), NameKind::Actor);
        let text = err.to_string();
        assert!(text.contains("\"My.Actor\""), "{text}");
        assert!(text.contains("'M' at byte 0"), "{text}");
        assert!(text.contains("use lowercase"), "{text}");
        assert!(text.contains("[a-z0-9_-]"), "{text}");

        let err = validate(NameKind::Method, "a.b").unwrap_err();
        assert!(err.to_string().contains("separates subject tokens"));

        let long = "é".repeat(40);
        let err = validate(NameKind::Contract, &long).unwrap_err();
        assert!(matches!(err, NameError::TooLong { len: 80, .. }), "{err:?}");
        let err = validate(NameKind::Contract, &"a".repeat(65)).unwrap_err();
        assert!(err.to_string().contains("65 bytes long"));
    }
}
