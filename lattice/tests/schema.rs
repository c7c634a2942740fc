//! The JSON Schema of a contract's arguments, returns and named types.

use std::collections::BTreeMap;

use lattice::{Contract, ContractInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Money in cents.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// Whole cents.
    pub cents: i64,
    /// ISO 4217.
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tx {
    Deposit { amount: Money },
    Withdraw { amount: Money, memo: Option<String> },
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub enum LedgerError {
    Insufficient { missing: Money },
    Frozen,
}

/// A tree, to check that a recursive type is described once.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    pub children: Vec<Node>,
}

/// No `JsonSchema`: described by its name.
#[derive(Debug, Serialize, Deserialize)]
pub struct Opaque(pub u8);

#[lattice::contract]
pub trait Ledger {
    fn apply(&mut self, tx: Tx) -> Result<Money, LedgerError>;
    fn history(&self, limit: Option<u32>) -> Vec<Tx>;
    fn tags(&self) -> BTreeMap<String, Vec<u8>>;
    fn blob(&self, data: Vec<u8>, maybe: Option<Vec<u8>>) -> lattice::Bytes;
    fn tree(&self, root: Node) -> Opaque;
    #[lattice(oneway)]
    fn reset(&mut self);
}

fn info() -> ContractInfo {
    ContractInfo::from(<dyn Ledger as Contract>::DESCRIPTOR)
}

#[test]
fn named_types_are_described_once_with_fields_and_variants() {
    let info = info();
    let names: Vec<&str> = info.types.keys().map(String::as_str).collect();
    assert_eq!(names, ["Tx", "Money", "LedgerError", "Node"]);
    let money = &info.types["Money"];
    assert_eq!(money["type"], "object");
    assert_eq!(money["description"], "Money in cents.");
    assert_eq!(money["properties"]["cents"]["type"], "integer");
    assert_eq!(money["properties"]["cents"]["description"], "Whole cents.");
    assert_eq!(money["properties"]["currency"]["type"], "string");
    assert_eq!(money["required"], json!(["cents", "currency"]));
    // Serde's attributes are followed: internally tagged, snake_case.
    let tx = serde_json::to_string(&info.types["Tx"]).unwrap();
    assert!(tx.contains(r#""const":"deposit""#), "{tx}");
    assert!(tx.contains(r##""$ref":"#/types/Money""##), "{tx}");
    let err = serde_json::to_string(&info.types["LedgerError"]).unwrap();
    assert!(
        err.contains("Insufficient") && err.contains("Frozen"),
        "{err}"
    );
    let node = &info.types["Node"];
    assert_eq!(
        node["properties"]["children"]["items"]["$ref"],
        "#/types/Node"
    );
}

#[test]
fn arguments_and_returns_refer_to_the_named_types() {
    let info = info();
    let apply = info.method("apply").unwrap();
    assert_eq!(apply.args[0].schema, json!({ "$ref": "#/types/Tx" }));
    let returns = serde_json::to_string(&apply.returns_schema).unwrap();
    assert!(
        returns.contains(r#""Ok""#) && returns.contains(r#""Err""#),
        "{returns}"
    );
    assert!(returns.contains("#/types/LedgerError"), "{returns}");
    let history = info.method("history").unwrap();
    assert_eq!(history.args[0].schema["type"], json!(["integer", "null"]));
    assert_eq!(history.returns_schema["items"]["$ref"], "#/types/Tx");
    let reset = info.method("reset").unwrap();
    assert_eq!(reset.returns_schema, json!({ "type": "null" }));
}

#[test]
fn every_reference_resolves_in_the_contract_document() {
    let doc = serde_json::to_value(info()).unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() >= 8, "{refs:?}");
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn bytes_are_described_as_the_json_mapping_reads_them() {
    let info = info();
    let blob = info.method("blob").unwrap();
    assert!(blob.args[0].bytes);
    assert_eq!(blob.args[0].schema["title"], "Vec<u8>");
    assert_eq!(blob.args[0].schema["oneOf"][0]["type"], "string");
    assert_eq!(blob.args[1].schema["anyOf"][1]["type"], "null");
    assert!(blob.returns_bytes);
    assert_eq!(blob.returns_schema["title"], "lattice::Bytes");
}

#[test]
fn a_type_without_json_schema_is_named() {
    let tree = info().method("tree").unwrap().clone();
    assert!(lattice::schema::is_opaque(&tree.returns_schema));
    assert_eq!(tree.returns_schema["title"], "Opaque");
    assert!(!lattice::schema::is_opaque(&tree.args[0].schema));
}

#[test]
fn the_schema_survives_the_wire() {
    let info = info();
    let bytes = lattice::codec::encode(<dyn Ledger as Contract>::DESCRIPTOR).unwrap();
    let back: ContractInfo = lattice::codec::decode(&bytes).unwrap();
    assert_eq!(back, info);
    // An older describer sent no schema: it decodes with none.
    #[derive(Serialize)]
    struct Old<'a> {
        name: &'a str,
        version: u32,
        fingerprint: &'a str,
        methods: Vec<BTreeMap<&'a str, Value>>,
    }
    let old = Old {
        name: "ledger",
        version: 1,
        fingerprint: "0000000000000001",
        methods: vec![BTreeMap::from([
            ("name", json!("get")),
            ("args", json!([{ "name": "id", "ty": "u64" }])),
            ("returns", json!("u64")),
        ])],
    };
    let back: ContractInfo =
        lattice::codec::decode(&lattice::codec::encode(&old).unwrap()).unwrap();
    assert!(back.types.is_empty());
    assert_eq!(back.methods[0].args[0].schema, Value::Null);
}

#[test]
fn the_types_read_as_the_json_to_write() {
    let info = info();
    let lines: Vec<String> = info
        .types
        .iter()
        .flat_map(|(name, s)| lattice::schema::render_type(name, s))
        .collect();
    assert_eq!(
        lines,
        [
            "Tx =",
            "    | { kind: \"deposit\", amount: Money }",
            "    | { kind: \"withdraw\", amount: Money, memo?: string | null }",
            "Money = {  // Money in cents.",
            "    cents: i64,  // Whole cents.",
            "    currency: string,  // ISO 4217.",
            "}",
            "LedgerError =",
            "    | \"Frozen\"",
            "    | { Insufficient: { missing: Money } }",
            "Node = {  // A tree, to check that a recursive type is described once.",
            "    children: Node[],",
            "}",
        ]
    );
    let render = |method: &str| {
        let m = info.method(method).unwrap();
        let args: Vec<String> = m
            .args
            .iter()
            .map(|a| format!("{}: {}", a.name, lattice::schema::render(&a.schema)))
            .collect();
        format!(
            "({}) -> {}",
            args.join(", "),
            lattice::schema::render(&m.returns_schema)
        )
    };
    assert_eq!(
        render("apply"),
        "(tx: Tx) -> { Ok: Money } | { Err: LedgerError }"
    );
    assert_eq!(render("history"), "(limit: u32 | null) -> Tx[]");
    assert_eq!(render("tags"), "() -> { [key: string]: u8[] }");
    assert_eq!(
        render("blob"),
        "(data: bytes, maybe: bytes | null) -> bytes"
    );
    assert_eq!(render("tree"), "(root: Node) -> Opaque");
    assert_eq!(render("reset"), "() -> null");
}

#[test]
fn hostile_schemas_render_bounded() {
    // A describer on the wire can send any JSON as a schema.
    let mut deep = json!({ "type": "string" });
    for _ in 0..200 {
        deep = json!({ "type": "array", "items": deep });
    }
    let text = lattice::schema::render(&deep);
    assert!(text.len() < 200 && text.contains('…'), "{text}");
    for odd in [
        json!(null),
        json!(7),
        json!([1]),
        json!({"type": 3}),
        json!({"$ref": 1}),
        json!(true),
    ] {
        let _ = lattice::schema::render(&odd);
        let _ = lattice::schema::render_type("T", &odd);
    }
}
