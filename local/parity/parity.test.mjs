// ws-local against API Gateway's documented WebSocket behaviour, from outside: the handlers are
// Node functions behind a custom runtime (./bootstrap, named by "executable" in manifest.json),
// the client is the npm `ws` package, and ws-local is the built binary. The cases follow
// serverless-offline's WebSocket integration suites (websocket-oneway, websocket-twoway,
// websocket-authorizer), rewritten here, plus API Gateway behaviours those suites do not cover.
// Each case names the AWS page it follows, and the suite it comes from when it does.
//
//   npm ci --prefix local/parity && node --test local/parity/   (scripts/test.sh does both)

import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { closed, nextMessage, open, sleep, useWsLocal } from "./support.mjs";

const here = path.dirname(new URL(import.meta.url).pathname);

describe("ws-local behaves as API Gateway", () => {
  const local = useWsLocal(["--manifest", path.join(here, "manifest.json")]);
  const url = (query) => `${local.websocket}?${query}`;
  const connected = async (query = "auth=allow") => {
    const { socket, status } = await open(url(query));
    assert.ok(socket, `the handshake was refused with ${status}`);
    return socket;
  };

  // serverless-offline websocket-oneway. A route without a route response sends nothing back:
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html
  test("one-way: a route without a route response sends nothing back", async () => {
    const socket = await connected();
    socket.send(JSON.stringify({ action: "oneway", n: 1 }));
    await sleep(700);
    assert.deepEqual(socket.received, []);
    socket.send("still open");
    assert.equal(await nextMessage(socket), "still open");
    socket.close();
  });

  // serverless-offline websocket-twoway "echos sent message". A two-way route returns the
  // integration's body to the client (same page as above).
  test("two-way: $default with a route response echoes", async () => {
    const socket = await connected();
    const payload = JSON.stringify({ hello: "world", now: new Date().toISOString() });
    socket.send(payload);
    assert.equal(await nextMessage(socket), payload);
    socket.close();
  });

  // serverless-offline websocket-twoway's $connect status cases. A $connect integration that
  // answers a non-2xx status refuses the connection with it:
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html
  for (const status of [401, 500, 501, 502]) {
    test(`$connect answering ${status} refuses the handshake with ${status}`, async () => {
      const refused = await open(url(`auth=allow&status=${status}`));
      assert.equal(refused.status, status);
    });
  }

  // serverless-offline websocket-twoway "handler error". A failed integration on a message
  // route gives the client API Gateway's error frame, and the connection stays open:
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-integration-responses.html
  test("a handler error gives the client the Internal server error frame", async () => {
    const socket = await connected();
    socket.send("throw");
    const frame = JSON.parse(await nextMessage(socket));
    assert.equal(frame.message, "Internal server error");
    assert.match(frame.connectionId, /\S/);
    assert.match(frame.requestId, /\S/);
    socket.send("after the error");
    assert.equal(await nextMessage(socket), "after the error");
    socket.close();
  });

  // serverless-offline websocket-authorizer "allow without context". The authorizer's
  // principalId reaches the integrations as requestContext.authorizer:
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html
  test("authorizer allow without context: the principal reaches the routes", async () => {
    const socket = await connected("auth=allow");
    socket.send("authorizer");
    const authorizer = JSON.parse(await nextMessage(socket));
    assert.equal(authorizer.principalId, "user-1");
    assert.equal(typeof authorizer.integrationLatency, "number");
    socket.close();
  });

  // serverless-offline websocket-authorizer "allow with context", on $default, a custom route
  // and $disconnect: the authorizer runs on $connect only and its output holds for every route
  // of the connection ($context.authorizer.*):
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html
  test("authorizer allow with context: $default, a custom route and $disconnect all get it", async () => {
    const socket = await connected("auth=context");
    socket.send("authorizer");
    const authorizer = JSON.parse(await nextMessage(socket));
    assert.equal(authorizer.principalId, "user-1");
    assert.equal(String(authorizer.number), "42");
    assert.equal(String(authorizer.flag), "true");
    socket.send(JSON.stringify({ action: "whoami" }));
    assert.equal(await nextMessage(socket), "whoami user-1");
    socket.close(4001, "bye");
    const line = await local.waitForLine(/\[Disconnect\] disconnect 4001 authorizer /);
    assert.match(line, /"principalId":"user-1"/);
    assert.match(line, /"number":"?42"?/);
  });

  // serverless-offline websocket-authorizer "deny". A Deny policy refuses with 403 (same page
  // as the authorizer cases).
  test("authorizer deny refuses the handshake with 403", async () => {
    assert.equal((await open(url("auth=deny"))).status, 403);
  });

  // serverless-offline websocket-authorizer "crash". An authorizer that fails (any error but
  // `Unauthorized`) is a 500.
  test("an authorizer that crashes refuses the handshake with 500", async () => {
    assert.equal((await open(url("auth=crash"))).status, 500);
  });

  // serverless-offline websocket-authorizer "Unauthorized". The `Unauthorized` error is 401.
  test("an authorizer's Unauthorized error refuses the handshake with 401", async () => {
    assert.equal((await open(url("auth=unauthorized"))).status, 401);
  });

  // A missing identity source is 401 without calling the authorizer (the identity sources of
  // a REQUEST authorizer must all be present), so nothing reaches Authorize.
  test("a missing identity source is 401 and the authorizer is not called", async () => {
    const before = local.lines.filter((l) => l.includes("[Authorize] START")).length;
    assert.equal((await open(url("status=200"))).status, 401);
    assert.equal(local.lines.filter((l) => l.includes("[Authorize] START")).length, before);
  });

  // API Gateway accepts text frames only and disconnects a binary frame with 1003:
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html
  // (Not in serverless-offline's suites; ws-local used to route the frame to $default.)
  test("a binary frame closes the connection with 1003", async () => {
    const socket = await connected();
    const closing = closed(socket);
    socket.send(Buffer.from([0, 1, 2]), { binary: true });
    assert.deepEqual(await closing, { code: 1003, reason: "Binary frames are not supported" });
  });

  // A plain HTTP request to the stage is not a WebSocket handshake: 426 Upgrade Required.
  test("a plain HTTP GET of the stage is 426", async () => {
    const response = await fetch(local.websocket.replace("ws://", "http://"));
    assert.equal(response.status, 426);
  });

  // Query strings reach the authorizer (and $connect) as queryStringParameters (the last value
  // of a repeated name) and multiValueQueryStringParameters (all of them, in order), the
  // REQUEST authorizer's input on the authorizer page.
  test("query strings arrive single- and multi-valued", async () => {
    const socket = await connected("auth=context&tag=a&tag=b&name=J%C3%BAlia");
    socket.send("authorizer");
    const authorizer = JSON.parse(await nextMessage(socket));
    assert.deepEqual(JSON.parse(authorizer.query), { auth: "context", tag: "b", name: "Júlia" });
    assert.deepEqual(JSON.parse(authorizer.multi), { auth: ["context"], tag: ["a", "b"], name: ["Júlia"] });
    socket.close();
  });

  // The Management API: POST sends, GET describes, DELETE disconnects; any of them on a closed
  // connection is 410 GoneException:
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html
  test("@connections POST, GET and DELETE, then 410 after the close", async () => {
    const socket = await connected();
    // The client learns its connection id from API Gateway's error frame.
    socket.send("throw");
    const { connectionId } = JSON.parse(await nextMessage(socket));
    const connection = `${local.base}/local/@connections/${encodeURIComponent(connectionId)}`;

    const posted = await fetch(connection, { method: "POST", body: "pushed by the backend" });
    assert.equal(posted.status, 200);
    assert.equal(await nextMessage(socket), "pushed by the backend");

    const described = await fetch(connection);
    assert.equal(described.status, 200);
    const description = await described.json();
    assert.equal(description.identity.sourceIp, "127.0.0.1");
    assert.ok(Date.parse(description.connectedAt) <= Date.parse(description.lastActiveAt));

    const closing = closed(socket);
    assert.equal((await fetch(connection, { method: "DELETE" })).status, 204);
    assert.equal((await closing).code, 1000);

    for (const method of ["POST", "GET", "DELETE"]) {
      const gone = await fetch(connection, { method, body: method === "POST" ? "too late" : undefined });
      assert.equal(gone.status, 410, method);
      assert.equal(gone.headers.get("x-amzn-errortype"), "GoneException", method);
    }
  });
});

// The route selection expression is the API's choice ($request.body.<path>):
// https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html
describe("a custom route selection expression", () => {
  const local = useWsLocal(["--manifest", path.join(here, "manifest.custom-selection.json")]);

  test("$request.body.meta.route picks the route; action means nothing", async () => {
    const { socket } = await open(`${local.websocket}?auth=allow`);
    const chosen = JSON.stringify({ meta: { route: "pick" }, n: 1 });
    socket.send(chosen);
    assert.equal(await nextMessage(socket), `picked pick: ${chosen}`);
    const plain = JSON.stringify({ action: "pick" });
    socket.send(plain);
    assert.equal(await nextMessage(socket), plain);
    socket.close();
  });
});
