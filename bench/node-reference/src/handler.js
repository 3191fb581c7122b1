// The original $connect (docs/design.md §3) as a Node.js 20 + AWS SDK v3 function: the
// same item, the same condition and the same answer as ConnectFunction's, so that
// scripts/bench.sh coldstart compares runtimes and SDKs, not two different jobs.

const { randomUUID } = require("node:crypto");
const { DynamoDBClient, PutItemCommand } = require("@aws-sdk/client-dynamodb");

const table = process.env.TABLE_CONNECTIONS;
const ttlMinutes = Number(process.env.CONNECTION_TTL_MINUTES ?? 180);
// Created at init, as the original does: the SDK's client outside the handler.
const client = new DynamoDBClient({});

const first = (...values) => values.find((v) => typeof v === "string" && v.length > 0);

exports.handler = async (event) => {
  const context = event.requestContext ?? {};
  const query = event.queryStringParameters ?? {};
  const authorizer = context.authorizer ?? {};
  const connectionId = context.connectionId;
  const conversationId =
    first(query.correlationId, query.conversationId, authorizer.conversationId, authorizer.correlationId) ??
    `conv-${randomUUID()}`;
  const userId = first(authorizer.principalId, authorizer.userId);
  const now = Date.now();
  const connectedAt = context.connectedAt ?? now;
  const item = {
    pk: { S: `CONN#${connectionId}` },
    sk: { S: "CONNECTION" },
    connectionId: { S: connectionId },
    conversationId: { S: conversationId },
    status: { S: "CONNECTED" },
    connectedAt: { S: new Date(connectedAt).toISOString() },
    updatedAt: { S: new Date(now).toISOString() },
    ttl: { N: String(Math.floor(connectedAt / 1000) + ttlMinutes * 60) },
    gsi1pk: { S: `CONV#${conversationId}` },
    gsi1sk: { S: `CONN#${connectionId}` },
  };
  if (userId) {
    item.userId = { S: userId };
    item.gsi2pk = { S: `USER#${userId}` };
    item.gsi2sk = { S: `CONN#${connectionId}` };
  }
  if (context.identity?.sourceIp) item.ip = { S: context.identity.sourceIp };
  if (context.identity?.userAgent) item.userAgent = { S: context.identity.userAgent };
  if (context.domainName) item.domainName = { S: context.domainName };
  if (context.stage) item.stage = { S: context.stage };
  try {
    await client.send(
      new PutItemCommand({
        TableName: table,
        Item: item,
        ConditionExpression: "attribute_not_exists(#pk)",
        ExpressionAttributeNames: { "#pk": "pk" },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
  } catch (error) {
    if (error.name === "ConditionalCheckFailedException") {
      console.log(JSON.stringify({ level: "WARN", svc: "ws-connect", msg: "already recorded", connectionId }));
      return { statusCode: 200, body: "Connected" };
    }
    console.log(JSON.stringify({ level: "ERROR", svc: "ws-connect", msg: "put failed", connectionId, error: error.message }));
    return { statusCode: 500, body: "Internal Server Error" };
  }
  console.log(JSON.stringify({ level: "INFO", svc: "ws-connect", msg: "connected", connectionId, conversationId, userId }));
  return { statusCode: 200, body: "Connected" };
};
