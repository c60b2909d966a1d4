//! Paths into an object, parsed when a task loads:
//! `spec.template.spec.containers[name=web].image`, `spec.ports[0].port`,
//! `metadata.annotations["deployment.kubernetes.io/revision"]`.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    /// The element of a list whose `field` is `value`.
    Where {
        field: String,
        value: String,
    },
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fail =
            |at: usize, why: &str| Err(format!("malformed path `{text}` at character {}: {why}", at + 1));
        let chars: Vec<char> = text.chars().collect();
        let mut segments = Vec::new();
        let mut i = 0;
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        while i < chars.len() || segments.is_empty() {
            match chars.get(i) {
                Some('[') => {
                    let Some(end) = chars[i..].iter().position(|&c| c == ']').map(|p| p + i) else {
                        return fail(i, "`[` is never closed");
                    };
                    let inner: String = chars[i + 1..end].iter().collect();
                    let segment =
                        if let Some(quoted) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                            Segment::Key(quoted.to_owned())
                        } else if let Ok(index) = inner.parse() {
                            Segment::Index(index)
                        } else if let Some((field, value)) = inner.split_once('=') {
                            if field.is_empty() || !field.chars().all(is_name) || value.is_empty() {
                                return fail(i, "a selector is `[field=value]`");
                            }
                            Segment::Where {
                                field: field.into(),
                                value: value.into(),
                            }
                        } else {
                            return fail(i, "brackets hold an index, a \"quoted key\" or field=value");
                        };
                    segments.push(segment);
                    i = end + 1;
                }
                Some('.') if segments.is_empty() => return fail(i, "a path starts with a field name"),
                _ => {
                    if chars.get(i) == Some(&'.') {
                        i += 1;
                    } else if !segments.is_empty() {
                        return fail(i, "expected `.` or `[`");
                    }
                    let start = i;
                    while i < chars.len() && is_name(chars[i]) {
                        i += 1;
                    }
                    if start == i {
                        return fail(start, "expected a field name");
                    }
                    segments.push(Segment::Key(chars[start..i].iter().collect()));
                }
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The name the path starts with.
    pub fn first_field(&self) -> &str {
        match &self.segments[0] {
            Segment::Key(key) => key,
            _ => unreachable!("a path starts with a field name"),
        }
    }

    /// The field name the path ends with, if it ends with one (not an index or a selector).
    pub fn last_key(&self) -> Option<&str> {
        match self.segments.last()? {
            Segment::Key(key) => Some(key),
            _ => None,
        }
    }

    /// The value at this path, if every step of it exists.
    pub fn lookup<'v>(&self, mut value: &'v Value) -> Option<&'v Value> {
        for segment in &self.segments {
            value = match segment {
                Segment::Key(key) => value.get(key)?,
                Segment::Index(index) => value.get(index)?,
                Segment::Where { field, value: wanted } => value.as_array()?.iter().find(|element| {
                    element.get(field).is_some_and(|v| match v {
                        Value::String(s) => s == wanted,
                        // `[containerPort=80]` selects by number.
                        other => serde_json::from_str::<Value>(wanted).is_ok_and(|w| w == *other),
                    })
                })?,
            };
        }
        Some(value)
    }

    /// Paths of `field` steps only, as the kind table writes pod-spec locations.
    pub fn of_fields(fields: &[&str]) -> Self {
        Self {
            text: fields.join("."),
            segments: fields.iter().map(|f| Segment::Key((*f).to_owned())).collect(),
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<&str> for FieldPath {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, String> {
        FieldPath::parse(text)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::text::parse(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_find_keys_indexes_selected_elements_and_quoted_keys() {
        let pod = json!({
            "metadata": { "annotations": { "example.com/owner": "team-a" } },
            "spec": { "containers": [
                { "name": "app", "image": "nginx:1.27", "ports": [{ "containerPort": 80 }] },
                { "name": "sidecar", "image": "busybox:1.36" }
            ] }
        });
        let at = |path: &str| FieldPath::parse(path).unwrap().lookup(&pod).cloned();
        assert_eq!(
            at("spec.containers[name=sidecar].image"),
            Some(json!("busybox:1.36"))
        );
        assert_eq!(at("spec.containers[0].ports[0].containerPort"), Some(json!(80)));
        assert_eq!(
            at("metadata.annotations[\"example.com/owner\"]"),
            Some(json!("team-a"))
        );
        assert_eq!(
            at("spec.containers[0].ports[containerPort=80].containerPort"),
            Some(json!(80))
        );
        assert_eq!(at("spec.containers[name=missing].image"), None);
        let ingress = json!({ "spec": { "rules": [
            { "host": "a.example.com" }, { "host": "shop.example.com", "http": { "paths": [] } }
        ] } });
        let rule = FieldPath::parse("spec.rules[host=shop.example.com].http").unwrap();
        assert_eq!(rule.lookup(&ingress), Some(&json!({ "paths": [] })));
        assert_eq!(rule.last_key(), Some("http"));
        assert_eq!(FieldPath::parse("spec.ports[0]").unwrap().last_key(), None);
        assert_eq!(at("spec.containers[5]"), None);
        assert_eq!(FieldPath::parse("spec.replicas").unwrap().first_field(), "spec");
    }

    #[test]
    fn malformed_paths_say_where() {
        for (path, why) in [
            ("spec..replicas", "character 6: expected a field name"),
            (".spec", "character 1: a path starts with a field name"),
            ("spec.containers[0", "character 16: `[` is never closed"),
            ("spec.containers[name=]", "a selector is `[field=value]`"),
            ("spec.containers[x]", "brackets hold"),
            ("spec.replicas!", "character 14: expected `.` or `[`"),
            ("", "expected a field name"),
        ] {
            let error = FieldPath::parse(path).unwrap_err();
            assert!(error.contains(why), "{path}: {error}");
        }
    }
}
