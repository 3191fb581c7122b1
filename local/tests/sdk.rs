//! The Management API driven by the official AWS SDK client, as the responder and any other
//! service would: SigV4-signed requests, errors parsed into `GoneException`.

mod support;

use aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use support::{Stack, next_close, next_text};

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_client_posts_gets_and_deletes_a_connection() {
    let stack = Stack::start(|_| {}).await;
    let (mut socket, _) =
        stack.connect(&format!("token={}&correlationId=conv-sdk", stack.token("ivy")), &[]).await.unwrap();
    let id = stack.record_of_conversation("conv-sdk").await.unwrap()["connectionId"].as_str().unwrap().to_owned();

    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "AKIDLOCAL",
            "secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(stack.management())
        .http_client(ws_shared::aws::http_client(ws_shared::aws::Roots::Amazon))
        .build();
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(config);

    client.post_to_connection().connection_id(&id).data(Blob::new("from the sdk")).send().await.expect("post");
    assert_eq!(next_text(&mut socket, 10).await, "from the sdk");

    let described = client.get_connection().connection_id(&id).send().await.expect("get");
    let identity = described.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("ws-local-tests/1"));
    let connected_at = described.connected_at().expect("connectedAt");
    assert!(described.last_active_at().expect("lastActiveAt").secs() >= connected_at.secs());

    client.delete_connection().connection_id(&id).send().await.expect("delete");
    assert_eq!(next_close(&mut socket, 10).await, (1000, "Connection deleted".to_owned()));
    let record = stack.wait_for_record("conv-sdk", |r| r["status"] == "DISCONNECTED").await;
    assert_eq!(record["closeCode"], "1000");

    let error = client.post_to_connection().connection_id(&id).data(Blob::new("late")).send().await.unwrap_err();
    assert!(error.as_service_error().is_some_and(PostToConnectionError::is_gone_exception), "{error:?}");
    let error = client.get_connection().connection_id(&id).send().await.unwrap_err();
    assert!(error.as_service_error().is_some_and(GetConnectionError::is_gone_exception), "{error:?}");
    stack.stop().await;
}
