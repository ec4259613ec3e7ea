//! Leadership as a value the handlers consult: who leads each role right now. Without ZooKeeper
//! the node leads both; a Curator latch will implement [`Leadership`] by naming the
//! lowest-sequence participant of `_COORDINATOR` / `_OVERLORD`.

use std::sync::{PoisonError, RwLock};

/// The two roles one process serves (`druid.coordinator.asOverlord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Overlord,
}

impl Role {
    /// The role whose leader answers `path`: the Overlord's APIs live under `/druid/indexer/`.
    pub fn of_path(path: &str) -> Role {
        if path.starts_with("/druid/indexer/") {
            Role::Overlord
        } else {
            Role::Coordinator
        }
    }
}

/// Who leads a role, as a node URL (`scheme://host:port`), or `None` while nobody does.
pub trait Leadership: Send + Sync {
    fn leader(&self, role: Role) -> Option<String>;
}

/// The leaders as last seen, shared between whatever watches the election and the handlers.
/// A node alone (no `--zookeeper`) leads both roles; a latch watcher calls [`Leaders::set`]
/// when a latch's lowest participant changes.
#[derive(Debug, Default)]
pub struct Leaders {
    coordinator: RwLock<Option<String>>,
    overlord: RwLock<Option<String>>,
}

impl Leaders {
    /// `url` leads both roles.
    pub fn sole(url: &str) -> Leaders {
        let l = Leaders::default();
        l.set(Role::Coordinator, Some(url.to_string()));
        l.set(Role::Overlord, Some(url.to_string()));
        l
    }

    pub fn set(&self, role: Role, url: Option<String>) {
        *self
            .slot(role)
            .write()
            .unwrap_or_else(PoisonError::into_inner) = url;
    }

    fn slot(&self, role: Role) -> &RwLock<Option<String>> {
        match role {
            Role::Coordinator => &self.coordinator,
            Role::Overlord => &self.overlord,
        }
    }
}

impl Leadership for Leaders {
    fn leader(&self, role: Role) -> Option<String> {
        self.slot(role)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What a node does with a request that only the leader may answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// This node leads: handle it.
    Here,
    /// 307 to this `Location`: the leader's URL with the same path and query.
    Redirect(String),
    /// 503: no leader is known.
    NoLeader,
}

/// Where a request for `path_and_query` goes, on the node at `me`.
pub fn route(leadership: &dyn Leadership, me: &str, path_and_query: &str) -> Route {
    let role = Role::of_path(path_and_query);
    match leadership.leader(role) {
        Some(l) if l == me => Route::Here,
        Some(l) => Route::Redirect(format!("{}{path_and_query}", l.trim_end_matches('/'))),
        None => Route::NoLeader,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_handles_and_a_follower_redirects_with_path_and_query() {
        let me = "http://127.0.0.1:8082";
        let leaders = Leaders::sole(me);
        assert_eq!(
            route(&leaders, me, "/druid/coordinator/v1/rules"),
            Route::Here
        );
        leaders.set(Role::Coordinator, Some("http://127.0.0.1:8081/".into()));
        leaders.set(Role::Overlord, None);
        assert_eq!(
            route(
                &leaders,
                me,
                "/druid/coordinator/v1/rules/wiki/history?count=2"
            ),
            Route::Redirect(
                "http://127.0.0.1:8081/druid/coordinator/v1/rules/wiki/history?count=2".into()
            )
        );
        assert_eq!(
            route(&leaders, me, "/druid/indexer/v1/worker"),
            Route::NoLeader
        );
    }
}
