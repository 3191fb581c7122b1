//! The events API Gateway sends to a WebSocket API's integrations and its REQUEST authorizer,
//! built to AWS's documented shapes (the captured ones are in `events/`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// What API Gateway knows about a connection from its handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub connection_id: String,
    pub connected_at: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: String,
    pub domain_name: String,
    pub stage: String,
    pub api_id: String,
    /// Header names and values in the order the client sent them.
    pub headers: Vec<(String, String)>,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// What the `$connect` authorizer returned (principalId + context), once it ran: API Gateway
    /// gives it as `requestContext.authorizer` to every route of the connection, `$connect`,
    /// message routes and `$disconnect` alike (the authorizer runs on `$connect` only, and its
    /// `$context.authorizer.*` variables hold for the connection:
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html>).
    pub authorizer: Option<Value>,
}

impl Handshake {
    pub fn method_arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:execute-api:{region}:{account}:{}/{}/$connect", self.api_id, self.stage)
    }

    /// `requestContext` common to every event of this connection.
    fn context(&self, route_key: &str, event_type: &str, request_id: &str, now: DateTime<Utc>) -> Map<String, Value> {
        let mut context = Map::new();
        context.insert("routeKey".into(), json!(route_key));
        context.insert("eventType".into(), json!(event_type));
        context.insert("extendedRequestId".into(), json!(request_id));
        context.insert("requestTime".into(), json!(now.format("%d/%b/%Y:%H:%M:%S +0000").to_string()));
        context.insert("messageDirection".into(), json!("IN"));
        context.insert("stage".into(), json!(self.stage));
        context.insert("connectedAt".into(), json!(self.connected_at.timestamp_millis()));
        context.insert("requestTimeEpoch".into(), json!(now.timestamp_millis()));
        context.insert("identity".into(), json!({ "userAgent": self.user_agent, "sourceIp": self.source_ip }));
        context.insert("requestId".into(), json!(request_id));
        context.insert("domainName".into(), json!(self.domain_name));
        context.insert("connectionId".into(), json!(self.connection_id));
        context.insert("apiId".into(), json!(self.api_id));
        if let Some(authorizer) = &self.authorizer {
            context.insert("authorizer".into(), authorizer.clone());
        }
        context
    }

    /// `headers` (the last value of each name) and `multiValueHeaders`.
    fn header_maps(&self) -> (Value, Value) {
        pairs_to_maps(&self.headers)
    }

    /// `queryStringParameters` and `multiValueQueryStringParameters`; absent when there is no query.
    fn insert_query(&self, event: &mut Map<String, Value>) {
        if self.query.is_empty() {
            return;
        }
        let (single, multi) = pairs_to_maps(&self.query);
        event.insert("queryStringParameters".into(), single);
        event.insert("multiValueQueryStringParameters".into(), multi);
    }

    /// The REQUEST authorizer's event.
    pub fn authorizer_event(&self, method_arn: &str, request_id: &str, now: DateTime<Utc>) -> Value {
        let (headers, multi) = self.header_maps();
        let mut event = Map::new();
        event.insert("type".into(), json!("REQUEST"));
        event.insert("methodArn".into(), json!(method_arn));
        event.insert("headers".into(), headers);
        event.insert("multiValueHeaders".into(), multi);
        self.insert_query(&mut event);
        event.insert("stageVariables".into(), json!({}));
        event.insert("requestContext".into(), Value::Object(self.context("$connect", "CONNECT", request_id, now)));
        Value::Object(event)
    }

    /// `$connect`'s event (with the authorizer's output, when one ran).
    pub fn connect_event(&self, request_id: &str, now: DateTime<Utc>) -> Value {
        let (headers, multi) = self.header_maps();
        let context = self.context("$connect", "CONNECT", request_id, now);
        let mut event = Map::new();
        event.insert("headers".into(), headers);
        event.insert("multiValueHeaders".into(), multi);
        self.insert_query(&mut event);
        event.insert("requestContext".into(), Value::Object(context));
        event.insert("isBase64Encoded".into(), json!(false));
        Value::Object(event)
    }

    /// `$disconnect`'s event with the close code and reason.
    pub fn disconnect_event(&self, code: u16, reason: &str, request_id: &str, now: DateTime<Utc>) -> Value {
        let mut context = self.context("$disconnect", "DISCONNECT", request_id, now);
        context.insert("disconnectStatusCode".into(), json!(code));
        context.insert("disconnectReason".into(), json!(reason));
        // What API Gateway sends on $disconnect: the host and a few empty headers, not the handshake's.
        let headers = vec![
            ("Host".to_owned(), self.domain_name.clone()),
            ("x-api-key".to_owned(), String::new()),
            ("X-Forwarded-For".to_owned(), String::new()),
            ("x-restapi".to_owned(), String::new()),
        ];
        let (headers, multi) = pairs_to_maps(&headers);
        json!({
            "headers": headers,
            "multiValueHeaders": multi,
            "requestContext": context,
            "isBase64Encoded": false,
        })
    }

    /// A message route's event. Messages are text: a binary frame never reaches a route (see
    /// `gateway::socket`).
    pub fn message_event(&self, route_key: &str, body: &str, request_id: &str, now: DateTime<Utc>) -> Value {
        let mut context = self.context(route_key, "MESSAGE", request_id, now);
        context.insert("messageId".into(), json!(crate::http::random_id()));
        json!({ "requestContext": context, "body": body, "isBase64Encoded": false })
    }
}

/// Single-value (last value wins) and multi-value maps of ordered pairs.
fn pairs_to_maps(pairs: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), json!(value));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(json!(value)),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// What a REQUEST authorizer decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// `requestContext.authorizer` for the integration: principalId and the context's entries.
    Allow(Value),
    Deny,
}

/// Evaluates an authorizer's IAM policy for `method_arn` as API Gateway does: allowed when an
/// `Allow` statement for `execute-api:Invoke` matches and no `Deny` does. `Err`: the output is
/// not a valid authorizer response (API Gateway answers 500).
pub fn evaluate_policy(output: &Value, method_arn: &str) -> Result<Decision, String> {
    let principal = output.get("principalId").and_then(Value::as_str).ok_or("no principalId")?;
    let statements =
        output.pointer("/policyDocument/Statement").and_then(Value::as_array).ok_or("no policyDocument.Statement")?;
    let (mut allowed, mut denied) = (false, false);
    for statement in statements {
        let listed = |field: &str| -> Vec<String> {
            match statement.get(field) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            }
        };
        let action = listed("Action").iter().any(|a| glob(a, "execute-api:Invoke"));
        let resource = listed("Resource").iter().any(|r| glob(r, method_arn));
        if action && resource {
            match statement.get("Effect").and_then(Value::as_str) {
                Some("Allow") => allowed = true,
                Some("Deny") => denied = true,
                other => return Err(format!("a statement's Effect is {other:?}")),
            }
        }
    }
    if denied || !allowed {
        return Ok(Decision::Deny);
    }
    let mut authorizer = Map::new();
    authorizer.insert("principalId".into(), json!(principal));
    if let Some(context) = output.get("context") {
        let context = context.as_object().ok_or("context is not an object")?;
        for (key, value) in context {
            if value.is_object() || value.is_array() {
                return Err(format!("context.{key} is not a string, number or boolean"));
            }
            authorizer.insert(key.clone(), value.clone());
        }
    }
    Ok(Decision::Allow(Value::Object(authorizer)))
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:local/local/$connect";

    fn policy(effects: &[(&str, &str)]) -> Value {
        let statements: Vec<Value> = effects
            .iter()
            .map(|(effect, resource)| json!({ "Action": "execute-api:Invoke", "Effect": effect, "Resource": resource }))
            .collect();
        json!({ "principalId": "u-1", "policyDocument": { "Version": "2012-10-17", "Statement": statements },
                "context": { "userId": "u-1", "n": 3 } })
    }

    #[test]
    fn an_allow_on_the_method_arn_or_a_wildcard_allows_and_carries_the_context() {
        for resource in [ARN, "arn:aws:execute-api:us-east-1:000000000000:local/*", "*"] {
            assert_eq!(
                evaluate_policy(&policy(&[("Allow", resource)]), ARN).unwrap(),
                Decision::Allow(json!({ "principalId": "u-1", "userId": "u-1", "n": 3 })),
                "{resource}"
            );
        }
    }

    #[test]
    fn a_deny_wins_and_no_matching_allow_denies() {
        assert_eq!(evaluate_policy(&policy(&[("Allow", "*"), ("Deny", ARN)]), ARN).unwrap(), Decision::Deny);
        assert_eq!(
            evaluate_policy(&policy(&[("Allow", "arn:aws:execute-api:*:*:other/*")]), ARN).unwrap(),
            Decision::Deny
        );
        assert_eq!(evaluate_policy(&policy(&[]), ARN).unwrap(), Decision::Deny);
    }

    #[test]
    fn a_malformed_authorizer_response_is_an_error() {
        assert!(evaluate_policy(&json!({}), ARN).is_err());
        let mut nested = policy(&[("Allow", "*")]);
        nested["context"] = json!({ "claims": { "a": 1 } });
        assert_eq!(evaluate_policy(&nested, ARN).unwrap_err(), "context.claims is not a string, number or boolean");
    }

    #[test]
    fn events_carry_what_api_gateway_sends() {
        let handshake = Handshake {
            connection_id: "abc=".into(),
            connected_at: DateTime::from_timestamp_millis(1_707_503_007_396).unwrap(),
            source_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            domain_name: "127.0.0.1:3001".into(),
            stage: "local".into(),
            api_id: "local".into(),
            headers: vec![
                ("Host".into(), "127.0.0.1:3001".into()),
                ("X-A".into(), "1".into()),
                ("X-A".into(), "2".into()),
            ],
            query: vec![("correlationId".into(), "conv-1".into())],
            authorizer: None,
        };
        let now = DateTime::from_timestamp_millis(1_707_503_007_398).unwrap();
        let authorizer = handshake.authorizer_event(ARN, "req", now);
        assert_eq!(authorizer["type"], "REQUEST");
        assert_eq!(authorizer["methodArn"], ARN);
        assert!(authorizer["requestContext"].get("authorizer").is_none());
        let handshake = Handshake { authorizer: Some(json!({ "principalId": "u", "tenant": "t" })), ..handshake };
        let connect = handshake.connect_event("req", now);
        assert_eq!(connect["headers"]["X-A"], "2");
        assert_eq!(connect["multiValueHeaders"]["X-A"], json!(["1", "2"]));
        assert_eq!(connect["queryStringParameters"], json!({ "correlationId": "conv-1" }));
        assert_eq!(connect["requestContext"]["connectedAt"], 1_707_503_007_396_i64);
        assert_eq!(connect["requestContext"]["requestTimeEpoch"], 1_707_503_007_398_i64);
        assert_eq!(connect["requestContext"]["requestTime"], "09/Feb/2024:18:23:27 +0000");
        assert_eq!(connect["requestContext"]["authorizer"]["principalId"], "u");
        let disconnect = handshake.disconnect_event(4000, "bye", "req2", now);
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 4000);
        assert_eq!(disconnect["requestContext"]["disconnectReason"], "bye");
        assert_eq!(disconnect["requestContext"]["eventType"], "DISCONNECT");
        let message = handshake.message_event("$default", "hi", "req3", now);
        assert_eq!(message["body"], "hi");
        assert_eq!(message["isBase64Encoded"], false);
        // The authorizer's output reaches every route of the connection, not only $connect.
        for event in [&connect, &disconnect, &message] {
            assert_eq!(event["requestContext"]["authorizer"], json!({ "principalId": "u", "tenant": "t" }));
        }
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("arn:*:x/*", "arn:aws:x/a/b"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(!glob("arn:aws:x", "arn:aws:xy"));
    }
}
