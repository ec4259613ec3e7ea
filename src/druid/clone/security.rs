//! Basic security (the `druid-basic-security` extension): authenticator users, authorizer users
//! with their roles, roles with their permissions. Passwords cannot be read back from Druid: a
//! user created on the target takes the mapping's password, or none (a warning says so).

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::endpoints::{Repeat, SECURITY as PREFIX, checked, segment, send};
use super::mapping::Mapping;
use super::model::{self, Kind, Object, ROLES, USERS};
use crate::clone::item::Action;
use crate::druid::rest::{Answer, Druid, DruidError};

/// The names a user's authorizer entry assigns.
pub fn roles_of(o: &Object) -> Vec<String> {
    names(o.body.get("roles"))
}

/// Names in a list of names, or of entries that name themselves (`?full` roles of a user).
fn names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().or_else(|| r.get("name")?.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The authenticators or authorizers (`which`) the cluster loads; none without the extension.
async fn loaded(d: &Druid, which: &str) -> Result<Vec<String>, DruidError> {
    Ok(
        match d.get_opt(&format!("{PREFIX}/{which}/loadStatus")).await? {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        },
    )
}

async fn list(d: &Druid, path: &str) -> Result<Vec<String>, DruidError> {
    let v = d.get(path).await?;
    if !v.is_array() {
        return Err(DruidError::Api {
            url: path.to_string(),
            message: "not a list of names".into(),
        });
    }
    let mut n = names(Some(&v));
    n.sort();
    Ok(n)
}

/// A permission as it is sent (`{resource, action}`), from Druid's answer (which wraps it in
/// `resourceAction` beside the compiled pattern).
fn permission(p: &Value) -> Value {
    let ra = p.get("resourceAction").unwrap_or(p);
    json!({"resource": ra.get("resource").cloned().unwrap_or(Value::Null),
           "action": ra.get("action").cloned().unwrap_or(Value::Null)})
}

/// Permissions in a stable order (Druid matches them as a set).
fn permissions(v: Option<&Value>) -> Vec<Value> {
    let mut p: Vec<Value> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().map(permission).collect())
        .unwrap_or_default();
    p.sort_by_key(Value::to_string);
    p.dedup();
    p
}

/// Every entry of a `?full` list, by name: Druid answers a map by name, or a list of entries
/// that name themselves.
async fn entries(d: &Druid, path: &str) -> Result<Vec<(String, Value)>, DruidError> {
    let refuse = |what: &str| DruidError::Api {
        url: path.to_string(),
        message: format!("not a list of {what}"),
    };
    let mut out: Vec<(String, Value)> = match d.get(path).await? {
        Value::Object(m) => m.into_iter().collect(),
        Value::Array(a) => a
            .into_iter()
            .map(|e| {
                let name = e.get("name").and_then(Value::as_str).map(str::to_string);
                name.map(|n| (n, e)).ok_or_else(|| refuse("named entries"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(refuse("entries")),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads every authenticator's users and every authorizer's roles and users: one request per
/// list, so that thousands of users cost a few calls.
pub async fn read(d: &Druid, out: &mut Vec<Object>) -> Result<(), DruidError> {
    for a in loaded(d, "authentication").await? {
        for u in list(
            d,
            &format!("{PREFIX}/authentication/db/{}/users", segment(&a)),
        )
        .await?
        {
            out.push(model::object(
                Kind::AuthnUser,
                vec![a.clone(), u],
                Map::new(),
            ));
        }
    }
    for z in loaded(d, "authorization").await? {
        let base = format!("{PREFIX}/authorization/db/{}", segment(&z));
        for (r, role) in entries(d, &format!("{base}/roles?full")).await? {
            let mut body = Map::new();
            body.insert(
                "permissions".into(),
                Value::Array(permissions(role.get("permissions"))),
            );
            out.push(model::object(
                Kind::Role,
                vec![z.clone(), ROLES.into(), r],
                body,
            ));
        }
        for (u, user) in entries(d, &format!("{base}/users?full")).await? {
            let mut roles = names(user.get("roles"));
            roles.sort();
            let mut body = Map::new();
            body.insert("roles".into(), json!(roles));
            out.push(model::object(
                Kind::AuthzUser,
                vec![z.clone(), USERS.into(), u],
                body,
            ));
        }
    }
    Ok(())
}

/// `[authenticator, user]` or `[authorizer, roles|users, name]` as (container, name).
fn split(path: &[String]) -> Result<(String, String), String> {
    match path {
        [a, u] | [a, _, u] => Ok((checked(a)?, checked(u)?)),
        _ => Err("not a basic-security path".into()),
    }
}

/// What writing basic security needs: the target, and the mapping's passwords.
pub struct Security<'a> {
    pub rest: &'a Druid,
    pub mapping: &'a Mapping,
    pub env: &'a (dyn Fn(&str) -> Option<String> + Send + Sync),
}

impl Security<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Answer, String> {
        send(self.rest, method, path, body, repeat).await
    }

    /// Applies one security item.
    pub async fn apply(
        &self,
        kind: Kind,
        action: Action,
        path: &[String],
        o: Option<Object>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let (c, name) = split(path)?;
        let base = match kind {
            Kind::AuthnUser => format!("{PREFIX}/authentication/db/{c}/users/{name}"),
            Kind::Role => format!("{PREFIX}/authorization/db/{c}/roles/{name}"),
            _ => format!("{PREFIX}/authorization/db/{c}/users/{name}"),
        };
        let o = match (action, o) {
            (Action::Delete, _) | (_, None) => {
                self.send(Method::DELETE, &base, None, Repeat::Once).await?;
                return Ok(());
            }
            (_, Some(o)) => o,
        };
        match kind {
            Kind::AuthnUser => self.authn_user(&base, path, warnings).await,
            Kind::Role => {
                if action == Action::Create {
                    self.send(Method::POST, &base, None, Repeat::Once).await?;
                }
                let perms = Value::Array(permissions(o.body.get("permissions")));
                if action == Action::Update || perms.as_array().is_some_and(|p| !p.is_empty()) {
                    self.send(
                        Method::POST,
                        &format!("{base}/permissions"),
                        Some(&perms),
                        Repeat::Safe,
                    )
                    .await?;
                }
                Ok(())
            }
            _ => self.authz_user(&base, action, &o).await,
        }
    }

    /// Creates an authenticator user, with the mapping's password when it gives one. The
    /// password is read first: a user must not be left without the password it was given.
    async fn authn_user(
        &self,
        base: &str,
        path: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let user = path.last().map(String::as_str).unwrap_or_default();
        let password = match self.mapping.password(user, self.env) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return Err(format!("its password from the mapping: {e}")),
            None => None,
        };
        self.send(Method::POST, base, None, Repeat::Once).await?;
        match password {
            Some(p) => {
                let body = json!({"password": p.0});
                self.send(Method::POST, &format!("{base}/credentials"), Some(&body), Repeat::Once)
                    .await?;
            }
            None => warnings.push(format!(
                "created without a password (Druid cannot give it back): it cannot log in until one is set; give it in the mapping's [passwords] {user:?}"
            )),
        }
        Ok(())
    }

    /// Creates an authorizer user or brings its roles to the source's.
    async fn authz_user(&self, base: &str, action: Action, o: &Object) -> Result<(), String> {
        let current = if action == Action::Create {
            self.send(Method::POST, base, None, Repeat::Once).await?;
            Vec::new()
        } else {
            let a = self.send(Method::GET, base, None, Repeat::Once).await?;
            names(a.json()?.get("roles"))
        };
        let wanted = roles_of(o);
        for r in wanted.iter().filter(|r| !current.contains(r)) {
            self.send(
                Method::POST,
                &format!("{base}/roles/{}", checked(r)?),
                None,
                Repeat::Once,
            )
            .await?;
        }
        for r in current.iter().filter(|r| !wanted.contains(r)) {
            self.send(
                Method::DELETE,
                &format!("{base}/roles/{}", checked(r)?),
                None,
                Repeat::Once,
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_read_as_sent_in_a_stable_order() {
        let answer = json!([
            {"resourceAction": {"resource": {"name": "wiki.*", "type": "DATASOURCE"}, "action": "WRITE"},
             "resourceNamePattern": "wiki.*"},
            {"resourceAction": {"resource": {"name": ".*", "type": "STATE"}, "action": "READ"},
             "resourceNamePattern": ".*"}
        ]);
        let sent = json!([
            {"resource": {"name": ".*", "type": "STATE"}, "action": "READ"},
            {"resource": {"name": "wiki.*", "type": "DATASOURCE"}, "action": "WRITE"}
        ]);
        assert_eq!(permissions(Some(&answer)), permissions(Some(&sent)));
        assert_eq!(permissions(Some(&sent))[0]["action"], "READ");
    }
}
