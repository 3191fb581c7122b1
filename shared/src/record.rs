//! The connection record and the table's key schema (docs/design.md §2): the one place that knows
//! attribute names and key formats. The DynamoDB adapter and the tests read them from here.

use chrono::{DateTime, Utc};

use crate::id::{ConnectionId, ConversationId, UserId};

/// Key attribute names, index names and key formats.
pub mod keys {
    use crate::id::{ConnectionId, ConversationId, UserId};

    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1: &str = "GSI1";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    pub const GSI2: &str = "GSI2";
    pub const GSI2PK: &str = "gsi2pk";
    pub const GSI2SK: &str = "gsi2sk";
    pub const GSI3: &str = "GSI3";
    pub const GSI3PK: &str = "gsi3pk";
    pub const GSI3SK: &str = "gsi3sk";
    pub const GSI4: &str = "GSI4";
    pub const GSI4PK: &str = "gsi4pk";
    pub const GSI4SK: &str = "gsi4sk";
    /// GSI4's partitions: every live connection, spread by its id's hash so that connects do not
    /// all write one index partition (a partition takes 1,000 writes/s) and a broadcast reads
    /// them shard by shard.
    pub const LIVE_SHARDS: u8 = 16;
    /// GSI3's partitions: a record's expiry entry goes to the shard its connection id hashes to,
    /// so connects whose tokens expire in the same minute do not all write one index partition.
    pub const EXPIRY_SHARDS: u8 = 16;
    /// The sort key of every connection record.
    pub const CONNECTION_SK: &str = "CONNECTION";

    /// `CONN#<connectionId>`: the partition key of a record, and its sort key in both indexes.
    pub fn connection(id: &ConnectionId) -> String {
        format!("CONN#{id}")
    }

    /// What every connection key starts with.
    pub const fn connection_prefix() -> &'static str {
        "CONN#"
    }

    /// `CONV#<conversationId>`: GSI1's partition key.
    pub fn conversation(id: &ConversationId) -> String {
        format!("CONV#{id}")
    }

    /// The connection a `CONN#<connectionId>` key names, if it is one.
    pub fn connection_of(key: &str) -> Option<ConnectionId> {
        ConnectionId::parse(key.strip_prefix("CONN#")?).ok()
    }

    /// `USER#<userId>`: GSI2's partition key.
    pub fn user(id: &UserId) -> String {
        format!("USER#{id}")
    }

    /// What every membership partition key starts with (the membership function's grant is on
    /// these leading keys only: `properties/tests/contract.rs` checks the stack's).
    pub const MEMBERS_PREFIX: &str = "MEMBERS#";

    /// `MEMBERS#<conversationId>`: the partition of a conversation's membership items
    /// ([`crate::membership`]), one per user, sorted by [`user`]; never in an index.
    pub fn members(id: &ConversationId) -> String {
        format!("{MEMBERS_PREFIX}{id}")
    }

    /// FNV-1a of a connection id: stable across processes and versions.
    fn id_hash(id: &ConnectionId) -> u32 {
        id.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
    }

    /// The GSI3 shard of a connection.
    pub fn expiry_shard(id: &ConnectionId) -> u8 {
        u8::try_from(id_hash(id) % u32::from(EXPIRY_SHARDS)).expect("below EXPIRY_SHARDS")
    }

    /// The GSI4 shard of a connection.
    pub fn live_shard(id: &ConnectionId) -> u8 {
        u8::try_from(id_hash(id) % u32::from(LIVE_SHARDS)).expect("below LIVE_SHARDS")
    }

    /// `LIVE#<shard>`: GSI4's partition key.
    pub fn live_partition(shard: u8) -> String {
        format!("LIVE#{shard:02}")
    }

    /// `EXP#<shard>`: GSI3's partition key.
    pub fn expiry_partition(shard: u8) -> String {
        format!("EXP#{shard:02}")
    }

    /// `<exp, 12 digits>#<connectionId>`: GSI3's sort key, ordered by the token's expiry.
    pub fn expiry_sort(exp: i64, id: &ConnectionId) -> String {
        format!("{exp:012}#{id}")
    }

    /// The GSI3 sort keys below this one are the tokens expired before `now` (epoch seconds).
    pub fn expiry_cutoff(now: i64) -> String {
        format!("{now:012}")
    }

    /// The connection a GSI3 sort key names, if it is one.
    pub fn connection_of_expiry(sort: &str) -> Option<ConnectionId> {
        let (exp, id) = sort.split_once('#')?;
        (exp.len() == 12 && exp.bytes().all(|b| b.is_ascii_digit())).then(|| ConnectionId::parse(id).ok()).flatten()
    }

    /// `STREAM#<name>`: a stream's partition: its head, its entries and its message keys
    /// ([`crate::stream`]). Never in an index (no index keys).
    pub fn stream(name: &crate::stream::StreamName) -> String {
        format!("STREAM#{name}")
    }

    /// The sort key of a stream's head (its epoch and last offset).
    pub const STREAM_HEAD: &str = "HEAD";

    /// `E#<offset, 20 digits>`: an entry's sort key, so a stream's entries are in offset order.
    pub fn stream_entry(offset: u64) -> String {
        format!("E#{offset:020}")
    }

    /// `K#<hash>`: the sort key of a published message key.
    pub fn stream_message_key(key: &crate::stream::MessageKey) -> String {
        format!("K#{}", key.as_hex())
    }
}

/// Non-key attribute names.
pub mod attr {
    pub const CONNECTION_ID: &str = "connectionId";
    pub const CONVERSATION_ID: &str = "conversationId";
    pub const USER_ID: &str = "userId";
    pub const STATUS: &str = "status";
    pub const CONNECTED_AT: &str = "connectedAt";
    pub const DISCONNECTED_AT: &str = "disconnectedAt";
    pub const UPDATED_AT: &str = "updatedAt";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "userAgent";
    pub const DOMAIN_NAME: &str = "domainName";
    pub const STAGE: &str = "stage";
    /// API Gateway's `disconnectStatusCode` (the WebSocket close code).
    pub const CLOSE_CODE: &str = "closeCode";
    /// API Gateway's `disconnectReason`, or why the responder closed the connection (`reason`, or
    /// `expired`), written before it closes so the `$disconnect` that follows keeps it.
    pub const CLOSE_REASON: &str = "closeReason";
    /// The authorizer's token expiry (epoch seconds, a number), when an authorizer gave one.
    pub const TOKEN_EXP: &str = "tokenExp";
    /// The WebSocket API the connection came through (`requestContext.apiId`).
    pub const API_ID: &str = "apiId";
    /// The region of that API (where `ConnectFunction` ran).
    pub const REGION: &str = "region";
    /// Epoch seconds; the table's TTL attribute.
    pub const TTL: &str = "ttl";
    /// A membership item's set of the user's live connection ids in the conversation.
    pub const CONNECTIONS: &str = "connections";
    /// A membership item's last word: is the user there (a boolean).
    pub const PRESENT: &str = "present";
    /// The stream record that said it.
    pub const PRESENT_BY: &str = "presentBy";
    /// How many times it changed (a number).
    pub const PRESENT_CHANGES: &str = "changes";
    /// A stream's epoch (head, entries, message keys).
    pub const EPOCH: &str = "epoch";
    /// A stream head's last offset (a number).
    pub const LAST: &str = "last";
    /// An entry's or a message key's offset (a number).
    pub const OFFSET: &str = "offset";
    /// An entry's message JSON, as appended.
    pub const MESSAGE: &str = "message";
    /// A message key's fan-out claim: every connection up to here was taken (`~`: all).
    pub const CLAIMED: &str = "claimed";
    /// The fan-out run that holds the claim.
    pub const CLAIMED_BY: &str = "claimedBy";

    /// The claim attributes of one segment of a fan-out (`claimed`, `claimedBy` for the whole
    /// audience; `claimed.<k>.<n>`, `claimedBy.<k>.<n>` for segment k of n: each segment's
    /// claim moves on its own).
    pub fn claim_names(segment: crate::segment::Segment) -> (String, String) {
        if segment.is_whole() {
            (CLAIMED.to_owned(), CLAIMED_BY.to_owned())
        } else {
            let suffix = format!(".{}.{}", segment.index(), segment.count());
            (format!("{CLAIMED}{suffix}"), format!("{CLAIMED_BY}{suffix}"))
        }
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Connected,
    /// `$disconnect` arrived.
    Disconnected,
    /// A post found the connection gone (410) before any `$disconnect`.
    Gone,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "CONNECTED",
            Self::Disconnected => "DISCONNECTED",
            Self::Gone => "GONE",
        }
    }
}

/// What `$connect` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub connection_id: ConnectionId,
    pub conversation_id: ConversationId,
    /// `None` when nobody authenticated the connection and it named no user.
    pub user_id: Option<UserId>,
    /// When API Gateway accepted the connection (its `connectedAt`).
    pub connected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Stored for abuse investigations; never logged.
    pub ip: Option<String>,
    /// Stored for support; never logged.
    pub user_agent: Option<String>,
    pub domain_name: Option<String>,
    pub stage: Option<String>,
    /// When DynamoDB may delete the record.
    pub expires_at: DateTime<Utc>,
    /// When the token the connection was authorized with expires (epoch seconds); `None` when no
    /// authorizer ran (such a connection is never closed for expiry).
    pub token_expires_at: Option<i64>,
    /// The API id (`requestContext.apiId`) and the region `ConnectFunction` ran in: with `stage`,
    /// where the connection lives ([`ConnectionRecord::route`]).
    pub api_id: Option<String>,
    pub region: Option<String>,
}

impl ConnectionRecord {
    /// The API, stage and region of the connection, when all three are known.
    pub fn route(&self) -> Option<Route> {
        Some(Route { api_id: self.api_id.clone()?, stage: self.stage.clone()?, region: self.region.clone()? })
    }
}

/// Where a connection lives: its WebSocket API, stage and region. Posts and closes go through
/// that API's Management endpoint, never another one (a 410 from another API means nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub api_id: String,
    pub stage: String,
    pub region: String,
}

/// What `$disconnect` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnection {
    pub connection_id: ConnectionId,
    pub at: DateTime<Utc>,
    pub close_code: Option<i64>,
    pub close_reason: Option<String>,
    /// Expiry for the record if the disconnect arrives first (the tombstone must outlive any
    /// late `$connect`, and then go).
    pub expires_at: DateTime<Utc>,
}

/// What `$connect` leaves when it cannot tell whether its put landed and has to answer 500: a
/// place-holder that a late put cannot overwrite (see [`crate::store::ConnectionStore::put_tombstone`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub connection_id: ConnectionId,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl ConnectionStatus {
    /// The status stored as `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Connected, Self::Disconnected, Self::Gone].into_iter().find(|status| status.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::{attr, keys};
    use crate::id::ConnectionId;

    #[test]
    fn an_expiry_sort_key_orders_by_time_and_names_its_connection() {
        let id = ConnectionId::parse("abc123=").unwrap();
        let sort = keys::expiry_sort(1_767_225_600, &id);
        assert_eq!(sort, "001767225600#abc123=");
        assert!(sort.as_str() < keys::expiry_cutoff(1_767_225_601).as_str(), "expired a second later");
        assert!(sort.as_str() > keys::expiry_cutoff(1_767_225_600).as_str(), "not expired at its own second");
        assert_eq!(keys::connection_of_expiry(&sort), Some(id.clone()));
        assert_eq!(keys::connection_of_expiry("12#abc"), None);
        assert!(keys::expiry_shard(&id) < keys::EXPIRY_SHARDS);
        assert_eq!(keys::expiry_shard(&id), keys::expiry_shard(&ConnectionId::parse("abc123=").unwrap()));
    }

    /// `terraform/modules/table/schema.json` is the schema Terraform deploys; the names the code
    /// writes and queries must be its names.
    #[test]
    fn the_key_names_are_the_deployed_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../terraform/modules/table/schema.json")).unwrap();
        assert_eq!((schema["hash_key"].as_str(), schema["range_key"].as_str()), (Some(keys::PK), Some(keys::SK)));
        let indexes = schema["indexes"].as_object().unwrap();
        assert_eq!(indexes.len(), 4, "the code knows GSI1 to GSI4 only");
        for (index, pk, sk) in [
            (keys::GSI1, keys::GSI1PK, keys::GSI1SK),
            (keys::GSI2, keys::GSI2PK, keys::GSI2SK),
            (keys::GSI3, keys::GSI3PK, keys::GSI3SK),
            (keys::GSI4, keys::GSI4PK, keys::GSI4SK),
        ] {
            assert_eq!(indexes[index]["hash_key"], pk, "{index}");
            assert_eq!(indexes[index]["range_key"], sk, "{index}");
        }
        assert_eq!(schema["ttl_attribute"], attr::TTL);
        // A fan-out reads the connection id and where it lives, and filters on the status; a
        // presence query reads whose it is and since when (dynamo.rs's Query), so the indexes
        // must project exactly those.
        assert_eq!(
            schema["index_projection"],
            serde_json::json!([
                attr::CONNECTION_ID,
                attr::STATUS,
                attr::API_ID,
                attr::STAGE,
                attr::REGION,
                attr::USER_ID,
                attr::CONNECTED_AT
            ])
        );
    }
}
