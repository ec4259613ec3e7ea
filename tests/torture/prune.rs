//! `lifeboat prune` under torture: a location with sixteen committed backups a day apart and the
//! leftovers of two failed runs; the policy keeps the newest three. Alternately on SeaweedFS and
//! on a local folder (with a killed upload's multipart staging file on disk).

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

    fn after_rerun(&self, run: &PruneRun) -> anyhow::Result<()> {
        let ids = run.place.complete_backups()?;
        let kept = &run.planted[..KEEP];
        ensure!(
            ids == kept,
            "after the rerun the location lists {ids:?}, not the newest {KEEP} {kept:?}"
        );
        run.place.prune_leftovers(&ids).context("the final prune")
    }

    fn variant(&self, run: usize) -> &'static str {
        alternating_variant(run)
    }
}
