//! A secret from the environment: compared in constant time, never printed.

use subtle::ConstantTimeEq as _;

/// A secret value. `Debug` prints `Secret(<redacted>)`, so a `Config` that holds one can derive
/// `Debug` and still be logged; there is no `Display` and no way to read the value back out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Length in bytes (to check a minimum at start).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `offered` is the secret, in time that does not depend on how much of it matched.
    pub fn matches(&self, offered: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(offered).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_value_matches_and_debug_never_shows_it() {
        let secret = Secret::new("edge-secret-0123456789abcdef0123456789".to_owned());
        assert!(secret.matches(b"edge-secret-0123456789abcdef0123456789"));
        assert!(!secret.matches(b"edge-secret-0123456789abcdef012345678X"));
        assert!(!secret.matches(b"edge-secret"));
        assert!(!secret.matches(b""));
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(secret)), "Some(Secret(<redacted>))");
    }
}
