//! Collaboration documents: the wiki and tags of catalog entities.

use super::*;

/// Which collaboration document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Collab {
    Wiki,
    Tags,
}

impl Collab {
    fn table(self) -> &'static str {
        match self {
            Collab::Wiki => WIKI,
            Collab::Tags => TAGS,
        }
    }
    fn field(self) -> &'static str {
        match self {
            Collab::Wiki => "text",
            Collab::Tags => "tags",
        }
    }
    fn what(self) -> &'static str {
        match self {
            Collab::Wiki => "Wiki",
            Collab::Tags => "Tags",
        }
    }
}

fn collab_answer(c: Collab, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert(c.field().into(), v[c.field()].clone());
    m.insert("version".into(), v["version"].clone());
    Value::Object(m)
}

impl Catalog {
    /// `GET /api/v3/catalog/{id}/collaboration/{wiki|tag}`.
    pub fn collab_get(&self, c: Collab, id: &str) -> Reply {
        if self.by_id(id).is_none() {
            return not_found_id(id);
        }
        match self.store.get_json(c.table(), id) {
            Some(v) => Reply::ok(collab_answer(c, &v)),
            None => Reply::error(404, &format!("{} for entity [{id}] not found", c.what())),
        }
    }

    /// `POST /api/v3/catalog/{id}/collaboration/{wiki|tag}`: the first without a version, then
    /// with the current one; each save increments it.
    pub fn collab_set(&mut self, c: Collab, id: &str, body: &Value) -> Res {
        let Some(e) = self.by_id(id) else {
            return Ok(not_found_id(id));
        };
        let value = match c {
            Collab::Wiki => match s(body, "text") {
                Some(t) if t.chars().count() > WIKI_MAX => {
                    return Ok(Reply::error(
                        400,
                        &format!("Wiki text cannot exceed {WIKI_MAX} characters"),
                    ));
                }
                Some(t) => json!(t),
                None => return Ok(Reply::error(400, "Missing field text")),
            },
            Collab::Tags => {
                if !is_dataset(&e) {
                    return Ok(Reply::error(
                        400,
                        &format!(
                            "Tags can only be set on datasets but found [{}]",
                            s(&e, "entityType").unwrap_or("")
                        ),
                    ));
                }
                match str_list(&body["tags"]) {
                    Some(t) => json!(t),
                    None => {
                        return Ok(Reply::error(400, "Field tags must be a list of strings"));
                    }
                }
            }
        };
        let sent = body.get("version").filter(|v| !v.is_null());
        let old = self.store.get_json(c.table(), id);
        let version = match (&old, sent) {
            (None, None) => 0,
            (Some(o), Some(v)) if o.get("version") == Some(v) => {
                o["version"].as_i64().unwrap_or(0) + 1
            }
            (None, Some(v)) => {
                return Ok(Reply::error(
                    409,
                    &format!(
                        "{} for entity [{id}] does not exist yet: send no version (got {v})",
                        c.what()
                    ),
                ));
            }
            (Some(o), _) => {
                return Ok(Reply::error(
                    409,
                    &format!(
                        "{} version mismatch for entity [{id}]: current version is {}, got {}",
                        c.what(),
                        o["version"],
                        sent.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
                    ),
                ));
            }
        };
        let mut v = json!({"entityId": id, "version": version});
        v[c.field()] = value;
        self.store.put_json(c.table(), id, &v)?;
        Ok(Reply::ok(collab_answer(c, &v)))
    }
}
