//! Applying one item of a plan to a Dremio target over REST: creates, updates and deletes of
//! catalog objects, users, reflections, wikis and tags; fields the target's version does not know
//! are dropped with a warning (and remembered per kind).

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::cluster::DremioCluster;
use super::export::Entry;
use super::mapping::{fill_masked, masked_fields, set_dotted};
use super::model::{DremioObject, Kind, Object, Part, promotion_id, str_of, url_segment};
use crate::clone::kind::{ArtefactKind, key};
use crate::clone::plan::{Action, Item, What};
use crate::dremio::rest::error_message;

/// What one request answered.
struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl DremioCluster {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = self.remote.coord.request(method, path, body).await;
        let unanswered = &self.unanswered;
        let (status, text) = match answer {
            Ok(a) => {
                unanswered.store(0, Ordering::Relaxed);
                a
            }
            Err(e) => {
                unanswered.fetch_add(1, Ordering::Relaxed);
                return Err(e.to_string());
            }
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body, text })
    }

    /// Deletes; an object already gone counts as deleted.
    async fn delete(&self, path: &str) -> Result<(), String> {
        let a = self.send(Method::DELETE, path, None).await?;
        match a.status {
            200..=299 | 404 => Ok(()),
            s => Err(format!("HTTP {s}: {}", error_message(&a.text))),
        }
    }

    /// Sends a body, dropping (with a warning) each field the target reports as unknown, and
    /// remembering it for the next bodies of the same kind.
    async fn send_tolerant(
        &self,
        method: Method,
        path: &str,
        what: &str,
        mut body: Value,
        warnings: &mut Vec<String>,
    ) -> Result<Value, String> {
        let known_unknown: Vec<String> = self
            .dropped
            .lock()
            .expect("dropped lock")
            .iter()
            .filter(|(w, _)| w == what)
            .map(|(_, f)| f.clone())
            .collect();
        for f in known_unknown {
            if remove_field(&mut body, &f) {
                warnings.push(self.dropped_warning(&f));
            }
        }
        for _ in 0..16 {
            let a = self.send(method.clone(), path, Some(&body)).await?;
            if (200..300).contains(&a.status) {
                return Ok(a.body);
            }
            let message = error_message(&a.text);
            if a.status == 400
                && let Some(field) = unknown_field(&message)
                && remove_field(&mut body, &field)
            {
                warnings.push(self.dropped_warning(&field));
                self.dropped
                    .lock()
                    .expect("dropped lock")
                    .insert((what.to_string(), field));
                continue;
            }
            return Err(format!("HTTP {}: {message}", a.status));
        }
        Err("too many fields refused by the target".into())
    }

    fn dropped_warning(&self, field: &str) -> String {
        format!(
            "field {field} dropped: the target (Dremio {}) does not accept it",
            self.remote.version
        )
    }
}

/// `Unrecognized field "x"` (Jackson's words for a field the server's version does not have).
pub fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split_once("Unrecognized field \"")?.1;
    Some(rest.split_once('"')?.0.to_string())
}

/// Removes a field wherever it is in the body (top level first); true when something was removed.
fn remove_field(body: &mut Value, field: &str) -> bool {
    match body {
        Value::Object(m) => {
            if m.remove(field).is_some() {
                return true;
            }
            m.values_mut().any(|v| remove_field(v, field))
        }
        Value::Array(a) => a.iter_mut().any(|v| remove_field(v, field)),
        _ => false,
    }
}

fn entry_of(answer: &Value) -> Entry {
    let s = |k: &str| str_of(answer, k);
    Entry {
        id: s("id"),
        tag: s("tag"),
        ..Entry::default()
    }
}

/// A strong random password for a user whose password the mapping does not give.
fn random_password() -> Result<String, String> {
    let mut b = [0u8; 18];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for a password: {e}"))?;
    Ok(format!("Lb1{}", hex::encode(b)))
}

/// Applies one item of the plan: `object` is the source's object as the target must hold it
/// (None for a deletion).
pub(super) async fn item(
    c: &DremioCluster,
    item: &Item<Kind, Part>,
    object: Option<Object>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    match (item.what, object) {
        (What::Object(kind), _) if item.action == Action::Delete => {
            delete_object(c, item, kind).await
        }
        (What::Part(_, Part::Reflection), o) => reflection_item(c, item, o, warnings).await,
        (_, None) => Err("no source object for this item".into()),
        (What::Object(Kind::User), Some(o)) => user_item(c, item, &o, warnings).await,
        (What::Object(kind), Some(o)) => object_item(c, item, kind, &o, warnings).await,
        (What::Part(..), Some(o)) => collab_item(c, item, &o, warnings).await,
    }
}

async fn delete_object(
    c: &DremioCluster,
    item: &Item<Kind, Part>,
    kind: Kind,
) -> Result<(), String> {
    let e = c
        .entry(&key(kind, &item.path.parts()))
        .ok_or("the target object's id is not known")?;
    c.delete(&format!(
        "/api/v3/catalog/{}?tag={}",
        url_segment(&e.id),
        url_segment(&e.tag)
    ))
    .await
}

async fn object_item(
    sh: &DremioCluster,
    item: &Item<Kind, Part>,
    kind: Kind,
    o: &Object,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let k = key(kind, &item.path.parts());
    let mut body = if item.action == Action::Create {
        o.create_body()
    } else {
        let e = sh.entry(&k).ok_or("the target object's id is not known")?;
        o.update_body(&e.id, &e.tag)
    };
    if kind == Kind::Source {
        let src = item
            .source()
            .map(|p| p.root().to_string())
            .unwrap_or_default();
        for (field, secret) in sh.mapping.source_secrets(&src, sh.env.as_ref())? {
            set_dotted(&mut body["config"], &field, &secret.0);
        }
        // An update puts back the target's own values where the export masked them (its server
        // keeps a secret sent back masked, but not, e.g., a property-list value); a new source
        // has none to keep.
        let target_config = sh.entry(&k).and_then(|e| e.config);
        let still = if item.action == Action::Update {
            fill_masked(&mut body["config"], target_config.as_deref())
        } else {
            masked_fields(&body["config"])
        };
        if !still.is_empty() {
            return Err(format!(
                "the source needs its secrets ({}): map them under [secrets.{src}]",
                still.join(", ")
            ));
        }
    }
    let (method, url) = match (item.action, kind) {
        (Action::Create, Kind::Dataset) => (
            Method::POST,
            format!("/api/v3/catalog/{}", url_segment(&promotion_id(&o.path))),
        ),
        (Action::Create, _) => (Method::POST, "/api/v3/catalog".to_string()),
        _ => {
            let e = sh.entry(&k).ok_or("the target object's id is not known")?;
            (
                Method::PUT,
                format!("/api/v3/catalog/{}", url_segment(&e.id)),
            )
        }
    };
    let answer = sh
        .send_tolerant(method, &url, kind.word(), body, warnings)
        .await?;
    let mut entry = entry_of(&answer);
    if let Some(old) = sh.entry(&k) {
        entry.wiki_version = old.wiki_version;
        entry.tags_version = old.tags_version;
        entry.reflections = old.reflections;
    }
    sh.remember(k, entry);
    Ok(())
}

async fn user_item(
    sh: &DremioCluster,
    item: &Item<Kind, Part>,
    o: &Object,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let name = &o.path[0];
    let mut body = o.create_body();
    if item.action == Action::Create {
        let src = item
            .source()
            .map(|p| p.root().to_string())
            .unwrap_or_default();
        let password = match sh.mapping.password(&src, sh.env.as_ref()) {
            Some(p) => p?.0,
            None => {
                warnings.push(format!(
                    "created with a random password: set one under [passwords] in the mapping file, or reset {name}'s password on the target"
                ));
                random_password()?
            }
        };
        body["password"] = json!(password);
        let answer = sh
            .send_tolerant(Method::POST, "/api/v3/user", "user", body, warnings)
            .await?;
        sh.remember(key(Kind::User, &o.path), entry_of(&answer));
        return Ok(());
    }
    let e = sh
        .entry(&key(Kind::User, &o.path))
        .ok_or("the target user's id is not known")?;
    let current = sh
        .send(
            Method::GET,
            &format!("/api/v3/user/{}", url_segment(&e.id)),
            None,
        )
        .await?;
    if !(200..300).contains(&current.status) {
        return Err(format!(
            "HTTP {}: {}",
            current.status,
            error_message(&current.text)
        ));
    }
    body["id"] = json!(e.id);
    body["tag"] = current.body.get("tag").cloned().unwrap_or(Value::Null);
    sh.send_tolerant(
        Method::PUT,
        &format!("/api/v3/user/{}", url_segment(&e.id)),
        "user",
        body,
        warnings,
    )
    .await?;
    Ok(())
}

async fn reflection_item(
    sh: &DremioCluster,
    item: &Item<Kind, Part>,
    object: Option<Object>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let dk = key(item.what.kind(), &item.path.parts());
    let dataset = sh
        .entry(&dk)
        .ok_or("the dataset's id on the target is not known")?;
    let name = item.name.clone().unwrap_or_default();
    let existing = dataset.reflection(&name);
    if item.action == Action::Delete {
        let (id, _) = existing.ok_or("the reflection's id is not known")?;
        return sh
            .delete(&format!("/api/v3/reflection/{}", url_segment(&id)))
            .await;
    }
    let o = object.ok_or("no source object for this item")?;
    let def: Map<String, Value> = o
        .reflections()
        .into_iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(name.as_str()))
        .ok_or("the reflection is gone from the source tree")?;
    let mut body = Value::Object(def);
    body["datasetId"] = json!(dataset.id);
    let answer = match (item.action, existing) {
        (Action::Update, Some((id, tag))) => {
            body["id"] = json!(id);
            body["tag"] = json!(tag);
            sh.send_tolerant(
                Method::PUT,
                &format!("/api/v3/reflection/{}", url_segment(&id)),
                "reflection",
                body,
                warnings,
            )
            .await?
        }
        _ => {
            sh.send_tolerant(
                Method::POST,
                "/api/v3/reflection",
                "reflection",
                body,
                warnings,
            )
            .await?
        }
    };
    let s = |k: &str| str_of(&answer, k);
    if let Some(e) = sh.index.lock().expect("index lock").get_mut(&dk) {
        e.set_reflection(name, s("id"), s("tag"));
    }
    Ok(())
}

async fn collab_item(
    sh: &DremioCluster,
    item: &Item<Kind, Part>,
    o: &Object,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let wiki = matches!(item.what, What::Part(_, Part::Wiki));
    let k = key(item.what.kind(), &item.path.parts());
    let e = sh
        .entry(&k)
        .ok_or("the object's id on the target is not known")?;
    let (what, mut body, version) = if wiki {
        (
            "wiki",
            json!({"text": o.wiki.clone().unwrap_or_default()}),
            e.wiki_version.clone(),
        )
    } else {
        ("tag", json!({"tags": o.tags()}), e.tags_version.clone())
    };
    if let Some(v) = version {
        body["version"] = *v;
    }
    let answer = sh
        .send_tolerant(
            Method::POST,
            &format!(
                "/api/v3/catalog/{}/collaboration/{what}",
                url_segment(&e.id)
            ),
            what,
            body,
            warnings,
        )
        .await?;
    if let Some(e) = sh.index.lock().expect("index lock").get_mut(&k) {
        let v = answer.get("version").cloned().map(Box::new);
        if wiki {
            e.wiki_version = v;
        } else {
            e.tags_version = v;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_read_from_jacksons_message() {
        assert_eq!(
            unknown_field("Unrecognized field \"arrowCachingEnabled\" (class com.dremio.X), not marked as ignorable").as_deref(),
            Some("arrowCachingEnabled")
        );
        assert_eq!(unknown_field("Validation of view sql failed"), None);
        let mut v = json!({"a": 1, "config": {"b": 2}});
        assert!(remove_field(&mut v, "b"));
        assert!(!remove_field(&mut v, "zz"));
        assert_eq!(v, json!({"a": 1, "config": {}}));
    }
}
