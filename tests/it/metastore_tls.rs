//! TLS to the metadata store, against the real servers of scripts/test.sh: each PostgreSQL and
//! MariaDB pair has TLS on with a certificate for 127.0.0.1 signed by its own throwaway CA
//! (`LIFEBOAT_PG_CA_FILE`, `LIFEBOAT_MARIADB_CA_FILE`). A connection given that CA file is
//! encrypted (the server says so), a backup and a restore through the CLI work over it, and the
//! other pair's CA is refused with an error that says what to check.

use lifeboat::druid::metastore::{self, Db, DbKind, MetaConfig, MetaError, MetaUrl, Tls};
use lifeboat::secrets::Secret;

use crate::support::metastore::{DbUrl, fresh, seed, table_rows};
use crate::support::{StoreKind, TestLocation, block, env, fails_with, lifeboat_env, ok_json};

fn ca_var(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Postgresql => "LIFEBOAT_PG_CA_FILE",
        DbKind::Mysql => "LIFEBOAT_MARIADB_CA_FILE",
    }
}

fn other(kind: DbKind) -> DbKind {
    match kind {
        DbKind::Postgresql => DbKind::Mysql,
        DbKind::Mysql => DbKind::Postgresql,
    }
}

fn tls_config(db: &DbUrl, ca: &str) -> MetaConfig {
    let mut c = MetaConfig::new(
        MetaUrl::parse(&db.shown).unwrap(),
        Some(Secret(db.password.clone())),
        "lifeboat-test",
    );
    c.tls = Tls::CaFile(ca.into());
    c
}

/// The session's cipher as the server reports it (empty when the session is not encrypted).
async fn session_cipher(db: &mut Db) -> String {
    match db {
        Db::Pg(c) => {
            let row = c
                .query_one(
                    "SELECT ssl, coalesce(cipher, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            let on: bool = row.get(0);
            if on { row.get(1) } else { String::new() }
        }
        Db::My(c) => {
            use mysql_async::prelude::Queryable;
            let row: Option<(String, String)> = c
                .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                .await
                .unwrap();
            row.map(|(_, v)| v).unwrap_or_default()
        }
    }
}

fn encrypted_with_its_ca(kind: DbKind) {
    let db = fresh(kind);
    // One runtime for the connection and its queries: the driver's task lives in it.
    let cipher = block(async {
        let mut conn = metastore::connect(&tls_config(&db, &env(ca_var(kind))))
            .await
            .unwrap();
        let cipher = session_cipher(&mut conn).await;
        conn.close().await;
        cipher
    });
    assert!(!cipher.is_empty(), "{kind:?}: the session is not encrypted");

    let wrong = block(metastore::connect(&tls_config(
        &db,
        &env(ca_var(other(kind))),
    )));
    match wrong {
        Err(MetaError::Connect { why, remedy, .. }) => {
            assert!(
                remedy.contains("holds the CA that signed its certificate"),
                "{kind:?}: {why}; {remedy}"
            );
        }
        Err(e) => panic!("{kind:?}: another CA gave {e}"),
        Ok(_) => panic!("{kind:?}: a certificate signed by another CA was accepted"),
    }
}

#[test]
fn metastore_tls_postgresql_encrypts_with_its_ca_and_refuses_another() {
    encrypted_with_its_ca(DbKind::Postgresql);
}

#[test]
fn metastore_tls_mariadb_encrypts_with_its_ca_and_refuses_another() {
    encrypted_with_its_ca(DbKind::Mysql);
}

fn backup_and_restore_over_tls(kind: DbKind) {
    let source = fresh(kind);
    seed(&source, None);
    let target = fresh(kind);
    let ca = env(ca_var(kind));
    let loc = TestLocation::new(StoreKind::Local, "metastore-tls");
    let backup = ok_json(&lifeboat_env(
        &[
            "--json",
            "backup",
            "--druid-metadata",
            &source.shown,
            "--druid-metadata-ca-file",
            &ca,
            "--to",
            &loc.url,
            "--cluster",
            "tls",
        ],
        &source.password_env(),
    ));
    assert!(backup["id"].is_string(), "{backup}");
    let restored = ok_json(&lifeboat_env(
        &[
            "--json",
            "restore",
            "--from",
            &loc.url,
            "--cluster",
            "tls",
            "--druid-metadata",
            &target.shown,
            "--druid-metadata-ca-file",
            &ca,
        ],
        &target.password_env(),
    ));
    assert!(restored.is_object(), "{restored}");
    assert_eq!(
        table_rows(&source, "druid_rules"),
        table_rows(&target, "druid_rules"),
        "{kind:?}: the rules restored over TLS differ"
    );

    let wrong = env(ca_var(other(kind)));
    let out = lifeboat_env(
        &[
            "backup",
            "--druid-metadata",
            &source.shown,
            "--druid-metadata-ca-file",
            &wrong,
            "--to",
            &loc.url,
            "--cluster",
            "tls",
        ],
        &source.password_env(),
    );
    fails_with(&out, 5, &["holds the CA that signed its certificate"]);
}

#[test]
fn metastore_tls_postgresql_backup_and_restore_through_the_cli() {
    backup_and_restore_over_tls(DbKind::Postgresql);
}

#[test]
fn metastore_tls_mariadb_backup_and_restore_through_the_cli() {
    backup_and_restore_over_tls(DbKind::Mysql);
}
