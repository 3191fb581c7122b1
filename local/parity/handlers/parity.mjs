// The parity suite's functions, run by ./bootstrap (a Node custom runtime) under ws-local. Each
// case of parity.test.mjs says which one it exercises and what API Gateway does with its answer.

/** $connect: `?status=N` answers that status (a non-2xx refuses the handshake), `?fail=1` throws. */
export async function connect(event) {
  const query = event.queryStringParameters ?? {};
  if (query.fail) throw new Error("connect failed on purpose");
  return { statusCode: Number(query.status ?? 200) };
}

/** $disconnect: logs what the connection's authorizer said (the suite reads ws-local's output). */
export async function disconnect(event) {
  console.log(`disconnect ${event.requestContext.disconnectStatusCode} authorizer ${JSON.stringify(event.requestContext.authorizer ?? null)}`);
  return { statusCode: 200 };
}

/**
 * $default, two-way: echoes the body; `throw` throws (API Gateway's `Internal server error`
 * frame); `authorizer` answers what the connection's authorizer said.
 */
export async function echo(event) {
  if (event.body === "throw") throw new Error("asked to throw");
  if (event.body === "authorizer") return { statusCode: 200, body: JSON.stringify(event.requestContext.authorizer ?? null) };
  return { statusCode: 200, body: event.body };
}

/** A one-way route: its answer must never reach the client. */
export async function oneWay() {
  return { statusCode: 200, body: "a one-way route's answer, never sent" };
}

/** A two-way custom route (chosen by `action`): answers its route key and the principal. */
export async function whoami(event) {
  return { statusCode: 200, body: `${event.requestContext.routeKey} ${event.requestContext.authorizer?.principalId}` };
}

/** A two-way route chosen by a custom route selection expression. */
export async function picked(event) {
  return { statusCode: 200, body: `picked ${event.requestContext.routeKey}: ${event.body}` };
}

/**
 * The REQUEST authorizer, by `?auth=`: `allow` (no context), `context` (the query strings it
 * received as context), `deny` (a Deny policy), `unauthorized` (the `Unauthorized` error),
 * `crash` (any other error).
 */
export async function authorize(event) {
  const query = event.queryStringParameters ?? {};
  const policy = (effect) => ({
    principalId: "user-1",
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: event.methodArn }],
    },
  });
  switch (query.auth) {
    case "allow":
      return policy("Allow");
    case "context":
      return {
        ...policy("Allow"),
        context: {
          query: JSON.stringify(event.queryStringParameters),
          multi: JSON.stringify(event.multiValueQueryStringParameters),
          number: 42,
          flag: true,
        },
      };
    case "deny":
      return policy("Deny");
    case "unauthorized":
      throw new Error("Unauthorized");
    default:
      throw new Error(`authorizer crashed on purpose (auth=${query.auth})`);
  }
}
