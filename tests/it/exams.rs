//! Mock exams on a running platform with a real `lite` cluster: the free exam starts with its own
//! tasks and time, refuses Check and extension, and when stopped grades every task (one solved
//! with its reference solution, the others not) with each check's outcome and the solutions; a
//! full exam needs an access pass. An exam with hosts has a cluster per host, reached from the
//! terminal with `ssh <host>`, each task graded on its host's. Two attempts at a full exam see
//! different names in its varied tasks, and answers with the names shown score.

use crate::common::{self, Terminals};

use std::time::Duration;

use ckad_platform::{
    clusters::Kubeconfig,
    docker::DockerEngine,
    tasks::{SolutionRunner, Target, TaskCatalog},
    terminals::{DockerTerminals, TerminalFiles, TerminalRuntime},
};
use common::Platform;
use reqwest::StatusCode;
use serde_json::Value;

/// The listed exam whose `key` is `value`.
fn the_exam<'a>(exams: &'a Value, key: &str, value: &str) -> &'a Value {
    exams
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == value)
        .unwrap()
}

/// An access pass for ada@example.com (signed in as `token`), granted by an admin and activated.
async fn grant_a_pass(platform: &Platform, token: &str) {
    let admin = platform.learner("admin@example.com").await;
    let (code, pass) = platform
        .call(
            reqwest::Method::POST,
            "/api/v1/access/grant",
            &admin,
            Some(serde_json::json!({"email": "ada@example.com", "plan": "pass-1w"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{pass}");
    let activate = format!("/api/v1/access/activate/{}", pass["id"].as_str().unwrap());
    assert_eq!(platform.post(&activate, token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_free_mock_exam_is_timed_graded_with_partial_credit_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    let platform = Platform::start(settings.clone()).await;
    let token = platform.learner("ada@example.com").await;

    let (code, exams) = platform.get("/api/exams", &token).await;
    assert_eq!(code, StatusCode::OK, "{exams}");
    let free = the_exam(&exams, "id", "ckad-mock-free");
    assert_eq!(
        (
            free["minutes"].as_u64(),
            free["tasks"].as_u64(),
            free["allowed"].as_bool()
        ),
        (Some(30), Some(5), Some(true))
    );
    let full = the_exam(&exams, "access", "pass");
    assert_eq!(full["allowed"], false);
    let full_start = format!("/api/exams/{}/start", full["id"].as_str().unwrap());
    let (code, refused) = platform.post(&full_start, &token).await;
    assert_eq!(
        (code, refused["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("this exam needs an access pass"))
    );
    assert_eq!(
        platform.post("/api/exams/no-such-exam/start", &token).await.0,
        StatusCode::NOT_FOUND
    );

    let (code, session) = platform.post("/api/exams/ckad-mock-free/start", &token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    assert_eq!(session["exam"], "ckad-mock-free");
    let session = platform.wait_started(&token).await;
    let expires = chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.to_utc() - chrono::Utc::now();
    assert!((29..=30).contains(&left.num_minutes()), "{left}");

    // The exam's rules: no hints, no Check, no extension.
    let (code, task) = platform.get("/api/tasks/pod-with-labels", &token).await;
    assert_eq!(
        (code, &task["hints_html"]),
        (StatusCode::OK, &serde_json::json!([]))
    );
    let (_, tasks) = platform.get("/api/tasks", &token).await;
    assert!(tasks
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["hints_html"] == serde_json::json!([])));
    let (code, body) = platform.post("/api/tasks/pod-with-labels/check", &token).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("no Check during an exam"))
    );
    let (code, body) = platform.post("/api/session/extend", &token).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("no extension during an exam"))
    );

    // The learner solves one task (as its reference solution does) and stops.
    let id = session["id"].as_str().unwrap();
    let kubeconfig = settings
        .clusters
        .state_dir
        .join(format!("sessions/{id}.kubeconfig"));
    let client = Kubeconfig::from_yaml(std::fs::read_to_string(&kubeconfig).unwrap())
        .unwrap()
        .client()
        .await
        .unwrap();
    let catalog = TaskCatalog::load(&settings.tasks_dir).unwrap();
    let solved = catalog.get("pod-with-labels").unwrap();
    let terminals = DockerTerminals::new(
        DockerEngine::new("unix:///var/run/docker.sock"),
        common::TERMINAL_IMAGE,
        &settings.clusters.instance,
    );
    let [cluster] = terminals.list().await.unwrap().try_into().unwrap();
    let files = TerminalFiles {
        runtime: &terminals,
        cluster: &cluster,
    };
    SolutionRunner::new(common::lite_bin_dir(), &kubeconfig, catalog.charts_dir())
        .run(
            &Target {
                client: &client,
                files: &files,
                runs_containers: false,
            },
            solved,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // kwok marks the pod ready
    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );

    let (code, result) = platform.get(&format!("/api/exams/results/{id}"), &token).await;
    assert_eq!(code, StatusCode::OK, "{result}");
    let tasks = result["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 5);
    let pod = tasks.iter().find(|t| t["task"] == "pod-with-labels").unwrap();
    assert_eq!(pod["points"], pod["weight"], "{pod}");
    assert!(pod["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["passed"] == true));
    let others: Vec<_> = tasks.iter().filter(|t| t["task"] != "pod-with-labels").collect();
    assert!(others.iter().all(|t| t["points"] == 0), "{others:?}");
    let reasons: Vec<_> = others
        .iter()
        .flat_map(|t| t["checks"].as_array().unwrap())
        .filter(|c| c["passed"] == false)
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| !r.is_empty()),
        "every failed check says why"
    );
    assert_eq!(result["score"], pod["weight"]);
    let max: u64 = tasks.iter().map(|t| t["weight"].as_u64().unwrap()).sum();
    assert_eq!(result["max_score"].as_u64(), Some(max));
    // By domain (the five tasks span four), and short of the pass line.
    let domains = result["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 4, "{domains:?}");
    let design = domains
        .iter()
        .find(|d| d["domain"] == "Application Design and Build")
        .unwrap();
    assert_eq!(design["points"], pod["weight"], "{design}");
    let weights: u64 = domains.iter().map(|d| d["weight"].as_u64().unwrap()).sum();
    assert_eq!(Some(weights), result["max_score"].as_u64());
    assert_eq!(
        (&result["passed"], &result["pass_percent"]),
        (&false.into(), &66.into())
    );
    let solutions = result["solutions"].as_array().unwrap();
    assert_eq!(solutions.len(), 5);
    assert!(
        solutions
            .iter()
            .all(|s| s["html"].as_str().unwrap().contains("<pre>")),
        "{solutions:?}"
    );
    let (_, history) = platform.get("/api/exams/results", &token).await;
    assert_eq!(history[0]["session_id"], id);
    let other = platform.learner("bob@example.com").await;
    assert_eq!(
        platform.get(&format!("/api/exams/results/{id}"), &other).await.0,
        StatusCode::NOT_FOUND,
        "not someone else's"
    );

    // An access pass, granted by an admin and activated, opens the full exam.
    grant_a_pass(&platform, &token).await;
    let (_, exams) = platform.get("/api/exams", &token).await;
    let full = the_exam(&exams, "access", "pass");
    assert_eq!(full["allowed"], true);
    platform.shut_down().await;
}

/// Visitors who are not signed in browse the mock exams of every type, none of which they may
/// start; signed-in learners filter the list by type and category.
#[tokio::test]
async fn visitors_browse_the_mock_exams_and_the_list_filters_by_type_and_category() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(common::settings(dir.path(), "unix:///var/run/docker.sock")).await;

    let (code, listed) = platform.get("/api/exams", "").await;
    assert_eq!(code, StatusCode::OK, "{listed}");
    let listed = listed.as_array().unwrap();
    let mut shape: Vec<(&str, u64, u64)> = listed
        .iter()
        .map(|e| {
            assert_eq!(
                (&e["category"], &e["is_free"], &e["allowed"]),
                (&"mock".into(), &true.into(), &false.into()),
                "{e}"
            );
            (
                e["type"].as_str().unwrap(),
                e["tasks"].as_u64().unwrap(),
                e["minutes"].as_u64().unwrap(),
            )
        })
        .collect();
    shape.sort();
    assert_eq!(
        shape,
        [
            ("cka", 5, 30),
            ("ckad", 5, 30),
            ("cks", 3, 20),
            ("docker", 3, 15),
            ("helm", 3, 15)
        ]
    );
    assert_eq!(
        platform.post("/api/exams/helm-mock/start", "").await.0,
        StatusCode::UNAUTHORIZED
    );

    let token = platform.learner("grace@example.com").await;
    let (_, helm) = platform.get("/api/exams?type=helm", &token).await;
    let helm = helm.as_array().unwrap();
    assert_eq!(
        (helm.len(), &helm[0]["id"], &helm[0]["allowed"]),
        (1, &"helm-mock".into(), &true.into())
    );
    let (_, full) = platform.get("/api/exams?category=full", &token).await;
    let full = full.as_array().unwrap();
    assert!(full.len() >= 2, "{full:?}");
    for exam in full {
        assert_eq!(
            (
                &exam["type"],
                &exam["max_score"],
                &exam["pass_percent"],
                &exam["minutes"],
                &exam["allowed"]
            ),
            (
                &"ckad".into(),
                &100.into(),
                &66.into(),
                &120.into(),
                &false.into()
            ),
            "{exam}"
        );
    }
    let (_, ckad_mocks) = platform.get("/api/exams?type=ckad&category=mock", &token).await;
    assert_eq!(ckad_mocks[0]["id"], "ckad-mock-free");
    assert_eq!(ckad_mocks.as_array().unwrap().len(), 1);
    assert_eq!(
        platform.get("/api/exams?type=lpic", &token).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// A full exam with hosts on `lite`: a cluster per host, made side by side and recorded before the
/// start; the terminal starts on a base machine with no cluster, `ssh <host>` reaches that host's
/// cluster (a task's namespace is on its own host only), `exit` comes back and an unknown host is
/// refused as ssh refuses it; the first task, solved on its host, scores; the stop removes every
/// host's cluster and the terminal.
#[tokio::test]
async fn an_exam_with_hosts_has_a_cluster_per_host_reached_by_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    // Three hosts take three ports of each kind.
    settings.clusters.ports = common::port_block(53300, 3);
    let instance = settings.clusters.instance.clone();
    let platform = Platform::start(settings).await;
    let token = platform.learner("ada@example.com").await;
    grant_a_pass(&platform, &token).await;

    let began = std::time::Instant::now();
    let (code, session) = platform.post("/api/exams/ckad-full-2/start", &token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();
    platform.wait_started(&token).await;
    eprintln!(
        "an exam with 3 hosts started in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let mut clusters = common::clusters_of_instance(&instance).await;
    clusters.sort();
    assert_eq!(clusters.len(), 3, "{clusters:?}");

    let ticket = platform.ticket(&token).await;
    let mut shell = common::open_shell(platform.socket_url(&ticket), common::ORIGIN, "ckad@base")
        .await
        .unwrap();
    // The base machine has no cluster.
    shell.type_line("kubectl get namespaces").await;
    shell.read_until("localhost:8080").await;
    shell.type_line("ssh nowhere").await;
    shell
        .read_until("ssh: Could not resolve hostname nowhere: Name or service not known")
        .await;
    // The first task (cronjob-run-now) is on ckad7326: its namespace is not on another host.
    shell.type_line("ssh ckad5601").await;
    shell.read_until("ckad@ckad5601").await;
    shell.type_line("kubectl get namespace invoices").await;
    shell.read_until(r#"namespaces "invoices" not found"#).await;
    shell.type_line("exit").await;
    shell.read_until("ckad@base").await;
    shell.type_line("ssh ckad7326").await;
    shell.read_until("ckad@ckad7326").await;
    shell
        .type_line("kubectl -n invoices create job export-now --from=cronjob/invoice-export")
        .await;
    shell.read_until("job.batch/export-now created").await;
    shell
        .type_line(r#"kubectl -n invoices patch cronjob invoice-export -p '{"spec":{"suspend":true}}'"#)
        .await;
    shell.read_until("cronjob.batch/invoice-export patched").await;
    shell
        .type_line("kubectl -n invoices wait --for=condition=complete job/export-now --timeout=60s")
        .await;
    shell.read_until("condition met").await;
    shell.type_line("exit").await;
    shell.read_until("ckad@base").await;

    assert_eq!(
        platform.post("/api/session/stop", &token).await.0,
        StatusCode::NO_CONTENT
    );
    let (code, result) = platform.get(&format!("/api/exams/results/{id}"), &token).await;
    assert_eq!(code, StatusCode::OK, "{result}");
    let tasks = result["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 17);
    let first = &tasks[0];
    assert_eq!(first["task"], "cronjob-run-now");
    assert_eq!(first["points"], first["weight"], "{first}");
    assert_eq!(
        result["score"], first["points"],
        "nothing else was done: {result}"
    );
    assert_eq!(
        common::clusters_of_instance(&instance).await,
        Vec::<String>::new()
    );
    assert_eq!(
        common::containers_labelled(&format!("ckad.instance={instance}")).await,
        Vec::<String>::new()
    );
    platform.shut_down().await;
}

/// The tasks of the first full exam whose names vary (`vary:` in their files).
const VARIED: [&str; 8] = [
    "init-container-content",
    "events-pending-pods",
    "api-deprecation",
    "secret-env-and-volume",
    "quota-requests-limits",
    "network-policy-db",
    "service-loadbalancer",
    "fix-broken-service",
];

/// The texts of the varied tasks as the learner's exam shows them.
async fn statements(platform: &Platform, token: &str) -> Vec<String> {
    let (code, tasks) = platform.get("/api/tasks", token).await;
    assert_eq!(code, StatusCode::OK, "{tasks}");
    VARIED
        .iter()
        .map(|id| {
            let task = tasks
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == *id)
                .unwrap_or_else(|| panic!("{id} is listed"));
            task["body_html"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// What `pattern`'s group captures in `text`.
fn captured(text: &str, pattern: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("{pattern} in {text}"))[1]
        .to_owned()
}

/// Starts the full exam for the learner; its session id once started.
async fn start_full_exam(platform: &Platform, token: &str) -> String {
    let (code, session) = platform.post("/api/exams/ckad-mock-full/start", token).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{session}");
    let session = platform.wait_started(token).await;
    session["id"].as_str().unwrap().to_owned()
}

/// Stops the learner's exam and waits until it has ended: grading and removal go on when the
/// request's 30 s run out first (a loaded machine).
async fn stop_and_wait(platform: &Platform, token: &str) {
    let (code, _) = platform.post("/api/session/stop", token).await;
    assert!(
        [StatusCode::NO_CONTENT, StatusCode::REQUEST_TIMEOUT].contains(&code),
        "{code}"
    );
    common::eventually("the exam ended", Duration::from_secs(120), || async {
        // Once a second: the platform's default limit (100 API calls a minute) holds.
        tokio::time::sleep(Duration::from_secs(1)).await;
        platform.get("/api/session/status", token).await.0 == StatusCode::NOT_FOUND
    })
    .await;
}

/// An exam's names change from one attempt to the next, so answers cannot be learnt by heart: the
/// second attempt's texts name other things than the first's, each attempt keeps its names (read
/// again, and in the solutions shown after the end), and a learner who answers with the names
/// shown to them scores the task.
#[tokio::test]
async fn each_exam_attempt_has_names_of_its_own_and_answers_with_them_score() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::settings(dir.path(), "unix:///var/run/docker.sock");
    // The exam's three hosts take three ports of each kind.
    settings.clusters.ports = common::port_block(53900, 3);
    let platform = Platform::start(settings.clone()).await;
    let token = platform.learner("ada@example.com").await;
    grant_a_pass(&platform, &token).await;

    let first = start_full_exam(&platform, &token).await;
    let shown = statements(&platform, &token).await;
    assert_eq!(
        statements(&platform, &token).await,
        shown,
        "the same names on every reading"
    );
    // Service-loadbalancer as written says `public-web`, `landing-lb` and port 443.
    let lb = &shown[6];
    let namespace = captured(lb, r"in the namespace <code>([a-z0-9-]+)</code>");
    let service = captured(lb, r"as a Service <code>([a-z0-9-]+)</code>");
    let port = captured(lb, r"listens on port <strong>(\d+)</strong>");
    assert!(
        ["shopping-web", "shopfront", "stockpile"].contains(&namespace.as_str())
            && ["landing-ext", "landing-cloud"].contains(&service.as_str())
            && ["8443", "9443", "10443"].contains(&port.as_str()),
        "{lb}"
    );

    // The learner answers with what they read, on the task's host (its cluster's admin
    // kubeconfig, `<session>.<cluster>-<host>.kubeconfig`).
    let sessions = settings.clusters.state_dir.join("sessions");
    let kubeconfig = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|file| file.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{first}.")) && name.ends_with("-ckad8132.kubeconfig")
        })
        .expect("the kubeconfig of service-loadbalancer's host");
    let kubectl = |args: Vec<String>| {
        let kubeconfig = kubeconfig.clone();
        async move {
            let out = tokio::process::Command::new(common::lite_bin_dir().join("kubectl"))
                .arg(format!("--kubeconfig={}", kubeconfig.display()))
                .args(&args)
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "kubectl {args:?}: {out:?}");
        }
    };
    let ns = format!("--namespace={namespace}");
    kubectl(vec![
        ns.clone(),
        "expose".into(),
        "deployment".into(),
        "landing".into(),
        format!("--name={service}"),
        "--type=LoadBalancer".into(),
        format!("--port={port}"),
        "--target-port=80".into(),
    ])
    .await;
    kubectl(vec![
        ns,
        "patch".into(),
        "service".into(),
        service.clone(),
        r#"-p={"spec":{"externalTrafficPolicy":"Local"}}"#.into(),
    ])
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // endpoints follow the service
    stop_and_wait(&platform, &token).await;
    let (code, result) = platform.get(&format!("/api/exams/results/{first}"), &token).await;
    assert_eq!(code, StatusCode::OK, "{result}");
    let tasks = result["tasks"].as_array().unwrap();
    let lb_result = tasks
        .iter()
        .find(|t| t["task"] == "service-loadbalancer")
        .unwrap();
    assert_eq!(lb_result["points"], lb_result["weight"], "{lb_result}");
    assert_eq!(
        result["score"], lb_result["points"],
        "nothing else was done: {result}"
    );
    let solution = result["solutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "service-loadbalancer")
        .unwrap()["script"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        solution.contains(&format!(
            "-n {namespace} expose deployment landing --name={service}"
        )) && solution.contains(&format!("--port={port}")),
        "{solution}"
    );

    // Another attempt: other names.
    let second = start_full_exam(&platform, &token).await;
    assert_ne!(second, first);
    let again = statements(&platform, &token).await;
    assert_ne!(again, shown, "a second attempt names other things");
    stop_and_wait(&platform, &token).await;
    let (_, first_again) = platform.get(&format!("/api/exams/results/{first}"), &token).await;
    assert_eq!(
        first_again["solutions"], result["solutions"],
        "an attempt keeps its names"
    );
    assert_eq!(
        common::clusters_of_instance(&settings.clusters.instance).await,
        Vec::<String>::new()
    );
    platform.shut_down().await;
}
