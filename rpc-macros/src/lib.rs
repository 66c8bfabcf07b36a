//! The `#[rpc::service]` attribute: from one trait, a typed client and a server dispatcher.
//!
//! This is the Rust counterpart of a Java RPC's dynamic proxy (client side) and reflection
//! (server side), done at compile time: no method lookup by reflection, no runtime proxies.
//! Use it through the `rpc` crate, which re-exports it as `rpc::service`.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ItemTrait, LitStr, Pat, PathArguments, ReturnType, Token, TraitItem, TraitItemFn,
    Type, parse_macro_input,
};

/// Turns a service trait into a service contract.
///
/// ```ignore
/// #[rpc::service]
/// pub trait Stock {
///     /// Reserves one unit for a user.
///     #[rpc(hash_key = goods_id)]
///     async fn reserve(&self, user_id: u64, goods_id: u64) -> Result<Outcome, StockError>;
///     #[rpc(idempotent)]
///     async fn stock(&self, goods_id: u64) -> Result<i64, StockError>;
/// }
/// ```
///
/// generates
/// - the trait itself, with each `async fn` turned into `fn … -> impl Future<Output = …> + Send`
///   (implementations may still write `async fn`), and `Send + Sync + 'static` as supertraits;
/// - `StockClient<T = rpc::Channel>`: one async method per trait method, returning
///   `Result<T, rpc::Error<E>>` for a method returning `Result<T, E>`, else `Result<R, rpc::Error>`;
/// - `StockServer<S>`: an `rpc::Service` that decodes the arguments and calls `S`.
///
/// Method options in `#[rpc(...)]`: `idempotent` (may be retried), `hash_key = arg` (the argument
/// hash-based balancing routes on).
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(Span::call_site(), "#[rpc::service] takes no arguments").to_compile_error().into();
    }
    let item = parse_macro_input!(item as ItemTrait);
    expand(item).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// One method of the service, as the generator needs it.
struct Method {
    attrs: Vec<syn::Attribute>,
    name: Ident,
    args: Vec<(Ident, Type)>,
    /// The declared return type.
    output: Type,
    /// `Some((T, E))` when the method returns `Result<T, E>`.
    result: Option<(Type, Type)>,
    idempotent: bool,
    hash_key: Option<Ident>,
}

fn expand(item: ItemTrait) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(item.generics.span(), "service traits cannot be generic"));
    }
    let methods = item
        .items
        .iter()
        .map(|entry| match entry {
            TraitItem::Fn(method) => parse_method(method),
            other => Err(syn::Error::new(other.span(), "service traits may only contain async methods")),
        })
        .collect::<syn::Result<Vec<_>>>()?;
    let trait_def = trait_definition(&item, &methods);
    let client = client(&item, &methods);
    let server = server(&item, &methods);
    Ok(quote! { #trait_def #client #server })
}

fn parse_method(method: &TraitItemFn) -> syn::Result<Method> {
    let sig = &method.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(sig.span(), "service methods must be `async fn`"));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), "service methods cannot be generic"));
    }
    if method.default.is_some() {
        return Err(syn::Error::new(method.span(), "service methods cannot have a default body"));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        _ => return Err(syn::Error::new(sig.span(), "service methods take `&self` first")),
    }
    let args = inputs
        .map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Ok((ident.ident.clone(), (*typed.ty).clone())),
                other => Err(syn::Error::new(other.span(), "arguments must be plain names")),
            },
            FnArg::Receiver(receiver) => Err(syn::Error::new(receiver.span(), "unexpected receiver")),
        })
        .collect::<syn::Result<Vec<_>>>()?;
    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let mut idempotent = false;
    let mut hash_key = None;
    let mut attrs = Vec::new();
    for attr in &method.attrs {
        if !attr.path().is_ident("rpc") {
            attrs.push(attr.clone());
            continue;
        }
        for option in attr.parse_args_with(Punctuated::<MethodOption, Token![,]>::parse_terminated)? {
            match option {
                MethodOption::Idempotent => idempotent = true,
                MethodOption::HashKey(key) => {
                    if !args.iter().any(|(name, _)| *name == key) {
                        return Err(syn::Error::new(key.span(), "hash_key must name an argument of the method"));
                    }
                    hash_key = Some(key);
                }
            }
        }
    }
    Ok(Method { attrs, name: sig.ident.clone(), args, result: split_result(&output), output, idempotent, hash_key })
}

enum MethodOption {
    Idempotent,
    HashKey(Ident),
}

impl Parse for MethodOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        match name.to_string().as_str() {
            "idempotent" => Ok(MethodOption::Idempotent),
            "hash_key" => {
                input.parse::<Token![=]>()?;
                Ok(MethodOption::HashKey(input.parse()?))
            }
            _ => Err(syn::Error::new(name.span(), "expected `idempotent` or `hash_key = <argument>`")),
        }
    }
}

/// `Result<T, E>` → `Some((T, E))`.
fn split_result(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(generics) = &last.arguments else { return None };
    let mut types = generics.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    });
    let (ok, err) = (types.next()?, types.next()?);
    types.next().is_none().then_some((ok, err))
}

fn trait_definition(item: &ItemTrait, methods: &[Method]) -> TokenStream2 {
    let ItemTrait { attrs, vis, ident, .. } = item;
    let fns = methods.iter().map(|m| {
        let Method { attrs, name, args, output, .. } = m;
        let params = args.iter().map(|(arg, ty)| quote!(#arg: #ty));
        quote! {
            #(#attrs)*
            fn #name(&self, #(#params),*) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        }
    });
    quote! {
        #(#attrs)*
        #vis trait #ident: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#fns)*
        }
    }
}

fn client(item: &ItemTrait, methods: &[Method]) -> TokenStream2 {
    let ItemTrait { vis, ident, .. } = item;
    let client = format_ident!("{}Client", ident);
    let service_name = LitStr::new(&ident.to_string(), ident.span());
    let doc = format!("Typed client of the [`{ident}`] service, over any [`rpc::Transport`](::rpc::Transport).");
    let fns = methods.iter().map(|m| {
        let Method { attrs, name, args, output, result, idempotent, hash_key } = m;
        let docs = attrs.iter().filter(|a| a.path().is_ident("doc"));
        let params = args.iter().map(|(arg, ty)| quote!(#arg: #ty));
        let names = args.iter().map(|(arg, _)| arg);
        let method_name = LitStr::new(&name.to_string(), name.span());
        let (ok, err) = match result {
            Some((ok, err)) => (quote!(#ok), quote!(#err)),
            None => (quote!(#output), quote!(::rpc::Never)),
        };
        let key = match hash_key {
            Some(key) => quote!(::core::option::Option::Some(::rpc::hash_key(&#key))),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #(#docs)*
            pub async fn #name(&self, #(#params),*) -> ::core::result::Result<#ok, ::rpc::Error<#err>> {
                const METHOD: ::rpc::MethodInfo = ::rpc::MethodInfo {
                    service: #service_name,
                    method: #method_name,
                    idempotent: #idempotent,
                };
                let __rpc_hash_key = #key;
                ::rpc::invoke(&self.transport, &self.options, METHOD, __rpc_hash_key, &(#(#names,)*)).await
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #client<T = ::rpc::Channel> {
            transport: T,
            options: ::rpc::CallOptions,
        }

        impl<T: ::rpc::Transport> #client<T> {
            /// The service name on the wire.
            pub const SERVICE: &'static str = #service_name;

            /// A client sending its calls over `transport`.
            pub fn new(transport: T) -> Self {
                Self { transport, options: ::rpc::CallOptions::default() }
            }

            /// The same client with other call options (codec, timeout, credential).
            pub fn with_options(mut self, options: ::rpc::CallOptions) -> Self {
                self.options = options;
                self
            }

            /// The same client, its calls carrying `credential` (who they come from).
            pub fn with_credential(mut self, credential: ::rpc::Credential) -> Self {
                self.options.credential = ::core::option::Option::Some(credential);
                self
            }

            /// The options its calls are made with.
            pub fn options(&self) -> &::rpc::CallOptions {
                &self.options
            }

            /// The transport calls go over.
            pub fn transport(&self) -> &T {
                &self.transport
            }

            #(#fns)*
        }
    }
}

fn server(item: &ItemTrait, methods: &[Method]) -> TokenStream2 {
    let ItemTrait { vis, ident, .. } = item;
    let server = format_ident!("{}Server", ident);
    let service_name = LitStr::new(&ident.to_string(), ident.span());
    let doc = format!("Serves an implementation of [`{ident}`]: add it to an [`rpc::Server`](::rpc::Server).");
    let arms = methods.iter().map(|m| {
        let Method { name, args, result, .. } = m;
        let method_name = LitStr::new(&name.to_string(), name.span());
        let names: Vec<_> = args.iter().map(|(arg, _)| arg).collect();
        let types = args.iter().map(|(_, ty)| ty);
        let respond = if result.is_some() {
            quote!(::rpc::Response::from_result(__rpc_codec, __rpc_inner.#name(#(#names),*).await))
        } else {
            quote!(::rpc::Response::from_value(__rpc_codec, &__rpc_inner.#name(#(#names),*).await))
        };
        quote! {
            #method_name => {
                let __rpc_inner = ::std::sync::Arc::clone(&self.inner);
                ::core::option::Option::Some(::std::boxed::Box::pin(async move {
                    let __rpc_codec = __rpc_request.codec;
                    let (#(#names,)*): (#(#types,)*) = match __rpc_request.decode() {
                        ::core::result::Result::Ok(args) => args,
                        ::core::result::Result::Err(response) => return response,
                    };
                    #respond
                }))
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug)]
        #vis struct #server<S> {
            inner: ::std::sync::Arc<S>,
        }

        impl<S: #ident> #server<S> {
            /// Wraps an implementation.
            pub fn new(implementation: S) -> Self {
                Self { inner: ::std::sync::Arc::new(implementation) }
            }

            /// Wraps an implementation that is shared with other owners.
            pub fn from_arc(implementation: ::std::sync::Arc<S>) -> Self {
                Self { inner: implementation }
            }
        }

        impl<S: #ident> ::rpc::Service for #server<S> {
            fn name(&self) -> &'static str {
                #service_name
            }

            fn call(
                &self,
                method: &str,
                __rpc_request: ::rpc::Request,
            ) -> ::core::option::Option<::rpc::BoxFuture<'static, ::rpc::Response>> {
                match method {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    }
}
