//! Reflections (`/api/v3/reflection`, `/api/v3/dataset/{id}/reflection`).

use super::*;

const REFLECTION_LISTS: &[&str] = &[
    "dimensionFields",
    "measureFields",
    "displayFields",
    "distributionFields",
    "partitionFields",
    "sortFields",
];

fn reflection_not_found(id: &str) -> Reply {
    Reply::error(404, &format!("Reflection with id [{id}] not found"))
}

impl Catalog {
    fn arrow_caching(&self) -> bool {
        self.version >= fields::ARROW_CACHING_SINCE
    }

    /// A reflection as answered: without the fields this version does not know.
    fn reflection_out(&self, mut r: Value) -> Value {
        if !self.arrow_caching()
            && let Some(m) = r.as_object_mut()
        {
            for k in fields::REFLECTION_SINCE_25 {
                m.remove(*k);
            }
        }
        r
    }

    /// Checks and normalises the editable fields of a reflection into `r`.
    fn reflection_fields(&self, body: &Value, r: &mut Value) -> Result<(), Reply> {
        match s(body, "type") {
            Some("RAW" | "AGGREGATION") => r["type"] = body["type"].clone(),
            Some(t) => {
                return Err(Reply::error(
                    400,
                    &format!("Unknown reflection type {t}: RAW or AGGREGATION"),
                ));
            }
            None => return Err(Reply::error(400, "Missing field type")),
        }
        match s(body, "name").filter(|n| !n.trim().is_empty()) {
            Some(n) => r["name"] = json!(n),
            None => return Err(Reply::error(400, "Missing field name")),
        }
        for k in REFLECTION_LISTS {
            let v = body.get(*k).cloned().unwrap_or(Value::Null);
            let v = if v.is_null() { json!([]) } else { v };
            let ok = v.as_array().is_some_and(|a| {
                a.iter()
                    .all(|f| s(f, "name").is_some_and(|n| !n.is_empty()))
            });
            if !ok {
                return Err(Reply::error(
                    400,
                    &format!("Field {k} must be a list of objects with a name"),
                ));
            }
            r[*k] = v;
        }
        let flags: &[&str] = if self.arrow_caching() {
            &["enabled", "arrowCachingEnabled"]
        } else {
            &["enabled"]
        };
        for k in flags {
            match body.get(*k) {
                None | Some(Value::Null) => {
                    if r.get(*k).is_none() {
                        r[*k] = json!(*k == "enabled");
                    }
                }
                Some(Value::Bool(b)) => r[*k] = json!(b),
                Some(_) => {
                    return Err(Reply::error(400, &format!("Field {k} must be a boolean")));
                }
            }
        }
        match s(body, "partitionDistributionStrategy") {
            None => {
                if r.get("partitionDistributionStrategy").is_none() {
                    r["partitionDistributionStrategy"] = json!("CONSOLIDATED");
                }
            }
            Some(p @ ("CONSOLIDATED" | "STRIPED")) => r["partitionDistributionStrategy"] = json!(p),
            Some(p) => {
                return Err(Reply::error(
                    400,
                    &format!("Unknown partitionDistributionStrategy {p}: CONSOLIDATED or STRIPED"),
                ));
            }
        }
        Ok(())
    }

    /// `POST /api/v3/reflection`.
    pub fn reflection_create(&mut self, body: &Value) -> Res {
        if let Err(r) = fields::check(body, Kind::Reflection, self.version) {
            return Ok(r);
        }
        let Some(ds) = s(body, "datasetId").filter(|d| !d.is_empty()) else {
            return Ok(Reply::error(400, "Missing field datasetId"));
        };
        if !self.by_id(ds).is_some_and(|e| is_dataset(&e)) {
            return Ok(Reply::error(
                400,
                &format!("Dataset with id [{ds}] not found"),
            ));
        }
        let now = now_ms();
        let mut r = json!({
            "entityType": "reflection",
            "id": uuid(),
            "tag": new_tag(),
            "datasetId": ds,
            "createdAt": now,
            "updatedAt": now
        });
        if let Err(e) = self.reflection_fields(body, &mut r) {
            return Ok(e);
        }
        self.put_reflection(&r)?;
        Ok(Reply::ok(self.reflection_out(r)))
    }

    /// `GET /api/v3/reflection/{id}`.
    pub fn reflection_get(&self, id: &str) -> Reply {
        match self.store.get_json(REFLECTIONS, id) {
            Some(r) => Reply::ok(self.reflection_out(r)),
            None => reflection_not_found(id),
        }
    }

    /// `GET /api/v3/reflection`: every reflection.
    pub fn reflection_list(&self) -> Reply {
        if self.version < fields::REFLECTION_LIST_SINCE {
            return Reply::error(404, "HTTP 404 Not Found");
        }
        let data: Vec<Value> = self
            .store
            .values_json(REFLECTIONS)
            .into_iter()
            .map(|r| self.reflection_out(r))
            .collect();
        Reply::ok(json!({ "data": data }))
    }

    /// `PUT /api/v3/reflection/{id}`: needs the current `tag`; `datasetId` is fixed.
    pub fn reflection_update(&mut self, id: &str, body: &Value) -> Res {
        if let Err(r) = fields::check(body, Kind::Reflection, self.version) {
            return Ok(r);
        }
        let Some(old) = self.store.get_json(REFLECTIONS, id) else {
            return Ok(reflection_not_found(id));
        };
        if s(body, "tag") != s(&old, "tag") {
            return Ok(Reply::error(
                409,
                &format!(
                    "Tag [{}] does not match the current tag [{}] of reflection [{id}]",
                    s(body, "tag").unwrap_or(""),
                    s(&old, "tag").unwrap_or("")
                ),
            ));
        }
        for k in ["id", "datasetId"] {
            if let Some(v) = body.get(k)
                && !v.is_null()
                && old.get(k) != Some(v)
            {
                return Ok(Reply::error(400, &format!("Field {k} cannot be changed")));
            }
        }
        let mut r = old.clone();
        if let Err(e) = self.reflection_fields(body, &mut r) {
            return Ok(e);
        }
        r["tag"] = json!(new_tag());
        r["updatedAt"] = json!(now_ms());
        self.put_reflection(&r)?;
        Ok(Reply::ok(self.reflection_out(r)))
    }

    /// `DELETE /api/v3/reflection/{id}`.
    pub fn reflection_delete(&mut self, id: &str) -> Res {
        if self.store.get(REFLECTIONS, id).is_none() {
            return Ok(reflection_not_found(id));
        }
        self.delete_reflection(id)?;
        Ok(no_content())
    }

    /// `GET /api/v3/dataset/{id}/reflection`.
    pub fn dataset_reflections(&self, id: &str) -> Reply {
        if !self.by_id(id).is_some_and(|e| is_dataset(&e)) {
            return Reply::error(404, &format!("Dataset with id [{id}] not found"));
        }
        let data: Vec<Value> = self
            .reflections_of
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|r| self.store.get_json(REFLECTIONS, r))
            .map(|r| self.reflection_out(r))
            .collect();
        Reply::ok(json!({ "data": data }))
    }
}
