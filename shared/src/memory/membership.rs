//! The in-memory [`MembershipStore`]: the DynamoDB adapter's item, set semantics (an `ADD` or
//! `DELETE` of one id, a set that becomes empty dropped) and say condition, under one lock.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{MemoryStore, s};
use crate::deadline::Deadline;
use crate::dynamo::membership::{member_of, said_by};
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::membership::{Kind, Member, MembershipStore};
use crate::record::{attr, keys};
use crate::store::StoreError;

fn slot(conversation: &ConversationId, user: &UserId) -> String {
    super::slot(&keys::members(conversation), &keys::user(user))
}

impl MembershipStore for MemoryStore {
    async fn change(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        connection: &ConnectionId,
        kind: Kind,
        expires_at: DateTime<Utc>,
        _: &Deadline,
    ) -> Result<Member, StoreError> {
        let mut items = self.items();
        let item = items.entry(slot(conversation, user)).or_default();
        let mut ids = item.get(attr::CONNECTIONS).and_then(|set| set.as_ss().ok()).cloned().unwrap_or_default();
        ids.retain(|id| id != connection.as_str());
        if kind == Kind::Opened {
            ids.push(connection.as_str().to_owned());
        }
        if ids.is_empty() {
            item.remove(attr::CONNECTIONS);
        } else {
            item.insert(attr::CONNECTIONS.into(), AttributeValue::Ss(ids));
        }
        item.insert(attr::TTL.into(), AttributeValue::N(expires_at.timestamp().to_string()));
        Ok(member_of(Some(item)))
    }

    async fn say(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        present: bool,
        by: &str,
        _: &Deadline,
    ) -> Result<Option<u64>, StoreError> {
        let mut items = self.items();
        let item = items.entry(slot(conversation, user)).or_default();
        let member = member_of(Some(item));
        if (member.connections > 0) != present || member.present == Some(present) {
            return Ok(said_by(Some(item), present, by));
        }
        let changes = member.changes + 1;
        item.insert(attr::PRESENT.into(), AttributeValue::Bool(present));
        item.insert(attr::PRESENT_BY.into(), s(by));
        item.insert(attr::PRESENT_CHANGES.into(), AttributeValue::N(changes.to_string()));
        Ok(Some(changes))
    }
}
