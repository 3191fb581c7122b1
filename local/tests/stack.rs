//! The local stack end to end: a real WebSocket client against ws-local, the real function
//! binaries, moto's DynamoDB.

mod support;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use support::{Stack, free_port, next_close, next_text};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn envelope_event(connection_id: &str) -> Value {
    json!({ "connectionId": connection_id, "messageType": "system", "correlationId": "conv-e2e",
            "sequence": 21, "isFinal": false, "payload": { "text": "Processando…" } })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_a_token_is_recorded_and_receives_what_the_responder_sends() {
    let stack = Stack::start(|_| {}).await;
    // GIVEN a token from the local issuer, asked for over HTTP as `ws-local token` does
    let (status, _, body) = stack.http("POST", "/issuer/token", &[], r#"{"sub":"alice"}"#).await;
    assert_eq!(status, 200);
    let token = serde_json::from_slice::<Value>(&body).unwrap()["token"].as_str().unwrap().to_owned();

    // WHEN the client connects with it, a correlationId and a subprotocol
    let (mut socket, protocol) =
        stack.connect(&format!("token={token}&correlationId=conv-e2e"), &["chat.v1"]).await.expect("accepted");

    // THEN the chosen subprotocol comes back and the record is in the table, CONNECTED, as alice
    assert_eq!(protocol.as_deref(), Some("chat.v1"));
    let record = stack.record_of_conversation("conv-e2e").await.expect("recorded before the handshake completes");
    assert_eq!(record["status"], "CONNECTED");
    assert_eq!(record["userId"], "alice");
    assert_eq!(record["ip"], "127.0.0.1");
    assert_eq!(record["userAgent"], "ws-local-tests/1");
    assert_eq!(record["stage"], "local");
    let id = record["connectionId"].as_str().unwrap().to_owned();

    // WHEN the responder is invoked through the Invoke API (its WS_ENDPOINT is ws-local's)
    let (status, headers, result) = stack.invoke("WebSocketResponder", &envelope_event(&id)).await;
    assert_eq!((status, result), (200, json!({ "statusCode": 200 })));
    assert!(headers.get("x-amz-function-error").is_none());

    // THEN the client receives the envelope
    let received: Value = serde_json::from_str(&next_text(&mut socket, 10).await).unwrap();
    assert_eq!(
        received,
        json!({ "messageType": "system", "correlationId": "conv-e2e", "sequence": 21, "isFinal": false,
                "payload": { "text": "Processando…" } })
    );

    // and each function's log lines reach the output prefixed with its name
    let lines = stack.logs.lines();
    for (function, svc) in [
        ("ConnectAuthorizer", "ws-authorizer"),
        ("ConnectFunction", "ws-connect"),
        ("WebSocketResponder", "ws-responder"),
    ] {
        let prefix = format!("[{function}] {{");
        let line = lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {function} JSON line: {lines:#?}"));
        let parsed: Value = serde_json::from_str(&line[function.len() + 3..]).unwrap();
        assert_eq!(parsed["svc"], svc);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_with_a_code_marks_the_record_disconnected_with_that_code() {
    let stack = Stack::start(|_| {}).await;
    let mut socket = stack.open("bob", "conv-close").await;
    socket.close(Some(CloseFrame { code: CloseCode::from(4001), reason: "done for today".into() })).await.unwrap();
    let record = stack.wait_for_record("conv-close", |r| r["status"] == "DISCONNECTED").await;
    assert_eq!(record["closeCode"], "4001");
    assert_eq!(record["closeReason"], "done for today");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_to_a_closed_connection_is_a_410_and_the_record_becomes_gone() {
    // GIVEN a $disconnect that is lost (it is best-effort in API Gateway): here its table is missing
    let stack = Stack::start(|s| s.env.push("disconnectWS.TABLE_CONNECTIONS=no-such-table".parse().unwrap())).await;
    let mut socket = stack.open("carol", "conv-gone").await;
    let id = stack.record_of_conversation("conv-gone").await.unwrap()["connectionId"].as_str().unwrap().to_owned();
    socket.close(None).await.unwrap();
    stack.wait_for_log("[disconnectWS] REPORT").await;
    assert_eq!(
        stack.record_of_conversation("conv-gone").await.unwrap()["status"],
        "CONNECTED",
        "the disconnect was lost"
    );

    // WHEN something posts to it: the Management API says gone, in the shape the SDKs read
    let (status, headers, _) = stack.http("POST", &format!("/local/@connections/{}", urlencode(&id)), &[], "hi").await;
    assert_eq!(status, 410);
    assert_eq!(headers["x-amzn-errortype"], "GoneException");

    // and the responder reports 410 and marks the record GONE
    let (_, _, result) = stack.invoke("WebSocketResponder", &envelope_event(&id)).await;
    assert_eq!(result["statusCode"], 410, "{result}");
    assert!(result["error"].as_str().unwrap().starts_with("the connection is gone"), "{result}");
    // AND ws-local's access log has a line per call: the direct post's 410, the invoke's 200
    let encoded = urlencode(&id);
    stack.wait_for_log(&format!("access POST /local/@connections/{encoded} 410")).await;
    stack.wait_for_log("access POST /2015-03-31/functions/WebSocketResponder/invocations 200").await;
    assert_eq!(stack.record_of_conversation("conv-gone").await.unwrap()["status"], "GONE");
    stack.stop().await;
}

fn urlencode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_or_missing_token_is_refused_at_the_handshake_and_nothing_is_recorded() {
    let stack = Stack::start(|_| {}).await;
    assert_eq!(stack.connect("token=not-a-jwt&correlationId=conv-bad", &[]).await.err(), Some(403));
    assert_eq!(stack.connect("correlationId=conv-bad", &[]).await.err(), Some(403));
    let (_, _, body) = stack.http("POST", "/issuer/token", &[], r#"{"sub":"dave","ttlSeconds":-120}"#).await;
    let expired = serde_json::from_slice::<Value>(&body).unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(stack.connect(&format!("token={expired}&correlationId=conv-bad"), &[]).await.err(), Some(403));
    assert!(stack.records().await.is_empty());
    // The same token in the Sec-WebSocket-Protocol header is accepted, and never echoed.
    let (_, protocol) = stack
        .connect("correlationId=conv-good", &["chat.v1", &format!("bearer.{}", stack.token("dave"))])
        .await
        .expect("accepted");
    assert_eq!(protocol.as_deref(), Some("chat.v1"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_closed_with_1001_and_disconnected() {
    let stack = Stack::start(|s| s.limits.idle_timeout = Duration::from_secs(1)).await;
    let mut socket = stack.open("erin", "conv-idle").await;
    assert_eq!(next_close(&mut socket, 10).await, (1001, "Going away".to_owned()));
    let record = stack.wait_for_record("conv-idle", |r| r["status"] == "DISCONNECTED").await;
    assert_eq!(record["closeCode"], "1001");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_frame_or_message_is_closed_with_1009() {
    let stack = Stack::start(|_| {}).await;
    // A 40 KB frame is over API Gateway's 32 KB frame limit.
    let mut socket = stack.open("fay", "conv-big").await;
    socket.send(Message::text("x".repeat(40 * 1024))).await.unwrap();
    assert_eq!(next_close(&mut socket, 10).await, (1009, "Message too big".to_owned()));
    let record = stack.wait_for_record("conv-big", |r| r["status"] == "DISCONNECTED").await;
    assert_eq!(record["closeCode"], "1009");
    stack.stop().await;

    // The limits are settings: with a 1 KB message limit a 2 KB message is too big.
    let stack = Stack::start(|s| s.limits.max_message_bytes = 1024).await;
    let mut socket = stack.open("fay", "conv-big2").await;
    socket.send(Message::text("x".repeat(2048))).await.unwrap();
    assert_eq!(next_close(&mut socket, 10).await.0, 1009);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_without_a_route_gets_api_gateways_forbidden_frame() {
    let stack = Stack::start(|_| {}).await;
    let mut socket = stack.open("gus", "conv-msg").await;
    socket.send(Message::text(r#"{"action":"sendmessage"}"#)).await.unwrap();
    let frame: Value = serde_json::from_str(&next_text(&mut socket, 10).await).unwrap();
    assert_eq!(frame["message"], "Forbidden");
    let id = stack.record_of_conversation("conv-msg").await.unwrap()["connectionId"].clone();
    assert_eq!(frame["connectionId"], id);
    assert!(frame["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    // The local stack says why (API Gateway does not) and what to do.
    stack
        .wait_for_log(&format!(
            "message from {} answered Forbidden: no route for its selection key (\"sendmessage\")",
            id.as_str().unwrap()
        ))
        .await;
    assert!(stack.logs.lines().iter().any(|l| l.contains("to the manifest")), "the log says how to add a route");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_goes_to_the_route_its_action_names_else_to_default() {
    let stack = Stack::with_fixture().await;
    let mut socket = stack.open("ann", "conv-route").await;
    socket.send(Message::text(r#"{"action":"echo","n":1}"#)).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, r#"[echo] {"action":"echo","n":1}"#);
    socket.send(Message::text(r#"{"action":"unknown"}"#)).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, r#"echo: {"action":"unknown"}"#);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manifests_route_selection_expression_picks_the_route() {
    let manifest = support::manifest_edited(|m| {
        support::add_fixture_routes(m);
        m["route_selection_expression"] = json!("$request.body.meta.kind");
    });
    let stack = Stack::with_manifest(manifest).await;
    let mut socket = stack.open("kim", "conv-rse").await;
    socket.send(Message::text(r#"{"meta":{"kind":"echo"}}"#)).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, r#"[echo] {"meta":{"kind":"echo"}}"#);
    // `action` means nothing now: $default.
    socket.send(Message::text(r#"{"action":"echo"}"#)).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, r#"echo: {"action":"echo"}"#);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn any_executable_that_speaks_the_runtime_api_can_be_a_function() {
    // A Python custom runtime on $default, named by "executable" instead of "crate".
    let manifest = support::manifest_edited(|m| {
        m["functions"].as_array_mut().unwrap().push(json!({
            "name": "PyEcho", "executable": support::root().join("local/fixture/runtimes/echo.py"),
            "trigger": { "type": "route", "route": "$default", "route_response": true },
            "memory_mb": 128, "timeout_s": 3, "environment": {}
        }));
    });
    let stack = Stack::with_manifest(manifest).await;
    let mut socket = stack.open("lea", "conv-py").await;
    socket.send(Message::text("hello")).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, "py: hello");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_disconnect_leaves_an_orphan_as_on_aws() {
    // GIVEN ws-local losing every $disconnect on purpose
    let stack = Stack::start(|s| s.lose_disconnects = true).await;
    let mut socket = stack.open("max", "conv-orphan").await;
    // WHEN the client closes
    socket.close(None).await.unwrap();
    stack.wait_for_log("lost on purpose").await;
    // THEN the record is still CONNECTED: an orphan, left to the TTL and the fan-out's gone-marking
    let record = stack.record_of_conversation("conv-orphan").await.unwrap();
    assert_eq!(record["status"], "CONNECTED");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorizers_output_reaches_every_route_of_the_connection() {
    // API Gateway runs the authorizer on $connect only, and gives its output to every route.
    let stack = Stack::with_fixture().await;
    let mut socket = stack.open("iris", "conv-who").await;
    socket.send(Message::text("whoami")).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, "principal: iris");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_frame_closes_the_connection_with_1003() {
    // API Gateway rejects binary frames and disconnects with 1003 (its binary media types page).
    let stack = Stack::with_fixture().await;
    let mut socket = stack.open("jon", "conv-bin").await;
    socket.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    assert_eq!(next_close(&mut socket, 10).await, (1003, "Binary frames are not supported".to_owned()));
    let record = stack.wait_for_record("conv-bin", |r| r["status"] == "DISCONNECTED").await;
    assert_eq!(record["closeCode"], "1003");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_is_closed_with_1001_at_its_maximum_duration_even_when_active() {
    let stack = Stack::start(|s| {
        s.limits.max_duration = Duration::from_secs(2);
        s.limits.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut socket = stack.open("max", "conv-max").await;
    // Pings every 300 ms keep it from ever being idle; only the maximum duration can end it.
    let started = tokio::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Close(Some(frame)))) => break (u16::from(frame.code), frame.reason.to_string()),
                    Some(Ok(_)) => {}
                    other => panic!("expected a close frame, got {other:?}"),
                },
                () = tokio::time::sleep(Duration::from_millis(300)) => {
                    socket.send(Message::Ping(Vec::new().into())).await.unwrap();
                }
            }
        }
    });
    let (code, reason) = closed.await.expect("closed within 15 s");
    assert_eq!((code, reason.as_str()), (1001, "Going away"));
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed by the idle timer, not the maximum duration");
    let record = stack.wait_for_record("conv-max", |r| r["status"] == "DISCONNECTED").await;
    assert_eq!(record["closeCode"], "1001");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_or_hanging_function_gives_api_gateways_error_and_the_next_invocation_works() {
    let stack = Stack::with_fixture().await;
    let mut socket = stack.open("hal", "conv-crash").await;

    socket.send(Message::text("hello")).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, "echo: hello");

    for (trigger, cause) in [("crash", "signal: aborted"), ("hang", "killed by ws-local")] {
        socket.send(Message::text(trigger)).await.unwrap();
        let frame: Value = serde_json::from_str(&next_text(&mut socket, 10).await).unwrap();
        assert_eq!(frame["message"], "Internal server error", "{trigger}");
        stack.wait_for_log(cause).await;
        socket.send(Message::text(format!("after {trigger}"))).await.unwrap();
        assert_eq!(next_text(&mut socket, 10).await, format!("echo: after {trigger}"));
    }
    let lines = stack.logs.lines();
    assert!(lines.iter().any(|l| l.contains("Status: error (Runtime.ExitError)")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("Status: error (Sandbox.Timedout)")), "{lines:#?}");

    // Through the Invoke API a crash is Lambda's Unhandled error, and the next call works.
    let (status, headers, body) = stack.invoke("EchoFixture", &json!({ "body": "crash" })).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(body["errorType"], "Runtime.ExitError");
    let (_, _, body) = stack.invoke("EchoFixture", &json!({ "body": "fail" })).await;
    assert_eq!(body["errorMessage"], "asked to fail", "a handled error keeps its message");
    let (_, headers, body) = stack.invoke("EchoFixture", &json!({ "body": "ok" })).await;
    assert!(headers.get("x-amz-function-error").is_none());
    assert_eq!(body, json!({ "statusCode": 200, "body": "echo: ok" }));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_invocations_start_instances_and_later_ones_reuse_them_warm() {
    let stack = Stack::with_fixture().await;
    let payloads: Vec<Value> = (0..4).map(|i| json!({ "body": format!("slow {i}") })).collect();
    let calls = payloads.iter().map(|payload| stack.invoke("EchoFixture", payload));
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|(status, _, _)| *status == 200));
    let started = stack.running().app.lambda.instances()["EchoFixture"];
    assert!(started >= 2, "concurrent load starts more than one instance ({started})");
    for i in 0..4 {
        stack.invoke("EchoFixture", &json!({ "body": format!("again {i}") })).await;
    }
    assert_eq!(stack.running().app.lambda.instances()["EchoFixture"], started, "sequential calls reuse warm instances");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invoke_api_answers_like_lambda() {
    let stack = Stack::start(|_| {}).await;
    let (status, headers, body) = stack.invoke("NoSuchFunction", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");
    assert!(body["message"].as_str().unwrap().contains("function:NoSuchFunction"));
    let (status, headers, _) =
        stack.http("POST", "/2015-03-31/functions/WebSocketResponder/invocations", &[], "{not json").await;
    assert_eq!(
        (status, &headers["x-amzn-errortype"]),
        (400, &"InvalidRequestContentException".parse::<hyper::header::HeaderValue>().unwrap())
    );
    // An asynchronous invocation is accepted at once and runs: the responder refuses this one (no target) and says so in its log.
    let (status, _, _) = stack
        .http(
            "POST",
            "/2015-03-31/functions/WebSocketResponder/invocations",
            &[("x-amz-invocation-type", "Event")],
            r#"{"messageType":"system"}"#,
        )
        .await;
    assert_eq!(status, 202);
    stack.wait_for_log("[WebSocketResponder] REPORT").await;
    // The name Terraform deploys the function under answers too, so one command works on both.
    let (status, _, answer) =
        stack.invoke("ws-connection-local-WebSocketResponder", &json!({"messageType": "system"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["statusCode"], 400, "{answer}");
    let (status, _, _) = stack.invoke("xWebSocketResponder", &json!({})).await;
    assert_eq!(status, 404, "only <prefix>-<name>");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = ws_local::Settings::for_project(&support::root());
    settings.bin_dir = support::bin_dir();
    settings.listen = taken.local_addr().unwrap();
    let error = ws_local::start(settings).await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{} is taken (another ws-local, or another server): stop it, or choose another port with --port",
            taken.local_addr().unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_function_prints_before_it_answers_is_logged_before_its_end_line() {
    // CloudWatch shows an invocation's output between its START and END lines.
    // (Without the drain this fails about one run in six; `lambda::pool`'s unit test is the
    // deterministic one.)
    let stack = Stack::with_fixture().await;
    let mut socket = stack.open("ola", "conv-lines").await;
    socket.send(Message::text("chatty 2000")).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, "echo: chatty 2000");
    let lines = stack.logs.lines();
    let last = lines.iter().position(|l| l.ends_with("line 2000 of 2000")).expect("the function's last line is logged");
    let end = lines[..].iter().rposition(|l| l.starts_with("[EchoFixture] END RequestId:")).expect("an END line");
    assert!(last < end, "the function's last line came after its END line:\n{}", lines[last.min(end)..].join("\n"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_domain_name_is_the_host_without_its_port() {
    // `$context.domainName` is the API's domain name (AWS's samples:
    // `abcd1234.execute-api.us-east-1.amazonaws.com`), never host:port.
    let stack = Stack::start(|_| {}).await;
    let _socket = stack.open("pia", "conv-domain").await;
    let record = stack.record_of_conversation("conv-domain").await.unwrap();
    assert_eq!(record["domainName"], "127.0.0.1");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_each_connection_with_its_user_conversation_messages_and_the_logs() {
    let stack = Stack::with_fixture().await;
    let (page_status, headers, page) = stack.http("GET", "/_console", &[], "").await;
    assert_eq!(page_status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(&page).contains("<title>ws-local console</title>"));

    let mut socket = stack.open("ria", "conv-console").await;
    socket.send(Message::text("hello console")).await.unwrap();
    assert_eq!(next_text(&mut socket, 10).await, "echo: hello console");

    let (status, _, body) = stack.http("GET", "/_console/api/state?after=0", &[], "").await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_slice(&body).unwrap();
    let connection = &state["connections"][0];
    assert_eq!((&connection["user"], &connection["conversation"]), (&json!("ria"), &json!("conv-console")));
    assert!(connection["connectedForSeconds"].as_i64().is_some());
    let messages: Vec<(&str, u64, &str)> = connection["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["direction"].as_str().unwrap(), m["bytes"].as_u64().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(messages, [("in", 13, "hello console"), ("out", 19, "echo: hello console")]);
    assert_eq!(state["invocable"], json!(["WebSocketResponder"]));
    let lines = state["logs"]["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l.as_str().unwrap().contains("[EchoFixture] START RequestId:")), "{lines:?}");
    // Asking after the last line gives only what came since.
    let next = state["logs"]["next"].as_u64().unwrap();
    let (_, _, body) = stack.http("GET", &format!("/_console/api/state?after={next}"), &[], "").await;
    let later: Value = serde_json::from_slice(&body).unwrap();
    assert!(later["logs"]["lines"].as_array().unwrap().len() < lines.len());
    stack.stop().await;
}

/// The records of `user`'s connections.
async fn records_of_user(stack: &Stack, user: &str) -> Vec<Value> {
    stack.records().await.into_iter().filter(|r| r["userId"] == user).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_banned_users_sockets_close_and_are_recorded_while_the_others_still_receive_a_fan_out() {
    // GIVEN two sockets of mallory and one of alice, in one conversation
    let stack = Stack::start(|_| {}).await;
    let mut banned = [stack.open("mallory", "conv-ban").await, stack.open("mallory", "conv-ban").await];
    let mut alice = stack.open("alice", "conv-ban").await;

    // WHEN an operator bans mallory: one call to the responder
    let ban = json!({ "action": "disconnect", "userId": "mallory", "reason": "banned" });
    let (_, _, answer) = stack.invoke("WebSocketResponder", &ban).await;
    assert_eq!(
        answer,
        json!({ "statusCode": 200, "targets": 2, "closed": 2, "gone": 0, "failed": 0, "throttled": 0, "retried": 0 })
    );

    // THEN both of mallory's sockets are closed by the server, as API Gateway's DeleteConnection does
    for socket in &mut banned {
        assert_eq!(next_close(socket, 10).await, (1000, "Connection deleted".to_owned()));
    }
    // AND their $disconnects were recorded, each record saying why it ended
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let records = records_of_user(&stack, "mallory").await;
        if records.len() == 2 && records.iter().all(|r| r["status"] == "DISCONNECTED") {
            assert!(records.iter().all(|r| r["closeReason"] == "banned"), "{records:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "mallory's $disconnects: {records:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // AND alice is still connected and still receives the conversation's messages
    let fan_out = json!({ "conversationId": "conv-ban", "messageType": "system", "payload": { "text": "still here" } });
    let (_, _, answer) = stack.invoke("WebSocketResponder", &fan_out).await;
    assert_eq!(answer["posted"], 1, "{answer}");
    let received: Value = serde_json::from_str(&next_text(&mut alice, 10).await).unwrap();
    assert_eq!(received["payload"]["text"], "still here");
    assert_eq!(records_of_user(&stack, "alice").await[0]["status"], "CONNECTED");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_expiry_sweep_closes_the_socket_whose_token_expired_and_only_that_one() {
    // GIVEN a socket whose token expired 10 s ago (within the authorizer's 30 s leeway, so it was
    // let in), one with a valid token
    let stack = Stack::start(|_| {}).await;
    let expired = stack
        .running()
        .app
        .issuer
        .token(&ws_local::issuer::TokenRequest {
            sub: "late".into(),
            ttl_seconds: Some(-10),
            claims: serde_json::Map::new(),
        })
        .unwrap();
    let (mut late, _) = stack.connect(&format!("token={expired}&correlationId=conv-exp"), &[]).await.expect("accepted");
    let mut fresh = stack.open("fresh", "conv-exp").await;

    // WHEN the schedule's event reaches the responder
    let (_, _, answer) = stack.invoke("WebSocketResponder", &json!({ "action": "disconnect", "expired": true })).await;

    // THEN only the expired one is closed, and its record says so
    assert_eq!((answer["targets"].as_u64(), answer["closed"].as_u64()), (Some(1), Some(1)), "{answer}");
    assert_eq!(next_close(&mut late, 10).await.0, 1000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while records_of_user(&stack, "late").await[0]["status"] != "DISCONNECTED" {
        assert!(tokio::time::Instant::now() < deadline, "the $disconnect of the expired socket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(records_of_user(&stack, "late").await[0]["closeReason"], "expired");
    let still = records_of_user(&stack, "fresh").await;
    assert_eq!(still[0]["status"], "CONNECTED");
    fresh.send(Message::Ping(vec![1].into())).await.expect("the valid one is still open");
    stack.stop().await;
}

#[tokio::test]
async fn ws_local_runs_the_expiry_sweep_on_its_schedule_as_the_deployed_stack_does() {
    // GIVEN a sweep every second and a socket whose token expired 10 s ago (let in by the leeway)
    let stack = Stack::start(|s| s.sweep_every = Some(Duration::from_secs(1))).await;
    let expired = stack
        .running()
        .app
        .issuer
        .token(&ws_local::issuer::TokenRequest {
            sub: "late".into(),
            ttl_seconds: Some(-10),
            claims: serde_json::Map::new(),
        })
        .unwrap();
    let (mut late, _) = stack.connect(&format!("token={expired}&correlationId=conv-sw"), &[]).await.expect("accepted");

    // THEN with nobody invoking anything, the schedule closes it
    assert_eq!(next_close(&mut late, 15).await.0, 1000);
    stack.wait_for_log("expiry sweep: closed 1 connection(s) whose token expired").await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_table_stand_for_two_regions_and_one_fan_out_reaches_the_clients_of_both() {
    // GIVEN two ws-local instances on one table, each standing for a region with its own API,
    // each knowing the other, and clients on both in one conversation
    let (port_a, port_b) = (free_port(), free_port());
    let a = Stack::start(|s| {
        s.listen = ([127, 0, 0, 1], port_a).into();
        s.region = "us-east-1".into();
        s.api_id = "apiuse1".into();
        s.peers = vec![format!("http://127.0.0.1:{port_b}")];
    })
    .await;
    let table = a.table.clone();
    let b = Stack::start(|s| {
        s.listen = ([127, 0, 0, 1], port_b).into();
        s.region = "eu-west-1".into();
        s.api_id = "apieuw1".into();
        s.table.clone_from(&table);
        s.peers = vec![format!("http://127.0.0.1:{port_a}")];
    })
    .await;
    let mut on_a = [a.open("ana", "conv-world").await, a.open("ari", "conv-world").await];
    let mut on_b = [b.open("bea", "conv-world").await];

    // WHEN one fan-out runs in region A, with no wsEndpoint
    let event =
        json!({ "conversationId": "conv-world", "messageType": "system", "payload": { "text": "hello world" } });
    let (_, _, answer) = a.invoke("WebSocketResponder", &event).await;

    // THEN every client, in both regions, got it once
    assert_eq!((answer["posted"].as_u64(), answer["failed"].as_u64()), (Some(3), Some(0)), "{answer}");
    for socket in on_a.iter_mut().chain(on_b.iter_mut()) {
        let received: Value = serde_json::from_str(&next_text(socket, 10).await).unwrap();
        assert_eq!(received["payload"]["text"], "hello world");
    }
    // AND each record says where it lives
    let records = a.records().await;
    let region_of = |user: &str| {
        let r = records.iter().find(|r| r["userId"] == user).unwrap();
        (r["region"].as_str().unwrap().to_owned(), r["apiId"].as_str().unwrap().to_owned())
    };
    assert_eq!(region_of("ana"), ("us-east-1".into(), "apiuse1".into()));
    assert_eq!(region_of("bea"), ("eu-west-1".into(), "apieuw1".into()));
    // (bea's socket lives in B: only B's Management API can have written to it.)
    b.stop().await;
    a.stop().await;
}
