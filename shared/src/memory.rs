//! An in-memory [`ConnectionStore`] with the DynamoDB adapter's conditional semantics, for unit
//! and property tests that need thousands of histories in a second.
//!
//! It keeps the very items the DynamoDB adapter writes ([`dynamo::record_item`],
//! [`dynamo::tombstone_item`]) and applies the same conditions and `if_not_exists` rules to them;
//! the store contract suite (`tests/store_contract.rs`) runs every rule against both adapters, so a
//! rule that holds for one and not the other fails there.

mod membership;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::clock::iso_millis;
use crate::deadline::Deadline;
use crate::dynamo::{self, key, record_item, tombstone_item};
use crate::id::ConnectionId;
use crate::record::{ConnectionRecord, ConnectionStatus, Disconnection, Route, Tombstone, attr, keys};
use crate::store::{
    Audience, AudienceIndex, ConnectionStore, DisconnectOutcome, ExpiredPage, GoneOutcome, LiveConnection, Page, Part,
    PutOutcome, StoreError,
};
use crate::testing::{ReadBack, StoredConnection};

type Item = HashMap<String, AttributeValue>;

/// The connections table in a map, keyed by `pk` (a stream's items by `pk` and `sk`). Clones share the table, as clones of a
/// DynamoDB client do, so several handlers can run on one.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    items: Arc<Mutex<BTreeMap<String, Item>>>,
}

/// The map key of an item with a sort key of its own (a stream's, a membership item): partition
/// and sort key (connection items are keyed by their partition key alone, which never holds this
/// separator).
fn slot(pk: &str, sk: &str) -> String {
    format!("{pk}\u{1}{sk}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn pk_of(id: &ConnectionId) -> String {
    keys::connection(id)
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn items(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Item>> {
        // A test that panicked mid-call leaves a usable map.
        self.items.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every stored item (tests).
    pub fn all(&self) -> Vec<Item> {
        self.items().values().cloned().collect()
    }

    fn put_new(&self, item: Item) -> PutOutcome {
        let pk = item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned().expect("items carry their pk");
        let mut items = self.items();
        if let Some(old) = items.get(&pk) {
            return PutOutcome::AlreadyExists(dynamo::existing(Some(old)));
        }
        items.insert(pk, item);
        PutOutcome::Created
    }
}

/// The item of `id` while it is `CONNECTED` (what the adapter's `#status = :connected` checks).
fn connected_mut<'a>(items: &'a mut BTreeMap<String, Item>, id: &ConnectionId) -> Option<&'a mut Item> {
    items.get_mut(&pk_of(id)).filter(|item| {
        item.get(attr::STATUS).and_then(|v| v.as_s().ok()).map(String::as_str)
            == Some(ConnectionStatus::Connected.as_str())
    })
}

/// The first `limit` entries of an index, in the order of its sort key `sk_name`: the items whose
/// partition key `pk.0` is `pk.1` and whose sort key `keep` accepts. Borrowed, and in time linear
/// in the table (a page of a large table costs a scan, not a copy of it: a fan-out reads its pages
/// while its posts are in flight, and a slow page stalls them all).
fn index_page<'a>(
    items: &'a BTreeMap<String, Item>,
    pk: (&str, &str),
    sk_name: &str,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Vec<(&'a str, &'a Item)> {
    let text = |item: &'a Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
    let mut entries: Vec<(&str, &Item)> = items
        .values()
        .filter(|item| text(item, pk.0) == Some(pk.1))
        .filter_map(|item| Some((text(item, sk_name)?, item)))
        .filter(|(sk, _)| keep(sk))
        .collect();
    if entries.len() > limit {
        entries.select_nth_unstable_by(limit, |a, b| a.0.cmp(b.0));
        entries.truncate(limit);
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

/// The routes of listed items that have one, by connection (as the adapter reads them).
fn routes(items: &[&Item]) -> HashMap<ConnectionId, Route> {
    items
        .iter()
        .filter_map(|item| {
            let id = ConnectionId::parse(item.get(attr::CONNECTION_ID)?.as_s().ok()?.as_str()).ok()?;
            Some((id, dynamo::route_of(item)?))
        })
        .collect()
}

impl ConnectionStore for MemoryStore {
    async fn live_connection(&self, id: &ConnectionId, _: &Deadline) -> Result<Option<LiveConnection>, StoreError> {
        Ok(self.items().get(&pk_of(id)).and_then(dynamo::live_connection_of))
    }

    async fn put_connection(&self, record: &ConnectionRecord, _: &Deadline) -> Result<PutOutcome, StoreError> {
        Ok(self.put_new(record_item(record)))
    }

    async fn put_tombstone(&self, tombstone: &Tombstone, _: &Deadline) -> Result<PutOutcome, StoreError> {
        Ok(self.put_new(tombstone_item(tombstone)))
    }

    async fn mark_disconnected(&self, d: &Disconnection, _: &Deadline) -> Result<DisconnectOutcome, StoreError> {
        let mut items = self.items();
        let item = items.entry(pk_of(&d.connection_id)).or_insert_with(|| key(&d.connection_id));
        let was_connected = item.contains_key(attr::CONNECTED_AT);
        let now = iso_millis(d.at);
        item.insert(attr::STATUS.into(), s(ConnectionStatus::Disconnected.as_str()));
        item.insert(attr::CONNECTION_ID.into(), s(d.connection_id.as_str()));
        item.insert(attr::UPDATED_AT.into(), s(now.clone()));
        item.entry(attr::DISCONNECTED_AT.into()).or_insert_with(|| s(now));
        item.entry(attr::TTL.into()).or_insert_with(|| AttributeValue::N(d.expires_at.timestamp().to_string()));
        if let Some(code) = d.close_code {
            item.entry(attr::CLOSE_CODE.into()).or_insert_with(|| AttributeValue::N(code.to_string()));
        }
        if let Some(reason) = &d.close_reason {
            item.entry(attr::CLOSE_REASON.into()).or_insert_with(|| s(reason.as_str()));
        }
        item.remove(keys::GSI3PK);
        item.remove(keys::GSI3SK);
        item.remove(keys::GSI4PK);
        item.remove(keys::GSI4SK);
        Ok(if was_connected { DisconnectOutcome::Disconnected } else { DisconnectOutcome::NotFound })
    }

    async fn connected_page(
        &self,
        audience: &Audience,
        part: Part,
        after: Option<&ConnectionId>,
        limit: u32,
        _: &Deadline,
    ) -> Result<Page, StoreError> {
        let AudienceIndex { pk_name, sk_name, pk, .. } = audience.index(part.shard);
        let (low, high) = part.segment.sort_key_range();
        let text = |item: &Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let after_sk = after.map(keys::connection);
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let items = self.items();
        let read: Vec<&Item> = index_page(&items, (pk_name, pk.as_str()), sk_name, limit, |sk| {
            after_sk.as_deref().is_none_or(|after| sk > after) && low.as_str() <= sk && sk <= high.as_str()
        })
        .into_iter()
        .map(|(_, item)| item)
        .collect();
        // As DynamoDB: `Limit` counts entries read before the filter, and a page that stopped at
        // the limit names where to resume even if nothing follows.
        let resume_after = if read.len() == limit {
            read.last().and_then(|item| keys::connection_of(&text(item, keys::PK)?))
        } else {
            None
        };
        let connected: Vec<&Item> = read
            .into_iter()
            .filter(|item| text(item, attr::STATUS).as_deref() == Some(ConnectionStatus::Connected.as_str()))
            .collect();
        let ids =
            connected.iter().filter_map(|item| ConnectionId::parse(text(item, attr::CONNECTION_ID)?).ok()).collect();
        Ok(Page { ids, routes: routes(&connected), members: dynamo::members(&connected), resume_after })
    }

    async fn mark_gone(
        &self,
        id: &ConnectionId,
        via: Option<&Route>,
        at: DateTime<Utc>,
        _: &Deadline,
    ) -> Result<GoneOutcome, StoreError> {
        let mut items = self.items();
        let Some(item) = connected_mut(&mut items, id) else { return Ok(GoneOutcome::NotConnected) };
        // As the adapter's condition: a record that names its API is marked only by its own API.
        if item.contains_key(attr::API_ID) && dynamo::route_of(item).as_ref() != via {
            return Ok(GoneOutcome::NotConnected);
        }
        item.insert(attr::STATUS.into(), s(ConnectionStatus::Gone.as_str()));
        item.insert(attr::UPDATED_AT.into(), s(iso_millis(at)));
        item.remove(keys::GSI3PK);
        item.remove(keys::GSI3SK);
        item.remove(keys::GSI4PK);
        item.remove(keys::GSI4SK);
        Ok(GoneOutcome::Marked)
    }

    async fn expired_page(
        &self,
        shard: u8,
        now: i64,
        after: Option<&str>,
        limit: u32,
        _: &Deadline,
    ) -> Result<ExpiredPage, StoreError> {
        let text = |item: &Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let partition = keys::expiry_partition(shard);
        let cutoff = keys::expiry_cutoff(now);
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let items = self.items();
        let read = index_page(&items, (keys::GSI3PK, partition.as_str()), keys::GSI3SK, limit, |sort| {
            sort < cutoff.as_str() && after.is_none_or(|after| sort > after)
        });
        let resume_after = if read.len() == limit { read.last().map(|(sort, _)| (*sort).to_owned()) } else { None };
        let connected: Vec<&(&str, &Item)> = read
            .iter()
            .filter(|(_, item)| text(item, attr::STATUS).as_deref() == Some(ConnectionStatus::Connected.as_str()))
            .collect();
        let entries = connected
            .iter()
            .filter_map(|(sort, _)| Some((keys::connection_of_expiry(sort)?, (*sort).to_owned())))
            .collect();
        let items: Vec<&Item> = connected.iter().map(|(_, item)| *item).collect();
        Ok(ExpiredPage { entries, routes: routes(&items), resume_after })
    }

    async fn note_closing(
        &self,
        id: &ConnectionId,
        reason: &str,
        at: DateTime<Utc>,
        _: &Deadline,
    ) -> Result<GoneOutcome, StoreError> {
        let mut items = self.items();
        let Some(item) = connected_mut(&mut items, id) else { return Ok(GoneOutcome::NotConnected) };
        item.entry(attr::CLOSE_REASON.into()).or_insert_with(|| s(reason));
        item.insert(attr::UPDATED_AT.into(), s(iso_millis(at)));
        Ok(GoneOutcome::Marked)
    }
}

impl ReadBack for MemoryStore {
    async fn connection(&self, id: &ConnectionId, _: &Deadline) -> Result<Option<StoredConnection>, StoreError> {
        self.items()
            .get(&pk_of(id))
            .map(|item| {
                crate::testing::stored(item).map_err(|err| StoreError {
                    operation: "GetItem",
                    table: "memory".into(),
                    permanent: true,
                    source: Box::new(err),
                })
            })
            .transpose()
    }
}
