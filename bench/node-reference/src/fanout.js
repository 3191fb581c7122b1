// The original fan-out (docs/design.md §3) as a Node.js 20 + AWS SDK v3 function, for
// scripts/bench.sh fanout-cpu: the same job as WebSocketResponder's fan-out to a conversation —
// Query GSI1 pages of CONNECTED entries (1,000 per page, the same projection and filter), then one
// PostToConnection per connection with 32 in flight, the same JSON envelope — written the way a
// careful Node service would (clients at init, keep-alive, no per-post allocation beyond the
// command). Entry point: dist/fanout.cjs.

const { DynamoDBClient, QueryCommand } = require("@aws-sdk/client-dynamodb");
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require("@aws-sdk/client-apigatewaymanagementapi");

const table = process.env.TABLE_CONNECTIONS;
const inFlight = Number(process.env.FANOUT_CONCURRENCY ?? 32);
const dynamo = new DynamoDBClient({});
const clients = new Map();
const management = (endpoint) => {
  if (!clients.has(endpoint)) clients.set(endpoint, new ApiGatewayManagementApiClient({ endpoint }));
  return clients.get(endpoint);
};

async function* connected(conversationId) {
  let start;
  do {
    const page = await dynamo.send(
      new QueryCommand({
        TableName: table,
        IndexName: "GSI1",
        KeyConditionExpression: "#pk = :pk",
        FilterExpression: "#status = :connected",
        ProjectionExpression: "#connectionId, #apiId, #stage, #region",
        ExpressionAttributeNames: {
          "#pk": "gsi1pk", "#status": "status", "#connectionId": "connectionId",
          "#apiId": "apiId", "#stage": "stage", "#region": "region",
        },
        ExpressionAttributeValues: { ":pk": { S: `CONV#${conversationId}` }, ":connected": { S: "CONNECTED" } },
        Limit: 1000,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) yield item.connectionId.S;
    start = page.LastEvaluatedKey;
  } while (start);
}

exports.handler = async (event) => {
  const client = management(event.wsEndpoint);
  const data = Buffer.from(
    JSON.stringify({
      messageType: event.messageType,
      correlationId: event.correlationId ?? event.conversationId ?? null,
      sequence: event.sequence ?? null,
      isFinal: event.isFinal ?? false,
      payload: event.payload ?? null,
    }),
  );
  const counts = { posted: 0, gone: 0, failed: 0 };
  const running = new Set();
  const post = async (ConnectionId) => {
    try {
      await client.send(new PostToConnectionCommand({ ConnectionId, Data: data }));
      counts.posted += 1;
    } catch (error) {
      counts[error.name === "GoneException" ? "gone" : "failed"] += 1;
    }
  };
  for await (const id of connected(event.conversationId)) {
    const task = post(id).finally(() => running.delete(task));
    running.add(task);
    if (running.size >= inFlight) await Promise.race(running);
  }
  await Promise.all(running);
  return { statusCode: 200, ...counts };
};

require("./runtime.js").serve(exports.handler);
