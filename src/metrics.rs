//! Prometheus text-format metrics for node_exporter's textfile collector, written atomically.
//! A run replaces only its own samples: the previous `last_success` survives a failed run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One sample: a metric name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn new(name: &'static str, labels: &[(&'static str, &str)], value: f64) -> Sample {
        Sample {
            name,
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        }
    }

    fn series(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// Every metric lifeboat writes, with its help text (also documented in the README).
pub const METRICS: [(&str, &str); 19] = [
    (
        "lifeboat_last_success_timestamp_seconds",
        "Unix time of the last successful run of this command for this cluster and location.",
    ),
    (
        "lifeboat_last_run_success",
        "1 if the last run of this command succeeded, 0 if it failed.",
    ),
    (
        "lifeboat_last_run_duration_seconds",
        "Duration of the last run of this command.",
    ),
    (
        "lifeboat_backup_raw_bytes",
        "Bytes of file content in the last backup (before compression).",
    ),
    (
        "lifeboat_backup_stored_bytes",
        "Bytes stored for the last backup.",
    ),
    ("lifeboat_backup_files", "Files in the last backup."),
    (
        "lifeboat_newest_backup_age_seconds",
        "Age of the newest committed backup in this location.",
    ),
    (
        "lifeboat_rpo_ok",
        "1 if the newest backup in this location is younger than the RPO (and copies hold it), else 0.",
    ),
    (
        "lifeboat_copy_ok",
        "1 if this copy location holds the primary's newest backup, else 0.",
    ),
    (
        "lifeboat_clone_objects",
        "Objects of the last clone apply to this target, by outcome.",
    ),
    (
        "lifeboat_doctor_check",
        "The last doctor run's verdict per check: 0 pass, 1 warn, 2 fail, -1 skip.",
    ),
    (
        "lifeboat_drill_last_success_timestamp_seconds",
        "Unix time of the last successful restore drill of this cluster's backups.",
    ),
    (
        "lifeboat_drill_success",
        "1 if the last drill restored, served and matched the backup's catalog, else 0.",
    ),
    (
        "lifeboat_drill_rto_seconds",
        "The last successful drill's time from its start to a serving coordinator.",
    ),
    (
        "lifeboat_drill_rpo_seconds",
        "Age of the backup the last drill restored, when it ran.",
    ),
    (
        "lifeboat_standby_refresh_last_success_timestamp_seconds",
        "Unix time of the last successful standby refresh.",
    ),
    (
        "lifeboat_standby_refresh_success",
        "1 if the last standby refresh succeeded (or had nothing to do), else 0.",
    ),
    (
        "lifeboat_standby_refresh_seconds",
        "Duration of the last standby refresh.",
    ),
    (
        "lifeboat_standby_rpo_seconds",
        "Age of the backup the standby holds, when the last refresh ran.",
    ),
];

/// What every run of a command reports: whether it succeeded, how long it took, and, when it
/// succeeded, when (so that an alert on its age catches a job that stopped running).
pub fn run_samples(labels: &[(&'static str, &str)], ok: bool, seconds: f64) -> Vec<Sample> {
    let mut v = vec![
        Sample::new(
            "lifeboat_last_run_success",
            labels,
            if ok { 1.0 } else { 0.0 },
        ),
        Sample::new("lifeboat_last_run_duration_seconds", labels, seconds),
    ];
    if ok {
        v.push(Sample::new(
            "lifeboat_last_success_timestamp_seconds",
            labels,
            chrono::Utc::now().timestamp() as f64,
        ));
    }
    v
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `samples` into `path`, keeping the other series already there; atomic (temp file + rename).
pub fn write(path: &Path, samples: &[Sample]) -> std::io::Result<()> {
    let mut series: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(old) = std::fs::read_to_string(path) {
        for line in old
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if let Some((name, value)) = line.rsplit_once(' ') {
                series.insert(name.to_string(), value.to_string());
            }
        }
    }
    for s in samples {
        series.insert(s.series(), format_value(s.value));
    }
    let mut text = String::new();
    for (metric, help) in METRICS {
        let lines: Vec<(&String, &String)> = series
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(metric))
            .collect();
        if lines.is_empty() {
            continue;
        }
        text.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for (k, v) in lines {
            text.push_str(&format!("{k} {v}\n"));
        }
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    // The collector must never read a half-written file.
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    Ok(())
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_text_format_and_keeps_other_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lifeboat.prom");
        let labels = [
            ("cluster", "dremio"),
            ("location", "us"),
            ("command", "backup"),
        ];
        write(
            &path,
            &[
                Sample::new(
                    "lifeboat_last_success_timestamp_seconds",
                    &labels,
                    1700000000.0,
                ),
                Sample::new("lifeboat_last_run_success", &labels, 1.0),
            ],
        )
        .unwrap();
        // A failed run replaces its success flag but not the last success time.
        write(
            &path,
            &[
                Sample::new("lifeboat_last_run_success", &labels, 0.0),
                Sample::new("lifeboat_last_run_duration_seconds", &labels, 1.5),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("lifeboat_last_success_timestamp_seconds{cluster=\"dremio\",location=\"us\",command=\"backup\"} 1700000000\n"), "{text}");
        assert!(text.contains("lifeboat_last_run_success{cluster=\"dremio\",location=\"us\",command=\"backup\"} 0\n"), "{text}");
        assert!(text.contains("lifeboat_last_run_duration_seconds{cluster=\"dremio\",location=\"us\",command=\"backup\"} 1.5\n"));
        assert!(text.contains("# TYPE lifeboat_last_run_success gauge"));
        assert_eq!(text.matches("# HELP lifeboat_last_run_success ").count(), 1);
        assert_eq!(
            names(dir.path()),
            vec!["lifeboat.prom"],
            "no temp file left"
        );
    }

    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn label_values_are_escaped() {
        let s = Sample::new("lifeboat_rpo_ok", &[("location", "s3://b/\"x\"")], 1.0);
        assert_eq!(s.series(), "lifeboat_rpo_ok{location=\"s3://b/\\\"x\\\"\"}");
    }
}
