//! The DynamoDB adapter of [`StreamStore`]: the items and conditions of `crate::stream`.
//!
//! An append reads the head (consistently), then writes head, entry and message key in one
//! `TransactWriteItems`: the head only if it still has the offset read (or is absent or expired),
//! the entry and the key only if their slot is free (or holds an expired item). A cancelled
//! transaction says which condition failed: the key's means this message was already published
//! (its old item comes back with the cancellation), the head's that another append got there
//! first (read the head again and retry). A transaction whose answer was lost and that the SDK
//! sends again finds its own key, so it too is a duplicate: one entry, never two.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{Call, DynamoStore, MalformedItem, n, s};
use crate::clock::iso_millis;
use crate::deadline::Deadline;
use crate::record::{attr, keys};
use crate::segment::Segment;
use crate::store::StoreError;
use crate::stream::{
    Append, Appended, Claim, ClaimOutcome, Entry, EntryRange, Head, MessageKey, StreamName, StreamStore,
};

type Item = HashMap<String, AttributeValue>;

/// Appends tried when other appends keep moving the head: each retry means another message got
/// its offset, so this bounds only a storm of concurrent writers to one stream (the deadline
/// usually ends it first).
const MAX_APPEND_TRIES: u32 = 64;

/// The pause before the next try of an append another one beat: random (full jitter) up to
/// 2 ms doubling per try, at most 64 ms, so writers that collided do not collide again at once.
fn collision_pause(tries: u32) -> std::time::Duration {
    let ceiling = 2u64 << tries.min(5);
    let random = u64::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(ceiling)).unwrap_or(0);
    std::time::Duration::from_millis(random)
}

fn item_key(stream: &StreamName, sort: String) -> Item {
    HashMap::from([(keys::PK.to_owned(), s(keys::stream(stream))), (keys::SK.to_owned(), s(sort))])
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// The claim a message key item holds.
pub(crate) fn claim_of(item: &Item, segment: Segment) -> Claim {
    let (claimed, claimed_by) = attr::claim_names(segment);
    Claim { upto: text(item, &claimed), by: text(item, &claimed_by) }
}

/// True when an item with a TTL has expired by `now` (DynamoDB deletes expired items within days,
/// not at once: a read must not trust one).
pub(crate) fn expired(item: &Item, now: DateTime<Utc>) -> bool {
    item.get(attr::TTL)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .is_some_and(|ttl| ttl < now.timestamp())
}

/// The three items of an append at `offset` in `epoch`.
pub(crate) fn append_items(append: &Append<'_>, offset: u64, epoch: &str) -> (Item, Item, Item) {
    let ttl = n((append.at + append.retention).timestamp());
    let at = s(iso_millis(append.at));
    let mut head = item_key(append.stream, keys::STREAM_HEAD.to_owned());
    head.insert(attr::EPOCH.into(), s(epoch));
    head.insert(attr::LAST.into(), n(i64::try_from(offset).unwrap_or(i64::MAX)));
    head.insert(attr::TTL.into(), ttl.clone());
    head.insert(attr::UPDATED_AT.into(), at.clone());
    let mut entry = item_key(append.stream, keys::stream_entry(offset));
    entry.insert(attr::OFFSET.into(), n(i64::try_from(offset).unwrap_or(i64::MAX)));
    entry.insert(attr::EPOCH.into(), s(epoch));
    entry.insert(attr::MESSAGE.into(), s(append.message));
    entry.insert(attr::TTL.into(), ttl.clone());
    entry.insert(attr::UPDATED_AT.into(), at.clone());
    let mut key = item_key(append.stream, keys::stream_message_key(append.key));
    key.insert(attr::OFFSET.into(), n(i64::try_from(offset).unwrap_or(i64::MAX)));
    key.insert(attr::EPOCH.into(), s(epoch));
    key.insert(attr::TTL.into(), ttl);
    key.insert(attr::UPDATED_AT.into(), at);
    (head, entry, key)
}

/// A head item read back, when live at `now`.
pub(crate) fn live_head(item: Option<&Item>, now: DateTime<Utc>) -> Option<Head> {
    let item = item.filter(|item| !expired(item, now))?;
    Some(Head { epoch: text(item, attr::EPOCH)?, last: number(item, attr::LAST)? })
}

/// What a message key item says of the first publish.
pub(crate) fn published(key_item: &Item) -> Option<(u64, String)> {
    Some((number(key_item, attr::OFFSET)?, text(key_item, attr::EPOCH)?))
}

impl DynamoStore {
    /// The transaction of an append at `offset` in `epoch`: the head moves from what was read
    /// (`head`; none: absent or expired), the entry and the key take free slots.
    fn append_transaction(
        &self,
        append: &Append<'_>,
        head: Option<&Head>,
        offset: u64,
        epoch: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let now = n(append.at.timestamp());
        let (head_new, entry, key) = append_items(append, offset, epoch);
        let free = "attribute_not_exists(#pk) OR #ttl < :now";
        let mut head_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item_key(append.stream, keys::STREAM_HEAD.to_owned())))
            .update_expression("SET #epoch = :epoch, #last = :offset, #ttl = :ttl, #updatedAt = :at")
            .expression_attribute_names("#epoch", attr::EPOCH)
            .expression_attribute_names("#last", attr::LAST)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
            .expression_attribute_values(":epoch", head_new[attr::EPOCH].clone())
            .expression_attribute_values(":offset", head_new[attr::LAST].clone())
            .expression_attribute_values(":ttl", head_new[attr::TTL].clone())
            .expression_attribute_values(":at", head_new[attr::UPDATED_AT].clone())
            .expression_attribute_values(":now", now.clone());
        head_update = match head {
            Some(head) => head_update
                .condition_expression("#epoch = :seenEpoch AND #last = :seenLast AND #ttl >= :now")
                .expression_attribute_values(":seenEpoch", s(head.epoch.as_str()))
                .expression_attribute_values(":seenLast", n(i64::try_from(head.last).unwrap_or(i64::MAX))),
            None => head_update.condition_expression(free).expression_attribute_names("#pk", keys::PK),
        };
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(free)
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#ttl", attr::TTL)
                .expression_attribute_values(":now", now.clone())
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        };
        let unbuilt = |err| StoreError { permanent: true, ..self.error("TransactWriteItems", err) };
        Ok(vec![
            TransactWriteItem::builder().update(head_update.build().map_err(unbuilt)?).build(),
            TransactWriteItem::builder().put(put(entry).build().map_err(unbuilt)?).build(),
            TransactWriteItem::builder().put(put(key).build().map_err(unbuilt)?).build(),
        ])
    }

    async fn get(&self, key: Item, deadline: &Deadline) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .customize()
            .config_override(self.budget("GetItem", Call::Item, deadline)?)
            .send()
            .await
            .map_err(|err| self.sdk_error("GetItem", err))?;
        Ok(output.item)
    }

    /// A duplicate publish: the first one's offset, epoch, stored message and claim.
    async fn duplicate(
        &self,
        append: &Append<'_>,
        key_item: &Item,
        deadline: &Deadline,
    ) -> Result<Appended, StoreError> {
        let (offset, epoch) = published(key_item)
            .ok_or_else(|| self.error("TransactWriteItems", MalformedItem("a message key without its offset")))?;
        let entry = self.get(item_key(append.stream, keys::stream_entry(offset)), deadline).await?;
        // The entry and its key expire together; one read a moment before the other may find it
        // gone: the message is then the one given now (same key, so the same message).
        let message = entry.as_ref().and_then(|e| text(e, attr::MESSAGE)).unwrap_or_else(|| append.message.to_owned());
        Ok(Appended { offset, epoch, duplicate: true, message, claim: claim_of(key_item, Segment::WHOLE) })
    }
}

impl StreamStore for DynamoStore {
    async fn append(&self, append: Append<'_>, deadline: &Deadline) -> Result<Appended, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let head_item = self.get(item_key(append.stream, keys::STREAM_HEAD.to_owned()), deadline).await?;
            let head = live_head(head_item.as_ref(), append.at);
            let (offset, epoch) = match &head {
                Some(head) => (head.last + 1, head.epoch.clone()),
                None => (1, append.new_epoch.to_owned()),
            };
            let items = self.append_transaction(&append, head.as_ref(), offset, &epoch)?;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .customize()
                .config_override(self.budget("TransactWriteItems", Call::Item, deadline)?)
                .send()
                .await;
            let Err(err) = result else {
                return Ok(Appended {
                    offset,
                    epoch,
                    duplicate: false,
                    message: append.message.to_owned(),
                    claim: Claim::default(),
                });
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons().to_vec()
                }
                _ => return Err(self.sdk_error("TransactWriteItems", err)),
            };
            let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
            if failed(2) {
                let old = reasons[2].item().cloned();
                let old = match old {
                    Some(item) => item,
                    None => self
                        .get(item_key(append.stream, keys::stream_message_key(append.key)), deadline)
                        .await?
                        .ok_or_else(|| {
                            self.error("TransactWriteItems", MalformedItem("a message key that vanished"))
                        })?,
                };
                return self.duplicate(&append, &old, deadline).await;
            }
            let moved = failed(0) || failed(1);
            if !moved || tries >= MAX_APPEND_TRIES || deadline.is_short_of(super::MIN_CALL * 4) {
                let transient = reasons.iter().any(|r| {
                    matches!(
                        r.code(),
                        Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
                    )
                });
                let mut error = self.sdk_error("TransactWriteItems", err);
                error.permanent = error.permanent && !transient && !moved;
                return Err(error);
            }
            tracing::debug!(stream = append.stream.as_str(), tries, "another append moved the head; reading it again");
            tokio::time::sleep(collision_pause(tries).min(deadline.budget())).await;
        }
    }

    async fn claim(
        &self,
        stream: &StreamName,
        key: &MessageKey,
        segment: Segment,
        seen: &Claim,
        next: &Claim,
        deadline: &Deadline,
    ) -> Result<ClaimOutcome, StoreError> {
        let (Some(upto), Some(by)) = (&next.upto, &next.by) else {
            return Err(self.error("UpdateItem", MalformedItem("a claim names its position and its run")));
        };
        let (claimed, claimed_by) = attr::claim_names(segment);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key(stream, keys::stream_message_key(key))))
            .update_expression("SET #claimed = :upto, #claimedBy = :by")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#claimed", claimed)
            .expression_attribute_names("#claimedBy", claimed_by)
            .expression_attribute_values(":upto", s(upto.as_str()))
            .expression_attribute_values(":by", s(by.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        request = match (&seen.upto, &seen.by) {
            (Some(upto), Some(by)) => request
                .condition_expression("attribute_exists(#pk) AND #claimed = :seenUpto AND #claimedBy = :seenBy")
                .expression_attribute_values(":seenUpto", s(upto.as_str()))
                .expression_attribute_values(":seenBy", s(by.as_str())),
            _ => request.condition_expression("attribute_exists(#pk) AND attribute_not_exists(#claimed)"),
        };
        let result = request.customize().config_override(self.budget("UpdateItem", Call::Item, deadline)?).send().await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => match failed.item() {
                    Some(item) => Ok(ClaimOutcome::Moved(claim_of(item, segment))),
                    None => Err(self.error("UpdateItem", MalformedItem("the message key expired during its fan-out"))),
                },
                _ => Err(self.sdk_error("UpdateItem", err)),
            },
        }
    }

    async fn head(
        &self,
        stream: &StreamName,
        now: DateTime<Utc>,
        deadline: &Deadline,
    ) -> Result<Option<Head>, StoreError> {
        let item = self.get(item_key(stream, keys::STREAM_HEAD.to_owned()), deadline).await?;
        Ok(live_head(item.as_ref(), now))
    }

    async fn entries(
        &self,
        stream: &StreamName,
        range: &EntryRange<'_>,
        now: DateTime<Utc>,
        deadline: &Deadline,
    ) -> Result<Vec<Entry>, StoreError> {
        let EntryRange { epoch, after, upto, limit } = *range;
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        if after >= upto || limit == 0 {
            return Ok(entries);
        }
        // Expired entries (and an old epoch's leftovers) are filtered after DynamoDB's Limit:
        // read on while pages come back short and the range has more.
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .filter_expression("#epoch = :epoch AND #ttl >= :now")
                .projection_expression("#offset, #message")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_names("#epoch", attr::EPOCH)
                .expression_attribute_names("#ttl", attr::TTL)
                .expression_attribute_names("#offset", attr::OFFSET)
                .expression_attribute_names("#message", attr::MESSAGE)
                .expression_attribute_values(":pk", s(keys::stream(stream)))
                .expression_attribute_values(":from", s(keys::stream_entry(after + 1)))
                .expression_attribute_values(":to", s(keys::stream_entry(upto)))
                .expression_attribute_values(":epoch", s(epoch))
                .expression_attribute_values(":now", n(now.timestamp()))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .customize()
                .config_override(self.budget("Query", Call::Index, deadline)?)
                .send()
                .await
                .map_err(|err| self.sdk_error("Query", err))?;
            for item in output.items() {
                let (Some(offset), Some(message)) = (number(item, attr::OFFSET), text(item, attr::MESSAGE)) else {
                    return Err(self.error("Query", MalformedItem("a stream entry without offset or message")));
                };
                entries.push(Entry { offset, message });
            }
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            match output.last_evaluated_key {
                Some(last) if entries.len() < limit => start = Some(last),
                _ => break,
            }
        }
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(entries)
    }
}
