//! Policies declared with `#[policy]`: their trait, and the registry (inventory) through which a
//! system finds a process application by name.

use super::policy::Policy;
use super::system::{AppName, ProcessDef};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A policy type: what `#[policy]` implements for the type of its impl block.
///
/// The struct holds the policy's state (configuration, clients); handlers reach it through
/// `&self`. [`PolicyType::policy`] turns a shared instance into the value-level [`Policy`]
/// whose handlers dispatch, by topic, to the methods.
///
/// ```
/// use es_runtime::prelude::*;
/// use es_runtime::process::{PolicyType, ProcessContext, System};
///
/// #[aggregate]
/// pub struct Order { open: bool }
/// #[aggregate]
/// impl Order {
///     #[event(Created)]
///     pub fn create() -> Self { Order { open: true } }
/// }
///
/// #[derive(Default)]
/// pub struct Audit { prefix: String }
///
/// #[policy(name = "audit")]
/// impl Audit {
///     async fn on_order(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()> {
///         let _ = (&self.prefix, ctx, e.originator_id());
///         Ok(())
///     }
/// }
///
/// # fn main() {
/// assert_eq!(Audit::NAME, "audit");
/// assert!(Audit::default().into_policy().handles(<order::Created as EventPayload>::TOPIC));
/// let system = System::new().pipeline("orders | audit").process("orders", es_runtime::process::Policy::new);
/// // "audit" is found in the registry: #[policy] registered it.
/// system.validate().unwrap();
/// # }
/// ```
pub trait PolicyType: Send + Sync + Sized + 'static {
    /// The process application's name in a system (`#[policy(name = "...")]`, or the type's
    /// name in snake case).
    const NAME: &'static str;
    /// The name as a pipeline step: `Orders::APP | Reservations::APP`.
    const APP: AppName = AppName::new(Self::NAME);

    /// The value-level policy, its handlers sharing `self`.
    fn policy(self: Arc<Self>) -> Policy;

    /// [`PolicyType::policy`] of a new `Arc` of `self`.
    fn into_policy(self) -> Policy {
        Arc::new(self).policy()
    }
}

/// What `#[policy]` registers: a name and how to make the policy.
#[derive(Debug)]
pub struct PolicyRegistration {
    /// The process application's name.
    pub name: &'static str,
    /// The Rust type, for messages.
    pub type_name: &'static str,
    /// Makes the policy of a new default instance.
    pub make: fn() -> Policy,
}

inventory::collect!(PolicyRegistration);

/// What a `#[policy]` type needs so that a system can make it by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a `#[policy]` type, so it needs `Default`",
    label = "a system makes this policy by its name with `Default::default()`",
    note = "derive or implement `Default` for `{Self}` (build clients and configuration there); `System::policy_from(value)` then runs it with other state"
)]
pub trait PolicyDefault: Default {}
impl<T: Default> PolicyDefault for T {}

/// The policy of a new default `P` (what the registry makes for a name).
pub fn make_default<P: PolicyType + PolicyDefault>() -> Policy {
    P::default().into_policy()
}

/// Why a registered name cannot be used: two types claim it.
pub(crate) struct Registered {
    pub(crate) def: ProcessDef,
    pub(crate) types: Vec<&'static str>,
}

fn registry() -> &'static HashMap<&'static str, Registered> {
    static REGISTRY: OnceLock<HashMap<&'static str, Registered>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut map: HashMap<&'static str, Registered> = HashMap::new();
        for r in inventory::iter::<PolicyRegistration> {
            let make = r.make;
            let entry = map.entry(r.name).or_insert_with(|| Registered {
                def: ProcessDef::from_factory(Arc::new(make)),
                types: Vec::new(),
            });
            if !entry.types.contains(&r.type_name) {
                entry.types.push(r.type_name);
            }
        }
        map
    })
}

/// The registered policy of `name`, if exactly one type registered it; otherwise why not.
pub(crate) fn lookup(name: &str) -> Option<&'static Registered> {
    registry().get(name)
}

/// Every registered name, sorted (for messages).
pub(crate) fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = registry().keys().copied().collect();
    v.sort_unstable();
    v
}
