//! The expansion of `#[main]` and `#[test]`: parse the arguments, check the function,
//! and wrap its body in a runtime's `block_on`.
//!
//! Only the function's signature is parsed; the body is passed through as tokens, so a
//! large body costs nothing to parse and a syntax error inside it is reported by rustc
//! as usual. On an error the function is still emitted beside the `compile_error!`, so
//! the rest of the crate does not fill with follow-on errors.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, LitInt, LitStr, Path, Signature, Visibility};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "main",
            Kind::Test => "test",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiReactor,
}

/// The arguments, as written.
#[derive(Default)]
struct Args {
    flavor: Option<(Flavor, Span)>,
    /// The count, where it was written, and under which name (`reactors` or tokio's
    /// `worker_threads`).
    reactors: Option<(usize, Span, &'static str)>,
    crate_path: Option<Path>,
}

const EXPECTED: &str = "expected `flavor = \"multi_reactor\" | \"current_thread\"`, `reactors = N` \
     (tokio's `worker_threads = N` is accepted) or `crate = \"path\"`";

impl Args {
    fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let mut args = Args::default();
        let parser = syn::meta::parser(|meta| {
            let Some(name) = meta.path.get_ident().map(|i| i.to_string()) else {
                return Err(meta.error(format!("unknown argument: {EXPECTED}")));
            };
            match name.as_str() {
                "flavor" => {
                    let lit: LitStr = parse_value(&meta, "flavor", "a string")?;
                    if args.flavor.is_some() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "`flavor` is set more than once",
                        ));
                    }
                    let flavor = match lit.value().as_str() {
                        "current_thread" => Flavor::CurrentThread,
                        // tokio's work-stealing flavour: epitome's nearest is the
                        // multi-reactor runtime.
                        "multi_reactor" | "multi_thread" => Flavor::MultiReactor,
                        other => {
                            return Err(syn::Error::new(
                                lit.span(),
                                format!(
                                    "no runtime flavor `{other}`: the flavors are `multi_reactor` and \
                                     `current_thread` (tokio's `multi_thread` means `multi_reactor`)"
                                ),
                            ));
                        }
                    };
                    args.flavor = Some((flavor, lit.span()));
                }
                "reactors" | "worker_threads" => {
                    let name: &'static str = if name == "reactors" {
                        "reactors"
                    } else {
                        "worker_threads"
                    };
                    let lit: LitInt = parse_value(&meta, name, "an integer")?;
                    if args.reactors.is_some() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "the reactor count is set more than once (`worker_threads` is another \
                             name for `reactors`)",
                        ));
                    }
                    let n: usize = lit.base10_parse().map_err(|_| {
                        syn::Error::new(lit.span(), format!("`{name}` must be a positive integer"))
                    })?;
                    if n == 0 {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("`{name}` must be at least 1: a runtime needs a reactor"),
                        ));
                    }
                    args.reactors = Some((n, lit.span(), name));
                }
                "crate" => {
                    let lit: LitStr = parse_value(&meta, "crate", "a string")?;
                    if args.crate_path.is_some() {
                        return Err(syn::Error::new(lit.span(), "`crate` is set more than once"));
                    }
                    let path: Path = lit.parse().map_err(|_| {
                        syn::Error::new(
                            lit.span(),
                            format!(
                                "`crate` must be a path, such as \"my_crate::epitome\", not {:?}",
                                lit.value()
                            ),
                        )
                    })?;
                    args.crate_path = Some(path);
                }
                "start_paused" | "unhandled_panic" => {
                    return Err(meta.error(format!(
                        "tokio's `{name}` is not supported by epitome: {EXPECTED}"
                    )));
                }
                other => {
                    return Err(meta.error(format!("unknown argument `{other}`: {EXPECTED}")));
                }
            }
            Ok(())
        });
        parser.parse2(tokens)?;
        Ok(args)
    }
}

/// The value after `name =`, as a literal of type `L`.
fn parse_value<L: Parse + Spanned>(
    meta: &syn::meta::ParseNestedMeta<'_>,
    name: &str,
    what: &str,
) -> syn::Result<L> {
    let value = meta
        .value()
        .map_err(|_| meta.error(format!("`{name}` needs a value: `{name} = ...`")))?;
    let expr: syn::Expr = value.parse()?;
    syn::parse2::<L>(expr.to_token_stream())
        .map_err(|_| syn::Error::new(expr.span(), format!("`{name}` must be {what}")))
}

/// The function the attribute is on: signature parsed, body kept as tokens.
struct Function {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: Group,
}

impl Parse for Function {
    fn parse(input: ParseStream<'_>) -> syn::Result<Function> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected the function's body"));
        }
        Ok(Function {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function = match syn::parse2::<Function>(item.clone()) {
        Ok(f) => f,
        // Not a function we can read: say so, and give the item back unchanged.
        Err(e) => {
            let error = e.to_compile_error();
            return quote! { #error #item };
        }
    };
    let checked = check_function(kind, &function).and_then(|()| {
        let args = Args::parse(args)?;
        check_args(kind, &args)?;
        Ok(args)
    });
    match checked {
        Ok(args) => wrap(kind, &args, &mut function),
        Err(e) => {
            // Keep the function (without `async`, so no "async main" error follows).
            let error = e.to_compile_error();
            function.sig.asyncness = None;
            let Function {
                attrs,
                vis,
                sig,
                body,
            } = function;
            quote! { #error #(#attrs)* #vis #sig #body }
        }
    }
}

fn check_function(kind: Kind, f: &Function) -> syn::Result<()> {
    if f.sig.asyncness.is_none() {
        return Err(syn::Error::new(
            f.sig.fn_token.span(),
            format!(
                "the `async` keyword is missing from the function declaration: \
                 #[epitome::{}] runs an `async fn`",
                kind.name()
            ),
        ));
    }
    if !f.sig.inputs.is_empty() {
        let what = match kind {
            Kind::Main => "the main function",
            Kind::Test => "a test function",
        };
        return Err(syn::Error::new(
            f.sig.inputs.span(),
            format!("{what} cannot take arguments"),
        ));
    }
    if kind == Kind::Test {
        if let Some(attr) = f.attrs.iter().find(|a| is_test_attribute(a)) {
            return Err(syn::Error::new(
                attr.span(),
                "a second test attribute: #[epitome::test] already makes this a test, remove this one",
            ));
        }
    }
    Ok(())
}

/// `#[test]` or `#[...::test]` (another runtime's test attribute, say).
fn is_test_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "test")
}

fn check_args(kind: Kind, args: &Args) -> syn::Result<()> {
    let flavor = args.flavor.map(|(f, _)| f).unwrap_or(match kind {
        Kind::Main => Flavor::MultiReactor,
        Kind::Test => Flavor::CurrentThread,
    });
    if let (Flavor::CurrentThread, Some((_, span, name))) = (flavor, args.reactors) {
        let hint = match kind {
            Kind::Test if args.flavor.is_none() => {
                " (tests default to `current_thread`: add `flavor = \"multi_reactor\"`)"
            }
            _ => "",
        };
        return Err(syn::Error::new(
            span,
            format!(
                "`{name}` needs the `multi_reactor` flavor: a current-thread runtime has one reactor{hint}"
            ),
        ));
    }
    Ok(())
}

fn wrap(kind: Kind, args: &Args, f: &mut Function) -> TokenStream {
    f.sig.asyncness = None;
    let krate = match &args.crate_path {
        Some(path) => path.to_token_stream(),
        None => quote!(::epitome),
    };
    let flavor = args.flavor.map(|(f, _)| f).unwrap_or(match kind {
        Kind::Main => Flavor::MultiReactor,
        Kind::Test => Flavor::CurrentThread,
    });
    let builder = match flavor {
        Flavor::CurrentThread => quote!(#krate::runtime::Builder::new_current_thread()),
        Flavor::MultiReactor => match args.reactors {
            Some((n, span, _)) => {
                quote_spanned!(span=> #krate::runtime::Builder::new_multi_reactor().reactors(#n))
            }
            None => quote!(#krate::runtime::Builder::new_multi_reactor()),
        },
    };
    let output = match &f.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let body = &f.body;
    // The body's future is named with its output type, so a body whose type does not
    // match the signature is reported against the signature.
    let run = quote_spanned! {body.span()=>
        let body = async move #body;
        let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output>> =
            ::core::pin::pin!(body);
        #[allow(clippy::expect_used, clippy::needless_return)]
        {
            return #builder
                .build()
                .unwrap_or_else(|e| ::core::panic!("failed to build the epitome runtime: {e}"))
                .block_on(body);
        }
    };
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    let Function {
        attrs, vis, sig, ..
    } = f;
    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #run
        }
    }
}
