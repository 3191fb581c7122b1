//! The DynamoDB adapter of [`MembershipStore`]: a set change is one `UpdateItem` (`ADD` or
//! `DELETE` of the id on a string set, answering the item after it: DynamoDB drops a set that
//! becomes empty, so "no attribute" is none); saying is one conditional `UpdateItem`.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use super::{Call, DynamoStore, n, s};
use crate::deadline::Deadline;
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::membership::{Kind, Member, MembershipStore};
use crate::record::{attr, keys};
use crate::store::StoreError;

type Item = std::collections::HashMap<String, AttributeValue>;

pub(crate) fn member_key(conversation: &ConversationId, user: &UserId) -> Item {
    Item::from([(keys::PK.to_owned(), s(keys::members(conversation))), (keys::SK.to_owned(), s(keys::user(user)))])
}

/// A membership item as the adapters read it.
pub(crate) fn member_of(item: Option<&Item>) -> Member {
    let get = |name: &str| item.and_then(|item| item.get(name));
    Member {
        connections: get(attr::CONNECTIONS).and_then(|set| set.as_ss().ok()).map_or(0, Vec::len),
        present: get(attr::PRESENT).and_then(|b| b.as_bool().ok()).copied(),
        by: get(attr::PRESENT_BY).and_then(|b| b.as_s().ok()).cloned(),
        changes: get(attr::PRESENT_CHANGES).and_then(|n| n.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0),
    }
}

/// The condition a change of `present` needs: the set agrees with the new value, and `present`
/// is not that value already.
const SAY_PRESENT: &str = "attribute_exists(#connections) AND (attribute_not_exists(#present) OR #present <> :present)";
const SAY_ABSENT: &str =
    "attribute_not_exists(#connections) AND (attribute_not_exists(#present) OR #present <> :present)";

impl MembershipStore for DynamoStore {
    async fn change(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        connection: &ConnectionId,
        kind: Kind,
        expires_at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> Result<Member, StoreError> {
        let expression = match kind {
            Kind::Opened => "ADD #connections :id SET #ttl = :ttl",
            Kind::Ended => "DELETE #connections :id SET #ttl = :ttl",
        };
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(member_key(conversation, user)))
            .update_expression(expression)
            .expression_attribute_names("#connections", attr::CONNECTIONS)
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":id", AttributeValue::Ss(vec![connection.as_str().to_owned()]))
            .expression_attribute_values(":ttl", n(expires_at.timestamp()))
            .return_values(ReturnValue::AllNew)
            .customize()
            .config_override(self.budget("UpdateItem", Call::Item, deadline)?)
            .send()
            .await
            .map_err(|err| self.sdk_error("UpdateItem", err))?;
        Ok(member_of(answer.attributes()))
    }

    async fn say(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        present: bool,
        by: &str,
        deadline: &Deadline,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(member_key(conversation, user)))
            .update_expression("SET #present = :present, #by = :by ADD #changes :one")
            .condition_expression(if present { SAY_PRESENT } else { SAY_ABSENT })
            .expression_attribute_names("#connections", attr::CONNECTIONS)
            .expression_attribute_names("#present", attr::PRESENT)
            .expression_attribute_names("#by", attr::PRESENT_BY)
            .expression_attribute_names("#changes", attr::PRESENT_CHANGES)
            .expression_attribute_values(":present", AttributeValue::Bool(present))
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .customize()
            .config_override(self.budget("UpdateItem", Call::Item, deadline)?)
            .send()
            .await;
        match result {
            Ok(answer) => Ok(Some(member_of(answer.attributes()).changes)),
            Err(err) => match err.as_service_error() {
                // Refused: said already. By this record (an earlier attempt whose answer was
                // lost, which the SDK sent again) is this change; by another, no change.
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(said_by(failed.item(), present, by))
                }
                _ => Err(self.sdk_error("UpdateItem", err)),
            },
        }
    }
}

/// The change's number when `item` says `present` by `by` (this record made it).
pub(crate) fn said_by(item: Option<&Item>, present: bool, by: &str) -> Option<u64> {
    let member = member_of(item);
    (member.present == Some(present) && member.by.as_deref() == Some(by)).then_some(member.changes)
}
