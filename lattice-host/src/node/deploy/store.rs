//! Where deployments live: a JetStream key-value bucket of desired state
//! (`lattice-{lattice}-deployments`, one key per actor) and an object store
//! of modules keyed by their sha256 (`lattice-{lattice}-modules`), both on
//! file storage so that they outlive a server restart.

use async_nats::jetstream::{self, kv, object_store};
use lattice::{Error, ErrorKind};
use tokio::io::AsyncReadExt;

use super::spec::{Deployment, is_digest};

/// The deployments bucket of `lattice`.
pub fn deployments_bucket(lattice: &str) -> String {
    format!("lattice-{lattice}-deployments")
}

/// The modules bucket of `lattice`.
pub fn modules_bucket(lattice: &str) -> String {
    format!("lattice-{lattice}-modules")
}

/// The largest deployment value: a deployment is a few hundred bytes.
const MAX_VALUE: i32 = 64 << 10;

/// What [`Stores::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// There was no deployment of that name.
    Created,
    /// There was another.
    Updated,
    /// The same was there; nothing was written.
    Unchanged,
}

impl Change {
    /// As `lattice deploy` prints it: `created`, `updated`, `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }
    }
}

/// A lattice's desired state and its modules.
#[derive(Clone)]
pub struct Stores {
    /// Deployments by actor name (JSON).
    pub kv: kv::Store,
    /// Modules by sha256.
    pub modules: object_store::ObjectStore,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("kv", &self.kv.name)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Transport,
        format!(
            "cannot open the lattice's {what}: {e}; deployments need a NATS server with \
             JetStream (`lattice up` runs one; for a server of your own, enable JetStream \
             with file storage)"
        ),
    )
}

impl Stores {
    /// Opens the lattice's buckets, creating those that do not exist yet.
    pub async fn open(nats: &async_nats::Client, lattice: &str) -> Result<Stores, Error> {
        let js = jetstream::new(nats.clone());
        let kv_name = deployments_bucket(lattice);
        let kv = match js.get_key_value(&kv_name).await {
            Ok(kv) => kv,
            Err(_) => {
                let config = kv::Config {
                    bucket: kv_name.clone(),
                    description: format!("Lattice `{lattice}`: desired deployments"),
                    history: 1,
                    max_value_size: MAX_VALUE,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match js.create_key_value(config).await {
                    Ok(kv) => kv,
                    // Another host, or the CLI, made it meanwhile.
                    Err(e) => js
                        .get_key_value(&kv_name)
                        .await
                        .map_err(|_| unavailable("deployments bucket", e))?,
                }
            }
        };
        let modules_name = modules_bucket(lattice);
        let modules = match js.get_object_store(&modules_name).await {
            Ok(store) => store,
            Err(_) => {
                let config = object_store::Config {
                    bucket: modules_name.clone(),
                    description: Some(format!("Lattice `{lattice}`: actor modules by sha256")),
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match js.create_object_store(config).await {
                    Ok(store) => store,
                    Err(e) => js
                        .get_object_store(&modules_name)
                        .await
                        .map_err(|_| unavailable("module store", e))?,
                }
            }
        };
        Ok(Stores { kv, modules })
    }

    /// The deployment of `name`, with its revision.
    pub async fn get(&self, name: &str) -> Result<Option<(Deployment, u64)>, Error> {
        let entry = self.kv.entry(name).await.map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot read deployment `{name}`: {e}"),
            )
        })?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                Ok(Some((decode(&entry.key, &entry.value)?, entry.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Every deployment, by name.
    pub async fn list(&self) -> Result<Vec<Deployment>, Error> {
        use futures_util::StreamExt;
        let transport = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot list the deployments: {e}"),
            )
        };
        let mut keys = self.kv.keys().await.map_err(|e| transport(&e))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(|e| transport(&e))?);
        }
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some((d, _)) = self.get(&name).await? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Puts `deployment` unless the same is there: what changed.
    pub async fn put(&self, deployment: &Deployment) -> Result<Change, Error> {
        deployment.check()?;
        let change = match self.get(&deployment.name).await? {
            Some((current, _)) if current == *deployment => return Ok(Change::Unchanged),
            Some(_) => Change::Updated,
            None => Change::Created,
        };
        let value = serde_json::to_vec(deployment).map_err(|e| {
            Error::new(
                ErrorKind::Encode,
                format!("cannot encode the deployment: {e}"),
            )
        })?;
        self.kv
            .put(&deployment.name, value.into())
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("cannot store deployment `{}`: {e}", deployment.name),
                )
            })?;
        Ok(change)
    }

    /// Removes the deployment of `name`: `not_found` when there is none.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        if self.get(name).await?.is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no deployment named `{name}`; `lattice get deployments` lists them"),
            ));
        }
        self.kv.delete(name).await.map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot delete deployment `{name}`: {e}"),
            )
        })
    }

    /// Uploads `module` unless the store has it: its digest.
    pub async fn upload(&self, module: &[u8]) -> Result<String, Error> {
        let digest = sha256(module);
        if self.modules.info(&digest).await.is_ok() {
            return Ok(digest);
        }
        let mut reader = module;
        self.modules
            .put(digest.as_str(), &mut reader)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("cannot upload the module: {e}"),
                )
            })?;
        Ok(digest)
    }

    /// Whether the store holds the module `digest`.
    pub async fn has(&self, digest: &str) -> Result<bool, Error> {
        match self.modules.info(digest).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::new(
                ErrorKind::Transport,
                format!("cannot look up module {digest}: {e}"),
            )),
        }
    }

    /// Downloads the module `digest`, at most `max` bytes, and checks it
    /// against its digest.
    pub async fn download(&self, digest: &str, max: usize) -> Result<Vec<u8>, Error> {
        if !is_digest(digest) {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("{digest:?} is not a sha256 digest"),
            ));
        }
        let mut object = self.modules.get(digest).await.map_err(|e| {
            let kind = if e.kind() == object_store::GetErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Transport
            };
            Error::new(
                kind,
                format!("cannot fetch module {digest} from the lattice: {e}"),
            )
        })?;
        let size = object.info().size;
        if size > max {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("module {digest} is {size} bytes; this host takes at most {max}"),
            ));
        }
        let mut bytes = Vec::with_capacity(size);
        (&mut object)
            .take(max as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("cannot fetch module {digest}: {e}"),
                )
            })?;
        if bytes.len() > max {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("module {digest} is over {max} bytes, more than its size said; refused"),
            ));
        }
        let actual = sha256(&bytes);
        if actual != digest {
            return Err(Error::new(
                ErrorKind::InvalidModule,
                format!("module {digest} from the lattice's store has sha256 {actual}; refused"),
            ));
        }
        Ok(bytes)
    }
}

/// The sha256 of `bytes`, as lowercase hex: a module's digest.
pub fn sha256(bytes: &[u8]) -> String {
    crate::runtime::module::digest(bytes)
}

/// A deployment read from the bucket.
pub fn decode(key: &str, value: &[u8]) -> Result<Deployment, Error> {
    let deployment: Deployment = serde_json::from_slice(value).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("deployment `{key}` in the lattice's bucket is not valid: {e}"),
        )
    })?;
    if deployment.name != key {
        return Err(Error::new(
            ErrorKind::Decode,
            format!(
                "deployment `{key}` in the lattice's bucket names another actor, `{}`",
                deployment.name
            ),
        ));
    }
    Ok(deployment)
}
