//! Which backups a retention policy keeps, with restic's bucket semantics: `keep_last` keeps the N
//! newest; `keep_hourly|daily|weekly|monthly` keep the newest backup of each of the N most recent
//! hours/days/ISO weeks/months that have one; `keep_within` keeps everything within a duration of
//! the newest backup. A backup kept by any rule is kept; the newest is always kept.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// A retention policy; all rules zero means "no policy" and prunes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_within: Option<Duration>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// Names the calendar bucket (hour, day, ISO week, month) a time falls in.
type BucketOf = fn(&DateTime<Utc>) -> String;

/// The decision for one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub time: DateTime<Utc>,
    /// Why it is kept (empty: it is to be deleted).
    pub reasons: Vec<String>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Applies `policy` to backups given as (id, time), in any order; returns decisions newest first.
pub fn decide(backups: &[(String, DateTime<Utc>)], policy: &Policy) -> Vec<Decision> {
    let mut sorted: Vec<&(String, DateTime<Utc>)> = backups.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut out: Vec<Decision> = sorted
        .iter()
        .map(|(id, t)| Decision {
            id: id.clone(),
            time: *t,
            reasons: Vec::new(),
        })
        .collect();
    let Some(newest) = out.first().map(|d| d.time) else {
        return out;
    };

    for d in out.iter_mut().take(policy.keep_last as usize) {
        d.reasons.push("last".into());
    }
    let buckets: [(&str, u32, BucketOf); 4] = [
        ("hourly", policy.keep_hourly, |t| {
            format!("{}-{:02}", t.date_naive(), t.hour())
        }),
        ("daily", policy.keep_daily, |t| t.date_naive().to_string()),
        ("weekly", policy.keep_weekly, |t| {
            format!("{}-W{:02}", t.iso_week().year(), t.iso_week().week())
        }),
        ("monthly", policy.keep_monthly, |t| {
            format!("{}-{:02}", t.year(), t.month())
        }),
    ];
    for (name, count, bucket_of) in buckets {
        let mut seen = HashSet::new();
        for d in out.iter_mut() {
            if seen.len() as u32 >= count {
                break;
            }
            // Newest first, so the first backup met in a bucket is that bucket's newest.
            if seen.insert(bucket_of(&d.time)) {
                d.reasons.push(format!("{name} {}", bucket_of(&d.time)));
            }
        }
    }
    if let Some(within) = policy.keep_within {
        let limit = newest - chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        for d in out.iter_mut().filter(|d| d.time >= limit) {
            d.reasons
                .push(format!("within {}", humantime::format_duration(within)));
        }
    }
    if let Some(first) = out.first_mut()
        && first.reasons.is_empty()
    {
        first.reasons.push("newest".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One backup every 6 hours for 120 days, ending 2026-11-22T00:00Z.
    fn series() -> Vec<(String, DateTime<Utc>)> {
        let end: DateTime<Utc> = "2026-11-22T00:00:00Z".parse().unwrap();
        (0..480)
            .map(|i| {
                let t = end - chrono::Duration::hours(6 * i);
                (format!("{}-abcd", t.format("%Y%m%dT%H%M%SZ")), t)
            })
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .filter(|d| d.keep())
            .map(|d| d.time.format("%Y-%m-%dT%H").to_string())
            .collect()
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let d = decide(
            &series(),
            &Policy {
                keep_last: 3,
                ..Default::default()
            },
        );
        assert_eq!(
            kept(&d),
            vec!["2026-11-22T00", "2026-11-21T18", "2026-11-21T12"]
        );
        assert_eq!(d.len(), 480);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_recent_day() {
        let d = decide(
            &series(),
            &Policy {
                keep_daily: 3,
                ..Default::default()
            },
        );
        assert_eq!(
            kept(&d),
            vec!["2026-11-22T00", "2026-11-21T18", "2026-11-20T18"]
        );
    }

    #[test]
    fn weekly_and_monthly_use_iso_weeks_and_calendar_months() {
        let d = decide(
            &series(),
            &Policy {
                keep_weekly: 2,
                keep_monthly: 3,
                ..Default::default()
            },
        );
        // 2026-11-22 is a Sunday: ISO week 47 ends that day; week 46 ended on the 15th.
        assert_eq!(
            kept(&d),
            vec![
                "2026-11-22T00",
                "2026-11-15T18",
                "2026-10-31T18",
                "2026-09-30T18"
            ]
        );
        let reasons = &d
            .iter()
            .find(|x| x.keep() && x.time.day() == 31)
            .unwrap()
            .reasons;
        assert_eq!(reasons, &vec!["monthly 2026-10".to_string()]);
    }

    #[test]
    fn rules_combine_and_within_is_relative_to_the_newest() {
        let d = decide(
            &series(),
            &Policy {
                keep_last: 1,
                keep_within: Some(Duration::from_secs(24 * 3600)),
                keep_monthly: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            kept(&d),
            vec![
                "2026-11-22T00",
                "2026-11-21T18",
                "2026-11-21T12",
                "2026-11-21T06",
                "2026-11-21T00"
            ]
        );
        assert_eq!(d[0].reasons, vec!["last", "monthly 2026-11", "within 1day"]);
    }

    #[test]
    fn the_newest_backup_is_always_kept_and_empty_input_is_fine() {
        let only_old_monthly = Policy {
            keep_hourly: 0,
            keep_monthly: 0,
            keep_weekly: 0,
            keep_daily: 0,
            keep_last: 0,
            keep_within: Some(Duration::from_secs(1)),
        };
        let d = decide(&series(), &only_old_monthly);
        assert!(d[0].keep());
        assert_eq!(kept(&d).len(), 1);
        assert!(
            decide(
                &[],
                &Policy {
                    keep_last: 1,
                    ..Default::default()
                }
            )
            .is_empty()
        );
        assert!(Policy::default().is_empty());
    }
}
