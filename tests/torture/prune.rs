//! `lifeboat prune` under torture: a location with sixteen committed backups a day apart and the
//! leftovers of two failed runs; the policy keeps the newest three. Alternately on SeaweedFS and
//! on a local folder (with a killed upload's multipart staging file on disk).
//!
//! prune-f2: the same with format-2 backups, each planted under object names of its own, plus the
//! objects of a backup that never committed: the kill lands in the deletes or in the sweep of
//! `objects/`, and whatever the moment, the kept backups verify with every object they
//! reference; after the rerun nothing unreferenced is left.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, ensure};
use chrono::{DateTime, Duration, Utc};

use crate::Scenario;
use crate::backup::Shared;
use crate::kill::{Invocation, Ran};
use crate::place::{Place, alternating, alternating_variant};
use crate::support::StoreKind;

const PLANTED: usize = 16;
const KEEP: usize = 3;

pub struct Prune {
    archive: Vec<u8>,
    manifest: serde_json::Value,
}

/// A prune run's location and what was planted in it.
pub struct PruneRun {
    place: Place,
    /// Newest first.
    planted: Vec<String>,
}

impl Prune {
    pub fn new(shared: &Shared) -> anyhow::Result<Prune> {
        let source = shared.small_source();
        let id = &source.ids[0];
        let read = |o: &str| source.place.loc.read(&format!("dremio/{id}/{o}"));
        Ok(Prune {
            archive: read("data.tar.zst"),
            manifest: serde_json::from_slice(&read("manifest.json"))?,
        })
    }

    /// A committed backup that looks as if taken at `when`: the real archive, a manifest naming it.
    fn plant(&self, place: &Place, when: DateTime<Utc>) -> String {
        let id = format!("{}-{:04x}", when.format("%Y%m%dT%H%M%SZ"), random_u16());
        let mut manifest = self.manifest.clone();
        manifest["id"] = id.clone().into();
        manifest["created_at"] = when.to_rfc3339().into();
        manifest["finished_at"] = when.to_rfc3339().into();
        place
            .loc
            .write(&format!("dremio/{id}/data.tar.zst"), self.archive.clone());
        place.loc.write(
            &format!("dremio/{id}/manifest.json"),
            serde_json::to_vec(&manifest).expect("a manifest serialises"),
        );
        id
    }
}

/// A format-2 backup to plant copies of: its manifest, its objects' bytes, its index (plain).
pub struct PruneF2 {
    manifest: serde_json::Value,
    /// (name, stored bytes) in archive order.
    objects: Vec<(String, Vec<u8>)>,
    /// The decompressed index (it names the objects that hold shared files).
    index: String,
}

impl PruneF2 {
    pub fn new(shared: &Shared) -> anyhow::Result<PruneF2> {
        let source = shared.f2_small_source();
        let id = &source.ids[0];
        let read = |o: &str| source.place.loc.read(&format!("dremio/{o}"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&read(&format!("{id}/manifest.json")))?;
        ensure!(
            manifest["format"] == "lifeboat-backup/2",
            "the backup to plant is {}, not format 2",
            manifest["format"]
        );
        let location = manifest["index"]["location"]
            .as_str()
            .context("an index location")?;
        let index = String::from_utf8(zstd::decode_all(&read(&format!("{id}/{location}"))[..])?)?;
        let objects = manifest["objects"]
            .as_array()
            .context("a format-2 manifest lists objects")?
            .iter()
            .map(|o| {
                let name = o["name"].as_str().context("an object name")?.to_string();
                let bytes = read(&crate::place::object_path(&name));
                Ok((name, bytes))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(PruneF2 {
            manifest,
            objects,
            index,
        })
    }

    /// The backup's objects under new names, its index and SHA256SUMS naming them; committed
    /// (manifest written last) unless `commit` is false (a backup that died before its commit).
    fn plant(&self, place: &Place, when: DateTime<Utc>, commit: bool) -> String {
        let id = format!("{}-{:04x}", when.format("%Y%m%dT%H%M%SZ"), random_u16());
        let mut manifest = self.manifest.clone();
        let mut index = self.index.clone();
        let mut sums = String::new();
        for (n, (old, bytes)) in self.objects.iter().enumerate() {
            let mut raw = [0u8; 16];
            getrandom::fill(&mut raw).expect("the OS has a random source");
            let name = hex::encode(raw);
            index = index.replace(old.as_str(), &name);
            let rel = crate::place::object_path(&name);
            place.loc.write(&format!("dremio/{rel}"), bytes.clone());
            sums.push_str(&format!("{}  {rel}\n", sha256_hex(bytes)));
            manifest["objects"][n]["name"] = name.into();
        }
        let index = zstd::encode_all(index.as_bytes(), 3).expect("zstd compresses");
        manifest["index"]["bytes"] = index.len().into();
        manifest["index"]["sha256"] = sha256_hex(&index).into();
        manifest["archive"]["bytes"] = sums.len().into();
        manifest["archive"]["sha256"] = sha256_hex(sums.as_bytes()).into();
        manifest["id"] = id.clone().into();
        manifest["created_at"] = when.to_rfc3339().into();
        manifest["finished_at"] = when.to_rfc3339().into();
        if let Some(m) = manifest.as_object_mut() {
            m.remove("base");
        }
        let location = self.manifest["index"]["location"]
            .as_str()
            .unwrap_or("index.jsonl.zst");
        place.loc.write(&format!("dremio/{id}/{location}"), index);
        place
            .loc
            .write(&format!("dremio/{id}/SHA256SUMS"), sums.into_bytes());
        if commit {
            place.loc.write(
                &format!("dremio/{id}/manifest.json"),
                serde_json::to_vec(&manifest).expect("a manifest serialises"),
            );
        }
        id
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Scenario for PruneF2 {
    type World = PruneRun;

    fn world(&self, run: usize, _scratch: &Path) -> anyhow::Result<(PruneRun, Invocation)> {
        let kind = alternating(run);
        let place = Place::new(kind, "torture-prune-f2");
        let now = Utc::now();
        let planted: Vec<String> = (1..=PLANTED as i64)
            .map(|days| self.plant(&place, now - Duration::days(days), true))
            .collect();
        // A backup that died before its commit: its folder is an orphan, its objects unreferenced.
        self.plant(&place, now - Duration::days(20), false);
        let keep = KEEP.to_string();
        let args = [
            "prune",
            "--from",
            &place.name,
            "--keep-last",
            &keep,
            "--grace",
            "0s",
        ];
        let inv = Invocation::new(&args, &[]);
        Ok((PruneRun { place, planted }, inv))
    }

    fn after_kill(&self, run: &PruneRun, ran: &Ran) -> anyhow::Result<String> {
        // complete_backups checks that every listed backup's objects are there and verify passes.
        let found = Prune::after_kill_of(run, ran)?;
        let objects = run
            .place
            .loc
            .keys()
            .iter()
            .filter(|k| k.starts_with("dremio/objects/"))
            .count();
        Ok(format!("{found}, {objects} objects"))
    }

    fn after_rerun(&self, run: &PruneRun) -> anyhow::Result<()> {
        Prune::after_rerun_of(run)
    }

    fn variant(&self, run: usize) -> &'static str {
        alternating_variant(run)
    }
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("the OS has a random source");
    u16::from_le_bytes(b)
}

impl Scenario for Prune {
    type World = PruneRun;

    fn world(&self, run: usize, _scratch: &Path) -> anyhow::Result<(PruneRun, Invocation)> {
        let kind = alternating(run);
        let place = Place::new(kind, "torture-prune");
        let now = Utc::now();
        let planted: Vec<String> = (1..=PLANTED as i64)
            .map(|days| self.plant(&place, now - Duration::days(days)))
            .collect();
        // What failed runs leave: an archive without a manifest; on a local folder, also the
        // staging file of a multipart upload that never completed.
        let orphan = format!(
            "{}-dead",
            (now - Duration::days(20)).format("%Y%m%dT%H%M%SZ")
        );
        place.loc.write(
            &format!("dremio/{orphan}/data.tar.zst"),
            b"partial".to_vec(),
        );
        if kind == StoreKind::Local {
            let killed = (now - Duration::days(21)).format("%Y%m%dT%H%M%SZ");
            let dir = Path::new(&place.loc.url).join(format!("dremio/{killed}-kill"));
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("data.tar.zst#3"), b"half a part")?;
        }
        let keep = KEEP.to_string();
        let args = [
            "prune",
            "--from",
            &place.name,
            "--keep-last",
            &keep,
            "--grace",
            "0s",
        ];
        let inv = Invocation::new(&args, &[]);
        Ok((PruneRun { place, planted }, inv))
    }

    fn after_kill(&self, run: &PruneRun, ran: &Ran) -> anyhow::Result<String> {
        Prune::after_kill_of(run, ran)
    }

    fn after_rerun(&self, run: &PruneRun) -> anyhow::Result<()> {
        Prune::after_rerun_of(run)
    }

    fn variant(&self, run: usize) -> &'static str {
        alternating_variant(run)
    }
}

impl Prune {
    /// What must hold after a prune run of either format, killed or not.
    fn after_kill_of(run: &PruneRun, ran: &Ran) -> anyhow::Result<String> {
        let ids: BTreeSet<String> = run.place.complete_backups()?.into_iter().collect();
        let planted: BTreeSet<String> = run.planted.iter().cloned().collect();
        let kept: BTreeSet<String> = run.planted[..KEEP].iter().cloned().collect();
        ensure!(
            ids.is_subset(&planted),
            "the location lists {ids:?}, beyond what was planted"
        );
        ensure!(
            kept.is_subset(&ids),
            "prune removed a backup its policy keeps: {:?} are gone",
            kept.difference(&ids).collect::<Vec<_>>()
        );
        if !ran.killed() {
            ensure!(ids == kept, "a finished prune left {ids:?}");
        }
        Ok(format!("{} of {PLANTED} backups left", ids.len()))
    }

    /// What must hold once the rerun completed: the policy's backups, nothing else.
    fn after_rerun_of(run: &PruneRun) -> anyhow::Result<()> {
        let ids = run.place.complete_backups()?;
        let kept = &run.planted[..KEEP];
        ensure!(
            ids == kept,
            "after the rerun the location lists {ids:?}, not the newest {KEEP} {kept:?}"
        );
        run.place.prune_leftovers(&ids).context("the final prune")
    }
}
