//! Code generation for `#[event(aggregate = ..)]`.

use super::valid::{Kind, Model};
use crate::common::derives;
use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

pub fn expand(m: Model) -> TokenStream {
    let Model {
        krate,
        aggregate,
        topic,
        version,
        upcast,
        kind,
        mut item,
    } = m;
    let p = quote!(#krate::__private);
    let derive = derives(&item.attrs, &krate, true);
    if matches!(item.fields, syn::Fields::Unit) {
        // A unit struct serialises as `null`; an empty braced struct as `{}` (an object, like
        // every other payload).
        item.fields = syn::Fields::Named(syn::parse_quote!({}));
        item.semi_token = None;
    }
    let name = &item.ident;
    let name_str = name.to_string();
    let topic = match topic {
        Some(t) => quote!(#t),
        None => quote!(#p::topic_concat!(<#aggregate as #p::Aggregate>::TOPIC, #name_str)),
    };
    let (kind, mutate) = match kind {
        Kind::Custom => {
            // Spanned on the struct's name, so a missing `impl Mutate<Aggregate>` points there.
            let call = quote::quote_spanned! {name.span()=>
                <Self as #p::Mutate<#aggregate>>::mutate(&self, aggregate)
            };
            (
                quote!(#p::EventKind::Custom),
                quote! {
                    fn mutate(self, aggregate: &mut #aggregate) -> #p::Result<()> {
                        #call;
                        ::core::result::Result::Ok(())
                    }
                },
            )
        }
        Kind::Logged => (
            quote!(#p::EventKind::Logged),
            quote! {
                fn mutate(self, _aggregate: &mut #aggregate) -> #p::Result<()> {
                    ::core::result::Result::Ok(())
                }
            },
        ),
    };
    let upcast = upcast.map(|f| {
        quote::quote_spanned! {f.span()=>
            fn upcast(from_version: u32, data: &mut #p::serde_json::Value) -> #p::Result<()> {
                #f(from_version, data)
            }
        }
    });
    let field_checks = item.fields.iter().map(|f| {
        let t = &f.ty;
        quote::quote_spanned! {t.span()=>
            #p::assert_event_field::<#t>();
        }
    });
    let field_checks: Vec<_> = field_checks.collect();
    quote! {
        // First, so that a field type's own message comes before any of serde's.
        const _: () = { #(#field_checks)* };

        #derive
        #item

        const _: () = {

            #[automatically_derived]
            impl #p::EventPayload for #name {
                type Aggregate = #aggregate;
                const TOPIC: &'static str = #topic;
                const KIND: #p::EventKind = #kind;
                const VERSION: u32 = #version;
                #upcast
                #mutate
            }

            #p::inventory::submit! {
                #p::EventType::of::<#name>(
                    ::core::concat!(::core::module_path!(), "::", #name_str),
                )
            }
        };
    }
}
