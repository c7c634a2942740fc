//! Signed claims of actor modules, and the capabilities they grant.
//!
//! `lattice sign` embeds a token in the custom section
//! [`SECTION`](lattice::abi::CLAIMS_SECTION) of a module: a JWT (as NATS and
//! wasmCloud write them: `header.payload.signature`, base64url) whose payload
//! is [`Claims`], signed with the ed25519 key of an issuer (an nkeys account
//! key, `A…`). The claims name the module's own key (`M…`), the sha256 of
//! the module without that section, the contracts it implements, what it may
//! call and publish, and when they are valid.
//!
//! A host checks them on every path a module arrives by ([`check`]). With
//! trusted issuers it runs only modules signed by one of them; without, it
//! runs unsigned modules, but never a signed one whose claims do not hold
//! (tampered, expired, not yet valid). The capabilities of a signed module
//! are enforced on every call and publish it makes ([`Capabilities`]).

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lattice::abi::CLAIMS_SECTION;
use lattice::{Error, ErrorKind};
use nkeys::{KeyPair, KeyPairType};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The header of every token: an ed25519 signature by an nkey.
const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// The largest token read: claims are small.
const MAX_TOKEN: usize = 64 << 10;

/// What a module's signed token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer's public key (an nkeys account key, `A…`): who signed.
    pub iss: String,
    /// The module's public key (an nkeys module key, `M…`): its identity.
    pub sub: String,
    /// When it was signed, in seconds since the Unix epoch.
    pub iat: u64,
    /// Not valid before, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Not valid from, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// What the module is and may do.
    pub lattice: ModuleClaims,
}

impl Claims {
    /// Claims for the module whose public key is `sub`, implementing
    /// `contracts`: signed now, valid from now on without end, granting no
    /// call and no publish. [`sign`] fills in the issuer and the hash.
    pub fn new(sub: impl Into<String>, contracts: Vec<String>) -> Claims {
        Claims {
            iss: String::new(),
            sub: sub.into(),
            iat: now(),
            nbf: None,
            exp: None,
            lattice: ModuleClaims {
                hash: String::new(),
                contracts,
                calls: Vec::new(),
                publishes: Vec::new(),
            },
        }
    }
}

/// The Lattice part of [`Claims`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleClaims {
    /// The sha256 (hex) of the module without its claims section.
    pub hash: String,
    /// The contracts the module implements.
    pub contracts: Vec<String>,
    /// The calls it may make: `ACTOR.CONTRACT` patterns, either part `*`
    /// for any (`counter.*`, `*.echo`, `*`); a pattern without a `.` is
    /// `ACTOR.*`.
    #[serde(default)]
    pub calls: Vec<String>,
    /// The subjects it may publish to: NATS patterns (`orders.*`,
    /// `audit.>`), relative to the lattice.
    #[serde(default)]
    pub publishes: Vec<String>,
}

fn unauthorized(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Unauthorized, message)
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidModule, message)
}

/// Where a module's claims section is.
struct Found<'a> {
    /// The section's bytes in the module: its id, size and contents.
    section: Range<usize>,
    /// The token it holds.
    token: &'a [u8],
}

/// The claims section of `module`; `None` when it has none.
fn find(module: &[u8]) -> Result<Option<Found<'_>>, Error> {
    let bad = |e: wasmparser::BinaryReaderError| invalid(format!("not a valid module: {e}"));
    if module.len() < 8 || &module[..4] != b"\0asm" {
        return Err(invalid("not a WebAssembly module"));
    }
    let mut reader = wasmparser::BinaryReader::new(&module[8..], 8);
    let mut found = None;
    while !reader.eof() {
        let start = reader.original_position();
        let id = reader.read_u8().map_err(bad)?;
        let size = reader.read_var_u32().map_err(bad)? as usize;
        let contents = reader.original_position();
        let end = contents
            .checked_add(size)
            .filter(|&end| end <= module.len())
            .ok_or_else(|| invalid("a section runs past the end of the module"))?;
        if id == 0 {
            let mut custom = wasmparser::BinaryReader::new(&module[contents..end], contents);
            if custom.read_string().map_err(bad)? == CLAIMS_SECTION {
                if found.is_some() {
                    return Err(unauthorized(format!(
                        "the module has two `{CLAIMS_SECTION}` sections"
                    )));
                }
                found = Some(Found {
                    section: start..end,
                    token: &module[custom.original_position()..end],
                });
            }
        }
        reader.read_bytes(size).map_err(bad)?;
    }
    Ok(found)
}

/// The sha256 (hex) of `module` without its claims section: what the
/// claims sign.
pub fn module_hash(module: &[u8]) -> Result<String, Error> {
    let mut hasher = sha2::Sha256::new();
    match find(module)? {
        Some(Found { section, .. }) => {
            hasher.update(&module[..section.start]);
            hasher.update(&module[section.end..]);
        }
        None => hasher.update(module),
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `module` signed: its claims section (any old one dropped) holding
/// `claims`, with `claims.lattice.hash` set, signed by `issuer`.
pub fn sign(module: &[u8], mut claims: Claims, issuer: &KeyPair) -> Result<Vec<u8>, Error> {
    if issuer.key_pair_type() != KeyPairType::Account {
        return Err(Error::new(
            ErrorKind::InvalidName,
            "the issuer key is not an issuer (account) key; make one with `lattice keys new issuer`",
        ));
    }
    claims.iss = issuer.public_key();
    claims.lattice.hash = module_hash(module)?;
    let token = encode(&claims, issuer)?;
    let mut signed = match find(module)? {
        Some(Found { section, .. }) => [&module[..section.start], &module[section.end..]].concat(),
        None => module.to_vec(),
    };
    wasm_encoder::Section::append_to(
        &wasm_encoder::CustomSection {
            name: CLAIMS_SECTION.into(),
            data: token.as_bytes().into(),
        },
        &mut signed,
    );
    Ok(signed)
}

/// The token of `claims`, signed by `issuer`.
fn encode(claims: &Claims, issuer: &KeyPair) -> Result<String, Error> {
    let payload = serde_json::to_vec(claims)
        .map_err(|e| Error::new(ErrorKind::Encode, format!("cannot encode claims: {e}")))?;
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|e| Error::new(ErrorKind::Encode, format!("cannot sign: {e}")))?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The claims of a token whose signature is its issuer's.
fn decode(token: &[u8]) -> Result<Claims, Error> {
    if token.len() > MAX_TOKEN {
        return Err(unauthorized(format!(
            "the claims are {} bytes; at most {MAX_TOKEN}",
            token.len()
        )));
    }
    let token = std::str::from_utf8(token)
        .map_err(|_| unauthorized("the claims section is not a token (not UTF-8)"))?;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(unauthorized(
            "the claims section is not a token (header.payload.signature)",
        ));
    };
    let base64 = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| unauthorized(format!("the claims token's {what} is not base64url")))
    };
    let header_json: serde_json::Value = serde_json::from_slice(&base64(header, "header")?)
        .map_err(|_| unauthorized("the claims token's header is not JSON"))?;
    if header_json["alg"] != "ed25519-nkey" {
        return Err(unauthorized(format!(
            "the claims are signed with {}, not ed25519-nkey",
            header_json["alg"]
        )));
    }
    let claims: Claims = serde_json::from_slice(&base64(payload, "payload")?)
        .map_err(|e| unauthorized(format!("the claims do not decode: {e}")))?;
    let issuer = KeyPair::from_public_key(&claims.iss)
        .ok()
        .filter(|k| k.key_pair_type() == KeyPairType::Account)
        .ok_or_else(|| {
            unauthorized(format!(
                "the claims' issuer {:?} is not an issuer (account) public key",
                claims.iss
            ))
        })?;
    let module_key = KeyPair::from_public_key(&claims.sub).ok();
    if module_key.is_none_or(|k| k.key_pair_type() != KeyPairType::Module) {
        return Err(unauthorized(format!(
            "the claims' subject {:?} is not a module public key",
            claims.sub
        )));
    }
    let signed = &token[..header.len() + 1 + payload.len()];
    issuer
        .verify(signed.as_bytes(), &base64(signature, "signature")?)
        .map_err(|_| {
            unauthorized(format!(
                "the claims' signature is not {}'s: they were changed after signing",
                claims.iss
            ))
        })?;
    Ok(claims)
}

/// The claims of `module`, their signature and the module's hash checked,
/// but not their validity in time nor the issuer's trust (see [`check`]);
/// `None` for an unsigned module.
pub fn read(module: &[u8]) -> Result<Option<Claims>, Error> {
    let Some(found) = find(module)? else {
        return Ok(None);
    };
    let claims = decode(found.token)?;
    let hash = module_hash(module)?;
    if claims.lattice.hash != hash {
        return Err(unauthorized(format!(
            "the module was changed after it was signed: its sha256 without the claims is \
             {hash}, the claims say {}",
            claims.lattice.hash
        )));
    }
    Ok(Some(claims))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a host may run `module` at `now` (seconds since the Unix epoch),
/// trusting the issuers `trusted` (public keys; none: any module, signed or
/// not, but never one whose claims do not hold). Its claims, for a signed
/// module; every refusal is `unauthorized` and says why.
pub fn check(module: &[u8], trusted: &[String], now: u64) -> Result<Option<Claims>, Error> {
    let Some(claims) = read(module)? else {
        if trusted.is_empty() {
            return Ok(None);
        }
        return Err(unauthorized(
            "the module is not signed, and this host runs only modules signed by its trusted \
             issuers; sign it with `lattice sign`",
        ));
    };
    if let Some(nbf) = claims.nbf.filter(|&nbf| nbf > now) {
        return Err(unauthorized(format!(
            "the module's claims are not valid yet: from {} ({}s from now)",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(nbf)
            ),
            nbf - now
        )));
    }
    if let Some(exp) = claims.exp.filter(|&exp| exp <= now) {
        return Err(unauthorized(format!(
            "the module's claims expired at {}",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp)
            )
        )));
    }
    if !trusted.is_empty() && !trusted.contains(&claims.iss) {
        return Err(unauthorized(format!(
            "the module is signed by {}, an issuer this host does not trust (it trusts {})",
            claims.iss,
            trusted.join(", ")
        )));
    }
    Ok(Some(claims))
}

/// Checks that `key` is an issuer's public key, for a host's trust list.
pub fn check_issuer(key: &str) -> Result<(), Error> {
    match KeyPair::from_public_key(key) {
        Ok(k) if k.key_pair_type() == KeyPairType::Account => Ok(()),
        _ => Err(Error::new(
            ErrorKind::InvalidName,
            format!(
                "{key:?} is not an issuer public key (an nkeys account key, A…); \
                 `lattice keys new issuer` makes one"
            ),
        )),
    }
}

/// What a signed module may do beyond answering calls: the calls it may
/// make and the subjects it may publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    module: String,
    calls: Vec<(String, String)>,
    publishes: Vec<String>,
}

impl Capabilities {
    /// The capabilities `claims` grant.
    pub fn of(claims: &Claims) -> Capabilities {
        Capabilities {
            module: claims.sub.clone(),
            calls: claims
                .lattice
                .calls
                .iter()
                .map(|p| match p.split_once('.') {
                    Some((actor, contract)) => (actor.to_owned(), contract.to_owned()),
                    None => (p.clone(), "*".to_owned()),
                })
                .collect(),
            publishes: claims.lattice.publishes.clone(),
        }
    }

    /// Whether a call to `contract` on `actor` (a name, without a key) is
    /// granted; `unauthorized` if not.
    pub fn may_call(&self, actor: &str, contract: &str) -> Result<(), Error> {
        let part = |pattern: &str, name: &str| pattern == "*" || pattern == name;
        if self
            .calls
            .iter()
            .any(|(a, c)| part(a, actor) && part(c, contract))
        {
            return Ok(());
        }
        Err(unauthorized(format!(
            "module {} may not call {contract} on `{actor}`: its claims grant calls to {}",
            self.module,
            list(self.calls.iter().map(|(a, c)| format!("{a}.{c}")))
        )))
    }

    /// Whether publishing to `subject` is granted; `unauthorized` if not.
    pub fn may_publish(&self, subject: &str) -> Result<(), Error> {
        if self.publishes.iter().any(|p| subject_matches(p, subject)) {
            return Ok(());
        }
        Err(unauthorized(format!(
            "module {} may not publish to {subject}: its claims grant {}",
            self.module,
            list(self.publishes.iter().cloned())
        )))
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// Whether the NATS pattern `pattern` (`*` one token, `>` the rest)
/// matches `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_like_nats() {
        for (pattern, subject, matches) in [
            ("a.b", "a.b", true),
            ("a.*", "a.b", true),
            ("a.*", "a.b.c", false),
            ("a.>", "a.b.c", true),
            ("a.>", "a", false),
            (">", "x", true),
            ("a.b", "a", false),
        ] {
            assert_eq!(
                subject_matches(pattern, subject),
                matches,
                "{pattern} {subject}"
            );
        }
    }
}
