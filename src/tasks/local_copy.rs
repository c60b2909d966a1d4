//! Files of the learner's terminal that a solution's command names, copied into a local folder
//! for the tool to read, under the same paths (`/home/ckad/app` lands in `<into>/home/ckad/app`).
//! A kustomization folder (`kubectl apply -k /home/ckad/shop`) comes with every file it names
//! (resources, components, patches, generators' files), following nested kustomizations.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::files::{LearnerFiles, LearnerPath, READ_LIMIT};

/// The names kubectl looks for in a kustomization's folder, in its order.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
/// Kustomizations that include each other deeper than this are refused (a cycle, most likely).
const MAX_DEPTH: usize = 8;

/// Copies the file `path` under `into`; returns where it landed.
pub async fn file(files: &dyn LearnerFiles, path: &LearnerPath, into: &Path) -> Result<PathBuf, String> {
    let content = files
        .read(path, READ_LIMIT)
        .await?
        .ok_or_else(|| format!("{path} does not exist"))?;
    save(into, path.as_str(), &content).await
}

/// Copies the kustomization in the folder `dir` and what it names under `into`; returns where
/// the folder landed.
pub async fn folder(files: &dyn LearnerFiles, dir: &LearnerPath, into: &Path) -> Result<PathBuf, String> {
    copy_folder(files, dir.as_str(), into, 0).await?;
    Ok(local(into, dir.as_str()))
}

fn local(into: &Path, path: &str) -> PathBuf {
    into.join(path.trim_start_matches('/'))
}

async fn copy_folder(files: &dyn LearnerFiles, dir: &str, into: &Path, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "kustomizations include each other deeper than {MAX_DEPTH} levels at {dir}"
        ));
    }
    let Some((name, text)) = kustomization(files, dir).await? else {
        return Err(format!("{dir} holds no kustomization.yaml"));
    };
    save(into, &format!("{dir}/{name}"), &text).await?;
    let document: Value =
        serde_yaml::from_slice(&text).map_err(|e| format!("{dir}/{name} is not YAML: {e}"))?;
    for reference in references(&document) {
        if reference.contains("://") || reference.starts_with("github.com/") {
            return Err(format!("{dir}/{name} names a remote resource {reference}"));
        }
        let path = joined(dir, &reference)?;
        if kustomization(files, &path).await?.is_some() {
            Box::pin(copy_folder(files, &path, into, depth + 1)).await?;
        } else {
            let learner_path = LearnerPath::try_from(path.as_str())?;
            file(files, &learner_path, into)
                .await
                .map_err(|e| format!("{dir}/{name} names {reference}: {e}"))?;
        }
    }
    Ok(())
}

/// The kustomization file of the folder `dir`, if it has one.
async fn kustomization(
    files: &dyn LearnerFiles,
    dir: &str,
) -> Result<Option<(&'static str, Vec<u8>)>, String> {
    for name in KUSTOMIZATION_FILES {
        let Ok(path) = LearnerPath::try_from(format!("{dir}/{name}").as_str()) else {
            return Ok(None);
        };
        if let Some(text) = files.read(&path, READ_LIMIT).await? {
            return Ok(Some((name, text)));
        }
    }
    Ok(None)
}

async fn save(into: &Path, path: &str, content: &[u8]) -> Result<PathBuf, String> {
    let local = local(into, path);
    if let Some(parent) = local.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    tokio::fs::write(&local, content)
        .await
        .map_err(|e| format!("{}: {e}", local.display()))?;
    Ok(local)
}

/// The local paths a kustomization names.
fn references(document: &Value) -> Vec<String> {
    let strings = |value: Option<&Value>| -> Vec<String> {
        value
            .and_then(Value::as_sequence)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for key in [
        "resources",
        "components",
        "bases",
        "crds",
        "patchesStrategicMerge",
    ] {
        found.extend(strings(document.get(key)));
    }
    for key in ["patches", "patchesJson6902"] {
        for patch in document
            .get(key)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            found.extend(patch.get("path").and_then(Value::as_str).map(str::to_owned));
        }
    }
    for key in ["configMapGenerator", "secretGenerator"] {
        for generator in document
            .get(key)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            // `files` entries may be `key=path`.
            let files = strings(generator.get("files"));
            found.extend(
                files
                    .iter()
                    .map(|f| f.rsplit_once('=').map_or(f.as_str(), |(_, p)| p).to_owned()),
            );
            found.extend(strings(generator.get("envs")));
            found.extend(generator.get("env").and_then(Value::as_str).map(str::to_owned));
        }
    }
    found
}

/// `reference` read from the folder `dir`, with `.` and `..` resolved.
fn joined(dir: &str, reference: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = if reference.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in reference.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts
                    .pop()
                    .ok_or_else(|| format!("{reference} leaves the file system from {dir}"))?;
            }
            name => parts.push(name),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_relative_to_their_folder() {
        let document: Value = serde_yaml::from_str(
            "resources: [../../base, service.yaml]
patches:
  - path: replicas.yaml
    target: { kind: Deployment }
  - patch: '[{\"op\": \"replace\", \"path\": \"/spec/replicas\", \"value\": 3}]'
configMapGenerator:
  - name: settings
    files: [app.properties, extra=more.properties]
    envs: [settings.env]
images: [{ name: nginx, newTag: '1.28' }]
",
        )
        .unwrap();
        assert_eq!(
            references(&document),
            [
                "../../base",
                "service.yaml",
                "replicas.yaml",
                "app.properties",
                "more.properties",
                "settings.env"
            ]
        );
        let dir = "/home/ckad/shop/overlays/prod";
        assert_eq!(joined(dir, "../../base").unwrap(), "/home/ckad/shop/base");
        assert_eq!(
            joined(dir, "./patch.yaml").unwrap(),
            "/home/ckad/shop/overlays/prod/patch.yaml"
        );
        assert!(joined("/home", "../../../x").is_err());
    }
}
