//! Units people read and write: durations ("26h", "7days"), byte sizes ("8MiB"), and ages and sizes
//! as lifeboat prints them.

use std::time::Duration;

/// A duration as written in flags, config files and environment variables.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like \"26h\" or \"7days\" ({e})"))
}

/// "1048576", "512KiB", "8MiB", "5GiB" (binary units only: they are what part sizes are made of).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let units = [
        ("KiB", 1u64 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("B", 1),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((text, 1));
    number.trim().parse::<u64>().ok()?.checked_mul(unit)
}

/// A byte count in binary units, one decimal: "1.5 KiB", "3.0 GiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An age at a glance: "40s", "3h2m", "2d2h" (a negative one, from a clock skew, is "0s").
pub fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_as_written() {
        assert_eq!(
            parse_duration("26h").unwrap(),
            Duration::from_secs(26 * 3600)
        );
        assert_eq!(
            parse_duration(" 7days ").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert_eq!(parse_bytes(" 8MiB "), Some(8 << 20));
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("5GiB"), Some(5 << 30));
        assert_eq!(parse_bytes("512KiB"), Some(512 << 10));
        assert_eq!(parse_bytes("100B"), Some(100));
        assert_eq!(parse_bytes("8MB"), None, "decimal units are not part sizes");
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("99999999999999GiB"), None);
    }

    #[test]
    fn sizes_and_ages_read_at_a_glance() {
        use chrono::TimeDelta;
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(age(TimeDelta::seconds(40)), "40s");
        assert_eq!(age(TimeDelta::seconds(3 * 3600 + 120)), "3h2m");
        assert_eq!(age(TimeDelta::seconds(2 * 86400 + 7200)), "2d2h");
        assert_eq!(age(TimeDelta::seconds(-5)), "0s");
    }
}
