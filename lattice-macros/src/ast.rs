//! The contract as plain data, after validation. Spans are kept in the idents
//! and types, so generated code points back at the user's source.

use quote::ToTokens;
use syn::{
    Attribute, Expr, ExprLit, GenericArgument, Ident, Lit, Meta, Path, PathArguments, Type,
    Visibility,
};

/// A validated contract.
pub(crate) struct Contract {
    pub(crate) krate: Path,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    /// The wire name, e.g. `counter`.
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) docs: String,
    pub(crate) methods: Vec<Method>,
    /// The user's trait, without our method attributes.
    pub(crate) item: syn::ItemTrait,
}

impl Contract {
    pub(crate) fn client_ident(&self) -> Ident {
        quote::format_ident!("{}Client", self.ident)
    }
    pub(crate) fn guest_client_ident(&self) -> Ident {
        quote::format_ident!("{}GuestClient", self.ident)
    }
}

/// A validated method.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    /// The wire name: the method name without `r#`.
    pub(crate) name: String,
    pub(crate) docs: String,
    pub(crate) mutating: bool,
    pub(crate) args: Vec<Arg>,
    pub(crate) output: Output,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) idempotent: bool,
    pub(crate) oneway: bool,
    /// The arguments struct, e.g. `CounterAddArgs`.
    pub(crate) args_ident: Ident,
}

/// A validated argument.
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    /// The wire name: the argument name without `r#`.
    pub(crate) name: String,
    pub(crate) ty: Type,
    pub(crate) ty_text: String,
    pub(crate) bytes: Bytes,
}

/// A method's return.
pub(crate) struct Output {
    /// `None` for `()`.
    pub(crate) ty: Option<Type>,
    pub(crate) ty_text: String,
    pub(crate) bytes: Bytes,
    pub(crate) result: bool,
}

/// How a type is carried as MessagePack bin.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Bytes {
    /// Not bytes.
    No,
    /// `Bytes`, `ByteBuf` and options of them: serde already writes bin.
    Native,
    /// `Vec<u8>` or `Option<Vec<u8>>`: serde writes an array of integers, so
    /// the generated code goes through `serde_bytes`.
    Wrapped,
}

impl Bytes {
    pub(crate) fn is_bytes(self) -> bool {
        self != Bytes::No
    }

    /// Classifies a type by its last path segments.
    pub(crate) fn of(ty: &Type) -> Bytes {
        match last_segment(ty) {
            Some((name, args)) if name == "Vec" && single_arg(args).is_some_and(is_u8) => {
                Bytes::Wrapped
            }
            Some((name, args)) if name == "Option" => match single_arg(args).map(Bytes::of) {
                Some(Bytes::Wrapped) => Bytes::Wrapped,
                Some(Bytes::Native) => Bytes::Native,
                _ => Bytes::No,
            },
            Some((name, _)) if name == "Bytes" || name == "ByteBuf" => Bytes::Native,
            _ => Bytes::No,
        }
    }
}

/// Whether the type is a `Result<T, E>`.
pub(crate) fn is_result(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, PathArguments::AngleBracketed(args))) if name == "Result" && args.args.len() == 2)
}

fn last_segment(ty: &Type) -> Option<(String, &PathArguments)> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .map(|s| (s.ident.to_string(), &s.arguments)),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn single_arg(args: &PathArguments) -> Option<&Type> {
    match args {
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match &a.args[0] {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn is_u8(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, PathArguments::None)) if name == "u8")
}

/// The type as written, with token spacing normalized: `Vec < u8 >` becomes
/// `Vec<u8>`, `& 'static str` becomes `&'static str`, a comma is followed by
/// one space. Part of the fingerprint,
/// so it must not change between releases.
pub(crate) fn type_text(ty: &Type) -> String {
    let raw = ty.to_token_stream().to_string();
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let before = out.chars().last();
            let after = chars.get(i + 1).copied();
            let wordy =
                |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '\'');
            if wordy(before) && wordy(after) {
                out.push(' ');
            }
        } else {
            out.push(c);
            if c == ',' {
                out.push(' ');
            }
        }
    }
    out
}

/// The doc comment of an item: the `#[doc = "..."]` lines, joined, with the
/// one leading space of `/// text` removed.
pub(crate) fn docs(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if let Meta::NameValue(nv) = &attr.meta
            && nv.path.is_ident("doc")
            && let Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
        {
            let line = s.value();
            lines.push(line.strip_prefix(' ').map(str::to_owned).unwrap_or(line));
        }
    }
    lines.join("\n").trim().to_owned()
}

/// The name without a raw-identifier prefix.
pub(crate) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn type_text_is_normalized() {
        let cases: Vec<(Type, &str)> = vec![
            (parse_quote!(Vec<u8>), "Vec<u8>"),
            (
                parse_quote!(Result<(), CounterError>),
                "Result<(), CounterError>",
            ),
            (
                parse_quote!(std::collections::HashMap<String, Vec<Option<u32>>>),
                "std::collections::HashMap<String, Vec<Option<u32>>>",
            ),
            (parse_quote!(&'static str), "&'static str"),
            (parse_quote!(&mut [u8]), "&mut[u8]"),
            (parse_quote!(dyn Fn(u8) -> u8), "dyn Fn(u8)->u8"),
            (parse_quote!([u8; 4]), "[u8;4]"),
        ];
        for (ty, want) in cases {
            assert_eq!(type_text(&ty), want);
        }
    }

    #[test]
    fn bytes_are_recognized() {
        let cases: Vec<(Type, Bytes)> = vec![
            (parse_quote!(Vec<u8>), Bytes::Wrapped),
            (parse_quote!(std::vec::Vec<u8>), Bytes::Wrapped),
            (parse_quote!(Option<Vec<u8>>), Bytes::Wrapped),
            (parse_quote!(Bytes), Bytes::Native),
            (parse_quote!(lattice::Bytes), Bytes::Native),
            (parse_quote!(Option<serde_bytes::ByteBuf>), Bytes::Native),
            (parse_quote!(Vec<u16>), Bytes::No),
            (parse_quote!(Vec<Vec<u8>>), Bytes::No),
            (parse_quote!(String), Bytes::No),
        ];
        for (ty, want) in cases {
            assert_eq!(Bytes::of(&ty), want, "{}", type_text(&ty));
        }
    }

    #[test]
    fn results_are_recognized() {
        assert!(is_result(&parse_quote!(Result<u8, E>)));
        assert!(is_result(&parse_quote!(std::result::Result<(), String>)));
        assert!(!is_result(&parse_quote!(io::Result<u8>)));
        assert!(!is_result(&parse_quote!(u8)));
    }

    #[test]
    fn docs_are_joined() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[doc = " Adds `by`."]),
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = "  Indented."]),
            parse_quote!(#[inline]),
        ];
        assert_eq!(docs(&attrs), "Adds `by`.\n\n Indented.");
    }

    #[test]
    fn raw_idents_lose_their_prefix() {
        let ident: Ident = parse_quote!(r#type);
        assert_eq!(unraw(&ident), "type");
    }
}
