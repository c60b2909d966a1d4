//! Comparing what a task expects with what the cluster holds, and saying how they differ.

use serde_json::Value;

/// Where and how an object differs from what was expected, in words for the learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

/// Scalars compare by value (numbers numerically), everything else exactly.
pub fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
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
                    None => return Err(Mismatch(format!("{here}: expected {}, found none", show(wanted)))),
                }
            }
            Ok(())
        }
        (Value::Array(wanted), Value::Array(found)) => {
            for wanted in wanted {
                if !found.iter().any(|found| holds(wanted, found, at).is_ok()) {
                    return Err(Mismatch(format!(
                        "{}no element is {}; found {}",
                        prefix(at),
                        show(wanted),
                        show(actual)
                    )));
                }
            }
            Ok(())
        }
        (wanted, found) if same(wanted, found) => Ok(()),
        (wanted, found) => Err(Mismatch(format!(
            "{}expected {}, found {}",
            prefix(at),
            show(wanted),
            show(found)
        ))),
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
        String::new()
    } else {
        format!("{at}: ")
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_object_holds_a_part_of_itself_and_says_where_it_differs() {
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
                "container app.resources.limits.memory: expected \"256Mi\", found \"128Mi\"".into()
            ))
        );
        assert_eq!(
            holds(
                &json!({ "readinessProbe": { "httpGet": { "port": 80 } } }),
                &container,
                ""
            ),
            Err(Mismatch(
                "readinessProbe: expected {\"httpGet\":{\"port\":80}}, found none".into()
            ))
        );
        let ports = holds(&json!({ "ports": [{ "containerPort": 8080 }] }), &container, "").unwrap_err();
        assert!(
            ports
                .0
                .starts_with("ports: no element is {\"containerPort\":8080}; found ["),
            "{ports:?}"
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
    }
}
