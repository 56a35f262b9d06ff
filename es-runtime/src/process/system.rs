//! Systems of process applications, defined without any infrastructure (manual §12.3, §12.4.4).

use super::policy::Policy;
use super::registry::{self, make_default, PolicyType};
use crate::application::ApplicationBuilder;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name of a process application in a system: a step of a [`Pipeline`].
///
/// `|` joins names into pipelines, as in the manual (`Orders | Reservations | Orders`):
///
/// ```
/// use es_runtime::process::AppName;
/// const ORDERS: AppName = AppName::new("orders");
/// const RESERVATIONS: AppName = AppName::new("reservations");
/// let p = ORDERS | RESERVATIONS | ORDERS;
/// assert_eq!(p.steps(), ["orders", "reservations", "orders"]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(&'static str);

impl AppName {
    /// The name `name`.
    pub const fn new(name: &'static str) -> Self {
        AppName(name)
    }
    /// The name as a string.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for AppName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A pipeline expression: each step follows the step before it. `A | B | C` makes B follow
/// A and C follow B; `A | A` makes A follow itself.
///
/// Written with [`AppName`]s and `|`, or parsed from text:
///
/// ```
/// use es_runtime::process::Pipeline;
/// let p = Pipeline::from("commands | orders | commands");
/// assert_eq!(p.steps(), ["commands", "orders", "commands"]);
/// assert_eq!(p.edges(), [("commands", "orders"), ("orders", "commands")]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pipeline {
    steps: Vec<String>,
    /// Why the expression is invalid, reported when the system is validated.
    error: Option<String>,
}

impl Pipeline {
    /// Parses `expr` (names separated by `|`); an error is reported by
    /// [`System::validate`]. Use [`Pipeline::parse`] to see it at once.
    pub fn parse(expr: &str) -> Result<Pipeline> {
        let mut steps = Vec::new();
        for part in expr.split('|') {
            let name = part.trim();
            check_name(name)
                .map_err(|e| Error::Configuration(format!("pipeline {expr:?}: {e}")))?;
            steps.push(name.to_string());
        }
        Ok(Pipeline { steps, error: None })
    }

    /// The application names, in order.
    pub fn steps(&self) -> Vec<&str> {
        self.steps.iter().map(String::as_str).collect()
    }

    /// Who follows whom: `(upstream, follower)` for each adjacent pair.
    pub fn edges(&self) -> Vec<(&str, &str)> {
        self.steps
            .windows(2)
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect()
    }
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("empty application name".into());
    }
    if name.contains(|c: char| c.is_whitespace() || c == '|') {
        return Err(format!("invalid application name {name:?}"));
    }
    Ok(())
}

impl From<&str> for Pipeline {
    fn from(expr: &str) -> Self {
        Pipeline::parse(expr).unwrap_or_else(|e| Pipeline {
            steps: Vec::new(),
            error: Some(e.to_string()),
        })
    }
}

impl From<AppName> for Pipeline {
    fn from(name: AppName) -> Self {
        Pipeline::from(name.as_str())
    }
}

impl std::ops::BitOr for AppName {
    type Output = Pipeline;
    fn bitor(self, rhs: AppName) -> Pipeline {
        Pipeline::from(self) | rhs
    }
}

impl std::ops::BitOr<AppName> for Pipeline {
    type Output = Pipeline;
    fn bitor(mut self, rhs: AppName) -> Pipeline {
        if let Err(e) = check_name(rhs.as_str()) {
            self.error.get_or_insert(e);
        }
        self.steps.push(rhs.as_str().to_string());
        self
    }
}

type PolicyFactory = Arc<dyn Fn() -> Policy + Send + Sync>;
type Configure = Arc<dyn Fn(ApplicationBuilder) -> ApplicationBuilder + Send + Sync>;

/// How to make one process application of a system: its policy and, optionally, how to
/// configure its application (snapshots, cache, which events it persists, ...). The database
/// and the name are the runner's business.
#[derive(Clone)]
pub struct ProcessDef {
    policy: PolicyFactory,
    configure: Option<Configure>,
}

impl ProcessDef {
    pub(crate) fn from_factory(policy: PolicyFactory) -> Self {
        ProcessDef {
            policy,
            configure: None,
        }
    }

    /// A new policy for one instance (one per pipeline).
    pub fn policy(&self) -> Policy {
        (self.policy)()
    }
    /// `builder` with this process's own settings applied.
    pub fn configure(&self, builder: ApplicationBuilder) -> ApplicationBuilder {
        match &self.configure {
            Some(c) => c(builder),
            None => builder,
        }
    }
}

/// A system of process applications: who follows whom, and how to make each application,
/// entirely independent of infrastructure. Give it to a [`Runner`](super::Runner) with a
/// database to run it; the same system runs on any backend, single-threaded or concurrently,
/// with the same results.
///
/// ```
/// use es_runtime::process::{Policy, System};
/// let system = System::new()
///     .pipeline("orders | reservations | orders")
///     .pipeline("orders | payments | orders")
///     .process("orders", Policy::new)
///     .process("reservations", Policy::new)
///     .process("payments", Policy::new);
/// system.validate().unwrap();
/// assert_eq!(system.names(), ["orders", "reservations", "payments"]);
/// assert_eq!(system.followers("orders"), ["reservations", "payments"]);
/// assert_eq!(system.upstreams("orders"), ["reservations", "payments"]);
/// ```
#[derive(Clone, Default)]
pub struct System {
    /// Names in order of first appearance.
    names: Vec<String>,
    /// `(upstream, follower)`, without repeats, in order of first appearance.
    edges: Vec<(String, String)>,
    defs: BTreeMap<String, ProcessDef>,
    errors: Vec<String>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("names", &self.names)
            .field("edges", &self.edges)
            .finish()
    }
}

impl System {
    /// An empty system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pipeline expression: `"a | b | c"` or `A | B | C` with [`AppName`]s. A name
    /// may appear in many pipelines and many times in one; there is one application per name
    /// (per pipeline id, when run).
    pub fn pipeline(mut self, pipeline: impl Into<Pipeline>) -> Self {
        let p = pipeline.into();
        if let Some(e) = p.error {
            self.errors.push(e);
        }
        for s in &p.steps {
            self.add_name(s);
        }
        for w in p.steps.windows(2) {
            let edge = (w[0].clone(), w[1].clone());
            if !self.edges.contains(&edge) {
                self.edges.push(edge);
            }
        }
        self
    }

    fn add_name(&mut self, name: &str) {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
    }

    /// Defines the process application `name`: `policy` makes its policy (called once per
    /// instance).
    pub fn process<F>(self, name: impl Into<String>, policy: F) -> Self
    where
        F: Fn() -> Policy + Send + Sync + 'static,
    {
        self.define(name.into(), Arc::new(policy), None)
    }

    /// Like [`System::process`], with settings for its application (`configure` gets the
    /// builder the runner made, with name and database set).
    pub fn process_with<F, C>(self, name: impl Into<String>, policy: F, configure: C) -> Self
    where
        F: Fn() -> Policy + Send + Sync + 'static,
        C: Fn(ApplicationBuilder) -> ApplicationBuilder + Send + Sync + 'static,
    {
        self.define(name.into(), Arc::new(policy), Some(Arc::new(configure)))
    }

    /// Defines the process application of the `#[policy]` type `P` (named `P::NAME`), each
    /// instance with a new `P::default()`.
    pub fn policy<P: PolicyType + Default>(self) -> Self {
        self.define(P::NAME.into(), Arc::new(make_default::<P>), None)
    }

    /// Defines the process application of the `#[policy]` type `P` with this state (shared
    /// by its instances of every pipeline).
    pub fn policy_from<P: PolicyType>(self, state: P) -> Self {
        let state = Arc::new(state);
        self.define(
            P::NAME.into(),
            Arc::new(move || state.clone().policy()),
            None,
        )
    }

    fn define(mut self, name: String, policy: PolicyFactory, configure: Option<Configure>) -> Self {
        if let Err(e) = check_name(&name) {
            self.errors.push(e);
        }
        if self.defs.contains_key(&name) {
            self.errors
                .push(format!("process {name:?} is defined twice"));
        }
        self.add_name(&name);
        self.defs.insert(name, ProcessDef { policy, configure });
        self
    }

    /// Checks the system: valid pipeline expressions, every name defined once.
    pub fn validate(&self) -> Result<()> {
        let mut errors = self.errors.clone();
        for n in &self.names {
            if self.defs.contains_key(n) {
                continue;
            }
            match registry::lookup(n) {
                Some(r) if r.types.len() > 1 => errors.push(format!(
                    "{n:?} is registered by several #[policy] types ({}): give one another name with #[policy(name = \"...\")]",
                    r.types.join(", ")
                )),
                Some(_) => {}
                None => errors.push(format!(
                    "no process is defined for {n:?} and no #[policy] registered that name (registered: {}); define it with System::process or System::policy, or link the crate of its #[policy]",
                    match registry::names() {
                        v if v.is_empty() => "none".to_string(),
                        v => v.join(", "),
                    }
                )),
            }
        }
        if self.names.is_empty() {
            errors.push("the system has no applications".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Configuration(format!(
                "invalid system: {}",
                errors.join("; ")
            )))
        }
    }

    /// Every application's name, in order of first appearance.
    pub fn names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    /// The applications that follow `name`.
    pub fn followers(&self, name: &str) -> Vec<&str> {
        self.edges
            .iter()
            .filter(|(u, _)| u == name)
            .map(|(_, f)| f.as_str())
            .collect()
    }

    /// The applications `name` follows.
    pub fn upstreams(&self, name: &str) -> Vec<&str> {
        self.edges
            .iter()
            .filter(|(_, f)| f == name)
            .map(|(u, _)| u.as_str())
            .collect()
    }

    /// How to make application `name`.
    /// Names the system does not define are looked up among the `#[policy]` registrations.
    pub fn def(&self, name: &str) -> Option<&ProcessDef> {
        self.defs.get(name).or_else(|| {
            registry::lookup(name)
                .filter(|r| r.types.len() == 1)
                .map(|r| &r.def)
        })
    }
}
