//! The DynamoDB adapter of [`ConnectionStore`].
//!
//! How the writes keep DESIGN §3's ordering promise with only `PutItem` for `$connect` and only
//! `UpdateItem` for `$disconnect`:
//! - `$connect` puts the record on condition `attribute_not_exists(pk)`, so it never overwrites.
//! - `$disconnect` is an upsert: on a missing record it creates a `DISCONNECTED` tombstone
//!   (key, status, times, TTL). A `$connect` that arrives later fails its condition and leaves
//!   the tombstone alone, so an overtaken connect never turns into a live `CONNECTED` record.
//!   The tombstone has no index keys, so fan-out never sees it.
//! - "Not found" is read from the old item `UpdateItem` returns: none, or one that never had a
//!   `connectedAt` (a repeated disconnect of a tombstone).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use chrono::{DateTime, Utc};

use crate::clock::iso_millis;
use crate::id::ConnectionId;
use crate::record::{ConnectionRecord, ConnectionStatus, Disconnection, attr, keys};
use crate::store::{Audience, ConnectionStore, DisconnectOutcome, GoneOutcome, PutOutcome, StoreError};

/// The connections table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn error(&self, operation: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError { operation, table: self.table.clone(), source: Box::new(source) }
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
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value.as_str()));
        }
    }
    item.insert(attr::TTL.into(), n(record.expires_at.timestamp()));
    item
}

impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(record)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(err)
                if err.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(PutOutcome::AlreadyExists)
            }
            Err(err) => Err(self.error("PutItem", err)),
        }
    }

    async fn mark_disconnected(&self, d: &Disconnection) -> Result<DisconnectOutcome, StoreError> {
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
        let output = request
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(|err| self.error("UpdateItem", err))?;
        let was_connected = output.attributes().is_some_and(|old| old.contains_key(attr::CONNECTED_AT));
        Ok(if was_connected { DisconnectOutcome::Disconnected } else { DisconnectOutcome::NotFound })
    }

    async fn connected(&self, audience: &Audience) -> Result<Vec<ConnectionId>, StoreError> {
        let (index, pk_name, pk) = match audience {
            Audience::Conversation(id) => (keys::GSI1, keys::GSI1PK, keys::conversation(id)),
            Audience::User(id) => (keys::GSI2, keys::GSI2PK, keys::user(id)),
        };
        let items: Vec<HashMap<String, AttributeValue>> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .filter_expression("#status = :connected")
            .projection_expression("#connectionId")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#connectionId", attr::CONNECTION_ID)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":connected", s(ConnectionStatus::Connected.as_str()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|err| self.error("Query", err))?;
        // Every stored id was validated by $connect; one that no longer parses is skipped, not
        // allowed to fail the whole fan-out.
        Ok(items
            .iter()
            .filter_map(|item| item.get(attr::CONNECTION_ID)?.as_s().ok())
            .filter_map(|raw| {
                ConnectionId::parse(raw.as_str())
                    .inspect_err(|err| tracing::warn!(error = %err, "skipping a stored connection id"))
                    .ok()
            })
            .collect())
    }

    async fn mark_gone(&self, connection_id: &ConnectionId, at: DateTime<Utc>) -> Result<GoneOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_id)))
            .condition_expression("attribute_exists(#pk) AND #status = :connected")
            .update_expression("SET #status = :gone, #updatedAt = :now")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
            .expression_attribute_values(":connected", s(ConnectionStatus::Connected.as_str()))
            .expression_attribute_values(":gone", s(ConnectionStatus::Gone.as_str()))
            .expression_attribute_values(":now", s(iso_millis(at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(GoneOutcome::Marked),
            Err(err)
                if err.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(GoneOutcome::NotConnected)
            }
            Err(err) => Err(self.error("UpdateItem", err)),
        }
    }
}
