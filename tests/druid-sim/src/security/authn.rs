//! An authenticator's users and credentials: `.../authentication/db/{name}/users[/{u}[/credentials]]`.
//!
//! Passwords are kept as Druid keeps them, a PBKDF2WithHmacSHA512 hash with a random salt, and
//! no endpoint gives them back.

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::{load, names, refuse, save};
use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// Druid's `BasicAuthUtils`: 10,000 iterations, a 32-byte salt, a 512-bit key.
const ITERATIONS: u32 = 10_000;
const SALT_BYTES: usize = 32;
const KEY_BYTES: usize = 64;

/// The `druid_config` row of an authenticator's users.
pub fn row(authenticator: &str) -> String {
    format!("basic_authentication_{authenticator}_users")
}

/// Answers `users...`; `tail` is the path after `/db/{name}`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    name: &str,
    tail: &[&str],
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    let row = row(name);
    let users = match load(store, &row) {
        Ok(u) => u,
        Err(e) => return Some(Err(e)),
    };
    Some(match (req.method.as_str(), tail) {
        ("GET", ["users"]) => Ok(names(&users)),
        ("GET", ["users", u]) => match users.contains_key(*u) {
            true => Ok(Reply::json(200, &json!({"name": u}))),
            false => missing(u),
        },
        ("POST", ["users", u]) => {
            if users.contains_key(*u) {
                return Some(refuse(format!("User [{u}] already exists.")));
            }
            let mut users = users;
            users.insert((*u).to_string(), json!({"name": u, "credentials": null}));
            save(store, &row, users, audit)
        }
        ("DELETE", ["users", u]) => {
            let mut users = users;
            if users.remove(*u).is_none() {
                return Some(missing(u));
            }
            save(store, &row, users, audit)
        }
        ("POST", ["users", u, "credentials"]) => {
            let Some(user) = users.get(*u) else {
                return Some(missing(u));
            };
            let password = match password(&req.body) {
                Ok(p) => p,
                Err(msg) => return Some(refuse(msg)),
            };
            let mut user = user.clone();
            user["credentials"] = match hash(&password) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            let mut users = users;
            users.insert((*u).to_string(), user);
            save(store, &row, users, audit)
        }
        _ => return None,
    })
}

fn missing(u: &str) -> Result<Reply> {
    refuse(format!("User [{u}] does not exist."))
}

fn password(body: &[u8]) -> Result<String, String> {
    let obj = crate::parse::object(body, "the credentials")?;
    match obj.get("password") {
        Some(Value::String(p)) if !p.is_empty() => Ok(p.clone()),
        _ => Err("Invalid password: it must be a non-empty string".into()),
    }
}

/// `{salt, hash, iterations}` for a password, with a fresh salt.
pub fn hash(password: &str) -> Result<Value> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no OS randomness for a salt: {e}"))?;
    Ok(
        json!({"salt": B64.encode(salt), "hash": B64.encode(derive(password, &salt, ITERATIONS)),
              "iterations": ITERATIONS}),
    )
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, iterations, &mut key);
    key
}

/// Whether `password` is the one `credentials` were made from. Hostile or missing credentials
/// (a user without a password) never match.
pub fn verify(credentials: &Value, password: &str) -> bool {
    let field = |k: &str| credentials[k].as_str().and_then(|s| B64.decode(s).ok());
    let (Some(salt), Some(want)) = (field("salt"), field("hash")) else {
        return false;
    };
    let Some(iterations) = credentials["iterations"]
        .as_u64()
        .and_then(|i| u32::try_from(i).ok())
        .filter(|i| (1..=ITERATIONS * 10).contains(i))
    else {
        return false;
    };
    let got = derive(password, &salt, iterations);
    // constant-time enough for a simulator: compare every byte
    want.len() == got.len()
        && want
            .iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The user's credentials, when it exists and has a password.
pub fn credentials(
    store: &dyn MetadataStore,
    authenticator: &str,
    user: &str,
) -> Result<Option<Value>> {
    Ok(load(store, &row(authenticator))?
        .get(user)
        .map(|u| u["credentials"].clone())
        .filter(|c| !c.is_null()))
}

/// Makes `admin` with `password` unless it exists (Druid's `initialAdminPassword`).
pub fn seed_admin(
    store: &mut dyn MetadataStore,
    authenticator: &str,
    password: &str,
    audit: &AuditInfo,
) -> Result<()> {
    let row = row(authenticator);
    let mut users = load(store, &row)?;
    if users.contains_key("admin") {
        return Ok(());
    }
    users.insert(
        "admin".into(),
        json!({"name": "admin", "credentials": hash(password)?}),
    );
    save(store, &row, users, audit).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_hides_it() {
        let c = hash("s3cret").unwrap();
        assert!(verify(&c, "s3cret"));
        assert!(!verify(&c, "s3cret "));
        assert!(!c.to_string().contains("s3cret"));
        assert_ne!(
            hash("s3cret").unwrap()["salt"],
            c["salt"],
            "a fresh salt each time"
        );
        let mut hostile = c.clone();
        hostile["iterations"] = json!(u64::MAX);
        assert!(!verify(&hostile, "s3cret"), "no unbounded work");
        assert!(!verify(&json!(null), "s3cret"));
    }
}
