//! `ws-local serve` runs the local stack's API Gateway and Lambda; `ws-local token` asks a
//! running one for a development token.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt as _, Full};
use ws_local::config::{
    DEFAULT_TABLE, EnvOverride, IDLE_TIMEOUT_SECONDS, MAX_DURATION_SECONDS, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES,
};
use ws_local::{Limits, Logs, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "ws-local",
    version,
    about = "API Gateway (WebSocket + Management API) and Lambda on one machine, for ws-connection."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the WebSocket endpoint, the Management API, the Invoke API and the token issuer,
    /// running each function of the manifest as its real binary.
    Serve(Box<Serve>),
    /// Print a token signed by a running ws-local's issuer (for ?token= or Authorization: Bearer).
    Token(Token),
}

#[derive(Debug, Args)]
struct Serve {
    /// Port on --host; 0 picks a free one.
    #[arg(long, default_value_t = 3001)]
    port: u16,
    /// Address to listen on (keep it loopback: nothing here checks signatures).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The API's stage: ws://HOST:PORT/STAGE.
    #[arg(long, default_value = "local")]
    stage: String,
    /// The region this instance stands for (its functions' `AWS_REGION`). Run a second instance on
    /// the same table with another --region, --api-id and port to try two regions.
    #[arg(long, default_value = ws_local::config::REGION)]
    region: String,
    /// The API id of this instance (requestContext.apiId, kept on each record).
    #[arg(long, default_value = "local")]
    api_id: String,
    /// Another instance (http://HOST:PORT) that stands for another region: Management API calls
    /// for an API this one does not serve go there. Repeatable.
    #[arg(long = "peer", value_name = "URL")]
    peers: Vec<String>,
    /// The table's region in the emulator (the functions of another --region reach it there).
    #[arg(long, default_value = ws_local::config::REGION)]
    table_region: String,
    /// Print the functions' EMF metric lines as they are (by default each is folded into one
    /// short line: `EMF ws-connect Connected=1 Refused=0 Errors=0`).
    #[arg(long)]
    raw_emf: bool,
    #[arg(long, default_value = "lambda.manifest.json")]
    manifest: PathBuf,
    /// Where the functions' binaries are (one per Cargo package).
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// The connections table (terraform/envs/local's `table_name` output).
    #[arg(long, default_value = DEFAULT_TABLE)]
    table: String,
    /// DynamoDB endpoint for the functions (moto's server, as scripts/dev.sh starts it); `aws`:
    /// the real DynamoDB of your AWS credentials. Required unless `AWS_ENDPOINT_URL_DYNAMODB` is set.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// Set a variable for every function (NAME=VALUE) or for one (FUNCTION.NAME=VALUE). Repeatable.
    #[arg(long = "env", value_name = "[FUNCTION.]NAME=VALUE")]
    env: Vec<EnvOverride>,
    /// Do not run the manifest's $connect authorizer (connect without a token).
    #[arg(long)]
    no_authorizer: bool,
    /// Largest message from a client (API Gateway: 128 KB).
    #[arg(long, default_value_t = MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Largest frame from a client (API Gateway: 32 KB).
    #[arg(long, default_value_t = MAX_FRAME_BYTES)]
    max_frame_bytes: usize,
    /// Seconds without a frame from the client before the connection is closed (1001).
    #[arg(long, default_value_t = IDLE_TIMEOUT_SECONDS)]
    idle_timeout: u64,
    /// Seconds a connection may last (1001).
    #[arg(long, default_value_t = MAX_DURATION_SECONDS)]
    max_connection_duration: u64,
    /// Instances per function at most.
    #[arg(long, default_value_t = 16)]
    max_instances: usize,
    /// Run the expiry sweep (close connections whose token expired) every this many seconds, as
    /// the deployed stack's schedule does every minute; 0: never.
    #[arg(long, default_value_t = 60)]
    sweep_every: u64,
    /// Lose every $disconnect on purpose (API Gateway's is best effort): records stay CONNECTED,
    /// as orphans do on AWS.
    #[arg(long)]
    lose_disconnects: bool,
    /// Read the table every this many seconds and emit the lifecycle events of what changed
    /// (Connection opened / closed, as the deployed stack's pipes do): to the log, the console
    /// and --events-url; 0: never.
    #[arg(long, default_value_t = 1)]
    events_every: u64,
    /// Also POST each lifecycle event (an EventBridge event's JSON) to this URL, e.g. a local
    /// consumer's `http://127.0.0.1:8080/events`.
    #[arg(long, value_name = "URL", value_parser = events_url)]
    events_url: Option<String>,
}

#[derive(Debug, Args)]
struct Token {
    /// The token's subject: the user id the authorizer passes on.
    #[arg(long)]
    sub: String,
    /// Seconds until it expires (negative: already expired, e.g. --ttl -3600).
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    ttl: i64,
    /// The running ws-local.
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    url: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Token(args) => runtime.block_on(token(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ws-local: error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Serve) -> Result<(), String> {
    // Only a manifest whose functions use the table needs DynamoDB (the parity suite's does not).
    let needs_table = ws_local::manifest::Manifest::load(&args.manifest)
        .is_ok_and(|m| m.functions.iter().any(|f| f.environment.contains_key("TABLE_CONNECTIONS")));
    let dynamodb_endpoint = match dynamodb_endpoint(args.dynamodb_endpoint.clone(), |name| std::env::var(name).ok()) {
        Err(why) if needs_table => return Err(why),
        Err(_) => None,
        Ok(endpoint) => endpoint,
    };
    // Every WebSocket is a file descriptor: allow as many as the hard limit does.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let settings = Settings {
        listen: SocketAddr::new(args.host, args.port),
        stage: args.stage,
        api_id: args.api_id,
        region: args.region,
        peers: args.peers,
        table_region: args.table_region,
        manifest: args.manifest,
        bin_dir: args.bin_dir,
        table: args.table,
        dynamodb_endpoint,
        env: args.env,
        authorizer: !args.no_authorizer,
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_frame_bytes: args.max_frame_bytes,
            idle_timeout: Duration::from_secs(args.idle_timeout),
            max_duration: Duration::from_secs(args.max_connection_duration),
        },
        max_instances: args.max_instances,
        lose_disconnects: args.lose_disconnects,
        sweep_every: (args.sweep_every > 0).then(|| Duration::from_secs(args.sweep_every)),
        events_every: (args.events_every > 0).then(|| Duration::from_secs(args.events_every)),
        events_url: args.events_url,
        logs: Logs::default().with_raw_emf(args.raw_emf),
    };
    let logs = settings.logs.clone();
    let running = ws_local::start(settings).await.map_err(|e| e.to_string())?;
    let e = running.endpoints();
    logs.local(&format!("ready: {}", e.base));
    logs.local(&format!("  WebSocket       {}", e.websocket()));
    logs.local(&format!("  Management API  {}/@connections/{{id}}", e.management()));
    logs.local(&format!("  Invoke API      {}/2015-03-31/functions/{{name}}/invocations", e.base));
    logs.local(&format!("  Token issuer    {}  (ws-local token --sub USER --url {})", e.issuer(), e.base));
    logs.local(&format!("  Console         {}/_console  (open it in a browser)", e.base));
    let functions: Vec<String> = running.app.manifest.functions.iter().map(|f| f.name.clone()).collect();
    logs.local(&format!("  Functions       {}", functions.join(", ")));

    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    logs.local("stopping: closing connections (1001) and stopping function instances");
    running.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

/// `--events-url`: ws-local posts events over plain HTTP (a local consumer), so an `http://` URL
/// with a host; anything else is refused at start rather than failing every event.
fn events_url(value: &str) -> Result<String, String> {
    let uri: hyper::Uri =
        value.parse().map_err(|e| format!("{value:?} is not a URL ({e}); e.g. http://127.0.0.1:8080/events"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(value.to_owned()),
        _ => Err(format!(
            "{value:?}: ws-local posts events without TLS to a local consumer, so give an http:// URL with a host, \
             e.g. http://127.0.0.1:8080/events"
        )),
    }
}

/// Where the functions' DynamoDB is: `--dynamodb-endpoint`, else `AWS_ENDPOINT_URL_DYNAMODB`;
/// `aws` is the real one (the SDK's own resolution). Neither: an error that says what to pass,
/// instead of functions that try AWS and refuse every connection after seconds of DNS errors.
fn dynamodb_endpoint(flag: Option<String>, env: impl Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    match flag.or_else(|| env("AWS_ENDPOINT_URL_DYNAMODB")) {
        Some(endpoint) if endpoint == "aws" => Ok(None),
        Some(endpoint) => Ok(Some(endpoint)),
        None => {
            Err("no DynamoDB for the functions: pass --dynamodb-endpoint http://127.0.0.1:PORT (moto's server, as \
                     scripts/dev.sh starts it), or --dynamodb-endpoint aws for the real DynamoDB of your credentials"
                .into())
        }
    }
}

async fn token(args: Token) -> Result<(), String> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let url = format!("{}/issuer/token", args.url.trim_end_matches('/'));
    let body = serde_json::json!({ "sub": args.sub, "ttlSeconds": args.ttl }).to_string();
    let request = hyper::Request::post(&url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("--url {}: {e}", args.url))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| {
        format!("no ws-local answers at {} ({e}): start it (scripts/dev.sh or ws-local serve) or pass --url", args.url)
    })?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match value.get("token").and_then(serde_json::Value::as_str) {
        Some(token) if status.is_success() => {
            println!("{token}");
            Ok(())
        }
        _ => Err(format!(
            "{url} answered {status}: {}",
            value.get("message").and_then(serde_json::Value::as_str).unwrap_or("no token")
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Command};

    #[test]
    fn an_events_url_must_be_http_with_a_host() {
        let serve = |url: &str| Cli::try_parse_from(["ws-local", "serve", "--events-url", url]);
        let Command::Serve(args) = serve("http://127.0.0.1:8080/events").expect("parses").command else { panic!() };
        assert_eq!(args.events_url.as_deref(), Some("http://127.0.0.1:8080/events"));
        for bad in ["https://example.com/events", "127.0.0.1:8080/events", "not a url"] {
            let err = serve(bad).expect_err(bad).to_string();
            assert!(err.contains("e.g. http://127.0.0.1:8080/events"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_already_expired_token_can_be_asked_for() {
        let cli = Cli::try_parse_from(["ws-local", "token", "--sub", "alice", "--ttl", "-3600"]).expect("parses");
        let Command::Token(token) = cli.command else { panic!("not the token command") };
        assert_eq!(token.ttl, -3600);
    }

    #[test]
    fn serve_can_lose_every_disconnect() {
        let cli = Cli::try_parse_from(["ws-local", "serve", "--lose-disconnects"]).expect("parses");
        let Command::Serve(serve) = cli.command else { panic!("not the serve command") };
        assert!(serve.lose_disconnects);
    }

    #[test]
    fn the_functions_dynamodb_must_be_named() {
        use super::dynamodb_endpoint;
        let none = |_: &str| None;
        assert_eq!(dynamodb_endpoint(Some("http://127.0.0.1:5".into()), none), Ok(Some("http://127.0.0.1:5".into())));
        assert_eq!(dynamodb_endpoint(Some("aws".into()), none), Ok(None));
        let from_env = |_: &str| Some("http://127.0.0.1:6".to_owned());
        assert_eq!(dynamodb_endpoint(None, from_env), Ok(Some("http://127.0.0.1:6".into())));
        assert!(
            dynamodb_endpoint(None, none)
                .unwrap_err()
                .starts_with("no DynamoDB for the functions: pass --dynamodb-endpoint")
        );
    }
}
