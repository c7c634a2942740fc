//! Every semantic check of a contract trait, each a spanned error, all
//! collected; and the lowering of the trait to [`ast`](crate::ast).

use std::collections::HashMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use quote::format_ident;
use syn::{FnArg, ItemTrait, Pat, ReturnType, TraitItem, TraitItemFn, Type};

use crate::ast::{self, Arg, Bytes, Contract, Method, Output};
use crate::contract::Errors;
use crate::parse::{ContractOptions, MethodOptions};

/// Names of generated client methods; a contract method may not take them.
const RESERVED_METHODS: &[&str] = &[
    "new",
    "keyed",
    "connect",
    "from_client",
    "with_transport",
    "with_timeout",
    "with_traceparent",
    "actor",
    "inner",
    "clone",
    "fmt",
];

const NAME_RULE: &str = "1 to 64 characters from [a-z0-9_-]";

/// Checks the trait and lowers it. Returns the contract and the trait with our
/// `#[lattice(...)]` method attributes removed (what is emitted, error or not).
pub(crate) fn lower(
    options: &ContractOptions,
    mut item: ItemTrait,
    krate: syn::Path,
    errors: &mut Errors,
) -> (Contract, ItemTrait) {
    check_trait_shape(&item, errors);

    let name = match &options.name {
        Some(lit) => {
            let name = lit.value();
            if !is_wire_name(&name) {
                errors.spanned(
                    lit,
                    format!("contract name {name:?} breaks the naming rule: {NAME_RULE}"),
                );
            }
            name
        }
        None => {
            let name = item.ident.to_string().to_snake_case();
            if !is_wire_name(&name) {
                errors.spanned(
                    &item.ident,
                    format!(
                        "the contract's wire name would be {name:?}, which breaks the naming rule ({NAME_RULE}); \
                         give one with `#[lattice::contract(name = \"...\")]`"
                    ),
                );
            }
            name
        }
    };

    let mut methods = Vec::new();
    let mut seen_methods: HashMap<String, proc_macro2::Span> = HashMap::new();
    let mut seen_args_types: HashMap<String, String> = HashMap::new();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(f) => {
                let method_options = take_method_options(f, errors);
                if let Some(method) = lower_method(&item.ident, f, method_options, errors) {
                    if seen_methods.insert(method.name.clone(), method.ident.span()).is_some() {
                        errors.spanned(&method.ident, format!("duplicate method `{}`", method.name));
                    }
                    let args_type = method.args_ident.to_string();
                    if let Some(other) = seen_args_types.insert(args_type.clone(), method.name.clone())
                        && other != method.name
                    {
                            errors.spanned(
                                &method.ident,
                                format!(
                                    "methods `{other}` and `{}` would both generate the arguments type `{args_type}`; rename one of them",
                                    method.name
                                ),
                            );
                    }
                    methods.push(method);
                }
            }
            TraitItem::Const(c) => errors.spanned(
                &c.ident,
                "contracts hold only methods: move this constant out of the trait",
            ),
            TraitItem::Type(t) => errors.spanned(
                &t.ident,
                "contracts hold only methods: associated types cannot cross the wire; use a concrete type",
            ),
            other => errors.spanned(other, "contracts hold only methods"),
        }
    }

    let contract = Contract {
        krate,
        vis: item.vis.clone(),
        ident: item.ident.clone(),
        name,
        version: options.version.unwrap_or(1),
        docs: ast::docs(&item.attrs),
        methods,
        item: item.clone(),
    };
    (contract, item)
}

fn check_trait_shape(item: &ItemTrait, errors: &mut Errors) {
    if !item.generics.params.is_empty() {
        errors.spanned(
            &item.generics,
            "contract traits cannot be generic: every type on the wire must be concrete",
        );
    }
    if let Some(where_clause) = &item.generics.where_clause {
        errors.spanned(where_clause, "contract traits cannot have a where clause");
    }
    if let Some(unsafety) = &item.unsafety {
        errors.spanned(unsafety, "contract traits cannot be unsafe");
    }
    if let Some(auto) = &item.auto_token {
        errors.spanned(auto, "contract traits cannot be auto traits");
    }
}

/// Removes `#[lattice(...)]` from the method and parses it.
fn take_method_options(f: &mut TraitItemFn, errors: &mut Errors) -> MethodOptions {
    let mut options = MethodOptions::default();
    let mut kept = Vec::with_capacity(f.attrs.len());
    for attr in f.attrs.drain(..) {
        if attr.path().is_ident("lattice") {
            let parsed = match &attr.meta {
                syn::Meta::List(list) => {
                    list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
                        options.parse_into(input)
                    })
                }
                _ => Err(syn::Error::new_spanned(
                    &attr,
                    "expected `#[lattice(...)]` with one of: `timeout`, `idempotent`, `oneway`",
                )),
            };
            if let Err(e) = parsed {
                errors.push(e);
            }
        } else {
            kept.push(attr);
        }
    }
    f.attrs = kept;
    options
}

fn lower_method(
    trait_ident: &syn::Ident,
    f: &TraitItemFn,
    options: MethodOptions,
    errors: &mut Errors,
) -> Option<Method> {
    let sig = &f.sig;
    let mut ok = true;
    let mut fail = |errors: &mut Errors, tokens: &dyn quote::ToTokens, message: String| {
        errors.spanned(tokens, message);
        ok = false;
    };

    if let Some(t) = &sig.asyncness {
        fail(
            errors,
            t,
            "contract methods cannot be `async`: write a synchronous method; \
             actors run it synchronously and the generated native client is async already"
                .into(),
        );
    }
    if let Some(t) = &sig.constness {
        fail(errors, t, "contract methods cannot be `const`".into());
    }
    if let Some(t) = &sig.unsafety {
        fail(errors, t, "contract methods cannot be `unsafe`".into());
    }
    if let Some(t) = &sig.abi {
        fail(errors, t, "contract methods cannot have an ABI".into());
    }
    if !sig.generics.params.is_empty() {
        fail(
            errors,
            &sig.generics,
            "contract methods cannot be generic: the types of a call must be known on both ends of the wire".into(),
        );
    }
    if let Some(w) = &sig.generics.where_clause {
        fail(
            errors,
            w,
            "contract methods cannot have a where clause".into(),
        );
    }
    if let Some(v) = &sig.variadic {
        fail(errors, v, "contract methods cannot be variadic".into());
    }

    let name = ast::unraw(&sig.ident);
    if !is_wire_name(&name) {
        fail(
            errors,
            &sig.ident,
            format!(
                "method name `{name}` breaks the naming rule of the wire ({NAME_RULE}); use snake_case"
            ),
        );
    } else if RESERVED_METHODS.contains(&name.as_str()) || name.starts_with("__") {
        fail(
            errors,
            &sig.ident,
            format!(
                "`{name}` is reserved: the generated `{trait_ident}Client` has a method of that name; rename this method"
            ),
        );
    }

    // The receiver.
    let mutating = match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.colon_token.is_some() => {
            fail(
                errors,
                r,
                format!(
                    "unsupported receiver `self: {}`: contract methods take `&self` or `&mut self`",
                    ast::type_text(&r.ty)
                ),
            );
            false
        }
        Some(FnArg::Receiver(r)) if r.reference.is_none() => {
            fail(
                errors,
                r,
                "contract methods cannot take `self` by value: an actor lives on after a call; use `&self` or `&mut self`".into(),
            );
            false
        }
        Some(FnArg::Receiver(r)) => r.mutability.is_some(),
        _ => {
            fail(
                errors,
                &sig.ident,
                "contract methods take `&self` or `&mut self`: a call is made on a running actor"
                    .into(),
            );
            false
        }
    };

    // The arguments.
    let mut args = Vec::new();
    let mut seen: HashMap<String, ()> = HashMap::new();
    let skip = usize::from(matches!(sig.inputs.first(), Some(FnArg::Receiver(_))));
    for input in sig.inputs.iter().skip(skip) {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let ident = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            Pat::Wild(w) => {
                fail(
                    errors,
                    w,
                    "arguments need a name: it is their key in the arguments map on the wire"
                        .into(),
                );
                continue;
            }
            other => {
                fail(
                    errors,
                    other,
                    "argument patterns are not supported: name the argument, e.g. `point: Point`"
                        .into(),
                );
                continue;
            }
        };
        let arg_name = ast::unraw(&ident);
        if arg_name.starts_with("__") {
            fail(
                errors,
                &ident,
                format!(
                    "argument names starting with `__` are reserved for generated code: rename `{arg_name}`"
                ),
            );
        }
        if seen.insert(arg_name.clone(), ()).is_some() {
            fail(errors, &ident, format!("duplicate argument `{arg_name}`"));
        }
        if let Some(message) = unsendable(&pat_type.ty) {
            fail(
                errors,
                &pat_type.ty,
                format!("argument `{arg_name}`: {message}"),
            );
        }
        args.push(Arg {
            ident,
            name: arg_name,
            ty: (*pat_type.ty).clone(),
            ty_text: ast::type_text(&pat_type.ty),
            bytes: Bytes::of(&pat_type.ty),
        });
    }

    // The return type.
    let output = match &sig.output {
        ReturnType::Default => unit_output(),
        ReturnType::Type(_, ty) if is_unit(ty) => unit_output(),
        ReturnType::Type(_, ty) => {
            if let Some(message) = unsendable(ty) {
                fail(errors, ty, format!("return type: {message}"));
            }
            Output {
                ty: Some((**ty).clone()),
                ty_text: ast::type_text(ty),
                bytes: Bytes::of(ty),
                result: ast::is_result(ty),
            }
        }
    };
    if options.oneway && output.ty.is_some() {
        fail(
            errors,
            &sig.output,
            "`oneway` methods have no reply, so they must return `()`".into(),
        );
    }

    let timeout_ms = options
        .timeout
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let args_ident = format_ident!(
        "{}{}Args",
        trait_ident,
        name.to_upper_camel_case(),
        span = sig.ident.span()
    );
    ok.then(|| Method {
        ident: sig.ident.clone(),
        name,
        docs: ast::docs(&f.attrs),
        mutating,
        args,
        output,
        timeout_ms,
        idempotent: options.idempotent,
        oneway: options.oneway,
        args_ident,
    })
}

fn unit_output() -> Output {
    Output {
        ty: None,
        ty_text: "()".into(),
        bytes: Bytes::No,
        result: false,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// Why a type cannot cross the wire, if it cannot.
fn unsendable(ty: &Type) -> Option<String> {
    match ty {
        Type::Reference(r) => Some(format!(
            "references cannot cross the wire; use an owned type{}",
            match &*r.elem {
                Type::Path(p) if p.path.is_ident("str") => " (`String` instead of `&str`)",
                Type::Slice(_) => " (`Vec<T>` instead of `&[T]`)",
                _ => "",
            }
        )),
        Type::ImplTrait(_) => {
            Some("`impl Trait` cannot cross the wire; use a concrete type".into())
        }
        Type::TraitObject(_) => {
            Some("trait objects cannot cross the wire; use a concrete type".into())
        }
        Type::Ptr(_) => Some("raw pointers cannot cross the wire".into()),
        Type::BareFn(_) => Some("functions cannot cross the wire".into()),
        Type::Never(_) => Some("`!` cannot cross the wire".into()),
        Type::Path(p) if p.path.is_ident("Self") => {
            Some("`Self` is the actor, which cannot cross the wire; use a concrete type".into())
        }
        Type::Group(g) => unsendable(&g.elem),
        Type::Paren(p) => unsendable(&p.elem),
        _ => None,
    }
}

fn is_wire_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}
