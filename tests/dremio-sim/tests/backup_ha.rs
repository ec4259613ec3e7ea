//! Backup format, restore through `dremio-admin`, HA takeover, make-home.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ADMIN, PASSWORD, SIM, Sim, free_port};
use dremio_sim::backup::decode_pb;
use dremio_sim::store::{Store, parse_jsonl};
use serde_json::{Value, json};

/// A sim with an admin, a second user, a space, an upload and a security file.
fn populated(dir: &Path) -> (Sim, String) {
    fs::create_dir_all(dir.join("pdfs/uploads/_uploads/admin")).unwrap();
    fs::write(
        dir.join("pdfs/uploads/_uploads/admin/data.csv"),
        "a,b\n1,2\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("security")).unwrap();
    fs::write(dir.join("security/key.pem"), "secret").unwrap();
    let sim = Sim::start(dir, &[]);
    assert_eq!(sim.first_user().status, 200);
    let admin = sim.login("admin", PASSWORD);
    let u = json!({"name": "bob", "password": "bobpass123"}).to_string();
    assert_eq!(
        sim.req("POST", "/api/v3/user", Some(&admin), Some(&u))
            .status,
        200
    );
    let s = r#"{"entityType":"space","name":"Sales \"quoted\""}"#;
    assert_eq!(
        sim.req("POST", "/api/v3/catalog", Some(&admin), Some(s))
            .status,
        200
    );
    (sim, admin)
}

fn backup(sim: &Sim, auth: &str, dir: &Path, binary: bool, profiles: bool) -> Value {
    let b = json!({"backupDir": format!("file://{}", dir.display()), "binary": binary,
        "includeProfiles": profiles, "compression": "", "table": "", "key": ""});
    let r = sim.req("POST", "/apiv2/backup", Some(auth), Some(&b.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn restore(paths_local: &Path, backup: &str) -> std::process::Output {
    Command::new(ADMIN)
        .arg("--paths-local")
        .arg(paths_local)
        .args(["restore", "-d", backup])
        .output()
        .unwrap()
}

#[test]
fn backup_json_and_pb_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let (sim, admin) = populated(&src);

    for binary in [false, true] {
        let bdir = root.path().join(if binary { "bk-pb" } else { "bk-json" });
        let v = backup(&sim, &admin, &bdir, binary, false);
        let path = v["backupPath"].as_str().unwrap().to_string();
        let p = Path::new(&path);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(p.starts_with(&bdir));
        // dremio_backup_yyyy-MM-dd_HH.mm
        assert_eq!(name.len(), "dremio_backup_2024-01-01_00.00".len(), "{name}");
        assert!(name.starts_with("dremio_backup_20"));
        assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(!p.join("tokens_info.json").exists());
        assert!(!p.join("profiles_info.json").exists());
        assert_eq!(v["files"], 2);
        assert_eq!(
            fs::read_to_string(p.join("uploads/admin/data.csv")).unwrap(),
            "a,b\n1,2\n"
        );
        assert_eq!(
            fs::read_to_string(p.join("security/key.pem")).unwrap(),
            "secret"
        );

        let info: Value =
            serde_json::from_str(&fs::read_to_string(p.join("userGroup_info.json")).unwrap())
                .unwrap();
        assert_eq!(info["kvstoreInfo"]["tablename"], "userGroup");
        assert!(info["kvstoreInfo"]["keyFormat"]["type"].is_number());
        assert_eq!(info["checksum"], 0);
        assert_eq!(info["records"], 2);
        assert_eq!(info["binary"], binary);
        assert_eq!(info["compression"], 0);
        let recs: Vec<(String, String)> = if binary {
            decode_pb(&fs::read(p.join("userGroup_backup.pb")).unwrap(), "pb").unwrap()
        } else {
            parse_jsonl(
                &fs::read_to_string(p.join("userGroup_backup.json")).unwrap(),
                "json",
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect()
        };
        assert_eq!(recs.len(), 2);
        let names: Vec<String> = recs
            .iter()
            .map(|(_, v)| serde_json::from_str::<Value>(v).unwrap()["userName"].to_string())
            .collect();
        assert!(names.contains(&"\"bob\"".to_string()), "{names:?}");
        assert_eq!(v["tables"].as_u64().unwrap(), count(p, "_info.json"));

        // restore into a fresh paths.local: same state (tokens aside)
        let dst = root.path().join(if binary { "dst-pb" } else { "dst-json" });
        let out = restore(&dst, &path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!(
                "Restored from backup at {path}, {} dremio tables, 2 files.",
                v["tables"]
            )
        );
        // the source node is running: read its store without writing to it
        let mut a = Store::load(&src).unwrap();
        let mut b = Store::open(&dst).unwrap().tables;
        a.remove("tokens");
        b.remove("tokens");
        a.remove("profiles");
        b.remove("profiles");
        assert_eq!(a, b);
        assert_eq!(
            fs::read_to_string(dst.join("pdfs/uploads/_uploads/admin/data.csv")).unwrap(),
            "a,b\n1,2\n"
        );
        assert_eq!(
            fs::metadata(dst.join("security/key.pem"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );

        // the restored node serves the same users and catalog
        let restored = Sim::start(&dst, &[]);
        let auth = restored.login("bob", "bobpass123");
        let r = restored.req("GET", "/api/v3/catalog", Some(&auth), None);
        assert_eq!(r.json()["data"][0]["path"], json!(["Sales \"quoted\""]));
        // and refuses a second restore
        drop(restored);
        let out = restore(&dst, &path);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!(
                "Path {} must be an empty directory.",
                dst.join("db").display()
            )
        );
    }

    // includeProfiles adds the profiles table; tokens never
    let v = backup(&sim, &admin, &root.path().join("bk-prof"), false, true);
    let p = Path::new(v["backupPath"].as_str().unwrap());
    assert!(p.join("profiles_info.json").exists());
    assert!(!p.join("tokens_backup.json").exists());
}

fn count(dir: &Path, suffix: &str) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count() as u64
}

#[test]
fn backup_errors_and_damaged_backups() {
    let root = tempfile::tempdir().unwrap();
    let (sim, admin) = populated(&root.path().join("src"));
    let b = json!({"backupDir": "file:///nonexistent-dremio-sim/a/b", "binary": true});
    let r = sim.req("POST", "/apiv2/backup", Some(&admin), Some(&b.to_string()));
    assert_eq!(r.status, 500);
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{}",
        r.body
    );

    let v = backup(&sim, &admin, &root.path().join("bk"), false, false);
    let path = v["backupPath"].as_str().unwrap().to_string();
    // wrong record count
    let bad = root.path().join("bad-count");
    fs::create_dir(&bad).unwrap();
    for e in fs::read_dir(&path).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), bad.join(e.file_name())).unwrap();
        }
    }
    fs::write(bad.join("userGroup_backup.json"), "").unwrap();
    let out = restore(&root.path().join("d1"), bad.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Table userGroup: 0 records"), "{err}");
    assert!(err.contains("Restore failed."), "{err}");
    // missing data file
    fs::remove_file(bad.join("userGroup_backup.json")).unwrap();
    let out = restore(&root.path().join("d2"), bad.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Missing data file"));

    // version check at startup: a 25.2.0 store refuses a 25.1.0 server
    let d3 = root.path().join("d3");
    assert!(restore(&d3, &path).status.success());
    let out = Command::new(SIM)
        .arg("--paths-local")
        .arg(&d3)
        .args(["--port", "0", "--version", "25.1.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KVStore has a newer version (25.2.0)"));
}

#[test]
fn ha_standby_takes_over() {
    let root = tempfile::tempdir().unwrap();
    let pl = root.path().join("shared");
    let mut active = Sim::start(&pl, &[]);
    assert_eq!(active.first_user().status, 200);
    let holder = dremio_sim::lock::holder_pid(&dremio_sim::lock::lock_path(&pl)).unwrap();
    assert_eq!(holder, Some(active.child.id() as i32));

    let port = free_port();
    let mut standby = Sim::spawn(&pl, port, &[]);
    standby.wait_line("dremio-sim: standby", Duration::from_secs(30));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a standby must not listen"
    );
    // kill the active by its pid
    let pid = active.child.id() as i32;
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    active.child.wait().unwrap();
    standby.wait_active(Duration::from_secs(30));
    assert_eq!(standby.port, port);
    let r = standby.req("GET", "/apiv2/server_status", None, None);
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));
    let auth = standby.login("admin", PASSWORD);
    assert_eq!(
        standby.req("GET", "/api/v3/info", Some(&auth), None).status,
        200
    );
    assert_eq!(standby.first_user().status, 400);
}

#[test]
fn make_home_and_admin_backup_cli() {
    let root = tempfile::tempdir().unwrap();
    let pl = root.path().join("data");
    let (sim, _) = populated(&pl);
    let home = root.path().join("home");
    let st = Command::new(SIM)
        .args(["make-home", "--home"])
        .arg(&home)
        .arg("--paths-local")
        .arg(&pl)
        .args(["--version", "25.2.0", "--admin-bin", ADMIN, "--port"])
        .arg(sim.port.to_string())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        home.join("jars/dremio-dac-backend-25.2.0-202410241428100111-a963b970.jar")
            .is_file()
    );
    assert!(
        fs::read_to_string(home.join("conf/dremio.conf"))
            .unwrap()
            .contains(&format!("local: \"{}\"", pl.display()))
    );
    let bdir = root.path().join("bk");
    let out = Command::new(home.join("bin/dremio-admin"))
        .args(["backup", "-d"])
        .arg(&bdir)
        .args(["-u", "admin", "-p", PASSWORD, "-j"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.trim();
    assert!(
        line.starts_with(&format!(
            "Backup created at {}/dremio_backup_",
            bdir.display()
        )),
        "{line}"
    );
    assert!(line.ends_with(", files 2"), "{line}");
    let path = line
        .strip_prefix("Backup created at ")
        .unwrap()
        .split(", dremio tables")
        .next()
        .unwrap();
    assert!(Path::new(path).join("userGroup_backup.json").is_file());

    // non-admin through the CLI: refused
    let out = Command::new(home.join("bin/dremio-admin"))
        .args(["backup", "-d"])
        .arg(&bdir)
        .args(["-u", "bob", "-p", "bobpass123"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));

    // restore through the home's script refuses the live paths.local
    let out = Command::new(home.join("bin/dremio-admin"))
        .args(["restore", "-d", path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "Path {} must be an empty directory.",
            pl.join("db").display()
        )
    );
}
