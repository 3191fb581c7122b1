//! The one rule for the URLs our functions call (Management API endpoints, JWT issuers and
//! JWKS): `https://`, or plain `http://` only on a loopback host, for local stacks and tests.

use aws_lambda_events::http::Uri;

/// Why a URL is not one we call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("it is a WebSocket URL ({0}://)")]
    WebSocketScheme(String),
    #[error("it uses http:// on a host that is not loopback")]
    PlainHttp,
    #[error("it is not an https:// URL with a host")]
    Invalid,
}

/// Checks `raw` against the rule; the host is parsed, never prefix-matched
/// (`http://127.0.0.1.example.com` is not loopback).
pub fn https_or_loopback(raw: &str) -> Result<Uri, UrlError> {
    let uri: Uri = raw.parse().map_err(|_| UrlError::Invalid)?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or(UrlError::Invalid)?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(UrlError::PlainHttp),
        Some(scheme @ ("wss" | "ws")) => Err(UrlError::WebSocketScheme(scheme.to_owned())),
        _ => Err(UrlError::Invalid),
    }
}

/// `localhost`, or an IPv4/IPv6 loopback address (brackets allowed).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        for ok in
            ["https://issuer.example.com/pool", "http://127.0.0.1:5000/x", "http://localhost:1", "http://[::1]:9/s"]
        {
            assert!(https_or_loopback(ok).is_ok(), "{ok}");
        }
        for (bad, err) in [
            ("http://issuer.example.com", UrlError::PlainHttp),
            ("http://127.0.0.1.evil.example.com/jwks", UrlError::PlainHttp),
            ("http://localhost.evil.example.com", UrlError::PlainHttp),
            ("wss://abc.example.com/prod", UrlError::WebSocketScheme("wss".into())),
            ("issuer.example.com", UrlError::Invalid),
            ("https://", UrlError::Invalid),
            ("ftp://x/y", UrlError::Invalid),
        ] {
            assert_eq!(https_or_loopback(bad), Err(err), "{bad}");
        }
    }
}
