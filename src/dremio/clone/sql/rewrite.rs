//! Renaming the roots of references in SQL, byte for byte elsewhere, quoting only when needed.

use std::ops::Range;

use super::Reference;
use super::scan::Scan;

/// Rewrites the FIRST part of every table and function reference for which `rename` (given the
/// unquoted first part) returns a new name. Keeps everything else byte-for-byte (comments, spacing,
/// case, other parts).
///
/// Quoting of the new part: double quotes (or backquotes) are kept if the original was quoted, with
/// quotes inside the name doubled; it stays unquoted if the original was unquoted and the new name
/// is a plain identifier (letter or `_` first, then letters/digits/`_`/`$`) and not a SQL reserved
/// word; otherwise it is double-quoted. A `rename` answer equal to the current name leaves the
/// token untouched.
pub fn rename_roots(sql: &str, rename: &dyn Fn(&str) -> Option<String>) -> String {
    rename_refs(sql, &|r: &Reference| {
        r.parts.first().and_then(|root| rename(root))
    })
}

/// Like [`rename_roots`], but `rename` sees the whole reference (to tell, e.g., a path relative to
/// a view's context from an absolute one) and returns the new first part.
pub fn rename_refs(sql: &str, rename: &dyn Fn(&Reference) -> Option<String>) -> String {
    let scan = Scan::run(sql);
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for reference in scan.tables.iter().chain(&scan.functions) {
        let (Some(root), Some(span)) = (reference.parts.first(), reference.spans.first()) else {
            continue;
        };
        match rename(reference) {
            Some(new) if new != *root => {
                edits.push((span.clone(), requote(&sql[span.clone()], &new)))
            }
            _ => {}
        }
    }
    edits.sort_by_key(|(span, _)| span.start);
    let mut out = String::with_capacity(sql.len() + 16 * edits.len());
    let mut copied = 0;
    for (span, text) in edits {
        // A token is never both a table and a function root, but an overlap must not corrupt the
        // output.
        if span.start < copied {
            continue;
        }
        out.push_str(&sql[copied..span.start]);
        out.push_str(&text);
        copied = span.end;
    }
    out.push_str(&sql[copied..]);
    out
}

/// Spells `new` the way the original token was spelled, quoting only when it must.
pub(super) fn requote(original: &str, new: &str) -> String {
    match original.chars().next() {
        Some(q @ ('"' | '`')) => {
            let doubled: String = [q, q].iter().collect();
            format!("{q}{}{q}", new.replace(q, &doubled))
        }
        _ if is_plain_identifier(new) && !is_reserved(new) => new.to_string(),
        _ => format!("\"{}\"", new.replace('"', "\"\"")),
    }
}

/// An identifier every SQL dialect accepts unquoted. ASCII only on purpose: quoting a name that did
/// not need it is harmless, leaving unquoted one that needed quotes breaks the view.
pub(super) fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

pub(super) fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Words that must be quoted to be used as a name: SQL:2011 reserved words as Calcite reserves
/// them, plus words Dremio reserves on top (many are function names). Erring on the broad side only
/// costs needless quotes.
#[rustfmt::skip]
pub(super) const RESERVED: &[&str] = &[
    "ABS", "ACCESS", "ACOS", "AES_DECRYPT", "AGGREGATE", "ALL", "ALLOCATE", "ALLOW", "ALTER",
    "ANALYZE", "AND", "ANY", "APPROX_COUNT_DISTINCT", "APPROX_PERCENTILE", "ARE", "ARRAY",
    "ARRAY_AGG", "ARRAY_AVG", "ARRAY_CAT", "ARRAY_COMPACT", "ARRAY_CONTAINS",
    "ARRAY_GENERATE_RANGE", "ARRAY_MAX", "ARRAY_MAX_CARDINALITY", "ARRAY_MIN", "ARRAY_POSITION",
    "ARRAY_REMOVE", "ARRAY_REMOVE_AT", "ARRAY_SIZE", "ARRAY_SUM", "ARRAY_TO_STRING", "ARROW", "AS",
    "ASCII", "ASENSITIVE", "ASIN", "ASSIGN", "ASYMMETRIC", "AT", "ATAN", "ATAN2", "ATOMIC",
    "AUTHORIZATION", "AVG", "BASE64", "BATCH", "BEGIN", "BEGIN_FRAME", "BEGIN_PARTITION", "BETWEEN",
    "BIGINT", "BIN", "BINARY", "BINARY_STRING", "BIN_PACK", "BIT", "BITWISE_AND", "BITWISE_NOT",
    "BITWISE_OR", "BITWISE_XOR", "BIT_AND", "BIT_LENGTH", "BIT_OR", "BLOB", "BOOLEAN", "BOOL_AND",
    "BOOL_OR", "BOTH", "BRANCH", "BROUND", "BTRIM", "BY", "CACHE", "CALL", "CALLED", "CARDINALITY",
    "CASCADED", "CASE", "CAST", "CATALOG", "CBRT", "CEIL", "CEILING", "CHANGE", "CHAR", "CHARACTER",
    "CHARACTER_LENGTH", "CHAR_LENGTH", "CHECK", "CHR", "CLASSIFIER", "CLOB", "CLOSE", "CLOUD",
    "COALESCE", "COLLATE", "COLLECT", "COLUMN", "COLUMNS", "COL_LIKE", "COMMIT", "COMPACT",
    "COMPUTE", "CONCAT", "CONCAT_WS", "CONDITION", "CONNECT", "CONSTRAINT", "CONTAINS", "CONVERT",
    "CONVERT_FROM", "CONVERT_TIMEZONE", "CONVERT_TO", "COPY", "CORR", "CORRESPONDING", "COS",
    "COSH", "COT", "COUNT", "COVAR_POP", "COVAR_SAMP", "CREATE", "CROSS", "CUBE", "CUME_DIST",
    "CURRENT", "CURRENT_CATALOG", "CURRENT_DATE", "CURRENT_DEFAULT_TRANSFORM_GROUP", "CURRENT_PATH",
    "CURRENT_ROLE", "CURRENT_ROW", "CURRENT_SCHEMA", "CURRENT_TIME", "CURRENT_TIMESTAMP",
    "CURRENT_TRANSFORM_GROUP_FOR_TYPE", "CURRENT_USER", "CURSOR", "CYCLE", "DATABASES", "DATE",
    "DAY", "DEALLOCATE", "DEC", "DECIMAL", "DECLARE", "DEFAULT", "DEFINE", "DELETE", "DENSE_RANK",
    "DEREF", "DESCRIBE", "DETERMINISTIC", "DISALLOW", "DISCONNECT", "DISTINCT", "DOUBLE", "DROP",
    "DYNAMIC", "EACH", "ELEMENT", "ELSE", "EMPTY", "END", "END-EXEC", "END_FRAME", "END_PARTITION",
    "EQUALS", "ESCAPE", "EVERY", "EXCEPT", "EXEC", "EXECUTE", "EXISTS", "EXP", "EXPLAIN", "EXTEND",
    "EXTERNAL", "EXTRACT", "FALSE", "FETCH", "FILES", "FILTER", "FIRST_VALUE", "FLATTEN", "FLOAT",
    "FLOOR", "FOR", "FOREIGN", "FRAME_ROW", "FREE", "FROM", "FULL", "FUNCTION", "FUSION", "GET",
    "GLOBAL", "GRANT", "GROUP", "GROUPING", "GROUPS", "HAVING", "HOLD", "HOUR", "IDENTITY", "IF",
    "IMPORT", "IN", "INDICATOR", "INITIAL", "INNER", "INOUT", "INSENSITIVE", "INSERT", "INT",
    "INTEGER", "INTERSECT", "INTERSECTION", "INTERVAL", "INTO", "IS", "JOIN", "JSON_ARRAY",
    "JSON_ARRAYAGG", "JSON_EXISTS", "JSON_OBJECT", "JSON_OBJECTAGG", "JSON_QUERY", "JSON_VALUE",
    "LAG", "LANGUAGE", "LARGE", "LAST_VALUE", "LATERAL", "LEAD", "LEADING", "LEFT", "LIKE",
    "LIKE_REGEX", "LIMIT", "LN", "LOAD", "LOCAL", "LOCALTIME", "LOCALTIMESTAMP", "LOWER", "MATCH",
    "MATCHES", "MATCH_NUMBER", "MATCH_RECOGNIZE", "MAX", "MEASURES", "MEMBER", "MERGE", "METADATA",
    "METHOD", "MIN", "MINUS", "MINUTE", "MOD", "MODIFIES", "MODULE", "MONTH", "MULTISET",
    "NATIONAL", "NATURAL", "NCHAR", "NCLOB", "NEW", "NEXT", "NO", "NONE", "NORMALIZE", "NOT",
    "NTH_VALUE", "NTILE", "NULL", "NULLIF", "NUMERIC", "OCCURRENCES_REGEX", "OCTET_LENGTH", "OF",
    "OFFSET", "OLD", "OMIT", "ON", "ONE", "ONLY", "OPEN", "OR", "ORDER", "OUT", "OUTER", "OVER",
    "OVERLAPS", "OVERLAY", "PARAMETER", "PARTITION", "PATTERN", "PER", "PERCENT", "PERCENTILE_CONT",
    "PERCENTILE_DISC", "PERCENT_RANK", "PERIOD", "PERMUTE", "PIVOT", "PORTION", "POSITION",
    "POSITION_REGEX", "POWER", "PRECEDES", "PRECISION", "PREPARE", "PREV", "PRIMARY", "PROCEDURE",
    "QUALIFY", "RANGE", "RANK", "READS", "REAL", "RECURSIVE", "REF", "REFERENCE", "REFERENCES",
    "REFERENCING", "REFRESH", "REGR_AVGX", "REGR_AVGY", "REGR_COUNT", "REGR_INTERCEPT", "REGR_R2",
    "REGR_SLOPE", "REGR_SXX", "REGR_SXY", "REGR_SYY", "RELEASE", "RESET", "RESULT", "RETURN",
    "RETURNS", "REVOKE", "RIGHT", "ROLLBACK", "ROLLUP", "ROW", "ROWS", "ROW_NUMBER", "RUNNING",
    "SAVEPOINT", "SCHEMAS", "SCOPE", "SCROLL", "SEARCH", "SECOND", "SEEK", "SELECT", "SENSITIVE",
    "SESSION_USER", "SET", "SHOW", "SIMILAR", "SKIP", "SMALLINT", "SNAPSHOT", "SOME", "SPECIFIC",
    "SPECIFICTYPE", "SQL", "SQLEXCEPTION", "SQLSTATE", "SQLWARNING", "SQRT", "START", "STATIC",
    "STDDEV_POP", "STDDEV_SAMP", "STREAM", "SUBMULTISET", "SUBSET", "SUBSTRING", "SUBSTRING_REGEX",
    "SUCCEEDS", "SUM", "SYMMETRIC", "SYSTEM", "SYSTEM_TIME", "SYSTEM_USER", "TABLE", "TABLES",
    "TABLESAMPLE", "TAG", "THEN", "TIME", "TIMESTAMP", "TIMEZONE_HOUR", "TIMEZONE_MINUTE",
    "TINYINT", "TO", "TRAILING", "TRANSLATE", "TRANSLATE_REGEX", "TRANSLATION", "TREAT", "TRIGGER",
    "TRIM", "TRIM_ARRAY", "TRUE", "TRUNCATE", "UESCAPE", "UNION", "UNIQUE", "UNKNOWN", "UNNEST",
    "UNPIVOT", "UPDATE", "UPPER", "UPSERT", "USE", "USER", "USING", "VALUE", "VALUES", "VALUE_OF",
    "VARBINARY", "VARCHAR", "VARYING", "VAR_POP", "VAR_SAMP", "VERSIONING", "WHEN", "WHENEVER",
    "WHERE", "WIDTH_BUCKET", "WINDOW", "WITH", "WITHIN", "WITHOUT", "YEAR",
];
