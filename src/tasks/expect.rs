//! What a check expects of a value: a count (exact or a range), or a value at a path that
//! equals, contains or matches, or is unset. Checks of objects and of the learner's files share
//! them.

use std::fmt;

use serde::{de, Deserialize, Deserializer};
use serde_json::Value;

use super::{
    matching::{contains, same, show, with_canonical_selectors},
    path::FieldPath,
};

/// A number a check wants: exactly `3`, or a range written `{ at_least: 2, at_most: 5 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    at_least: Option<i64>,
    at_most: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CountFile {
    Exactly(i64),
    Range {
        at_least: Option<i64>,
        at_most: Option<i64>,
    },
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let count = match CountFile::deserialize(deserializer)
            .map_err(|_| de::Error::custom("a count is a number or `{ at_least: N, at_most: M }`"))?
        {
            CountFile::Exactly(n) => Count {
                at_least: Some(n),
                at_most: Some(n),
            },
            CountFile::Range { at_least, at_most } => Count { at_least, at_most },
        };
        match (count.at_least, count.at_most) {
            (None, None) => Err(de::Error::custom("a range needs `at_least` or `at_most`")),
            (Some(low), Some(high)) if low > high => Err(de::Error::custom(format!(
                "at_least {low} is above at_most {high}"
            ))),
            _ => Ok(count),
        }
    }
}

impl Count {
    fn holds(self, found: i64) -> bool {
        self.at_least.is_none_or(|low| found >= low) && self.at_most.is_none_or(|high| found <= high)
    }

    /// Passes, or says what was found: `found 2 ready replicas`.
    pub(super) fn judge(self, found: i64, what: &str) -> Result<(), String> {
        if self.holds(found) {
            Ok(())
        } else {
            Err(format!("found {found} {what}"))
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.at_least, self.at_most) {
            (Some(low), Some(high)) if low == high => write!(f, "{low}"),
            (Some(low), Some(high)) => write!(f, "between {low} and {high}"),
            (Some(low), None) => write!(f, "at least {low}"),
            (None, Some(high)) => write!(f, "at most {high}"),
            (None, None) => f.write_str("any number of"),
        }
    }
}

/// A value at a path equals, contains or matches what the task expects: in an object of the
/// cluster, or in a YAML file the learner wrote. Label selectors on both sides are compared by
/// what they select.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ValueTestFile")]
pub(super) struct ValueTest {
    path: FieldPath,
    expect: Expectation,
}

#[derive(Debug, Clone)]
enum Expectation {
    Equals(Value),
    Contains(Value),
    /// The pattern as written, and anchored to the whole value.
    Matches(String, regex::Regex),
    /// Nothing at the path: absent, `null`, or an empty list or map.
    Unset,
}

/// A value test as a task file writes it (a field check adds the object to it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ValueTestFile {
    pub path: FieldPath,
    pub equals: Option<Value>,
    pub contains: Option<Value>,
    pub matches: Option<String>,
    pub unset: Option<bool>,
}

impl TryFrom<ValueTestFile> for ValueTest {
    type Error = String;

    fn try_from(file: ValueTestFile) -> Result<Self, String> {
        let ValueTestFile {
            path,
            equals,
            contains,
            matches,
            unset,
        } = file;
        let canonical = |value: Value| with_canonical_selectors(&value, path.last_key());
        let expect = match (equals, contains, matches, unset) {
            (Some(value), None, None, None) => Expectation::Equals(canonical(value)),
            (None, Some(value), None, None) => Expectation::Contains(canonical(value)),
            (None, None, None, Some(true)) => Expectation::Unset,
            (None, None, Some(pattern), None) => {
                let anchored = format!("^(?:{pattern})$");
                let regex = regex::Regex::new(&anchored)
                    .map_err(|e| format!("`matches` is not a regular expression: {e}"))?;
                Expectation::Matches(pattern, regex)
            }
            _ => {
                return Err(
                    "a value test needs exactly one of `equals`, `contains`, `matches`, `unset: true`".into(),
                )
            }
        };
        Ok(Self { path, expect })
    }
}

impl ValueTest {
    pub(super) fn judge(&self, object: &Value) -> Result<(), String> {
        let found = self.path.lookup(object);
        let empty = |v: &Value| match v {
            Value::Null => true,
            Value::Array(list) => list.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        };
        if let Expectation::Unset = self.expect {
            return match found {
                Some(found) if !empty(found) => Err(format!("{} is {}", self.path, show(found))),
                _ => Ok(()),
            };
        }
        let Some(found) = found.filter(|v| !v.is_null()) else {
            return Err(format!("{} is not set", self.path));
        };
        let found = with_canonical_selectors(found, self.path.last_key());
        let passed = match &self.expect {
            Expectation::Equals(wanted) => same(wanted, &found),
            Expectation::Contains(wanted) => contains(wanted, &found),
            Expectation::Matches(_, pattern) => match &found {
                Value::String(text) => pattern.is_match(text),
                Value::Number(_) | Value::Bool(_) => pattern.is_match(&found.to_string()),
                _ => false,
            },
            Expectation::Unset => unreachable!("judged above"),
        };
        if passed {
            Ok(())
        } else {
            Err(format!("{} is {}", self.path, show(&found)))
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Equals(value) => write!(f, "{}", show(value)),
            Expectation::Contains(value) => write!(f, "something containing {}", show(value)),
            Expectation::Matches(pattern, _) => write!(f, "a match for /{pattern}/"),
            Expectation::Unset => f.write_str("not set"),
        }
    }
}

impl fmt::Display for ValueTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.path, self.expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_or_ranges() {
        let count = |yaml: &str| serde_yaml::from_str::<Count>(yaml).unwrap();
        assert!(count("3").holds(3) && !count("3").holds(4));
        let at_least = count("{ at_least: 2 }");
        assert!(at_least.holds(2) && at_least.holds(9) && !at_least.holds(1));
        let at_most = count("{ at_most: 1 }");
        assert!(at_most.holds(0) && !at_most.holds(2));
        assert_eq!(
            count("{ at_least: 2 }").judge(1, "ready pods"),
            Err("found 1 ready pods".into())
        );
    }
}
