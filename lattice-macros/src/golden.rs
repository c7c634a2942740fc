//! Golden expansion tests: every `tests/expand/NAME.rs` holds a contract;
//! its expansion, formatted with prettyplease, must equal
//! `tests/expand/NAME.expanded.rs`. After an intended change to the generated
//! code, regenerate them with `LATTICE_BLESS=1 cargo test -p lattice-macros golden`
//! and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use quote::ToTokens;

fn expand_file(source: &str) -> String {
    let mut file = syn::parse_file(source).expect("the golden input parses");
    let mut out = Vec::new();
    for item in file.items.drain(..) {
        let syn::Item::Trait(mut item_trait) = item else {
            out.push(item.into_token_stream());
            continue;
        };
        let position = item_trait
            .attrs
            .iter()
            .position(|a| {
                a.path()
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "contract")
            })
            .expect("the golden input has a #[lattice::contract] trait");
        let attr = item_trait.attrs.remove(position);
        let args = match attr.meta {
            syn::Meta::List(list) => list.tokens,
            _ => proc_macro2::TokenStream::new(),
        };
        let expanded = crate::contract::expand_with(
            args,
            item_trait.into_token_stream(),
            Some(syn::parse_quote!(::lattice)),
        )
        .unwrap_or_else(|_| panic!("the golden input expands without errors"));
        out.push(expanded);
    }
    let tokens: proc_macro2::TokenStream = out.into_iter().collect();
    let mut expanded: syn::File = syn::parse2(tokens).expect("the expansion parses as a file");
    // Items inside `cfg_client! { ... }` are printed after the rest, formatted,
    // rather than as one long line of macro tokens.
    let mut client_items = Vec::new();
    expanded.items.retain(|item| match item {
        syn::Item::Macro(m)
            if m.mac
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "cfg_client") =>
        {
            let inner: syn::File =
                syn::parse2(m.mac.tokens.clone()).expect("cfg_client! holds items");
            client_items.push(prettyplease::unparse(&inner));
            false
        }
        _ => true,
    });
    let mut text = format!(
        "// @generated from the contract next to this file by `#[lattice::contract]`.\n\
         // Regenerate: LATTICE_BLESS=1 cargo test -p lattice-macros golden\n\n{}",
        prettyplease::unparse(&expanded)
    );
    for items in client_items {
        text.push_str("\n// ---- inside `::lattice::__private::cfg_client! { ... }`: only with the native client ----\n\n");
        text.push_str(&items);
    }
    text
}

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/expand exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                && !p.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn golden_expansions() {
    let bless = std::env::var_os("LATTICE_BLESS").is_some();
    let inputs = inputs();
    assert!(inputs.len() >= 2, "at least two golden contracts");
    let mut stale = Vec::new();
    for input in inputs {
        let expected_path = input.with_extension("expanded.rs");
        let actual = expand_file(&fs::read_to_string(&input).expect("readable input"));
        if bless {
            fs::write(&expected_path, &actual).expect("writable golden file");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            _ => stale.push(expected_path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "generated code differs from the golden files {stale:?}; \
         if the change is intended, run `LATTICE_BLESS=1 cargo test -p lattice-macros golden` and review the diff"
    );
}
