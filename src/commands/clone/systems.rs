//! The systems a clone runs against, and what each needs that the shared code does not know:
//! connecting, its mapping, its schema, its own file formats.

use std::path::Path;
use std::sync::Arc;

use crate::clone::cluster::{Cluster, Schema};
use crate::clone::filter::Filter;
use crate::clone::tree::Tree;
use crate::commands::{CommandError, Ctx};
use crate::dremio::clone::export::Remote;
use crate::dremio::clone::{Dremio, DremioCluster, cloner};
use crate::dremio::rest::{self, Coordinator, Credentials, Tls};
use crate::druid::clone::{DruidCluster, DruidSchema};
use crate::druid::rest::Druid as DruidRest;

/// A cluster to talk to, and which environment variables hold its credentials.
#[derive(Debug, Clone)]
pub struct Conn {
    pub urls: Vec<String>,
    pub tls: Tls,
    /// `LIFEBOAT_DREMIO_` (target, export) or `LIFEBOAT_SOURCE_DREMIO_` (a live source);
    /// `LIFEBOAT_DRUID_` or `LIFEBOAT_SOURCE_DRUID_` for Druid.
    pub env_prefix: &'static str,
}

/// The kind of cluster a run clones, with its own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dremio,
    /// `resume_supervisors`: supervisors run as on the source (a failover), instead of all
    /// being written suspended.
    Druid {
        resume_supervisors: bool,
    },
}

pub(super) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A connected cluster: the cluster itself and how reports name it.
pub(super) struct Opened<C> {
    pub cluster: Arc<C>,
    pub url: String,
    pub version: String,
}

/// What a clone run needs of a system: connecting, its mapping and its schema. Everything else
/// (trees, plans, reports) is the same code for every system.
#[async_trait::async_trait]
pub(super) trait System: Send + Sync + 'static {
    type S: Schema + Clone;
    type C: Cluster<Self::S> + 'static;
    type Mapping: Clone + Default + Send + Sync;
    /// How reports name the system.
    const NAME: &'static str;

    fn load_mapping(path: &Path) -> anyhow::Result<Self::Mapping>;
    /// Connects; the mapping applies to a target (a source is read with the default).
    async fn open(
        ctx: &Ctx,
        conn: &Conn,
        mapping: &Self::Mapping,
    ) -> anyhow::Result<Opened<Self::C>>;
    fn schema(mapping: Self::Mapping, kind: Kind) -> Self::S;
    /// The filter over the target's paths (renamed by the mapping).
    fn target_filter(filter: &Filter, _mapping: &Self::Mapping) -> Filter {
        filter.clone()
    }
    /// Tells the target which source its writes come from (a system may record it).
    fn writes_from(_target: &Self::C, _source: &str) {}
    /// Imports a source file (a tree is a folder): dremio-cloner's for Dremio.
    fn import(
        file: &Path,
        _tree: &Tree<<Self::S as Schema>::Kind>,
        _filter: &Filter,
    ) -> anyhow::Result<Vec<String>> {
        Err(CommandError::Usage(format!(
            "--source {}: a {} source is an export tree (a folder)",
            file.display(),
            Self::NAME
        ))
        .into())
    }
    /// Writes an export in the system's own file format (`--format cloner`).
    fn write_file(
        _tree: &Tree<<Self::S as Schema>::Kind>,
        _out: &Path,
        _filter: &Filter,
        _url: &str,
    ) -> anyhow::Result<()> {
        Err(
            CommandError::Usage(format!("--format cloner is Dremio's, not {}'s", Self::NAME))
                .into(),
        )
    }
}

/// Finds the active coordinator, logs in and reads the version.
async fn connect(ctx: &Ctx, conn: &Conn) -> anyhow::Result<Arc<Remote>> {
    let client = rest::client(&conn.tls)?;
    let active = rest::find_active(&client, &conn.urls).await?;
    let prefix = conn.env_prefix;
    let creds = Credentials::from_env(&|name: &str| {
        env_var(&name.replacen("LIFEBOAT_DREMIO_", prefix, 1))
    })
    .map_err(|e| {
        if prefix == "LIFEBOAT_DREMIO_" {
            anyhow::Error::from(e)
        } else {
            anyhow::anyhow!(
                "no credentials for the source cluster: set {prefix}USER and {prefix}PASSWORD (or _PASSWORD_FILE), or {prefix}TOKEN (or _TOKEN_FILE)"
            )
        }
    })?;
    let progress = ctx.progress.clone();
    let notify: rest::Notify = Arc::new(move |line: &str| progress.note(line));
    let coord = Coordinator::login(client, &active, &creds, notify).await?;
    let (version, info) = coord.version().await?;
    Ok(Arc::new(Remote {
        coord,
        version: version.to_string(),
        cluster_type: info.cluster_type,
    }))
}

pub(super) struct DremioSystem;

#[async_trait::async_trait]
impl System for DremioSystem {
    type S = Dremio;
    type C = DremioCluster;
    type Mapping = crate::dremio::clone::mapping::Mapping;
    const NAME: &'static str = "Dremio";

    fn load_mapping(path: &Path) -> anyhow::Result<Self::Mapping> {
        Ok(Self::Mapping::load(path)?)
    }

    async fn open(
        ctx: &Ctx,
        conn: &Conn,
        mapping: &Self::Mapping,
    ) -> anyhow::Result<Opened<DremioCluster>> {
        let remote = connect(ctx, conn).await?;
        Ok(Opened {
            url: remote.coord.base.clone(),
            version: remote.version.clone(),
            cluster: Arc::new(DremioCluster::new(
                remote,
                mapping.clone(),
                Arc::new(env_var),
            )),
        })
    }

    fn schema(mapping: Self::Mapping, _kind: Kind) -> Dremio {
        Dremio { mapping }
    }

    fn target_filter(filter: &Filter, mapping: &Self::Mapping) -> Filter {
        filter.renamed(&|first| mapping.root(first).map(str::to_string))
    }

    fn import(
        file: &Path,
        tree: &Tree<<Dremio as Schema>::Kind>,
        filter: &Filter,
    ) -> anyhow::Result<Vec<String>> {
        Ok(cloner::import(file, tree, filter)?.warnings)
    }

    fn write_file(
        tree: &Tree<<Dremio as Schema>::Kind>,
        out: &Path,
        filter: &Filter,
        url: &str,
    ) -> anyhow::Result<()> {
        cloner::export(tree, out, filter, url)?;
        Ok(())
    }
}

pub(super) struct DruidSystem;

#[async_trait::async_trait]
impl System for DruidSystem {
    type S = DruidSchema;
    type C = DruidCluster;
    type Mapping = crate::druid::clone::mapping::Mapping;
    const NAME: &'static str = "Druid";

    fn load_mapping(path: &Path) -> anyhow::Result<Self::Mapping> {
        Ok(Self::Mapping::load(path)?)
    }

    async fn open(
        ctx: &Ctx,
        conn: &Conn,
        mapping: &Self::Mapping,
    ) -> anyhow::Result<Opened<DruidCluster>> {
        let creds = crate::druid::rest::Credentials::from_env(&env_var, conn.env_prefix)?;
        let progress = ctx.progress.clone();
        let notify: rest::Notify = Arc::new(move |line: &str| progress.note(line));
        let d = DruidRest::connect(&conn.urls, &conn.tls, creds, conn.env_prefix, notify).await?;
        let version = d.version().await?;
        Ok(Opened {
            url: d.label().to_string(),
            version,
            cluster: Arc::new(DruidCluster::new(
                Arc::new(d),
                mapping.clone(),
                Arc::new(env_var),
            )),
        })
    }

    fn schema(mapping: Self::Mapping, kind: Kind) -> DruidSchema {
        DruidSchema {
            mapping,
            resume_supervisors: matches!(
                kind,
                Kind::Druid {
                    resume_supervisors: true
                }
            ),
        }
    }

    fn writes_from(target: &DruidCluster, source: &str) {
        target
            .rest
            .set_comment(&format!("lifeboat clone from {source}"));
    }
}
