//! Online (logical) backups through the REST API of the Dremio simulator (tests/dremio-sim): one
//! coordinator, an HA pair with a failover, no coordinator at all, bad credentials, and the whole
//! DR drill: online backup to S3, restore with dremio-admin into a second installation, and a
//! coordinator started on the restored state that has the primary's users.

use std::path::{Path, PathBuf};

use crate::support::*;

const VERSION: &str = "25.2.0";
use crate::support::ADMIN;

/// A DREMIO_HOME for the simulator whose paths.local is `local`.
fn home(root: &Path, name: &str, local: &Path) -> PathBuf {
    sim_home(root, name, local, VERSION)
}

fn creds() -> Vec<(String, String)> {
    vec![
        ("LIFEBOAT_DREMIO_USER".into(), ADMIN.0.into()),
        ("LIFEBOAT_DREMIO_PASSWORD".into(), ADMIN.1.into()),
    ]
}

fn online_backup(
    urls: &str,
    staging: &Path,
    to: &str,
    env: &[(String, String)],
) -> std::process::Output {
    lifeboat_env(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-url",
            urls,
            "--staging",
            staging.to_str().unwrap(),
            "--to",
            to,
        ],
        env,
    )
}

/// The folder the coordinator writes its backup into.
fn staging_in(root: &Path) -> PathBuf {
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    staging
}

#[track_caller]
fn assert_nothing_committed(loc: &TestLocation) {
    assert!(
        !loc.keys().iter().any(|k| k.ends_with("manifest.json")),
        "{:?}",
        loc.keys()
    );
}

/// A coordinator with an admin, a second user and a space, so that a restore has something to show.
fn primary(root: &Path) -> (Sim, PathBuf, String) {
    let local = root.join("primary-data");
    std::fs::create_dir_all(&local).unwrap();
    let sim = Sim::start(&local, VERSION);
    let auth = first_admin(&sim.url, ADMIN.0, ADMIN.1);
    let user = serde_json::json!({"name": "analyst", "firstName": "Ann", "lastName": "Lyst", "email": "ann@example.com", "password": "analyst123"});
    let (status, text) = http(
        "POST",
        &format!("{}/api/v3/user", sim.url),
        Some(&auth),
        Some(&user),
    );
    assert!(status < 300, "create user: {status} {text}");
    let space = serde_json::json!({"entityType": "space", "name": "Sales"});
    let (status, text) = http(
        "POST",
        &format!("{}/api/v3/catalog", sim.url),
        Some(&auth),
        Some(&space),
    );
    assert!(status < 300, "create space: {status} {text}");
    (sim, local, auth)
}

#[test]
fn an_online_backup_is_a_logical_archive_with_a_checked_manifest() {
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, _) = primary(root.path());
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "online");
    let made = ok_json(&online_backup(&sim.url, &staging, &loc.url, &creds()));
    let id = made["id"].as_str().unwrap();
    assert_eq!(made["mode"], "logical");
    let manifest: serde_json::Value =
        serde_json::from_slice(&loc.read(&format!("dremio/{id}/manifest.json"))).unwrap();
    assert_eq!(manifest["mode"], "logical");
    assert_eq!(manifest["cluster"]["version"], VERSION);
    assert_eq!(manifest["source"]["coordinator"], sim.url.as_str());
    assert!(
        manifest["logical"]["tables"].as_u64().unwrap() >= 3,
        "{manifest}"
    );
    assert!(manifest["logical"]["records"].as_u64().unwrap() >= 3);
    let members: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        members.contains(&"userGroup_backup.pb") && members.contains(&"userGroup_info.json"),
        "{members:?}"
    );
    assert!(
        !members.iter().any(|n| n.starts_with("tokens")),
        "tokens are never backed up"
    );
    assert!(
        names(&staging).is_empty(),
        "the coordinator's backup folder is removed once shipped: {:?}",
        names(&staging)
    );
    ok_json(&lifeboat(&["--json", "verify", "--from", &loc.url], &[]));
    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
    assert_eq!(listed["backups"][0]["mode"], "logical");
}

#[test]
fn an_ha_pair_is_backed_up_through_whichever_coordinator_is_active() {
    let root = tempfile::tempdir().unwrap();
    let (mut first, local, _) = primary(root.path());
    let standby = Sim::start(&local, VERSION);
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "ha");
    // The standby is listed first: lifeboat must skip it.
    let urls = format!("{},{}", standby.url, first.url);
    let made = ok_json(&online_backup(&urls, &staging, &loc.url, &creds()));
    let m: serde_json::Value = serde_json::from_slice(&loc.read(&format!(
        "dremio/{}/manifest.json",
        made["id"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(m["source"]["coordinator"], first.url.as_str());

    // The active coordinator dies; the standby takes over; the same command, unchanged, follows it.
    first.kill();
    standby.wait_active();
    let made = ok_json(&online_backup(&urls, &staging, &loc.url, &creds()));
    let m: serde_json::Value = serde_json::from_slice(&loc.read(&format!(
        "dremio/{}/manifest.json",
        made["id"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(m["source"]["coordinator"], standby.url.as_str());
    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
    assert_eq!(listed["backups"].as_array().unwrap().len(), 2);
}

#[test]
fn without_an_active_coordinator_nothing_is_committed() {
    let root = tempfile::tempdir().unwrap();
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "none");
    // One port nobody listens on, one server that answers 503 like a master that failed to start.
    let down = format!("http://127.0.0.1:{}", free_port());
    let failing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let failing_url = format!("http://{}", failing.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = failing.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 13\r\nConnection: close\r\n\r\n\"MASTER_DOWN\"");
    });
    let out = online_backup(
        &format!("{down},{failing_url}"),
        &staging,
        &loc.url,
        &creds(),
    );
    fails_with(
        &out,
        5,
        &[
            "no active Dremio coordinator",
            "not listening",
            "HTTP 503",
            "MASTER_DOWN",
        ],
    );
    server.join().unwrap();
    assert_nothing_committed(&loc);
}

#[test]
fn bad_credentials_a_non_admin_and_an_unwritable_staging_folder_are_clear_failures() {
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, _) = primary(root.path());
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "creds");
    let env = |u: &str, p: &str| {
        vec![
            ("LIFEBOAT_DREMIO_USER".to_string(), u.to_string()),
            ("LIFEBOAT_DREMIO_PASSWORD".to_string(), p.to_string()),
        ]
    };

    let out = online_backup(
        &sim.url,
        &staging,
        &loc.url,
        &env(ADMIN.0, "wrong-password1"),
    );
    fails_with(&out, 5, &["login as \"dremio\" refused", "401"]);
    assert!(
        !stderr(&out).contains("wrong-password1"),
        "the password is never printed"
    );

    let out = online_backup(&sim.url, &staging, &loc.url, &env("analyst", "analyst123"));
    fails_with(&out, 5, &["403", "administrator"]);

    let out = online_backup(
        &sim.url,
        &staging,
        &loc.url,
        &[(
            "LIFEBOAT_DREMIO_TOKEN".to_string(),
            "not-a-real-token".to_string(),
        )],
    );
    fails_with(&out, 5, &["401", "wrong or expired"]);

    let out = online_backup(
        &sim.url,
        &root.path().join("no/such/parent/dir"),
        &loc.url,
        &creds(),
    );
    fails_with(&out, 5, &["does not exist"]);

    let out = lifeboat(
        &[
            "backup",
            "--format",
            "1",
            "--dremio-url",
            &sim.url,
            "--staging",
            staging.to_str().unwrap(),
            "--to",
            &loc.url,
        ],
        &[],
    );
    fails_with(&out, 2, &["LIFEBOAT_DREMIO_USER"]);
    assert_nothing_committed(&loc);
}

#[test]
fn dr_drill_online_backup_to_s3_restored_with_dremio_admin_serves_the_same_users_and_catalog() {
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, auth) = primary(root.path());
    let (_, users_before) = http(
        "GET",
        &format!("{}/apiv2/users/all", sim.url),
        Some(&auth),
        None,
    );
    let (_, catalog_before) = http(
        "GET",
        &format!("{}/api/v3/catalog", sim.url),
        Some(&auth),
        None,
    );
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::S3, "drill");
    let id = ok_json(&online_backup(&sim.url, &staging, &loc.url, &creds()))["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A second site: its own DREMIO_HOME and paths.local, coordinator stopped.
    let dr_local = root.path().join("dr-data");
    let dr_home = home(root.path(), "dr-home", &dr_local);
    let restored = ok_json(&lifeboat(
        &[
            "--json",
            "restore",
            "--from",
            &loc.url,
            "--backup",
            &id,
            "--dremio-home",
            dr_home.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(restored["id"], id.as_str());
    let dr = Sim::start(&dr_local, VERSION);
    let dr_auth = login(&dr.url, ADMIN.0, ADMIN.1);
    let (_, users_after) = http(
        "GET",
        &format!("{}/apiv2/users/all", dr.url),
        Some(&dr_auth),
        None,
    );
    let (_, catalog_after) = http(
        "GET",
        &format!("{}/api/v3/catalog", dr.url),
        Some(&dr_auth),
        None,
    );
    assert_eq!(users_after, users_before);
    assert_eq!(catalog_after, catalog_before);
    login(&dr.url, "analyst", "analyst123");

    // dremio-admin refuses a store that is not empty; lifeboat refuses first and says how to proceed.
    drop(dr);
    let out = lifeboat(
        &[
            "restore",
            "--from",
            &loc.url,
            "--backup",
            &id,
            "--dremio-home",
            dr_home.to_str().unwrap(),
        ],
        &[],
    );
    fails_with(&out, 3, &["not empty", "--replace"]);
}

#[test]
fn a_failing_dremio_admin_restore_puts_the_target_back() {
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, _) = primary(root.path());
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "admin-fails");
    let id = ok_json(&online_backup(&sim.url, &staging, &loc.url, &creds()))["id"]
        .as_str()
        .unwrap()
        .to_string();

    let dr_local = root.path().join("dr-data");
    let dr_home = home(root.path(), "dr-home", &dr_local);
    put_file(&dr_local.join("db/sim/userGroup.jsonl"), b"the old store\n");
    put_file(&dr_local.join("security/key"), b"old key");
    // A dremio-admin that writes half a store where its conf says (DREMIO_CONF_DIR, as Dremio's
    // scripts honour it) and then fails, as Dremio's does on an incompatible backup.
    let admin = dr_home.join("bin/dremio-admin");
    std::fs::write(&admin, "#!/bin/sh\nlocal=$(sed -n 's/^[[:space:]]*\\(paths\\.\\)\\{0,1\\}local:[[:space:]]*\"\\(.*\\)\".*/\\2/p' \"${DREMIO_CONF_DIR:-$(dirname \"$0\")/../conf}/dremio.conf\" | tail -n 1)\necho 'half' > \"$local/db/partial\"\necho 'Restore failed. Please make sure the backup is compatible with this version.' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&admin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = snapshot(root.path().join("dr-data").as_path());
    let siblings_before = names(root.path());

    let out = lifeboat(
        &[
            "restore",
            "--from",
            &loc.url,
            "--backup",
            &id,
            "--dremio-home",
            dr_home.to_str().unwrap(),
            "--replace",
        ],
        &[],
    );
    fails_with(
        &out,
        3,
        &[
            "dremio-admin restore exited",
            "Restore failed",
            "the target was not touched",
        ],
    );
    assert_same(
        &snapshot(&dr_local),
        &before,
        "the old store is back, untouched",
    );
    assert_eq!(
        names(root.path()),
        siblings_before,
        "no staging folder or safety copy left beside it"
    );
}

#[test]
fn an_expired_token_is_a_clear_failure() {
    let root = tempfile::tempdir().unwrap();
    let local = root.path().join("data");
    std::fs::create_dir_all(&local).unwrap();
    // Tokens of this coordinator expire the moment they are issued.
    let sim = Sim::start_with(&local, VERSION, &["--token-ttl", "0"], &[]);
    let auth = first_admin(&sim.url, ADMIN.0, ADMIN.1);
    let token = auth.trim_start_matches("_dremio").to_string();
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "expired");
    let out = online_backup(
        &sim.url,
        &staging,
        &loc.url,
        &[("LIFEBOAT_DREMIO_TOKEN".to_string(), token.clone())],
    );
    fails_with(&out, 5, &["Token expired", "wrong or expired"]);
    assert!(!stderr(&out).contains(&token), "the token is never printed");
    assert!(loc.keys().is_empty());
}

#[test]
fn a_coordinator_backup_with_a_missing_table_file_or_a_wrong_count_is_not_committed() {
    for (fault, expected) in [
        ("drop-table:userGroup", "userGroup_backup.pb is missing"),
        ("miscount:userGroup", "its info file says"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let local = root.path().join("data");
        std::fs::create_dir_all(&local).unwrap();
        let sim = Sim::start_with(&local, VERSION, &[], &[("DREMIO_SIM_BACKUP_FAULT", fault)]);
        first_admin(&sim.url, ADMIN.0, ADMIN.1);
        let staging = staging_in(root.path());
        let loc = TestLocation::new(StoreKind::Local, "fault");
        let out = online_backup(&sim.url, &staging, &loc.url, &creds());
        fails_with(
            &out,
            4,
            &["is incomplete", expected, "nothing was committed"],
        );
        assert!(
            !loc.keys().iter().any(|k| k.ends_with("manifest.json")),
            "{fault}: {:?}",
            loc.keys()
        );
        assert!(
            names(&staging).is_empty(),
            "{fault}: the broken folder is removed"
        );
    }
}

#[test]
fn a_logical_restore_whose_move_aside_fails_keeps_the_target_whole() {
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, _) = primary(root.path());
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "aside-fails");
    let id = ok_json(&online_backup(&sim.url, &staging, &loc.url, &creds()))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dr_local = root.path().join("dr-data");
    let dr_home = home(root.path(), "dr-home", &dr_local);
    put_file(&dr_local.join("db/sim/userGroup.jsonl"), b"the old store\n");
    put_file(&dr_local.join("security/key"), b"old key");
    let before = snapshot(&dr_local);
    let siblings_before = names(root.path());
    let out = {
        let _pinned = Immutable::set(&dr_local);
        lifeboat(
            &[
                "restore",
                "--from",
                &loc.url,
                "--backup",
                &id,
                "--dremio-home",
                dr_home.to_str().unwrap(),
                "--replace",
            ],
            &[],
        )
    };
    fails_with(&out, 3, &[&id, "put back as it was"]);
    assert_same(
        &snapshot(&dr_local),
        &before,
        "every old file is still there",
    );
    assert_eq!(
        names(root.path()),
        siblings_before,
        "nothing left beside it"
    );
}

/// The bytes of one top-level member of a backup's archive.
fn archive_member(loc: &TestLocation, id: &str, member: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let manifest: serde_json::Value =
        serde_json::from_slice(&loc.read(&format!("dremio/{id}/manifest.json"))).unwrap();
    let object = manifest["archive"]["object"].as_str().unwrap();
    let packed = loc.read(&format!("dremio/{id}/{object}"));
    let tar = zstd::stream::decode_all(&packed[..]).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new(member) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

#[test]
fn an_online_backup_records_the_catalog_fingerprint_of_a_clone_export() {
    use lifeboat::clone::fingerprint::{self, Fingerprint};
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, _) = primary(root.path());
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "catalog");
    let id = ok_json(&online_backup(&sim.url, &staging, &loc.url, &creds()))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&loc.read(&format!("dremio/{id}/manifest.json"))).unwrap();
    let catalog = &manifest["catalog"];
    assert_eq!(
        catalog["member"],
        lifeboat::repo::manifest::CATALOG_MEMBER,
        "{manifest}"
    );
    assert_eq!(catalog["coordinator"], sim.url.as_str());
    assert!(catalog["taken_at"].as_str().is_some(), "{manifest}");
    assert!(
        names(&staging).is_empty(),
        "the export's folder is removed too: {:?}",
        names(&staging)
    );
    let member =
        archive_member(&loc, &id, lifeboat::repo::manifest::CATALOG_MEMBER).expect("the member");
    let recorded = Fingerprint::read_from(&mut &member[..]).unwrap();
    assert_eq!(catalog["files"], recorded.entries.len() as u64);

    let tree = root.path().join("export");
    ok_json(&lifeboat_env(
        &[
            "--json",
            "clone",
            "export",
            "--dremio-url",
            &sim.url,
            "--out",
            tree.to_str().unwrap(),
        ],
        &creds(),
    ));
    let exported = Fingerprint::of_tree(&tree).unwrap();
    let paths: Vec<&str> = exported.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"catalog/Sales.space.json")
            && paths.iter().any(|p| p.starts_with("users/")),
        "{paths:?}"
    );
    let d = fingerprint::diff(&recorded, &exported);
    assert!(d.is_empty(), "{}", d.summary());
    assert_eq!(recorded, exported);
    ok_json(&lifeboat(&["--json", "verify", "--from", &loc.url], &[]));
}

#[test]
fn a_logical_restore_keeps_the_catalog_fingerprint_away_from_dremio_admin() {
    let root = tempfile::tempdir().unwrap();
    let (sim, _local, auth) = primary(root.path());
    let (_, users_before) = http(
        "GET",
        &format!("{}/apiv2/users/all", sim.url),
        Some(&auth),
        None,
    );
    let staging = staging_in(root.path());
    let loc = TestLocation::new(StoreKind::Local, "catalog-restore");
    let id = ok_json(&online_backup(&sim.url, &staging, &loc.url, &creds()))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(archive_member(&loc, &id, lifeboat::repo::manifest::CATALOG_MEMBER).is_some());

    let dr_local = root.path().join("dr-data");
    let dr_home = home(root.path(), "dr-home", &dr_local);
    // A dremio-admin that refuses a backup folder holding anything but its own table files.
    let admin = dr_home.join("bin/dremio-admin");
    let real = dr_home.join("bin/dremio-admin.real");
    std::fs::rename(&admin, &real).unwrap();
    std::fs::write(
        &admin,
        format!(
            "#!/bin/sh\nif [ -e \"$3/lifeboat-catalog.jsonl\" ]; then echo 'unexpected file lifeboat-catalog.jsonl' >&2; exit 9; fi\nexec \"{}\" \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&admin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    ok_json(&lifeboat(
        &[
            "--json",
            "restore",
            "--from",
            &loc.url,
            "--backup",
            &id,
            "--dremio-home",
            dr_home.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(
        !snapshot(&dr_local)
            .keys()
            .any(|k| k.contains("lifeboat-catalog")),
        "the fingerprint is not restored into the store"
    );
    let dr = Sim::start(&dr_local, VERSION);
    let dr_auth = login(&dr.url, ADMIN.0, ADMIN.1);
    let (_, users_after) = http(
        "GET",
        &format!("{}/apiv2/users/all", dr.url),
        Some(&dr_auth),
        None,
    );
    assert_eq!(users_after, users_before);
}
