//! [`Report`]: the outcome of a run, and its three renderings: text (one line per check),
//! JSON (one document) and JUnit XML (for CI systems).

use std::fmt;
use std::time::Duration;

/// What became of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The hub followed the rule.
    Pass,
    /// It did not: why.
    Fail(String),
    /// Not run: what the hub (or the command line) does not offer.
    Skip(String),
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// The check's name.
    pub name: &'static str,
    /// The rule it checks: a section of `docs/PROTOCOL.md`.
    pub rule: &'static str,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

impl fmt::Display for CheckResult {
    /// `ok   name`, `FAIL name: why` (continuation lines indented) or `skip name: why`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass => write!(f, "ok   {}", self.name),
            Outcome::Fail(why) => write!(f, "FAIL {}: {}", self.name, why.replace('\n', "\n     ")),
            Outcome::Skip(why) => write!(f, "skip {}: {why}", self.name),
        }
    }
}

/// Every result of a run, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The results.
    pub results: Vec<CheckResult>,
}

impl Report {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    /// Checks passed.
    pub fn passed(&self) -> usize {
        self.count(|o| *o == Outcome::Pass)
    }

    /// Checks failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }

    /// Checks skipped.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skip(_)))
    }

    /// The names of the failed checks.
    pub fn failures(&self) -> Vec<&'static str> {
        let failed = self.results.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_)));
        failed.map(|r| r.name).collect()
    }

    /// The summary line: `N passed, M failed, K skipped`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed, {} skipped", self.passed(), self.failed(), self.skipped())
    }

    /// The whole run as one JSON document: `{"passed","failed","skipped","checks":[{"name",
    /// "rule","status":"pass"|"fail"|"skip","message","seconds"}]}`.
    pub fn to_json(&self) -> String {
        let checks: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                let (status, message) = match &r.outcome {
                    Outcome::Pass => ("pass", None),
                    Outcome::Fail(m) => ("fail", Some(m.as_str())),
                    Outcome::Skip(m) => ("skip", Some(m.as_str())),
                };
                serde_json::json!({"name": r.name, "rule": r.rule, "status": status,
                                   "message": message, "seconds": r.duration.as_secs_f64()})
            })
            .collect();
        let doc = serde_json::json!({"passed": self.passed(), "failed": self.failed(),
                                     "skipped": self.skipped(), "checks": checks});
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }

    /// The run as a JUnit XML `<testsuite>` (one `<testcase>` per check, `<failure>` and
    /// `<skipped>` with their message).
    pub fn to_junit(&self) -> String {
        let total: f64 = self.results.iter().map(|r| r.duration.as_secs_f64()).sum();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"guts-conformance\" \
             tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{total:.3}\">\n",
            self.results.len(),
            self.failed(),
            self.skipped()
        );
        for r in &self.results {
            let head = format!(
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(r.rule),
                xml(r.name),
                r.duration.as_secs_f64()
            );
            match &r.outcome {
                Outcome::Pass => out.push_str(&format!("{head}/>\n")),
                Outcome::Fail(m) => out.push_str(&format!(
                    "{head}>\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                    xml(m.lines().next().unwrap_or_default()),
                    xml(m)
                )),
                Outcome::Skip(m) => out.push_str(&format!(
                    "{head}>\n    <skipped message=\"{}\"/>\n  </testcase>\n",
                    xml(m)
                )),
            }
        }
        out.push_str("</testsuite>\n");
        out
    }
}

/// `s` escaped for XML text and attributes.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let r = |name, outcome| CheckResult {
            name,
            rule: "Rule <x>",
            outcome,
            duration: Duration::ZERO,
        };
        Report {
            results: vec![
                r("a", Outcome::Pass),
                r("b", Outcome::Fail("got \"x\" & <y>".into())),
                r("c", Outcome::Skip("no secret".into())),
            ],
        }
    }

    #[test]
    fn counts_json_and_junit() {
        let rep = sample();
        assert_eq!(rep.summary(), "1 passed, 1 failed, 1 skipped");
        assert_eq!(rep.failures(), ["b"]);
        let v: serde_json::Value = serde_json::from_str(&rep.to_json()).unwrap();
        assert_eq!(v["checks"][1]["status"], "fail");
        assert_eq!(v["checks"][2]["message"], "no secret");
        let x = rep.to_junit();
        assert!(x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""), "{x}");
        assert!(x.contains("<failure message=\"got &quot;x&quot; &amp; &lt;y&gt;\">"), "{x}");
        assert!(x.contains("classname=\"Rule &lt;x&gt;\" name=\"c\""), "{x}");
    }
}
