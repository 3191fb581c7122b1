//! AWS SDK setup shared by every function: one HTTP client (hyper + rustls with ring) and the
//! config loaded once per process.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The HTTPS client every SDK client uses. The SDK crates are built without their default
/// client, so this is the only TLS stack in the binary. It speaks plain `http://` too (local
/// emulators on loopback).
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// Loads region and credentials from the Lambda environment (or any standard AWS source).
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client()).load().await
}
