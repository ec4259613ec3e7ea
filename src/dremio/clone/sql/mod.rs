//! View SQL analysis: which datasets and UDFs a view reads, and renaming their root (source/space)
//! names.

// Not a SQL parser: a tolerant scanner that knows just enough Calcite/Dremio grammar to tell a
// table position (after FROM, JOIN, a comma in a FROM list) from everything else. Views are cloned
// even when their SQL uses forms this scanner does not know, so it never fails: it returns what it
// recognised.

mod lex;
mod rewrite;
mod scan;
mod words;

pub use rewrite::{rename_refs, rename_roots};
pub use scan::Reference;
use scan::Scan;

/// Tables and views read by the SQL: targets of FROM / JOIN (also comma lists `FROM a, b`, `JOIN
/// ... ON`, `JOIN ... USING`), in order of appearance, duplicates kept.
///
/// CTE names (WITH / WITH RECURSIVE, several CTEs, nested WITH in subqueries) are not references; a
/// CTE name only shadows an unqualified single-part reference, inside the parentheses where its
/// WITH appears (for a non-recursive CTE, only after its own definition). Names are compared
/// case-insensitively, quoted or not, as Dremio resolves them. Subqueries `FROM (SELECT ...)` are
/// descended into; `FROM TABLE(fn(...))`, `UNNEST(...)`, `LATERAL`, `VALUES` are not table
/// references (but tables inside their arguments' subqueries are); `FROM` inside
/// EXTRACT/TRIM/SUBSTRING/OVERLAY/POSITION and `IS [NOT] DISTINCT FROM` is not a table; aliases
/// (`AS x`, bare `x`, `AS x(c1, c2)`) are skipped; Dremio's version clauses after a table (`AT
/// BRANCH b`, `AT SNAPSHOT '...'`, `AT TAG t`, `AT COMMIT ...`, `AT REF ...`, with an optional `AS
/// OF ...`) are skipped; a set operation (UNION/EXCEPT/INTERSECT/MINUS) continues parsing.
pub fn table_refs(sql: &str) -> Vec<Reference> {
    Scan::run(sql).tables
}

/// Calls of qualified (dotted, 2+ parts) functions, e.g. `Sales.fns.tax(x)`: UDFs a view depends
/// on. Unqualified calls (builtins like `COUNT(`) are not returned. A qualified call in a table
/// position (`FROM TABLE(s.fns.tf(1))`) is returned here, not by [`table_refs`].
pub fn function_refs(sql: &str) -> Vec<Reference> {
    Scan::run(sql).functions
}

#[cfg(test)]
mod tests {
    use super::scan::MAX_DEPTH;
    use super::words::{RESERVED, is_reserved};
    use super::*;

    /// Each reference as its parts joined by `.` (fine for tests whose names hold no dots).
    fn dotted(refs: &[Reference]) -> Vec<String> {
        refs.iter().map(|r| r.parts.join(".")).collect()
    }

    fn tables(sql: &str) -> Vec<String> {
        dotted(&table_refs(sql))
    }

    fn functions(sql: &str) -> Vec<String> {
        dotted(&function_refs(sql))
    }

    fn lake_to(new: &'static str) -> impl Fn(&str) -> Option<String> {
        move |root: &str| root.eq_ignore_ascii_case("lake").then(|| new.to_string())
    }

    #[test]
    fn simple_from() {
        let sql = "SELECT a, b FROM orders WHERE a > 1";
        let refs = table_refs(sql);
        assert_eq!(dotted(&refs), ["orders"]);
        assert_eq!(&sql[refs[0].spans[0].clone()], "orders");
        assert_eq!(tables("select * from Orders"), ["Orders"]);
    }

    #[test]
    fn dotted_and_quoted_parts() {
        let sql = r#"SELECT * FROM Sales . folder."my view""#;
        let refs = table_refs(sql);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].parts, ["Sales", "folder", "my view"]);
        let spelled: Vec<&str> = refs[0].spans.iter().map(|s| &sql[s.clone()]).collect();
        assert_eq!(spelled, ["Sales", "folder", "\"my view\""]);

        let refs = table_refs(r#"SELECT * FROM "we""ird"."a.b".c"#);
        assert_eq!(refs[0].parts, ["we\"ird", "a.b", "c"]);
    }

    #[test]
    fn backquoted_parts() {
        let refs = table_refs("SELECT * FROM `Sales`.`x``y` AS t");
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].parts, ["Sales", "x`y"]);
    }

    #[test]
    fn join_chains() {
        let sql = "SELECT * FROM s.a JOIN s.b ON a.id = b.id LEFT OUTER JOIN s.c USING (id) \
                   CROSS JOIN s.d NATURAL JOIN s.e INNER JOIN s.f x ON x.k IN (1, 2), s.g";
        assert_eq!(
            tables(sql),
            ["s.a", "s.b", "s.c", "s.d", "s.e", "s.f", "s.g"]
        );
    }

    #[test]
    fn comma_lists_with_aliases() {
        let sql = r#"SELECT x.a, y.b FROM s.a AS x, s.b y, "s"."c" AS z(c1, c2), d, e AS "E"
                     WHERE x.a = y.b"#;
        assert_eq!(tables(sql), ["s.a", "s.b", "s.c", "d", "e"]);
        // Commas after WHERE / GROUP BY / ORDER BY no longer separate tables.
        assert_eq!(tables("SELECT a FROM t GROUP BY a, b ORDER BY a, c"), ["t"]);
    }

    #[test]
    fn subqueries() {
        assert_eq!(
            tables("SELECT * FROM (SELECT * FROM s.inner1) AS q JOIN s.outer1 o ON q.id = o.id"),
            ["s.inner1", "s.outer1"]
        );
        let sql = "SELECT (SELECT max(v) FROM s.scalar) AS m FROM s.main \
                   WHERE id IN (SELECT id FROM s.ids) \
                   AND EXISTS (SELECT 1 FROM s.ex WHERE ex.id = main.id)";
        assert_eq!(tables(sql), ["s.scalar", "s.main", "s.ids", "s.ex"]);
        // A parenthesised join, then a comma after its alias.
        assert_eq!(
            tables("SELECT * FROM (a JOIN (b JOIN c ON b.x = c.x) ON a.x = b.x) j, d"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            tables("SELECT * FROM ((SELECT * FROM a) UNION (SELECT * FROM b)) u, c"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn ctes_are_not_references() {
        let sql = "WITH a AS (SELECT * FROM s.x), b (k) AS (SELECT k FROM a JOIN s.y ON a.k = y.k) \
                   SELECT * FROM b, s.z, a";
        assert_eq!(tables(sql), ["s.x", "s.y", "s.z"]);
        // Unquoted names compare case-insensitively.
        assert_eq!(
            tables("with Foo as (select 1 from s.t) select * from FOO"),
            ["s.t"]
        );
    }

    #[test]
    fn recursive_cte() {
        let sql = "WITH RECURSIVE r (n) AS \
                   (SELECT 1 FROM s.seed UNION ALL SELECT n + 1 FROM r WHERE n < 10) \
                   SELECT * FROM r";
        assert_eq!(tables(sql), ["s.seed"]);
    }

    #[test]
    fn cte_named_like_a_real_table() {
        let sql = "WITH orders AS (SELECT * FROM sales.orders WHERE y = 2024) \
                   SELECT * FROM orders o JOIN sales.orders p ON o.id = p.id";
        assert_eq!(tables(sql), ["sales.orders", "sales.orders"]);
        // A non-recursive CTE's body sees the real table of its own name.
        assert_eq!(tables("WITH t AS (SELECT * FROM t) SELECT * FROM t"), ["t"]);
    }

    #[test]
    fn nested_with_is_scoped_to_its_parentheses() {
        let sql =
            "SELECT * FROM (WITH x AS (SELECT * FROM s.a) SELECT * FROM x) q JOIN x ON q.id = x.id";
        assert_eq!(tables(sql), ["s.a", "x"]);
        // A new statement starts with no CTEs.
        assert_eq!(
            tables("WITH t AS (SELECT 1) SELECT * FROM t; SELECT * FROM t"),
            ["t"]
        );
    }

    #[test]
    fn with_that_is_not_a_cte() {
        let sql = "SELECT CAST(ts AS TIMESTAMP WITH LOCAL TIME ZONE) \
                   FROM s.t, UNNEST(t.arr) WITH ORDINALITY AS u(v, i)";
        assert_eq!(tables(sql), ["s.t"]);
    }

    #[test]
    fn set_operations_continue() {
        let sql = "SELECT a FROM s.t1 UNION ALL SELECT a FROM s.t2 EXCEPT SELECT a FROM s.t3 \
                   INTERSECT SELECT a FROM s.t4 MINUS SELECT a FROM s.t5";
        assert_eq!(tables(sql), ["s.t1", "s.t2", "s.t3", "s.t4", "s.t5"]);
    }

    #[test]
    fn from_that_is_not_a_table() {
        let sql = "SELECT EXTRACT(YEAR FROM d), TRIM(BOTH ' ' FROM s), SUBSTRING(s FROM 2 FOR 3), \
                   OVERLAY(s PLACING 'x' FROM 2), POSITION('a' IN s FROM 1), \
                   NTH_VALUE(v, 2) FROM FIRST OVER (ORDER BY d) \
                   FROM real WHERE a IS DISTINCT FROM b AND c IS NOT DISTINCT FROM d";
        assert_eq!(tables(sql), ["real"]);
        // A subquery inside those calls is still read.
        assert_eq!(
            tables("SELECT EXTRACT(YEAR FROM (SELECT max(d) FROM s.dates)) FROM s.t"),
            ["s.dates", "s.t"]
        );
    }

    #[test]
    fn comments_and_literals_are_ignored() {
        let sql = "SELECT 'FROM x', 'it''s FROM q', \"FROM y\" -- FROM z\n\
                   /* FROM w JOIN v */ FROM real // FROM u\n WHERE s = 'JOIN t'";
        assert_eq!(tables(sql), ["real"]);
    }

    #[test]
    fn table_functions_unnest_lateral_values() {
        let sql = "SELECT * FROM TABLE(s.fns.tf(1)) AS t, UNNEST(arr) AS u(x), \
                   LATERAL (SELECT * FROM s.inner1) l CROSS JOIN UNNEST(t.arr) \
                   JOIN TABLE(table_files('s.files')) f ON TRUE, (VALUES (1, 2)) AS v(a, b)";
        assert_eq!(tables(sql), ["s.inner1"]);
        assert_eq!(functions(sql), ["s.fns.tf"]);
        // Tables inside the arguments' subqueries are references.
        assert_eq!(
            tables("SELECT * FROM TABLE(f((SELECT x FROM s.arg))) AT BRANCH b, s.next"),
            ["s.arg", "s.next"]
        );
    }

    #[test]
    fn version_clauses_are_skipped() {
        let sql = "SELECT * FROM s.t AT BRANCH main AS x JOIN s.u AT SNAPSHOT '123' ON x.a = u.a, \
                   s.v AT TAG \"v1\", s.w AT COMMIT abc AS OF '2024-01-01' w2, s.q at ref dev, \
                   s.r AT TIMESTAMP '2024-01-01 00:00:00' WHERE 1 = 1";
        assert_eq!(tables(sql), ["s.t", "s.u", "s.v", "s.w", "s.q", "s.r"]);
    }

    #[test]
    fn qualified_function_calls() {
        let sql = r#"SELECT Sales.fns.tax(x), COUNT(x), a.b, "Sales"."fns"."f 2" (y), t.* FROM t"#;
        assert_eq!(functions(sql), ["Sales.fns.tax", "Sales.fns.f 2"]);
        assert!(function_refs("SELECT COUNT(*), lower(a.b), a.b FROM t").is_empty());
        let refs = function_refs(sql);
        assert_eq!(&sql[refs[1].spans[2].clone()], "\"f 2\"");
    }

    #[test]
    fn rename_keeps_everything_else() {
        let sql = "SELECT lake.col, 'lake.x' AS s /* lake.c */\nFROM lake.db.t -- lake\n\
                   JOIN \"lake\".db.\"u\" ON t.id = u.id \
                   WHERE lake.fns.f(x) > 0 AND Lake.db.t.c = 1";
        let out = rename_roots(sql, &lake_to("ocean"));
        assert_eq!(
            out,
            "SELECT lake.col, 'lake.x' AS s /* lake.c */\nFROM ocean.db.t -- lake\n\
             JOIN \"ocean\".db.\"u\" ON t.id = u.id \
             WHERE ocean.fns.f(x) > 0 AND Lake.db.t.c = 1"
        );
    }

    #[test]
    fn rename_quoting() {
        let sql = "SELECT * FROM lake.t";
        assert_eq!(
            rename_roots(sql, &lake_to("sea_2$")),
            "SELECT * FROM sea_2$.t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("select")),
            "SELECT * FROM \"select\".t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("my lake")),
            "SELECT * FROM \"my lake\".t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("2lake")),
            "SELECT * FROM \"2lake\".t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("mer\"é")),
            "SELECT * FROM \"mer\"\"é\".t"
        );
        assert_eq!(
            rename_roots(r#"SELECT * FROM "lake".t"#, &lake_to("sea")),
            r#"SELECT * FROM "sea".t"#
        );
        assert_eq!(
            rename_roots(r#"SELECT * FROM "lake".t"#, &lake_to("a\"b")),
            r#"SELECT * FROM "a""b".t"#
        );
        assert_eq!(
            rename_roots("SELECT * FROM `lake`.t", &lake_to("a`b")),
            "SELECT * FROM `a``b`.t"
        );
    }

    #[test]
    fn rename_leaves_unmapped_text_identical() {
        let sql =
            "WITH lake AS (SELECT * FROM other.t) SELECT lake.x FROM lake  ,  \"LAKE2\".t /* x */";
        assert_eq!(rename_roots(sql, &|_: &str| None), sql);
        // A CTE named like a source is not a reference, so it is not renamed.
        assert_eq!(rename_roots(sql, &lake_to("ocean")), sql);
        // Mapping a name to itself changes nothing, not even quoting.
        assert_eq!(rename_roots(sql, &|r: &str| Some(r.to_string())), sql);
    }

    #[test]
    fn non_ascii_identifiers() {
        let sql = "SELECT * FROM données.\"ventes été\" v JOIN 東京.表 t ON v.id = t.id";
        let refs = table_refs(sql);
        assert_eq!(dotted(&refs), ["données.ventes été", "東京.表"]);
        assert_eq!(&sql[refs[1].spans[1].clone()], "表");
        let renamed = rename_roots(sql, &|r: &str| (r == "東京").then(|| "大阪".to_string()));
        assert_eq!(
            renamed,
            "SELECT * FROM données.\"ventes été\" v JOIN \"大阪\".表 t ON v.id = t.id"
        );
    }

    #[test]
    fn unbalanced_input() {
        assert_eq!(tables("SELECT * FROM a WHERE (((x"), ["a"]);
        assert_eq!(tables("))) SELECT * FROM b)"), ["b"]);
        assert_eq!(tables("SELECT * FROM \"never closed"), ["never closed"]);
        assert!(tables("SELECT 'open FROM x").is_empty());
        assert!(tables("SELECT /* open FROM x").is_empty());
        assert!(tables("").is_empty());
        assert!(tables("FROM").is_empty());
    }

    /// Checks the invariants every answer must hold, whatever the input.
    fn check_invariants(sql: &str) {
        for r in table_refs(sql).iter().chain(&function_refs(sql)) {
            assert_eq!(r.parts.len(), r.spans.len(), "{sql:?}");
            assert!(!r.parts.is_empty(), "{sql:?}");
            for span in &r.spans {
                assert!(
                    sql.get(span.clone()).is_some_and(|s| !s.is_empty()),
                    "{sql:?} {span:?}"
                );
            }
        }
        assert_eq!(rename_roots(sql, &|_: &str| None), sql);
        let renamed = rename_roots(sql, &|r: &str| Some(format!("{r}_2")));
        assert!(renamed.len() >= sql.len(), "{sql:?}");
    }

    #[test]
    fn truncations_never_panic() {
        let sql = "WITH RECURSIVE \"r é\" (n) AS \
                   (SELECT 1 FROM s.\"se\"\"ed\" UNION ALL SELECT n+1 FROM \"r é\"), \
                   c AS (SELECT * FROM `lake`.`t``x` AT BRANCH main AS OF '2024' \
                   WHERE a IS NOT DISTINCT FROM b) \
                   SELECT Sales.fns.tax(x), EXTRACT(YEAR FROM d), TRIM(BOTH ' ' FROM s), \
                   'FROM q', -- FROM z\n\
                   /* JOIN w */ 1.5e3 FROM c, TABLE(s.f((SELECT 1 FROM 東京.表))) t, \
                   LATERAL (SELECT * FROM y) l LEFT JOIN (a JOIN b USING (id)) j ON j.id = c.id \
                   WHERE x IN (SELECT id FROM s.ids) \
                   UNION SELECT * FROM s.t2 AT SNAPSHOT '1'; SELECT 1";
        let full = table_refs(sql);
        assert_eq!(
            dotted(&full),
            [
                "s.se\"ed",
                "lake.t`x",
                "東京.表",
                "y",
                "a",
                "b",
                "s.ids",
                "s.t2"
            ]
        );
        assert_eq!(functions(sql), ["Sales.fns.tax", "s.f"]);
        for (cut, _) in sql.char_indices().chain([(sql.len(), ' ')]) {
            check_invariants(&sql[..cut]);
            check_invariants(&sql[cut..]);
        }
    }

    #[test]
    fn nesting_past_the_tracked_depth_costs_no_frames_and_keeps_scanning() {
        let deep = format!(
            "SELECT * FROM {}SELECT 1{} x JOIN lake.orders o ON 1=1",
            "(".repeat(MAX_DEPTH * 4),
            ")".repeat(MAX_DEPTH * 4)
        );
        let scan = Scan::run(&deep);
        assert!(scan.frames.len() <= MAX_DEPTH);
        assert_eq!(tables(&deep), vec!["lake.orders"]);
    }

    #[test]
    fn reserved_list_is_uppercase() {
        // Matching relies on ASCII case folding of uppercase entries.
        assert!(
            RESERVED
                .iter()
                .all(|k| k.chars().all(|c| !c.is_ascii_lowercase()))
        );
        assert!(is_reserved("select") && is_reserved("Count") && !is_reserved("sales"));
    }
}
