//! ws-local's settings and how each function's environment is put together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::lambda::FunctionConfig;
use crate::logs::Logs;
use crate::manifest::{Code, Manifest, ManifestError};

/// The name `terraform/envs/local` gives the table (its `table_name` output).
pub const DEFAULT_TABLE: &str = "ws-connection-local-connections";
/// The audience of the local issuer's tokens.
pub const LOCAL_AUDIENCE: &str = "ws-local";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// API Gateway's limits: 128 KB message, 32 KB frame, 10 minutes idle, 2 hours in all.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
pub const IDLE_TIMEOUT_SECONDS: u64 = 10 * 60;
pub const MAX_DURATION_SECONDS: u64 = 2 * 60 * 60;

/// API Gateway's WebSocket limits (its defaults; all configurable).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A whole message, possibly in several frames: 128 KB.
    pub max_message_bytes: usize,
    /// One frame: 32 KB.
    pub max_frame_bytes: usize,
    /// No frame from the client for this long closes the connection (1001): 10 minutes.
    pub idle_timeout: Duration,
    /// A connection lives at most this long (1001): 2 hours.
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_frame_bytes: MAX_FRAME_BYTES,
            idle_timeout: Duration::from_secs(IDLE_TIMEOUT_SECONDS),
            max_duration: Duration::from_secs(MAX_DURATION_SECONDS),
        }
    }
}

/// One `--env [FUNCTION.]NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    pub function: Option<String>,
    pub name: String,
    pub value: String,
}

impl std::str::FromStr for EnvOverride {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let (key, value) =
            raw.split_once('=').ok_or_else(|| format!("--env {raw:?}: expected NAME=VALUE or FUNCTION.NAME=VALUE"))?;
        let (function, name) = match key.split_once('.') {
            Some((function, name)) => (Some(function.to_owned()), name),
            None => (None, key),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!("--env {raw:?}: {name:?} is not an environment variable name (letters, digits, _)"));
        }
        Ok(Self { function, name: name.to_owned(), value: value.to_owned() })
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    pub stage: String,
    pub api_id: String,
    /// The region this instance stands for (`AWS_REGION` of its functions, the region part of
    /// its Management API's routed path). Two instances on one table stand for two regions.
    pub region: String,
    /// Other instances (`http://host:port`) that stand for other regions: a Management API call
    /// routed to an API this instance does not serve goes to them (`/{region}/{apiId}/{stage}/…`).
    pub peers: Vec<String>,
    /// The table's region in the emulator (moto keeps tables per region). When it differs from
    /// `region`, the functions get `TABLE_REGION`: one table stands for a global table's replicas.
    pub table_region: String,
    pub manifest: PathBuf,
    /// Where the functions' binaries are (`target/debug`, `target/release`): one per package.
    pub bin_dir: PathBuf,
    pub table: String,
    /// DynamoDB for the functions (moto's server); unset: the SDK's default resolution.
    pub dynamodb_endpoint: Option<String>,
    pub env: Vec<EnvOverride>,
    /// Run the manifest's `$connect` authorizer (when it has one).
    pub authorizer: bool,
    pub limits: Limits,
    /// Instances per function at most (Lambda's concurrency, locally).
    pub max_instances: usize,
    /// Never run `$disconnect`: how an orphan record arises on AWS (API Gateway delivers
    /// `$disconnect` on a best-effort basis), to try the TTL, `MARK_GONE` and gone-marking locally.
    pub lose_disconnects: bool,
    /// Run the expiry sweep this often, as the deployed stack's schedule does (`None`: never).
    pub sweep_every: Option<Duration>,
    /// Read the table this often and emit the lifecycle events of what changed (`None`: never).
    pub events_every: Option<Duration>,
    /// POST each lifecycle event to this URL (an EventBridge event's JSON), besides the log.
    pub events_url: Option<String>,
    pub logs: Logs,
}

impl Settings {
    /// Defaults for the project at `root` (its manifest and `target/debug`).
    pub fn for_project(root: &std::path::Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            stage: "local".into(),
            api_id: "local".into(),
            region: REGION.into(),
            peers: Vec::new(),
            table_region: REGION.into(),
            manifest: root.join("lambda.manifest.json"),
            bin_dir: root.join("target/debug"),
            table: DEFAULT_TABLE.into(),
            dynamodb_endpoint: None,
            env: Vec::new(),
            authorizer: true,
            limits: Limits::default(),
            max_instances: 16,
            lose_disconnects: false,
            sweep_every: None,
            events_every: None,
            events_url: None,
            logs: Logs::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("--env names function {0:?}, which the manifest does not have (it has: {1})")]
    UnknownFunction(String, String),
    #[error(
        "{function}: no binary at {path}: build the functions first (cargo build --workspace --bins) or point --bin-dir at where they are"
    )]
    MissingBinary { function: String, path: PathBuf },
    #[error("{function}: {variable} is required and has no value: pass --env {function}.{variable}=VALUE")]
    MissingVariable { function: String, variable: String },
    #[error("stage {0:?}: use 1-128 letters, digits, - or _")]
    Stage(String),
}

/// What the running ws-local offers to the functions: its own endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub stage: String,
}

impl Endpoints {
    /// `127.0.0.1:PORT`
    pub fn authority(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }
    pub fn websocket(&self) -> String {
        format!("{}/{}", self.base.replacen("http://", "ws://", 1), self.stage)
    }
    pub fn management(&self) -> String {
        format!("{}/{}", self.base, self.stage)
    }
    /// The responder's `WS_ENDPOINT_TEMPLATE`: every API's Management API, by region and id,
    /// through this instance (which serves its own and hands the others to its peers).
    pub fn management_template(&self) -> String {
        format!("{}/{{region}}/{{apiId}}/{{stage}}", self.base)
    }
    pub fn issuer(&self) -> String {
        format!("{}/issuer", self.base)
    }
}

/// Each function's configuration: its binary, and its environment from, in order of precedence,
/// `--env`, ws-local's local values (the table, its own endpoints and issuer), the manifest's
/// defaults; plus what Lambda sets itself.
pub fn functions(
    settings: &Settings,
    manifest: &Manifest,
    endpoints: &Endpoints,
) -> Result<Vec<FunctionConfig>, ConfigError> {
    if settings.stage.is_empty()
        || settings.stage.len() > 128
        || !settings.stage.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::Stage(settings.stage.clone()));
    }
    for o in &settings.env {
        if let Some(function) = &o.function
            && manifest.function(function).is_none()
        {
            let names: Vec<&str> = manifest.functions.iter().map(|f| f.name.as_str()).collect();
            return Err(ConfigError::UnknownFunction(function.clone(), names.join(", ")));
        }
    }
    let mut local: BTreeMap<&str, String> = BTreeMap::from([
        ("TABLE_CONNECTIONS", settings.table.clone()),
        // This API's Management API in the template's shape, so the responder knows which API a
        // 410 from it speaks for (a record that names its API is marked GONE only by that API).
        ("WS_ENDPOINT", format!("{}/{}/{}/{}", endpoints.base, settings.region, settings.api_id, endpoints.stage)),
        ("WS_ENDPOINT_TEMPLATE", endpoints.management_template()),
        ("JWT_ISSUER", endpoints.issuer()),
        ("JWT_AUDIENCE", LOCAL_AUDIENCE.to_owned()),
        ("MARK_GONE", "true".to_owned()),
    ]);
    if settings.table_region != settings.region {
        local.insert("TABLE_REGION", settings.table_region.clone());
    }
    let mut out = Vec::new();
    for f in &manifest.functions {
        let binary = match &f.code {
            Code::Package(package) => settings.bin_dir.join(package),
            Code::Executable(path) => path.clone(),
        };
        if !binary.is_file() {
            return Err(ConfigError::MissingBinary { function: f.name.clone(), path: binary });
        }
        let mut environment = BTreeMap::new();
        for (name, variable) in &f.environment {
            if let Some(value) = local.get(name.as_str()).cloned().or_else(|| variable.default.clone()) {
                environment.insert(name.clone(), value);
            }
        }
        for o in &settings.env {
            if o.function.as_deref().is_none_or(|name| name == f.name) {
                environment.insert(o.name.clone(), o.value.clone());
            }
        }
        for (name, variable) in &f.environment {
            if variable.required && environment.get(name).is_none_or(String::is_empty) {
                return Err(ConfigError::MissingVariable { function: f.name.clone(), variable: name.clone() });
            }
        }
        let lambda = [
            ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", f.name)),
            ("AWS_REGION", settings.region.clone()),
            ("AWS_DEFAULT_REGION", settings.region.clone()),
            // Lambda hands every function its role's credentials; locally, moto accepts any.
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            // The function's code: where its binary or executable is (a custom runtime loads
            // its handler from there).
            ("LAMBDA_TASK_ROOT", binary.parent().unwrap_or(&settings.bin_dir).display().to_string()),
            ("_HANDLER", "bootstrap".into()),
            ("TZ", ":UTC".into()),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ];
        for (name, value) in lambda {
            environment.entry(name.to_owned()).or_insert(value);
        }
        if let Some(endpoint) = &settings.dynamodb_endpoint {
            environment.entry("AWS_ENDPOINT_URL_DYNAMODB".into()).or_insert_with(|| endpoint.clone());
        }
        out.push(FunctionConfig {
            name: f.name.clone(),
            binary,
            environment,
            timeout: Duration::from_secs(f.timeout_s),
            memory_mb: f.memory_mb,
            max_instances: settings.max_instances,
            region: REGION.into(),
            account: ACCOUNT.into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_parse_with_and_without_a_function() {
        assert_eq!(
            "disconnectWS.TABLE_CONNECTIONS=t".parse::<EnvOverride>().unwrap(),
            EnvOverride { function: Some("disconnectWS".into()), name: "TABLE_CONNECTIONS".into(), value: "t".into() }
        );
        assert_eq!("LOG_LEVEL=DEBUG".parse::<EnvOverride>().unwrap().function, None);
        assert_eq!("A=b=c".parse::<EnvOverride>().unwrap().value, "b=c");
        assert!("NOVALUE".parse::<EnvOverride>().unwrap_err().contains("expected NAME=VALUE"));
        assert!("F.1X=2".parse::<EnvOverride>().unwrap_err().contains("not an environment variable name"));
    }

    fn project() -> (Settings, Manifest, Endpoints, tempdir::Dir) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bins = tempdir::Dir::new("bins");
        for package in ["ws-connect", "ws-disconnect", "ws-responder", "ws-routes", "ws-authorizer", "ws-membership"] {
            std::fs::write(bins.0.join(package), "").unwrap();
        }
        let mut settings = Settings::for_project(&root);
        settings.bin_dir = bins.0.clone();
        let manifest = Manifest::load(&settings.manifest).unwrap();
        let endpoints = Endpoints { base: "http://127.0.0.1:9".into(), stage: "local".into() };
        (settings, manifest, endpoints, bins)
    }

    #[test]
    fn each_function_gets_the_local_values_it_declares_and_overrides_win() {
        let (mut settings, manifest, endpoints, _bins) = project();
        settings.env =
            vec!["LOG_LEVEL=DEBUG".parse().unwrap(), "disconnectWS.TABLE_CONNECTIONS=other".parse().unwrap()];
        settings.dynamodb_endpoint = Some("http://127.0.0.1:5".into());
        let functions = functions(&settings, &manifest, &endpoints).unwrap();
        let env = |name: &str| functions.iter().find(|f| f.name == name).unwrap().environment.clone();
        let connect = env("ConnectFunction");
        assert_eq!(connect["TABLE_CONNECTIONS"], DEFAULT_TABLE);
        assert_eq!(connect["CONNECTION_TTL_MINUTES"], "180");
        assert_eq!(connect["LOG_LEVEL"], "DEBUG");
        assert_eq!(connect["AWS_ENDPOINT_URL_DYNAMODB"], "http://127.0.0.1:5");
        assert_eq!(connect["AWS_LAMBDA_FUNCTION_NAME"], "ConnectFunction");
        assert!(!connect.contains_key("WS_ENDPOINT"), "only what a function declares");
        assert_eq!(env("disconnectWS")["TABLE_CONNECTIONS"], "other");
        let responder = env("WebSocketResponder");
        assert_eq!(responder["WS_ENDPOINT"], "http://127.0.0.1:9/us-east-1/local/local");
        assert_eq!(responder["WS_ENDPOINT_TEMPLATE"], "http://127.0.0.1:9/{region}/{apiId}/{stage}");
        assert_eq!(responder["MARK_GONE"], "true");
        let authorizer = env("ConnectAuthorizer");
        assert_eq!(authorizer["JWT_ISSUER"], "http://127.0.0.1:9/issuer");
        assert_eq!(authorizer["JWT_AUDIENCE"], LOCAL_AUDIENCE);
    }

    #[test]
    fn a_missing_binary_a_missing_required_value_and_an_unknown_function_are_clear_errors() {
        let (mut settings, manifest, endpoints, bins) = project();
        settings.env = vec!["ConnectFunction.TABLE_CONNECTIONS=".parse().unwrap()];
        let err = functions(&settings, &manifest, &endpoints).unwrap_err().to_string();
        assert_eq!(
            err,
            "ConnectFunction: TABLE_CONNECTIONS is required and has no value: pass --env ConnectFunction.TABLE_CONNECTIONS=VALUE"
        );
        settings.env = vec!["Nope.X=1".parse().unwrap()];
        let err = functions(&settings, &manifest, &endpoints).unwrap_err().to_string();
        assert!(err.starts_with("--env names function \"Nope\", which the manifest does not have"), "{err}");
        settings.env.clear();
        std::fs::remove_file(bins.0.join("ws-responder")).unwrap();
        let err = functions(&settings, &manifest, &endpoints).unwrap_err().to_string();
        assert!(err.starts_with("WebSocketResponder: no binary at "), "{err}");
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
    }

    mod tempdir {
        /// A folder removed when dropped.
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new(name: &str) -> Self {
                let path = std::env::temp_dir().join(format!("ws-local-{name}-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
