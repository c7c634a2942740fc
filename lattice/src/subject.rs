//! NATS subjects of the wire protocol.
//!
//! | subject | use |
//! | --- | --- |
//! | `lattice.{lattice}.rpc.{actor}.{contract}.{method}` | calls; queue group `{actor}` |
//! | `lattice.{lattice}.ctl.{op}` | control, every host answers |
//! | `lattice.{lattice}.ctl.host.{host}.{op}` | control of one host |
//! | `lattice.{lattice}.evt.{host}.{kind}` | events |
//!
//! Every token is a validated name (see [`names`](crate::names)), so a subject
//! never holds a `.`, a wildcard or whitespace it did not mean to.

use std::fmt;
use std::str::FromStr;

use crate::names::{NameError, NameKind, validate};

/// The first token of every lattice subject.
pub const ROOT: &str = "lattice";

/// The control operation token reserved for per-host control subjects.
pub const HOST_TOKEN: &str = "host";

/// A subject that does not belong to the lattice protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject:?} is not a lattice subject: {reason}")]
pub struct SubjectError {
    subject: String,
    reason: SubjectErrorReason,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SubjectErrorReason {
    #[error(
        "expected lattice.{{lattice}}.rpc|ctl|evt.…, with rpc.{{actor}}.{{contract}}.{{method}}, ctl.{{op}}, ctl.host.{{host}}.{{op}} or evt.{{host}}.{{kind}}"
    )]
    Shape,
    #[error("{0}")]
    Name(#[from] NameError),
}

impl SubjectError {
    fn new(subject: &str, reason: impl Into<SubjectErrorReason>) -> Self {
        SubjectError {
            subject: subject.to_owned(),
            reason: reason.into(),
        }
    }

    /// The name error behind this one, if a token broke the naming rule.
    pub fn name_error(&self) -> Option<&NameError> {
        match &self.reason {
            SubjectErrorReason::Name(e) => Some(e),
            SubjectErrorReason::Shape => None,
        }
    }
}

/// The subject of one method of one actor: `lattice.{lattice}.rpc.{actor}.{contract}.{method}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RpcSubject {
    lattice: String,
    actor: String,
    contract: String,
    method: String,
}

impl RpcSubject {
    /// Validates every token.
    pub fn new(
        lattice: &str,
        actor: &str,
        contract: &str,
        method: &str,
    ) -> Result<Self, NameError> {
        validate(NameKind::Lattice, lattice)?;
        validate(NameKind::Actor, actor)?;
        validate(NameKind::Contract, contract)?;
        validate(NameKind::Method, method)?;
        Ok(RpcSubject {
            lattice: lattice.to_owned(),
            actor: actor.to_owned(),
            contract: contract.to_owned(),
            method: method.to_owned(),
        })
    }
    /// The lattice id.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }
    /// The actor name, which is also the queue group.
    pub fn actor(&self) -> &str {
        &self.actor
    }
    /// The contract's wire name.
    pub fn contract(&self) -> &str {
        &self.contract
    }
    /// The method's wire name.
    pub fn method(&self) -> &str {
        &self.method
    }
}

impl fmt::Display for RpcSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ROOT}.{}.rpc.{}.{}.{}",
            self.lattice, self.actor, self.contract, self.method
        )
    }
}

/// A control subject: `lattice.{lattice}.ctl.{op}` (every host) or
/// `lattice.{lattice}.ctl.host.{host}.{op}` (one host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlSubject {
    lattice: String,
    host: Option<String>,
    op: String,
}

impl ControlSubject {
    /// A lattice-wide control subject. `op` may not be `host`, which is reserved.
    pub fn lattice_wide(lattice: &str, op: &str) -> Result<Self, NameError> {
        validate(NameKind::Lattice, lattice)?;
        validate(NameKind::Operation, op)?;
        if op == HOST_TOKEN {
            return Err(NameError::InvalidChar {
                kind: NameKind::Operation,
                value: op.to_owned(),
                ch: 'h',
                index: 0,
            });
        }
        Ok(ControlSubject {
            lattice: lattice.to_owned(),
            host: None,
            op: op.to_owned(),
        })
    }
    /// A control subject of one host.
    pub fn for_host(lattice: &str, host: &str, op: &str) -> Result<Self, NameError> {
        validate(NameKind::Lattice, lattice)?;
        validate(NameKind::Host, host)?;
        validate(NameKind::Operation, op)?;
        Ok(ControlSubject {
            lattice: lattice.to_owned(),
            host: Some(host.to_owned()),
            op: op.to_owned(),
        })
    }
    /// The lattice id.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }
    /// The host addressed, or `None` for every host.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    /// The operation.
    pub fn op(&self) -> &str {
        &self.op
    }
}

impl fmt::Display for ControlSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            None => write!(f, "{ROOT}.{}.ctl.{}", self.lattice, self.op),
            Some(host) => write!(
                f,
                "{ROOT}.{}.ctl.{HOST_TOKEN}.{host}.{}",
                self.lattice, self.op
            ),
        }
    }
}

/// An event subject: `lattice.{lattice}.evt.{host}.{kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventSubject {
    lattice: String,
    host: String,
    kind: String,
}

impl EventSubject {
    /// Validates every token.
    pub fn new(lattice: &str, host: &str, kind: &str) -> Result<Self, NameError> {
        validate(NameKind::Lattice, lattice)?;
        validate(NameKind::Host, host)?;
        validate(NameKind::Event, kind)?;
        Ok(EventSubject {
            lattice: lattice.to_owned(),
            host: host.to_owned(),
            kind: kind.to_owned(),
        })
    }
    /// The lattice id.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }
    /// The host that emitted the event.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The event kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl fmt::Display for EventSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROOT}.{}.evt.{}.{}", self.lattice, self.host, self.kind)
    }
}

/// Any subject of the lattice protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A call.
    Rpc(RpcSubject),
    /// A control request.
    Control(ControlSubject),
    /// An event.
    Event(EventSubject),
}

impl Subject {
    /// Parses a subject, validating every token.
    ///
    /// ```
    /// use lattice::subject::Subject;
    /// let s: Subject = "lattice.prod.rpc.counter.counter.add".parse()?;
    /// let Subject::Rpc(rpc) = s else { panic!() };
    /// assert_eq!(rpc.method(), "add");
    /// # Ok::<(), lattice::subject::SubjectError>(())
    /// ```
    pub fn parse(subject: &str) -> Result<Subject, SubjectError> {
        let err = |reason: SubjectErrorReason| SubjectError::new(subject, reason);
        let name = |e: NameError| SubjectError::new(subject, e);
        let tokens: Vec<&str> = subject.split('.').collect();
        match tokens.as_slice() {
            [ROOT, lattice, "rpc", actor, contract, method] => {
                RpcSubject::new(lattice, actor, contract, method)
                    .map(Subject::Rpc)
                    .map_err(name)
            }
            [ROOT, lattice, "ctl", HOST_TOKEN, host, op] => {
                ControlSubject::for_host(lattice, host, op)
                    .map(Subject::Control)
                    .map_err(name)
            }
            [ROOT, lattice, "ctl", op] => ControlSubject::lattice_wide(lattice, op)
                .map(Subject::Control)
                .map_err(name),
            [ROOT, lattice, "evt", host, kind] => EventSubject::new(lattice, host, kind)
                .map(Subject::Event)
                .map_err(name),
            _ => Err(err(SubjectErrorReason::Shape)),
        }
    }
}

impl FromStr for Subject {
    type Err = SubjectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subject::parse(s)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Rpc(s) => s.fmt(f),
            Subject::Control(s) => s.fmt(f),
            Subject::Event(s) => s.fmt(f),
        }
    }
}

/// The filter matching every call to `actor`: `lattice.{lattice}.rpc.{actor}.>`.
pub fn rpc_filter(lattice: &str, actor: &str) -> Result<String, NameError> {
    validate(NameKind::Lattice, lattice)?;
    validate(NameKind::Actor, actor)?;
    Ok(format!("{ROOT}.{lattice}.rpc.{actor}.>"))
}

/// The filter matching every event of a lattice: `lattice.{lattice}.evt.>`.
pub fn event_filter(lattice: &str) -> Result<String, NameError> {
    validate(NameKind::Lattice, lattice)?;
    Ok(format!("{ROOT}.{lattice}.evt.>"))
}

/// The filter matching every lattice-wide control request: `lattice.{lattice}.ctl.*`.
pub fn control_filter(lattice: &str) -> Result<String, NameError> {
    validate(NameKind::Lattice, lattice)?;
    Ok(format!("{ROOT}.{lattice}.ctl.*"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9_-]{1,64}"
    }

    proptest! {
        #[test]
        fn rpc_round_trips(l in name(), a in name(), c in name(), m in name()) {
            let s = RpcSubject::new(&l, &a, &c, &m).unwrap();
            let text = s.to_string();
            prop_assert_eq!(text.split('.').count(), 6);
            prop_assert_eq!(Subject::parse(&text).unwrap(), Subject::Rpc(s));
        }

        #[test]
        fn control_round_trips(l in name(), h in name(), op in name()) {
            let one = ControlSubject::for_host(&l, &h, &op).unwrap();
            prop_assert_eq!(Subject::parse(&one.to_string()).unwrap(), Subject::Control(one));
            prop_assume!(op != HOST_TOKEN);
            let all = ControlSubject::lattice_wide(&l, &op).unwrap();
            prop_assert_eq!(Subject::parse(&all.to_string()).unwrap(), Subject::Control(all));
        }

        #[test]
        fn event_round_trips(l in name(), h in name(), k in name()) {
            let s = EventSubject::new(&l, &h, &k).unwrap();
            prop_assert_eq!(Subject::parse(&s.to_string()).unwrap(), Subject::Event(s));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = Subject::parse(&s);
        }

        #[test]
        fn bad_tokens_are_rejected(l in name(), bad in "[A-Z.*> ]{1,4}") {
            prop_assert!(RpcSubject::new(&l, &bad, "c", "m").is_err());
            let text = format!("lattice.{l}.rpc.{bad}.c.m");
            prop_assert!(Subject::parse(&text).is_err());
        }
    }

    #[test]
    fn known_subjects() {
        let s = RpcSubject::new("prod", "counter-1", "counter", "add").unwrap();
        assert_eq!(s.to_string(), "lattice.prod.rpc.counter-1.counter.add");
        let c = ControlSubject::lattice_wide("prod", "ping").unwrap();
        assert_eq!(c.to_string(), "lattice.prod.ctl.ping");
        let c = ControlSubject::for_host("prod", "h1", "stop").unwrap();
        assert_eq!(c.to_string(), "lattice.prod.ctl.host.h1.stop");
        let e = EventSubject::new("prod", "h1", "heartbeat").unwrap();
        assert_eq!(e.to_string(), "lattice.prod.evt.h1.heartbeat");
        assert_eq!(
            rpc_filter("prod", "counter").unwrap(),
            "lattice.prod.rpc.counter.>"
        );
        assert!(ControlSubject::lattice_wide("prod", "host").is_err());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = Subject::parse("lattice.prod.rpc.counter").unwrap_err();
        assert!(err.to_string().contains("expected lattice."), "{err}");
        assert!(err.name_error().is_none());
        let err = Subject::parse("lattice.Prod.rpc.a.b.c").unwrap_err();
        assert_eq!(err.name_error().unwrap().kind(), NameKind::Lattice);
        assert!(err.to_string().contains("\"Prod\""), "{err}");
    }
}
