//! The Management API endpoint a message is posted through.

use std::fmt;

use ws_shared::url::{self, UrlError};

/// An `https://{domain}/{stage}` Management API endpoint (or `http://` on a loopback host, for
/// local stacks), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "{source_name} is a WebSocket URL ({scheme}://); the Management API endpoint is the https:// one, \
         e.g. https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    )]
    WebSocketScheme { source_name: &'static str, scheme: String },
    #[error("{source_name} uses http:// on a non-loopback host; use https:// (http:// is only for local stacks)")]
    PlainHttp { source_name: &'static str },
    #[error(
        "{source_name} is not an https:// URL with a host, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    )]
    Invalid { source_name: &'static str },
    #[error(
        "no Management API endpoint: pass wsEndpoint in the event, set WS_ENDPOINT, \
         or invoke with requestContext.domainName and requestContext.stage"
    )]
    Missing,
}

impl Endpoint {
    /// Parses an endpoint; `source_name` (`wsEndpoint`, `WS_ENDPOINT`…) goes into errors.
    pub fn parse(raw: &str, source_name: &'static str) -> Result<Self, EndpointError> {
        let raw = raw.trim().trim_end_matches('/');
        let uri = url::https_or_loopback(raw).map_err(|err| match err {
            UrlError::WebSocketScheme(scheme) => EndpointError::WebSocketScheme { source_name, scheme },
            UrlError::PlainHttp => EndpointError::PlainHttp { source_name },
            UrlError::Invalid => EndpointError::Invalid { source_name },
        })?;
        if uri.query().is_some() {
            return Err(EndpointError::Invalid { source_name });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The endpoint for one invocation, first found wins: the event's `wsEndpoint`, then
/// `WS_ENDPOINT` (parsed at init), then `https://{requestContext.domainName}/{requestContext.stage}`.
pub fn resolve(
    from_event: Option<&str>,
    from_env: Option<&Endpoint>,
    from_context: Option<(&str, &str)>,
) -> Result<Endpoint, EndpointError> {
    if let Some(raw) = from_event {
        return Endpoint::parse(raw, "wsEndpoint");
    }
    if let Some(endpoint) = from_env {
        return Ok(endpoint.clone());
    }
    match from_context {
        Some((domain, stage)) if !domain.is_empty() && !stage.is_empty() => {
            Endpoint::parse(&format!("https://{domain}/{stage}"), "requestContext.domainName/stage")
        }
        _ => Err(EndpointError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = "https://abc.execute-api.us-east-1.amazonaws.com/prod";

    #[test]
    fn the_event_wins_then_the_environment_then_the_request_context() {
        let env = Endpoint::parse("https://env.example.com/dev", "WS_ENDPOINT").unwrap();
        let ctx = Some(("ctx.example.com", "stage"));
        assert_eq!(resolve(Some(AWS), Some(&env), ctx).unwrap().as_str(), AWS);
        assert_eq!(resolve(None, Some(&env), ctx).unwrap().as_str(), "https://env.example.com/dev");
        assert_eq!(resolve(None, None, ctx).unwrap().as_str(), "https://ctx.example.com/stage");
        assert_eq!(resolve(None, None, None), Err(EndpointError::Missing));
    }

    #[test]
    fn a_wss_endpoint_is_refused_with_the_https_hint() {
        let err = resolve(Some("wss://abc.execute-api.us-east-1.amazonaws.com/prod"), None, None).unwrap_err();
        assert_eq!(err, EndpointError::WebSocketScheme { source_name: "wsEndpoint", scheme: "wss".into() });
        assert!(err.to_string().contains("the Management API endpoint is the https:// one"), "{err}");
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        for ok in ["http://127.0.0.1:4510/local", "http://localhost:1/x", "http://[::1]:9/s"] {
            assert!(Endpoint::parse(ok, "wsEndpoint").is_ok(), "{ok}");
        }
        assert_eq!(
            Endpoint::parse("http://abc.execute-api.us-east-1.amazonaws.com/prod", "wsEndpoint"),
            Err(EndpointError::PlainHttp { source_name: "wsEndpoint" })
        );
    }

    #[test]
    fn junk_is_invalid_and_a_trailing_slash_is_dropped() {
        for bad in ["", "abc.execute-api.us-east-1.amazonaws.com/prod", "ftp://x/y", "https://", "https://x/y?z=1"] {
            assert!(Endpoint::parse(bad, "WS_ENDPOINT").is_err(), "{bad:?}");
        }
        assert_eq!(
            Endpoint::parse("https://x.example.com/prod/", "WS_ENDPOINT").unwrap().as_str(),
            "https://x.example.com/prod"
        );
    }
}
