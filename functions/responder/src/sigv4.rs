//! SigV4 for the Management API's requests, built for their one shape and with the signing key
//! kept per day and region.
//!
//! `aws-sigv4`'s general signer builds a canonical request for any request (a header map, path
//! normalization, query parsing) and derives the signing key (four chained HMACs) on every call:
//! a profile put it at 14 µs of a post's 80. A post's request has one shape — `POST` or `DELETE`,
//! a path with no query, the headers `content-type` (with a body), `host`, `x-amz-date` and
//! `x-amz-security-token` (with temporary credentials) — so its canonical request is written
//! directly here, with `aws-sigv4`'s settings as the SDK uses them for `execute-api` (the path
//! encoded a second time, no payload-hash header, the token signed). A path that normalization
//! would change (`.`/`..` or empty segments) or that holds characters outside the ones a
//! Management API path carries goes to `aws-sigv4` itself. `tests::
//! this_signer_agrees_with_aws_sigv4` checks both over generated requests, and the tests'
//! Management API stand-in verifies every signature it receives with `aws-sigv4`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use sha2::{Digest as _, Sha256};

use crate::hex_into;

/// The service the Management API is signed for.
pub const SERVICE: &str = "execute-api";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What a request needs to be signed.
#[derive(Debug, Clone, Copy)]
pub struct Unsigned<'a> {
    pub method: &'a str,
    /// The `Host` header the request is sent with (the port only when it is not the scheme's).
    pub host: &'a str,
    /// The path as sent (percent-encoded once).
    pub path: &'a str,
    /// The `Content-Type` header, when the request has one.
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The headers a signature adds to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub x_amz_date: String,
    pub authorization: String,
    /// `x-amz-security-token`, with temporary credentials.
    pub security_token: Option<String>,
}

/// Why a request could not be signed (only `aws-sigv4`'s path can fail).
#[derive(Debug, thiserror::Error)]
#[error("the request could not be signed")]
pub struct SignError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// A signer for one set of credentials: its signing keys are kept per day and region.
#[derive(Debug)]
pub struct Signer {
    credentials: Credentials,
    keys: Mutex<Vec<Key>>,
}

#[derive(Debug, Clone)]
struct Key {
    day: String,
    region: String,
    bytes: [u8; 32],
}

/// The signing keys kept at most (one per region a fan-out posts to; a day's change replaces
/// them).
const MAX_KEYS: usize = 8;

impl Signer {
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials, keys: Mutex::new(Vec::new()) }
    }

    /// The headers that sign `request` for `region` at `time`.
    pub fn sign(&self, request: &Unsigned<'_>, region: &str, time: SystemTime) -> Result<Signed, SignError> {
        if !has_plain_path(request.path) {
            return self.sign_generally(request, region, time);
        }
        let at = DateTime::<Utc>::from(time);
        let day = format!("{:04}{:02}{:02}", at.year(), at.month(), at.day());
        let x_amz_date = format!("{day}T{:02}{:02}{:02}Z", at.hour(), at.minute(), at.second());
        let token = self.credentials.session_token();

        let mut signed_headers = String::with_capacity(64);
        let mut canonical = String::with_capacity(256 + request.path.len() + token.map_or(0, str::len));
        canonical.push_str(request.method);
        canonical.push('\n');
        encode_path_again(request.path, &mut canonical);
        // No query string.
        canonical.push_str("\n\n");
        let mut header = |name: &str, value: &str| {
            let _ = writeln!(canonical, "{name}:{value}");
            if !signed_headers.is_empty() {
                signed_headers.push(';');
            }
            signed_headers.push_str(name);
        };
        if let Some(content_type) = request.content_type {
            header("content-type", content_type.trim());
        }
        header("host", request.host);
        header("x-amz-date", &x_amz_date);
        if let Some(token) = token {
            header("x-amz-security-token", token.trim());
        }
        canonical.push('\n');
        canonical.push_str(&signed_headers);
        canonical.push('\n');
        hex_into(&Sha256::digest(request.body), &mut canonical);

        let scope = format!("{day}/{region}/{SERVICE}/aws4_request");
        let mut string_to_sign = String::with_capacity(160);
        let _ = write!(string_to_sign, "{ALGORITHM}\n{x_amz_date}\n{scope}\n");
        hex_into(&Sha256::digest(canonical.as_bytes()), &mut string_to_sign);

        let signature = v4::calculate_signature(self.key(&day, region, time), string_to_sign.as_bytes());
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.credentials.access_key_id()
        );
        Ok(Signed { x_amz_date, authorization, security_token: token.map(ToOwned::to_owned) })
    }

    /// The signing key for `day` and `region`: kept, or derived and kept.
    fn key(&self, day: &str, region: &str, time: SystemTime) -> [u8; 32] {
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(kept) = keys.iter().find(|k| k.day == day && k.region == region) {
            return kept.bytes;
        }
        let mut key = [0; 32];
        key.copy_from_slice(
            v4::generate_signing_key(self.credentials.secret_access_key(), time, region, SERVICE).as_ref(),
        );
        keys.retain(|k| k.day == day);
        if keys.len() >= MAX_KEYS {
            keys.remove(0);
        }
        keys.push(Key { day: day.to_owned(), region: region.to_owned(), bytes: key });
        key
    }

    /// `aws-sigv4`'s general signer, for a path this module does not write itself.
    fn sign_generally(&self, request: &Unsigned<'_>, region: &str, time: SystemTime) -> Result<Signed, SignError> {
        let identity = Identity::from(self.credentials.clone());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SignError(Box::new(e)))?
            .into();
        let mut headers = vec![("host", request.host)];
        if let Some(content_type) = request.content_type {
            headers.push(("content-type", content_type));
        }
        let uri = format!("http://{}{}", request.host, request.path);
        let signable =
            SignableRequest::new(request.method, uri, headers.into_iter(), SignableBody::Bytes(request.body))
                .map_err(|e| SignError(Box::new(e)))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| SignError(Box::new(e)))?.into_parts();
        let mut signed = Signed { x_amz_date: String::new(), authorization: String::new(), security_token: None };
        for (name, value) in instructions.headers() {
            match name {
                "x-amz-date" => value.clone_into(&mut signed.x_amz_date),
                "authorization" => value.clone_into(&mut signed.authorization),
                "x-amz-security-token" => signed.security_token = Some(value.to_owned()),
                _ => {}
            }
        }
        Ok(signed)
    }
}

/// A path whose canonical form this module writes: absolute, no `.`, `..` or empty segment
/// (normalization leaves it as it is), and only characters a Management API path carries.
fn has_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && path[1..].split('/').all(|segment| !matches!(segment, "" | "." | ".."))
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%@=+:".contains(&b))
}

/// Appends `path` encoded a second time, as SigV4's canonical URI for every service but S3:
/// each of `% @ = + :` becomes its escape (the SDK's greedy-label set; letters, digits, `-._~`
/// and `/` stay).
fn encode_path_again(path: &str, out: &mut String) {
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '@' => out.push_str("%40"),
            '=' => out.push_str("%3D"),
            '+' => out.push_str("%2B"),
            ':' => out.push_str("%3A"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;

    /// `aws-sigv4`'s answer for the same request, as the SDK would sign it.
    fn reference(request: &Unsigned<'_>, credentials: &Credentials, region: &str, time: SystemTime) -> Signed {
        Signer::new(credentials.clone()).sign_generally(request, region, time).expect("aws-sigv4 signs it")
    }

    fn credentials(token: Option<&str>) -> Credentials {
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token.map(Into::into), None, "t")
    }

    #[test]
    fn a_post_is_signed_as_aws_sigv4_signs_it() {
        let request = Unsigned {
            method: "POST",
            host: "abc123.execute-api.eu-west-1.amazonaws.com",
            path: "/prod/@connections/L0SM9cOFvHcCIhw%3D",
            content_type: Some("application/octet-stream"),
            body: br#"{"messageType":"system"}"#,
        };
        let time = UNIX_EPOCH + Duration::from_hours(490_152);
        for token in [None, Some("FwoGZXIvYXdzEJr//////////wEaDA==")] {
            let credentials = credentials(token);
            let ours = Signer::new(credentials.clone()).sign(&request, "eu-west-1", time).unwrap();
            assert_eq!(ours, reference(&request, &credentials, "eu-west-1", time));
        }
    }

    #[test]
    fn the_signing_key_is_kept_per_day_and_region() {
        let signer = Signer::new(credentials(None));
        let day = UNIX_EPOCH + Duration::from_hours(490_152);
        let key = |region: &str, time: SystemTime| {
            let at = DateTime::<Utc>::from(time).format("%Y%m%d").to_string();
            signer.key(&at, region, time)
        };
        let first = key("us-east-1", day);
        assert_eq!(key("us-east-1", day + Duration::from_mins(1)), first);
        assert_ne!(key("eu-west-1", day), first);
        assert_ne!(key("us-east-1", day + Duration::from_hours(24)), first, "a new day, a new key");
        assert_eq!(signer.keys.lock().unwrap().len(), 1, "the old day's keys are dropped");
    }

    #[test]
    fn a_path_that_normalization_would_change_goes_to_aws_sigv4() {
        for path in ["/prod/../@connections/a", "/prod//@connections/a", "/prod/./x", "prod/x", "/prod/a b", "/é"] {
            assert!(!has_plain_path(path), "{path}");
        }
        assert!(has_plain_path("/prod/@connections/a.b_c-d%3D%2B%3A"));
    }

    proptest! {
        #[test]
        fn this_signer_agrees_with_aws_sigv4(
            stage in "[A-Za-z0-9_-]{1,12}",
            base in proptest::option::of("[a-z0-9.~-]{1,8}"),
            id in "[A-Za-z0-9._:@=+-]{1,24}",
            host in prop_oneof!["[a-z0-9]{6,10}\\.execute-api\\.[a-z]{2}-[a-z]{4,7}-[1-3]\\.amazonaws\\.com", "127\\.0\\.0\\.1:[1-9][0-9]{3,4}"],
            region in "[a-z]{2}-[a-z]{4,9}-[1-3]",
            delete in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            token in proptest::option::of("[A-Za-z0-9/+=]{8,64}"),
            secs in 0u64..4_102_444_800,
        ) {
            let encoded: String = percent_encoding::utf8_percent_encode(&id, crate::management::LABEL).to_string();
            let path = match base {
                Some(base) => format!("/{base}/{stage}/@connections/{encoded}"),
                None => format!("/{stage}/@connections/{encoded}"),
            };
            let (method, content_type, body) =
                if delete { ("DELETE", None, &[][..]) } else { ("POST", Some("application/octet-stream"), &body[..]) };
            let request = Unsigned { method, host: &host, path: &path, content_type, body };
            let credentials = credentials(token.as_deref());
            let time = UNIX_EPOCH + Duration::from_secs(secs);
            let ours = Signer::new(credentials.clone()).sign(&request, &region, time).unwrap();
            prop_assert_eq!(ours, reference(&request, &credentials, &region, time));
        }
    }
}
