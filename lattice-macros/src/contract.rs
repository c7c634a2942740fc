//! The `#[contract]` entry: parse, validate, expand, and report errors.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{ItemTrait, Path, parse_quote};

use crate::parse::ContractOptions;
use crate::{expand, validate};

/// Expands `#[contract(attr)] item`. On errors, the output is the user's trait
/// (minus our method attributes) followed by every error, so one mistake does
/// not cascade into errors about missing generated items.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_with(attr, item, None) {
        Ok(tokens) => tokens,
        Err(failure) => failure.into_tokens(),
    }
}

/// What a failed expansion still emits.
pub(crate) struct Failure {
    error: syn::Error,
    fallback: TokenStream,
}

impl Failure {
    fn into_tokens(self) -> TokenStream {
        let errors = self.error.to_compile_error();
        let fallback = self.fallback;
        quote!(#fallback #errors)
    }
}

/// Expands with the path of the `lattice` crate given, or found in `Cargo.toml`.
pub(crate) fn expand_with(
    attr: TokenStream,
    item: TokenStream,
    krate: Option<Path>,
) -> Result<TokenStream, Failure> {
    let item_trait: ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        Err(e) => {
            return Err(Failure {
                error: syn::Error::new(
                    e.span(),
                    "#[lattice::contract] applies to a trait, e.g. `pub trait Counter { fn add(&mut self, by: u64) -> u64; }`",
                ),
                fallback: item,
            });
        }
    };
    let mut errors = Errors::default();
    let options = match syn::parse2::<ContractOptions>(attr) {
        Ok(options) => options,
        Err(e) => {
            errors.push(e);
            ContractOptions::default()
        }
    };
    let krate = options
        .krate
        .clone()
        .or(krate)
        .unwrap_or_else(find_lattice_crate);
    let (contract, cleaned) = validate::lower(&options, item_trait, krate, &mut errors);
    match errors.finish() {
        Some(error) => Err(Failure {
            error,
            fallback: cleaned.into_token_stream(),
        }),
        None => Ok(expand::contract(&contract)),
    }
}

/// The path of the `lattice` crate as the user's `Cargo.toml` names it.
fn find_lattice_crate() -> Path {
    use proc_macro_crate::{FoundCrate, crate_name};
    match crate_name("lattice") {
        Ok(FoundCrate::Name(name)) => {
            let ident = syn::Ident::new(&name, proc_macro2::Span::call_site());
            parse_quote!(::#ident)
        }
        // Inside `lattice` itself, `extern crate self as lattice` makes this work;
        // when Cargo.toml cannot be read, the default name is the best guess.
        Ok(FoundCrate::Itself) | Err(_) => parse_quote!(::lattice),
    }
}

/// Errors collected across the whole trait, reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    fn finish(self) -> Option<syn::Error> {
        self.0
    }
}
