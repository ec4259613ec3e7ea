//! `lifeboat copy` between two SeaweedFS servers (two "regions", each with its own endpoint and
//! credentials, as tests/it/replication.rs sets them up) under torture: of format-1 backups, and
//! (copy-f2) of format-2 ones, whose shared objects are copied only when missing; after any kill
//! every backup the destination lists verifies with every object it references there.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::ensure;

use crate::Scenario;
use crate::backup::{Shared, Source};
use crate::kill::{Invocation, Ran};
use crate::place::Place;
use crate::support::{StoreKind, TestLocation, eu_env};

pub struct Copy<'a> {
    source: &'a Source,
    source_keys: Vec<String>,
}

impl<'a> Copy<'a> {
    pub fn new(shared: &'a Shared) -> anyhow::Result<Copy<'a>> {
        Self::of(shared.sources())
    }

    /// Copies of format-2 backups (the second incremental on the first).
    pub fn format_2(shared: &'a Shared) -> anyhow::Result<Copy<'a>> {
        Self::of(shared.f2_sources())
    }

    fn of(source: &'a Source) -> anyhow::Result<Copy<'a>> {
        Ok(Copy {
            source,
            source_keys: source.place.loc.keys(),
        })
    }

    fn source_untouched(&self) -> anyhow::Result<()> {
        ensure!(
            self.source.place.loc.keys() == self.source_keys,
            "the source location {} changed (a copy only reads it)",
            self.source.place.loc.url
        );
        Ok(())
    }

    fn wanted(&self) -> BTreeSet<String> {
        self.source.ids.iter().cloned().collect()
    }
}

impl Scenario for Copy<'_> {
    type World = Place;

    fn world(&self, _run: usize, scratch: &Path) -> anyhow::Result<(Place, Invocation)> {
        let eu = TestLocation::new(StoreKind::S3Eu, "torture-copy");
        let cfg = scratch.join("lifeboat.toml");
        std::fs::write(
            &cfg,
            format!(
                "[locations.us]\nurl = \"{}\"\n\n[locations.eu]\n{}",
                self.source.place.loc.url,
                eu.toml()
            ),
        )?;
        let place = Place {
            loc: eu,
            name: "eu".into(),
            config: Some(cfg),
            env: eu_env(),
            cluster: "dremio".into(),
        };
        let args = place.args(&["copy", "--from", "us", "--to", "eu"]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let inv = Invocation::new(&refs, &place.env);
        Ok((place, inv))
    }

    fn after_kill(&self, eu: &Place, ran: &Ran) -> anyhow::Result<String> {
        self.source_untouched()?;
        let ids: BTreeSet<String> = eu.complete_backups()?.into_iter().collect();
        let wanted = self.wanted();
        ensure!(
            ids.is_subset(&wanted),
            "the destination lists {ids:?}, which the source ({wanted:?}) does not all hold"
        );
        if !ran.killed() {
            ensure!(
                ids == wanted,
                "a finished copy left the destination with {ids:?}"
            );
        }
        Ok(format!("{} of {} backups copied", ids.len(), wanted.len()))
    }

    fn after_rerun(&self, eu: &Place) -> anyhow::Result<()> {
        self.source_untouched()?;
        let ids = eu.complete_backups()?;
        let got: BTreeSet<String> = ids.iter().cloned().collect();
        ensure!(
            got == self.wanted(),
            "after the rerun the destination holds {got:?}, not every backup of the source {:?}",
            self.wanted()
        );
        eu.prune_leftovers(&ids)
    }
}
