//! What the restore target holds, read before anything is written: its `druid_*` tables, their
//! columns and row counts, and whether the connected user may create and insert (PostgreSQL's
//! `has_*_privilege`, MySQL's `SHOW GRANTS` read as far as it can be decided).

use mysql_async::prelude::Queryable;
use tokio_postgres::GenericClient;

use super::super::MetaError;
use super::super::tables::{my_ident, pg_ident};

/// A column of a target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    pub name: String,
    /// NOT NULL without a default, a sequence or an identity: an INSERT must give it.
    pub required: bool,
}

pub fn pg_err(what: &str) -> impl FnOnce(tokio_postgres::Error) -> MetaError + '_ {
    move |e| MetaError::Query {
        what: what.to_string(),
        why: pg_why(&e),
    }
}

/// The server's own message when there is one (`duplicate key value violates ...`), else the chain.
pub fn pg_why(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{}: {detail}", d.message()),
            None => d.message().to_string(),
        },
        None => crate::error::chain(e),
    }
}

pub fn my_err(what: &str) -> impl FnOnce(mysql_async::Error) -> MetaError + '_ {
    move |e| MetaError::Query {
        what: what.to_string(),
        why: crate::error::chain(&e),
    }
}

/// The base tables of the current schema whose name starts with `druid_` (any case).
pub async fn pg_druid_tables<C: GenericClient + Sync>(c: &C) -> Result<Vec<String>, MetaError> {
    let rows = c
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .await
        .map_err(pg_err("list the target's tables"))?;
    let mut out = Vec::new();
    for row in rows {
        let name: String = row.try_get(0).map_err(pg_err("list the target's tables"))?;
        if is_druid(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

pub async fn pg_columns<C: GenericClient + Sync>(
    c: &C,
    table: &str,
) -> Result<Vec<TargetColumn>, MetaError> {
    let what = format!("read the columns of {table}");
    let rows = c
        .query(
            "SELECT a.attname::text, a.attnotnull AND NOT a.atthasdef AND a.attidentity::text = '' \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = format('%I.%I', current_schema(), $1::text)::regclass \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table],
        )
        .await
        .map_err(pg_err(&what))?;
    rows.iter()
        .map(|r| {
            Ok(TargetColumn {
                name: r.try_get(0)?,
                required: r.try_get(1)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(pg_err(&what))
}

pub async fn pg_count<C: GenericClient + Sync>(c: &C, table: &str) -> Result<u64, MetaError> {
    let row = c
        .query_one(&format!("SELECT count(*) FROM {}", pg_ident(table)), &[])
        .await
        .map_err(pg_err(&format!("count the rows of {table}")))?;
    let n: i64 = row
        .try_get(0)
        .map_err(pg_err(&format!("count the rows of {table}")))?;
    Ok(n.max(0) as u64)
}

pub async fn pg_database<C: GenericClient + Sync>(c: &C) -> Result<(String, String), MetaError> {
    let row = c
        .query_one("SELECT current_database()::text, current_user::text", &[])
        .await
        .map_err(pg_err("read the current database"))?;
    Ok((
        row.try_get(0)
            .map_err(pg_err("read the current database"))?,
        row.try_get(1)
            .map_err(pg_err("read the current database"))?,
    ))
}

pub async fn pg_may_create<C: GenericClient + Sync>(c: &C) -> Result<bool, MetaError> {
    let row = c
        .query_one(
            "SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)",
            &[],
        )
        .await
        .map_err(pg_err("check the CREATE privilege"))?;
    row.try_get(0).map_err(pg_err("check the CREATE privilege"))
}

pub async fn pg_may_insert<C: GenericClient + Sync>(c: &C, table: &str) -> Result<bool, MetaError> {
    let row = c
        .query_one(
            "SELECT has_table_privilege(format('%I.%I', current_schema(), $1::text), 'INSERT')",
            &[&table],
        )
        .await
        .map_err(pg_err("check the INSERT privilege"))?;
    row.try_get(0).map_err(pg_err("check the INSERT privilege"))
}

/// `(DATABASE(), CURRENT_USER())`.
pub async fn my_database(
    conn: &mut mysql_async::Conn,
) -> Result<(Option<String>, String), MetaError> {
    let row: Option<(Option<String>, String)> = conn
        .query_first("SELECT DATABASE(), CURRENT_USER()")
        .await
        .map_err(my_err("read the current database"))?;
    Ok(row.unwrap_or((None, String::new())))
}

pub async fn my_druid_tables(conn: &mut mysql_async::Conn) -> Result<Vec<String>, MetaError> {
    let names: Vec<String> = conn
        .query(
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
        )
        .await
        .map_err(my_err("list the target's tables"))?;
    Ok(names.into_iter().filter(|n| is_druid(n)).collect())
}

pub async fn my_columns(
    conn: &mut mysql_async::Conn,
    table: &str,
) -> Result<Vec<TargetColumn>, MetaError> {
    let rows: Vec<(String, String, Option<String>, String)> = conn
        .exec(
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(IS_NULLABLE AS CHAR), \
             CAST(COLUMN_DEFAULT AS CHAR), CAST(EXTRA AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .map_err(my_err(&format!("read the columns of {table}")))?;
    Ok(rows
        .into_iter()
        .map(|(name, nullable, default, extra)| TargetColumn {
            name,
            required: nullable.eq_ignore_ascii_case("NO")
                && default.is_none()
                && !extra.to_ascii_lowercase().contains("auto_increment"),
        })
        .collect())
}

pub async fn my_count(conn: &mut mysql_async::Conn, table: &str) -> Result<u64, MetaError> {
    let n: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {}", my_ident(table)))
        .await
        .map_err(my_err(&format!("count the rows of {table}")))?;
    Ok(n.unwrap_or(0))
}

pub async fn my_grants(conn: &mut mysql_async::Conn) -> Result<Vec<String>, MetaError> {
    conn.query("SHOW GRANTS FOR CURRENT_USER()")
        .await
        .map_err(my_err("read the user's grants"))
}

pub fn is_druid(name: &str) -> bool {
    name.len() > 6
        && name
            .get(..6)
            .is_some_and(|h| h.eq_ignore_ascii_case("druid_"))
}

/// What `SHOW GRANTS` says about the privileges a restore needs on `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    Enough,
    /// The first privilege missing.
    Missing(&'static str),
    /// Roles, table-level grants or anything unparsed: the load itself will tell.
    Undecided,
}

/// Reads `SHOW GRANTS` lines for `INSERT` (and `CREATE` when `create`) on the database `db` or
/// `*.*`.
pub fn decide_grants(lines: &[String], db: &str, create: bool) -> Grants {
    let mut insert = false;
    let mut create_ok = false;
    let mut undecided = false;
    for line in lines {
        let Some(rest) = strip_prefix_ci(line.trim(), "GRANT ") else {
            undecided = true;
            continue;
        };
        let Some(on) = find_ci(rest, " ON ") else {
            // `GRANT role TO user`: the role's privileges are not shown.
            undecided = true;
            continue;
        };
        let privs = &rest[..on];
        let after = &rest[on + 4..];
        let Some(to) = find_ci(after, " TO ") else {
            undecided = true;
            continue;
        };
        let object = after[..to].trim();
        if privs.trim().eq_ignore_ascii_case("PROXY") {
            continue;
        }
        let applies = match parse_object(object) {
            Some((None, None)) => true,
            Some((Some(pattern), None)) => like(&pattern, db),
            Some((Some(pattern), Some(_table))) => {
                if like(&pattern, db) {
                    undecided = true;
                }
                false
            }
            _ => {
                undecided = true;
                false
            }
        };
        if !applies {
            continue;
        }
        for p in privs.split(',') {
            let p = p.trim();
            if p.eq_ignore_ascii_case("ALL PRIVILEGES") || p.eq_ignore_ascii_case("ALL") {
                insert = true;
                create_ok = true;
            } else if p.eq_ignore_ascii_case("INSERT") {
                insert = true;
            } else if p.eq_ignore_ascii_case("CREATE") {
                create_ok = true;
            }
        }
    }
    if insert && (create_ok || !create) {
        Grants::Enough
    } else if undecided {
        Grants::Undecided
    } else if !insert {
        Grants::Missing("INSERT")
    } else {
        Grants::Missing("CREATE")
    }
}

/// `*.*` -> (None, None); `` `db`.* `` -> (db pattern, None); `` `db`.`t` `` -> (db, t).
fn parse_object(object: &str) -> Option<(Option<String>, Option<String>)> {
    if object == "*.*" || object == "*" {
        return Some((None, None));
    }
    let (db, rest) = ident(object)?;
    let rest = rest.strip_prefix('.')?;
    if rest == "*" {
        return Some((Some(db), None));
    }
    let (table, rest) = ident(rest)?;
    rest.is_empty().then_some((Some(db), Some(table)))
}

/// A backquoted (or bare) identifier at the start of `s`, and what follows it.
fn ident(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('`') {
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if let Some((_, '`')) = chars.peek() {
                    chars.next();
                    out.push('`');
                    continue;
                }
                return Some((out, &body[i + 1..]));
            }
            out.push(c);
        }
        None
    } else {
        let end = s.find('.').unwrap_or(s.len());
        (end > 0 && s[..end] != *"*").then(|| (s[..end].to_string(), &s[end..]))
    }
}

/// MySQL's LIKE on a database pattern of a grant: `%`, `_` and backslash escapes (dynamic
/// programming: linear in pattern times text, whatever the pattern).
fn like(pattern: &str, text: &str) -> bool {
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '%' => Tok::Any,
            '_' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    let t: Vec<char> = text.chars().collect();
    // ok[j]: the tokens so far match t[..j].
    let mut ok = vec![false; t.len() + 1];
    ok[0] = true;
    for tok in &toks {
        let mut next = vec![false; t.len() + 1];
        match tok {
            Tok::Any => {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= ok[j];
                    next[j] = any;
                }
            }
            Tok::One => {
                next[1..].copy_from_slice(&ok[..t.len()]);
            }
            Tok::Lit(c) => {
                for j in 1..=t.len() {
                    next[j] = ok[j - 1] && t[j - 1] == *c;
                }
            }
        }
        ok = next;
    }
    ok[t.len()]
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()))
        .then(|| s.split_at(prefix.len()))
        .filter(|(head, _)| head.eq_ignore_ascii_case(prefix))
        .map(|(_, tail)| tail)
}

fn find_ci(s: &str, needle: &str) -> Option<usize> {
    s.to_ascii_uppercase().find(&needle.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_privileges_on_everything_is_enough() {
        let g =
            lines(&["GRANT ALL PRIVILEGES ON *.* TO `lifeboat`@`%` IDENTIFIED BY PASSWORD '*ABC'"]);
        assert_eq!(decide_grants(&g, "druid", true), Grants::Enough);
    }

    #[test]
    fn database_grants_are_read() {
        let g = lines(&[
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT SELECT, INSERT ON `druid`.* TO `u`@`%`",
        ]);
        assert_eq!(decide_grants(&g, "druid", false), Grants::Enough);
        assert_eq!(decide_grants(&g, "druid", true), Grants::Missing("CREATE"));
        assert_eq!(decide_grants(&g, "other", false), Grants::Missing("INSERT"));
    }

    #[test]
    fn patterns_and_escapes() {
        let g = lines(&["GRANT INSERT, CREATE ON `druid\\_%`.* TO `u`@`%`"]);
        assert_eq!(decide_grants(&g, "druid_dr", true), Grants::Enough);
        assert_eq!(
            decide_grants(&g, "druidXdr", true),
            Grants::Missing("INSERT")
        );
        let g = lines(&["GRANT ALL ON `a``b`.* TO `u`@`%`"]);
        assert_eq!(decide_grants(&g, "a`b", true), Grants::Enough);
    }

    #[test]
    fn roles_and_table_grants_are_undecided() {
        let g = lines(&[
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT `dr_role` TO `u`@`%`",
        ]);
        assert_eq!(decide_grants(&g, "druid", true), Grants::Undecided);
        let g = lines(&[
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT INSERT ON `druid`.`druid_segments` TO `u`@`%`",
        ]);
        assert_eq!(decide_grants(&g, "druid", false), Grants::Undecided);
        let g = lines(&["GRANT PROXY ON ''@'%' TO 'u'@'%' WITH GRANT OPTION"]);
        assert_eq!(decide_grants(&g, "druid", false), Grants::Missing("INSERT"));
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        let g = lines(&[
            "GRANT",
            "GRANT  ON  TO ",
            "GRANT é ON `x",
            "grant all on `é`.* to x",
        ]);
        assert_eq!(decide_grants(&g, "é", true), Grants::Enough);
        assert!(!like(&"%_".repeat(100), &"a".repeat(99)));
        assert!(like(&"%_".repeat(100), &"a".repeat(100)));
        assert!(!is_druid("drü_dx"));
    }

    #[test]
    fn druid_names() {
        assert!(is_druid("druid_segments"));
        assert!(is_druid("DRUID_dataSource"));
        assert!(!is_druid("druid_"));
        assert!(!is_druid("segments"));
        assert!(!is_druid("drüid_x"));
    }
}
