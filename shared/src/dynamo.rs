//! The DynamoDB adapter of [`ConnectionStore`].
//!
//! How the writes keep docs/design.md §3's ordering promise with only `PutItem` for `$connect` and only
//! `UpdateItem` for `$disconnect`:
//! - `$connect` puts the record on condition `attribute_not_exists(pk)`, so it never overwrites.
//! - `$disconnect` is an upsert: on a missing record it creates a `DISCONNECTED` tombstone
//!   (key, status, times, TTL). A `$connect` that arrives later fails its condition and leaves
//!   the tombstone alone, so an overtaken connect never turns into a live `CONNECTED` record.
//!   The tombstone has no index keys, so fan-out never sees it.
//! - "Not found" is read from the old item `UpdateItem` returns: none, or one that never had a
//!   `connectedAt` (a repeated disconnect of a tombstone).
//!
//! Every call is bounded by the invocation's [`Deadline`]: its operation timeout is the time left
//! when it starts, and each attempt is cut so one stalled request is retried instead of eating the
//! whole budget: a write of one item at [`WRITE_ATTEMPT_TIMEOUT`], an index read at
//! [`ATTEMPT_TIMEOUT`] (or a third of the time left, if longer). Retries (throttling, 5xx, resets, cut attempts)
//! use the SDK's standard strategy, up to [`MAX_ATTEMPTS`], and stop when the budget does.

pub(crate) mod membership;
pub(crate) mod stream;

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use chrono::{DateTime, Utc};

use crate::clock::iso_millis;
use crate::deadline::Deadline;
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::record::{ConnectionRecord, ConnectionStatus, Disconnection, Route, Tombstone, attr, keys};
use crate::store::{
    Audience, AudienceIndex, ConnectionStore, DisconnectOutcome, Existing, ExpiredPage, GoneOutcome, LiveConnection,
    Member, Page, Part, PutOutcome, StoreError,
};

/// The least time one attempt may take before it is cut and retried. DynamoDB answers in
/// milliseconds; an attempt still open after this (or after a third of the time left, when that
/// is longer) is stalled, and a retry is the better bet. The third keeps a slow but working store
/// (an emulator reading a large index) from having every attempt cut.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one attempt of a write of one item (`PutItem`, `UpdateItem`) may take before it is cut
/// and tried again. DynamoDB answers a single-item write in milliseconds; a write still open after
/// this is stalled. Short, because the conditional writes are safe to repeat and the time left
/// must hold many tries: the fault suite found a `$connect` whose stalled attempts, cut
/// only after a second each, used up the time it needed to settle its outcome, and a
/// `$disconnect` that three stalls in a row made answer 500.
pub const WRITE_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);
/// Attempts per call (the SDK's default is 3); the deadline usually ends retries first.
pub const MAX_ATTEMPTS: u32 = 5;
/// Below this, a call is not started: it could not finish.
const MIN_CALL: Duration = Duration::from_millis(5);

/// The call could not start: the invocation's budget is spent.
#[derive(Debug, thiserror::Error)]
#[error("no time left before the invocation's deadline")]
pub struct NoTimeLeft;

/// DynamoDB's 4xx codes that a later attempt may not get: throttling and transient conflicts.
const TRANSIENT_CODES: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "LimitExceededException",
];

/// True when DynamoDB answered with a client error that no retry will change (so the call
/// certainly did nothing). Timeouts, broken connections, 5xx and throttling are not.
fn is_permanent<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.raw().status().is_client_error()
                && !service.err().code().is_some_and(|code| TRANSIENT_CODES.contains(&code))
        }
        SdkError::ConstructionFailure(_) => true,
        _ => false,
    }
}

/// What a call touches, for how long its attempts may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// One item by its key: attempts cut at [`WRITE_ATTEMPT_TIMEOUT`].
    Item,
    /// A page of an index: attempts cut at [`ATTEMPT_TIMEOUT`] or a third of the time left.
    Index,
}

/// Timeouts of one call that starts now, with `budget` left (the retry strategy is the client's,
/// set once in [`DynamoStore::new`] or [`DynamoStore::from_sdk`]).
fn bounded(budget: Duration, call: Call) -> aws_sdk_dynamodb::config::Builder {
    let attempt = match call {
        Call::Item => WRITE_ATTEMPT_TIMEOUT,
        Call::Index => ATTEMPT_TIMEOUT.max(budget / 3),
    };
    aws_sdk_dynamodb::Config::builder().timeout_config(
        TimeoutConfig::builder().operation_timeout(budget).operation_attempt_timeout(budget.min(attempt)).build(),
    )
}

/// The connections table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// `$connect` writes a connection's GSI4 entry (a broadcast's listing); off with
    /// `BROADCAST=false` ([`DynamoStore::without_live_index`]).
    live_index: bool,
}

impl DynamoStore {
    /// The table `table` through `client`, which gets this adapter's retry strategy (once, here:
    /// each call then only sets its timeouts).
    pub fn new(client: &Client, table: impl Into<String>) -> Self {
        Self::with_retry(client.config().to_builder(), table)
    }

    /// The table `table` with a client built once from `sdk` (what a function's `main` does), in
    /// `TABLE_REGION` when set (see [`crate::config::table_region`]), else in the function's region.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>, region: Option<String>) -> Self {
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(region) = region {
            config = config.region(aws_config::Region::new(region));
        }
        Self::with_retry(config, table)
    }

    /// The client `config` builds, with this adapter's retries: the SDK's standard strategy, up
    /// to [`MAX_ATTEMPTS`], short backoffs (the invocation's deadline usually ends them first).
    fn with_retry(config: aws_sdk_dynamodb::config::Builder, table: impl Into<String>) -> Self {
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(500));
        Self { client: Client::from_conf(config.retry_config(retry).build()), table: table.into(), live_index: true }
    }

    /// New records get no GSI4 entry (`BROADCAST=false`): the table's writes are what they were
    /// before broadcasts, and no broadcast reaches these connections.
    #[must_use]
    pub fn without_live_index(mut self) -> Self {
        self.live_index = false;
        self
    }

    /// The SDK client (with this adapter's retries) and the table it writes.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn error(&self, operation: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError { operation, table: self.table.clone(), permanent: false, source: Box::new(source) }
    }

    /// A failed SDK call; `permanent` when DynamoDB refused it for a reason a retry cannot change.
    fn sdk_error<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let permanent = is_permanent(&err);
        StoreError { permanent, ..self.error(operation, err) }
    }

    /// The config override for a call starting now, or an error when no time is left for one.
    fn budget(
        &self,
        operation: &'static str,
        call: Call,
        deadline: &Deadline,
    ) -> Result<aws_sdk_dynamodb::config::Builder, StoreError> {
        let budget = deadline.budget();
        if budget < MIN_CALL {
            return Err(self.error(operation, NoTimeLeft));
        }
        Ok(bounded(budget, call))
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The primary key of a connection's record.
pub fn key(connection_id: &ConnectionId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (keys::PK.to_owned(), s(keys::connection(connection_id))),
        (keys::SK.to_owned(), s(keys::CONNECTION_SK)),
    ])
}

/// The item `$connect` writes. Absent optional values are absent attributes (GSI2 is sparse:
/// no user, no `gsi2pk`).
pub fn record_item(record: &ConnectionRecord) -> HashMap<String, AttributeValue> {
    let mut item = key(&record.connection_id);
    let conn_key = keys::connection(&record.connection_id);
    item.insert(keys::GSI1PK.into(), s(keys::conversation(&record.conversation_id)));
    item.insert(keys::GSI1SK.into(), s(conn_key.clone()));
    if let Some(user) = &record.user_id {
        item.insert(keys::GSI2PK.into(), s(keys::user(user)));
        item.insert(keys::GSI2SK.into(), s(conn_key));
        item.insert(attr::USER_ID.into(), s(user.as_str()));
    }
    item.insert(attr::CONNECTION_ID.into(), s(record.connection_id.as_str()));
    item.insert(attr::CONVERSATION_ID.into(), s(record.conversation_id.as_str()));
    item.insert(attr::STATUS.into(), s(ConnectionStatus::Connected.as_str()));
    item.insert(attr::CONNECTED_AT.into(), s(iso_millis(record.connected_at)));
    item.insert(attr::UPDATED_AT.into(), s(iso_millis(record.updated_at)));
    let optional = [
        (attr::IP, &record.ip),
        (attr::USER_AGENT, &record.user_agent),
        (attr::DOMAIN_NAME, &record.domain_name),
        (attr::STAGE, &record.stage),
        (attr::API_ID, &record.api_id),
        (attr::REGION, &record.region),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value.as_str()));
        }
    }
    item.insert(keys::GSI4PK.into(), s(keys::live_partition(keys::live_shard(&record.connection_id))));
    item.insert(keys::GSI4SK.into(), s(keys::connection(&record.connection_id)));
    if let Some(exp) = record.token_expires_at {
        item.insert(attr::TOKEN_EXP.into(), n(exp));
        item.insert(keys::GSI3PK.into(), s(keys::expiry_partition(keys::expiry_shard(&record.connection_id))));
        item.insert(keys::GSI3SK.into(), s(keys::expiry_sort(exp, &record.connection_id)));
    }
    item.insert(attr::TTL.into(), n(record.expires_at.timestamp()));
    item
}

/// The item a failed `$connect` leaves: key, status, times and TTL, no index keys.
pub fn tombstone_item(tombstone: &Tombstone) -> HashMap<String, AttributeValue> {
    let mut item = key(&tombstone.connection_id);
    let at = iso_millis(tombstone.at);
    item.insert(attr::CONNECTION_ID.into(), s(tombstone.connection_id.as_str()));
    item.insert(attr::STATUS.into(), s(ConnectionStatus::Disconnected.as_str()));
    item.insert(attr::DISCONNECTED_AT.into(), s(at.clone()));
    item.insert(attr::UPDATED_AT.into(), s(at));
    item.insert(attr::TTL.into(), n(tombstone.expires_at.timestamp()));
    item
}

/// What an item that blocked a put is: a connection `$connect` wrote has a `connectedAt`.
pub fn existing<H: std::hash::BuildHasher>(item: Option<&HashMap<String, AttributeValue, H>>) -> Existing {
    match item {
        Some(item) if item.contains_key(attr::CONNECTED_AT) => Existing::Connection,
        Some(item) if item.contains_key(keys::PK) => Existing::Tombstone,
        _ => Existing::Unknown,
    }
}

/// The route of an item, when it names its API, stage and region.
pub fn route_of<H: std::hash::BuildHasher>(item: &HashMap<String, AttributeValue, H>) -> Option<Route> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(Route { api_id: text(attr::API_ID)?, stage: text(attr::STAGE)?, region: text(attr::REGION)? })
}

/// The routes of the listed items that have one, by connection.
fn routes(items: &[HashMap<String, AttributeValue>]) -> HashMap<ConnectionId, Route> {
    items
        .iter()
        .filter_map(|item| {
            let id = ConnectionId::parse(item.get(attr::CONNECTION_ID)?.as_s().ok()?.as_str()).ok()?;
            Some((id, route_of(item)?))
        })
        .collect()
}

/// Whose each listed connection is and since when (what a presence query reads), by connection.
pub(crate) fn members(
    items: &[impl std::borrow::Borrow<HashMap<String, AttributeValue>>],
) -> HashMap<ConnectionId, Member> {
    items
        .iter()
        .filter_map(|item| {
            let item = item.borrow();
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let id = ConnectionId::parse(text(attr::CONNECTION_ID)?).ok()?;
            let user_id = text(attr::USER_ID).and_then(|u| UserId::parse(u).ok());
            Some((id, Member { user_id, connected_at: text(attr::CONNECTED_AT) }))
        })
        .collect()
}

/// A stored item that does not have the shape this code writes.
#[derive(Debug, thiserror::Error)]
#[error("malformed item: {0}")]
pub struct MalformedItem(pub &'static str);

impl DynamoStore {
    /// Puts `item` only if no record has its key.
    async fn put_new(
        &self,
        item: HashMap<String, AttributeValue>,
        deadline: &Deadline,
    ) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .customize()
            .config_override(self.budget("PutItem", Call::Item, deadline)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(PutOutcome::AlreadyExists(existing(failed.item())))
                }
                _ => Err(self.sdk_error("PutItem", err)),
            },
        }
    }
}

/// What a listing reads of each index entry: the connection and where it lives.
const LISTED: &str = "#connectionId, #apiId, #stage, #region, #userId, #connectedAt";

impl DynamoStore {
    /// A page of at most `limit` entries of `index` that keeps `CONNECTED` ones, with the names
    /// [`LISTED`] uses; the caller adds the key condition, the projection and the start.
    fn connected_query(
        &self,
        index: &str,
        limit: u32,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1))
            .filter_expression("#status = :connected")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#connectionId", attr::CONNECTION_ID)
            .expression_attribute_names("#apiId", attr::API_ID)
            .expression_attribute_names("#stage", attr::STAGE)
            .expression_attribute_names("#region", attr::REGION)
            .expression_attribute_names("#userId", attr::USER_ID)
            .expression_attribute_names("#connectedAt", attr::CONNECTED_AT)
            .expression_attribute_values(":connected", s(ConnectionStatus::Connected.as_str()))
    }

    /// The outcome of an update conditional on the record being `CONNECTED`: a failed
    /// condition is `NotConnected`, not an error.
    fn while_connected<O>(
        &self,
        result: Result<O, SdkError<UpdateItemError, HttpResponse>>,
    ) -> Result<GoneOutcome, StoreError> {
        match result {
            Ok(_) => Ok(GoneOutcome::Marked),
            Err(err) if err.as_service_error().is_some_and(UpdateItemError::is_conditional_check_failed_exception) => {
                Ok(GoneOutcome::NotConnected)
            }
            Err(err) => Err(self.sdk_error("UpdateItem", err)),
        }
    }
}

/// The connection an item records, while it is `CONNECTED`.
pub fn live_connection_of<H: std::hash::BuildHasher>(
    item: &HashMap<String, AttributeValue, H>,
) -> Option<LiveConnection> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    if text(attr::STATUS).map(String::as_str) != Some(ConnectionStatus::Connected.as_str()) {
        return None;
    }
    Some(LiveConnection {
        conversation_id: ConversationId::parse(text(attr::CONVERSATION_ID)?.as_str()).ok()?,
        user_id: text(attr::USER_ID).and_then(|u| UserId::parse(u.as_str()).ok()),
    })
}

impl ConnectionStore for DynamoStore {
    async fn live_connection(
        &self,
        connection_id: &ConnectionId,
        deadline: &Deadline,
    ) -> Result<Option<LiveConnection>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_id)))
            .consistent_read(true)
            .projection_expression("#status, #conversationId, #userId")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#conversationId", attr::CONVERSATION_ID)
            .expression_attribute_names("#userId", attr::USER_ID)
            .customize()
            .config_override(self.budget("GetItem", Call::Item, deadline)?)
            .send()
            .await
            .map_err(|err| self.sdk_error("GetItem", err))?;
        Ok(output.item().and_then(live_connection_of))
    }

    async fn put_connection(&self, record: &ConnectionRecord, deadline: &Deadline) -> Result<PutOutcome, StoreError> {
        let mut item = record_item(record);
        if !self.live_index {
            item.remove(keys::GSI4PK);
            item.remove(keys::GSI4SK);
        }
        self.put_new(item, deadline).await
    }

    async fn put_tombstone(&self, tombstone: &Tombstone, deadline: &Deadline) -> Result<PutOutcome, StoreError> {
        self.put_new(tombstone_item(tombstone), deadline).await
    }

    async fn mark_disconnected(&self, d: &Disconnection, deadline: &Deadline) -> Result<DisconnectOutcome, StoreError> {
        let now = iso_millis(d.at);
        // Every name goes through a placeholder: `status` and `ttl` are reserved words.
        let mut sets = vec![
            "#status = :disconnected",
            "#connectionId = :connectionId",
            "#updatedAt = :now",
            "#disconnectedAt = if_not_exists(#disconnectedAt, :now)",
            "#ttl = if_not_exists(#ttl, :ttl)",
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&d.connection_id)))
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#connectionId", attr::CONNECTION_ID)
            .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
            .expression_attribute_names("#disconnectedAt", attr::DISCONNECTED_AT)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":disconnected", s(ConnectionStatus::Disconnected.as_str()))
            .expression_attribute_values(":connectionId", s(d.connection_id.as_str()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":ttl", n(d.expires_at.timestamp()))
            .return_values(ReturnValue::AllOld);
        // The close code and reason of the first disconnect win, like its time.
        if let Some(code) = d.close_code {
            sets.push("#closeCode = if_not_exists(#closeCode, :closeCode)");
            request = request
                .expression_attribute_names("#closeCode", attr::CLOSE_CODE)
                .expression_attribute_values(":closeCode", n(code));
        }
        if let Some(reason) = &d.close_reason {
            sets.push("#closeReason = if_not_exists(#closeReason, :closeReason)");
            request = request
                .expression_attribute_names("#closeReason", attr::CLOSE_REASON)
                .expression_attribute_values(":closeReason", s(reason.as_str()));
        }
        // A closed connection leaves GSI3 and GSI4, so the expiry sweep and a broadcast read only
        // live ones.
        let output = request
            .expression_attribute_names("#gsi3pk", keys::GSI3PK)
            .expression_attribute_names("#gsi3sk", keys::GSI3SK)
            .expression_attribute_names("#gsi4pk", keys::GSI4PK)
            .expression_attribute_names("#gsi4sk", keys::GSI4SK)
            .update_expression(format!("SET {} REMOVE #gsi3pk, #gsi3sk, #gsi4pk, #gsi4sk", sets.join(", ")))
            .customize()
            .config_override(self.budget("UpdateItem", Call::Item, deadline)?)
            .send()
            .await
            .map_err(|err| self.sdk_error("UpdateItem", err))?;
        let was_connected = output.attributes().is_some_and(|old| old.contains_key(attr::CONNECTED_AT));
        Ok(if was_connected { DisconnectOutcome::Disconnected } else { DisconnectOutcome::NotFound })
    }

    async fn connected_page(
        &self,
        audience: &Audience,
        part: Part,
        after: Option<&ConnectionId>,
        limit: u32,
        deadline: &Deadline,
    ) -> Result<Page, StoreError> {
        let AudienceIndex { index, pk_name, sk_name, pk } = audience.index(part.shard);
        // An index's start key holds the index keys and the table keys of the last item read;
        // all of them follow from the audience and the connection id.
        let start = after.map(|id| {
            let mut start = key(id);
            start.insert(pk_name.to_owned(), s(pk.clone()));
            start.insert(sk_name.to_owned(), s(keys::connection(id)));
            start
        });
        let mut query = self.connected_query(index, limit);
        query = if part.segment.is_whole() {
            query.key_condition_expression("#pk = :pk")
        } else {
            // The segment's key range: one Query per partition reads its share and no other's.
            let (low, high) = part.segment.sort_key_range();
            query
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":low", s(low))
                .expression_attribute_values(":high", s(high))
        };
        let output = query
            .projection_expression(LISTED)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start)
            .customize()
            .config_override(self.budget("Query", Call::Index, deadline)?)
            .send()
            .await
            .map_err(|err| self.sdk_error("Query", err))?;
        // Every stored id was validated by $connect; one that no longer parses is skipped, not
        // allowed to fail the whole fan-out.
        let ids = output
            .items()
            .iter()
            .filter_map(|item| item.get(attr::CONNECTION_ID)?.as_s().ok())
            .filter_map(|raw| {
                ConnectionId::parse(raw.as_str())
                    .inspect_err(|err| tracing::warn!(error = %err, "skipping a stored connection id"))
                    .ok()
            })
            .collect();
        let resume_after = output
            .last_evaluated_key()
            .map(|last| {
                last.get(keys::PK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|pk| keys::connection_of(pk))
                    .ok_or_else(|| self.error("Query", MalformedItem("the last evaluated key has no CONN# pk")))
            })
            .transpose()?;
        Ok(Page { ids, routes: routes(output.items()), members: members(output.items()), resume_after })
    }

    async fn expired_page(
        &self,
        shard: u8,
        now: i64,
        after: Option<&str>,
        limit: u32,
        deadline: &Deadline,
    ) -> Result<ExpiredPage, StoreError> {
        let partition = keys::expiry_partition(shard);
        let start = after
            .map(|sort| {
                let id = keys::connection_of_expiry(sort)
                    .ok_or_else(|| self.error("Query", MalformedItem("not a GSI3 sort key to resume after")))?;
                let mut start = key(&id);
                start.insert(keys::GSI3PK.to_owned(), s(partition.clone()));
                start.insert(keys::GSI3SK.to_owned(), s(sort));
                Ok(start)
            })
            .transpose()?;
        let output = self
            .connected_query(keys::GSI3, limit)
            .key_condition_expression("#pk = :pk AND #sk < :cutoff")
            .projection_expression(format!("{LISTED}, #sk"))
            .expression_attribute_names("#pk", keys::GSI3PK)
            .expression_attribute_names("#sk", keys::GSI3SK)
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":cutoff", s(keys::expiry_cutoff(now)))
            .set_exclusive_start_key(start)
            .customize()
            .config_override(self.budget("Query", Call::Index, deadline)?)
            .send()
            .await
            .map_err(|err| self.sdk_error("Query", err))?;
        let entries = output
            .items()
            .iter()
            .filter_map(|item| {
                let sort = item.get(keys::GSI3SK)?.as_s().ok()?;
                Some((keys::connection_of_expiry(sort)?, sort.clone()))
            })
            .collect();
        let resume_after = output
            .last_evaluated_key()
            .map(|last| {
                last.get(keys::GSI3SK)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| self.error("Query", MalformedItem("the last evaluated key has no gsi3sk")))
            })
            .transpose()?;
        Ok(ExpiredPage { entries, routes: routes(output.items()), resume_after })
    }

    async fn note_closing(
        &self,
        connection_id: &ConnectionId,
        reason: &str,
        at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> Result<GoneOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_id)))
            .condition_expression("attribute_exists(#pk) AND #status = :connected")
            .update_expression("SET #closeReason = if_not_exists(#closeReason, :reason), #updatedAt = :now")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#closeReason", attr::CLOSE_REASON)
            .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
            .expression_attribute_values(":connected", s(ConnectionStatus::Connected.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(iso_millis(at)))
            .customize()
            .config_override(self.budget("UpdateItem", Call::Item, deadline)?)
            .send()
            .await;
        self.while_connected(result)
    }

    async fn mark_gone(
        &self,
        connection_id: &ConnectionId,
        via: Option<&Route>,
        at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> Result<GoneOutcome, StoreError> {
        // Only a 410 from the connection's own API says it is gone (another region's API, or
        // another stage, answers 410 for a connection it never had).
        let own_api = if via.is_some() {
            "(attribute_not_exists(#apiId) OR (#apiId = :apiId AND #region = :region AND #stage = :stage))"
        } else {
            "attribute_not_exists(#apiId)"
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_id)))
            .condition_expression(format!("attribute_exists(#pk) AND #status = :connected AND {own_api}"))
            .update_expression("SET #status = :gone, #updatedAt = :now REMOVE #gsi3pk, #gsi3sk, #gsi4pk, #gsi4sk")
            .expression_attribute_names("#gsi3pk", keys::GSI3PK)
            .expression_attribute_names("#gsi3sk", keys::GSI3SK)
            .expression_attribute_names("#gsi4pk", keys::GSI4PK)
            .expression_attribute_names("#gsi4sk", keys::GSI4SK)
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
            .expression_attribute_names("#apiId", attr::API_ID)
            .expression_attribute_values(":connected", s(ConnectionStatus::Connected.as_str()))
            .expression_attribute_values(":gone", s(ConnectionStatus::Gone.as_str()))
            .expression_attribute_values(":now", s(iso_millis(at)));
        if let Some(route) = via {
            request = request
                .expression_attribute_names("#region", attr::REGION)
                .expression_attribute_names("#stage", attr::STAGE)
                .expression_attribute_values(":apiId", s(route.api_id.as_str()))
                .expression_attribute_values(":region", s(route.region.as_str()))
                .expression_attribute_values(":stage", s(route.stage.as_str()));
        }
        let result = request.customize().config_override(self.budget("UpdateItem", Call::Item, deadline)?).send().await;
        self.while_connected(result)
    }
}
