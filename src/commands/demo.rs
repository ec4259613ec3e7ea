//! `lifeboat demo`: the whole job on an embedded default, for a first look. Generates a small
//! Dremio-like installation, backs it up to a local folder, lists, verifies, restores into a scratch
//! installation and shows that every file came back byte for byte.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::backup::{self, BackupArgs};
use super::restore::{self, RestoreArgs};
use super::{CommandError, Ctx, list, verify};

/// The version the generated installation claims.
pub const DEMO_VERSION: &str = "25.2.0-202410241428100111-a963b970";

pub async fn run(ctx: &Ctx, dir: Option<PathBuf>, size_mib: u64) -> anyhow::Result<()> {
    let (root, _temp) = match dir {
        Some(d) => {
            fs::create_dir_all(&d)?;
            // dremio.conf must name paths.local absolutely: a relative pdfs:// is not a local folder.
            (fs::canonicalize(&d)?, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("lifeboat-demo-")
                .tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let say = |s: &str| {
        if !ctx.json {
            crate::output::line(s);
        }
    };
    say(&format!(
        "== generating a Dremio-like installation ({size_mib} MiB) under {}",
        root.display()
    ));
    let home = generate(&root.join("primary"), size_mib)?;
    let repo = root.join("repository");
    let repo_url = repo.display().to_string();

    say("\n== lifeboat backup --dremio-home primary/home --to repository");
    let made = backup::run(
        ctx,
        &BackupArgs {
            dremio_home: Some(home.clone()),
            paths_local: None,
            dremio_version: None,
            to: repo_url.clone(),
            copy_to: Vec::new(),
            wait_lock: None,
            metrics_file: None,
            dremio_urls: Vec::new(),
            staging: None,
            tls: Default::default(),
            cluster: "dremio".into(),
            level: 3,
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            parts_in_flight: 4,
            create_location: true,
            druid: None,
            shape: Default::default(),
        },
    )
    .await?;

    say("\n== lifeboat list --from repository");
    list::run(ctx, &repo_url, "dremio").await?;
    say("\n== lifeboat verify --from repository --backup latest");
    verify::run(ctx, &repo_url, "dremio", "latest").await?;

    let target = root.join("secondary-data");
    say(
        "\n== lifeboat restore --from repository --dremio-home primary/home --paths-local secondary-data",
    );
    restore::run(
        ctx,
        &RestoreArgs {
            from: repo_url,
            cluster: "dremio".into(),
            backup: made.manifest.id.clone(),
            dremio_home: Some(home.clone()),
            paths_local: Some(target.clone()),
            dremio_version: None,
            replace: false,
            owner: None,
            dry_run: false,
            druid: None,
            catalog_to: None,
            confine: false,
            identity: None,
        },
    )
    .await?;

    let source = root.join("primary").join("data");
    let mut compared = 0u64;
    for part in ["db", "pdfs/uploads/_uploads", "security"] {
        compared += compare_trees(&source.join(part), &target.join(part))?;
    }
    say(&format!(
        "\n== compared {compared} files and folders: the restored installation is identical to the original"
    ));
    if let Some(t) = _temp {
        say(&format!(
            "(scratch folder {} removed; pass --dir to keep it)",
            t.path().display()
        ));
    }
    Ok(())
}

/// Deterministic pseudo-random bytes (xorshift), cheap enough for hundreds of MiB.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `len` bytes: half JSON-like text (compressible, like KV values), half random (like compressed blobs).
    fn fill(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = self.next();
            if n % 2 == 0 {
                let rec = format!(
                    "{{\"id\":\"{:016x}\",\"path\":[\"space\",\"folder{}\",\"view{}\"],\"version\":{},\"owner\":\"user{}\"}}\n",
                    n,
                    n % 97,
                    n % 1013,
                    n % 7,
                    n % 31
                );
                out.extend_from_slice(rec.as_bytes());
            } else {
                for _ in 0..16 {
                    out.extend_from_slice(&self.next().to_le_bytes());
                }
            }
        }
        out.truncate(len);
        out
    }
}

fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p)?;
    }
    fs::File::create(path)?.write_all(data)
}

/// Generates `<dir>/home` (DREMIO_HOME) and `<dir>/data` (paths.local) shaped like a coordinator's:
/// a RocksDB-like `db/catalog`, blobs, metadata, a search index, uploads with awkward names and
/// security files. Returns the home. (Tests use a real RocksDB from scripts/gen_fixture.py.)
pub fn generate(dir: &Path, size_mib: u64) -> anyhow::Result<PathBuf> {
    let home = dir.join("home");
    let data = dir.join("data");
    fs::create_dir_all(home.join("jars"))?;
    fs::create_dir_all(home.join("bin"))?;
    write(
        &home.join("conf/dremio.conf"),
        format!("# generated by lifeboat demo\npaths: {{\n  local: \"{}\"\n  dist: \"pdfs://\"${{paths.local}}\"/pdfs\"\n}}\nservices: {{\n  coordinator.enabled: true,\n  coordinator.master.enabled: true,\n  executor.enabled: false\n}}\n", data.display()).as_bytes(),
    )?;
    for jar in [
        format!("dremio-dac-backend-{DEMO_VERSION}.jar"),
        format!("dremio-common-{DEMO_VERSION}.jar"),
        "guava-33.0.jar".into(),
    ] {
        write(&home.join("jars").join(jar), b"")?;
    }
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let catalog = data.join("db/catalog");
    write(&catalog.join("CURRENT"), b"MANIFEST-000005\n")?;
    write(&catalog.join("IDENTITY"), b"4f1c9a52-demo\n")?;
    write(&catalog.join("LOCK"), b"")?;
    write(&catalog.join("LOG"), &noise.fill(20_000))?;
    write(&catalog.join("MANIFEST-000005"), &noise.fill(4_000))?;
    write(
        &catalog.join("OPTIONS-000007"),
        b"[DBOptions]\n  create_if_missing=true\n",
    )?;
    let total = size_mib * 1024 * 1024;
    let sst_count = 8u64;
    for i in 0..sst_count {
        write(
            &catalog.join(format!("{:06}.sst", 10 + i)),
            &noise.fill((total * 7 / 10 / sst_count) as usize),
        )?;
    }
    write(&catalog.join("000018.log"), &noise.fill(64 * 1024))?;
    for (t, table) in ["dac-namespace", "jobs", "datasetVersions"]
        .iter()
        .enumerate()
    {
        for b in 0..4 {
            write(
                &data.join(format!("db/blob/{table}/{:08x}-{b:04x}.blob", t)),
                &noise.fill((total / 10 / 12) as usize),
            )?;
        }
        write(
            &data.join(format!("db/metadata/{table}_metadata.json")),
            format!("{{\"table\":\"{table}\",\"version\":1}}").as_bytes(),
        )?;
    }
    write(
        &data.join("db/search/dac-namespace/segments_3"),
        &noise.fill(300),
    )?;
    write(
        &data.join("db/search/dac-namespace/_0.cfs"),
        &noise.fill((total / 20) as usize),
    )?;
    fs::create_dir_all(data.join("db/checkpoints"))?;
    let uploads = data.join("pdfs/uploads/_uploads");
    write(
        &uploads.join("alice/sales 2024.csv"),
        &noise.fill((total / 10) as usize),
    )?;
    write(&uploads.join("alice/données été.csv"), &noise.fill(5_000))?;
    write(&uploads.join("bob/日本語.json"), &noise.fill(3_000))?;
    write(&uploads.join("bob/empty.txt"), b"")?;
    fs::create_dir_all(uploads.join("carol/empty folder"))?;
    let security = data.join("security");
    write(&security.join("keystore.jks"), &noise.fill(2_048))?;
    write(&security.join("secret.key"), &noise.fill(32))?;
    fs::set_permissions(&security, fs::Permissions::from_mode(0o700))?;
    for f in ["keystore.jks", "secret.key"] {
        fs::set_permissions(security.join(f), fs::Permissions::from_mode(0o600))?;
    }
    write(&data.join("pdfs/results/job-1.arrow"), &noise.fill(1_000))?;
    Ok(home)
}

/// Compares two trees: same names, kinds, bytes, and permission bits. Returns how many entries matched.
pub fn compare_trees(a: &Path, b: &Path) -> anyhow::Result<u64> {
    let mut left = walkdir::WalkDir::new(a).sort_by_file_name().into_iter();
    let mut right = walkdir::WalkDir::new(b).sort_by_file_name().into_iter();
    let mut n = 0u64;
    loop {
        let (x, y) = match (left.next(), right.next()) {
            (None, None) => return Ok(n),
            (Some(x), Some(y)) => (x?, y?),
            (x, y) => {
                let name = |e: Option<walkdir::Result<walkdir::DirEntry>>| {
                    e.and_then(|e| e.ok())
                        .map(|e| e.path().display().to_string())
                        .unwrap_or_else(|| "(nothing)".into())
                };
                return Err(CommandError::Integrity(format!(
                    "trees differ: {} vs {}",
                    name(x),
                    name(y)
                ))
                .into());
            }
        };
        let (rx, ry) = (x.path().strip_prefix(a)?, y.path().strip_prefix(b)?);
        if rx != ry {
            return Err(CommandError::Integrity(format!(
                "trees differ: {} vs {}",
                rx.display(),
                ry.display()
            ))
            .into());
        }
        let (mx, my) = (x.path().symlink_metadata()?, y.path().symlink_metadata()?);
        if mx.file_type() != my.file_type()
            || mx.mode() & 0o777 != my.mode() & 0o777
            || (!mx.is_symlink() && mx.mtime() != my.mtime())
        {
            return Err(CommandError::Integrity(format!(
                "{}: kind, mode or mtime differs",
                rx.display()
            ))
            .into());
        }
        if mx.is_file() && (mx.len() != my.len() || fs::read(x.path())? != fs::read(y.path())?) {
            return Err(
                CommandError::Integrity(format!("{}: contents differ", rx.display())).into(),
            );
        }
        n += 1;
    }
}
