//! `lambda.manifest.json` as ws-local reads it: which functions exist, what triggers them, their
//! timeout, memory and environment, and where their binary is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read the manifest {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the manifest {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{function}: give either \"crate\" (a workspace crate) or \"executable\" (a file that speaks the Lambda Runtime API), not both or neither"
    )]
    Code { function: String },
    #[error("{function}: cannot read the package name from {path}: {reason}")]
    Crate { function: String, path: PathBuf, reason: String },
    #[error("{function}: timeout_s must be 1-900 and memory_mb 128-10240 (got {timeout_s} s, {memory_mb} MB)")]
    Limits { function: String, timeout_s: u64, memory_mb: u64 },
    #[error(
        "route_selection_expression {0:?} is not supported: use $request.body.<field>[.<field>…] (a JSON path into the message)"
    )]
    RouteSelection(String),
    #[error("route {route} has two integrations ({first} and {second}); a route has exactly one")]
    DuplicateRoute { route: String, first: String, second: String },
    #[error(
        "{function}: a route trigger names \"route\" (one key) or \"routes\" (a non-empty list), not both or neither"
    )]
    Routes { function: String },
}

#[derive(Debug, Deserialize)]
struct Raw {
    service: String,
    #[serde(default = "default_route_selection")]
    route_selection_expression: String,
    functions: Vec<RawFunction>,
    /// Routes API Gateway answers itself (a MOCK integration and its response template), no
    /// function invoked: route key → the answer's template.
    #[serde(default)]
    mock_routes: BTreeMap<String, String>,
}

/// API Gateway's usual choice, and ours when the manifest names none.
pub const DEFAULT_ROUTE_SELECTION: &str = "$request.body.action";

fn default_route_selection() -> String {
    DEFAULT_ROUTE_SELECTION.to_owned()
}

#[derive(Debug, Deserialize)]
struct RawFunction {
    name: String,
    /// A crate of this workspace (its binary is built by cargo), or …
    #[serde(rename = "crate", default)]
    krate: Option<String>,
    /// … any executable that speaks the Lambda Runtime API (a Node or Python custom runtime's
    /// `bootstrap`, a peer's test handler); local only: Terraform deploys the crates.
    #[serde(default)]
    executable: Option<String>,
    trigger: RawTrigger,
    memory_mb: u64,
    timeout_s: u64,
    #[serde(default)]
    environment: BTreeMap<String, RawVariable>,
}

/// A trigger as written: a route function names one `route` or several `routes`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RawTrigger {
    Route {
        #[serde(default)]
        route: Option<String>,
        #[serde(default)]
        routes: Vec<String>,
        #[serde(default)]
        route_response: bool,
    },
    Authorizer {
        #[serde(default)]
        identity_sources: Vec<String>,
    },
    Direct,
    Pipe,
}

#[derive(Debug, Deserialize)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

/// What invokes a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// WebSocket routes: `$connect`, `$disconnect`, `$default` or route keys chosen by the
    /// message's `action` (one function may serve several). `route_response`: the integration's
    /// `body` goes back to the client (a two-way route).
    Route { routes: Vec<String>, route_response: bool },
    /// The `$connect` REQUEST authorizer; `identity_sources` name what must be present
    /// (`route.request.querystring.token`, `route.request.header.Authorization`), none: always run.
    Authorizer { identity_sources: Vec<String> },
    /// Invoked directly (the Invoke API).
    Direct,
    /// The lifecycle pipe's enrichment: ws-local's lifecycle events invoke it with stream records
    /// (`crate::lifecycle`).
    Pipe,
}

impl Trigger {
    fn from_raw(function: &str, raw: RawTrigger) -> Result<Self, ManifestError> {
        Ok(match raw {
            RawTrigger::Route { route, routes, route_response } => {
                let routes = match (route, routes) {
                    (Some(route), routes) if routes.is_empty() => vec![route],
                    (None, routes) if !routes.is_empty() => routes,
                    _ => return Err(ManifestError::Routes { function: function.to_owned() }),
                };
                Self::Route { routes, route_response }
            }
            RawTrigger::Authorizer { identity_sources } => Self::Authorizer { identity_sources },
            RawTrigger::Direct => Self::Direct,
            RawTrigger::Pipe => Self::Pipe,
        })
    }

    /// True when this trigger is the route `key`.
    pub fn is_route(&self, key: &str) -> bool {
        matches!(self, Self::Route { routes, .. } if routes.iter().any(|r| r == key))
    }
}

/// One function, ready to run: its binary and the environment the manifest declares.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub code: Code,
    pub trigger: Trigger,
    pub memory_mb: u64,
    pub timeout_s: u64,
    /// Declared variables: name → (default, required).
    pub environment: BTreeMap<String, Variable>,
}

/// What runs a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A workspace crate: the binary named after its package, in `--bin-dir`.
    Package(String),
    /// An executable file, path resolved against the manifest's folder.
    Executable(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub service: String,
    /// Where a message's route key is: the fields of `$request.body.<a>.<b>…`, in order.
    pub route_selection: Vec<String>,
    pub functions: Vec<Function>,
    /// Routes answered without a function: route key → the answer's template (`$context.<name>`
    /// for `connectionId`, `requestId`, `requestTimeEpoch`, as API Gateway's templates).
    pub mock_routes: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads the manifest; crate paths are relative to the manifest's folder.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.into(), source })?;
        let raw: Raw =
            serde_json::from_str(&text).map_err(|source| ManifestError::Parse { path: path.into(), source })?;
        let root = path.parent().unwrap_or_else(|| Path::new("."));
        let mut functions = Vec::with_capacity(raw.functions.len());
        for f in raw.functions {
            if !(1..=900).contains(&f.timeout_s) || !(128..=10_240).contains(&f.memory_mb) {
                return Err(ManifestError::Limits { function: f.name, timeout_s: f.timeout_s, memory_mb: f.memory_mb });
            }
            let code = match (&f.krate, &f.executable) {
                (Some(krate), None) => Code::Package(package_name(&f.name, &root.join(krate).join("Cargo.toml"))?),
                (None, Some(executable)) => Code::Executable(root.join(executable)),
                _ => return Err(ManifestError::Code { function: f.name }),
            };
            let environment = f
                .environment
                .into_iter()
                .map(|(k, v)| (k, Variable { default: v.default, required: v.required }))
                .collect();
            let trigger = Trigger::from_raw(&f.name, f.trigger)?;
            functions.push(Function {
                name: f.name,
                code,
                trigger,
                memory_mb: f.memory_mb,
                timeout_s: f.timeout_s,
                environment,
            });
        }
        let route_selection = route_selection(&raw.route_selection_expression)?;
        let manifest = Self { service: raw.service, route_selection, functions, mock_routes: raw.mock_routes };
        manifest.check_routes()?;
        Ok(manifest)
    }

    fn check_routes(&self) -> Result<(), ManifestError> {
        let mut seen: BTreeMap<&str, &str> = self.mock_routes.keys().map(|k| (k.as_str(), "mock_routes")).collect();
        for f in &self.functions {
            let Trigger::Route { routes, .. } = &f.trigger else { continue };
            for route in routes {
                if let Some(first) = seen.insert(route, &f.name) {
                    return Err(ManifestError::DuplicateRoute {
                        route: route.clone(),
                        first: first.to_owned(),
                        second: f.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The function integrated with a route key.
    pub fn route(&self, key: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.trigger.is_route(key))
    }

    pub fn authorizer(&self) -> Option<&Function> {
        self.functions.iter().find(|f| matches!(f.trigger, Trigger::Authorizer { .. }))
    }

    /// A message's route key by the route selection expression: the string at its path in the
    /// JSON body; `None` when the body is not JSON or has no string there (then `$default`).
    pub fn route_key(&self, body: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        self.route_selection.iter().try_fold(&value, |v, field| v.get(field))?.as_str().map(str::to_owned)
    }
}

/// The fields of a `$request.body.<path>` route selection expression. API Gateway also takes
/// other forms (`${request.body.action}`, constants); this one is what WebSocket APIs use:
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html>
fn route_selection(expression: &str) -> Result<Vec<String>, ManifestError> {
    let fields: Vec<String> = expression
        .strip_prefix("$request.body.")
        .map(|path| path.split('.').map(str::to_owned).collect())
        .unwrap_or_default();
    let valid = !fields.is_empty()
        && fields.iter().all(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if valid { Ok(fields) } else { Err(ManifestError::RouteSelection(expression.to_owned())) }
}

/// The `[package] name` of a crate: its binary's name.
fn package_name(function: &str, cargo_toml: &Path) -> Result<String, ManifestError> {
    #[derive(Deserialize)]
    struct CargoToml {
        package: Package,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
    }
    let error = |reason: String| ManifestError::Crate { function: function.into(), path: cargo_toml.into(), reason };
    let text = std::fs::read_to_string(cargo_toml).map_err(|e| error(e.to_string()))?;
    let parsed: CargoToml = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
    Ok(parsed.package.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_project_manifest_gives_four_functions_with_their_packages_and_routes() {
        let m = Manifest::load(&manifest_dir().join("lambda.manifest.json")).unwrap();
        assert_eq!(m.service, "ws-connection");
        assert_eq!(m.route("$connect").unwrap().code, Code::Package("ws-connect".into()));
        assert_eq!(m.route("$disconnect").unwrap().name, "disconnectWS");
        assert_eq!(m.authorizer().unwrap().name, "ConnectAuthorizer");
        assert_eq!(m.function("WebSocketResponder").unwrap().trigger, Trigger::Direct);
        assert!(m.route("$default").is_none());
        let table = &m.function("ConnectFunction").unwrap().environment["TABLE_CONNECTIONS"];
        assert!(table.required && table.default.is_none());
        assert_eq!(m.route_selection, ["action"]);
        assert_eq!(m.route_key(r#"{"action":"echo"}"#).as_deref(), Some("echo"));
        assert_eq!(m.route_key("not json"), None);
    }

    #[test]
    fn a_route_selection_expression_is_a_path_into_the_body() {
        assert_eq!(route_selection("$request.body.message.type").unwrap(), ["message", "type"]);
        for bad in ["$request.body.", "action", "${request.body.action}", "$request.body.a..b"] {
            let err = route_selection(bad).unwrap_err().to_string();
            assert!(err.contains("use $request.body.<field>"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_route_with_two_functions_is_refused() {
        let dir = std::env::temp_dir().join(format!("ws-local-manifest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("f")).unwrap();
        std::fs::write(dir.join("f/Cargo.toml"), "[package]\nname = \"f\"\n").unwrap();
        let function = |name: &str| {
            format!(
                r#"{{"name":"{name}","crate":"f","trigger":{{"type":"route","route":"$default"}},"memory_mb":128,"timeout_s":3}}"#
            )
        };
        let path = dir.join("m.json");
        std::fs::write(&path, format!(r#"{{"service":"s","functions":[{},{}]}}"#, function("A"), function("B")))
            .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert_eq!(err, "route $default has two integrations (A and B); a route has exactly one");
        std::fs::write(
            &path,
            r#"{"service":"s","functions":[{"name":"A","crate":"missing","trigger":{"type":"direct"},"memory_mb":128,"timeout_s":3}]}"#,
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.starts_with("A: cannot read the package name from"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
