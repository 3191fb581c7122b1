//! The in-memory [`StreamStore`]: the DynamoDB adapter's items ([`crate::dynamo`]'s builders) and
//! conditions, applied under one lock (a transaction is atomic here by construction).

use chrono::{DateTime, Utc};

use super::{Item, MemoryStore};
use crate::deadline::Deadline;
use crate::dynamo::stream::{append_items, claim_of, expired, live_head, published};
use crate::record::{attr, keys};
use crate::segment::Segment;
use crate::store::StoreError;
use crate::stream::{
    Append, Appended, Claim, ClaimOutcome, Entry, EntryRange, Head, MessageKey, StreamName, StreamStore,
};

fn slot(stream: &StreamName, sort: &str) -> String {
    super::slot(&keys::stream(stream), sort)
}

fn missing(what: &'static str) -> StoreError {
    StoreError {
        operation: "TransactWriteItems",
        table: "memory".into(),
        permanent: true,
        source: Box::new(crate::dynamo::MalformedItem(what)),
    }
}

impl StreamStore for MemoryStore {
    async fn append(&self, append: Append<'_>, _: &Deadline) -> Result<Appended, StoreError> {
        let mut items = self.items();
        let key_slot = slot(append.stream, &keys::stream_message_key(append.key));
        let free = |item: Option<&Item>| item.is_none_or(|item| expired(item, append.at));
        if let Some(old) = items.get(&key_slot).filter(|item| !expired(item, append.at)) {
            let (offset, epoch) = published(old).ok_or(missing("a message key without its offset"))?;
            let message = items
                .get(&slot(append.stream, &keys::stream_entry(offset)))
                .and_then(|entry| entry.get(attr::MESSAGE)?.as_s().ok().cloned())
                .unwrap_or_else(|| append.message.to_owned());
            return Ok(Appended { offset, epoch, duplicate: true, message, claim: claim_of(old, Segment::WHOLE) });
        }
        let head_slot = slot(append.stream, keys::STREAM_HEAD);
        let (offset, epoch) = match live_head(items.get(&head_slot), append.at) {
            Some(head) => (head.last + 1, head.epoch),
            None => (1, append.new_epoch.to_owned()),
        };
        let entry_slot = slot(append.stream, &keys::stream_entry(offset));
        if !free(items.get(&entry_slot)) {
            return Err(missing("an entry slot taken above the head's last offset"));
        }
        let (head, entry, key) = append_items(&append, offset, &epoch);
        items.insert(head_slot, head);
        items.insert(entry_slot, entry);
        items.insert(key_slot, key);
        Ok(Appended { offset, epoch, duplicate: false, message: append.message.to_owned(), claim: Claim::default() })
    }

    async fn claim(
        &self,
        stream: &StreamName,
        key: &MessageKey,
        segment: Segment,
        seen: &Claim,
        next: &Claim,
        _: &Deadline,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut items = self.items();
        let Some(item) = items.get_mut(&slot(stream, &keys::stream_message_key(key))) else {
            return Err(missing("the message key expired during its fan-out"));
        };
        let current = claim_of(item, segment);
        if current != *seen {
            return Ok(ClaimOutcome::Moved(current));
        }
        let (Some(upto), Some(by)) = (&next.upto, &next.by) else {
            return Err(missing("a claim names its position and its run"));
        };
        let (claimed, claimed_by) = attr::claim_names(segment);
        item.insert(claimed, aws_sdk_dynamodb::types::AttributeValue::S(upto.clone()));
        item.insert(claimed_by, aws_sdk_dynamodb::types::AttributeValue::S(by.clone()));
        Ok(ClaimOutcome::Claimed)
    }

    async fn head(&self, stream: &StreamName, now: DateTime<Utc>, _: &Deadline) -> Result<Option<Head>, StoreError> {
        Ok(live_head(self.items().get(&slot(stream, keys::STREAM_HEAD)), now))
    }

    async fn entries(
        &self,
        stream: &StreamName,
        range: &EntryRange<'_>,
        now: DateTime<Utc>,
        _: &Deadline,
    ) -> Result<Vec<Entry>, StoreError> {
        let EntryRange { epoch, after, upto, limit } = *range;
        if after >= upto {
            return Ok(Vec::new());
        }
        let items = self.items();
        let range = slot(stream, &keys::stream_entry(after + 1))..=slot(stream, &keys::stream_entry(upto));
        Ok(items
            .range(range)
            .map(|(_, item)| item)
            .filter(|item| !expired(item, now))
            .filter(|item| item.get(attr::EPOCH).and_then(|v| v.as_s().ok()).map(String::as_str) == Some(epoch))
            .filter_map(|item| {
                Some(Entry {
                    offset: item.get(attr::OFFSET)?.as_n().ok()?.parse().ok()?,
                    message: item.get(attr::MESSAGE)?.as_s().ok()?.clone(),
                })
            })
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }
}
