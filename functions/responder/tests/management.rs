//! The Management API adapter against an HTTP stand-in that checks signatures as API Gateway
//! does: how each answer becomes a result, what is retried and how often, credentials, and the
//! connection pool.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use bytes::Bytes;
use serde_json::{Value, json};
use support::{StandIn, is_sigv4};
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{MAX_ATTEMPTS, ManagementApi, PostError, Poster};
use ws_responder::{Config, Responder};
use ws_shared::aws::Roots;
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::ConnectionId;
use ws_shared::log::error_chain;
use ws_shared::testing::{Captured, FixedClock, TEST_ACCESS_KEY_ID, sdk_config};

const BUDGET: Duration = Duration::from_secs(10);

fn api() -> ManagementApi {
    ManagementApi::new(&sdk_config(), Roots::Amazon)
}

fn endpoint(standin: &StandIn) -> Endpoint {
    Endpoint::parse(&standin.endpoint("prod"), "test").expect("a loopback endpoint")
}

fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("a valid connection id")
}

async fn post(api: &ManagementApi, standin: &StandIn, to: &str) -> Result<(), PostError> {
    api.post(&endpoint(standin), &id(to), Bytes::from_static(b"{\"hello\":1}"), BUDGET).await
}

fn failure(result: Result<(), PostError>) -> String {
    match result {
        Err(err @ PostError::Failed(_)) => error_chain(&err),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_post_carries_the_message_under_a_signature_api_gateway_accepts() {
    let standin = StandIn::start(["L0SM9cOFvHcCIhw="]).await;

    post(&api(), &standin, "L0SM9cOFvHcCIhw=").await.expect("delivered");

    let posts = standin.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].raw_path, "/prod/@connections/L0SM9cOFvHcCIhw%3D", "the id is percent-encoded once");
    assert_eq!(posts[0].body, b"{\"hello\":1}");
    assert!(posts[0].signature_valid, "the stand-in could not verify {:?}", posts[0].authorization);
    assert!(is_sigv4(&posts[0]));
}

#[tokio::test]
async fn temporary_credentials_sign_with_their_session_token() {
    let standin = StandIn::start(["abc="]).await;
    let credentials = Credentials::new(TEST_ACCESS_KEY_ID, "test-secret", Some("a-session-token".into()), None, "t");
    let sdk = sdk_config().into_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build();

    ManagementApi::new(&sdk, Roots::Amazon)
        .post(&endpoint(&standin), &id("abc="), Bytes::from_static(b"x"), BUDGET)
        .await
        .expect("delivered");

    let posts = standin.posts();
    assert!(posts[0].signature_valid, "the stand-in could not verify {:?}", posts[0].authorization);
    assert!(posts[0].authorization.as_deref().unwrap().contains("x-amz-security-token"), "the token is signed");
}

#[tokio::test]
async fn a_close_is_a_signed_delete() {
    let standin = StandIn::start(["abc="]).await;

    api().close(&endpoint(&standin), &id("abc="), BUDGET).await.expect("closed");

    assert_eq!(standin.closed(), ["abc="]);
    assert_eq!(standin.requests(), 1);
}

#[tokio::test]
async fn a_410_is_gone_at_once() {
    let standin = StandIn::start(Vec::<String>::new()).await;

    assert!(matches!(post(&api(), &standin, "abc=").await, Err(PostError::Gone)));
    assert_eq!(standin.requests(), 1, "gone is final: no retry");
}

#[tokio::test]
async fn a_429_goes_back_to_the_caller_untried() {
    let standin = StandIn::start(["abc="]).await;
    standin.answer_next([429]);

    assert!(matches!(post(&api(), &standin, "abc=").await, Err(PostError::Throttled)));
    assert_eq!(standin.requests(), 1, "the fan-out paces and retries a throttled post, not the adapter");
}

#[tokio::test]
async fn a_transient_server_error_is_retried_and_then_delivers() {
    let standin = StandIn::start(["abc="]).await;
    standin.answer_next([503, 502]);

    post(&api(), &standin, "abc=").await.expect("delivered on the third attempt");

    assert_eq!(standin.requests(), 3);
    assert_eq!(standin.posts().len(), 1);
}

#[tokio::test]
async fn a_server_error_fails_after_every_attempt_with_its_type_and_message() {
    let standin = StandIn::start(["abc="]).await;
    standin.answer_next([500; 10]);

    let chain = failure(post(&api(), &standin, "abc=").await);

    assert_eq!(standin.requests(), usize::from(MAX_ATTEMPTS));
    assert!(chain.contains("500 InternalServerErrorException: Internal server error"), "{chain}");
}

#[tokio::test]
async fn a_forbidden_answer_fails_at_once() {
    let standin = StandIn::start(["abc="]).await;
    standin.answer_next([403]);

    let chain = failure(post(&api(), &standin, "abc=").await);

    assert_eq!(standin.requests(), 1, "a 403 is not transient");
    assert!(chain.contains("403 ForbiddenException: Forbidden"), "{chain}");
}

#[tokio::test]
async fn a_call_past_its_budget_is_cut_with_an_unknown_outcome() {
    let standin = StandIn::start_slow(["abc="], Duration::from_secs(5)).await;

    let result =
        api().post(&endpoint(&standin), &id("abc="), Bytes::from_static(b"x"), Duration::from_millis(100)).await;

    assert!(failure(result).contains("did not end within 100ms"));
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_fails_as_unanswered() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/prod"), "test").unwrap();

    let chain = failure(api().post(&endpoint, &id("abc="), Bytes::from_static(b"x"), BUDGET).await);

    assert!(chain.contains("did not get an answer"), "{chain}");
}

#[tokio::test]
async fn posts_and_their_errors_reuse_one_kept_alive_connection() {
    let standin = StandIn::start(["abc="]).await;
    let api = api();
    standin.answer_next([403, 429]);

    for _ in 0..2 {
        let _ = post(&api, &standin, "abc=").await;
    }
    for to in ["abc=", "gone=", "abc="] {
        let _ = post(&api, &standin, to).await;
    }

    assert_eq!(standin.requests(), 5);
    assert_eq!(standin.connections(), 1, "each answer is read to its end and the connection kept");
}

/// Credentials from a provider that counts its calls, valid for `valid_for` (none: no expiry).
#[derive(Debug)]
struct Counting {
    calls: Arc<AtomicUsize>,
    valid_for: Option<Duration>,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let expiry = self.valid_for.map(|valid| SystemTime::now() + valid);
        future::ProvideCredentials::ready(Ok(Credentials::new(TEST_ACCESS_KEY_ID, "test-secret", None, expiry, "t")))
    }
}

async fn fetches_for_three_posts(valid_for: Option<Duration>) -> usize {
    let standin = StandIn::start(["abc="]).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = Counting { calls: Arc::clone(&calls), valid_for };
    let sdk = sdk_config().into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
    let api = ManagementApi::new(&sdk, Roots::Amazon);
    for _ in 0..3 {
        post(&api, &standin, "abc=").await.expect("delivered");
    }
    assert!(standin.posts().iter().all(|p| p.signature_valid));
    calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn credentials_are_fetched_once_while_they_are_valid() {
    assert_eq!(fetches_for_three_posts(Some(Duration::from_hours(1))).await, 1);
    assert_eq!(fetches_for_three_posts(None).await, 1, "undated credentials are kept for 15 minutes");
}

#[tokio::test]
async fn credentials_about_to_expire_are_fetched_again() {
    assert_eq!(fetches_for_three_posts(Some(Duration::from_secs(5))).await, 3, "within 10 s of expiry");
}

#[tokio::test]
async fn no_credentials_is_a_failure_that_says_what_to_set() {
    let standin = StandIn::start(["abc="]).await;
    let sdk = aws_config::SdkConfig::builder().region(aws_config::Region::new("us-east-1")).build();

    let chain = failure(
        ManagementApi::new(&sdk, Roots::Amazon).post(&endpoint(&standin), &id("abc="), Bytes::new(), BUDGET).await,
    );

    assert!(chain.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), "{chain}");
    assert_eq!(standin.requests(), 0);
}

/// Through the handler: what a caller of a single post sees for the adapter's results.
async fn invoke(standin: &StandIn) -> Value {
    let config = Config::from_env(&|_: &str| None).expect("defaults are valid");
    let responder: Responder<ManagementApi, DynamoStore> =
        Responder::new(api(), None, &config, Arc::new(Captured::default())).with_clock(Arc::new(FixedClock::default()));
    let mut event: Value = serde_json::from_str(include_str!("../../../events/responder.json")).unwrap();
    event["wsEndpoint"] = json!(standin.endpoint("prod"));
    let deadline = u64::try_from(FixedClock::default().0.timestamp_millis()).unwrap() + 30_000;
    serde_json::to_value(responder.handle(event, "req-1", deadline).await).unwrap()
}

#[tokio::test]
async fn a_caller_sees_200_410_and_a_500_that_leaks_nothing() {
    let event: Value = serde_json::from_str(include_str!("../../../events/responder.json")).unwrap();
    let target = event["connectionId"].as_str().unwrap().to_owned();

    let standin = StandIn::start([target.clone()]).await;
    assert_eq!(invoke(&standin).await, json!({"statusCode": 200}));

    let gone = StandIn::start(Vec::<String>::new()).await;
    assert_eq!(invoke(&gone).await, json!({"statusCode": 410, "error": ws_responder::GONE}));

    let failing = StandIn::start([target]).await;
    failing.answer_next([500; 10]);
    assert_eq!(invoke(&failing).await, json!({"statusCode": 500, "error": "the post failed; see the function's logs"}));
}
