//! `CLIENT_INFO`: how much of the client's IP address and user agent the record keeps.
//!
//! - `full` (default): both as API Gateway gave them.
//! - `anonymized`: the IPv4 address with its last octet zeroed, the IPv6 address cut to its /48
//!   (an IPv4-mapped IPv6 address as IPv4); the user agent reduced to its product names, without
//!   versions, comments (where devices, OS builds and locales are named) or any name with a digit
//!   in it (where identifiers hide). What cannot be parsed is not stored.
//! - `none`: neither is stored.
//!
//! Neither is ever logged, whatever the setting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ws_shared::config::{self, ConfigError, Env};

pub const CLIENT_INFO: &str = "CLIENT_INFO";

/// Product names kept from one user agent, at most.
const MAX_PRODUCTS: usize = 12;
/// Longest product name kept.
const MAX_PRODUCT_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientInfo {
    #[default]
    Full,
    Anonymized,
    None,
}

impl ClientInfo {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        config::choice(
            env,
            CLIENT_INFO,
            Self::Full,
            &[("full", Self::Full), ("anonymized", Self::Anonymized), ("none", Self::None)],
            "use full (IP and user agent as given), anonymized (IP truncated, user agent \
             reduced to product names) or none (neither stored)",
        )
    }

    /// The IP address the record keeps.
    pub fn ip(self, ip: Option<&str>) -> Option<String> {
        match self {
            Self::Full => ip.map(str::to_owned),
            Self::Anonymized => {
                ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()).map(|ip| anonymize_ip(ip).to_string())
            }
            Self::None => None,
        }
    }

    /// The user agent the record keeps.
    pub fn user_agent(self, user_agent: Option<&str>) -> Option<String> {
        match self {
            Self::Full => user_agent.map(str::to_owned),
            Self::Anonymized => user_agent.and_then(product_names),
            Self::None => None,
        }
    }
}

/// IPv4: the /24 (last octet zeroed). IPv6: the /48. An IPv4-mapped IPv6 address counts as IPv4.
pub fn anonymize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4_prefix(v4)),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4_prefix(v4))
            } else {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
        }
    }
}

fn v4_prefix(ip: Ipv4Addr) -> Ipv4Addr {
    let [a, b, c, _] = ip.octets();
    Ipv4Addr::new(a, b, c, 0)
}

/// The product names of a user agent (RFC 9110 §10.1.5: products `name/version` and comments in
/// parentheses), space-separated, without duplicates; `None` when none is left.
pub fn product_names(user_agent: &str) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    let mut token_start: Option<usize> = None;
    let mut tokens: Vec<&str> = Vec::new();
    for (i, c) in user_agent.char_indices() {
        match c {
            '(' => {
                if let Some(start) = token_start.take() {
                    tokens.push(&user_agent[start..i]);
                }
                depth += 1;
            }
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && c.is_whitespace() => {
                if let Some(start) = token_start.take() {
                    tokens.push(&user_agent[start..i]);
                }
            }
            _ if depth == 0 && token_start.is_none() => token_start = Some(i),
            _ => {}
        }
    }
    if let Some(start) = token_start {
        tokens.push(&user_agent[start..]);
    }
    for token in tokens {
        let name = token.split('/').next().unwrap_or_default();
        let plain = !name.is_empty()
            && name.len() <= MAX_PRODUCT_LEN
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'));
        if plain && !names.contains(&name) && names.len() < MAX_PRODUCTS {
            names.push(name);
        }
    }
    (!names.is_empty()).then(|| names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(value: &'static str) -> impl Env {
        move |name: &str| (name == CLIENT_INFO).then(|| value.to_owned())
    }

    #[test]
    fn full_is_the_default_and_a_bad_value_names_the_variable() {
        assert_eq!(ClientInfo::from_env(&|_: &str| None), Ok(ClientInfo::Full));
        assert_eq!(ClientInfo::from_env(&env("anonymized")), Ok(ClientInfo::Anonymized));
        assert_eq!(ClientInfo::from_env(&env("none")), Ok(ClientInfo::None));
        let err = ClientInfo::from_env(&env("anonymised")).unwrap_err().to_string();
        assert!(err.starts_with("CLIENT_INFO=\"anonymised\" is invalid: use full"), "{err}");
    }

    #[test]
    fn addresses_keep_only_their_network() {
        let a = |ip: &str| ClientInfo::Anonymized.ip(Some(ip));
        assert_eq!(a("203.0.113.57").as_deref(), Some("203.0.113.0"));
        assert_eq!(a("2001:db8:85a3:8d3:1319:8a2e:370:7348").as_deref(), Some("2001:db8:85a3::"));
        assert_eq!(a("::ffff:198.51.100.7").as_deref(), Some("198.51.100.0"));
        assert_eq!(a("not an ip"), None);
        assert_eq!(ClientInfo::Full.ip(Some("203.0.113.57")).as_deref(), Some("203.0.113.57"));
        assert_eq!(ClientInfo::None.ip(Some("203.0.113.57")), None);
    }

    #[test]
    fn user_agents_keep_only_product_names() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(product_names(iphone).as_deref(), Some("Mozilla AppleWebKit Version Mobile Safari"));
        assert_eq!(product_names("okhttp/4.12.0").as_deref(), Some("okhttp"));
        assert_eq!(product_names("Python/3.12 websockets/13.1").as_deref(), Some("Python websockets"));
        // A name carrying digits (an install id, a build) is dropped; nested comments too.
        assert_eq!(product_names("app-7f3a9c/1 (a (b) c) Chat/2").as_deref(), Some("Chat"));
        assert_eq!(product_names("(only a comment)"), None);
        assert_eq!(product_names(""), None);
    }

    proptest::proptest! {
        #[test]
        fn an_anonymized_user_agent_never_keeps_a_version_a_comment_or_a_digit(ua in "\\PC{0,200}") {
            if let Some(kept) = ClientInfo::Anonymized.user_agent(Some(&ua)) {
                proptest::prop_assert!(!kept.chars().any(|c| c.is_ascii_digit() || "()/;".contains(c)), "{kept:?}");
                proptest::prop_assert!(kept.split(' ').count() <= MAX_PRODUCTS);
            }
        }

        #[test]
        fn an_anonymized_address_keeps_at_most_its_network(v4: [u8; 4], v6: [u16; 8]) {
            let ip4 = Ipv4Addr::from(v4).to_string();
            let kept: Ipv4Addr = ClientInfo::Anonymized.ip(Some(&ip4)).unwrap().parse().unwrap();
            proptest::prop_assert_eq!(kept.octets(), [v4[0], v4[1], v4[2], 0]);
            let ip6 = Ipv6Addr::from(v6);
            let kept: IpAddr = ClientInfo::Anonymized.ip(Some(&ip6.to_string())).unwrap().parse().unwrap();
            match kept {
                IpAddr::V6(kept) => proptest::prop_assert_eq!(kept.segments(), [v6[0], v6[1], v6[2], 0, 0, 0, 0, 0]),
                IpAddr::V4(kept) => proptest::prop_assert_eq!(Some(kept.octets()[3]), ip6.to_ipv4_mapped().map(|_| 0)),
            }
        }
    }
}
