//! The shared volume under `paths.local`, judged from its mount: NFS, and mounted the way Dremio's
//! HA guide asks (`rw,hard,sync,nointr,vers=3|4,proto=tcp`, locks served by the NFS server).

use super::check::{Area, Check};
use super::mountinfo::Mount;

const A: Area = Area::Volume;

/// The checks of the mount holding `paths_local` (`None`: no mount holds it, which only a
/// truncated copy of mountinfo can give).
pub fn volume(paths_local: &str, mount: Option<&Mount>) -> Vec<Check> {
    let Some(m) = mount else {
        return vec![
            Check::fail(
                "volume.nfs",
                A,
                format!("no mount in mountinfo holds {paths_local}"),
            )
            .remedy("give the whole /proc/self/mountinfo of the coordinator"),
        ];
    };
    let nfs = nfs(paths_local, m);
    if nfs.status != super::Status::Pass {
        return vec![nfs];
    }
    vec![
        nfs,
        version(m),
        hard(m),
        sync(m),
        proto(m),
        locks(m),
        Check::new(
            "volume.nointr",
            A,
            super::Status::Skip,
            "nointr: not applicable (kernels ignore intr/nointr since 2.6.25)",
        ),
    ]
}

fn with_mount(c: Check, m: &Mount) -> Check {
    c.evidence("mount_point", m.mount_point.as_str())
        .evidence("fstype", m.fstype.as_str())
        .evidence("source", m.source.as_str())
        .evidence("options", m.all_options())
}

fn nfs(paths_local: &str, m: &Mount) -> Check {
    let c = if matches!(m.fstype.as_str(), "nfs" | "nfs4") {
        Check::pass(
            "volume.nfs",
            A,
            format!(
                "{paths_local} is on {} {} at {}",
                m.fstype, m.source, m.mount_point
            ),
        )
    } else {
        Check::fail(
            "volume.nfs",
            A,
            format!(
                "{paths_local} is on {} ({} at {}), not NFS: master candidates cannot share it",
                m.fstype, m.source, m.mount_point
            ),
        )
        .remedy("put paths.local on an NFS volume that every master candidate mounts")
    };
    with_mount(c, m)
}

fn version(m: &Mount) -> Check {
    let vers = m
        .value("vers")
        .or(m.value("nfsvers"))
        .or((m.fstype == "nfs4").then_some("4"));
    let major = vers.and_then(|v| v.split('.').next()).unwrap_or("");
    let c = match (vers, major) {
        (Some(v), "3" | "4") => Check::pass("volume.vers", A, format!("NFS version {v}")),
        (Some(v), _) => Check::fail("volume.vers", A, format!("NFS version {v}"))
            .remedy("mount with vers=3 or vers=4 (NFSv2 is not supported)"),
        (None, _) => Check::warn("volume.vers", A, "the mount does not say its NFS version")
            .remedy("mount with vers=3 or vers=4 explicitly"),
    };
    c.evidence("vers", vers)
}

fn hard(m: &Mount) -> Check {
    if m.has("soft") {
        Check::fail(
            "volume.hard",
            A,
            "mounted soft: a slow server turns into I/O errors and a corrupt KV store",
        )
        .remedy("mount with hard")
    } else {
        Check::pass("volume.hard", A, "mounted hard")
    }
}

fn sync(m: &Mount) -> Check {
    if m.has("sync") {
        Check::pass("volume.sync", A, "mounted sync")
    } else {
        Check::warn(
            "volume.sync",
            A,
            "not mounted sync: writes acknowledged to Dremio can be lost with the client",
        )
        .remedy("mount with sync, as Dremio's HA guide asks")
    }
}

fn proto(m: &Mount) -> Check {
    let c = match m.value("proto") {
        Some("tcp" | "tcp6") => Check::pass("volume.proto", A, "proto=tcp"),
        Some(p) => {
            Check::fail("volume.proto", A, format!("proto={p}")).remedy("mount with proto=tcp")
        }
        None => Check::warn("volume.proto", A, "the mount does not say its transport")
            .remedy("mount with proto=tcp explicitly"),
    };
    c.evidence("proto", m.value("proto"))
}

fn locks(m: &Mount) -> Check {
    let local = m.value("local_lock");
    let c = if m.has("nolock") {
        Check::fail(
            "volume.locks",
            A,
            "mounted nolock: locks exclude only processes on the same host",
        )
    } else if matches!(local, Some("all" | "posix")) {
        Check::fail(
            "volume.locks",
            A,
            format!(
                "local_lock={}: POSIX locks exclude only processes on the same host",
                local.unwrap_or_default()
            ),
        )
    } else {
        return Check::pass("volume.locks", A, "locks are served by the NFS server")
            .evidence("local_lock", local);
    };
    c.remedy("mount without nolock and with local_lock=none, so two masters cannot both open the KV store")
        .evidence("local_lock", local)
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::super::mountinfo::parse;
    use super::*;

    fn statuses(line: &str) -> Vec<(String, Status)> {
        let mounts = parse(line);
        volume("/mnt/d/local", mounts.first())
            .into_iter()
            .map(|c| (c.id, c.status))
            .collect()
    }

    fn status_of(line: &str, id: &str) -> Status {
        statuses(line)
            .into_iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no {id}"))
    }

    const GOOD: &str = "40 22 0:45 / /mnt/d rw,sync,relatime - nfs4 nas:/d rw,vers=4.1,hard,proto=tcp,timeo=600,local_lock=none";

    #[test]
    fn a_healthy_nfs4_mount_passes_and_nointr_is_not_applicable() {
        let all = statuses(GOOD);
        assert_eq!(all.len(), 7);
        for (id, s) in &all {
            let want = if id == "volume.nointr" {
                Status::Skip
            } else {
                Status::Pass
            };
            assert_eq!(*s, want, "{id}");
        }
    }

    #[test]
    fn each_bad_option_fails_or_warns() {
        let cases = [
            ("hard", "soft", "volume.hard", Status::Fail),
            ("vers=4.1", "vers=2", "volume.vers", Status::Fail),
            ("proto=tcp", "proto=udp", "volume.proto", Status::Fail),
            (
                "local_lock=none",
                "local_lock=all",
                "volume.locks",
                Status::Fail,
            ),
            (
                "local_lock=none",
                "local_lock=posix",
                "volume.locks",
                Status::Fail,
            ),
            ("local_lock=none", "nolock", "volume.locks", Status::Fail),
            (
                "rw,sync,relatime",
                "rw,relatime",
                "volume.sync",
                Status::Warn,
            ),
        ];
        for (from, to, id, want) in cases {
            let line = GOOD.replace(from, to);
            assert_eq!(status_of(&line, id), want, "{to}");
        }
    }

    #[test]
    fn a_local_disk_fails_alone() {
        let all = statuses("22 1 252:0 / / rw,relatime - ext4 /dev/vda rw");
        assert_eq!(all, [("volume.nfs".to_string(), Status::Fail)]);
        let none = volume("/x", None);
        assert_eq!(none[0].status, Status::Fail);
    }
}
