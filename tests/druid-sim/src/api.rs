//! One node's REST API: the endpoints every node answers itself, then the leader's artefacts.

use std::sync::Arc;

use serde_json::json;

use crate::auth::Gate;
use crate::leader::{Leadership, Role, Route, route};
use crate::security::{self, Names, authn, authz};
use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};
use crate::{compaction, dynconfig, history, lookups, proxy, rules, supervisors, worker};

/// The simulator's own audit view (no Druid endpoint): `?type=T[&key=K][&count|interval]`.
pub const AUDIT: &str = "/druid-sim/v1/audit";

/// A Coordinator that is also the Overlord.
pub struct Node {
    /// This node's URL, as its latch participant id will be.
    pub me: String,
    pub version: String,
    pub leadership: Arc<dyn Leadership>,
    pub store: Box<dyn MetadataStore>,
    pub settings: Settings,
    gate: Gate,
}

/// What a Druid node takes from its runtime properties.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The supervisor types whose extensions are loaded (`druid-kafka-indexing-service`, ...).
    pub supervisor_types: Vec<String>,
    /// The basic-security authenticator and authorizer.
    pub security: Names,
    /// Whether every request but health and isLeader must authenticate (`--auth basic`).
    pub basic_auth: bool,
    /// How long every answer waits, as a remote cluster's round trip would (`--latency-ms`).
    pub latency: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            supervisor_types: vec!["kafka".into(), "kinesis".into()],
            security: Names::default(),
            basic_auth: false,
            latency: std::time::Duration::ZERO,
        }
    }
}

impl Node {
    /// Seeds a new store as a first Coordinator start does: the `_default` rule.
    pub fn new(
        me: String,
        version: String,
        leadership: Arc<dyn Leadership>,
        mut store: Box<dyn MetadataStore>,
    ) -> anyhow::Result<Node> {
        if !store.rules()?.contains_key(rules::DEFAULT) {
            store.init_rules(rules::DEFAULT, rules::default_rule())?;
        }
        Ok(Node {
            me,
            version,
            leadership,
            store,
            settings: Settings::default(),
            gate: Gate::default(),
        })
    }

    /// Turns basic auth on, with `admin` (full permissions in the authenticator and the
    /// authorizer) made at the store's first start, as `initialAdminPassword` does.
    pub fn enable_basic_auth(&mut self, admin_password: &str) -> anyhow::Result<()> {
        let first_start = AuditInfo {
            author: String::new(),
            comment: "initialAdminPassword".into(),
            ip: String::new(),
        };
        let names = &self.settings.security;
        authn::seed_admin(
            self.store.as_mut(),
            &names.authenticator,
            admin_password,
            &first_start,
        )?;
        authz::seed_admin(self.store.as_mut(), &names.authorizer, &first_start)?;
        self.settings.basic_auth = true;
        Ok(())
    }

    pub fn handle(&mut self, req: &Request) -> Reply {
        match proxy::split(req) {
            Some((role, inner)) => self.serve(&inner, Some(role)),
            None => self.serve(req, None),
        }
    }

    /// Authentication and authorisation first (the Router checks too); through the management
    /// proxy (`via_proxy`), then, whatever this node does not lead goes to that role's leader.
    /// Otherwise the local endpoints, then the leader's artefacts, handled here or redirected.
    fn serve(&mut self, req: &Request, via_proxy: Option<Role>) -> Reply {
        if self.settings.basic_auth
            && let Err(refusal) = self
                .gate
                .check(self.store.as_ref(), &self.settings.security, req)
        {
            return refusal;
        }
        match via_proxy.map(|role| self.leadership.leader(role)) {
            Some(None) => return Reply::error(503, "no known leader"),
            Some(Some(leader)) if leader != self.me => return proxy::forward(&leader, req),
            _ => {}
        }
        if let Some(r) = self.local(req) {
            return r;
        }
        match route(self.leadership.as_ref(), &self.me, &req.uri) {
            Route::Here => self.artefact(req),
            Route::Redirect(loc) => Reply::redirect(loc),
            Route::NoLeader => Reply::error(503, "no known leader"),
        }
    }

    /// `/status*`, `/leader` and `/isLeader`: never redirected; nor is the simulator's audit
    /// view, which reads the store every node shares.
    fn local(&self, req: &Request) -> Option<Reply> {
        if req.method != "GET" {
            return None;
        }
        if req.path() == AUDIT {
            return Some(
                history::audit(self.store.as_ref(), req)
                    .unwrap_or_else(|e| Reply::error(500, format!("{e:#}"))),
            );
        }
        let leader_of = |role| self.leadership.leader(role);
        Some(match req.path() {
            "/status" => Reply::json(200, &self.status()),
            "/status/health" => Reply::json(200, &json!(true)),
            "/druid/coordinator/v1/leader" => leader_reply(leader_of(Role::Coordinator)),
            "/druid/indexer/v1/leader" => leader_reply(leader_of(Role::Overlord)),
            "/druid/coordinator/v1/isLeader" => self.is_leader(Role::Coordinator),
            "/druid/indexer/v1/isLeader" => self.is_leader(Role::Overlord),
            _ => return None,
        })
    }

    fn status(&self) -> serde_json::Value {
        json!({
            "version": self.version,
            "modules": [],
            "memory": {"maxMemory": 1u64 << 30, "totalMemory": 1u64 << 29, "freeMemory": 1u64 << 28,
                       "usedMemory": 1u64 << 28, "directMemory": 1u64 << 28},
        })
    }

    fn is_leader(&self, role: Role) -> Reply {
        let yes = self.leadership.leader(role).as_deref() == Some(self.me.as_str());
        Reply::json(if yes { 200 } else { 404 }, &json!({"leader": yes}))
    }

    fn artefact(&mut self, req: &Request) -> Reply {
        if req.method == "POST" && !is_json(req) && has_body_or_type(req) {
            // Jersey's @Consumes(APPLICATION_JSON): no other body type reaches the resource;
            // bodiless actions (suspend, taskslots) carry no type at all
            return Reply::error(
                415,
                "Unsupported Media Type: send Content-Type: application/json",
            );
        }
        let path = req.path().trim_end_matches('/');
        let audit = audit_info(req);
        let store = self.store.as_mut();
        // a prefix ends at a path segment: `/config/compactionX` is no compaction resource
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let answer = if let Some(rest) = under("/druid/coordinator/v1/rules") {
            rules::handle(store, req, rest, &audit)
        } else if let Some(rest) = under("/druid/coordinator/v1/lookups/config") {
            lookups::handle(store, req, rest, &audit)
        } else if let Some(rest) = under("/druid/coordinator/v1/config/compaction") {
            compaction::handle(store, req, rest, &audit)
        } else if let Some(rest) = under("/druid/indexer/v1/compaction/config/cluster") {
            compaction::cluster(store, req, rest, &audit)
        } else if let Some(rest) = under("/druid/coordinator/v1/config") {
            dynconfig::handle(store, req, rest, &audit)
        } else if let Some(rest) = under("/druid/indexer/v1/supervisor") {
            supervisors::handle(store, req, rest, &self.settings.supervisor_types)
        } else if let Some(rest) = under(security::PREFIX) {
            security::handle(store, req, rest, &audit, &self.settings.security)
        } else if let Some(rest) = under("/druid/indexer/v1/worker") {
            worker::handle(store, req, rest, &audit)
        } else {
            None
        };
        match answer {
            Some(Ok(r)) => r,
            Some(Err(e)) => Reply::error(500, format!("{e:#}")),
            None => Reply::error(404, format!("no resource {} {}", req.method, req.path())),
        }
    }
}

/// The leader's URL as a bare, unquoted string (Druid's quirk), or 503 when none is known.
fn leader_reply(leader: Option<String>) -> Reply {
    match leader {
        Some(l) => Reply::raw(200, l),
        None => Reply::error(503, "no known leader"),
    }
}

fn is_json(req: &Request) -> bool {
    req.header("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mt| mt.trim().eq_ignore_ascii_case("application/json"))
}

fn has_body_or_type(req: &Request) -> bool {
    !req.body.is_empty() || req.header("content-type").is_some()
}

/// Druid's `AuditInfo`: the headers default to empty strings.
fn audit_info(req: &Request) -> AuditInfo {
    AuditInfo {
        author: req.header("X-Druid-Author").unwrap_or_default().to_string(),
        comment: req
            .header("X-Druid-Comment")
            .unwrap_or_default()
            .to_string(),
        ip: req.peer.ip().to_string(),
    }
}
