//! AWS SDK setup shared by every function: one HTTP client (hyper + rustls with ring) and the
//! config loaded once per process.
//!
//! # Which certificate authorities the client trusts
//! By default ([`Roots::Amazon`]) only the roots of Amazon Trust Services
//! (`certs/amazon-trust-services.pem`: Amazon Root CA 1–4 and the Starfield Services root that
//! cross-signs them), which sign the certificate of every AWS service endpoint and every
//! ACM-issued certificate. The system's store is not read at all: loading and parsing it
//! (`/etc/ssl/certs`, about 150 roots in a bundle and again one file each) was 3.2 ms of a 4.9 ms
//! init, two thirds of the cold start (BENCHMARKS.md, "Cold start"). [`Roots::System`] loads it,
//! for the one case that needs it: a responder whose `WS_ENDPOINT` is a custom domain with a
//! certificate imported into ACM from another authority (`TLS_ROOTS=system`).
//!
//! # Where credentials and the region come from
//! From the environment only: Lambda gives every function its role's credentials in
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` and its region in
//! `AWS_REGION`, and so do ws-local and the tests. The default chains' other sources (profile
//! files, web identity through an STS client, ECS, IMDS) never apply in Lambda, and building
//! them was the largest part of `load` left (a profile of `ConnectFunction`'s cold start: the web
//! identity provider alone, which builds an STS client and parses its endpoint rules, about
//! 7 % of the process's time).

use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// The roots of Amazon Trust Services (PEM), compiled in.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// The certificate authorities the HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roots {
    /// Amazon Trust Services only (every AWS endpoint, ACM-issued certificates).
    #[default]
    Amazon,
    /// The system's store (read and parsed at start: about 3 ms).
    System,
}

impl Roots {
    fn trust_store(self) -> TrustStore {
        match self {
            Self::Amazon => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES),
            Self::System => TrustStore::default(),
        }
    }
}

/// The HTTPS client every SDK client uses. The SDK crates are built without their default
/// client, so this is the only TLS stack in the binary. It speaks plain `http://` too (local
/// emulators on loopback).
pub fn http_client(roots: Roots) -> SharedHttpClient {
    let context = TlsContext::builder()
        .with_trust_store(roots.trust_store())
        .build()
        .expect("a TLS context from a trust store always builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https()
}

/// The TLS config of an HTTPS client outside the SDK (the responder's Management API calls):
/// the same roots as [`http_client`], ring, TLS 1.2 and 1.3.
pub fn tls_config(roots: Roots) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::Amazon => {
            for cert in CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES) {
                store.add(cert.expect("the compiled-in roots are PEM")).expect("the compiled-in roots are valid");
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a certificate of the system's store could not be read");
            }
            store.add_parsable_certificates(found.certs);
        }
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// The SDK config of a function: credentials and region from the environment Lambda sets (see
/// the module's docs), the HTTPS client trusting `roots`, the rest (endpoint overrides such as
/// `AWS_ENDPOINT_URL_DYNAMODB`, retry and timeout defaults) as `aws_config` loads it.
pub async fn load_config(roots: Roots) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .region(EnvironmentVariableRegionProvider::new())
        .http_client(http_client(roots))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    use sha2::{Digest as _, Sha256};

    /// SHA-256 fingerprints as Amazon Trust Services publishes them.
    const FINGERPRINTS: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services Root CA - G2
    ];

    #[test]
    fn the_compiled_in_roots_are_exactly_amazon_trust_services() {
        let fingerprints: Vec<String> = CertificateDer::pem_slice_iter(super::AMAZON_TRUST_SERVICES)
            .map(|cert| {
                Sha256::digest(cert.expect("a PEM certificate"))
                    .iter()
                    .fold(String::new(), |hex, b| hex + &format!("{b:02x}"))
            })
            .collect();
        assert_eq!(fingerprints, FINGERPRINTS);
    }
}
