//! A plan's items: what one item is about (an object or a part), what applying it does, what it
//! waits for; and the plan as the list the scheduler runs. Data only: `plan` makes them, `graph`
//! orders them, a cluster kind applies them.

use serde_json::{Map, Value, json};

use super::kind::{ArtefactKind, CatPath, PartKind};

/// What a plan item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum What<K, P> {
    Object(K),
    /// A part of an object of that kind (a member's name in [`Item::name`]).
    Part(K, P),
}

impl<K: ArtefactKind, P: PartKind> What<K, P> {
    pub fn word(self) -> &'static str {
        match self {
            What::Object(k) => k.word(),
            What::Part(_, p) => p.word(),
        }
    }

    /// The kind of the object, or of the part's owner.
    pub fn kind(self) -> K {
        match self {
            What::Object(k) | What::Part(k, _) => k,
        }
    }

    /// Order of application (and of the report), as the kinds and parts rank themselves.
    pub(super) fn rank(self) -> u8 {
        match self {
            What::Object(k) => k.spec().rank,
            What::Part(_, p) => p.spec().rank,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
    /// Differs, but create-only mode leaves existing objects alone.
    Left,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
            Action::Left => "left",
        }
    }

    /// Whether applying sends anything.
    pub fn acts(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// One line of the plan.
#[derive(Debug, Clone)]
pub struct Item<K, P> {
    pub what: What<K, P>,
    /// The object's path on the target.
    pub path: CatPath,
    /// Its path in the source tree when it differs (a rename); see [`Item::source`].
    source_path: Option<CatPath>,
    /// A member part's name.
    pub name: Option<String>,
    pub action: Action,
    /// Fields that differ (updates).
    pub changed: Vec<String>,
    /// Items to wait for (indexes into [`Plan::items`]).
    pub deps: Vec<usize>,
    /// Why the item cannot be applied, known before applying (a reference cycle, a missing secret,
    /// a kind clash); it is then skipped, and so are its dependents.
    pub blocked: Option<String>,
}

impl<K: ArtefactKind, P: PartKind> Item<K, P> {
    pub fn new(
        what: What<K, P>,
        path: &[String],
        source_path: Option<&[String]>,
        action: Action,
    ) -> Item<K, P> {
        Item {
            what,
            path: CatPath::new(path),
            // Most objects keep their path: store the source's only when it differs.
            source_path: source_path.filter(|p| *p != path).map(CatPath::new),
            name: None,
            action,
            changed: vec![],
            deps: vec![],
            blocked: None,
        }
    }

    /// Where the object is in the source tree; None for a deletion (the source lacks it).
    pub fn source(&self) -> Option<&CatPath> {
        if self.action == Action::Delete {
            None
        } else {
            Some(self.source_path.as_ref().unwrap_or(&self.path))
        }
    }

    /// `Sales/Reports/monthly`, plus `#name` for a member part.
    pub fn label(&self) -> String {
        let mut l = self.path.label();
        if let Some(n) = &self.name {
            l.push('#');
            l.push_str(n);
        }
        l
    }

    pub fn to_json(&self, items: &[Item<K, P>]) -> Value {
        let mut v = json!({
            "kind": self.what.word(),
            "path": self.label(),
            "action": self.action.word(),
        });
        if !self.changed.is_empty() {
            v["changed"] = json!(self.changed);
        }
        if let Some(b) = &self.blocked {
            v["blocked"] = json!(b);
        }
        let deps: Vec<String> = self
            .deps
            .iter()
            .filter(|d| items[**d].action.acts())
            .map(|d| format!("{} {}", items[*d].what.word(), items[*d].label()))
            .collect();
        if !deps.is_empty() {
            v["after"] = json!(deps);
        }
        v
    }
}

/// The plan of a run.
#[derive(Debug)]
pub struct Plan<K, P> {
    pub items: Vec<Item<K, P>>,
    pub warnings: Vec<String>,
}

impl<K, P> Default for Plan<K, P> {
    fn default() -> Self {
        Plan {
            items: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl<K: ArtefactKind, P: PartKind> Plan<K, P> {
    /// Counts per action, blocked items apart.
    pub fn summary(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for a in ["create", "update", "delete", "unchanged", "left", "blocked"] {
            m.insert(a.into(), json!(0));
        }
        for i in &self.items {
            let k = if i.blocked.is_some() {
                "blocked"
            } else {
                i.action.word()
            };
            m[k] = json!(m[k].as_u64().unwrap_or(0) + 1);
        }
        m
    }

    /// The one-line human form of an item, or None for items that need nothing.
    pub fn line(&self, i: &Item<K, P>) -> Option<String> {
        let sign = match (i.action, &i.blocked) {
            (_, Some(_)) => "!",
            (Action::Create, _) => "+",
            (Action::Update, _) => "~",
            (Action::Delete, _) => "-",
            (Action::Left, _) => "=",
            (Action::Unchanged, _) => return None,
        };
        let mut l = format!("{sign} {:<10} {}", i.what.word(), i.label());
        if !i.changed.is_empty() {
            l.push_str(&format!("  ({})", i.changed.join(", ")));
        }
        if i.action == Action::Left {
            l.push_str("  (differs; create-only leaves it)");
        }
        if let Some(b) = &i.blocked {
            l.push_str(&format!("  blocked: {b}"));
        }
        Some(l)
    }
}
