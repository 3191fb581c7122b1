//! Typed configuration from the environment.
//!
//! Each function's `main` parses its config once, at init; any error here ends the process with
//! one line naming the variable and what to set it to (see [`crate::log::fail_init`]).

use std::num::NonZeroU32;

use tracing::Level;

/// Reads one environment variable. Implemented for closures so tests pass a map, and `main`
/// passes [`process_env`].
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The process environment. Unset and non-UTF-8 values both read as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub const TABLE_CONNECTIONS: &str = "TABLE_CONNECTIONS";
pub const CONNECTION_TTL_MINUTES: &str = "CONNECTION_TTL_MINUTES";
/// `BROADCAST`: `$connect` writes each live connection's GSI4 entry and the responder answers
/// `"all": true` (default `true`); `false`: neither (docs/design.md §13).
pub const BROADCAST: &str = "BROADCAST";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";

/// Default for [`CONNECTION_TTL_MINUTES`]: 3 h, one hour past API Gateway's 2 h connection limit.
pub const DEFAULT_TTL_MINUTES: u32 = 180;
/// Longest [`CONNECTION_TTL_MINUTES`]: a year (API Gateway ends a connection after 2 h anyway).
pub const MAX_TTL_MINUTES: u32 = 525_600;
pub const DEFAULT_METRICS_NAMESPACE: &str = "ws-connection";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: &'static str, hint: &'static str },
    #[error("{name}={value:?} is invalid: {hint}")]
    Invalid { name: &'static str, value: String, hint: &'static str },
}

/// Settings every function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub log_level: Level,
    pub metrics_namespace: String,
}

impl Common {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self { log_level: log_level(env)?, metrics_namespace: metrics_namespace(env)? })
    }
}

/// What a function that writes the connections table and keeps what it writes for a while reads:
/// `TABLE_CONNECTIONS`, `CONNECTION_TTL_MINUTES` (how long its items outlive their last write)
/// and the common settings (`disconnectWS`'s tombstones, `MembershipFunction`'s items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub table: String,
    pub ttl_minutes: NonZeroU32,
    pub common: Common,
}

impl TableConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self { table: table_name(env)?, ttl_minutes: ttl_minutes(env)?, common: Common::from_env(env)? })
    }
}

/// Optional: the region of the connections table when it is not the function's own. On AWS every
/// region's functions use their own replica of the global table (unset); a local stack that
/// stands for two regions with one emulator sets it on the second region's functions.
pub const TABLE_REGION: &str = "TABLE_REGION";

/// [`TABLE_REGION`], when set.
pub fn table_region(env: &impl Env) -> Option<String> {
    env.var(TABLE_REGION).filter(|region| !region.trim().is_empty())
}

/// Set by Lambda: the function's region.
pub const AWS_REGION: &str = "AWS_REGION";
/// The region a function names its streams after where `AWS_REGION` is unset (outside Lambda and
/// ws-local, e.g. in unit tests).
pub const NO_REGION: &str = "local";

/// The function's region from [`AWS_REGION`] ([`NO_REGION`] when unset); a value that is not a
/// region name is an error.
pub fn region(env: &impl Env) -> Result<String, ConfigError> {
    match env.var(AWS_REGION).filter(|r| !r.trim().is_empty()) {
        None => Ok(NO_REGION.to_owned()),
        Some(region) if crate::stream::is_region(&region) => Ok(region),
        Some(region) => Err(ConfigError::Invalid {
            name: AWS_REGION,
            value: region,
            hint: "use a region name such as us-east-1 (Lambda sets it)",
        }),
    }
}

/// The connections table name, from [`TABLE_CONNECTIONS`] (required).
pub fn table_name(env: &impl Env) -> Result<String, ConfigError> {
    const HINT: &str = "set it to the DynamoDB connections table's name \
                        (3-255 characters of [A-Za-z0-9_.-]) or ARN";
    let value = env.var(TABLE_CONNECTIONS).ok_or(ConfigError::Missing { name: TABLE_CONNECTIONS, hint: HINT })?;
    let is_name = (3..=255).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if is_name || value.starts_with("arn:") {
        Ok(value)
    } else {
        Err(ConfigError::Invalid { name: TABLE_CONNECTIONS, value, hint: HINT })
    }
}

/// Minutes a connection record lives before DynamoDB's TTL removes it, from
/// [`CONNECTION_TTL_MINUTES`] (default [`DEFAULT_TTL_MINUTES`]).
pub fn ttl_minutes(env: &impl Env) -> Result<NonZeroU32, ConfigError> {
    count(
        env,
        CONNECTION_TTL_MINUTES,
        DEFAULT_TTL_MINUTES,
        MAX_TTL_MINUTES,
        "use a positive whole number of minutes up to 525600 (a year), e.g. 180",
    )
}

/// A `true`/`false` switch (case-insensitive), `default` when unset.
pub fn flag(env: &impl Env, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match env.var(name) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::Invalid { name, value, hint: "use true or false" }),
        },
    }
}

/// A whole number from 1 to `max`, `default` when unset.
pub fn count(
    env: &impl Env,
    name: &'static str,
    default: u32,
    max: u32,
    hint: &'static str,
) -> Result<NonZeroU32, ConfigError> {
    Ok(optional_count(env, name, max, hint)?.unwrap_or(NonZeroU32::new(default).expect("defaults are positive")))
}

/// A whole number from 1 to `max`, `None` when unset (an option that is off).
pub fn optional_count(
    env: &impl Env,
    name: &'static str,
    max: u32,
    hint: &'static str,
) -> Result<Option<NonZeroU32>, ConfigError> {
    let Some(value) = env.var(name) else { return Ok(None) };
    match value.trim().parse::<NonZeroU32>() {
        Ok(n) if n.get() <= max => Ok(Some(n)),
        _ => Err(ConfigError::Invalid { name, value, hint }),
    }
}

/// One of a few spellings, each meaning a value (`choices`); `default` when unset. Anything else
/// is an error with `hint`.
pub fn choice<T: Copy>(
    env: &impl Env,
    name: &'static str,
    default: T,
    choices: &[(&str, T)],
    hint: &'static str,
) -> Result<T, ConfigError> {
    let Some(value) = env.var(name) else { return Ok(default) };
    choices.iter().find(|(spelling, _)| *spelling == value).map(|(_, v)| *v).ok_or(ConfigError::Invalid {
        name,
        value,
        hint,
    })
}

/// The log level: Lambda's [`AWS_LAMBDA_LOG_LEVEL`] (set by the function's logging config) wins
/// over [`LOG_LEVEL`]; `INFO` when neither is set.
pub fn log_level(env: &impl Env) -> Result<Level, ConfigError> {
    if let Some(value) = env.var(AWS_LAMBDA_LOG_LEVEL) {
        // Lambda's own scale also has TRACE and FATAL.
        return match value.to_ascii_uppercase().as_str() {
            "TRACE" => Ok(Level::TRACE),
            "FATAL" => Ok(Level::ERROR),
            other => parse_level(other).ok_or(ConfigError::Invalid {
                name: AWS_LAMBDA_LOG_LEVEL,
                value,
                hint: "use TRACE, DEBUG, INFO, WARN, ERROR or FATAL",
            }),
        };
    }
    match env.var(LOG_LEVEL) {
        None => Ok(Level::INFO),
        Some(value) => parse_level(&value.to_ascii_uppercase()).ok_or(ConfigError::Invalid {
            name: LOG_LEVEL,
            value,
            hint: "use DEBUG, INFO, WARN or ERROR",
        }),
    }
}

fn parse_level(upper: &str) -> Option<Level> {
    match upper {
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" | "WARNING" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        _ => None,
    }
}

/// The CloudWatch namespace for EMF metrics, from [`METRICS_NAMESPACE`].
pub fn metrics_namespace(env: &impl Env) -> Result<String, ConfigError> {
    match env.var(METRICS_NAMESPACE) {
        None => Ok(DEFAULT_METRICS_NAMESPACE.to_owned()),
        // CloudWatch: 1-255 characters, no leading ':' (AWS/ is reserved for AWS).
        Some(value)
            if (1..=255).contains(&value.len())
                && !value.starts_with("AWS/")
                && value.chars().all(|c| c.is_ascii_graphic() || c == ' ') =>
        {
            Ok(value)
        }
        Some(value) => Err(ConfigError::Invalid {
            name: METRICS_NAMESPACE,
            value,
            hint: "use 1-255 printable ASCII characters, not starting with AWS/",
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Env {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn a_choice_is_one_of_its_spellings_or_its_default() {
        use crate::aws::Roots;
        let roots = |pairs: &[(&str, &str)]| {
            choice(
                &env(pairs),
                "TLS_ROOTS",
                Roots::Amazon,
                &[("amazon", Roots::Amazon), ("system", Roots::System)],
                "h",
            )
        };
        assert_eq!(roots(&[("TLS_ROOTS", "amazon")]).unwrap(), Roots::Amazon);
        assert_eq!(roots(&[("TLS_ROOTS", "system")]).unwrap(), Roots::System);
        assert!(roots(&[("TLS_ROOTS", "System")]).is_err());
        assert_eq!(roots(&[]).unwrap(), Roots::Amazon);
    }

    #[test]
    fn a_missing_table_name_says_which_variable_to_set() {
        let err = table_name(&env(&[])).unwrap_err();
        assert!(err.to_string().starts_with("TABLE_CONNECTIONS is not set: set it to"), "{err}");
    }

    #[test]
    fn table_names_and_arns_are_accepted_and_junk_is_not() {
        assert_eq!(table_name(&env(&[(TABLE_CONNECTIONS, "ws-connections-dev")])).unwrap(), "ws-connections-dev");
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/ws";
        assert_eq!(table_name(&env(&[(TABLE_CONNECTIONS, arn)])).unwrap(), arn);
        for bad in ["", "ab", "my table"] {
            assert!(table_name(&env(&[(TABLE_CONNECTIONS, bad)])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ttl_defaults_to_180_and_must_be_a_positive_integer() {
        assert_eq!(ttl_minutes(&env(&[])).unwrap().get(), 180);
        assert_eq!(ttl_minutes(&env(&[(CONNECTION_TTL_MINUTES, "15")])).unwrap().get(), 15);
        for bad in ["0", "-5", "1.5", "abc", "", "525601"] {
            let err = ttl_minutes(&env(&[(CONNECTION_TTL_MINUTES, bad)])).unwrap_err().to_string();
            assert!(err.starts_with("CONNECTION_TTL_MINUTES="), "{err}");
            assert!(err.contains("positive whole number"), "{err}");
        }
    }

    #[test]
    fn flags_and_counts_refuse_what_they_cannot_read() {
        assert!(!flag(&env(&[]), "MARK_GONE", false).unwrap());
        assert!(flag(&env(&[("MARK_GONE", "TRUE")]), "MARK_GONE", false).unwrap());
        assert_eq!(
            flag(&env(&[("MARK_GONE", "yes")]), "MARK_GONE", false).unwrap_err().to_string(),
            "MARK_GONE=\"yes\" is invalid: use true or false"
        );
        let n = |v: &str| count(&env(&[("N", v)]), "N", 32, 1000, "use 1-1000").map(NonZeroU32::get);
        assert_eq!(count(&env(&[]), "N", 32, 1000, "use 1-1000").unwrap().get(), 32);
        assert_eq!(n("1000"), Ok(1000));
        for bad in ["0", "1001", "-1", "many"] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lambda_log_level_wins_over_log_level() {
        assert_eq!(log_level(&env(&[])).unwrap(), Level::INFO);
        assert_eq!(log_level(&env(&[(LOG_LEVEL, "debug")])).unwrap(), Level::DEBUG);
        assert_eq!(log_level(&env(&[(LOG_LEVEL, "DEBUG"), (AWS_LAMBDA_LOG_LEVEL, "ERROR")])).unwrap(), Level::ERROR);
        assert_eq!(log_level(&env(&[(AWS_LAMBDA_LOG_LEVEL, "FATAL")])).unwrap(), Level::ERROR);
        let err = log_level(&env(&[(LOG_LEVEL, "LOUD")])).unwrap_err().to_string();
        assert_eq!(err, "LOG_LEVEL=\"LOUD\" is invalid: use DEBUG, INFO, WARN or ERROR");
    }

    #[test]
    fn metrics_namespace_defaults_and_refuses_the_aws_prefix() {
        assert_eq!(metrics_namespace(&env(&[])).unwrap(), "ws-connection");
        assert_eq!(metrics_namespace(&env(&[(METRICS_NAMESPACE, "chat/ws")])).unwrap(), "chat/ws");
        assert!(metrics_namespace(&env(&[(METRICS_NAMESPACE, "AWS/Lambda")])).is_err());
    }
}
