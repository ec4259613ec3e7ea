//! Catalog entities: creating, promoting, updating and deleting spaces, folders, sources,
//! views, promoted datasets and functions (UDFs), with Dremio's checks and answers.

use super::*;

impl Catalog {
    /// Checks a view's or function's SQL against the catalog.
    fn check_sql(&self, sql: &str, ctx: &[String]) -> Result<(), Reply> {
        match self.missing_table(sql, ctx) {
            Some(m) => Err(view_refused(&m)),
            None => Ok(()),
        }
    }

    /// Checks the fields of a function (UDF) into `e`.
    fn function_fields(&self, body: &Value, e: &mut Value) -> Result<(), Reply> {
        for k in ["isScalar", "functionArgList", "functionBody", "returnType"] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                e[k] = v.clone();
            }
        }
        if e.get("functionArgList").is_none_or(|v| v.is_null()) {
            e["functionArgList"] = json!("");
        }
        if !e["isScalar"].is_boolean() {
            return Err(Reply::error(400, "Field isScalar must be a boolean"));
        }
        if !e["functionArgList"].is_string() {
            return Err(Reply::error(400, "Field functionArgList must be a string"));
        }
        for k in ["functionBody", "returnType"] {
            if s(e, k).is_none_or(|x| x.trim().is_empty()) {
                return Err(Reply::error(400, &format!("Missing field {k}")));
            }
        }
        self.check_sql(s(e, "functionBody").unwrap_or_default(), &[])
    }

    /// `POST /api/v3/catalog`: spaces, sources, folders (in spaces), views and functions.
    /// Physical datasets are promoted with [`Catalog::promote`] instead.
    pub fn create(&mut self, body: &Value) -> Res {
        let kind = match s(body, "entityType") {
            Some(k @ ("space" | "folder" | "source" | "dataset" | "function")) => k,
            Some(t) => {
                return Ok(Reply::error(
                    400,
                    &format!("entityType {t} is not supported by the simulator yet"),
                ));
            }
            None => return Ok(Reply::error(400, "Missing field entityType")),
        };
        if let Some(k) = Kind::of_entity(kind)
            && let Err(r) = fields::check(body, k, self.version)
        {
            return Ok(r);
        }
        let path: Vec<String> = match kind {
            "space" | "source" => match s(body, "name").filter(|n| !n.is_empty()) {
                Some(n) => vec![n.to_string()],
                None => return Ok(Reply::error(400, "Missing field name")),
            },
            _ => match str_list(&body["path"]) {
                Some(p) if p.len() >= 2 && p.iter().all(|x| !x.is_empty()) => p,
                _ => {
                    return Ok(Reply::error(
                        400,
                        &format!("A {kind} needs a path of at least two non-empty strings"),
                    ));
                }
            },
        };
        // namespace keys join names with U+001F
        if path.iter().any(|p| p.chars().any(char::is_control)) {
            return Ok(Reply::error(400, "Names cannot contain control characters"));
        }
        if self.by_path(&path).is_some() {
            return Ok(Reply::error(
                409,
                &format!("The entity [{}] already exists.", path.join(".")),
            ));
        }
        let root = self.by_path(&path[..1]);
        let root_kind = root
            .as_ref()
            .and_then(|r| s(r, "entityType").map(str::to_string));
        let dtype = s(body, "type").unwrap_or("");
        if kind == "dataset" && dtype == "PHYSICAL_DATASET" {
            return Ok(Reply::error(
                400,
                "Physical datasets cannot be created: promote a file or folder of a source with \
                 POST /api/v3/catalog/{id} (id dremio:/<source>/<path>)",
            ));
        }
        if matches!(kind, "folder" | "dataset" | "function") {
            if root_kind.as_deref() == Some("source") {
                let what = match kind {
                    "folder" => "Folders",
                    "function" => "Functions",
                    _ => "Views",
                };
                return Ok(Reply::error(
                    400,
                    &format!(
                        "{what} cannot be created in source [{}] (the simulator has no versioned sources)",
                        path[0]
                    ),
                ));
            }
            match self.by_path(&path[..path.len() - 1]) {
                None => return Ok(missing_parent(&path)),
                Some(p) if !is_container(&p) => {
                    return Ok(Reply::error(
                        400,
                        &format!(
                            "Cannot create a {kind} under {} [{}]",
                            s(&p, "entityType").unwrap_or(""),
                            path_of(&p).join(".")
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let mut e = json!({
            "entityType": kind,
            "id": uuid(),
            "path": path,
            "tag": new_tag(),
            "createdAt": now_ms()
        });
        match kind {
            "space" => {
                e["name"] = json!(path[0]);
                if let Some(d) = body.get("description").filter(|d| !d.is_null()) {
                    e["description"] = d.clone();
                }
            }
            "folder" => {}
            "source" => {
                let Some(t) = s(body, "type").filter(|t| !t.is_empty()) else {
                    return Ok(Reply::error(400, "Missing field type"));
                };
                let mut config = body.get("config").cloned().unwrap_or(json!({}));
                if !config.is_object() {
                    return Ok(Reply::error(400, "Field config must be an object"));
                }
                if let Err(m) = unmask(t, &mut config, None, "config") {
                    return Ok(Reply::error(400, &m));
                }
                let mut m = body.as_object().cloned().unwrap_or_default();
                for k in [
                    "id",
                    "tag",
                    "createdAt",
                    "children",
                    "path",
                    "nextPageToken",
                ] {
                    m.remove(k);
                }
                for (k, v) in m {
                    e[k] = v;
                }
                e["name"] = json!(path[0]);
                e["type"] = json!(t);
                e["config"] = config;
            }
            "function" => {
                if let Err(r) = self.function_fields(body, &mut e) {
                    return Ok(r);
                }
            }
            _ => {
                // dataset: a view
                match dtype {
                    "VIRTUAL_DATASET" => {}
                    "" => return Ok(Reply::error(400, "Missing field type")),
                    t => {
                        return Ok(Reply::error(
                            400,
                            &format!(
                                "Unknown dataset type {t}: VIRTUAL_DATASET or PHYSICAL_DATASET"
                            ),
                        ));
                    }
                }
                let Some(sql) = s(body, "sql").filter(|q| !q.trim().is_empty()) else {
                    return Ok(Reply::error(400, "Missing field sql"));
                };
                let ctx = match sql_context(body.get("sqlContext")) {
                    Ok(c) => c,
                    Err(r) => return Ok(r),
                };
                if let Err(r) = self.check_sql(sql, &ctx) {
                    return Ok(r);
                }
                e["type"] = json!("VIRTUAL_DATASET");
                e["sql"] = json!(sql);
                e["sqlContext"] = json!(ctx);
                for k in ["accelerationRefreshPolicy", "fields"] {
                    if let Some(v) = body.get(k) {
                        e[k] = v.clone();
                    }
                }
                if e.get("fields").is_none() {
                    e["fields"] = json!([]);
                }
            }
        }
        self.put_entity(&e)?;
        Ok(self.present(e, ""))
    }

    /// `POST /api/v3/catalog/{id}`: promotes the file or folder `dremio:/<source>/<path>` to a
    /// physical dataset. The body is the dataset: `entityType` dataset, the same `id`, `type`
    /// PHYSICAL_DATASET, `path` the id's path, `format` an object with a `type`.
    pub fn promote(&mut self, id: &str, body: &Value) -> Res {
        if let Err(r) = fields::check(body, Kind::Dataset, self.version) {
            return Ok(r);
        }
        if !id.starts_with(FILE_ID_PREFIX) {
            return Ok(Reply::error(
                400,
                &format!(
                    "Entity [{id}] is not a file or folder of a source: only those can be promoted"
                ),
            ));
        }
        let Some(path) = parse_file_id(id).filter(|p| p.len() >= 2) else {
            return Ok(Reply::error(
                400,
                &format!("Invalid file or folder id [{id}]"),
            ));
        };
        if path.iter().any(|p| p.chars().any(char::is_control)) {
            return Ok(Reply::error(400, "Names cannot contain control characters"));
        }
        match self.by_path(&path[..1]) {
            None => return Ok(not_found_id(id)),
            Some(r) if s(&r, "entityType") != Some("source") => {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "[{}] is not a source: only files and folders of sources can be promoted",
                        path[0]
                    ),
                ));
            }
            Some(_) => {}
        }
        if s(body, "entityType") != Some("dataset") {
            return Ok(Reply::error(400, "Field entityType must be dataset"));
        }
        if s(body, "id") != Some(id) {
            return Ok(Reply::error(
                400,
                &format!(
                    "Id in the body [{}] differs from the id in the URL [{id}]",
                    s(body, "id").unwrap_or("")
                ),
            ));
        }
        if s(body, "type") != Some("PHYSICAL_DATASET") {
            return Ok(Reply::error(400, "Field type must be PHYSICAL_DATASET"));
        }
        if str_list(&body["path"]).as_deref() != Some(path.as_slice()) {
            return Ok(Reply::error(
                400,
                &format!("Field path must be the path of [{id}]: {path:?}"),
            ));
        }
        let format = match body.get("format") {
            Some(f) if f.is_object() && s(f, "type").is_some() => f.clone(),
            _ => {
                return Ok(Reply::error(
                    400,
                    "Field format must be an object with a type",
                ));
            }
        };
        if let Some(e) = self.by_path(&path) {
            return Ok(Reply::error(
                409,
                &format!(
                    "[{}] is already a dataset (id {})",
                    path.join("."),
                    s(&e, "id").unwrap_or("")
                ),
            ));
        }
        // a dataset inside a promoted folder, or a folder holding promoted datasets: refused
        // (a guess: the simulator keeps one dataset per subtree)
        for i in 2..path.len() {
            if self.by_path(&path[..i]).is_some() {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "Cannot promote [{}]: [{}] is already a dataset",
                        path.join("."),
                        path[..i].join(".")
                    ),
                ));
            }
        }
        if self.first_descendant(&path).is_some() {
            return Ok(Reply::error(
                400,
                &format!(
                    "Cannot promote [{}]: it holds promoted datasets",
                    path.join(".")
                ),
            ));
        }
        let mut e = json!({
            "entityType": "dataset",
            "id": uuid(),
            "type": "PHYSICAL_DATASET",
            "path": path,
            "tag": new_tag(),
            "createdAt": now_ms(),
            "format": format,
            "fields": body.get("fields").filter(|f| !f.is_null()).cloned().unwrap_or(json!([]))
        });
        if let Some(p) = body
            .get("accelerationRefreshPolicy")
            .filter(|p| !p.is_null())
        {
            e["accelerationRefreshPolicy"] = p.clone();
        }
        self.put_entity(&e)?;
        Ok(self.present(e, ""))
    }

    /// `PUT /api/v3/catalog/{id}`: needs the current `tag`; path, name, type and id are fixed.
    pub fn update(&mut self, id: &str, body: &Value) -> Res {
        let Some(old) = self.by_id(id) else {
            return Ok(not_found_id(id));
        };
        let kind = s(body, "entityType")
            .and_then(Kind::of_entity)
            .or_else(|| s(&old, "entityType").and_then(Kind::of_entity));
        if let Some(k) = kind
            && let Err(r) = fields::check(body, k, self.version)
        {
            return Ok(r);
        }
        if let Some(bid) = s(body, "id")
            && bid != id
        {
            return Ok(Reply::error(
                400,
                &format!("Id in the body [{bid}] differs from the id in the URL [{id}]"),
            ));
        }
        if s(body, "tag") != s(&old, "tag") {
            return Ok(tag_mismatch(
                s(body, "tag").unwrap_or(""),
                s(&old, "tag").unwrap_or(""),
                id,
            ));
        }
        for k in ["entityType", "type", "name"] {
            if let Some(v) = body.get(k)
                && !v.is_null()
                && old.get(k) != Some(v)
            {
                return Ok(Reply::error(400, &format!("Field {k} cannot be changed")));
            }
        }
        if let Some(p) = body.get("path")
            && !p.is_null()
            && str_list(p).map(|p| ns_key(&p)) != Some(ns_key(&path_of(&old)))
        {
            return Ok(Reply::error(
                400,
                "Moving or renaming entities is not supported by the simulator",
            ));
        }
        let mut e = old.clone();
        let fixed = [
            "id",
            "entityType",
            "type",
            "name",
            "path",
            "tag",
            "createdAt",
            "children",
            "nextPageToken",
        ];
        let etype = s(&old, "entityType").unwrap_or("").to_string();
        let allowed: &[&str] = match (etype.as_str(), s(&old, "type")) {
            ("source", _) => &[],
            ("dataset", Some("VIRTUAL_DATASET")) => {
                &["sql", "sqlContext", "accelerationRefreshPolicy", "fields"]
            }
            ("dataset", _) => &["format", "accelerationRefreshPolicy", "fields"],
            ("function", _) => &[],
            _ => &["description"],
        };
        for (k, v) in body.as_object().into_iter().flatten() {
            if fixed.contains(&k.as_str()) {
                continue;
            }
            if etype == "source" || allowed.contains(&k.as_str()) {
                e[k] = v.clone();
            }
        }
        match etype.as_str() {
            "source" => {
                if !e["config"].is_object() {
                    return Ok(Reply::error(400, "Field config must be an object"));
                }
                let t = s(&old, "type").unwrap_or("").to_string();
                if let Err(m) = unmask(&t, &mut e["config"], old.get("config"), "config") {
                    return Ok(Reply::error(400, &m));
                }
            }
            "function" => {
                if let Err(r) = self.function_fields(body, &mut e) {
                    return Ok(r);
                }
            }
            "dataset" if s(&old, "type") == Some("VIRTUAL_DATASET") => {
                let Some(sql) = s(&e, "sql")
                    .filter(|q| !q.trim().is_empty())
                    .map(str::to_string)
                else {
                    return Ok(Reply::error(400, "Missing field sql"));
                };
                let ctx = match sql_context(e.get("sqlContext")) {
                    Ok(c) => c,
                    Err(r) => return Ok(r),
                };
                if let Err(r) = self.check_sql(&sql, &ctx) {
                    return Ok(r);
                }
                e["sqlContext"] = json!(ctx);
            }
            "dataset" if !e["format"].is_object() || s(&e["format"], "type").is_none() => {
                return Ok(Reply::error(
                    400,
                    "Field format must be an object with a type",
                ));
            }
            _ => {}
        }
        e["tag"] = json!(new_tag());
        self.put_entity(&e)?;
        Ok(self.present(e, ""))
    }

    /// `DELETE /api/v3/catalog/{id}?tag=`: a given tag must be current; removes the descendants
    /// and the reflections, wiki and tags of everything removed. Deleting a promoted dataset
    /// unpromotes it.
    pub fn delete(&mut self, id: &str, query: &str) -> Res {
        let old = match self.resolve_id(id) {
            None => return Ok(not_found_id(id)),
            Some(Found::SourceFolder(p)) => {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "[{}] is a folder of a source: it cannot be deleted through the catalog",
                        p.join(".")
                    ),
                ));
            }
            Some(Found::Entity(e)) => e,
        };
        if let Some(t) = query_param(query, "tag")
            && Some(t.as_str()) != s(&old, "tag")
        {
            return Ok(tag_mismatch(&t, s(&old, "tag").unwrap_or(""), id));
        }
        self.delete_subtree(&path_of(&old))?;
        Ok(no_content())
    }
}
