//! Walks a live cluster's catalog, reflections, wikis, tags and users, with bounded concurrency,
//! into a tree (`crate::clone::tree`) updated in place, and keeps an index of what the target
//! needs to change an object later (ids, tags, collaboration versions).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinSet;

use super::Skip;
use super::model::{
    DremioObject, Kind, Object, Part, entity_kind, from_entity, from_user, str_list, str_of,
    url_segment,
};
use crate::clone::CloneError;
use crate::clone::cluster::{ExportRun, Exported, Known};
use crate::clone::filter::Filter;
use crate::clone::kind::{CatPath, Key, key};
use crate::clone::tree::{Tree, Written};
use crate::dremio::DremioError;
use crate::dremio::rest::{Coordinator, error_message};

/// A logged-in cluster and what it said about itself.
pub struct Remote {
    pub coord: Coordinator,
    /// e.g. `25.2.0-202410241428100111-a963b970`.
    pub version: String,
    /// `OSS`, `EE`, ... when the cluster says.
    pub cluster_type: Option<String>,
}

/// Ids and versions of one object on a cluster, needed to update or delete it there.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub id: String,
    pub tag: String,
    /// Versions of the wiki and tags documents (boxed: most objects have neither, and an index
    /// holds one entry per object of the target).
    pub wiki_version: Option<Box<Value>>,
    pub tags_version: Option<Box<Value>>,
    /// Reflections: (name, id, tag); a dataset has a few at most.
    pub reflections: Vec<(String, String, String)>,
    /// A source's config as the server answered it (its own masking only): an update puts back
    /// the target's values where the export masked more. Kept in memory, never written.
    pub config: Option<Box<Value>>,
}

impl Entry {
    /// The id and tag of the reflection called `name`.
    pub fn reflection(&self, name: &str) -> Option<(String, String)> {
        self.reflections
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, id, tag)| (id.clone(), tag.clone()))
    }

    pub fn set_reflection(&mut self, name: String, id: String, tag: String) {
        self.reflections.retain(|(n, _, _)| *n != name);
        self.reflections.push((name, id, tag));
    }
}

/// What an export found: the engine's summary, and the ids and versions of each object (kept
/// only when asked for).
pub type Found = (Exported<Kind, Part>, HashMap<Key, Entry>);

/// What a fetch task brings back.
enum Fetched {
    Object {
        object: Box<Object>,
        entry: Entry,
        /// Children items of a container, to walk next.
        children: Vec<Value>,
        /// Inside a source: storage folders are walked, not recorded.
        record: bool,
    },
    /// An item lifeboat does not clone (a home, a file), with the reason when worth saying.
    Passed(Option<String>),
}

/// One GET answering JSON; 404 is `None`.
async fn get(coord: &Coordinator, path: &str) -> Result<Option<Value>, DremioError> {
    let (status, text) = coord.request(Method::GET, path, None).await?;
    match status {
        200..=299 => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| DremioError::Api {
                url: format!("{}{path}", coord.base),
                status: Some(status),
                message: format!("unexpected answer: {e}"),
            }),
        404 => Ok(None),
        _ => Err(DremioError::Api {
            url: format!("{}{path}", coord.base),
            status: Some(status),
            message: error_message(&text),
        }),
    }
}

/// A container with all its children (paged).
async fn get_container(
    coord: &Coordinator,
    id: &str,
) -> Result<Option<(Value, Vec<Value>)>, DremioError> {
    let mut children = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("/api/v3/catalog/{}?maxChildren=500", url_segment(id));
        if let Some(t) = &token {
            url.push_str(&format!("&pageToken={}", url_segment(t)));
        }
        let Some(mut e) = get(coord, &url).await? else {
            return Ok(None);
        };
        if let Some(Value::Array(kids)) = e.get_mut("children").map(Value::take) {
            children.extend(kids);
        }
        token = e
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(Some((e, children)));
        }
    }
}

/// What kind an item of a listing is (files, homes and direct datasets are not cloned).
fn item_kind(item: &Value) -> Option<Kind> {
    let s = |k: &str| item.get(k).and_then(Value::as_str);
    match (s("type")?, s("containerType"), s("datasetType")) {
        ("CONTAINER", Some("SPACE"), _) => Some(Kind::Space),
        ("CONTAINER", Some("SOURCE"), _) => Some(Kind::Source),
        ("CONTAINER", Some("FOLDER"), _) => Some(Kind::Folder),
        ("CONTAINER", Some("FUNCTION"), _) => Some(Kind::Function),
        ("DATASET", _, Some("VIRTUAL")) => Some(Kind::View),
        ("DATASET", _, Some("PROMOTED")) => Some(Kind::Dataset),
        _ => None,
    }
}

/// Reads one catalog item (and its wiki and tags).
async fn fetch(
    coord: Arc<Remote>,
    item: Value,
    kind: Kind,
    in_source: bool,
    reflections: Arc<Reflections>,
    skip_wikis: bool,
    skip_tags: bool,
) -> Result<Fetched, DremioError> {
    let c = &coord.coord;
    let id = str_of(&item, "id");
    let storage_folder = in_source && kind == Kind::Folder;
    let (entity, children) = if kind.is_container() {
        match get_container(c, &id).await? {
            Some(x) => x,
            None => return Ok(Fetched::Passed(None)),
        }
    } else {
        match get(c, &format!("/api/v3/catalog/{}", url_segment(&id))).await? {
            Some(e) => (e, vec![]),
            None => return Ok(Fetched::Passed(None)),
        }
    };
    // The entity's own kind wins over the listing's (a promoted folder lists as a container).
    let kind = entity_kind(&entity).unwrap_or(kind);
    let path = str_list(&entity["path"])
        .or_else(|| str_list(&item["path"]))
        .unwrap_or_default();
    if path.is_empty() {
        return Ok(Fetched::Passed(Some(format!(
            "an item without a path (id {id})"
        ))));
    }
    let mut object = from_entity(kind, path, &entity);
    let mut entry = Entry {
        config: (kind == Kind::Source).then(|| Box::new(entity["config"].clone())),
        id: entity
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string(),
        tag: str_of(&entity, "tag"),
        ..Entry::default()
    };
    if !storage_folder {
        let collab = format!("/api/v3/catalog/{}/collaboration", url_segment(&entry.id));
        if !skip_wikis && kind != Kind::Function {
            if let Some(w) = get(c, &format!("{collab}/wiki")).await? {
                entry.wiki_version = w.get("version").cloned().map(Box::new);
                object.wiki = w
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
            }
        }
        if kind.is_dataset() {
            if !skip_tags && let Some(t) = get(c, &format!("{collab}/tag")).await? {
                entry.tags_version = t.get("version").cloned().map(Box::new);
                object.set_tags(str_list(&t["tags"]).unwrap_or_default());
            }
            let list: Vec<Value> = match reflections.as_ref() {
                Reflections::Skipped => vec![],
                Reflections::All(m) => m.get(&entry.id).cloned().unwrap_or_default(),
                Reflections::PerDataset => get(
                    c,
                    &format!("/api/v3/dataset/{}/reflection", url_segment(&entry.id)),
                )
                .await?
                .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
                .unwrap_or_default(),
            };
            if !list.is_empty() {
                object.set_reflections(&list);
                for r in &list {
                    entry.set_reflection(str_of(r, "name"), str_of(r, "id"), str_of(r, "tag"));
                }
            }
        }
    }
    Ok(Fetched::Object {
        object: Box::new(object),
        entry,
        children,
        record: !storage_folder,
    })
}

/// Every reflection of the cluster, by dataset id.
/// Where the reflections of datasets come from.
enum Reflections {
    Skipped,
    /// One `GET /api/v3/reflection`, by dataset id.
    All(HashMap<String, Vec<Value>>),
    /// That listing is missing on this version: `GET /api/v3/dataset/{id}/reflection` per dataset.
    PerDataset,
}

/// Every reflection of the cluster in one request, or [`Reflections::PerDataset`] when the
/// cluster has no such listing (a 404 must not read as "no reflections").
async fn all_reflections(c: &Coordinator) -> Result<Reflections, DremioError> {
    let (status, text) = c.request(Method::GET, "/api/v3/reflection", None).await?;
    if matches!(status, 404 | 405) {
        return Ok(Reflections::PerDataset);
    }
    if !(200..300).contains(&status) {
        return Err(DremioError::Api {
            url: format!("{}/api/v3/reflection", c.base),
            status: Some(status),
            message: error_message(&text),
        });
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| DremioError::Api {
        url: format!("{}/api/v3/reflection", c.base),
        status: Some(status),
        message: format!("unexpected answer: {e}"),
    })?;
    let mut by_dataset: HashMap<String, Vec<Value>> = HashMap::new();
    for r in v
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(d) = r.get("datasetId").and_then(Value::as_str) {
            by_dataset.entry(d.to_string()).or_default().push(r.clone());
        }
    }
    Ok(Reflections::All(by_dataset))
}

/// The users, or why they cannot be read (a warning, not a failure: non-admins cannot list them).
async fn users(c: &Coordinator) -> Result<Result<Vec<Value>, String>, DremioError> {
    let (status, text) = c.request(Method::GET, "/apiv2/users/all", None).await?;
    match status {
        200..=299 => {
            let v: Value = serde_json::from_str(&text).map_err(|e| DremioError::Api {
                url: format!("{}/apiv2/users/all", c.base),
                status: Some(status),
                message: format!("unexpected answer: {e}"),
            })?;
            Ok(Ok(v
                .get("users")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()))
        }
        401 | 403 => Ok(Err(format!(
            "users are not exported: listing them needs an administrator (HTTP {status}: {})",
            error_message(&text)
        ))),
        _ => Err(DremioError::Api {
            url: format!("{}/apiv2/users/all", c.base),
            status: Some(status),
            message: error_message(&text),
        }),
    }
}

/// Exports the cluster into `tree` (files rewritten only when they change; files of objects the
/// filter covers that are gone from the cluster are removed). Any read failure fails the export
/// and then nothing is removed, so a partial walk never looks like deletions.
pub async fn export(
    remote: Arc<Remote>,
    tree: &Tree<Kind>,
    filter: &Filter,
    run: &ExportRun<'_>,
) -> anyhow::Result<Found> {
    let (phase, concurrency, keep_index, progress) =
        (run.phase, run.concurrency, run.keep_index, run.progress);
    let mut out = Exported::default();
    let mut entries: HashMap<Key, Entry> = HashMap::new();
    out.parts.insert(Part::Reflection, 0);
    let c = &remote.coord;
    if remote
        .cluster_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("OSS"))
    {
        out.warnings.push(format!(
            "this cluster is {} edition: its roles, grants and WLM rules are not cloned by lifeboat",
            remote.cluster_type.as_deref().unwrap_or_default()
        ));
    }
    let reflections = Arc::new(if filter.skips(Skip::Reflections) {
        Reflections::Skipped
    } else {
        all_reflections(c).await?
    });
    let root = get(c, "/api/v3/catalog").await?.unwrap_or_default();
    let mut queue: VecDeque<(Value, bool)> = root
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| (i.clone(), false))
        .collect();
    let mut kept = Written::default();
    let mut errors: Vec<String> = Vec::new();
    let mut tasks: JoinSet<(String, Result<Fetched, DremioError>)> = JoinSet::new();
    let mut homes = 0usize;
    progress.phase_items(phase, None);
    loop {
        while tasks.len() < concurrency.max(1)
            // Last in, first out: the walk goes deep first, so the queue holds a path's worth of
            // siblings, not a whole level of the catalog.
            && let Some((item, in_source)) = queue.pop_back()
        {
            let path = str_list(&item["path"]).unwrap_or_default();
            let Some(kind) = item_kind(&item) else {
                if item.get("containerType").and_then(Value::as_str) == Some("HOME") {
                    homes += 1;
                }
                continue;
            };
            let wanted = match kind {
                Kind::Source if filter.skips(Skip::Promoted) => filter.keeps_container(kind, &path),
                k if k.is_container() => filter.enters(&path) || filter.selects(k, &path),
                k => filter.selects(k, &path),
            };
            if !wanted {
                continue;
            }
            let what = path.join("/");
            let remote = remote.clone();
            let refl = reflections.clone();
            let (sw, st) = (filter.skips(Skip::Wikis), filter.skips(Skip::Tags));
            tasks.spawn(async move {
                (
                    what,
                    fetch(remote, item, kind, in_source, refl, sw, st).await,
                )
            });
        }
        // SIGINT/SIGTERM: stop reading; what was written stays, nothing is removed.
        if (run.stop)() {
            tasks.abort_all();
            progress.finish();
            return Err(CloneError::Interrupted.into());
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (what, found) = done.map_err(|e| anyhow::anyhow!("export task failed: {e}"))?;
        match found {
            Err(e) => errors.push(format!("{what}: {e}")),
            Ok(Fetched::Passed(Some(why))) => out.warnings.push(why),
            Ok(Fetched::Passed(None)) => {}
            Ok(Fetched::Object {
                object,
                entry,
                children,
                record,
            }) => {
                let in_source = object.kind == Kind::Source || !record;
                let walk_source = !(object.kind == Kind::Source && filter.skips(Skip::Promoted));
                if walk_source {
                    queue.extend(children.into_iter().map(|c| (c, in_source)));
                }
                if record {
                    *out.parts.entry(Part::Reflection).or_default() += object.reflections().len();
                    *out.counts.entry(object.kind).or_default() += 1;
                    if keep_index {
                        let k = key(object.kind, &object.path);
                        out.index.insert(k, known(object.kind, &object.path));
                        entries.insert(k, entry);
                    }
                    tree.write(&object)?.iter().for_each(|f| kept.add(f));
                    progress.advance(1);
                }
            }
        }
    }
    if !filter.skips(Skip::Users) {
        match users(c).await? {
            Ok(list) => {
                for u in list {
                    let Some(name) = u.get("userName").or(u.get("name")).and_then(Value::as_str)
                    else {
                        continue;
                    };
                    if !filter.selects(Kind::User, &[name.to_string()]) {
                        continue;
                    }
                    let o = from_user(name.to_string(), &u);
                    if keep_index {
                        let k = key(Kind::User, &o.path);
                        out.index.insert(k, known(Kind::User, &o.path));
                        let id = str_of(&u, "id");
                        entries.insert(
                            k,
                            Entry {
                                id,
                                ..Entry::default()
                            },
                        );
                    }
                    *out.counts.entry(Kind::User).or_default() += 1;
                    tree.write(&o)?.iter().for_each(|f| kept.add(f));
                    progress.advance(1);
                }
            }
            Err(why) => out.warnings.push(why),
        }
    }
    progress.finish();
    if homes > 0 {
        out.warnings.push(format!(
            "{homes} home space(s) passed over: homes belong to users and are not cloned"
        ));
    }
    if !errors.is_empty() {
        let n = errors.len();
        errors.truncate(20);
        return Err(CloneError::Incomplete(format!(
            "{} could not be read completely ({n} object(s) failed; nothing was removed from the tree):\n  {}",
            c.base,
            errors.join("\n  ")
        ))
        .into());
    }
    let users_covered = !filter.skips(Skip::Users)
        && !out
            .warnings
            .iter()
            .any(|w| w.starts_with("users are not exported"));
    out.removed_files = tree.remove_stale(&kept, &|kind, path| {
        (kind != Kind::User || users_covered) && filter.selects(kind, path)
            || kind.is_container() && filter.keeps_container(kind, path)
    })?;
    Ok((out, entries))
}

fn known(kind: Kind, path: &[String]) -> Known<Kind> {
    Known {
        kind,
        path: CatPath::new(path),
    }
}
