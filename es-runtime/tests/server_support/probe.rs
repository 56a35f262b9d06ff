//! Which database servers a test binary runs against (shared by es-runtime's and the
//! workspace's tests: the root's `tests/support` includes this file by path).
//!
//! A backend's URL is its variable (`ES_POSTGRES_URL`, `ES_MYSQL_URL`, `ES_REDIS_URL`) or, unset,
//! the conventional local address README names. Once per test binary and backend, a TCP connect
//! (1 s timeout) decides, and one line says what happened:
//!
//! ```text
//! es: postgres suite: RAN against postgres://postgres@127.0.0.1:5432/test
//! es: mysql suite: SKIPPED (no server at 127.0.0.1:3306; set ES_MYSQL_URL)
//! ```
//!
//! With `ES_REQUIRE_SERVERS=1` (as CI sets) an unreachable server is a failure instead.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A server backend the tests know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Its name in messages: `postgres`, `mysql`, `redis`.
    pub name: &'static str,
    /// The variable naming its URL.
    pub var: &'static str,
    /// The URL tried when the variable is unset.
    pub default_url: &'static str,
    /// The port of URLs that give none.
    pub default_port: u16,
}

/// PostgreSQL.
pub const POSTGRES: Backend = Backend {
    name: "postgres",
    var: "ES_POSTGRES_URL",
    default_url: "postgres://postgres@127.0.0.1:5432/test",
    default_port: 5432,
};
/// MySQL or MariaDB.
pub const MYSQL: Backend = Backend {
    name: "mysql",
    var: "ES_MYSQL_URL",
    default_url: "mysql://root@127.0.0.1:3306/test",
    default_port: 3306,
};
/// Redis.
pub const REDIS: Backend = Backend {
    name: "redis",
    var: "ES_REDIS_URL",
    default_url: "redis://127.0.0.1:6379",
    default_port: 6379,
};

/// The backend whose variable is `var`.
pub fn by_var(var: &str) -> Backend {
    [POSTGRES, MYSQL, REDIS]
        .into_iter()
        .find(|b| b.var == var)
        .unwrap_or_else(|| panic!("no backend reads {var}"))
}

/// True when `ES_REQUIRE_SERVERS=1`: an unreachable server fails instead of skipping.
pub fn required() -> bool {
    std::env::var("ES_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// What the probe found: the URL to use, or why the backend is skipped.
pub type Probe = Result<String, String>;

/// The backend's URL if its server answers, else why not; probed (and reported in one line)
/// once per test binary. Panics when servers are required and this one does not answer.
pub fn probe(b: Backend) -> Probe {
    static SEEN: OnceLock<Mutex<HashMap<&'static str, Probe>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let found = seen
        .entry(b.name)
        .or_insert_with(|| {
            let found = check(b);
            let line = match &found {
                Ok(url) => format!(
                    "es: {} suite: RAN against {}",
                    b.name,
                    es_runtime::application::config::redact(url)
                ),
                Err(why) => format!("es: {} suite: SKIPPED ({why})", b.name),
            };
            // Straight to stderr: cargo test shows it even when the tests pass.
            let _ = writeln!(std::io::stderr(), "{line}");
            found
        })
        .clone();
    if let Err(why) = &found {
        assert!(!required(), "ES_REQUIRE_SERVERS=1 but {}: {why}", b.name);
    }
    found
}

fn check(b: Backend) -> Probe {
    let (url, from_var) = match std::env::var(b.var) {
        Ok(u) if !u.is_empty() => (u, true),
        _ => (b.default_url.to_string(), false),
    };
    let addr = host_port(&url, b.default_port);
    let hint = if from_var {
        format!(
            "{} is {}",
            b.var,
            es_runtime::application::config::redact(&url)
        )
    } else {
        format!("set {}", b.var)
    };
    let resolved = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve {addr}; {hint}"))?;
    match TcpStream::connect_timeout(&resolved, Duration::from_secs(1)) {
        Ok(_) => Ok(url),
        Err(_) => Err(format!("no server at {addr}; {hint}")),
    }
}

/// `host:port` of a URL like `scheme://user:pw@host:port/db?opts`.
pub fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    match (host.is_empty(), has_port) {
        (true, _) => format!("localhost:{default_port}"),
        (false, true) => host.to_string(),
        (false, false) => format!("{host}:{default_port}"),
    }
}
