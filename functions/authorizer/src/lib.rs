//! `ConnectAuthorizer`: the Lambda REQUEST authorizer of the `$connect` route. API Gateway
//! WebSocket APIs accept only IAM or a Lambda authorizer on `$connect`, so this is where users
//! are authenticated: it verifies a JWT (Cognito or any OIDC issuer) against the issuer's JWKS
//! and answers an IAM policy.
//!
//! # Layout
//! - [`Config`]: issuer, audiences, JWKS URL, token use, allowed algorithms.
//! - [`jwks`]: the issuer's keys, cached per process, refetched on an unknown `kid` at most once
//!   a minute.
//! - [`token`]: where the token is read from (query `token`, `Authorization: Bearer`, or a
//!   `bearer.<jwt>` `Sec-WebSocket-Protocol` entry).
//! - [`Authorizer`]: the decision; [`Policy`]: the answer.
//!
//! A refusal is an explicit `Deny` policy on the method ARN (API Gateway answers 403), never an
//! error: the caller learns nothing about why; the log gets a reason code.

pub mod jwks;
pub mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::config::{Common, ConfigError, Env};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::id::UserId;
use ws_shared::invocation::Invocations;
use ws_shared::log::error_chain;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;

use crate::jwks::{JwksSource, KeyCache, KeyError};

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-authorizer";
ws_shared::metrics! {
    /// The EMF counters this function emits.
    pub enum Metric { Allowed = "Allowed", Denied = "Denied", Errors = "Errors" }
}

pub const JWT_ISSUER: &str = "JWT_ISSUER";
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
pub const JWKS_URL: &str = "JWKS_URL";
pub const JWT_TOKEN_USE: &str = "JWT_TOKEN_USE";
pub const ALLOWED_ALGS: &str = "ALLOWED_ALGS";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// What `ConnectAuthorizer` reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `JWT_ISSUER`: the exact `iss` tokens must carry.
    pub issuer: String,
    /// `JWT_AUDIENCE`: accepted `aud` values (or Cognito access tokens' `client_id`).
    pub audiences: Vec<String>,
    /// `JWKS_URL`, default `<issuer>/.well-known/jwks.json`.
    pub jwks_url: String,
    /// `JWT_TOKEN_USE`: the required `token_use` claim (Cognito: `access` or `id`), if any.
    pub token_use: Option<String>,
    /// `ALLOWED_ALGS`: asymmetric algorithms only, default RS256 and ES256.
    pub algorithms: Vec<Algorithm>,
    pub common: Common,
}

fn is_url(value: &str) -> bool {
    ws_shared::url::https_or_loopback(value).is_ok()
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let issuer = env
            .var(JWT_ISSUER)
            .ok_or(ConfigError::Missing {
                name: JWT_ISSUER,
                hint: "set it to the token issuer, e.g. https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123",
            })?
            .trim_end_matches('/')
            .to_owned();
        if !is_url(&issuer) {
            return Err(ConfigError::Invalid {
                name: JWT_ISSUER,
                value: issuer,
                hint: "use the issuer's https:// URL (http:// only on loopback)",
            });
        }
        let audiences: Vec<String> = env
            .var(JWT_AUDIENCE)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if audiences.is_empty() {
            return Err(ConfigError::Missing {
                name: JWT_AUDIENCE,
                hint: "set it to the accepted client ids / audiences, comma-separated",
            });
        }
        let jwks_url = env.var(JWKS_URL).unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        if !is_url(&jwks_url) {
            return Err(ConfigError::Invalid {
                name: JWKS_URL,
                value: jwks_url,
                hint: "use an https:// URL (http:// only on loopback)",
            });
        }
        let token_use = env.var(JWT_TOKEN_USE).filter(|t| !t.trim().is_empty());
        if let Some(value) = &token_use
            && value != "access"
            && value != "id"
        {
            return Err(ConfigError::Invalid {
                name: JWT_TOKEN_USE,
                value: value.clone(),
                hint: "use access or id (Cognito's token_use), or leave it unset",
            });
        }
        let algs = env.var(ALLOWED_ALGS).unwrap_or_else(|| "RS256,ES256".to_owned());
        let algorithms = parse_algorithms(&algs).ok_or(ConfigError::Invalid {
            name: ALLOWED_ALGS,
            value: algs,
            hint: "use a comma-separated list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 \
                   (symmetric HS* algorithms and none are never accepted)",
        })?;
        Ok(Self { issuer, audiences, jwks_url, token_use, algorithms, common: Common::from_env(env)? })
    }
}

fn parse_algorithms(list: &str) -> Option<Vec<Algorithm>> {
    let algorithms: Vec<Algorithm> = list
        .split(',')
        .map(|a| match a.trim() {
            "RS256" => Some(Algorithm::RS256),
            "RS384" => Some(Algorithm::RS384),
            "RS512" => Some(Algorithm::RS512),
            "PS256" => Some(Algorithm::PS256),
            "PS384" => Some(Algorithm::PS384),
            "PS512" => Some(Algorithm::PS512),
            "ES256" => Some(Algorithm::ES256),
            "ES384" => Some(Algorithm::ES384),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!algorithms.is_empty()).then_some(algorithms)
}

/// The REQUEST authorizer event, as much of it as the decision needs.
///
/// Not `aws_lambda_events`' `ApiGatewayCustomAuthorizerRequestTypeRequest`: its request context
/// has no `connectionId` (nor `routeKey`, `eventType`) unless the crate's `catch-all-fields`
/// feature is on for the whole workspace, so it does not round-trip a WebSocket authorizer event
/// (`tests::the_aws_lambda_events_type_loses_the_websocket_fields` shows it).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerEvent {
    #[serde(default)]
    pub method_arn: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub query_string_parameters: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub request_context: Option<RequestContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    #[serde(default)]
    pub connection_id: Option<String>,
}

/// The authorizer's answer: an IAM policy for `execute-api:Invoke` on the method ARN.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    #[serde(rename = "Action")]
    pub action: &'static str,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Resource")]
    pub resource: String,
}

/// `principalId` of a Deny.
pub const ANONYMOUS: &str = "anonymous";

impl Policy {
    fn new(principal_id: String, effect: &'static str, resource: String, context: BTreeMap<String, Value>) -> Self {
        Self {
            principal_id,
            policy_document: PolicyDocument {
                version: "2012-10-17",
                statement: vec![Statement { action: "execute-api:Invoke", effect, resource }],
            },
            context,
        }
    }

    pub fn is_allow(&self) -> bool {
        self.policy_document.statement.iter().all(|s| s.effect == "Allow")
    }
}

/// Why a request is denied: a stable code for logs and dashboards, never sent to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MalformedEvent,
    MissingToken,
    TokenTooLarge,
    MalformedToken,
    UnsupportedAlgorithm,
    MissingKid,
    UnknownKid,
    JwksUnavailable,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    WrongTokenUse,
    InvalidSubject,
    /// The check itself failed (a bug: it panicked); never a reason to allow.
    Internal,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedEvent => "malformed_event",
            Self::MissingToken => "missing_token",
            Self::TokenTooLarge => "token_too_large",
            Self::MalformedToken => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_alg",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::JwksUnavailable => "jwks_unavailable",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongTokenUse => "wrong_token_use",
            Self::InvalidSubject => "invalid_subject",
            Self::Internal => "internal",
        }
    }
}

/// The claims the decision reads.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    /// Checked in `verify`; handed on so the connection can be closed when the token expires.
    exp: u64,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[String]) -> bool {
        match self {
            Self::One(a) => accepted.contains(a),
            Self::Many(list) => list.iter().any(|a| accepted.contains(a)),
        }
    }
}

/// The handler, built once per process.
pub struct Authorizer<S> {
    config: Config,
    keys: KeyCache<S>,
    clock: Arc<dyn Clock>,
    invocations: Invocations<Metric>,
}

impl<S> std::fmt::Debug for Authorizer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S: JwksSource> Authorizer<S> {
    pub fn new(config: Config, jwks: S, metrics_sink: Arc<dyn LineSink>) -> Self {
        Self::with_clock(config, jwks, metrics_sink, Arc::new(SystemClock))
    }

    /// A handler whose token times and JWKS rate limit read `clock` (tests).
    pub fn with_clock(config: Config, jwks: S, metrics_sink: Arc<dyn LineSink>, clock: Arc<dyn Clock>) -> Self {
        let invocations = Invocations::new(Metrics::new(config.common.metrics_namespace.clone(), SVC, metrics_sink));
        Self { config, keys: KeyCache::new(jwks, Arc::clone(&clock)), clock, invocations }
    }

    /// Decides one `$connect`. Always a policy: Allow with the user, or Deny.
    pub async fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> Policy {
        let deadline = Deadline::from_epoch_millis(deadline_ms, self.clock.now(), DEFAULT_MARGIN);
        let event: AuthorizerEvent = serde_json::from_value(event).unwrap_or_default();
        let resource = event.method_arn.clone().unwrap_or_else(|| "*".to_owned());
        let deny = || Policy::new(ANONYMOUS.to_owned(), "Deny", resource.clone(), BTreeMap::new());
        let authorize = async |counters: &mut Counters<'_, Metric>| {
            if let Some(id) = event.request_context.as_ref().and_then(|c| c.connection_id.as_deref()) {
                tracing::Span::current().record("connectionId", id);
            }
            // A panic while deciding is a Deny like any other failure (counted Denied and Errors).
            let decision = match &event.method_arn {
                None => Err(Reason::MalformedEvent),
                Some(_) => ws_shared::invocation::guarded(self.decide(&event, &deadline))
                    .await
                    .unwrap_or(Err(Reason::Internal)),
            };
            match decision {
                Ok((user, context)) => {
                    counters.incr(Metric::Allowed);
                    info!(decision = "allow", userId = user.as_str(), "connect allowed");
                    Policy::new(user.as_str().to_owned(), "Allow", resource.clone(), context)
                }
                Err(reason) => {
                    counters.incr(Metric::Denied);
                    if matches!(reason, Reason::JwksUnavailable | Reason::MalformedEvent | Reason::Internal) {
                        counters.incr(Metric::Errors);
                    }
                    warn!(decision = "deny", reason = reason.code(), "connect denied");
                    deny()
                }
            }
        };
        self.invocations.run(request_id, self.clock.as_ref(), authorize, deny).await
    }

    async fn decide(
        &self,
        event: &AuthorizerEvent,
        deadline: &Deadline,
    ) -> Result<(UserId, BTreeMap<String, Value>), Reason> {
        let token = token::find(event)?;
        let header = decode_header(token).map_err(|_| Reason::MalformedToken)?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(Reason::UnsupportedAlgorithm);
        }
        let kid = header.kid.as_deref().ok_or(Reason::MissingKid)?;
        let jwk = self.keys.key(kid, deadline).await.map_err(|err| match err {
            KeyError::UnknownKid => Reason::UnknownKid,
            err @ (KeyError::Unavailable(_) | KeyError::CoolingDown) => {
                tracing::error!(error = error_chain(&err), "JWKS unavailable; denying");
                Reason::JwksUnavailable
            }
        })?;
        let claims = self.verify(token, header.alg, &jwk)?;

        let audience_ok = claims.aud.as_ref().is_some_and(|aud| aud.contains_any(&self.config.audiences))
            || claims.client_id.as_ref().is_some_and(|id| self.config.audiences.contains(id));
        if !audience_ok {
            return Err(Reason::WrongAudience);
        }
        if let Some(required) = &self.config.token_use
            && claims.token_use.as_ref() != Some(required)
        {
            return Err(Reason::WrongTokenUse);
        }
        let user = UserId::parse(claims.sub.as_str()).map_err(|_| Reason::InvalidSubject)?;

        // What ConnectFunction and later routes can read from requestContext.authorizer.
        let mut context = BTreeMap::new();
        context.insert("userId".to_owned(), Value::from(user.as_str()));
        if let Some(token_use) = claims.token_use {
            context.insert("tokenUse".to_owned(), Value::from(token_use));
        }
        let client = claims.client_id.or_else(|| match claims.aud {
            Some(Audience::One(a)) => Some(a),
            Some(Audience::Many(list)) => list.into_iter().find(|a| self.config.audiences.contains(a)),
            None => None,
        });
        if let Some(client) = client {
            context.insert("clientId".to_owned(), Value::from(client));
        }
        if let Some(scope) = claims.scope {
            context.insert("scope".to_owned(), Value::from(scope));
        }
        // The token's expiry (epoch seconds): ConnectFunction keeps it on the record and the
        // responder's expiry sweep closes the connection once it has passed (API Gateway checks
        // the token only at $connect). API Gateway hands context values on as strings.
        context.insert("exp".to_owned(), Value::from(claims.exp));
        Ok((user, context))
    }

    fn verify(&self, token: &str, alg: Algorithm, jwk: &Jwk) -> Result<Claims, Reason> {
        // A key published for one algorithm never verifies another (RS256 key, HS256 token…).
        if jwk.common.key_algorithm.is_some_and(|published| published.to_string() != format!("{alg:?}")) {
            return Err(Reason::UnsupportedAlgorithm);
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| Reason::UnknownKid)?;
        // `alg` is already one of the allowed ones; jsonwebtoken wants only algorithms of the
        // key's family here.
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Times are checked below against our clock (jsonwebtoken would read the system's).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // `aud`, or Cognito's `client_id`, is checked after the signature.
        validation.validate_aud = false;
        let now = u64::try_from(self.clock.now().timestamp()).unwrap_or(0);
        let claims = decode::<Value>(token, &key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => Reason::Expired,
                ErrorKind::ImmatureSignature => Reason::NotYetValid,
                ErrorKind::InvalidIssuer => Reason::WrongIssuer,
                ErrorKind::InvalidSignature => Reason::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Reason::UnsupportedAlgorithm,
                _ => Reason::MalformedToken,
            }
        })?;
        let time = |name: &str| claims.claims.get(name).and_then(Value::as_u64);
        let exp = time("exp").ok_or(Reason::MalformedToken)?;
        if exp + LEEWAY_SECONDS < now {
            return Err(Reason::Expired);
        }
        if time("nbf").is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
            return Err(Reason::NotYetValid);
        }
        serde_json::from_value(claims.claims).map_err(|_| Reason::MalformedToken)
    }
}

#[cfg(test)]
mod tests {
    /// Why [`super::AuthorizerEvent`] is ours: the crate's type drops the WebSocket fields of
    /// AWS's sample event. When this fails, the crate carries them: adopt its type.
    #[test]
    fn the_aws_lambda_events_type_loses_the_websocket_fields() {
        let sample: serde_json::Value = serde_json::from_str(include_str!("../../../events/authorizer.json")).unwrap();
        let theirs: aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_value(sample.clone()).unwrap();
        let back = serde_json::to_value(&theirs).unwrap();
        assert_eq!(sample["requestContext"]["connectionId"], "TWegAcC4EowCHnA=");
        assert!(back["requestContext"].get("connectionId").is_none(), "{back}");
        let ours: super::AuthorizerEvent = serde_json::from_value(sample).unwrap();
        assert_eq!(ours.request_context.and_then(|c| c.connection_id).as_deref(), Some("TWegAcC4EowCHnA="));
    }
}
