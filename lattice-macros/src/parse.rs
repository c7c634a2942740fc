//! Parsing of the macro's options: `#[contract(...)]` on the trait and
//! `#[lattice(...)]` on its methods.

use std::time::Duration;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Lit, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(version);
    syn::custom_keyword!(name);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(idempotent);
    syn::custom_keyword!(oneway);
}

/// Options of `#[lattice::contract(version = 1, name = "counter", crate = path)]`.
#[derive(Default)]
pub(crate) struct ContractOptions {
    pub(crate) version: Option<u32>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

impl Parse for ContractOptions {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = ContractOptions::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::version) {
                let key: kw::version = input.parse()?;
                input.parse::<Token![=]>()?;
                let lit: Lit = input.parse()?;
                let version = match &lit {
                    Lit::Int(int) => int.base10_parse::<u32>().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    syn::Error::new(
                        lit.span(),
                        "`version` is a whole number from 0 to 4294967295, e.g. `version = 2`",
                    )
                })?;
                set_once(&mut options.version, version, key.span, "version")?;
            } else if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                set_once(&mut options.name, lit, key.span, "name")?;
            } else if lookahead.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                input.parse::<Token![=]>()?;
                let path = if input.peek(LitStr) {
                    input.parse::<LitStr>()?.parse::<Path>()?
                } else {
                    input.parse::<Path>()?
                };
                set_once(&mut options.krate, path, key.span, "crate")?;
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(options)
    }
}

/// Options of `#[lattice(timeout = "2s", idempotent, oneway)]` on a method.
#[derive(Default)]
pub(crate) struct MethodOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotent: bool,
    pub(crate) oneway: bool,
}

impl MethodOptions {
    /// Merges the options of one more `#[lattice(...)]` attribute.
    pub(crate) fn parse_into(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        if input.is_empty() {
            return Err(input.error("expected one of: `timeout`, `idempotent`, `oneway`"));
        }
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::timeout) {
                let key: kw::timeout = input.parse()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                let timeout = parse_timeout(&lit)?;
                set_once(&mut self.timeout, timeout, key.span, "timeout")?;
            } else if lookahead.peek(kw::idempotent) {
                let key: kw::idempotent = input.parse()?;
                set_flag(&mut self.idempotent, key.span, "idempotent")?;
            } else if lookahead.peek(kw::oneway) {
                let key: kw::oneway = input.parse()?;
                set_flag(&mut self.oneway, key.span, "oneway")?;
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    }
}

fn parse_timeout(lit: &LitStr) -> syn::Result<Duration> {
    let text = lit.value();
    match humantime::parse_duration(&text) {
        Ok(d) if d.is_zero() => Err(syn::Error::new(
            lit.span(),
            "`timeout` must be longer than zero",
        )),
        Ok(d) if d.as_millis() > u128::from(u64::MAX) => {
            Err(syn::Error::new(lit.span(), "`timeout` is too long"))
        }
        Ok(d) => Ok(d),
        Err(e) => Err(syn::Error::new(
            lit.span(),
            format!(
                "invalid `timeout` {text:?} ({e}): expected a duration such as \"500ms\", \"2s\" or \"1m\""
            ),
        )),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, span: Span, name: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(span, format!("`{name}` is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn set_flag(slot: &mut bool, span: Span, name: &str) -> syn::Result<()> {
    if *slot {
        return Err(syn::Error::new(span, format!("`{name}` is given twice")));
    }
    *slot = true;
    Ok(())
}
