//! Identifiers that end up inside DynamoDB keys.
//!
//! Every identifier is parsed once, at the edge, into a type that cannot hold anything a key
//! must never contain (a `#` would let a caller forge `CONV#…`/`USER#…` prefixes). The rule is
//! the one in docs/design.md §2: 1–128 characters of `[A-Za-z0-9._:@=+-]`.

use std::fmt;

/// Longest identifier accepted, in characters (all accepted characters are ASCII).
pub const MAX_LEN: usize = 128;

/// Why a string is not a valid identifier. The message names the field and the rule, so it can
/// go to a log as is; it never echoes the rejected value (it may be attacker-controlled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field} is empty; it must be 1-{MAX_LEN} characters of [A-Za-z0-9._:@=+-]")]
    Empty { field: &'static str },
    #[error("{field} is {len} characters long; the limit is {MAX_LEN}")]
    TooLong { field: &'static str, len: usize },
    #[error("{field} contains a character outside [A-Za-z0-9._:@=+-] at position {position}")]
    InvalidCharacter { field: &'static str, position: usize },
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '=' | '+' | '-')
}

fn validate(field: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { field });
    }
    if let Some((position, _)) = value.char_indices().find(|&(_, c)| !is_allowed(c)) {
        return Err(IdError::InvalidCharacter { field, position });
    }
    // Checked after the character scan: every allowed character is one byte, so `len()` is
    // the character count here.
    if value.len() > MAX_LEN {
        return Err(IdError::TooLong { field, len: value.len() });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The field name used in errors and logs.
            pub const FIELD: &'static str = $field;

            /// Parses `value`, refusing anything outside the identifier rule.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate(Self::FIELD, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// API Gateway's id for one WebSocket connection (e.g. `abc123=`).
    ConnectionId,
    "connectionId"
);
identifier!(
    /// The conversation a connection belongs to (`correlationId` on the wire).
    ConversationId,
    "conversationId"
);
identifier!(
    /// The authenticated user behind a connection.
    UserId,
    "userId"
);

impl ConversationId {
    /// A fresh conversation id, `conv-<uuid v4>`, for connections that name none.
    pub fn generate(uuid: uuid::Uuid) -> Self {
        Self(format!("conv-{uuid}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_connection_ids_are_accepted() {
        for id in ["abc123=", "TWegAcC4EowCHnA=", "L0SM9cOFvHcCIhw=", "a", "u-42", "x@y.z:1+2_3"] {
            assert_eq!(ConnectionId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn a_hash_never_reaches_a_key() {
        assert_eq!(
            ConversationId::parse("conv#USER#admin"),
            Err(IdError::InvalidCharacter { field: "conversationId", position: 4 })
        );
    }

    #[test]
    fn empty_overlong_and_non_ascii_identifiers_are_refused() {
        assert_eq!(UserId::parse(""), Err(IdError::Empty { field: "userId" }));
        assert!(UserId::parse("a".repeat(MAX_LEN)).is_ok());
        assert_eq!(UserId::parse("a".repeat(MAX_LEN + 1)), Err(IdError::TooLong { field: "userId", len: MAX_LEN + 1 }));
        assert!(matches!(UserId::parse("josé"), Err(IdError::InvalidCharacter { position: 3, .. })));
        for bad in ["a b", "a/b", "a|b", "a\nb", "a%20"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn errors_name_the_field_and_never_echo_the_value() {
        let err = ConnectionId::parse("secret token value!").unwrap_err().to_string();
        assert!(err.starts_with("connectionId "), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn generated_conversation_ids_are_valid_identifiers() {
        let id = ConversationId::generate(uuid::Uuid::nil());
        assert_eq!(id.as_str(), "conv-00000000-0000-0000-0000-000000000000");
        assert!(ConversationId::parse(id.as_str()).is_ok());
    }
}
