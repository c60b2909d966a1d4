//! Comparing what a task expects with what the cluster holds, and saying what was found (never
//! what was expected: the learner reads these reasons, and the expected value may be the answer).

use std::collections::BTreeSet;

use serde_json::Value;

/// Where and how an object differs from what was expected, in words for the learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

/// Scalars compare by value (numbers numerically), objects key by key, lists element by element
/// in any order (a learner may write the rules of a policy or the ports of a Service in any
/// order; `runs` compares command lines, whose order matters).
pub fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            let mut unmatched: Vec<&Value> = b.iter().collect();
            a.len() == b.len()
                && a.iter().all(|x| match unmatched.iter().position(|y| same(x, y)) {
                    Some(i) => {
                        unmatched.swap_remove(i);
                        true
                    }
                    None => false,
                })
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (a, b) => a == b,
    }
}

/// Whether `actual` holds everything `expected` states: an object's listed keys (others may
/// exist), for a list each expected element somewhere in it, scalars by value. `at` names where
/// the comparison starts, for the explanation.
pub fn holds(expected: &Value, actual: &Value, at: &str) -> Result<(), Mismatch> {
    match (expected, actual) {
        (Value::Object(wanted), Value::Object(found)) => {
            for (key, wanted) in wanted {
                let here = join(at, key);
                match found.get(key) {
                    Some(found) => holds(wanted, found, &here)?,
                    None => return Err(Mismatch(format!("{here} is not set"))),
                }
            }
            Ok(())
        }
        (Value::Array(wanted), Value::Array(found)) => {
            if wanted
                .iter()
                .all(|wanted| found.iter().any(|found| holds(wanted, found, at).is_ok()))
            {
                Ok(())
            } else {
                Err(Mismatch(format!("{}{}", prefix(at), show(actual))))
            }
        }
        (wanted, found) if same(wanted, found) => Ok(()),
        (_, found) => Err(Mismatch(format!("{}{}", prefix(at), show(found)))),
    }
}

/// `contains`: a substring of a string, an element of a list, or part of an object.
pub fn contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(part), Value::String(whole)) => whole.contains(part.as_str()),
        (_, Value::Array(elements)) => elements.iter().any(|e| holds(expected, e, "").is_ok()),
        (_, Value::Object(_)) => holds(expected, actual, "").is_ok(),
        _ => false,
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn prefix(at: &str) -> String {
    if at.is_empty() {
        "found ".into()
    } else {
        format!("{at} is ")
    }
}

/// A value in a line: compact JSON, cut short when long.
pub fn show(value: &Value) -> String {
    const LIMIT: usize = 160;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        text
    } else {
        format!("{}…", text.chars().take(LIMIT).collect::<String>())
    }
}

/// What an expected part of an object says, for a learner to read in a check's description:
/// each leaf as its dotted path and value (`image nginx:1.27, ports.containerPort 80`).
pub fn readable(value: &Value) -> String {
    fn leaves(at: &str, value: &Value, out: &mut Vec<String>) {
        let join = |key: &str| {
            if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            }
        };
        match value {
            Value::Object(map) => map.iter().for_each(|(key, value)| leaves(&join(key), value, out)),
            Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                items.iter().for_each(|item| leaves(at, item, out))
            }
            Value::String(text) if at.is_empty() => out.push(text.clone()),
            Value::String(text) => out.push(format!("{at} {text}")),
            other if at.is_empty() => out.push(other.to_string()),
            other => out.push(format!("{at} {other}")),
        }
    }
    let mut out = Vec::new();
    leaves("", value, &mut out);
    out.join(", ")
}

/// Keys whose value is a label selector (`matchLabels`, `matchExpressions`).
const SELECTOR_KEYS: &[&str] = &["selector", "podSelector", "namespaceSelector", "labelSelector"];

/// `value` (found under `key`) with every label selector in it replaced by its canonical text,
/// so that selectors that select the same pods compare equal: `matchLabels: {tier: db}` and
/// `matchExpressions: [{key: tier, operator: In, values: [db]}]` both become `"tier=db"`.
/// An empty `podSelector`/`namespaceSelector` (everything) becomes `""`. A Service's plain map
/// selector is left as it is.
pub fn with_canonical_selectors(value: &Value, key: Option<&str>) -> Value {
    if let Some(key) = key.filter(|k| SELECTOR_KEYS.contains(k)) {
        if let Some(text) = selector_text(value, key != "selector") {
            return Value::String(text);
        }
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_canonical_selectors(v, Some(k))))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(|v| with_canonical_selectors(v, None)).collect()),
        other => other.clone(),
    }
}

/// The requirements of a label selector, sorted, as `kubectl` writes them; `None` when the value
/// is not a label selector (or is empty and `empty_selects_all` is false).
fn selector_text(value: &Value, empty_selects_all: bool) -> Option<String> {
    let map = value.as_object()?;
    if map.keys().any(|k| k != "matchLabels" && k != "matchExpressions")
        || (map.is_empty() && !empty_selects_all)
    {
        return None;
    }
    let mut requirements = BTreeSet::new();
    for (key, value) in map
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        requirements.insert(format!("{key}={}", value.as_str()?));
    }
    for expression in map
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression.get("key")?.as_str()?;
        let mut values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let requirement = match (expression.get("operator")?.as_str()?, values.as_slice()) {
            ("In", [one]) => format!("{key}={one}"),
            ("In", many) => format!("{key} in ({})", many.join(",")),
            ("NotIn", many) => format!("{key} notin ({})", many.join(",")),
            ("Exists", _) => key.to_owned(),
            ("DoesNotExist", _) => format!("!{key}"),
            _ => return None,
        };
        requirements.insert(requirement);
    }
    Some(requirements.into_iter().collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_object_holds_a_part_of_itself_and_says_what_it_found() {
        let container = json!({
            "name": "app", "image": "nginx:1.27",
            "ports": [{ "containerPort": 80, "protocol": "TCP" }, { "containerPort": 443 }],
            "resources": { "limits": { "memory": "128Mi" } }
        });
        assert!(holds(
            &json!({ "image": "nginx:1.27", "ports": [{ "containerPort": 443 }] }),
            &container,
            ""
        )
        .is_ok());
        assert_eq!(
            holds(
                &json!({ "resources": { "limits": { "memory": "256Mi" } } }),
                &container,
                "container app"
            ),
            Err(Mismatch(
                "container app.resources.limits.memory is \"128Mi\"".into()
            ))
        );
        assert_eq!(
            holds(
                &json!({ "readinessProbe": { "httpGet": { "port": 80 } } }),
                &container,
                ""
            ),
            Err(Mismatch("readinessProbe is not set".into()))
        );
        let ports = holds(&json!({ "ports": [{ "containerPort": 8080 }] }), &container, "").unwrap_err();
        assert!(
            ports.0.starts_with("ports is [{\"containerPort\":80"),
            "{ports:?}"
        );
        assert!(
            !ports.0.contains("8080"),
            "the expected value stays secret: {ports:?}"
        );
    }

    #[test]
    fn contains_reads_strings_lists_and_objects() {
        assert!(contains(&json!("prod"), &json!("production")));
        assert!(contains(&json!("b"), &json!(["a", "b"])));
        assert!(contains(
            &json!({ "name": "x" }),
            &json!([{ "name": "x", "value": "1" }])
        ));
        assert!(!contains(&json!(3), &json!("3")));
        assert!(same(&json!(3), &json!(3.0)));
        assert!(same(
            &json!([{ "port": 53 }, 5432]),
            &json!([5432, { "port": 53 }])
        ));
        assert!(!same(&json!([53, 53]), &json!([53, 5432])));
        assert!(!same(&json!([53]), &json!([53, 53])));
    }

    #[test]
    fn selectors_that_select_the_same_pods_compare_equal() {
        let canonical = |v: Value| with_canonical_selectors(&v, None);
        let by_labels = canonical(json!({ "podSelector": { "matchLabels": { "tier": "db", "app": "x" } } }));
        let by_expressions = canonical(json!({ "podSelector": { "matchExpressions": [
            { "key": "app", "operator": "In", "values": ["x"] },
            { "key": "tier", "operator": "In", "values": ["db"] }
        ] } }));
        let mixed = canonical(json!({ "podSelector": {
            "matchLabels": { "tier": "db" },
            "matchExpressions": [{ "key": "app", "operator": "In", "values": ["x"] }]
        } }));
        assert_eq!(by_labels, json!({ "podSelector": "app=x,tier=db" }));
        assert_eq!(by_expressions, by_labels);
        assert_eq!(mixed, by_labels);
        assert_eq!(
            canonical(
                json!({ "ingress": [{ "from": [{ "podSelector": { "matchLabels": { "tier": "api" } } }] }] })
            ),
            json!({ "ingress": [{ "from": [{ "podSelector": "tier=api" }] }] })
        );
        assert_eq!(
            canonical(json!({ "podSelector": {} })),
            json!({ "podSelector": "" })
        );
        assert_ne!(
            canonical(
                json!({ "podSelector": { "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["db", "api"] }] } })
            ),
            canonical(json!({ "podSelector": { "matchLabels": { "tier": "db" } } }))
        );
        // A Service selects by a plain map, left alone.
        let service = json!({ "selector": { "app": "web" } });
        assert_eq!(canonical(service.clone()), service);
        assert_eq!(
            with_canonical_selectors(&json!({ "matchLabels": { "app": "checkout" } }), Some("selector")),
            json!("app=checkout")
        );
    }

    #[test]
    fn an_expected_part_reads_as_paths_and_values() {
        use serde_json::json;
        assert_eq!(readable(&json!({ "image": "nginx:1.27" })), "image nginx:1.27");
        assert_eq!(
            readable(&json!({ "ports": [{ "containerPort": 80 }], "args": ["sleep", "3600"] })),
            r#"args ["sleep","3600"], ports.containerPort 80"#
        );
    }
}
