//! Names that change: a task's `vary:` maps a literal of the task (a namespace, a name, a port) to
//! its alternatives. An exam session gets one alternative per literal, chosen from the session's
//! id and the task's, and the whole task file (statement, setup, files, checks, solution,
//! answers) is read again with the chosen values in place of the literals, so the checks follow
//! without knowing. Replacement is by whole words (`web` never touches `web-frontend`), and the
//! `vary:` block itself is left as written.

use std::{
    collections::{BTreeMap, HashSet},
    ops::Range,
    sync::LazyLock,
};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A word, as far as replacement goes: a name, a dashed name, a number.
static WORD: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"[A-Za-z0-9_-]+").expect("a valid pattern"));

/// A literal or an alternative: a name or a port, as YAML writes either.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(from = "Scalar")]
pub(super) struct Word(pub String);

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Number(u64),
    Text(String),
}

impl From<Scalar> for Word {
    fn from(scalar: Scalar) -> Self {
        match scalar {
            Scalar::Number(n) => Self(n.to_string()),
            Scalar::Text(text) => Self(text),
        }
    }
}

/// A task's `vary:` map, literal → alternatives.
pub(super) type VaryMap = BTreeMap<Word, Vec<Word>>;

/// One session's values: literal → the alternative chosen for it.
pub(super) type Choice<'a> = BTreeMap<&'a str, &'a str>;

/// The literals a task may vary, checked against its text.
#[derive(Debug, Clone)]
pub(super) struct Vary {
    literals: VaryMap,
    /// Where the `vary:` block is in the text: it is not rewritten.
    block: Range<usize>,
}

impl Vary {
    /// Checks `literals` against the task's `text`: each literal is a name or a port written in
    /// the task outside its `vary:` block; each alternative is of the same kind (a name an RFC
    /// 1035 label, as Services and namespaces need; a port 1-65535), appears nowhere in the task,
    /// and is nobody else's alternative, so no two things can end up with one name.
    pub fn new(literals: VaryMap, text: &str) -> Result<Self, String> {
        let block = block(text);
        let outside = format!("{}{}", &text[..block.start], &text[block.end..]);
        let words: HashSet<&str> = words(&outside).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        for (Word(literal), alternatives) in &literals {
            let at = |message: String| format!("vary.{literal}: {message}");
            let port = is_port(literal);
            if !port && !is_dns_label(literal) {
                return Err(at(
                    "a literal is a name (lowercase letters, digits, dashes) or a port".into(),
                ));
            }
            if !words.contains(literal.as_str()) {
                return Err(at("the task never writes it as a word of its own".into()));
            }
            if alternatives.is_empty() {
                return Err(at("give at least one alternative".into()));
            }
            for Word(alternative) in alternatives {
                match port {
                    true if !is_port(alternative) => {
                        return Err(at(format!("`{alternative}` is not a port (1-65535)")))
                    }
                    false if !is_rfc1035_label(alternative) => {
                        return Err(at(format!(
                            "`{alternative}` is not a name (a lowercase letter first, then letters, digits and inner dashes, at most 63)"
                        )))
                    }
                    _ => {}
                }
                if words.contains(alternative.as_str()) || literals.contains_key(&Word(alternative.clone())) {
                    return Err(at(format!("`{alternative}` is already written in the task")));
                }
                if !seen.insert(alternative) {
                    return Err(at(format!("`{alternative}` is given twice")));
                }
            }
        }
        Ok(Self { literals, block })
    }

    /// The names alternatives could give things (for checks across tasks), ports left out.
    pub fn alternative_names(&self) -> impl Iterator<Item = &str> {
        self.literals
            .values()
            .flatten()
            .map(|Word(w)| w.as_str())
            .filter(|w| !is_port(w))
    }

    /// The values for a session: each literal's alternative picked by a hash of the session's
    /// seed, the task and the literal, so the same session always gets the same names, and
    /// another session most likely others.
    pub fn choose(&self, seed: &str, task_id: &str) -> Choice<'_> {
        self.literals
            .iter()
            .map(|(Word(literal), alternatives)| {
                let digest = Sha256::new()
                    .chain_update(seed)
                    .chain_update([0])
                    .chain_update(task_id)
                    .chain_update([0])
                    .chain_update(literal)
                    .finalize();
                let number = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
                let index = (number % alternatives.len() as u64) as usize;
                (literal.as_str(), alternatives[index].0.as_str())
            })
            .collect()
    }

    /// Choices that between them use every alternative at least once: the n-th takes each
    /// literal's n-th alternative (wrapping round), for checking at load time.
    pub fn every_alternative(&self) -> Vec<Choice<'_>> {
        let rounds = self.literals.values().map(Vec::len).max().unwrap_or(0);
        (0..rounds)
            .map(|n| {
                self.literals
                    .iter()
                    .map(|(Word(literal), alts)| (literal.as_str(), alts[n % alts.len()].0.as_str()))
                    .collect()
            })
            .collect()
    }

    /// `text` with each literal replaced, as a whole word, by its choice; the `vary:` block as
    /// written.
    pub fn apply(&self, text: &str, choice: &Choice<'_>) -> String {
        let replace = |part: &str| {
            WORD.replace_all(part, |word: &regex::Captures| {
                let word = &word[0];
                choice.get(word).copied().unwrap_or(word).to_owned()
            })
            .into_owned()
        };
        let block = self.block.clone();
        format!(
            "{}{}{}",
            replace(&text[..block.start]),
            &text[block.clone()],
            replace(&text[block.end..])
        )
    }
}

/// The words of `text`, as replacement sees them.
pub(super) fn words(text: &str) -> impl Iterator<Item = &str> {
    WORD.find_iter(text).map(|m| m.as_str())
}

/// The byte range of the front matter's `vary:` block: its line and the indented, blank or
/// comment lines after it. Empty when there is none.
fn block(text: &str) -> Range<usize> {
    let mut offset = 0;
    let mut start = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        match start {
            None if i > 0 && bare == "---" => return offset..offset,
            None if line.starts_with("vary:") => start = Some(offset),
            Some(start) if !(bare.is_empty() || line.starts_with([' ', '\t']) || bare.starts_with('#')) => {
                return start..offset
            }
            _ => {}
        }
        offset += line.len();
    }
    let start = start.unwrap_or(offset);
    start..offset
}

fn is_port(word: &str) -> bool {
    !word.starts_with('0') && word.parse::<u16>().is_ok_and(|p| p > 0)
}

/// An RFC 1123 label: what most Kubernetes names are.
fn is_dns_label(word: &str) -> bool {
    (1..=63).contains(&word.len())
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !word.starts_with('-')
        && !word.ends_with('-')
}

/// An RFC 1035 label: an RFC 1123 one that starts with a letter (Services and namespaces need
/// it, and YAML never reads it as a number).
fn is_rfc1035_label(word: &str) -> bool {
    is_dns_label(word) && word.starts_with(|c: char| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "---
id: sample-task
vary:
  shop: [mercury, venus]
  # a port too
  8080: [8081, 9090]
checks:
  - exists: Service shop/web-frontend
solution:
  - run: [kubectl, -n, shop, expose, deployment, web-frontend, --port=8080]
---
Expose `web-frontend` in `shop` on port 8080 (shop.svc, not web).
";

    fn map(pairs: &[(&str, &[&str])]) -> VaryMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    Word(k.to_string()),
                    v.iter().map(|a| Word(a.to_string())).collect(),
                )
            })
            .collect()
    }

    fn vary() -> Vary {
        Vary::new(
            map(&[("shop", &["mercury", "venus"]), ("8080", &["8081", "9090"])]),
            TEXT,
        )
        .unwrap()
    }

    #[test]
    fn literals_are_replaced_as_whole_words_outside_the_vary_block() {
        let vary = vary();
        let choice = BTreeMap::from([("shop", "venus"), ("8080", "9090")]);
        let varied = vary.apply(TEXT, &choice);
        assert_eq!(
            varied,
            "---
id: sample-task
vary:
  shop: [mercury, venus]
  # a port too
  8080: [8081, 9090]
checks:
  - exists: Service venus/web-frontend
solution:
  - run: [kubectl, -n, venus, expose, deployment, web-frontend, --port=9090]
---
Expose `web-frontend` in `venus` on port 9090 (venus.svc, not web).
"
        );
    }

    #[test]
    fn a_session_always_gets_the_same_choice_and_sessions_differ() {
        let vary = vary();
        assert_eq!(vary.choose("session-1", "t"), vary.choose("session-1", "t"));
        let choices: HashSet<Vec<(&str, &str)>> = (0..40)
            .map(|i| vary.choose(&format!("session-{i}"), "t").into_iter().collect())
            .collect();
        // Two literals with two alternatives each: all four combinations come up in 40 sessions.
        assert_eq!(choices.len(), 4, "{choices:?}");
        let rounds = vary.every_alternative();
        assert_eq!(
            rounds,
            [
                BTreeMap::from([("8080", "8081"), ("shop", "mercury")]),
                BTreeMap::from([("8080", "9090"), ("shop", "venus")]),
            ]
        );
    }

    #[test]
    fn bad_alternatives_are_refused_with_the_reason() {
        for (pairs, expected) in [
            (
                map(&[("shop", &["Mercury"])]),
                "vary.shop: `Mercury` is not a name",
            ),
            (map(&[("shop", &["9lives"])]), "vary.shop: `9lives` is not a name"),
            (map(&[("8080", &["http"])]), "vary.8080: `http` is not a port"),
            (map(&[("8080", &["70000"])]), "vary.8080: `70000` is not a port"),
            (
                map(&[("shop", &["web-frontend"])]),
                "vary.shop: `web-frontend` is already written",
            ),
            (
                map(&[("shop", &["mercury"]), ("web-frontend", &["mercury"])]),
                "vary.web-frontend: `mercury` is given twice",
            ),
            (
                map(&[("shop", &["web-frontend"]), ("web-frontend", &["shop-2"])]),
                "vary.shop: `web-frontend` is already written",
            ),
            (
                map(&[("frontend", &["mercury"])]),
                "vary.frontend: the task never writes it",
            ),
            (
                map(&[("mercury", &["venus"])]),
                "vary.mercury: the task never writes it",
            ),
            (map(&[("shop", &[])]), "vary.shop: give at least one alternative"),
            (map(&[("Shop", &["mercury"])]), "vary.Shop: a literal is a name"),
        ] {
            let error = Vary::new(pairs, TEXT).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[test]
    fn the_block_ends_at_the_next_key_or_the_front_matters_end() {
        let text = "---\nid: a\nvary: { a: [b] }\nchecks: []\n---\nbody\n";
        assert_eq!(&text[block(text)], "vary: { a: [b] }\n");
        let last = "---\nid: a\nvary:\n  a: [b]\n---\nbody\n";
        assert_eq!(&last[block(last)], "vary:\n  a: [b]\n");
        assert!(block("---\nid: a\n---\nvary: in the body\n").is_empty());
    }
}
