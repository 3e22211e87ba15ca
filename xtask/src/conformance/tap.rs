//! Reading a validation program's output: the Test Anything Protocol, version 13
//! (testanything.org/tap-version-13-specification.html), as the suite's tap-go library writes it. A
//! plan (`1..N`, first or last), one line per test (`ok N - what`, `not ok N - what`, `ok N # SKIP why`),
//! and after a test line, optionally, an indented diagnostic block between `  ---` and `  ...`, which
//! tap-go writes as JSON (a subset of YAML). A block that follows no test line is the program's own
//! report: the hook programs print their error that way, under a `1..0` plan.

use serde_json::Value;

/// What one program printed, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The `N` of `1..N`; `None` when the program printed no plan.
    pub plan: Option<u32>,
    pub tests: Vec<TestLine>,
    /// The `error` of every diagnostic block that belongs to no test line, and every `Bail out!`.
    pub errors: Vec<String>,
}

/// One `ok` or `not ok` line.
#[derive(Clone, Debug, PartialEq)]
pub struct TestLine {
    /// `ok`, or `not ok` marked `# TODO` (a known gap, which TAP does not count as a failure).
    pub passed: bool,
    pub skipped: bool,
    /// The line as printed.
    pub line: String,
    /// The diagnostic block that followed it, if any.
    pub diagnostic: Option<Value>,
}

impl Report {
    pub fn ok(&self) -> u32 {
        count(self.tests.iter().filter(|t| t.passed))
    }

    pub fn not_ok(&self) -> u32 {
        count(self.tests.iter().filter(|t| !t.passed))
    }

    pub fn skipped(&self) -> u32 {
        count(self.tests.iter().filter(|t| t.skipped))
    }

    pub fn failures(&self) -> impl Iterator<Item = &TestLine> {
        self.tests.iter().filter(|t| !t.passed)
    }
}

impl TestLine {
    /// The line without its number (`not ok - what`): the same failure in two runs reads the same.
    pub fn unnumbered(&self) -> String {
        let (verdict, rest) = match self.line.strip_prefix("not ok") {
            Some(rest) => ("not ok", rest),
            None => ("ok", self.line.strip_prefix("ok").unwrap_or(&self.line)),
        };
        let rest = rest.trim_start().trim_start_matches(|c: char| c.is_ascii_digit());
        format!("{verdict}{rest}")
    }

    /// What the diagnostic says went wrong: its `stderr`, else its `error`, first line only.
    pub fn reason(&self) -> Option<String> {
        let diagnostic = self.diagnostic.as_ref()?;
        ["stderr", "error"]
            .iter()
            .filter_map(|key| diagnostic.get(key)?.as_str())
            .map(first_line)
            .find(|line| !line.is_empty())
    }
}

fn count<'a>(tests: impl Iterator<Item = &'a TestLine>) -> u32 {
    u32::try_from(tests.count()).unwrap_or(u32::MAX)
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

/// Reads a program's standard output.
pub fn parse(output: &str) -> Report {
    let mut report = Report::default();
    // Whether the last thing read was a test line still without its diagnostic block.
    let mut block_belongs_to_test = false;
    let mut block: Option<Vec<&str>> = None;
    for line in output.lines() {
        if let Some(lines) = &mut block {
            if line.trim() == "..." {
                let diagnostic = diagnostic_value(lines);
                attach(&mut report, diagnostic, block_belongs_to_test);
                block = None;
                block_belongs_to_test = false;
            } else {
                lines.push(line);
            }
        } else if line.trim() == "---" && line.starts_with(' ') {
            block = Some(Vec::new());
        } else if let Some(test) = test_line(line) {
            report.tests.push(test);
            block_belongs_to_test = true;
        } else if let Some(plan) = plan(line) {
            report.plan.get_or_insert(plan);
            block_belongs_to_test = false;
        } else if let Some(reason) = line.strip_prefix("Bail out!") {
            report.errors.push(format!("Bail out!{reason}"));
        }
    }
    report
}

/// A diagnostic block's text (indented two spaces) as JSON, or as one string when it is other YAML.
fn diagnostic_value(lines: &[&str]) -> Value {
    let text: Vec<&str> = lines.iter().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect();
    let text = text.join("\n");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn attach(report: &mut Report, diagnostic: Value, belongs_to_test: bool) {
    if belongs_to_test && let Some(test) = report.tests.last_mut() {
        test.diagnostic = Some(diagnostic);
        return;
    }
    if let Some(error) = diagnostic.get("error").and_then(Value::as_str) {
        report.errors.push(first_line(error));
    }
}

/// `ok ...` or `not ok ...`, with its `# SKIP` or `# TODO` directive.
fn test_line(line: &str) -> Option<TestLine> {
    let (ok, rest) = match line.strip_prefix("not ok") {
        Some(rest) => (false, rest),
        None => (true, line.strip_prefix("ok")?),
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let directive = rest
        .split_once(" # ")
        .map(|(_, d)| d.trim_start().to_ascii_uppercase())
        .unwrap_or_default();
    Some(TestLine {
        passed: ok || directive.starts_with("TODO"),
        skipped: directive.starts_with("SKIP"),
        line: line.to_owned(),
        diagnostic: None,
    })
}

/// `1..N` (possibly followed by `# SKIP why`).
fn plan(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("1..")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_program_with_a_skip_and_a_diagnostic() {
        let report = parse(
            "TAP version 13\n\
             ok 1 - create MUST create a new container\n  ---\n  {\n    \"reference\": \"r\"\n  }\n  ...\n\
             ok 2 # SKIP linux.uidMappings not set\n\
             1..2\n",
        );
        assert_eq!(report.plan, Some(2));
        assert_eq!((report.ok(), report.not_ok(), report.skipped()), (2, 0, 1));
        assert_eq!(report.tests[0].diagnostic.as_ref().unwrap()["reference"], "r");
        assert!(report.errors.is_empty());
    }

    #[test]
    fn a_failure_keeps_its_line_and_the_runtimes_stderr() {
        let report = parse(
            "TAP version 13\n1..2\n\
             not ok 1 - implementations MUST NOT generate an error\n  ---\n  {\n    \"error\": \"exit status 1\",\n    \"stderr\": \"runc create failed: no /runtimetest\\n\"\n  }\n  ...\n\
             ok 2 - unknown property\n",
        );
        assert_eq!(report.plan, Some(2));
        assert_eq!((report.ok(), report.not_ok()), (1, 1));
        let failure = report.failures().next().unwrap();
        assert_eq!(
            failure.unnumbered(),
            "not ok - implementations MUST NOT generate an error"
        );
        assert_eq!(
            failure.reason().as_deref(),
            Some("runc create failed: no /runtimetest")
        );
    }

    #[test]
    fn a_hook_programs_error_under_an_empty_plan_is_kept() {
        let report = parse(
            "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called in the listed order\\nRefer to: x\"\n  }\n  ...\n1..0\n",
        );
        assert_eq!(report.plan, Some(0));
        assert!(report.tests.is_empty());
        assert_eq!(report.errors, ["Hooks MUST be called in the listed order"]);
    }

    #[test]
    fn a_block_after_the_plan_belongs_to_no_test() {
        let report = parse("ok 1 - a\n1..1\n  ---\n  {\"error\": \"late\"}\n  ...\n");
        assert_eq!(report.tests[0].diagnostic, None);
        assert_eq!(report.errors, ["late"]);
    }

    #[test]
    fn indented_and_nested_tap_is_not_counted() {
        // runtimetest's own TAP, quoted inside a diagnostic, and a `# comment`, are not test lines.
        let report = parse(
            "ok 1 - outer\n  ---\n  {\n    \"stdout\": \"not ok 1 - inner\\n1..1\"\n  }\n  ...\n# not ok 2\n    not ok 3\n1..1\n",
        );
        assert_eq!((report.plan, report.ok(), report.not_ok()), (Some(1), 1, 0));
    }

    #[test]
    fn todo_failures_do_not_count_and_odd_lines_are_not_tests() {
        let report = parse("not ok 1 # TODO later\nokay\nnot okay\n1..1 # SKIP nothing\n1..5\n");
        assert_eq!((report.ok(), report.not_ok()), (1, 0));
        // The first plan counts; a second one is not a reason to recount.
        assert_eq!(report.plan, Some(1));
    }

    #[test]
    fn no_output_has_no_plan() {
        let report = parse("");
        assert_eq!(report, Report::default());
        assert_eq!(parse("Bail out! no runtime\n").errors, ["Bail out! no runtime"]);
    }

    #[test]
    fn a_yaml_block_that_is_not_json_is_kept_as_text() {
        let report = parse("not ok 1 - a\n  ---\n  message: plain yaml\n  ...\n1..1\n");
        assert_eq!(
            report.tests[0].diagnostic,
            Some(Value::String("message: plain yaml".into()))
        );
    }
}
