//! The task catalog and the grader at their edges: bad task files are refused with file and line;
//! against a real `lite` cluster a missing object, an object in the wrong namespace, a wrong
//! value and a missing permission each fail with a reason a learner can act on; a cluster that
//! does not answer fails its checks when their time limit runs out; the learner's files are read
//! and written in a real terminal container.

use crate::common;

use std::{path::Path, time::Duration};

use ckad_platform::{
    clusters::{ClusterName, ClusterProvider, ClusterSpec, Kubeconfig, LiteProvider},
    docker::DockerEngine,
    tasks::{CheckResult, Domain, LearnerFiles, LearnerPath, Target, TaskCatalog, TaskError},
    terminals::{DockerTerminals, TerminalAccess, TerminalFiles, TerminalRuntime, TerminalSpec},
};
use futures_util::FutureExt as _;

const HEADER: &str = "---
id: sample
title: A sample task
domain: Application Deployment
difficulty: easy
minutes: 3
";

const TAIL: &str = "solution:
  - run: [kubectl, create, namespace, shop]
---
Create the namespace `shop`.
";

fn task_file(id: &str, checks: &str) -> String {
    format!(
        "{}checks:\n{checks}{TAIL}",
        HEADER.replace("id: sample", &format!("id: {id}"))
    )
}

fn load(files: &[(&str, &str)]) -> Result<TaskCatalog, TaskError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    TaskCatalog::load(dir.path())
}

/// The error's text without the temporary folder.
fn refusal(files: &[(&str, &str)]) -> String {
    match load(files).unwrap_err() {
        TaskError::Invalid { file, line, message } => {
            format!(
                "{}:{line}: {message}",
                file.file_name().unwrap().to_string_lossy()
            )
        }
        other => panic!("not a refusal of a file: {other}"),
    }
}

#[test]
fn a_malformed_path_is_refused_with_its_file_and_line() {
    let checks = "  - exists: Namespace shop
  - field:
      of: Deployment shop/catalog
      path: spec.template..spec
      equals: 3
";
    assert_eq!(
        refusal(&[("a.md", &task_file("sample", checks))]),
        "a.md:11: checks[1].field.path: malformed path `spec.template..spec` at character 15: expected a field name"
    );
}

#[test]
fn a_path_into_a_field_the_kind_lacks_is_refused() {
    let checks = "  - field: { of: ConfigMap shop/settings, path: spec.mode, equals: on }\n";
    let error = refusal(&[("a.md", &task_file("sample", checks))]);
    assert!(
        error.starts_with("a.md:8: checks[0]: path `spec.mode` does not start with a field of ConfigMap (metadata, data, binaryData, immutable)"),
        "{error}"
    );
}

#[test]
fn an_unknown_domain_is_refused_with_the_curriculum_names() {
    let text = task_file("sample", "  - exists: Namespace shop\n")
        .replace("domain: Application Deployment", "domain: Application Networking");
    let error = refusal(&[("a.md", &text)]);
    assert!(
        error.starts_with("a.md:4: domain: unknown variant `Application Networking`, expected one of `Application Design and Build`"),
        "{error}"
    );
}

#[test]
fn a_duplicate_id_names_both_files() {
    let first = task_file("same-id", "  - exists: Namespace shop\n");
    let second = task_file("same-id", "  - exists: Namespace other\n");
    let error = refusal(&[("a.md", &first), ("b.md", &second)]);
    assert!(
        error.starts_with("b.md:2: id `same-id` is already used by "),
        "{error}"
    );
    assert!(error.ends_with("a.md"), "{error}");
}

#[test]
fn a_solution_may_run_only_kubectl_and_helm() {
    let text = task_file("sample", "  - exists: Namespace shop\n").replace(
        "  - run: [kubectl, create, namespace, shop]",
        "  - run: [sh, -c, 'kubectl create namespace shop']",
    );
    assert_eq!(
        refusal(&[("a.md", &text)]),
        "a.md:10: solution[0]: a solution runs kubectl or helm, not `sh`"
    );
}

#[test]
fn the_catalog_covers_the_curriculum_and_shows_no_answers() {
    let catalog =
        TaskCatalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tasks")).unwrap_or_else(|e| panic!("{e}"));
    let tasks = catalog.list();
    assert!(tasks.len() >= 60, "{} tasks", tasks.len());
    for domain in Domain::ALL {
        let count = tasks.iter().filter(|t| t.view().domain == domain).count();
        let share = 100.0 * count as f64 / tasks.len() as f64;
        let wanted = domain.curriculum_percent() as f64;
        assert!(
            (share - wanted).abs() <= 2.5,
            "{}: {share:.1}% of tasks, curriculum {wanted}%",
            domain.name()
        );
    }
    for task in tasks {
        let view = serde_json::to_value(task.view()).unwrap();
        let mut keys: Vec<&str> = view.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "body_html",
                "difficulty",
                "domain",
                "hints_html",
                "id",
                "minutes",
                "title",
                "weight"
            ]
        );
        assert!(task.view().body_html.starts_with('<'), "{}", task.id());
        let solution = task.solution();
        assert!(solution.html.starts_with("<pre><code>"), "{}", solution.html);
        assert!(
            ["kubectl ", "helm ", "mkdir -p "]
                .iter()
                .any(|start| solution.script.starts_with(start)),
            "{}",
            solution.script
        );
        assert!(std::ptr::eq(catalog.get(task.id()).unwrap(), task));
        assert!(
            task.accepted().len() >= 2 && !task.rejected().is_empty(),
            "{}: the proof needs two accepted answers besides the solution and one rejected",
            task.id()
        );
    }
}

const EDGES: &str = "---
id: edges
title: Edges of the grader
domain: Application Deployment
difficulty: easy
minutes: 1
setup:
  - { apiVersion: v1, kind: Namespace, metadata: { name: web } }
  - { apiVersion: v1, kind: Namespace, metadata: { name: other } }
  - apiVersion: v1
    kind: Pod
    metadata: { name: front, namespace: other, labels: { app: front } }
    spec:
      containers: [{ name: front, image: nginx:1.27 }]
  - apiVersion: apps/v1
    kind: Deployment
    metadata: { name: api, namespace: web }
    spec:
      replicas: 2
      selector: { matchLabels: { app: api } }
      template:
        metadata: { labels: { app: api } }
        spec:
          containers: [{ name: api, image: nginx:1.26 }]
checks:
  - exists: Pod web/front
  - exists: ConfigMap web/settings
  - absent: Deployment web/api
  - container: { of: Deployment web/api, name: api, has: { image: nginx:1.27 } }
  - container: { of: Deployment web/api, name: web, has: { image: nginx:1.26 } }
  - replicas: { of: Deployment web/api, ready: 3 }
  - labels: { of: Pod other/front, include: { app: front, tier: web } }
  - access: { user: jane, verb: list, resource: pods, namespace: web, allowed: true }
  - access: { user: jane, verb: list, resource: pods, namespace: web, allowed: false }
  - field: { of: Deployment web/api, path: spec.replicas, equals: 2 }
solution:
  - run: [kubectl, create, namespace, shop]
---
Edges.
";

#[tokio::test]
async fn failing_checks_explain_themselves_against_a_real_cluster() {
    let catalog = load(&[("edges.md", EDGES)]).unwrap();
    let task = catalog.get("edges").unwrap();
    let state = tempfile::tempdir().unwrap();
    let provider = LiteProvider::new(
        DockerEngine::new("unix:///var/run/docker.sock"),
        Some(common::lite_bin_dir()),
        state.path(),
        &common::instance(state.path()),
    )
    .unwrap();
    let spec = ClusterSpec {
        name: ClusterName::generate(),
        ports: common::ports(),
    };
    let cluster = provider.create(&spec).await.unwrap();
    let graded = grade_when_settled(&cluster.admin_kubeconfig.client().await.unwrap(), task).await;
    provider.delete(&spec.name).await.unwrap();

    let reasons: Vec<(&str, Option<&str>)> = graded
        .iter()
        .map(|o| (o.description.as_str(), o.reason.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "Pod web/front exists",
                Some("Pod web/front does not exist (there is one in namespace other)")
            ),
            (
                "ConfigMap web/settings exists",
                Some("ConfigMap web/settings does not exist")
            ),
            (
                "Deployment web/api does not exist",
                Some("Deployment web/api still exists")
            ),
            (
                "Deployment web/api: container api has image nginx:1.27",
                Some("api.image is \"nginx:1.26\"")
            ),
            (
                "Deployment web/api: container web has image nginx:1.26",
                Some("Deployment web/api has no container named web (it has api)")
            ),
            (
                "Deployment web/api has 3 ready replicas",
                Some("found 2 ready replicas")
            ),
            (
                "Pod other/front is labelled app=front, tier=web",
                Some("label tier is not set")
            ),
            (
                "jane can list pods in namespace web",
                Some("jane is not allowed to list pods in namespace web")
            ),
            ("jane cannot list pods in namespace web", None),
            ("Deployment web/api: spec.replicas is 2", None),
        ]
    );
    assert_eq!(graded.iter().filter(|o| o.passed).count(), 2);
}

/// The setup applied, then grading until the deployment's 2 pods are ready (kwok needs a moment).
async fn grade_when_settled(client: &kube::Client, task: &ckad_platform::tasks::Task) -> Vec<CheckResult> {
    task.prepare(client).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let graded = task
            .grade(&Target {
                client,
                files: &common::NoTerminal,
                runs_containers: false,
            })
            .await;
        let replicas = graded[5].reason.as_deref();
        if replicas == Some("found 2 ready replicas") || tokio::time::Instant::now() > deadline {
            return graded;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A server that accepts connections and never says a word: a cluster that hangs.
#[tokio::test]
async fn a_check_fails_when_the_cluster_does_not_answer_within_its_limit() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let checks = "  - { exists: Namespace shop, timeout: 1500ms }\n  - replicas: { of: Deployment shop/web, ready: 1 }\n";
    let catalog = load(&[("a.md", &task_file("sample", checks))]).unwrap();
    let task = catalog.get("sample").unwrap();
    assert_eq!(task.checks()[0].limit(), Duration::from_millis(1500));
    assert_eq!(
        task.checks()[1].limit(),
        Duration::from_secs(5),
        "the default limit"
    );

    let mut config = kube::Config::new(format!("https://{address}").parse().unwrap());
    config.accept_invalid_certs = true;
    let client = kube::Client::try_from(config).unwrap();
    let started = std::time::Instant::now();
    let graded = task
        .grade(&Target {
            client: &client,
            files: &common::NoTerminal,
            runs_containers: false,
        })
        .await;
    let took = started.elapsed();

    assert_eq!(
        graded[0],
        CheckResult {
            description: "Namespace shop exists".into(),
            passed: false,
            reason: Some("the cluster did not answer within 1500ms".into()),
            points: 1,
            guard: false,
        }
    );
    assert_eq!(
        graded[1].reason.as_deref(),
        Some("the cluster did not answer within 5s")
    );
    // Checks run side by side: the whole grade lasts as long as the longest limit.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(7),
        "{took:?}"
    );
    accepted.abort();
}

#[test]
fn the_task_folder_must_exist() {
    let error = TaskCatalog::load(Path::new("/nonexistent/tasks"))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("cannot read /nonexistent/tasks: "), "{error}");
}

/// What a command prints in the terminal, run there as the learner would.
async fn as_the_learner(container: &str, argv: &[&str]) -> String {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt as _;
    let docker = common::docker().await;
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let mut printed = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec, None).await.unwrap() {
        while let Some(chunk) = output.next().await {
            printed.push_str(&chunk.unwrap().to_string());
        }
    }
    printed
}

/// The learner's files as the grader sees them, in a real terminal container (with no network:
/// files need none): written as the learner's own, read back, a missing file is none, a link to
/// an endless file is read only up to the limit, a folder is an error, and a path is never read
/// by a shell.
#[tokio::test]
async fn the_learners_files_are_read_and_written_in_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let terminals = DockerTerminals::new(
        DockerEngine::new("unix:///var/run/docker.sock"),
        common::TERMINAL_IMAGE,
        &common::instance(dir.path()),
    );
    let cluster = ClusterName::generate();
    let kubeconfig =
        Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
            .unwrap();
    terminals
        .create(&TerminalSpec {
            cluster: &cluster,
            network: "none",
            access: TerminalAccess::Cluster(&kubeconfig),
            session_id: "files",
            user_id: "files",
        })
        .await
        .unwrap();
    let container = format!("term-{cluster}");
    let files = TerminalFiles {
        runtime: &terminals,
        cluster: &cluster,
    };
    let path = |p: &str| LearnerPath::try_from(p).unwrap();
    let judged = std::panic::AssertUnwindSafe(async {
        assert_eq!(files.read(&path("/opt/course/7/answer.txt"), 100).await, Ok(None));
        files
            .write(&path("/opt/course/7/answer.txt"), "web-1\n")
            .await
            .unwrap();
        files
            .write(&path("/home/ckad/app/Dockerfile"), "FROM busybox:1.36\n")
            .await
            .unwrap();
        assert_eq!(
            files.read(&path("/opt/course/7/answer.txt"), 100).await,
            Ok(Some(b"web-1\n".to_vec()))
        );
        assert_eq!(
            as_the_learner(
                &container,
                &[
                    "stat",
                    "-c",
                    "%u %a",
                    "/opt/course/7/answer.txt",
                    "/home/ckad/app/Dockerfile"
                ]
            )
            .await,
            "1000 644\n1000 644\n"
        );
        as_the_learner(&container, &["ln", "-s", "/dev/zero", "/home/ckad/endless"]).await;
        assert_eq!(
            files
                .read(&path("/home/ckad/endless"), 4096)
                .await
                .unwrap()
                .map(|b| b.len()),
            Some(4096)
        );
        let folder = files.read(&path("/home/ckad/app"), 100).await.unwrap_err();
        assert!(folder.contains("Is a directory"), "{folder}");
        let shell = terminals
            .read_file(&cluster, "/home/ckad/$(touch /home/ckad/pwned)", 100)
            .await
            .unwrap();
        assert_eq!(shell, None);
        assert_eq!(files.read(&path("/home/ckad/pwned"), 100).await, Ok(None));
    })
    .catch_unwind()
    .await;
    terminals.remove(&cluster).await.unwrap();
    if let Err(panic) = judged {
        std::panic::resume_unwind(panic);
    }
}
