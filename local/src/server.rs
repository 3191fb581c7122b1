//! One listener for everything ws-local serves (an axum `Router`), and its start and stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::{any, get, post};
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::config::{self, ConfigError, Endpoints, Settings};
use crate::gateway::Connections;
use crate::http::{self, Body};
use crate::issuer::{Issuer, TokenRequest};
use crate::lambda::Lambda;
use crate::manifest::Manifest;
use crate::state::App;
use crate::{console, gateway, invoke_api, management};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{addr} is taken (another ws-local, or another server): stop it, or choose another port with --port")]
    PortTaken { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A running ws-local.
#[derive(Debug)]
pub struct Running {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Running {
    pub fn endpoints(&self) -> &Endpoints {
        &self.app.endpoints
    }

    /// Closes every connection with 1001 (each gets its `$disconnect`, for up to `grace`),
    /// stops listening and stops every function instance.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let app = Arc::clone(&self.app);
        let _ = tokio::time::timeout(grace, async {
            loop {
                let done = app.tasks_done.notified();
                if app.open_tasks.load(Ordering::SeqCst) == 0 {
                    break;
                }
                done.await;
            }
        })
        .await;
        self.app.lambda.shutdown();
    }
}

/// Binds, resolves every function's configuration against the bound port, and serves.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    let listener = TcpListener::bind(settings.listen).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            StartError::PortTaken { addr: settings.listen }
        } else {
            StartError::Listen { addr: settings.listen, source }
        }
    })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: settings.listen, source })?;
    let endpoints = Endpoints { base: format!("http://{addr}"), stage: settings.stage.clone() };
    let manifest = Manifest::load(&settings.manifest).map_err(ConfigError::from)?;
    let functions = config::functions(&settings, &manifest, &endpoints)?;
    let lambda = Lambda::new(functions, &settings.logs);
    let (stop, shutdown) = watch::channel(false);
    let app = Arc::new(App {
        issuer: Issuer::new(endpoints.issuer()),
        settings,
        manifest,
        lambda,
        connections: Connections::default(),
        endpoints,
        lifecycle: crate::lifecycle::Recent::default(),
        shutdown: shutdown.clone(),
        open_tasks: AtomicUsize::new(0),
        tasks_done: Notify::new(),
    });
    http::serve(listener, router(Arc::clone(&app)), shutdown);
    if let Some(every) = app.settings.sweep_every {
        crate::schedule::spawn_sweep(&app, every);
    }
    if let Some(every) = app.settings.events_every {
        crate::lifecycle::spawn(&app, every);
    }
    Ok(Running { app, addr, stop })
}

/// Every route ws-local serves. The stage is a setting, so the gateway's paths are built here.
fn router(app: Arc<App>) -> Router {
    let stage = app.settings.stage.clone();
    // The APIs a client or a function calls get an access-log line each, as API Gateway's access
    // log would have it (method, path, status, latency; never a query string or a body).
    let apis = Router::new()
        .route(&format!("/{stage}/@connections/{{id}}"), any(management::handle))
        .route("/{region}/{api}/{stage}/@connections/{id}", any(management::routed))
        .route("/2015-03-31/functions/{name}/invocations", post(invoke_api::handle))
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&app), access_log));
    Router::new()
        .route(&format!("/{stage}"), any(gateway::handshake))
        .route(&format!("/{stage}/"), any(gateway::handshake))
        .merge(apis)
        .route(
            "/issuer/.well-known/jwks.json",
            get(async |State(app): State<Arc<App>>| http::json(StatusCode::OK, app.issuer.jwks())),
        )
        .route(
            "/issuer/.well-known/openid-configuration",
            get(async |State(app): State<Arc<App>>| http::json(StatusCode::OK, &app.issuer.discovery())),
        )
        .route("/issuer/token", post(token))
        .route("/_console", get(console::page))
        .route("/_console/", get(console::page))
        .route("/_console/api/state", get(console::state))
        .route("/_console/api/connections/{id}/drop", post(console::drop_connection))
        .route("/", get(async |State(app): State<Arc<App>>| status(&app)))
        .fallback(move || async move { not_found(&stage) })
        .with_state(app)
}

/// One line per call: `access POST /local/@connections/abc= 410 0.6ms` (the path only: a query
/// string or a body may carry a token or a payload).
async fn access_log(
    State(app): State<Arc<App>>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    app.logs().local(&format!("access {method} {path} {} {millis:.1}ms", response.status().as_u16()));
    response
}

fn not_found(stage: &str) -> Response<Body> {
    http::json(
        StatusCode::NOT_FOUND,
        &json!({ "message": format!(
            "Not found: ws-local serves /{stage} (WebSocket), /{stage}/@connections/{{id}} (also as \
             /{{region}}/{{apiId}}/{stage}/@connections/{{id}}), \
             /2015-03-31/functions/{{name}}/invocations, /issuer and the console at /_console"
        ) }),
    )
}

async fn token(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    let bad = |message: String| http::json(StatusCode::BAD_REQUEST, &json!({ "message": message }));
    let Some(body) = http::read_body(req, 64 * 1024).await else {
        return bad("the body is too large".into());
    };
    let request: TokenRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad(format!("expected {{\"sub\": \"…\", \"ttlSeconds\": 3600, \"claims\": {{…}}}}: {e}")),
    };
    match app.issuer.token(&request) {
        Ok(token) => http::json(StatusCode::OK, &json!({ "token": token })),
        Err(message) => bad(message),
    }
}

fn status(app: &App) -> Response<Body> {
    http::json(
        StatusCode::OK,
        &json!({
            "websocket": app.endpoints.websocket(),
            "management": app.endpoints.management(),
            "invoke": format!("{}/2015-03-31/functions/{{name}}/invocations", app.endpoints.base),
            "issuer": app.endpoints.issuer(),
            "console": format!("{}/_console", app.endpoints.base),
            "connections": app.connections.len(),
            "instances": app.lambda.instances(),
        }),
    )
}
