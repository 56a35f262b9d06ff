//! An empty environment variable means "unset", as in the reference library (issue 12,
//! defect 8). One test in its own process: the environment is shared by the whole process.

use es_runtime::application::config::{default_url, env_var, Config};
use es_runtime::application::Application;
use es_runtime::domain::integrity::HashConfig;

#[tokio::test]
async fn empty_variables_count_as_unset() {
    for name in [
        "ES_DATABASE_URL",
        "DB_URI",
        "CIPHER_KEY",
        "SNAPSHOT_PERIOD",
        "SALT_FOR_DATA_INTEGRITY",
        "GENESIS_HASH",
    ] {
        std::env::set_var(name, "");
        assert_eq!(env_var(name), None, "{name}");
    }
    let config = Config::from_env().unwrap();
    assert_eq!(config.database_url, default_url());
    assert!(config.cipher.is_none());
    assert_eq!(config.snapshot_period, None);
    let hashing = HashConfig::from_env();
    assert!(hashing.salt.is_empty());
    assert_eq!(hashing.genesis_hash, "");

    // An empty ES_DATABASE_URL gives way to DB_URI; an application starts with an empty
    // cipher key and snapshot period.
    std::env::set_var("DB_URI", "memory:");
    assert_eq!(Config::from_env().unwrap().database_url, "memory:");
    let app = Application::from_env("emptyenv").await.unwrap();
    assert!(!app.mapper().encrypts());

    // Set but wrong is still an error.
    std::env::set_var("CIPHER_KEY", "c2hvcnQ=");
    assert!(matches!(
        Config::from_env(),
        Err(es_runtime::Error::Configuration(_))
    ));
    std::env::set_var("CIPHER_KEY", "");
    std::env::set_var("SNAPSHOT_PERIOD", "often");
    assert!(matches!(
        Config::from_env(),
        Err(es_runtime::Error::Configuration(_))
    ));
}
