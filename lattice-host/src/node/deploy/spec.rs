//! What a deployment declares, as stored in the lattice's key-value bucket,
//! and the manifest file users write it in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lattice::names::{NameKind, validate};
use lattice::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::node::control::LimitsRequest;
use crate::runtime::options::{HostOptions, check_label};

/// The most replicas one deployment may ask for.
pub const MAX_REPLICAS: u32 = 10_000;

/// A deployment as the lattice keeps it: one actor, its module by digest,
/// and where its replicas run. Stored as JSON under the actor's name in
/// the bucket `lattice-{lattice}-deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The actor's name.
    pub name: String,
    /// The module's sha256, 64 lowercase hex digits: its name in the
    /// lattice's object store `lattice-{lattice}-modules`.
    pub module: String,
    /// Running copies of the actor, each on a host of its own while there
    /// are enough matching hosts (a host holding several runs the actor
    /// with as many times its instances). Not with `daemon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// One replica on every matching host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub daemon: bool,
    /// Labels every host of this deployment has (`zone = "eu-1"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requirements: BTreeMap<String, String>,
    /// How the replicas spread over hosts by label, with weights: each
    /// spread gets its share of the replicas, on the hosts that also have
    /// its labels. None: over every matching host alike. Not with `daemon`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<Spread>,
    /// The limits of each replica, as `lattice start` takes them.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: LimitsRequest,
}

fn is_default(limits: &LimitsRequest) -> bool {
    *limits == LimitsRequest::default()
}

/// One share of a deployment's replicas (see [`Deployment::spread`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    /// The labels of the hosts this share goes to.
    pub requirements: BTreeMap<String, String>,
    /// Its weight against the other spreads: 1 unless given.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

impl Deployment {
    /// The replicas asked for: `replicas`, 1 when not given; 0 for a daemon
    /// (it has as many as matching hosts).
    pub fn replicas(&self) -> u32 {
        if self.daemon {
            0
        } else {
            self.replicas.unwrap_or(1)
        }
    }

    /// Checks every field, naming the one at fault: `decode` (400).
    pub fn check(&self) -> Result<(), Error> {
        let field = |f: &str, why: String| {
            Error::new(
                ErrorKind::Decode,
                format!("deployment `{}`: `{f}` {why}", self.name),
            )
        };
        validate(NameKind::Actor, &self.name).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("deployment `{}`: `name`: {e}", self.name),
            )
        })?;
        if !is_digest(&self.module) {
            return Err(field(
                "module",
                format!(
                    "must be a sha256 digest, 64 lowercase hex digits; got {:?}",
                    self.module
                ),
            ));
        }
        match (self.daemon, self.replicas) {
            (true, Some(_)) => {
                return Err(field(
                    "replicas",
                    "cannot go with `daemon = true`: a daemon runs one replica on every matching host".into(),
                ));
            }
            (false, Some(0)) => {
                return Err(field(
                    "replicas",
                    "must be at least 1 (`lattice undeploy` removes a deployment)".into(),
                ));
            }
            (false, Some(n)) if n > MAX_REPLICAS => {
                return Err(field("replicas", format!("is {n}; at most {MAX_REPLICAS}")));
            }
            _ => {}
        }
        if self.daemon && !self.spread.is_empty() {
            return Err(field(
                "spread",
                "cannot go with `daemon = true`; give the daemon's hosts as `requirements`".into(),
            ));
        }
        for (key, value) in &self.requirements {
            check_label(key, value).map_err(|e| field("requirements", e.message().to_owned()))?;
        }
        for (i, spread) in self.spread.iter().enumerate() {
            let at = format!("spread[{i}]");
            if spread.weight == 0 {
                return Err(field(&format!("{at}.weight"), "must be at least 1".into()));
            }
            for (key, value) in &spread.requirements {
                check_label(key, value)
                    .map_err(|e| field(&format!("{at}.requirements"), e.message().to_owned()))?;
                // Never met: no host has two values of one label.
                if let Some(required) = self.requirements.get(key).filter(|v| *v != value) {
                    return Err(field(
                        &format!("{at}.requirements"),
                        format!(
                            "asks for {key} = {value:?} where the deployment requires \
                             {key} = {required:?}: no host can meet both"
                        ),
                    ));
                }
            }
        }
        // As the most permissive host would check them: whether a host has
        // fuel or room for the memory is its own answer when it starts one.
        let permissive = HostOptions::default().fuel(true).pooling(false);
        self.limits
            .apply()
            .check(&permissive)
            .map_err(|e| field("limits", e.message().to_owned()))?;
        Ok(())
    }
}

/// Whether `s` is a sha256 digest as the lattice writes it.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A manifest: the deployments of one file (TOML).
///
/// ```toml
/// [[actor]]
/// name = "echo"
/// module = "target/wasm32-wasip1/release/example_echo_actor.wasm"
/// replicas = 2
///
/// [[actor]]
/// name = "counter"
/// module = "sha256:5f1d…"          # a module already in the lattice
/// daemon = true
/// requirements = { zone = "eu-1" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The actors, each a deployment.
    #[serde(default)]
    pub actor: Vec<ManifestActor>,
}

/// One actor of a [`Manifest`]: a [`Deployment`] whose module is a file or
/// a digest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestActor {
    /// The actor's name.
    pub name: String,
    /// A path to a `.wasm` file (relative to the manifest), uploaded by
    /// `lattice deploy`; or `sha256:HEX`, a module already in the lattice.
    pub module: String,
    /// See [`Deployment::replicas`].
    #[serde(default)]
    pub replicas: Option<u32>,
    /// See [`Deployment::daemon`].
    #[serde(default)]
    pub daemon: bool,
    /// See [`Deployment::requirements`].
    #[serde(default)]
    pub requirements: BTreeMap<String, String>,
    /// See [`Deployment::spread`].
    #[serde(default)]
    pub spread: Vec<Spread>,
    /// See [`Deployment::limits`].
    #[serde(default)]
    pub limits: LimitsRequest,
}

/// Where a manifest's module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A file, to upload.
    File(PathBuf),
    /// A digest of a module already in the lattice's object store.
    Digest(String),
}

impl ManifestActor {
    /// Where its module comes from; a relative path is taken from `base`,
    /// and `${NAME}` in a path is the environment variable `NAME`
    /// (`${CARGO_TARGET_DIR}/wasm32-wasip1/release/echo.wasm`).
    pub fn source(&self, base: &Path) -> Result<ModuleSource, Error> {
        match self.module.strip_prefix("sha256:") {
            Some(digest) if is_digest(digest) => Ok(ModuleSource::Digest(digest.to_owned())),
            Some(_) => Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "actor `{}`: `module` {:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)",
                    self.name, self.module
                ),
            )),
            None => {
                let path = expand(&self.module, |name| std::env::var(name).ok()).map_err(|name| {
                    Error::new(
                        ErrorKind::Decode,
                        format!(
                            "actor `{}`: `module` {:?} names the environment variable `{name}`, which is not set",
                            self.name, self.module
                        ),
                    )
                })?;
                Ok(ModuleSource::File(base.join(path)))
            }
        }
    }

    /// The deployment, given its module's digest.
    pub fn deployment(&self, digest: String) -> Deployment {
        Deployment {
            name: self.name.clone(),
            module: digest,
            replicas: self.replicas,
            daemon: self.daemon,
            requirements: self.requirements.clone(),
            spread: self.spread.clone(),
            limits: self.limits.clone(),
        }
    }
}

/// `text` with every `${NAME}` replaced by `var(NAME)`; the name of the
/// first variable `var` does not know, if any.
fn expand(text: &str, var: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let Some(len) = rest[at + 2..].find('}') else {
            break;
        };
        let name = &rest[at + 2..at + 2 + len];
        out.push_str(&rest[..at]);
        out.push_str(&var(name).ok_or_else(|| name.to_owned())?);
        rest = &rest[at + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Manifest {
    /// Parses a manifest, naming the field and line of what is wrong.
    pub fn parse(text: &str, file: &Path) -> Result<Manifest, Error> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("{}: {}", file.display(), e.to_string().trim_end()),
            )
        })?;
        if manifest.actor.is_empty() {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "{}: no `[[actor]]`: a manifest declares at least one actor",
                    file.display()
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for actor in &manifest.actor {
            if !seen.insert(actor.name.as_str()) {
                return Err(Error::new(
                    ErrorKind::Decode,
                    format!(
                        "{}: actor `{}` is declared twice",
                        file.display(),
                        actor.name
                    ),
                ));
            }
            // Everything but the module, checked before anything is uploaded.
            actor.deployment("0".repeat(64)).check()?;
            actor.source(Path::new(""))?;
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, Path::new("m.toml")).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn a_manifest_reads_as_deployments() {
        let m = parse(
            r#"
            [[actor]]
            name = "echo"
            module = "echo.wasm"
            replicas = 3
            requirements = { tier = "edge" }
            [[actor.spread]]
            requirements = { zone = "eu" }
            weight = 2
            [[actor.spread]]
            requirements = { zone = "us" }
            [actor.limits]
            max_instances = 4

            [[actor]]
            name = "counter"
            module = "sha256:5f1d000000000000000000000000000000000000000000000000000000000000"
            daemon = true
            "#,
        )
        .unwrap();
        assert_eq!(m.actor.len(), 2);
        let echo = &m.actor[0];
        assert_eq!(
            echo.source(Path::new("/p")).unwrap(),
            ModuleSource::File("/p/echo.wasm".into())
        );
        assert_eq!(echo.spread[1].weight, 1);
        assert_eq!(echo.limits.max_instances, Some(4));
        let d = echo.deployment("ab".repeat(32));
        d.check().unwrap();
        assert_eq!(d.replicas(), 3);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(serde_json::from_value::<Deployment>(json).unwrap(), d);
        assert!(matches!(
            m.actor[1].source(Path::new("/p")).unwrap(),
            ModuleSource::Digest(_)
        ));
        assert_eq!(m.actor[1].deployment("ab".repeat(32)).replicas(), 0);
    }

    #[test]
    fn module_paths_take_environment_variables() {
        let var = |name: &str| (name == "T").then(|| "/tmp/t".to_owned());
        assert_eq!(expand("${T}/a.wasm", var).unwrap(), "/tmp/t/a.wasm");
        assert_eq!(expand("a${T}b${T}", var).unwrap(), "a/tmp/tb/tmp/t");
        assert_eq!(expand("plain.wasm", var).unwrap(), "plain.wasm");
        assert_eq!(expand("${T", var).unwrap(), "${T");
        assert_eq!(expand("${NOPE}/a.wasm", var).unwrap_err(), "NOPE");
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let actor =
            |extra: &str| format!("[[actor]]\nname = \"echo\"\nmodule = \"echo.wasm\"\n{extra}\n");
        for (text, expected) in [
            (actor("replica = 2"), "unknown field `replica`"),
            (actor("replicas = 0"), "`replicas` must be at least 1"),
            (actor("replicas = -1"), "replicas"),
            (
                actor("replicas = 2\ndaemon = true"),
                "`replicas` cannot go with `daemon",
            ),
            (
                actor("[[actor.spread]]\nrequirements = {}\nweight = 0"),
                "`spread[0].weight`",
            ),
            (
                actor(
                    "requirements = { zone = \"eu\" }\n[[actor.spread]]\nrequirements = { zone = \"us\" }",
                ),
                "no host can meet both",
            ),
            (
                actor("requirements = { \"a b\" = \"x\" }"),
                "`requirements`",
            ),
            (actor("[actor.limits]\nmax_instances = 0"), "`limits`"),
            (
                actor("[actor.limits]\nmax_instance = 2"),
                "unknown field `max_instance`",
            ),
            (
                "[[actor]]\nname = \"echo\"\n".into(),
                "missing field `module`",
            ),
            (
                "[[actor]]\nname = \"Echo!\"\nmodule = \"e.wasm\"".into(),
                "`name`",
            ),
            (
                "[[actor]]\nname = \"e\"\nmodule = \"sha256:xyz\"".into(),
                "is not a sha256 digest",
            ),
            (format!("{}{}", actor(""), actor("")), "declared twice"),
            ("".into(), "no `[[actor]]`"),
            ("[[actors]]\nname = \"e\"".into(), "unknown field `actors`"),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(
                err.contains(expected),
                "{expected:?} in {err:?} for\n{text}"
            );
        }
    }
}
