//! Loading actor modules: the ABI check, the compiled-module cache, compilation.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use lattice::{Error, ErrorKind, abi};
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// The sha256 of a module, as 64 lowercase hex digits.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// What instantiating a module does beyond what its exports tell, read off
/// its sections by [`check_abi`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// It has a start function, which runs while it is instantiated.
    pub(crate) start: bool,
    /// The largest initial size of the memories it defines, in bytes.
    pub(crate) memory: u64,
    /// The largest initial size of the tables it defines, in elements.
    pub(crate) table: u64,
    /// It is a keyed actor (it has the [`abi::KEYED_SECTION`]).
    pub(crate) keyed: bool,
}

/// Checks that `bytes` is a lattice actor module this host can run, before
/// spending time on compiling it.
pub(crate) fn check_abi(bytes: &[u8]) -> Result<Shape, Error> {
    use wasmparser::{Encoding, Parser, Payload};
    let invalid = |message: String| Error::new(ErrorKind::InvalidModule, message);
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(invalid(
            "not a WebAssembly module (it does not start with \\0asm); build actors with \
             `cargo build --target wasm32-wasip1 --release`"
                .into(),
        ));
    }
    let mut exports = Vec::new();
    let mut version = None;
    let mut shape = Shape::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| invalid(format!("not a valid WebAssembly module: {e}")))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(invalid(
                    "this is a WebAssembly component; lattice actors are core modules built for \
                     wasm32-wasip1 with the actor SDK"
                        .into(),
                ));
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| invalid(format!("bad export section: {e}")))?;
                    exports.push(export.name.to_owned());
                }
            }
            Payload::StartSection { .. } => shape.start = true,
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(|e| invalid(format!("bad memory section: {e}")))?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    shape.memory = shape.memory.max(memory.initial.saturating_mul(page));
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(|e| invalid(format!("bad table section: {e}")))?;
                    shape.table = shape.table.max(table.ty.initial);
                }
            }
            Payload::CustomSection(reader) if reader.name() == abi::KEYED_SECTION => {
                shape.keyed = true;
            }
            Payload::CustomSection(reader) if reader.name() == abi::VERSION_SECTION => {
                let data = reader.data();
                version = Some(match <[u8; 4]>::try_from(data) {
                    Ok(v) => u32::from_le_bytes(v),
                    Err(_) => u32::MAX,
                });
            }
            _ => {}
        }
    }
    let missing: Vec<&str> = [
        abi::MEMORY,
        abi::ALLOC,
        abi::FREE,
        abi::DISPATCH,
        abi::DESCRIBE,
    ]
    .into_iter()
    .filter(|name| !exports.iter().any(|e| e == name))
    .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "not a lattice actor: the module does not export {}; an actor crate calls \
             `lattice_actor::export!(MyActor: MyContract)` and builds as a cdylib",
            missing.join(", ")
        )));
    }
    match version {
        Some(found) if (abi::OLDEST_VERSION..=abi::VERSION).contains(&found) => Ok(shape),
        Some(found) => Err(invalid(format!(
            "the actor was built for lattice ABI version {found}; this host runs versions {} \
             to {}; rebuild the actor with a matching lattice-actor",
            abi::OLDEST_VERSION,
            abi::VERSION
        ))),
        None => Err(invalid(format!(
            "not a lattice actor: the module has no `{}` section naming its ABI version; \
             build it with lattice-actor's `export!`",
            abi::VERSION_SECTION
        ))),
    }
}

/// Compiled modules on disk, keyed by the module's sha256 and the engine's
/// compatibility hash, so that a second start skips compilation.
#[derive(Debug, Clone)]
pub(crate) struct ModuleCache {
    dir: Option<PathBuf>,
}

impl ModuleCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        ModuleCache { dir }
    }

    fn path(&self, engine: &Engine, digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish())))
    }

    /// Compiles `bytes`, or loads the compiled module from the cache.
    /// Returns the module and whether it came from the cache.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Module, bool), Error> {
        let path = self.path(engine, digest);
        if let Some(path) = &path
            && path.exists()
        {
            match deserialize(engine, path) {
                Ok(module) => return Ok((module, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a bad cached module")
                }
            }
        }
        let module = Module::new(engine, bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidModule,
                format!("the module does not compile: {e:#}"),
            )
        })?;
        if let Some(path) = &path
            && let Err(e) = store(&module, path)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled module");
        }
        Ok((module, false))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: wasmtime requires that deserialized bytes come from
    // `Module::serialize` of a compatible engine. The file is written only by
    // `store` below, into the host's own cache directory, named by the
    // module's digest and the engine's compatibility hash; wasmtime also checks
    // the header and engine settings and fails cleanly on a mismatch.
    unsafe { Module::deserialize_file(engine, path) }
}

fn store(module: &Module, path: &Path) -> std::io::Result<()> {
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write then rename, so that a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// How long reading a module file may take.
pub(crate) const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the module file at `path`: a regular file (not a FIFO, a device or
/// a directory) of at most `max` bytes, within [`READ_DEADLINE`].
pub(crate) async fn read_file(path: &std::path::Path, max: usize) -> Result<Vec<u8>, Error> {
    let shown = path.display().to_string();
    let owned = path.to_owned();
    let read = tokio::task::spawn_blocking(move || read_regular(&owned, max));
    match tokio::time::timeout(READ_DEADLINE, read).await {
        Ok(Ok(result)) => result.map_err(|e| e.in_file(&shown)),
        Ok(Err(e)) => Err(Error::new(
            ErrorKind::Remote,
            format!("the task reading {shown} failed: {e}"),
        )),
        Err(_) => Err(Error::new(
            ErrorKind::TimedOut,
            format!(
                "reading the module {shown} took longer than {} s",
                READ_DEADLINE.as_secs()
            ),
        )),
    }
}

/// Why a module file could not be read, before the file's name is added.
struct ReadError(ErrorKind, String, Option<std::io::Error>);

impl ReadError {
    fn in_file(self, path: &str) -> Error {
        let error = Error::new(
            self.0,
            format!("cannot load the actor module {path}: {}", self.1),
        );
        match self.2 {
            Some(source) => error.with_source(source),
            None => error,
        }
    }
}

fn read_regular(path: &std::path::Path, max: usize) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let io = |e: std::io::Error| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Unauthorized,
            _ => ErrorKind::Transport,
        };
        ReadError(kind, e.to_string(), Some(e))
    };
    let not_regular = || {
        ReadError(
            ErrorKind::InvalidModule,
            "not a regular file (a module is read from a file, never from a device, a FIFO or \
             a directory)"
                .to_owned(),
            None,
        )
    };
    let too_large = |len: u64| {
        ReadError(
            ErrorKind::PayloadTooLarge,
            format!("it is {len} bytes; this host loads modules of at most {max} bytes"),
            None,
        )
    };
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > max as u64 {
        return Err(too_large(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // And again on what was opened, in case the path changed in between.
    if !file.metadata().map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(max));
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_module() {
        let err = check_abi(b"hello world, not wasm").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidModule);
        assert!(err.message().contains("not a WebAssembly module"), "{err}");
        let err = check_abi(b"\0asm\x01\0\0\0\xff\xff").unwrap_err();
        assert!(
            err.message().contains("not a valid WebAssembly module"),
            "{err}"
        );
    }

    #[test]
    fn a_module_without_the_abi_names_what_is_missing() {
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "lattice_alloc") (param i32) (result i32) i32.const 0))"#).unwrap();
        let err = check_abi(&wasm).unwrap_err();
        assert!(
            err.message()
                .contains("lattice_free, lattice_dispatch, lattice_describe"),
            "{err}"
        );
    }

    /// A module with the actor exports and `version` (four escaped
    /// little-endian bytes) in its ABI section.
    fn with_abi_version(version: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module
                (memory (export "memory") 1)
                (func (export "lattice_alloc") (param i32) (result i32) i32.const 0)
                (func (export "lattice_free") (param i32 i32))
                (func (export "lattice_dispatch") (param i32 i32 i32 i32 i64) (result i64) i64.const 0)
                (func (export "lattice_describe") (result i64) i64.const 0)
                (@custom "lattice_abi" "{version}"))"#
        ))
        .unwrap()
    }

    /// An actor module with `memory` (its pages) and `more` (fields).
    fn actor_with(memory: &str, more: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module
                (memory (export "memory") {memory})
                (func (export "lattice_alloc") (param i32) (result i32) i32.const 0)
                (func (export "lattice_free") (param i32 i32))
                (func (export "lattice_dispatch") (param i32 i32 i32 i32 i64) (result i64) i64.const 0)
                (func (export "lattice_describe") (result i64) i64.const 0)
                {more}
                (@custom "lattice_abi" "\01\00\00\00"))"#
        ))
        .unwrap()
    }

    #[test]
    fn the_shape_tells_what_instantiation_does() {
        use crate::runtime::instance::limits_instantiation;
        let shape = check_abi(&actor_with("17", "")).unwrap();
        let plain = Shape {
            start: false,
            memory: 17 << 16,
            table: 0,
            keyed: false,
        };
        assert_eq!(shape, plain);
        // Within the limits, with no start function: the limiter can wait
        // until the instance exists.
        assert!(!limits_instantiation(&shape, 17 << 16));
        // Its memory starts larger than the actor's limit: instantiation
        // must fail on the limiter.
        assert!(limits_instantiation(&shape, (17 << 16) - 1));

        let shape = check_abi(&actor_with("1", "(func $s) (start $s)")).unwrap();
        assert!(shape.start);
        assert!(limits_instantiation(&shape, u64::MAX));

        let shape =
            check_abi(&actor_with("1", "(table 100001 funcref) (table 3 funcref)")).unwrap();
        assert_eq!(shape.table, 100_001);
        assert!(limits_instantiation(&shape, u64::MAX));
    }

    #[test]
    fn a_wrong_abi_version_is_named() {
        let err = check_abi(&with_abi_version("\\07\\00\\00\\00")).unwrap_err();
        assert!(err.message().contains("ABI version 7"), "{err}");
        // Version 1 (before `log_enabled`) still runs.
        check_abi(&with_abi_version("\\01\\00\\00\\00")).unwrap();
    }
}
