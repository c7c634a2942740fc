//! Contract metadata: what a contract is called, its version, its methods.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::schema::ContractSchema;

/// A contract: implemented by the macro for `dyn YourTrait`.
///
/// ```
/// #[lattice::contract(version = 3)]
/// pub trait KeyValue {
///     fn get(&self, key: String) -> Option<String>;
/// }
/// use lattice::Contract;
/// assert_eq!(<dyn KeyValue as Contract>::NAME, "key_value");
/// assert_eq!(<dyn KeyValue as Contract>::VERSION, 3);
/// assert_eq!(<dyn KeyValue as Contract>::DESCRIPTOR.methods[0].name, "get");
/// ```
pub trait Contract: 'static {
    /// Everything known about the contract.
    const DESCRIPTOR: &'static ContractDescriptor;
    /// The contract's wire name.
    const NAME: &'static str = Self::DESCRIPTOR.name;
    /// The contract's version.
    const VERSION: u32 = Self::DESCRIPTOR.version;
    /// The contract's fingerprint (see [`fingerprint`]).
    const FINGERPRINT: u64 = Self::DESCRIPTOR.fingerprint;
}

/// A contract described as data, for introspection, discovery and the CLI.
///
/// Built by `#[lattice::contract]`; serializes as its [`ContractInfo`], the
/// shape carried in discovery replies.
#[derive(Debug, Clone, Copy)]
pub struct ContractDescriptor {
    /// The wire name, e.g. `counter`.
    pub name: &'static str,
    /// The version given in `#[lattice::contract(version = N)]`.
    pub version: u32,
    /// The fingerprint of the method signatures (see [`fingerprint`]).
    pub fingerprint: u64,
    /// The trait's doc comment.
    pub docs: &'static str,
    /// The methods, in declaration order.
    pub methods: &'static [MethodDescriptor],
    /// Makes the JSON Schema of the arguments, returns and named types
    /// (see [`schema`](crate::schema)); called when the contract is
    /// described, never on a call.
    pub schema: fn() -> ContractSchema,
}

/// Equal when everything but the schema function is: the schema follows from
/// the methods' types, and function addresses are not comparable.
impl PartialEq for ContractDescriptor {
    fn eq(&self, other: &Self) -> bool {
        (
            self.name,
            self.version,
            self.fingerprint,
            self.docs,
            self.methods,
        ) == (
            other.name,
            other.version,
            other.fingerprint,
            other.docs,
            other.methods,
        )
    }
}

impl Eq for ContractDescriptor {}

impl Serialize for ContractDescriptor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ContractInfo::from(self).serialize(serializer)
    }
}

impl ContractDescriptor {
    /// The method with wire name `name`.
    pub fn method(&self, name: &str) -> Option<&'static MethodDescriptor> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The fingerprint as sent in the fingerprint header: 16 lowercase hex digits.
    pub fn fingerprint_hex(&self) -> String {
        format!("{:016x}", self.fingerprint)
    }

    /// The method names, comma separated (for error messages).
    pub fn method_list(&self) -> String {
        let names: Vec<&str> = self.methods.iter().map(|m| m.name).collect();
        names.join(", ")
    }
}

/// One method of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodDescriptor {
    /// The wire name (the Rust method name).
    pub name: &'static str,
    /// The method's doc comment.
    pub docs: &'static str,
    /// The arguments, in order.
    pub args: &'static [ArgDescriptor],
    /// The return type as written, e.g. `Result<(), CounterError>`; `()` when none.
    pub returns: &'static str,
    /// Whether the return type is bytes (`Vec<u8>`, `Bytes`, …), carried as
    /// MessagePack bin.
    pub returns_bytes: bool,
    /// Whether the return type is a `Result<T, E>`, whose error is the user's
    /// data (encoded as `{"Ok": T}` or `{"Err": E}`).
    pub returns_result: bool,
    /// Whether the method takes `&mut self`.
    pub mutating: bool,
    /// Whether clients may retry the call (`#[lattice(idempotent)]`).
    pub idempotent: bool,
    /// Whether the call has no reply (`#[lattice(oneway)]`).
    pub oneway: bool,
    /// The default deadline of a call, from `#[lattice(timeout = "…")]`.
    pub timeout_ms: Option<u64>,
}

/// One argument of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgDescriptor {
    /// The argument's name: its key in the arguments map.
    pub name: &'static str,
    /// Its type as written, e.g. `Vec<u8>`.
    pub ty: &'static str,
    /// Whether it is bytes, carried as MessagePack bin.
    pub bytes: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

/// The fingerprint of a contract's method signatures.
///
/// Each method contributes the FNV-1a 64 hash of its signature text
/// `name(arg:Type,arg:Type)->Return` (see [`MethodDescriptor::signature`]
/// for the canonical form); the contributions are combined with a wrapping
/// sum, so the order of methods in the trait does not matter, while
/// renaming a method or an argument, or changing a type, does. Docs,
/// timeouts and flags do not take part. Computed at compile time by the
/// macro.
///
/// A worked example, with a generic argument and a unit return:
///
/// ```
/// # use std::collections::HashMap;
/// # #[derive(serde::Serialize, serde::Deserialize)] pub struct StoreError;
/// #[lattice::contract]
/// pub trait Store {
///     fn put(&mut self, key: String, tags: HashMap<String, Vec<u8>>);
///     fn get(&self, key: String) -> Result<Option<u64>, StoreError>;
/// }
/// use lattice::Contract;
/// let d = <dyn Store as Contract>::DESCRIPTOR;
/// let put = "put(key:String,tags:HashMap<String, Vec<u8>>)->()";
/// let get = "get(key:String)->Result<Option<u64>, StoreError>";
/// assert_eq!(d.methods[0].signature(), put);
/// assert_eq!(d.methods[1].signature(), get);
/// assert_eq!(lattice::method_hash(put), 0x08f1_f4e3_e4e9_b0d4);
/// assert_eq!(lattice::method_hash(get), 0x6590_8246_5662_bf47);
/// assert_eq!(d.fingerprint, 0x08f1_f4e3_e4e9_b0d4_u64.wrapping_add(0x6590_8246_5662_bf47));
/// assert_eq!(d.fingerprint, 0x6e82_772a_3b4c_701b);
/// assert_eq!(d.fingerprint, lattice::fingerprint(d.methods));
/// ```
pub const fn fingerprint(methods: &[MethodDescriptor]) -> u64 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < methods.len() {
        let m = &methods[i];
        let mut h = fnv(FNV_OFFSET, m.name.as_bytes());
        h = fnv(h, b"(");
        let mut a = 0;
        while a < m.args.len() {
            if a > 0 {
                h = fnv(h, b",");
            }
            h = fnv(h, m.args[a].name.as_bytes());
            h = fnv(h, b":");
            h = fnv(h, m.args[a].ty.as_bytes());
            a += 1;
        }
        h = fnv(h, b")->");
        h = fnv(h, m.returns.as_bytes());
        sum = sum.wrapping_add(h);
        i += 1;
    }
    sum
}

/// The FNV-1a 64 hash of one method's signature text: its contribution to
/// the [`fingerprint`].
pub const fn method_hash(signature: &str) -> u64 {
    fnv(FNV_OFFSET, signature.as_bytes())
}

/// The text a method contributes to the fingerprint, in its canonical form:
/// `name(arg:Type,arg:Type)->Return`, with no space around `(`, `)`, `:`,
/// `,` between arguments or `->`, and `()` for a method that returns
/// nothing. Each type is written as the macro normalizes it: a space only
/// between two words (`&'static str`, `dyn Trait`) and after each comma
/// inside it (`HashMap<String, u32>`, `(u8, u16)`), none elsewhere
/// (`Vec<Option<u8>>`, `&mut[u8]`), and paths as written in the trait
/// (`std::vec::Vec<u8>` and `Vec<u8>` differ).
fn signature_text<'a>(
    name: &str,
    args: impl Iterator<Item = (&'a str, &'a str)>,
    returns: &str,
) -> String {
    let args: Vec<String> = args.map(|(name, ty)| format!("{name}:{ty}")).collect();
    format!("{name}({})->{returns}", args.join(","))
}

impl MethodDescriptor {
    /// The exact text hashed into the contract's fingerprint; see
    /// [`fingerprint`] for a worked example.
    pub fn signature(&self) -> String {
        signature_text(
            self.name,
            self.args.iter().map(|a| (a.name, a.ty)),
            self.returns,
        )
    }
}

impl MethodInfo {
    /// The exact text hashed into the contract's fingerprint (see
    /// [`MethodDescriptor::signature`]).
    pub fn signature(&self) -> String {
        signature_text(
            &self.name,
            self.args.iter().map(|a| (a.name.as_str(), a.ty.as_str())),
            &self.returns,
        )
    }
}

/// A method descriptor with no flags set, for tests.
#[cfg(test)]
pub(crate) const fn test_method(
    name: &'static str,
    args: &'static [ArgDescriptor],
    returns: &'static str,
) -> MethodDescriptor {
    MethodDescriptor {
        name,
        docs: "",
        args,
        returns,
        returns_bytes: false,
        returns_result: false,
        mutating: false,
        idempotent: false,
        oneway: false,
        timeout_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_method as method;

    const BY: &[ArgDescriptor] = &[ArgDescriptor {
        name: "by",
        ty: "u64",
        bytes: false,
    }];
    const AMOUNT: &[ArgDescriptor] = &[ArgDescriptor {
        name: "amount",
        ty: "u64",
        bytes: false,
    }];

    #[test]
    fn fingerprint_ignores_order_but_not_signatures() {
        let a = [method("add", BY, "u64"), method("get", &[], "u64")];
        let b = [method("get", &[], "u64"), method("add", BY, "u64")];
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let renamed_arg = [method("add", AMOUNT, "u64"), method("get", &[], "u64")];
        assert_ne!(fingerprint(&a), fingerprint(&renamed_arg));
        let other_return = [method("add", BY, "u32"), method("get", &[], "u64")];
        assert_ne!(fingerprint(&a), fingerprint(&other_return));
        let mut idempotent = a;
        idempotent[1].idempotent = true;
        assert_eq!(fingerprint(&a), fingerprint(&idempotent));
        // Stable across releases: this is the wire value.
        assert_eq!(
            fingerprint(&a),
            0x19f4_ebe3_f7c8_6aa3,
            "{:016x}",
            fingerprint(&a)
        );
    }
}

/// An owned copy of a [`ContractDescriptor`], decoded from the wire (from an
/// actor module, or from discovery replies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContractInfo {
    /// The wire name.
    pub name: String,
    /// The version.
    pub version: u32,
    /// The fingerprint as 16 lowercase hex digits.
    pub fingerprint: String,
    /// The trait's doc comment.
    #[serde(default)]
    pub docs: String,
    /// The methods.
    pub methods: Vec<MethodInfo>,
    /// The named types (structs and enums) of the arguments and returns, by
    /// name, as JSON Schema; the schemas of arguments and returns refer to
    /// them as `{"$ref": "#/types/Name"}` (see [`schema`](crate::schema)).
    #[serde(default)]
    pub types: Map<String, Value>,
}

impl ContractInfo {
    /// The method with wire name `name`.
    pub fn method(&self, name: &str) -> Option<&MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The fingerprint as a number, if it is well formed.
    pub fn fingerprint_value(&self) -> Option<u64> {
        u64::from_str_radix(&self.fingerprint, 16).ok()
    }
}

impl From<&ContractDescriptor> for ContractInfo {
    fn from(d: &ContractDescriptor) -> Self {
        let mut schema = (d.schema)();
        let mut methods: Vec<MethodInfo> = d.methods.iter().map(MethodInfo::from).collect();
        for (method, schemas) in methods.iter_mut().zip(schema.methods.drain(..)) {
            for (arg, arg_schema) in method.args.iter_mut().zip(schemas.args) {
                arg.schema = arg_schema;
            }
            method.returns_schema = schemas.returns;
        }
        ContractInfo {
            name: d.name.to_owned(),
            version: d.version,
            fingerprint: d.fingerprint_hex(),
            docs: d.docs.to_owned(),
            methods,
            types: schema.types,
        }
    }
}

/// An owned copy of a [`MethodDescriptor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MethodInfo {
    /// The wire name.
    pub name: String,
    /// The doc comment.
    #[serde(default)]
    pub docs: String,
    /// The arguments.
    pub args: Vec<ArgInfo>,
    /// The return type as written.
    pub returns: String,
    /// Whether the return type is bytes.
    #[serde(default)]
    pub returns_bytes: bool,
    /// Whether the return type is a `Result`.
    #[serde(default)]
    pub returns_result: bool,
    /// Whether the method takes `&mut self`.
    #[serde(default)]
    pub mutating: bool,
    /// Whether the call may be retried.
    #[serde(default)]
    pub idempotent: bool,
    /// Whether the call has no reply.
    #[serde(default)]
    pub oneway: bool,
    /// The default deadline in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The JSON Schema of the return value (`null` for `()`, or when the
    /// describing side did not send one).
    #[serde(default)]
    pub returns_schema: Value,
}

impl From<&MethodDescriptor> for MethodInfo {
    fn from(m: &MethodDescriptor) -> Self {
        MethodInfo {
            name: m.name.to_owned(),
            docs: m.docs.to_owned(),
            args: m
                .args
                .iter()
                .map(|a| ArgInfo {
                    name: a.name.to_owned(),
                    ty: a.ty.to_owned(),
                    bytes: a.bytes,
                    schema: Value::Null,
                })
                .collect(),
            returns: m.returns.to_owned(),
            returns_bytes: m.returns_bytes,
            returns_result: m.returns_result,
            mutating: m.mutating,
            idempotent: m.idempotent,
            oneway: m.oneway,
            timeout_ms: m.timeout_ms,
            returns_schema: Value::Null,
        }
    }
}

/// An owned copy of an [`ArgDescriptor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ArgInfo {
    /// The argument's name.
    pub name: String,
    /// Its type as written.
    pub ty: String,
    /// Whether it is bytes.
    #[serde(default)]
    pub bytes: bool,
    /// Its JSON Schema (`null` when the describing side did not send one).
    #[serde(default)]
    pub schema: Value,
}
