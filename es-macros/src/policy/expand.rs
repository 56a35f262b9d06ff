//! Code generation for `#[policy]` and `#[projection]` (never reports user errors).

use super::valid::{Handler, Model, Pass};
use super::Kind;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

pub fn expand(m: Model) -> TokenStream {
    let item = &m.item;
    let body = match m.kind {
        Kind::Policy => policy(&m),
        Kind::Projection => projection(&m),
    };
    quote! {
        #item
        #[automatically_derived]
        const _: () = {
            #body
        };
    }
}

/// `Type::method`, for errors.
fn handler_name(m: &Model, method: &syn::Ident) -> String {
    format!("{}::{}", m.type_name, method)
}

/// How the event reaches the method, given `e: &Event<T>` in scope.
fn arg(h: &Handler) -> TokenStream {
    match h.pass {
        Pass::Payload => quote!(&**e),
        Pass::EventRef => quote!(e),
        Pass::EventOwned => quote!(::core::clone::Clone::clone(e)),
    }
}

fn policy(m: &Model) -> TokenStream {
    let k = &m.krate;
    let ty = &m.self_ty;
    let name = &m.name;
    let type_name = &m.type_name;
    let handlers = m.handlers.iter().map(|h| {
        let method = &h.method;
        let payload = &h.payload;
        let hname = handler_name(m, method);
        let arg = arg(h);
        // The event type's span: a type that is not an event is reported on the user's type.
        let event_ty = quote_spanned!(payload.span()=> #k::__private::Event<#payload>);
        let on = syn::Ident::new("on", payload.span());
        quote! {
            let policy = {
                let this = ::std::sync::Arc::clone(&self);
                policy.#on(move |mut ctx: #k::__private::ProcessContext, event: #event_ty| {
                    let this = ::std::sync::Arc::clone(&this);
                    async move {
                        let e = &event;
                        ctx.enter_handler(#hname);
                        #k::__private::handler_result(#hname, this.#method(&mut ctx, #arg).await)
                    }
                })
            };
        }
    });
    let make = quote_spanned!(ty.span()=> #k::__private::make_default::<#ty>);
    quote! {
        impl #k::__private::PolicyType for #ty {
            const NAME: &'static ::core::primitive::str = #name;
            fn policy(self: ::std::sync::Arc<Self>) -> #k::__private::Policy {
                let policy = #k::__private::Policy::new();
                #(#handlers)*
                policy
            }
        }
        #k::__private::inventory::submit! {
            #k::__private::PolicyRegistration {
                name: #name,
                type_name: #type_name,
                make: #make,
            }
        }
    }
}

fn projection(m: &Model) -> TokenStream {
    let k = &m.krate;
    let ty = &m.self_ty;
    let name = &m.name;
    let topics = m.handlers.iter().map(|h| {
        let payload = &h.payload;
        quote_spanned!(payload.span()=> <#payload as #k::__private::EventPayload>::TOPIC)
    });

    let arms = m.handlers.iter().map(|h| {
        let method = &h.method;
        let payload = &h.payload;
        let hname = handler_name(m, method);
        let arg = arg(h);
        quote! {
            if topic == <#payload as #k::__private::EventPayload>::TOPIC {
                return match event.downcast_ref::<#payload>() {
                    ::core::option::Option::Some(e) => ::std::boxed::Box::pin(async move {
                        tx.enter_handler(#hname);
                        #k::__private::handler_result(#hname, self.#method(tx, #arg).await)
                    }),
                    ::core::option::Option::None => {
                        let err = #k::__private::mismatched(#hname, event);
                        ::std::boxed::Box::pin(async move { ::core::result::Result::Err(err) })
                    }
                };
            }
        }
    });
    let reset = m.reset.as_ref().map(|r| {
        let rname = handler_name(m, r);
        quote! {
            fn reset<'a>(&'a self, tx: &'a mut #k::__private::Tx) -> #k::__private::ProjectionFuture<'a> {
                ::std::boxed::Box::pin(async move {
                    tx.enter_handler(#rname);
                    #k::__private::handler_result(#rname, self.#r(tx).await)
                })
            }
        }
    });
    quote! {
        impl #k::__private::Projection for #ty {
            fn name(&self) -> &::core::primitive::str {
                #name
            }
            fn handles(&self, topic: &::core::primitive::str) -> ::core::primitive::bool {
                false #(|| topic == #topics)*
            }
            fn apply<'a>(
                &'a self,
                tx: &'a mut #k::__private::Tx,
                event: &'a dyn #k::__private::AnyEvent,
            ) -> #k::__private::ProjectionFuture<'a> {
                let topic = event.topic();
                #(#arms)*
                let _ = (tx, topic);
                ::std::boxed::Box::pin(async { ::core::result::Result::Ok(()) })
            }
            #reset
        }
    }
}
