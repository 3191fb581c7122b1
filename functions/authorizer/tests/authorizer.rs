//! Every way a token can be right or wrong, against keys generated here and served by a real
//! JWKS endpoint on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{Duration, Utc};
use http_body_util::Full;
use hyper::body::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use ws_authorizer::jwks::HttpJwks;
use ws_authorizer::{Authorizer, Config, Policy};
use ws_shared::clock::Clock as _;
use ws_shared::testing::faults::{Fault, FaultProxy, Seeded};
use ws_shared::testing::loopback::Loopback;
use ws_shared::testing::{Captured, ManualClock, capture_logs};

const ISSUER: &str = "https://issuer.example.com/pool";
const AUDIENCE: &str = "client-app";

struct Keys {
    rsa: EncodingKey,
    rsa_jwk: Value,
    rsa_public_pem: String,
    ec: EncodingKey,
    ec_jwk: Value,
}

/// One RSA and one EC key pair per test binary (RSA generation is the slow part).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::traits::PublicKeyParts;

        let mut rng = rand::thread_rng();
        let rsa = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
        let public = rsa.to_public_key();
        let ec = p256::SecretKey::random(&mut rng);
        let point = ec.public_key().to_encoded_point(false);
        Keys {
            rsa: EncodingKey::from_rsa_der(rsa.to_pkcs1_der().unwrap().as_bytes()),
            rsa_jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "rsa-1",
                "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be())}),
            rsa_public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
            ec: EncodingKey::from_ec_der(ec.to_pkcs8_der().unwrap().as_bytes()),
            ec_jwk: json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": "ec-1", "crv": "P-256",
                "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())}),
        }
    })
}

/// A JWKS endpoint on loopback that counts its fetches and can be taken down.
struct JwksServer {
    addr: SocketAddr,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    _server: Loopback,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let (keys, fetches, down) =
            (Arc::new(Mutex::new(keys)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (k, f, d) = (Arc::clone(&keys), Arc::clone(&fetches), Arc::clone(&down));
        let server = Loopback::start(move |_req| {
            f.fetch_add(1, Ordering::SeqCst);
            let (status, body) = if d.load(Ordering::SeqCst) {
                (503, "unavailable".to_owned())
            } else {
                (200, json!({"keys": *k.lock().unwrap()}).to_string())
            };
            async move {
                Ok::<_, hyper::Error>(
                    hyper::Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap(),
                )
            }
        })
        .await;
        Self { addr: server.addr, keys, fetches, down, _server: server }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

struct Harness {
    authorizer: Authorizer<HttpJwks>,
    clock: Arc<ManualClock>,
    metrics: Captured,
    jwks: JwksServer,
}

impl Harness {
    async fn new(extra_env: &[(&str, &str)]) -> Self {
        let k = keys();
        let jwks = JwksServer::start(vec![k.rsa_jwk.clone(), k.ec_jwk.clone()]).await;
        Self::with_server(extra_env, jwks, None)
    }

    /// A harness whose JWKS fetches go through a fault proxy following `plan`.
    async fn behind_proxy(plan: impl Fn(u64, &str) -> Fault + Send + Sync + 'static) -> (Self, FaultProxy) {
        let k = keys();
        let jwks = JwksServer::start(vec![k.rsa_jwk.clone(), k.ec_jwk.clone()]).await;
        let proxy = FaultProxy::start(&format!("http://{}", jwks.addr), plan).await;
        let url = format!("{}/.well-known/jwks.json", proxy.endpoint());
        (Self::with_server(&[], jwks, Some(url)), proxy)
    }

    fn with_server(extra_env: &[(&str, &str)], jwks: JwksServer, url: Option<String>) -> Self {
        let url = url.unwrap_or_else(|| jwks.url());
        let mut vars: HashMap<String, String> = HashMap::from([
            ("JWT_ISSUER".into(), ISSUER.into()),
            ("JWT_AUDIENCE".into(), format!("other-app, {AUDIENCE}")),
            ("JWKS_URL".into(), url.clone()),
        ]);
        vars.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::from_env(&|name: &str| vars.get(name).cloned()).expect("valid config");
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let metrics = Captured::default();
        let authorizer =
            Authorizer::with_clock(config, HttpJwks::new(url).unwrap(), Arc::new(metrics.clone()), clock.clone());
        Self { authorizer, clock, metrics, jwks }
    }

    /// Claims valid now, for `sub` u-42.
    fn claims(&self) -> Value {
        let now = self.clock.now_secs();
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "u-42", "iat": now, "exp": now + 600})
    }

    /// A Lambda deadline 10 s after the harness clock's now.
    fn deadline(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp_millis()).unwrap() + 10_000
    }

    async fn authorize(&self, event: Value) -> (Policy, Option<String>) {
        let (logs, _guard) = capture_logs(ws_authorizer::SVC);
        let policy = self.authorizer.handle(event, "req-1", self.deadline()).await;
        let reason = logs.json().iter().rev().find_map(|l| l["reason"].as_str().map(str::to_owned));
        (policy, reason)
    }

    async fn authorize_token(&self, token: &str) -> (Policy, Option<String>) {
        self.authorize(event_with(json!({"queryStringParameters": {"token": token}}))).await
    }
}

trait Secs {
    fn now_secs(&self) -> i64;
}
impl Secs for ManualClock {
    fn now_secs(&self) -> i64 {
        ws_shared::clock::Clock::now(self).timestamp()
    }
}

fn event_with(parts: Value) -> Value {
    let mut event: Value = serde_json::from_str(include_str!("../../../events/authorizer.json")).unwrap();
    for key in ["queryStringParameters", "headers", "multiValueHeaders", "multiValueQueryStringParameters"] {
        event[key] = json!({});
    }
    let Value::Object(parts) = parts else { panic!("parts must be an object") };
    for (key, value) in parts {
        event[key] = value;
    }
    event
}

fn rs256(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &keys().rsa).unwrap()
}

fn es256(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".to_owned());
    encode(&header, claims, &keys().ec).unwrap()
}

fn assert_allowed(result: &(Policy, Option<String>)) {
    assert!(result.0.is_allow(), "expected Allow, got {:?} ({:?})", result.0, result.1);
    assert_eq!(result.0.principal_id, "u-42");
}

fn assert_denied(result: &(Policy, Option<String>), reason: &str) {
    assert!(!result.0.is_allow(), "expected Deny ({reason}), got Allow");
    assert_eq!(result.0.principal_id, "anonymous");
    assert_eq!(result.1.as_deref(), Some(reason));
    assert!(result.0.context.is_empty(), "a Deny carries no context");
}

#[tokio::test]
async fn a_valid_token_is_allowed_from_each_source() {
    let h = Harness::new(&[]).await;
    let token = rs256(&h.claims(), "rsa-1");

    let from_query = h.authorize(event_with(json!({"queryStringParameters": {"token": token}}))).await;
    let from_header = h.authorize(event_with(json!({"headers": {"Authorization": format!("Bearer {token}")}}))).await;
    let from_protocol = h
        .authorize(event_with(json!({"headers": {"Sec-WebSocket-Protocol": format!("chat.v1, bearer.{token}")}})))
        .await;

    for result in [&from_query, &from_header, &from_protocol] {
        assert_allowed(result);
    }
    assert_eq!(h.jwks.fetches(), 1, "keys are fetched once and cached");
    // The token's expiry is handed on for the expiry sweep (its value follows the clock).
    assert_eq!(from_query.0.context["exp"], h.claims()["exp"]);
    insta::assert_json_snapshot!("allow", from_query.0, { ".context.exp" => "[the token's exp]" });
}

#[tokio::test]
async fn an_es256_token_is_allowed() {
    let h = Harness::new(&[]).await;
    assert_allowed(&h.authorize_token(&es256(&h.claims())).await);
}

#[tokio::test]
async fn a_cognito_access_token_is_matched_on_client_id_and_token_use() {
    let h = Harness::new(&[("JWT_TOKEN_USE", "access")]).await;
    let mut access = h.claims();
    access.as_object_mut().unwrap().remove("aud");
    access["client_id"] = json!(AUDIENCE);
    access["token_use"] = json!("access");
    access["scope"] = json!("chat/write");
    let mut id_token = h.claims();
    id_token["token_use"] = json!("id");

    let allowed = h.authorize_token(&rs256(&access, "rsa-1")).await;
    assert_allowed(&allowed);
    assert_eq!(
        serde_json::to_value(&allowed.0.context).unwrap(),
        json!({"clientId": AUDIENCE, "exp": access["exp"], "scope": "chat/write", "tokenUse": "access", "userId": "u-42"})
    );
    assert_denied(&h.authorize_token(&rs256(&id_token, "rsa-1")).await, "wrong_token_use");
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_denied_beyond_the_leeway() {
    let h = Harness::new(&[]).await;
    let now = h.clock.now_secs();
    let mut expired = h.claims();
    expired["exp"] = json!(now - 31);
    let mut within_leeway = h.claims();
    within_leeway["exp"] = json!(now - 10);
    let mut early = h.claims();
    early["nbf"] = json!(now + 120);

    assert_denied(&h.authorize_token(&rs256(&expired, "rsa-1")).await, "expired");
    assert_allowed(&h.authorize_token(&rs256(&within_leeway, "rsa-1")).await);
    assert_denied(&h.authorize_token(&rs256(&early, "rsa-1")).await, "not_yet_valid");
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_denied() {
    let h = Harness::new(&[]).await;
    let mut issuer = h.claims();
    issuer["iss"] = json!("https://evil.example.com/pool");
    let mut audience = h.claims();
    audience["aud"] = json!(["someone-else"]);

    assert_denied(&h.authorize_token(&rs256(&issuer, "rsa-1")).await, "wrong_issuer");
    assert_denied(&h.authorize_token(&rs256(&audience, "rsa-1")).await, "wrong_audience");
}

#[tokio::test]
async fn alg_none_is_denied() {
    let h = Harness::new(&[]).await;
    let header = B64.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let payload = B64.encode(h.claims().to_string());

    assert_denied(&h.authorize_token(&format!("{header}.{payload}.")).await, "malformed_token");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_denied() {
    let h = Harness::new(&[]).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let forged = encode(&header, &h.claims(), &EncodingKey::from_secret(keys().rsa_public_pem.as_bytes())).unwrap();

    assert_denied(&h.authorize_token(&forged).await, "unsupported_alg");
}

#[tokio::test]
async fn a_tampered_payload_is_denied() {
    let h = Harness::new(&[]).await;
    let token = rs256(&h.claims(), "rsa-1");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = h.claims();
    claims["sub"] = json!("u-admin");
    parts[1] = B64.encode(claims.to_string());

    assert_denied(&h.authorize_token(&parts.join(".")).await, "bad_signature");
}

#[tokio::test]
async fn garbage_missing_and_overlong_tokens_are_denied() {
    let h = Harness::new(&[]).await;
    assert_denied(&h.authorize_token("not-a-jwt").await, "malformed_token");
    assert_denied(&h.authorize_token("a.b.c").await, "malformed_token");
    assert_denied(&h.authorize(event_with(json!({}))).await, "missing_token");
    let overlong = rs256(&json!({"sub": "u-42", "pad": "x".repeat(9000)}), "rsa-1");
    assert_denied(&h.authorize_token(&overlong).await, "token_too_large");
    assert_eq!(h.jwks.fetches(), 0, "nothing unparseable makes us fetch keys");
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_a_minute() {
    let h = Harness::new(&[]).await;
    assert_allowed(&h.authorize_token(&rs256(&h.claims(), "rsa-1")).await);
    assert_eq!(h.jwks.fetches(), 1);

    // WHEN tokens name a kid the JWKS does not have
    assert_denied(&h.authorize_token(&rs256(&h.claims(), "rotated")).await, "unknown_kid");
    assert_denied(&h.authorize_token(&rs256(&h.claims(), "forged-1")).await, "unknown_kid");
    assert_denied(&h.authorize_token(&rs256(&h.claims(), "forged-2")).await, "unknown_kid");
    // THEN only the first caused a refetch
    assert_eq!(h.jwks.fetches(), 2);

    // WHEN the issuer publishes the rotated key and a minute passes
    let mut rotated = keys().rsa_jwk.clone();
    rotated["kid"] = json!("rotated");
    h.jwks.keys.lock().unwrap().push(rotated);
    h.clock.advance(Duration::seconds(61));

    // THEN the next unknown kid refetches, and the rotated key works
    assert_allowed(&h.authorize_token(&rs256(&h.claims(), "rotated")).await);
    assert_eq!(h.jwks.fetches(), 3);
}

#[tokio::test]
async fn a_jwks_outage_denies_and_counts_an_error() {
    let h = Harness::new(&[]).await;
    h.jwks.down.store(true, Ordering::SeqCst);

    let result = h.authorize_token(&rs256(&h.claims(), "rsa-1")).await;

    assert_denied(&result, "jwks_unavailable");
    let metrics = h.metrics.json();
    assert_eq!((metrics[0]["Denied"].as_u64(), metrics[0]["Errors"].as_u64()), (Some(1), Some(1)));
    insta::assert_json_snapshot!("deny", result.0);
}

#[tokio::test]
async fn after_a_failed_jwks_fetch_requests_wait_five_seconds_before_the_next_one() {
    let h = Harness::new(&[]).await;
    h.jwks.down.store(true, Ordering::SeqCst);
    assert_denied(&h.authorize_token(&rs256(&h.claims(), "rsa-1")).await, "jwks_unavailable");

    // WHEN the issuer is back but only 2 s have passed
    h.jwks.down.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::seconds(2));
    assert_denied(&h.authorize_token(&rs256(&h.claims(), "rsa-1")).await, "jwks_unavailable");
    assert_eq!(h.jwks.fetches(), 1, "no fetch during the cool-down");

    // THEN once 5 s have passed, the next request fetches and is allowed
    h.clock.advance(Duration::seconds(4));
    assert_allowed(&h.authorize_token(&rs256(&h.claims(), "rsa-1")).await);
    assert_eq!(h.jwks.fetches(), 2);
}

#[tokio::test]
async fn a_subject_that_cannot_be_a_user_id_is_denied() {
    let h = Harness::new(&[]).await;
    let mut claims = h.claims();
    claims["sub"] = json!("auth0|123");

    assert_denied(&h.authorize_token(&rs256(&claims, "rsa-1")).await, "invalid_subject");
}

#[tokio::test]
async fn an_event_without_a_method_arn_is_denied_everywhere() {
    let h = Harness::new(&[]).await;
    let mut event = event_with(json!({"queryStringParameters": {"token": rs256(&h.claims(), "rsa-1")}}));
    event.as_object_mut().unwrap().remove("methodArn");

    let result = h.authorize(event).await;

    assert_denied(&result, "malformed_event");
    assert_eq!(result.0.policy_document.statement[0].resource, "*");
    assert!(!h.authorize(json!("junk")).await.0.is_allow());
}

#[tokio::test]
async fn logs_name_the_decision_and_never_the_token() {
    let h = Harness::new(&[]).await;
    let token = rs256(&h.claims(), "rsa-1");
    let (logs, _guard) = capture_logs(ws_authorizer::SVC);

    h.authorizer.handle(event_with(json!({"queryStringParameters": {"token": token}})), "req-1", h.deadline()).await;
    h.authorizer
        .handle(event_with(json!({"queryStringParameters": {"token": "eyJbad.eyJbad.sig"}})), "req-2", h.deadline())
        .await;

    let raw = logs.raw();
    assert!(!raw.contains(&token[..20]) && !raw.contains("eyJbad"), "a token leaked: {raw}");
    let decisions: Vec<(String, Option<String>)> = logs
        .json()
        .iter()
        .filter(|l| l["decision"].is_string())
        .map(|l| (l["decision"].as_str().unwrap().to_owned(), l["reason"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(decisions, [("allow".to_owned(), None), ("deny".to_owned(), Some("malformed_token".to_owned()))]);
}

#[test]
fn configuration_refuses_symmetric_algorithms_and_missing_settings() {
    let config = |pairs: &[(&str, &str)]| {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_env(&|name: &str| vars.get(name).cloned()).map_err(|e| e.to_string())
    };
    let base = [("JWT_ISSUER", ISSUER), ("JWT_AUDIENCE", AUDIENCE)];
    let ok = config(&base).unwrap();
    assert_eq!(ok.jwks_url, "https://issuer.example.com/pool/.well-known/jwks.json");
    assert_eq!(ok.algorithms, [Algorithm::RS256, Algorithm::ES256]);

    assert!(config(&[("JWT_AUDIENCE", AUDIENCE)]).unwrap_err().starts_with("JWT_ISSUER is not set"));
    assert!(config(&[("JWT_ISSUER", ISSUER)]).unwrap_err().starts_with("JWT_AUDIENCE is not set"));
    for algs in ["HS256", "RS256,none", ""] {
        let err = config(&[base[0], base[1], ("ALLOWED_ALGS", algs)]).unwrap_err();
        assert!(err.contains("never accepted"), "{algs}: {err}");
    }
    assert!(config(&[("JWT_ISSUER", "http://issuer.example.com"), base[1]]).unwrap_err().contains("https://"));
    // A host that merely starts like loopback is not loopback: no keys over plain http from it.
    assert!(config(&[("JWT_ISSUER", "http://127.0.0.1.evil.example.com"), base[1]]).is_err());
    let spoofed_jwks = config(&[base[0], base[1], ("JWKS_URL", "http://localhost.evil.example.com/jwks.json")]);
    assert!(spoofed_jwks.unwrap_err().starts_with("JWKS_URL="));
    assert!(config(&[base[0], base[1], ("JWT_TOKEN_USE", "refresh")]).is_err());
}

#[tokio::test]
async fn a_stalled_jwks_is_a_deny_before_the_deadline() {
    // GIVEN an issuer whose JWKS endpoint stalls for 5 s, and an invocation with 1 s left
    let (h, _proxy) = Harness::behind_proxy(|_, _| Fault::Stall(std::time::Duration::from_secs(5))).await;
    let token = rs256(&h.claims(), "rsa-1");
    let deadline = u64::try_from(h.clock.now().timestamp_millis()).unwrap() + 1_000;

    let started = std::time::Instant::now();
    let policy =
        h.authorizer.handle(event_with(json!({"queryStringParameters": {"token": token}})), "req-1", deadline).await;

    // THEN the fetch gets only the time left: a Deny comes before the deadline
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "answered after {:?}", started.elapsed());
    assert!(!policy.is_allow());
}

#[tokio::test]
async fn a_faulty_jwks_never_lets_a_token_through_unchecked_and_every_answer_is_in_time() {
    // GIVEN one fresh authorizer (no cached keys) per request, its JWKS fetch through a proxy that
    // fails one fetch in two by a fixed schedule
    let rng = Arc::new(Mutex::new(Seeded::new(21)));
    for i in 0..16 {
        let rng = Arc::clone(&rng);
        let (h, proxy) = Harness::behind_proxy(move |_, _| match rng.lock().unwrap().below(8) {
            0 => Fault::InternalError,
            1 => Fault::Reset,
            2 => Fault::Stall(std::time::Duration::from_secs(3)),
            3 => Fault::LostResponse,
            _ => Fault::Pass,
        })
        .await;
        let started = std::time::Instant::now();
        let (policy, _) = h.authorize_token(&rs256(&h.claims(), "rsa-1")).await;

        // THEN a token is allowed only when its keys really arrived, and never after the deadline
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "request {i} answered late");
        let fetched = proxy.seen().iter().any(|s| s.fault == Fault::Pass);
        assert_eq!(policy.is_allow(), fetched, "request {i}: {:?}", proxy.seen());
    }
}
