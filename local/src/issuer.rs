//! A token issuer for development, so the real authorizer runs locally: ws-local makes a P-256
//! key when it starts, publishes it at `/issuer/.well-known/jwks.json`, and signs ES256 tokens
//! at `POST /issuer/token` (what `ws-local token --sub …` calls). Tokens die with the process,
//! as they would with a rotated key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::LOCAL_AUDIENCE;

/// A token's longest life.
pub const MAX_TTL_SECONDS: i64 = 24 * 60 * 60;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub sub: String,
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
    /// Extra claims (e.g. `token_use`), added as given.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

pub struct Issuer {
    url: String,
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("url", &self.url).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Issuer {
    /// A new key for the issuer at `url` (the tokens' `iss`).
    pub fn new(url: String) -> Self {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let kid = format!("ws-local-{}", &crate::http::random_id()[..8]);
        let jwks = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(point.x().expect("an uncompressed point has x")),
            "y": B64.encode(point.y().expect("an uncompressed point has y")),
        }]});
        let der = secret.to_pkcs8_der().expect("a P-256 key encodes as PKCS#8");
        Self { url, kid, key: EncodingKey::from_ec_der(der.as_bytes()), jwks }
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// OpenID discovery, for tools that start from the issuer.
    pub fn discovery(&self) -> Value {
        json!({ "issuer": self.url, "jwks_uri": format!("{}/.well-known/jwks.json", self.url),
                "id_token_signing_alg_values_supported": ["ES256"] })
    }

    /// Signs a token for `request.sub`, valid `ttl_seconds` (default an hour; negative: already expired).
    pub fn token(&self, request: &TokenRequest) -> Result<String, String> {
        if request.sub.is_empty() || request.sub.len() > 128 {
            return Err("sub must be 1-128 characters".into());
        }
        let ttl = request.ttl_seconds.unwrap_or(3600);
        if ttl > MAX_TTL_SECONDS {
            return Err(format!("ttlSeconds must be at most {MAX_TTL_SECONDS}"));
        }
        let now = chrono::Utc::now().timestamp();
        let mut claims = request.claims.clone();
        for (name, value) in [
            ("iss", json!(self.url)),
            ("sub", json!(request.sub)),
            ("aud", json!(LOCAL_AUDIENCE)),
            ("iat", json!(now)),
            ("nbf", json!(now)),
            ("exp", json!(now + ttl)),
        ] {
            claims.insert(name.into(), value);
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| format!("signing failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_the_published_key_and_carries_the_claims() {
        let issuer = Issuer::new("http://127.0.0.1:1/issuer".into());
        let request = TokenRequest { sub: "alice".into(), ttl_seconds: None, claims: Map::new() };
        let token = issuer.token(&request).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(issuer.jwks()["keys"][0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&[LOCAL_AUDIENCE]);
        validation.set_issuer(&["http://127.0.0.1:1/issuer"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "alice");
        assert_eq!(data.header.kid.as_deref(), Some(issuer.kid.as_str()));
    }

    #[test]
    fn a_bad_request_says_what_is_wrong() {
        let issuer = Issuer::new("http://127.0.0.1:1/issuer".into());
        let long = TokenRequest { sub: "a".into(), ttl_seconds: Some(MAX_TTL_SECONDS + 1), claims: Map::new() };
        assert_eq!(issuer.token(&long).unwrap_err(), "ttlSeconds must be at most 86400");
        let empty = TokenRequest { sub: String::new(), ttl_seconds: None, claims: Map::new() };
        assert_eq!(issuer.token(&empty).unwrap_err(), "sub must be 1-128 characters");
    }
}
