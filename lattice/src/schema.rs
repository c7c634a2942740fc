//! The types of a contract as JSON Schema.
//!
//! `#[lattice::contract]` describes every argument and return of a contract
//! as a [JSON Schema](https://json-schema.org) (draft 2020-12), made by
//! [schemars](https://docs.rs/schemars) from the Rust types. Named types
//! (structs and enums) are described once, in the contract's `types`, and
//! referred to as `{"$ref": "#/types/Name"}`, a pointer that resolves in the
//! contract's JSON as `lattice describe --output json` and `$SRV.INFO` show
//! it. The schema is of the JSON form of the values (serde's data model,
//! which is also the MessagePack shape on the wire; see
//! [`codec`](crate::codec)), so a client in another language can generate
//! its types from it, and a person can write the JSON for `lattice call`.
//!
//! A type takes part when it implements `schemars::JsonSchema`: derive it
//! next to `Serialize` and `Deserialize`, with `schemars = "1"` among the
//! contract crate's dependencies. It follows serde's attributes (`rename`,
//! `tag`, `default`, …). A type that does not implement it is described by
//! its name alone (`{"title": "Money", "x-lattice-no-schema": true}`); the
//! contract works the same either way.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! #[derive(Serialize, Deserialize, schemars::JsonSchema)]
//! pub enum Tx { Deposit { cents: u64 }, Withdraw { cents: u64 } }
//!
//! #[lattice::contract]
//! pub trait Ledger {
//!     fn apply(&mut self, tx: Tx) -> Result<u64, String>;
//! }
//! use lattice::Contract;
//! let info = lattice::ContractInfo::from(<dyn Ledger as Contract>::DESCRIPTOR);
//! assert_eq!(info.methods[0].args[0].schema["$ref"], "#/types/Tx");
//! let tx = &info.types["Tx"];
//! assert_eq!(tx["oneOf"][0]["properties"]["Deposit"]["properties"]["cents"]["type"], "integer");
//! ```

use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// Where named types live in a contract's JSON: `#/types/Name`.
pub const TYPES_PATH: &str = "/types";

const BYTES_ARG: &str = "bytes: MessagePack bin on the wire; in JSON a string (its UTF-8 bytes) or an array of integers 0-255";
const BYTES_REPLY: &str = "bytes: MessagePack bin on the wire; in JSON an array of integers 0-255";

/// The key that marks the schema of a type without a `JsonSchema` impl.
pub const NO_SCHEMA: &str = "x-lattice-no-schema";

/// The schemas of one contract, as the macro's generated function returns
/// them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractSchema {
    /// Per method, in declaration order: the schema of each argument, and of
    /// the return value.
    pub methods: Vec<MethodSchema>,
    /// The named types the schemas refer to, by name.
    pub types: Map<String, Value>,
}

/// The schemas of one method.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodSchema {
    /// One per argument, in order.
    pub args: Vec<Value>,
    /// The return value (`null` for `()`).
    pub returns: Value,
}

/// Collects schemas for the generated code (see [`Probe`]).
#[derive(Debug)]
pub struct Collector(SchemaGenerator);

impl Collector {
    /// A collector whose references point into `types`.
    pub fn new() -> Self {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = TYPES_PATH.into();
            s.meta_schema = None;
        });
        Collector(SchemaGenerator::new(settings))
    }

    /// The schema of `T`: a reference if it is a named type, unless
    /// `inline` (for a `Result`, which is not a type of the user's).
    pub fn schema_of<T: ?Sized + JsonSchema>(&mut self, inline: bool) -> Value {
        if inline {
            T::json_schema(&mut self.0).to_value()
        } else {
            self.0.subschema_for::<T>().to_value()
        }
    }

    /// The schema of bytes carried as MessagePack `bin`, as the JSON mapping
    /// reads them (an argument) or writes them (a reply).
    pub fn bytes(&mut self, ty: &str, optional: bool, reply: bool) -> Value {
        let octets = json!({ "type": "array", "items": { "type": "integer", "minimum": 0, "maximum": 255 } });
        let bytes = if reply {
            json!({
                "title": ty,
                "description": BYTES_REPLY,
                "type": "array",
                "items": octets["items"],
            })
        } else {
            json!({
                "title": ty,
                "description": BYTES_ARG,
                "oneOf": [{ "type": "string" }, octets],
            })
        };
        if optional {
            json!({ "anyOf": [bytes, { "type": "null" }] })
        } else {
            bytes
        }
    }

    /// The named types collected so far.
    pub fn finish(mut self) -> Map<String, Value> {
        self.0.take_definitions(true)
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

/// The type `T`, for choosing its schema by autoref:
/// `(&&Probe::<T>::new(name)).schema(collector, inline)`
/// gives its `JsonSchema` when it has one, its name otherwise.
#[derive(Debug)]
pub struct Probe<T: ?Sized> {
    name: &'static str,
    ty: core::marker::PhantomData<fn() -> *const T>,
}

impl<T: ?Sized> Probe<T> {
    /// A probe for `T`, written `name` in the contract.
    pub const fn new(name: &'static str) -> Self {
        Probe {
            name,
            ty: core::marker::PhantomData,
        }
    }
}

/// Chosen when the type implements `JsonSchema`.
pub trait ViaJsonSchema {
    /// The type's schema (see [`Collector::schema_of`]).
    fn schema(&self, collector: &mut Collector, inline: bool) -> Value;
}

impl<T: ?Sized + JsonSchema> ViaJsonSchema for &Probe<T> {
    fn schema(&self, collector: &mut Collector, inline: bool) -> Value {
        collector.schema_of::<T>(inline)
    }
}

/// Chosen otherwise: the type's name.
pub trait ViaName {
    /// A schema that names the type and says it has no schema.
    fn schema(&self, collector: &mut Collector, inline: bool) -> Value;
}

impl<T: ?Sized> ViaName for Probe<T> {
    fn schema(&self, _: &mut Collector, _: bool) -> Value {
        json!({ "title": self.name, NO_SCHEMA: true })
    }
}

/// The schema of a method's return when it returns nothing: `null`.
pub fn unit() -> Value {
    json!({ "type": "null" })
}

/// Whether `schema` is the name-only schema of a type without `JsonSchema`.
pub fn is_opaque(schema: &Value) -> bool {
    schema.get(NO_SCHEMA).and_then(Value::as_bool) == Some(true)
}

/// A schema written as a one-line type in a TypeScript-like notation of
/// the JSON form: `{ cents: i64, memo?: string | null }`, `Tx[]`,
/// `"Frozen" | { Insufficient: { missing: Money } }`; named types by name,
/// integers by their Rust width. What the notation cannot say is written
/// as the schema's JSON.
///
/// ```
/// use serde_json::json;
/// let s = json!({"type": "object", "properties": {
///     "amount": {"$ref": "#/types/Money"},
///     "memo": {"type": ["string", "null"]},
///     "n": {"type": "integer", "format": "uint64", "minimum": 0},
/// }, "required": ["amount", "n"]});
/// assert_eq!(lattice::schema::render(&s), "{ amount: Money, memo?: string | null, n: u64 }");
/// ```
pub fn render(schema: &Value) -> String {
    render_at(schema, 0)
}

/// Deeper than this, a schema is written as `…`: a hostile describer could
/// nest without end.
const MAX_RENDER_DEPTH: usize = 32;

fn render_at(schema: &Value, depth: usize) -> String {
    if depth > MAX_RENDER_DEPTH {
        return "…".into();
    }
    let Some(map) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => "any".into(),
            Value::Bool(false) => "never".into(),
            other => other.to_string(),
        };
    };
    let at = |s: &Value| render_at(s, depth + 1);
    if let Some(Value::String(r)) = map.get("$ref") {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    if is_opaque(schema) {
        return map
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
    }
    let description = map.get("description").and_then(Value::as_str);
    if description.is_some_and(|d| d.starts_with("bytes:")) {
        return "bytes".into();
    }
    if let Some(c) = map.get("const") {
        return c.to_string();
    }
    if let Some(Value::Array(values)) = map.get("enum") {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = map.get(key) {
            let alts: Vec<String> = alts.iter().map(at).collect();
            return alts.join(" | ");
        }
    }
    match map.get("type") {
        Some(Value::String(ty)) => render_typed(ty, map, depth),
        Some(Value::Array(types)) => types
            .iter()
            .map(|t| match t.as_str() {
                Some(ty) => render_typed(ty, map, depth),
                None => t.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" | "),
        _ if map.is_empty() || map.keys().all(|k| k == "description" || k == "title") => {
            "any".into()
        }
        _ => schema.to_string(),
    }
}

fn render_typed(ty: &str, map: &Map<String, Value>, depth: usize) -> String {
    let at = |s: &Value| render_at(s, depth + 1);
    let format = map.get("format").and_then(Value::as_str);
    match ty {
        "integer" => match format {
            Some(f @ ("int8" | "int16" | "int32" | "int64" | "int128")) => format!("i{}", &f[3..]),
            Some(f @ ("uint8" | "uint16" | "uint32" | "uint64" | "uint128")) => {
                format!("u{}", &f[4..])
            }
            Some("int") => "isize".into(),
            Some("uint") => "usize".into(),
            _ => "integer".into(),
        },
        "number" => match format {
            Some("float") => "f32".into(),
            Some("double") => "f64".into(),
            _ => "number".into(),
        },
        "string" | "boolean" | "null" => ty.into(),
        "array" => {
            if let Some(Value::Array(items)) = map.get("prefixItems") {
                let items: Vec<String> = items.iter().map(at).collect();
                return format!("[{}]", items.join(", "));
            }
            let item = map.get("items").map_or_else(|| "any".into(), at);
            if item.contains(' ') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        "object" => {
            let required: Vec<&str> = match map.get("required") {
                Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let mut fields: Vec<String> = match map.get("properties") {
                Some(Value::Object(props)) => props
                    .iter()
                    .map(|(name, s)| {
                        let optional = if required.contains(&name.as_str()) {
                            ""
                        } else {
                            "?"
                        };
                        format!("{name}{optional}: {}", at(s))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match map.get("additionalProperties") {
                Some(Value::Bool(false)) | None => {}
                Some(Value::Bool(true)) => fields.push("[key: string]: any".into()),
                Some(s) => fields.push(format!("[key: string]: {}", at(s))),
            }
            if fields.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", fields.join(", "))
            }
        }
        other => other.into(),
    }
}

/// A named type as lines: its description, then one line a field (with its
/// description) for a struct, one line a variant (`| …`) for an enum, or
/// its one-line form.
///
/// ```
/// use serde_json::json;
/// let e = json!({"oneOf": [
///     {"type": "string", "const": "Frozen"},
///     {"type": "object", "properties": {"Insufficient": {"type": "object",
///         "properties": {"missing": {"$ref": "#/types/Money"}}, "required": ["missing"]}},
///      "required": ["Insufficient"]},
/// ]});
/// assert_eq!(lattice::schema::render_type("LedgerError", &e), [
///     "LedgerError =",
///     "    | \"Frozen\"",
///     "    | { Insufficient: { missing: Money } }",
/// ]);
/// ```
pub fn render_type(name: &str, schema: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let empty = Map::new();
    let map = schema.as_object().unwrap_or(&empty);
    let variants = ["oneOf", "anyOf"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_array));
    let properties = map.get("properties").and_then(Value::as_object);
    if let Some(variants) = variants {
        lines.push(format!("{name} ="));
        for v in variants {
            let doc = v.get("description").and_then(Value::as_str);
            lines.push(with_doc(format!("    | {}", render(v)), doc));
        }
    } else if let (Some(props), Some("object")) =
        (properties, map.get("type").and_then(Value::as_str))
    {
        let required: Vec<&str> = match map.get("required") {
            Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        lines.push(format!("{name} = {{"));
        for (field, s) in props {
            let optional = if required.contains(&field.as_str()) {
                ""
            } else {
                "?"
            };
            let doc = s.get("description").and_then(Value::as_str);
            lines.push(with_doc(
                format!("    {field}{optional}: {},", render(s)),
                doc,
            ));
        }
        lines.push("}".into());
    } else {
        lines.push(format!("{name} = {}", render(schema)));
    }
    if let Some(doc) = map.get("description").and_then(Value::as_str) {
        let first = doc.lines().next().unwrap_or_default();
        lines[0] = with_doc(std::mem::take(&mut lines[0]), Some(first));
    }
    lines
}

fn with_doc(line: String, doc: Option<&str>) -> String {
    match doc.and_then(|d| d.lines().next()).filter(|d| !d.is_empty()) {
        Some(doc) => format!("{line}  // {doc}"),
        None => line,
    }
}
