//! The Management API endpoint a message is posted through.

use std::fmt;

use ws_shared::record::Route;
use ws_shared::url::{self, UrlError};

/// An `https://{domain}/{stage}` Management API endpoint (or `http://` on a loopback host, for
/// local stacks), without a trailing slash, and the API it reaches when known: then requests are
/// signed for that API's region, and a 410 from it may mark the connection `GONE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: String,
    route: Option<Route>,
}

/// The default [`EndpointTemplate`]: an API's own Management endpoint.
pub const AWS_TEMPLATE: &str = "https://{apiId}.execute-api.{region}.amazonaws.com/{stage}";

/// How a connection's API, stage and region become its Management endpoint
/// (`WS_ENDPOINT_TEMPLATE`, placeholders `{apiId}`, `{region}`, `{stage}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTemplate(String);

impl EndpointTemplate {
    /// Checks `raw` by rendering it for a sample route.
    pub fn parse(raw: &str, source_name: &'static str) -> Result<Self, EndpointError> {
        let template = Self(raw.trim().trim_end_matches('/').to_owned());
        if !template.0.contains("{apiId}") {
            return Err(EndpointError::Template { source_name });
        }
        let sample = Route { api_id: "abc123".into(), stage: "prod".into(), region: "us-east-1".into() };
        Endpoint::parse(&template.fill(&sample), source_name)?;
        Ok(template)
    }

    fn fill(&self, route: &Route) -> String {
        self.0.replace("{apiId}", &route.api_id).replace("{region}", &route.region).replace("{stage}", &route.stage)
    }

    /// `endpoint` with its route when its URL has this template's shape (e.g. a `WS_ENDPOINT` of a
    /// local stack that serves the template's paths): then a 410 from it is known to come from
    /// that API.
    pub fn recognize(&self, endpoint: Endpoint) -> Endpoint {
        if endpoint.route.is_some() {
            return endpoint;
        }
        let route = self.route_of(&endpoint.url);
        Endpoint { route, ..endpoint }
    }

    /// The route whose rendering is `url`, if any: placeholders match a non-empty run of
    /// characters up to the literal text that follows them.
    fn route_of(&self, url: &str) -> Option<Route> {
        let (mut api_id, mut region, mut stage) = (None, None, None);
        let mut rest = url;
        let mut template = self.0.as_str();
        while !template.is_empty() {
            if let Some(after) = template.strip_prefix('{') {
                let (name, tail) = after.split_once('}')?;
                let literal_end = tail.find('{').unwrap_or(tail.len());
                let literal = &tail[..literal_end];
                let end = if literal.is_empty() { rest.len() } else { rest.find(literal)? };
                let value = &rest[..end];
                if value.is_empty() || value.contains('/') && name != "stage" {
                    return None;
                }
                match name {
                    "apiId" => api_id = Some(value.to_owned()),
                    "region" => region = Some(value.to_owned()),
                    "stage" => stage = Some(value.to_owned()),
                    _ => return None,
                }
                rest = &rest[end..];
                template = tail;
            } else {
                let literal_end = template.find('{').unwrap_or(template.len());
                rest = rest.strip_prefix(&template[..literal_end])?;
                template = &template[literal_end..];
            }
        }
        rest.is_empty().then_some(())?;
        Some(Route { api_id: api_id?, stage: stage?, region: region? })
    }

    /// The endpoint of `route`'s API, signed for its region.
    pub fn render(&self, route: &Route) -> Result<Endpoint, EndpointError> {
        let endpoint = Endpoint::parse(&self.fill(route), "WS_ENDPOINT_TEMPLATE")?;
        Ok(Endpoint { route: Some(route.clone()), ..endpoint })
    }
}

impl Default for EndpointTemplate {
    fn default() -> Self {
        Self(AWS_TEMPLATE.to_owned())
    }
}

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
    #[error(
        "{source_name} must name the API with {{apiId}} (and may use {{region}} and {{stage}}), \
         e.g. https://{{apiId}}.execute-api.{{region}}.amazonaws.com/{{stage}}"
    )]
    Template { source_name: &'static str },
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
        Ok(Self { url: raw.to_owned(), route: execute_api_route(raw) })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The API this endpoint reaches, when known: rendered from a record's route, or an
    /// `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` URL. `None` for a custom
    /// domain or a local stack.
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref()
    }

    /// The region to sign for, when the endpoint says.
    pub fn region(&self) -> Option<&str> {
        self.route.as_ref().map(|route| route.region.as_str())
    }
}

/// The route an execute-api URL names (`https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`).
fn execute_api_route(url: &str) -> Option<Route> {
    let rest = url.strip_prefix("https://")?;
    let (host, stage) = rest.split_once('/')?;
    let mut labels = host.split('.');
    let (api_id, service, region) = (labels.next()?, labels.next()?, labels.next()?);
    let domain: Vec<&str> = labels.collect();
    let amazon = domain == ["amazonaws", "com"] || domain == ["amazonaws", "com", "cn"];
    (service == "execute-api" && amazon && !stage.is_empty() && !stage.contains('/')).then(|| Route {
        api_id: api_id.to_owned(),
        stage: stage.to_owned(),
        region: region.to_owned(),
    })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
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
    fn an_execute_api_endpoint_names_its_api_and_region_and_a_custom_domain_does_not() {
        let aws = Endpoint::parse("https://abc.execute-api.eu-west-1.amazonaws.com/prod", "wsEndpoint").unwrap();
        let route = Route { api_id: "abc".into(), stage: "prod".into(), region: "eu-west-1".into() };
        assert_eq!(aws.route(), Some(&route));
        assert_eq!(aws.region(), Some("eu-west-1"));
        let custom = Endpoint::parse("https://ws.example.com/prod", "wsEndpoint").unwrap();
        assert_eq!(custom.route(), None);
    }

    #[test]
    fn a_template_renders_each_connections_own_endpoint() {
        let route = Route { api_id: "xyz9".into(), stage: "live".into(), region: "ap-south-1".into() };
        let aws = EndpointTemplate::default().render(&route).unwrap();
        assert_eq!(aws.as_str(), "https://xyz9.execute-api.ap-south-1.amazonaws.com/live");
        assert_eq!(aws.route(), Some(&route));
        let local = EndpointTemplate::parse("http://127.0.0.1:4510/{region}/{apiId}/{stage}", "WS_ENDPOINT_TEMPLATE")
            .unwrap()
            .render(&route)
            .unwrap();
        assert_eq!(local.as_str(), "http://127.0.0.1:4510/ap-south-1/xyz9/live");
        assert_eq!(local.region(), Some("ap-south-1"), "signed for the connection's region");
        let template = EndpointTemplate::parse("http://127.0.0.1:4510/{region}/{apiId}/{stage}", "t").unwrap();
        let plain = Endpoint::parse("http://127.0.0.1:4510/eu-west-1/api9/prod", "WS_ENDPOINT").unwrap();
        let known = template.recognize(plain);
        assert_eq!(
            known.route(),
            Some(&Route { api_id: "api9".into(), stage: "prod".into(), region: "eu-west-1".into() })
        );
        let other = Endpoint::parse("http://127.0.0.1:4510/prod", "WS_ENDPOINT").unwrap();
        assert_eq!(template.recognize(other).route(), None, "another shape names no API");
        for bad in ["https://ws.example.com/{stage}", "wss://{apiId}.example.com/x", "http://example.com/{apiId}"] {
            assert!(EndpointTemplate::parse(bad, "WS_ENDPOINT_TEMPLATE").is_err(), "{bad}");
        }
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
