//! Rules written as text, for the binary and for scripts: `FAULT [key=value]...`, e.g.
//! `slowdown kind=upload-part nth=2 times=3` or `reset-download:4096 method=GET contains=data.tar.zst`.
//!
//! FAULT is `slowdown`, `internal`, `reset-upload:BYTES`, `reset-download:BYTES`,
//! `stall:DURATION` (`5s`, `250ms`), `truncate:BYTES`, `lose-answer` or `hold`. Keys: `method`, `kind` (a
//! [`Kind`] name such as `upload-part`), `contains` (repeatable), `nth`, `times` (a number or
//! `always`).

use std::time::Duration;

use crate::{Fault, Kind, Match};

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Fault(Match, Fault),
    Hold(Match),
}

pub fn parse_rule(spec: &str) -> Result<Rule, String> {
    let mut words = spec.split_whitespace();
    let fault = words.next().ok_or("an empty rule")?;
    let mut when = Match::any();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not key=value"))?;
        when = match key {
            "method" => when.method(value),
            "contains" => when.contains(value),
            "kind" => when.of_kind(
                Kind::from_name(value).ok_or_else(|| format!("no request kind {value:?}"))?,
            ),
            "nth" => when.nth(number(value)?),
            "times" if value == "always" => when.always(),
            "times" => when.times(number(value)?),
            other => return Err(format!("unknown key {other:?}")),
        };
    }
    let (name, arg) = fault.split_once(':').unwrap_or((fault, ""));
    let fault = match name {
        "hold" => return Ok(Rule::Hold(when)),
        "slowdown" => Fault::SlowDown,
        "internal" => Fault::InternalError,
        "reset-upload" => Fault::ResetUpload {
            after: number(arg)?,
        },
        "reset-download" => Fault::ResetDownload {
            after: number(arg)?,
        },
        "truncate" => Fault::Truncate {
            after: number(arg)?,
        },
        "stall" => Fault::Stall(duration(arg)?),
        "lose-answer" => Fault::LoseAnswer,
        other => return Err(format!("unknown fault {other:?}")),
    };
    Ok(Rule::Fault(when, fault))
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 5s or 250ms");
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    text.strip_suffix('s')
        .unwrap_or(text)
        .parse()
        .map(Duration::from_secs_f64)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        assert_eq!(
            parse_rule("slowdown kind=upload-part nth=2 times=3").unwrap(),
            Rule::Fault(
                Match::kind(Kind::UploadPart).nth(2).times(3),
                Fault::SlowDown
            )
        );
        assert_eq!(
            parse_rule("reset-download:4096 method=get contains=data.tar.zst times=always")
                .unwrap(),
            Rule::Fault(
                Match::any().method("GET").contains("data.tar.zst").always(),
                Fault::ResetDownload { after: 4096 }
            )
        );
        assert_eq!(
            parse_rule("stall:250ms").unwrap(),
            Rule::Fault(Match::any(), Fault::Stall(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_rule("lose-answer kind=put-object").unwrap(),
            Rule::Fault(Match::kind(Kind::PutObject), Fault::LoseAnswer)
        );
        assert_eq!(
            parse_rule("hold contains=comp=block").unwrap(),
            Rule::Hold(Match::any().contains("comp=block"))
        );
        for bad in [
            "",
            "boom",
            "slowdown nth",
            "truncate:x",
            "slowdown kind=nope",
            "stall:soon",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad:?}");
        }
    }
}
