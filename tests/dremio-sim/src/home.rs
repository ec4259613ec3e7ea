//! Lays out a test `DREMIO_HOME`: `conf/dremio.conf`, `jars/dremio-dac-backend-<version>-<build>.jar`
//! and `bin/dremio-admin` (a shell script running the simulator's `dremio-admin`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Creates the home. Paths are made absolute.
pub fn make_home(
    home: &Path,
    paths_local: &Path,
    version: &str,
    build: &str,
    admin_bin: &Path,
    port: u16,
) -> Result<()> {
    let abs = |p: &Path| -> Result<std::path::PathBuf> {
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        })
    };
    let (home, paths_local, admin_bin) = (abs(home)?, abs(paths_local)?, abs(admin_bin)?);
    for p in [&paths_local, &admin_bin] {
        if p.to_string_lossy()
            .contains(['"', '\'', '\n', '\\', '$', '`'])
        {
            bail!("unsupported character in path {}", p.display());
        }
    }
    for d in ["conf", "jars", "bin"] {
        fs::create_dir_all(home.join(d))?;
    }
    fs::create_dir_all(&paths_local)?;
    let conf = format!(
        "# written by dremio-sim make-home\npaths: {{\n  local: \"{}\"\n}}\n\nservices: {{\n  coordinator.enabled: true,\n  coordinator.master.enabled: true,\n  coordinator.web.port: {port},\n  executor.enabled: true\n}}\n",
        paths_local.display()
    );
    fs::write(home.join("conf/dremio.conf"), conf)?;
    fs::write(
        home.join(format!("jars/dremio-dac-backend-{version}-{build}.jar")),
        b"",
    )?;
    let script = format!(
        r#"#!/bin/sh
# dremio-admin of a simulated Dremio (written by dremio-sim make-home)
home=$(cd "$(dirname "$0")/.." && pwd)
# As Dremio's own scripts do, DREMIO_CONF_DIR overrides $DREMIO_HOME/conf.
conf="${{DREMIO_CONF_DIR:-$home/conf}}/dremio.conf"
# HOCON: the last definition of paths.local wins (written `local:` inside `paths {{}}`, or dotted).
local=$(sed -n 's/^[[:space:]]*\(paths\.\)\{{0,1\}}local:[[:space:]]*"\(.*\)".*/\2/p' "$conf" | tail -n 1)
port=$(sed -n 's/^[[:space:]]*coordinator\.web\.port:[[:space:]]*\([0-9]*\).*/\1/p' "$conf" | head -n 1)
if [ -z "$local" ]; then echo "dremio-admin: no paths.local in $conf" >&2; exit 1; fi
exec '{}' --paths-local "$local" --url "http://127.0.0.1:${{port:-9047}}" "$@"
"#,
        admin_bin.display()
    );
    let bin = home.join("bin/dremio-admin");
    fs::write(&bin, script).with_context(|| format!("writing {}", bin.display()))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
    Ok(())
}
